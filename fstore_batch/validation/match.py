"""Match logged requests with training rows: by request id, then (fallback) by entity keys + time.

The result is the *skew table*: one row per matched pair and one per unmatched row of either
side, with ``_status`` (``matched`` / ``online_only`` / ``offline_only``), ``_by`` (``id`` /
``keys``), the request time ``_ts``, the key columns, and per feature ``on__<name>`` and
``off__<name>``. Duplicate request ids are counted (``_n_on``, ``_n_off``) and collapsed to one
row per id (the earliest request; ties broken by the row's values), so a duplicate never
multiplies the other side. Integer keys of different widths are compared (and output) in the
wider type, so a key beyond the narrower type never wraps into a false match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.joins.spec import key_type
from fstore_batch.validation.features import Feature

MATCHED, ONLINE_ONLY, OFFLINE_ONLY = "matched", "online_only", "offline_only"


@dataclass(frozen=True)
class Sides:
    """Column names of one request on each side."""

    request_id: str | None
    online_ts: str
    offline_ts: str
    keys: list[str]


@dataclass(frozen=True)
class Coverage:
    online_rows: int
    offline_rows: int
    matched: int
    matched_by_id: int
    matched_by_keys: int
    online_only: int
    offline_only: int
    duplicate_ids_online: int
    duplicate_ids_offline: int
    key_mismatch: int
    sample_rate: float = 1.0

    @property
    def online_match_rate(self) -> float:
        return self.matched / self.online_rows if self.online_rows else 0.0

    @property
    def offline_match_rate(self) -> float:
        return self.matched / self.offline_rows if self.offline_rows else 0.0

    def as_dict(self) -> dict[str, float]:
        """The counts, both match rates, and the offline match rate sampling leads to expect."""
        return {**asdict(self), "online_match_rate": self.online_match_rate,
                "offline_match_rate": self.offline_match_rate, "expected_offline_match_rate": self.sample_rate}


def match_rows(log: DataFrame, offline: DataFrame, sides: Sides, features: list[Feature], *,
               fallback: bool = True, time_tolerance: timedelta = timedelta(seconds=1),
               storage: StorageLevel = StorageLevel.MEMORY_AND_DISK) -> DataFrame:
    """The skew table of ``log`` (online) against ``offline`` (training rows), persisted at ``storage``.

    The caller unpersists it. The request-id join is materialised once; the fallback (keys +
    time) runs only when both sides have rows left over by it.
    """
    on = log.select(*_side_cols(sides.request_id, sides.online_ts, sides.keys, "on"),
                    *[F.col(f.online).alias(f.on) for f in features])
    off = offline.select(*_side_cols(sides.request_id, sides.offline_ts, sides.keys, "off"),
                         *[F.col(f.offline).alias(f.off) for f in features])
    on_cols, off_cols = list(on.columns), list(off.columns)
    on_types = {**{f.name: f.dataType for f in on.schema.fields}, "_n_on": "bigint"}
    off_types = {**{f.name: f.dataType for f in off.schema.fields}, "_n_off": "bigint"}
    if sides.request_id is None:
        first = _pad(on.withColumn("_n_on", F.lit(1).cast("bigint")), off_types).unionByName(
            _pad(off.withColumn("_n_off", F.lit(1).cast("bigint")), on_types))
    else:
        first = _dedupe(on, "on").join(_dedupe(off, "off"), F.col("_rid_on") == F.col("_rid_off"), "full_outer")
        null_on = on.where(F.col("_rid_on").isNull()).withColumn("_n_on", F.lit(1).cast("bigint"))
        null_off = off.where(F.col("_rid_off").isNull()).withColumn("_n_off", F.lit(1).cast("bigint"))
        first = first.unionByName(_pad(null_on, off_types)).unionByName(_pad(null_off, on_types))
    status = (F.when(F.col("_uid_on").isNotNull() & F.col("_uid_off").isNotNull(), F.lit(MATCHED))
              .when(F.col("_uid_on").isNotNull(), F.lit(ONLINE_ONLY)).otherwise(F.lit(OFFLINE_ONLY)))
    by = F.when(status == MATCHED, F.lit("id"))
    table = _finish(first, sides, features, status, by).persist(storage)
    if not fallback:
        return table
    left = table.where(F.col("_status") != MATCHED).groupBy("_status").count().collect()
    counts = {r["_status"]: r["count"] for r in left}
    if not counts.get(ONLINE_ONLY) or not counts.get(OFFLINE_ONLY):
        return table
    # The skew table keeps the offline side's id and time as they are and the online side's as
    # `request_id` / `_ts` (for an online-only row, its own): take them back under their side names.
    from_table = {"_rid_on": "request_id", "_ts_on": "_ts", "_rid_off": "offline_request_id"}
    left_on = table.where(F.col("_status") == ONLINE_ONLY).select(
        *[F.col(from_table.get(c, c)).alias(c) for c in on_cols], "_n_on")
    left_off = table.where(F.col("_status") == OFFLINE_ONLY).select(
        *[F.col(from_table.get(c, c)).alias(c) for c in off_cols], "_n_off")
    pairs = _nearest_pairs(left_on, left_off, sides.keys, time_tolerance)
    parts = [table.where(F.col("_status") == MATCHED),
             _finish(pairs, sides, features, F.lit(MATCHED), F.lit("keys")),
             _finish(_pad(left_on.join(pairs.select("_uid_on"), "_uid_on", "left_anti"), off_types),
                     sides, features, F.lit(ONLINE_ONLY), F.lit(None)),
             _finish(_pad(left_off.join(pairs.select("_uid_off"), "_uid_off", "left_anti"), on_types),
                     sides, features, F.lit(OFFLINE_ONLY), F.lit(None))]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    out = out.persist(storage)
    out.count()
    table.unpersist()
    return out


def coverage(table: DataFrame, sides: Sides, *, sample_rate: float = 1.0) -> Coverage:
    """Counts from the skew table (one pass). ``sample_rate``: the fraction of requests the log keeps."""
    st = F.col("_status")
    key_diff = [F.col(f"_kon_{k}").cast("string") != F.col(f"_koff_{k}").cast("string") for k in sides.keys]
    any_diff = key_diff[0]
    for d in key_diff[1:]:
        any_diff = any_diff | d
    row = table.agg(
        F.sum(F.when(st != OFFLINE_ONLY, F.col("_n_on")).otherwise(0)).alias("online_rows"),
        F.sum(F.when(st != ONLINE_ONLY, F.col("_n_off")).otherwise(0)).alias("offline_rows"),
        F.count(F.when(st == MATCHED, 1)).alias("matched"),
        F.count(F.when((st == MATCHED) & (F.col("_by") == "id"), 1)).alias("matched_by_id"),
        F.count(F.when((st == MATCHED) & (F.col("_by") == "keys"), 1)).alias("matched_by_keys"),
        F.count(F.when(st == ONLINE_ONLY, 1)).alias("online_only"),
        F.count(F.when(st == OFFLINE_ONLY, 1)).alias("offline_only"),
        F.count(F.when(F.col("_n_on") > 1, 1)).alias("duplicate_ids_online"),
        F.count(F.when(F.col("_n_off") > 1, 1)).alias("duplicate_ids_offline"),
        F.count(F.when((st == MATCHED) & F.coalesce(any_diff, F.lit(False)), 1)).alias("key_mismatch"),
    ).first()
    return Coverage(**{k: int(v or 0) for k, v in row.asDict().items()}, sample_rate=sample_rate)


def _side_cols(rid: str | None, ts: str, keys: list[str], side: str) -> list[Column]:
    cols = [(F.col(rid).cast("string") if rid else F.lit(None).cast("string")).alias(f"_rid_{side}"),
            F.col(ts).alias(f"_ts_{side}")]
    cols += [F.col(k).alias(f"_k{side}_{k}") for k in keys]
    # A stable identity for an unmatched row (the fallback matching pairs rows by it).
    cols.append(F.xxhash64(*([F.col(rid)] if rid else []), F.col(ts), *[F.col(k) for k in keys]).alias(f"_uid_{side}"))
    return cols


def _dedupe(df: DataFrame, side: str) -> DataFrame:
    """One row per request id, the earliest (then the smallest identity), with the id's row count."""
    rid = f"_rid_{side}"
    order = F.struct(F.col(f"_ts_{side}"), F.col(f"_uid_{side}"))
    payload = F.struct(*[F.col(c) for c in df.columns if c != rid])
    grouped = (df.where(F.col(rid).isNotNull()).groupBy(rid)
               .agg(F.count(F.lit(1)).alias(f"_n_{side}"), F.min_by(payload, order).alias("__p")))
    return grouped.select(rid, f"_n_{side}", "__p.*")


