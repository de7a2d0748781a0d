"""Why a value differs: was it an *earlier version* of the feature? (the staleness search)

Scalar features: for each mismatched row (both sides present, values differ) of a feature that
comes from a feature table, the search looks through that key's history in the table (the
non-null values with ``ts <= request time`` and within ``max_lag``) for the newest version equal
to the served value (same tolerance as the metrics). A hit means the online system served
version ``v`` (written at ``ts_v``, superseded at ``ts_next``), so it lagged the offline store by
at least ``request_ts - ts_next`` and at most ``request_ts - ts_v``.

Sequence features (last-N events, newest first): the key's sequence as it stood after each of
its events (the event and the ``n - 1`` before it, in the builder's order: time, tie-breaker,
hash). A mismatched non-empty served sequence is stale when it equals the first elements of
the sequence after some event ``e`` and it stopped being the key's sequence before the request:
it was the sequence at the times ``t`` in ``(ts_e, ts_e']`` (``e'`` the next event), narrowed by
``max_age`` to while its oldest event had not aged out (and, when fewer than ``n`` were served,
after the one before them had). With that interval ``(lo, hi]`` ending before the request, the
system lagged by at least ``request_ts - hi`` and at most ``request_ts - lo``. A sequence cut
short at the newest event (truncation) is not stale.

Reported per feature (hours): ``stale_rows``, ``stale_rate`` (of matched rows),
``stale_share`` (of value mismatches), the lower/upper lag bounds' quantiles, and a consensus
interval ``[lag_low_h, lag_high_h]`` = [99th percentile of the lower bounds, 1st percentile of
the upper bounds]: for a constant serving lag L every row's interval contains L, so this
interval narrows onto L as rows accumulate (and is robust to 1% of ambiguous rows whose value
recurs in the history).

Only mismatched rows take part (a range join per key; for sequences an equi-join on key and
newest element, over the events of the keys with mismatches), so the cost follows the number of
mismatches, not the size of the log.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.validation import compare as C
from fstore_batch.validation.config import FeatureKind
from fstore_batch.validation.features import Feature, FeatureSourceRef
from fstore_batch.validation.match import MATCHED

US_PER_HOUR = 3_600_000_000


def stale_metrics(table: DataFrame, f: Feature, history: DataFrame, *, max_lag: timedelta,
                  n_matched: int, n_value_mismatch: int, ts: str = "event_ts") -> dict[str, float | None]:
    """Staleness figures of feature ``f`` against its feature (or event) table ``history``."""
    src = f.source
    if src is None:
        return {}
    a, b = F.col(f.on), F.col(f.off)
    mism = table.where((F.col("_status") == MATCHED) & a.isNotNull() & b.isNotNull()
                       & ~F.expr(C.values_match(f.kind, C.ident(f.on), C.ident(f.off), f.tolerance)))
    if f.kind is FeatureKind.SEQUENCE:
        best = _sequence_candidates(mism, f, src, history, max_lag=max_lag, ts=src.ts or ts)
    else:
        best = _scalar_candidates(mism, f, src, history, max_lag=max_lag, ts=ts)
    return _lag_figures(best, n_matched, n_value_mismatch)


def _scalar_candidates(mism: DataFrame, f: Feature, src: FeatureSourceRef, history: DataFrame, *,
                       max_lag: timedelta, ts: str) -> DataFrame:
    mism = mism.select("request_id", "_ts", *[F.col(k) for k in src.keys], F.col(f.on).alias("__v_on"))
    label_keys = list(src.keys)
    key_types = {k: mism.schema[k].dataType for k in label_keys}
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
    cand = mism.join(hist, cond & F.expr(C.values_match(f.kind, "__v_on", "__v", f.tolerance)), "inner")
    return cand.groupBy("request_id").agg(
        F.max_by(F.struct("__vts", "__next", "_ts"), F.col("__vts")).alias("b")).select("b.*")


def _sequence_candidates(mism: DataFrame, f: Feature, src: FeatureSourceRef, events: DataFrame, *,
                         max_lag: timedelta, ts: str) -> DataFrame:
    n = src.n or 1
    label_keys = list(src.keys)
    elem = events.schema[src.column].dataType
    mism = mism.where(F.size(F.col(f.on)) > 0).select(
        "request_id", "_ts", *[F.col(k) for k in label_keys], F.col(f.on).cast(T.ArrayType(elem)).alias("__s"))
    mism = mism.withColumn("__head", F.col("__s")[0])
    key_types = {k: mism.schema[k].dataType for k in label_keys}
    hkeys = [f"__h_{k}" for k in label_keys]
    ev = events.where(F.col(ts).isNotNull())
    for col in src.keys.values():
        ev = ev.where(F.col(col).isNotNull())
    cols = list(src.columns or (src.column,))
    ev = ev.select(*[F.col(src.keys[k]).cast(key_types[k]).alias(h) for k, h in zip(label_keys, hkeys)],
                   F.col(ts).alias("__vts"),
                   (F.col(src.tie_breaker) if src.tie_breaker else F.lit(None)).alias("__tb"),
                   F.xxhash64(*[F.col(c) for c in cols]).alias("__hash"), F.col(src.column).alias("__v"))
    wanted = mism.select(*[F.col(k).alias(h) for k, h in zip(label_keys, hkeys)]).distinct()
    ev = ev.join(wanted, hkeys, "left_semi")  # only the keys with a mismatch
    order = Window.partitionBy(*hkeys).orderBy("__vts", F.asc_nulls_first("__tb"), "__hash", "__v")
    frame = order.rowsBetween(-(n - 1), Window.currentRow)
    ev = (ev.withColumn("__seq", F.reverse(F.flatten(F.collect_list(F.array("__v")).over(frame))))
          .withColumn("__tseq", F.reverse(F.collect_list(F.unix_micros("__vts")).over(frame)))
          .withColumn("__next", F.lead("__vts").over(order)))
    # The sequence "after e" exists only after the last of the events at e's time.
    ev = ev.where(F.col("__next").isNull() | (F.col("__next") > F.col("__vts")))
    cond = F.col("__head") == F.col("__seq")[0]
    for k, h in zip(label_keys, hkeys):
        cond = cond & (F.col(k) == F.col(h))
    cond = cond & (F.slice(F.col("__seq"), 1, F.size(F.col("__s"))) == F.col("__s"))
    # The times t whose sequence is the served one: after e (and after the event before the served
    # ones aged out, when fewer than n were served), up to the next event (and until the oldest
    # served one ages out).
    size_s, ts_us = F.size(F.col("__s")), F.unix_micros(F.col("_ts"))
    lo_us, hi_us = F.unix_micros(F.col("__vts")), F.unix_micros(F.col("__next"))
    if src.ttl is not None:
        age = F.lit(src.ttl // timedelta(microseconds=1))
        before = F.when((size_s < n) & (F.size(F.col("__tseq")) > size_s), F.try_element_at(F.col("__tseq"), (size_s + 1).cast("int")))
        lo_us = F.greatest(lo_us, before + age)
        hi_us = F.least(hi_us, F.try_element_at(F.col("__tseq"), size_s) + age)
    cand = mism.join(ev, cond, "inner").select("request_id", "_ts", lo_us.alias("__lo"), hi_us.alias("__hi"))
    lag_us = ts_us - F.col("__lo")
    cand = cand.where(F.col("__hi").isNotNull() & (F.col("__hi") < ts_us) & (lag_us > 0)
                      & (lag_us <= F.lit(int(max_lag.total_seconds() * 1e6))))
    cand = cand.select("request_id", "_ts", F.timestamp_micros("__lo").alias("__vts"),
                       F.timestamp_micros("__hi").alias("__next"))
    return cand.groupBy("request_id").agg(
        F.max_by(F.struct("__vts", "__next", "_ts"), F.col("__vts")).alias("b")).select("b.*")


def _lag_figures(best: DataFrame, n_matched: int, n_value_mismatch: int) -> dict[str, float | None]:
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
