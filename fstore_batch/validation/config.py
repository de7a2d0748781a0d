"""Typed config of a skew validation: the online log, the offline side, features, thresholds.

Thresholds resolve per feature: the feature's own ``thresholds`` win over its group's, which win
over the top-level defaults. Every threshold is optional; an unset one never fires, but the metric
is still computed and stored.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any

from pydantic import Field, model_validator

from fstore_batch.config.models import Identifier, PathText, StoragePath, StrictModel


class LogFormat(str, Enum):
    PARQUET = "parquet"
    DELTA = "delta"
    JSON = "json"


class FeatureKind(str, Enum):
    """How a feature is compared (inferred from the offline column type unless configured)."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    EMBEDDING = "embedding"
    SEQUENCE = "sequence"


class OnlineLogSpec(StrictModel):
    """Where the online serving log is and which columns identify a request.

    ``request_id`` may be null: rows are then matched only by ``keys`` + request time.
    ``sample_rate`` is the fraction of requests the online system logs (offline rows without a
    logged request are expected at ``1 - sample_rate``).
    """

    path: StoragePath | None = None
    format: LogFormat = LogFormat.PARQUET
    request_id: Identifier | None = "request_id"
    ts: Identifier = Field(default="request_ts", description="request time (timestamp with zone)")
    keys: list[Identifier] = Field(min_length=1, description="entity key columns, named as in the labels")
    sample_rate: float = Field(default=1.0, gt=0.0, le=1.0)


class MatchingSpec(StrictModel):
    fallback: bool = Field(default=True, description="match rows left over by request id on keys + time")
    time_tolerance: timedelta = Field(default=timedelta(seconds=1), description="max |online - offline| time")


class Tolerance(StrictModel):
    """Numeric values match when ``|online - offline| <= abs + rel * |offline|`` (element-wise for embeddings)."""

    abs: float = Field(default=1e-6, ge=0.0)
    rel: float = Field(default=1e-6, ge=0.0)


class Thresholds(StrictModel):
    """Limits that fail the run; ``max_*`` fire above, ``min_*`` below. ``None`` never fires."""

    max_mismatch_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    max_missing_online_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    max_missing_offline_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    max_psi: float | None = Field(default=None, ge=0.0)
    max_js_distance: float | None = Field(default=None, ge=0.0, le=1.0)
    max_linf: float | None = Field(default=None, ge=0.0, le=1.0)
    min_cosine_mean: float | None = Field(default=None, ge=-1.0, le=1.0)
    min_cosine_p5: float | None = Field(default=None, ge=-1.0, le=1.0)
    max_wrong_dim_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    max_nan_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    max_length_mismatch_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    max_edit_distance_mean: float | None = Field(default=None, ge=0.0)

    def merged(self, *overrides: Thresholds | None) -> Thresholds:
        data: dict[str, Any] = self.model_dump(exclude_none=True)
        for o in overrides:
            if o is not None:
                data.update(o.model_dump(exclude_none=True))
        return Thresholds.model_validate(data)


DEFAULT_THRESHOLDS = Thresholds(max_mismatch_rate=0.01, max_missing_online_rate=0.01,
                                max_missing_offline_rate=0.01)


class FeatureCheck(StrictModel):
    """One feature to compare. ``online``/``offline`` default to ``name`` (the training-set column)."""

    name: Identifier
    online: Identifier | None = None
    offline: Identifier | None = None
    kind: FeatureKind | None = None
    dim: int | None = Field(default=None, ge=1, description="expected embedding dimension")
    top_k: int = Field(default=5, ge=1, description="prefix length for the sequences' top-k match")
    tolerance: Tolerance | None = None
    thresholds: Thresholds | None = None


class FeatureGroup(StrictModel):
    features: list[Identifier] = Field(min_length=1)
    thresholds: Thresholds


class StalenessSpec(StrictModel):
    enabled: bool = True
    max_lag: timedelta = Field(default=timedelta(days=30), description="how far back to search for a matching version")


class ExpectationsSpec(StrictModel):
    """Great Expectations suites on the training set and on the joined skew table."""

    enabled: bool = True
    unique_by: list[Identifier] = Field(default_factory=lambda: ["request_id"],
                                        description="training-set columns that identify a label row")
    max_null_rate: dict[Identifier, float] = Field(default_factory=dict, description="column -> max null fraction")
    ranges: dict[Identifier, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="column -> [min, max] (null = open)")
    fail_run: bool = Field(default=False, description="a failed expectation fails the run (exit 3)")


class ReportSpec(StrictModel):
    dir: StoragePath = Field(default=".data/reports/skew", validate_default=True)
    worst_rows: int = Field(default=5, ge=0, le=100)


class SkewConfig(StrictModel):
    """A skew validation of one training set against its online serving log."""

    name: Identifier
    store_config: PathText | None = Field(default=None, description="feature store YAML (feature tables)")
    training_set: PathText | None = Field(default=None, description="training-set YAML (features, label ts)")
    online_log: OnlineLogSpec
    offline_ts: Identifier | None = Field(default=None, description="offline time column (default: labels.ts)")
    matching: MatchingSpec = Field(default_factory=MatchingSpec)
    tolerance: Tolerance = Field(default_factory=Tolerance)
    features: list[FeatureCheck] = Field(default_factory=list,
                                         description="default: every feature of the training set")
    thresholds: Thresholds = Field(default_factory=lambda: DEFAULT_THRESHOLDS)
    groups: dict[Identifier, FeatureGroup] = Field(default_factory=dict)
    min_match_coverage: float | None = Field(default=0.9, ge=0.0, le=1.0,
                                             description="fail when a smaller fraction of logged requests match "
                                                         "(null: never)")
    min_matched_rows: int = Field(default=1, ge=1,
                                  description="fail when fewer rows match (a feature with fewer is 'no_data')")
    staleness: StalenessSpec = Field(default_factory=StalenessSpec)
    expectations: ExpectationsSpec = Field(default_factory=ExpectationsSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    metrics_table: StoragePath | None = Field(default=".data/delta/skew_metrics", validate_default=True,
                                              description="Delta table of every metric, keyed by run id")

    @model_validator(mode="after")
    def _names(self) -> SkewConfig:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"unique feature names, got duplicates {dup}")
        for gname, g in self.groups.items():
            unknown = sorted(set(g.features) - set(names)) if names else []
            if unknown:
                raise ValueError(f"group '{gname}' names features not in 'features': {unknown}")
        return self

    def thresholds_for(self, feature: str) -> Thresholds:
        own = next((f.thresholds for f in self.features if f.name == feature), None)
        groups = [g.thresholds for g in self.groups.values() if feature in g.features]
        return self.thresholds.merged(*groups, own)
