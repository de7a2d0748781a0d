"""Typed config of a training set: labels, feature references (pinned or latest), sequences, window
aggregations, output."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

from pydantic import AwareDatetime, Field, model_validator

from fstore_batch.config.models import Identifier, StoragePath, StrictModel


class LabelFormat(str, Enum):
    PARQUET = "parquet"
    DELTA = "delta"
    JSON = "json"


class QuantizeMode(str, Enum):
    """Embedding quantization: ``int8`` (per-vector scale) or ``float16`` (half-precision bytes)."""

    FLOAT16 = "float16"
    INT8 = "int8"


class LabelSource(StrictModel):
    path: StoragePath
    format: LabelFormat = LabelFormat.PARQUET
    ts: Identifier = Field(default="event_ts", description="label time column (timestamp with zone)")
    version: int | None = Field(default=None, ge=0, description="Delta labels: pin a version (default: latest)")


class FeatureRef(StrictModel):
    """Features of one offline table, as of a pinned Delta version or timestamp (default: latest)."""

    table: Identifier
    keys: dict[Identifier, Identifier] = Field(description="label column -> feature table column")
    features: list[Identifier] = Field(min_length=1)
    ttl: timedelta | None = None
    strict: bool = False
    prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_]*$")
    tie_breaker: Identifier | None = None
    version: int | None = Field(default=None, ge=0)
    quantize: dict[Identifier, QuantizeMode] = Field(
        default_factory=dict, description="embedding feature -> int8 | float16 (output name, without prefix)")

    @model_validator(mode="after")
    def _keys(self) -> FeatureRef:
        if not self.keys:
            raise ValueError("at least one key mapping (label column: table column)")
        unknown = sorted(set(self.quantize) - set(self.features))
        if unknown:
            raise ValueError(f"quantize names {unknown}, which are not among this table's features")
        return self


class SequenceRef(StrictModel):
    name: Identifier
    table: Identifier
    keys: dict[Identifier, Identifier]
    columns: list[Identifier] = Field(min_length=1)
    ts: Identifier = "event_ts"
    n: int = Field(default=50, ge=1, le=10_000)
    max_age: timedelta | None = None
    tie_breaker: Identifier | None = Field(
        default=None, description="orders events with equal times (the largest counts as the newest)")
    version: int | None = Field(default=None, ge=0)


class AggregationOp(str, Enum):
    """A window aggregation op (``fstore_batch.joins.aggregations.Op``); the value is its name in
    configs and output columns."""

    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    APPROX_COUNT_DISTINCT = "approx_count_distinct"
    COUNT_DISTINCT = "count_distinct"


class AggregationFeature(StrictModel):
    """``ops`` of one column over each window (ISO 8601 durations: ``PT1H``, ``P1D``, ``P7D``)."""

    column: Identifier
    ops: list[AggregationOp] = Field(min_length=1)
    windows: list[timedelta] = Field(min_length=1)

    @model_validator(mode="after")
    def _windows(self) -> AggregationFeature:
        bad = [w for w in self.windows if w <= timedelta(0) or w % timedelta(seconds=1) or w > timedelta(days=36600)]
        if bad:
            raise ValueError(f"windows must be positive whole seconds, at most 100 years (e.g. PT1H, P7D); got {bad}")
        return self


class AggregationRef(StrictModel):
    """Window aggregations of one event table: outputs ``<name>_<column>_<op>_<window>``."""

    name: Identifier = Field(description="output prefix")
    table: Identifier
    keys: dict[Identifier, Identifier] = Field(min_length=1, description="label column -> table column")
    ts: Identifier = "event_ts"
    strict: bool = Field(default=True, description="true: t - w <= ts < t; false: t - w < ts <= t")
    features: list[AggregationFeature] = Field(min_length=1)
    version: int | None = Field(default=None, ge=0)


class SampleRate(StrictModel):
    where: dict[Identifier, int | bool | str] = Field(min_length=1, description="label column -> value (all must match)")
    rate: float = Field(gt=0, le=1)


class SamplingConfig(StrictModel):
    """Deterministic label sampling: a time window [start, end), then per-stratum rates with weights."""

    hash_columns: list[Identifier] = Field(min_length=1, description="label columns the keep/drop hash is taken of")
    rates: list[SampleRate] = Field(default_factory=list)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    seed: int = 0
    weight_column: Identifier = "sample_weight"

    @model_validator(mode="after")
    def _window(self) -> SamplingConfig:
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"start {self.start.isoformat()} must be before end {self.end.isoformat()}")
        return self


class JoinOptions(StrictModel):
    time_bucket: timedelta | None = Field(
        default=None, description="split each key's rows into time buckets (hot keys); e.g. P1D")
    partitions: int | None = Field(default=None, ge=1, description="shuffle partitions of the join (default: Spark's)")


class TrainingSetConfig(StrictModel):
    name: Identifier
    labels: LabelSource
    features: list[FeatureRef] = Field(default_factory=list)
    sequences: list[SequenceRef] = Field(default_factory=list)
    aggregations: list[AggregationRef] = Field(default_factory=list)
    sampling: SamplingConfig | None = None
    join: JoinOptions = Field(default_factory=JoinOptions)
    output: StoragePath