def _nearest_pairs(on: DataFrame, off: DataFrame, keys: list[str], tol: timedelta) -> DataFrame:
    """Mutually nearest (online, offline) rows with equal keys and ``|dt| <= tol``."""
    cond = F.lit(True)
    for k in keys:
        wide = key_type(on.schema[f"_kon_{k}"].dataType, off.schema[f"_koff_{k}"].dataType)
        cond = cond & (F.col(f"_kon_{k}").cast(wide) == F.col(f"_koff_{k}").cast(wide))
    dt = F.abs(F.unix_micros(F.col("_ts_on")) - F.unix_micros(F.col("_ts_off")))
    cand = on.join(off, cond & (dt <= F.lit(int(tol.total_seconds() * 1e6))), "inner").withColumn("__dt", dt)
    best_on = Window.partitionBy("_uid_on").orderBy("__dt", "_uid_off")
    best_off = Window.partitionBy("_uid_off").orderBy("__dt", "_uid_on")
    return (cand.withColumn("__r1", F.row_number().over(best_on)).where("__r1 = 1")
            .withColumn("__r2", F.row_number().over(best_off)).where("__r2 = 1")
            .drop("__dt", "__r1", "__r2"))


def _pad(df: DataFrame, types: dict[str, T.DataType | str]) -> DataFrame:
    return df.select("*", *[F.lit(None).cast(t).alias(c) for c, t in types.items() if c not in df.columns])


def _finish(df: DataFrame, sides: Sides, features: list[Feature], status: Column, by: Column) -> DataFrame:
    keys = []
    for k in sides.keys:  # in the wider integer type of the two sides: never narrowed
        wide = key_type(df.schema[f"_kon_{k}"].dataType, df.schema[f"_koff_{k}"].dataType)
        keys.append(F.coalesce(F.col(f"_kon_{k}").cast(wide), F.col(f"_koff_{k}").cast(wide)).alias(k))
    return df.select(
        F.coalesce(F.col("_rid_on"), F.col("_rid_off")).alias("request_id"),
        F.col("_rid_off").alias("offline_request_id"),
        F.coalesce(F.col("_ts_on"), F.col("_ts_off")).alias("_ts"),
        F.col("_ts_off"), *keys,
        *[F.col(f"_kon_{k}") for k in sides.keys], *[F.col(f"_koff_{k}") for k in sides.keys],
        status.alias("_status"), by.cast("string").alias("_by"),
        F.coalesce(F.col("_n_on"), F.lit(0)).alias("_n_on"), F.coalesce(F.col("_n_off"), F.lit(0)).alias("_n_off"),
        F.col("_uid_on"), F.col("_uid_off"),
        *[F.col(f.on) for f in features], *[F.col(f.off) for f in features])


