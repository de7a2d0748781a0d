"""Why a value differs: was it an *earlier version* of the feature? (the staleness search)

For each mismatched row (both sides present, values differ) of a feature that comes from a
feature table, the search looks through that key's history in the table (the non-null values
with ``ts <= request time`` and within ``max_lag``) for the newest version equal to the served
value (same tolerance as the metrics). A hit means the online system served version ``v``
(written at ``ts_v``, superseded at ``ts_next``), so it lagged the offline store by at least
``request_ts - ts_next`` and at most ``request_ts - ts_v``.

Reported per feature (hours): ``stale_rows``, ``stale_rate`` (of matched rows),
``stale_share`` (of value mismatches), the lower/upper lag bounds' quantiles, and a consensus
interval ``[lag_low_h, lag_high_h]`` = [99th percentile of the lower bounds, 1st percentile of
the upper bounds]: for a constant serving lag L every row's interval contains L, so this
interval narrows onto L as rows accumulate (and is robust to 1% of ambiguous rows whose value
recurs in the history).

Only mismatched rows take part (a semi-bounded range join per key), so the cost follows the
number of mismatches, not the size of the log.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fstore_batch.validation import compare as C
from fstore_batch.validation.config import FeatureKind
from fstore_batch.validation.features import Feature
from fstore_batch.validation.match import MATCHED

US_PER_HOUR = 3_600_000_000


def stale_metrics(table: DataFrame, f: Feature, history: DataFrame, *, max_lag: timedelta,
                  n_matched: int, n_value_mismatch: int, ts: str = "event_ts") -> dict[str, float | None]:
    """Staleness figures of feature ``f`` against its feature table ``history``."""
    src = f.source
    if src is None or f.kind is FeatureKind.SEQUENCE:
        return {}
    a, b = F.col(f.on), F.col(f.off)
    mism = (table.where((F.col("_status") == MATCHED) & a.isNotNull() & b.isNotNull()
                        & ~C.values_match(f.kind, a, b, f.tolerance))
            .select("request_id", "_ts", *[F.col(k) for k in src.keys], a.alias("__v_on")))
    label_keys = list(src.keys)
    key_types = {k: table.schema[k].dataType for k in label_keys}
    hist = history.where(F.col(src.column).isNotNull() & F.col(ts).isNotNull())
    for col in src.keys.values():
        hist = hist.where(F.col(col).isNotNull())
    hist = hist.select(*[F.col(src.keys[k]).cast(key_types[k]).alias(f"__h_{k}") for k in label_keys],
                       F.col(ts).alias("__vts"), F.col(src.column).alias("__v"))
    by_key = Window.partitionBy(*[f"__h_{k}" for k in label_keys]).orderBy("__vts")
    hist = hist.withColumn("__next", F.lead("__vts").over(by_key))
    cond = F.lit(True)
    for k in label_keys:
        cond = cond & (F.col(k) == F.col(f"__h_{k}"))
    lag_us = F.unix_micros(F.col("_ts")) - F.unix_micros(F.col("__vts"))
    cond = cond & (lag_us >= 0) & (lag_us <= F.lit(int(max_lag.total_seconds() * 1e6)))
    cand = mism.join(hist, cond & C.values_match(f.kind, F.col("__v_on"), F.col("__v"), f.tolerance), "inner")
    best = cand.groupBy("request_id").agg(
        F.max_by(F.struct("__vts", "__next", "_ts"), F.col("__vts")).alias("b")).select("b.*")
    ts_us = F.unix_micros(F.col("_ts"))
    hi = (ts_us - F.unix_micros(F.col("__vts"))) / US_PER_HOUR
    nxt = F.unix_micros(F.col("__next"))
    lo = F.when(F.col("__next").isNull() | (nxt > ts_us), F.lit(0.0)).otherwise((ts_us - nxt) / US_PER_HOUR)
    row = best.agg(F.count(F.lit(1)).alias("n"),
                   F.percentile_approx(lo, [0.5, 0.99], 10_000).alias("lo"),
                   F.percentile_approx(hi, [0.01, 0.5], 10_000).alias("hi"),
                   F.max(lo).alias("lo_max"), F.min(hi).alias("hi_min")).first()
    n = int(row.n or 0)
    out: dict[str, float | None] = {
        "stale_rows": float(n),
        "stale_rate": n / n_matched if n_matched else 0.0,
        "stale_share": n / n_value_mismatch if n_value_mismatch else 0.0,
    }
    if n:
        out.update({"lag_lower_p50_h": float(row.lo[0]), "lag_upper_p50_h": float(row.hi[1]),
                    "lag_low_h": float(row.lo[1]), "lag_high_h": float(row.hi[0]),
                    "lag_lower_max_h": float(row.lo_max), "lag_upper_min_h": float(row.hi_min)})
        out["lag_consistent"] = 1.0 if out["lag_low_h"] <= out["lag_high_h"] else 0.0  # type: ignore[operator]
    return out
