"""The skew report: what a run found, as a dataclass, JSON, a summary table and a Delta metrics table.

Every metric value of a run is stored in the metrics table (long format, one row per feature,
scope, hour and metric) whether or not a threshold fires, keyed by ``run_id``:

``run_id, run_ts, config, feature, kind, scope ('overall' | 'hour' | 'coverage'), hour, metric,
value, threshold, fired, verdict``
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from fstore_batch.spark_local import local_frame
from fstore_batch.storage.files import location, write_text
from fstore_batch.validation.config import FeatureKind
from fstore_batch.validation.features import Feature
from fstore_batch.validation.match import Coverage
from fstore_batch.validation.metrics import APPROXIMATIONS
from fstore_batch.validation.verdict import Breach, FeatureVerdict, Verdict, limits

METRICS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False), T.StructField("run_ts", T.TimestampType(), False),
    T.StructField("config", T.StringType(), False), T.StructField("feature", T.StringType(), False),
    T.StructField("kind", T.StringType(), True), T.StructField("scope", T.StringType(), False),
    T.StructField("hour", T.TimestampType(), True), T.StructField("metric", T.StringType(), False),
    T.StructField("value", T.DoubleType(), True), T.StructField("threshold", T.DoubleType(), True),
    T.StructField("fired", T.BooleanType(), False), T.StructField("verdict", T.StringType(), True),
])


@dataclass
class FeatureResult:
    feature: Feature
    metrics: dict[str, float | None]
    verdict: FeatureVerdict
    worst_rows: list[dict[str, Any]] = field(default_factory=list)
    histogram: dict[str, Any] | None = None  # metrics.Summary.histograms[feature]
    top_categories: list[dict[str, Any]] | None = None  # distributions.distances(...)[1][feature]


@dataclass
class SkewReport:
    """What one validation run found. ``failed`` is true when any threshold fired."""

    run_id: str
    run_ts: datetime
    config: str
    coverage: Coverage
    features: list[FeatureResult]
    hourly: list[dict[str, Any]]
    expectations: dict[str, Any] | None = None
    coverage_breach: Breach | None = None
    paths: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def breaches(self) -> list[Breach]:
        out = [b for r in self.features for b in r.verdict.breaches]
        return out + ([self.coverage_breach] if self.coverage_breach else [])

    @property
    def failed(self) -> bool:
        return bool(self.breaches)

    def feature(self, name: str) -> FeatureResult:
        return next(r for r in self.features if r.feature.name == name)

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "run_id": self.run_id, "run_ts": self.run_ts.isoformat(), "config": self.config,
            "failed": self.failed, "coverage": self.coverage.as_dict(),
            "breaches": [vars(b) for b in self.breaches],
            "features": [{
                "name": r.feature.name, "kind": r.feature.kind.value, "online_column": r.feature.online,
                "offline_column": r.feature.offline, "verdict": r.verdict.verdict.value, "pattern": r.verdict.pattern,
                "evidence": r.verdict.evidence, "causes": r.verdict.causes,
                "thresholds": r.feature.thresholds.model_dump(exclude_none=True),
                "breaches": [vars(b) for b in r.verdict.breaches], "metrics": r.metrics, "worst_rows": r.worst_rows,
                "histogram": r.histogram, "top_categories": r.top_categories,
            } for r in self.features],
            "approximations": APPROXIMATIONS,
            "hourly": [{**h, "hour": h["hour"].isoformat() if h["hour"] else None} for h in self.hourly],
            "expectations": self.expectations, "paths": self.paths, "timings_s": self.timings,
        })

    def summary(self) -> str:
        """A short human table: feature, verdict, match rate, key evidence."""
        c = self.coverage
        lines = [(f"skew run {self.run_id} ({self.config}): {c.online_rows} logged, {c.offline_rows} offline, "
                 f"{c.matched} matched ({c.matched_by_id} by id, {c.matched_by_keys} by keys + time), "
                 f"{c.online_only} online-only, {c.offline_only} offline-only, "
                 f"{c.duplicate_ids_online}/{c.duplicate_ids_offline} duplicate ids online/offline")]
        rows = [("feature", "kind", "verdict", "match", "evidence")]
        for r in self.features:
            v = r.verdict
            verdict = v.verdict.value + (f" ({v.pattern})" if v.pattern and v.verdict is not Verdict.OK else "")
            rows.append((r.feature.name, r.feature.kind.value, verdict,
                         f"{100 * (r.metrics.get('match_rate') or 0):.2f}%", _short(v.evidence, 110)))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
        if self.expectations is not None:
            s = self.expectations["suites"]
            lines.append("expectations: " + ", ".join(
                f"{n} {'passed' if r['success'] else 'FAILED'} ({r['successful']}/{r['evaluated']})" for n, r in s.items()))
        if self.coverage_breach:
            b = self.coverage_breach
            lines.append(f"coverage: {b.metric} {b.value:.4g} below {b.limit:.4g}")
        return "\n".join(lines)


def metric_rows(report: SkewReport) -> list[tuple[Any, ...]]:
    """Every metric of the run as rows of ``METRICS_SCHEMA``."""
    base = (report.run_id, report.run_ts, report.config)
    rows: list[tuple[Any, ...]] = []
    for k, v in report.coverage.as_dict().items():
        fired = report.coverage_breach is not None and report.coverage_breach.metric == k
        rows.append((*base, "*", None, "coverage", None, k, _num(v),
                     report.coverage_breach.limit if fired else None, fired, None))
    for r in report.features:
        lim = limits(r.feature.thresholds)
        fired = {b.metric for b in r.verdict.breaches}
        for k, v in sorted(r.metrics.items()):
            rows.append((*base, r.feature.name, r.feature.kind.value, "overall", None, k, _num(v),
                         lim[k][0] if k in lim else None, k in fired, r.verdict.verdict.value))
    kinds = {r.feature.name: r.feature.kind.value for r in report.features}
    for h in report.hourly:
        rows.append((*base, h["feature"], kinds.get(h["feature"]), "hour", h["hour"], h["metric"], _num(h["value"]),
                     None, False, None))
    return rows


def append_metrics(spark: SparkSession, report: SkewReport, path: str) -> int:
    """Append the run's metrics to the Delta table at ``path`` (one commit); returns the row count."""
    rows = metric_rows(report)
    (local_frame(spark, rows, METRICS_SCHEMA).write.format("delta").mode("append")
     .option("userMetadata", json.dumps({"skew_run": report.run_id})).save(path))
    return len(rows)


def write_json(report: SkewReport, folder: str | Path) -> str:
    return write_text(location(folder) / "report.json", json.dumps(report.to_dict(), indent=2, default=str))


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _num(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else x


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, FeatureKind | Verdict):
        return v.value
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    return v
