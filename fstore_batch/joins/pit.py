"""Exact point-in-time joins: one shuffle per entity key, one sorted pass, no row fan-out.

For each group of feature tables that share the labels' entity key, the labels and every
feature row of those tables are unioned into one narrow DataFrame (label columns packed into one
struct), partitioned by the key and ordered by a single packed long, ``time * 2 + kind`` (feature
rows sort before labels at the same instant), then by the tie-breakers. One window pass with a
running frame carries, per feature, the last non-null value (and its time, when a TTL applies)
forward to the label rows. Label rows come out once each, unchanged; feature rows are consumed.

This never materialises label x feature pairs (the range join + ``row_number`` of Feast), and
all features of a key group share the same shuffle, sort and pass.

Semantics, exactly:

* a label at time ``t`` gets, per feature ``f`` of source ``s``, the value of ``f`` in the row of
  ``s`` with the same key, ``f`` not null, and ``ts <= t`` (``ts < t`` when ``s.strict``) that sorts
  last by (``ts``, ``tie_breaker``, hash of the row's features); null when there is none or when
  ``t - ts > s.ttl``;
* labels with a null key or time get null features (they are kept, never dropped).

Hot keys: with ``time_bucket`` set, rows are partitioned by (key, time bucket) instead of by key,
so a key with millions of rows is spread over many tasks. Each bucket first gets one synthetic
"carry" row holding, per feature, the last value (and its time) from the key's earlier buckets,
computed by a small aggregation over (key, bucket) and a running window over a key's buckets.
The result is identical; the cost is a second, partially aggregated pass over the union.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import JoinError, SchemaError
from fstore_batch.joins.spec import FeatureSource, check_key_types

ORDER, TB, TB2, PAYLOAD, BUCKET = "__o", "__tb", "__tb2", "__p", "__b"


def point_in_time_join(labels: DataFrame, sources: list[FeatureSource], *, label_ts: str = "label_ts",
                       partitions: int | None = None, time_bucket: timedelta | None = None) -> DataFrame:
    """Join every source's features onto ``labels`` as of each label's ``label_ts``.

    ``time_bucket`` (e.g. one day) splits each key's rows into time buckets processed as separate
    tasks: use it when a few keys hold a large share of the rows (Zipf-skewed users).

    >>> out = point_in_time_join(labels, [FeatureSource("profile", profile_df, {"user_id": "user_id"},
    ...                                                  ["age", "country"])])  # doctest: +SKIP
    """
    _check_labels(labels, sources, label_ts)
    groups: dict[tuple[str, ...], list[FeatureSource]] = {}
    for s in sources:
        groups.setdefault(s.key_group, []).append(s)
    out = labels
    for keys, group in groups.items():
        out = _join_group(out, list(keys), group, label_ts, partitions, time_bucket)
    return out


def _check_labels(labels: DataFrame, sources: list[FeatureSource], label_ts: str) -> None:
    if not sources:
        raise JoinError("no feature tables to join")
    if label_ts not in labels.columns:
        raise SchemaError("labels", label_ts, "the label time column (a timestamp)")
    kind = labels.schema[label_ts].dataType.typeName()
    if kind != "timestamp":
        raise SchemaError("labels", label_ts, "a timestamp with time zone (TIMESTAMP)", kind)
    seen = set(labels.columns)
    for s in sources:
        for key in s.keys:
            if key not in labels.columns:
                raise SchemaError("labels", key, f"a key column for feature table '{s.name}'")
        check_key_types(labels, s.df, s.keys, f"feature table '{s.name}'")
        for name in s.output:
            if name in seen:
                raise JoinError(f"feature '{name}' of table '{s.name}' clashes with another column; "
                                "give the source a prefix")
            seen.add(name)


def _join_group(labels: DataFrame, keys: list[str], sources: list[FeatureSource], label_ts: str,
                partitions: int | None, time_bucket: timedelta | None) -> DataFrame:
    key_cols = [f"__k_{k}" for k in keys]
    key_types = {k: labels.schema[k].dataType for k in keys}
    payload_type = T.StructType([labels.schema[c] for c in labels.columns])
    # Per output feature: (source index, source column, output name, data type, needs its time).
    feats = [(i, f, out, s.df.schema[f].dataType, s.ttl is not None)
             for i, s in enumerate(sources) for f, out in zip(s.features, s.output)]

    def feature_columns(source: int | None, ts: Column | None) -> list[Column]:
        cols = []
        for i, f, out, dtype, timed in feats:
            mine = source == i
            cols.append((F.col(f) if mine else F.lit(None).cast(dtype)).alias(out))
            if timed:
                cols.append((F.when(F.col(f).isNotNull(), ts) if mine else F.lit(None).cast("long")).alias(f"__t_{out}"))
        return cols

    label_rows = labels.select(
        *[F.col(k).alias(c) for k, c in zip(keys, key_cols)],
        (F.unix_micros(F.col(label_ts)) * 2 + 1).alias(ORDER),
        F.lit(None).cast("long").alias(TB), F.lit(None).cast("long").alias(TB2),
        F.struct(*[F.col(c) for c in labels.columns]).alias(PAYLOAD),
        *feature_columns(None, None))
    unified = label_rows
    for i, s in enumerate(sources):
        ts = F.unix_micros(F.col(s.ts))
        tb = F.col(s.tie_breaker) if s.tie_breaker else F.lit(None)
        if s.tie_breaker and s.df.schema[s.tie_breaker].dataType.typeName() == "timestamp":
            tb = F.unix_micros(tb)
        not_null_keys = [F.col(s.keys[k]).isNotNull() for k in keys]
        rows = s.df.where(F.col(s.ts).isNotNull() & all_of(not_null_keys)).select(
            *[F.col(s.keys[k]).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
            ((ts + (1 if s.strict else 0)) * 2).alias(ORDER),
            tb.cast("long").alias(TB),
            # Without a tie-breaker, equal-time rows are ordered by a hash of their values.
            (F.lit(None) if s.tie_breaker else F.xxhash64(*[F.col(f) for f in s.features])).cast("long").alias(TB2),
            F.lit(None).cast(payload_type).alias(PAYLOAD),
            *feature_columns(i, ts))
        unified = unified.unionByName(rows)

    part_cols = key_cols
    if time_bucket is not None:
        unified = _with_carry_rows(unified, key_cols, feats, time_bucket)
        part_cols = [*key_cols, BUCKET]
    if partitions:
        unified = unified.repartition(partitions, *part_cols)
    order = [ORDER, TB] + ([TB2] if any(s.tie_breaker is None for s in sources) else [])
    w = (Window.partitionBy(*part_cols).orderBy(*order)
         .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    label_us = (F.col(ORDER) - 1) / 2
    filled = []
    for i, _, out, _, timed in feats:
        value = F.last(out, ignorenulls=True).over(w)
        if timed:
            ttl_us = sources[i].ttl.total_seconds() * 1e6  # type: ignore[union-attr]
            value = F.when(label_us - F.last(f"__t_{out}", ignorenulls=True).over(w) <= F.lit(ttl_us), value)
        filled.append(value.alias(out))
    return (unified.select(ORDER, PAYLOAD, *filled)
            .where((F.col(ORDER) % 2 == 1) | F.col(ORDER).isNull() & F.col(PAYLOAD).isNotNull())
            .select(f"{PAYLOAD}.*", *[out for _, _, out, _, _ in feats]))


def _with_carry_rows(unified: DataFrame, key_cols: list[str], feats: list[tuple], bucket: timedelta) -> DataFrame:
    """Add a bucket column, and per (key, bucket) one carry row with the last values of earlier buckets.

    The carry row sorts first in its bucket (an even ``ORDER`` below every row of the bucket), so the
    per-(key, bucket) window sees exactly what the per-key window would have seen before the bucket.
    """
    width = int(bucket.total_seconds() * 1_000_000) * 2  # in ORDER units (time * 2 + kind)
    if width <= 0:
        raise JoinError(f"time_bucket must be positive, got {bucket}")
    unified = unified.withColumn(BUCKET, F.expr(f"({ORDER} - pmod({ORDER}, {width})) div {width}"))
    sort_key = F.struct(ORDER, TB, TB2)
    # Per (key, bucket) and feature: the value (and time) that sorts last in the bucket; label rows
    # take part with null features, so every bucket holding a label gets a row here.
    last_in_bucket = unified.groupBy(*key_cols, BUCKET).agg(*[
        F.max_by(F.struct(F.col(out).alias("v"), (F.col(f"__t_{out}") if timed else F.lit(None).cast("long")).alias("t")),
                 F.when(F.col(out).isNotNull(), sort_key)).alias(out)
        for _, _, out, _, timed in feats])
    before = Window.partitionBy(*key_cols).orderBy(BUCKET).rowsBetween(Window.unboundedPreceding, -1)
    carried = last_in_bucket.select(*key_cols, BUCKET, *[F.last(out, ignorenulls=True).over(before).alias(out)
                                                          for _, _, out, _, _ in feats])
    cols = []
    for _, _, out, _, timed in feats:
        cols.append(F.col(f"{out}.v").alias(out))
        if timed:
            cols.append(F.col(f"{out}.t").alias(f"__t_{out}"))
    carry_rows = (carried.where(~all_of([F.col(out).isNull() for _, _, out, _, _ in feats]))
                  .select(*key_cols, (F.col(BUCKET) * width - 2).alias(ORDER), F.lit(None).cast("long").alias(TB),
                          F.lit(None).cast("long").alias(TB2), F.lit(None).cast(unified.schema[PAYLOAD].dataType).alias(PAYLOAD),
                          *cols, BUCKET))
    return unified.unionByName(carry_rows)


def all_of(conditions: list[Column]) -> Column:
    """The conjunction of ``conditions`` (true for none)."""
    out = F.lit(True)
    for c in conditions:
        out = out & c
    return out
