"""Exact point-in-time joins: one shuffle per entity key, one sorted pass, no row fan-out.

For each group of feature tables that share the labels' entity key, the labels and every
feature row of those tables are unioned into one narrow DataFrame (label columns packed into one
struct), partitioned by the key (compared in the widest integer type of either side) and ordered
by time in microseconds, then the row kind (feature rows sort before labels at the same instant,
rows of strict sources after them), then the tie-breakers. One window pass with a
running frame carries, per feature, the last non-null value (and its time, when a TTL applies)
forward to the label rows. Label rows come out once each, unchanged; feature rows are consumed.

This never materialises label x feature pairs (the range join + ``row_number`` of Feast), and
all features of a key group share the same shuffle, sort and pass.

Semantics, exactly:

* a label at time ``t`` gets, per feature ``f`` of source ``s``, the value of ``f`` in the row of
  ``s`` with the same key, ``f`` not null, and ``ts <= t`` (``ts < t`` when ``s.strict``) that sorts
  last by (``ts``, ``tie_breaker`` compared natively, a hash of the row's features, the features
  themselves); null when there is none or when ``t - ts > s.ttl``. The input order never decides;
* any timestamp Spark holds works, before 1970 included (times are never packed into one number);
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
from fstore_batch.joins.spec import FeatureSource, check_key_types, is_orderable, key_type

TS, KIND, HASH, PAYLOAD, BUCKET = "__ts", "__kind", "__h", "__p", "__b"
# Row kinds in sort order at one instant: a bucket's carry row, feature rows, labels, rows of strict
# sources (``ts < label_ts``). Time and kind are two sort columns, never packed into one number,
# so every timestamp from 0001-01-01 to 9999-12-31 (before 1970 included) sorts exactly.
CARRY, BEFORE_LABEL, LABEL, AFTER_LABEL = -1, 0, 1, 2
MAX_US = 1 << 62  # TTLs are capped here (longer than years 1..9999), so they fit a long


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
    # Keys are compared in the widest integer type of any side: a cast to the narrower one would
    # overflow (ANSI) or wrap into a false match (non-ANSI).
    key_types = {k: key_type(labels.schema[k].dataType, *[s.df.schema[s.keys[k]].dataType for s in sources])
                 for k in keys}
    payload_type = T.StructType([labels.schema[c] for c in labels.columns])
    # Per output feature: (source index, source column, output name, data type, needs its time).
    feats = [(i, f, out, s.df.schema[f].dataType, s.ttl is not None)
             for i, s in enumerate(sources) for f, out in zip(s.features, s.output)]
    # One native-typed tie-breaker column per source that has one (null on every other row).
    tbs = {i: (f"__tb{i}", s.df.schema[s.tie_breaker].dataType) for i, s in enumerate(sources) if s.tie_breaker}

    def feature_columns(source: int | None, ts: Column | None) -> list[Column]:
        cols = []
        for i, f, out, dtype, timed in feats:
            mine = source == i
            cols.append((F.col(f) if mine else F.lit(None).cast(dtype)).alias(out))
            if timed:
                cols.append((F.when(F.col(f).isNotNull(), ts) if mine else F.lit(None).cast("long")).alias(f"__t_{out}"))
        return cols

    def tie_columns(source: int | None) -> list[Column]:
        return [(F.col(sources[i].tie_breaker) if i == source else F.lit(None)).cast(t).alias(c)  # type: ignore[arg-type]
                for i, (c, t) in tbs.items()]

    label_rows = labels.select(
        *[F.col(k).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
        F.unix_micros(F.col(label_ts)).alias(TS), F.lit(LABEL).cast("tinyint").alias(KIND),
        *tie_columns(None), F.lit(None).cast("long").alias(HASH),
        F.struct(*[F.col(c) for c in labels.columns]).alias(PAYLOAD),
        *feature_columns(None, None))
    unified = label_rows
    for i, s in enumerate(sources):
        ts = F.unix_micros(F.col(s.ts))
        not_null_keys = [F.col(s.keys[k]).isNotNull() for k in keys]
        rows = s.df.where(F.col(s.ts).isNotNull() & all_of(not_null_keys)).select(
            *[F.col(s.keys[k]).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
            ts.alias(TS), F.lit(AFTER_LABEL if s.strict else BEFORE_LABEL).cast("tinyint").alias(KIND),
            *tie_columns(i),
            # Rows still tied after the tie-breaker: by a hash of their feature values, then the values.
            F.xxhash64(*[F.col(f) for f in s.features]).alias(HASH),
            F.lit(None).cast(payload_type).alias(PAYLOAD),
            *feature_columns(i, ts))
        unified = unified.unionByName(rows)

    order = [TS, KIND, *[c for c, _ in tbs.values()], HASH,
             *[out for _, _, out, dtype, _ in feats if is_orderable(dtype)]]
    part_cols = key_cols
    if time_bucket is not None:
        unified = _with_carry_rows(unified, key_cols, feats, order, time_bucket)
        part_cols = [*key_cols, BUCKET]
    if partitions:
        unified = unified.repartition(partitions, *part_cols)
    w = (Window.partitionBy(*part_cols).orderBy(*order)
         .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    filled = []
    for i, _, out, _, timed in feats:
        value = F.last(out, ignorenulls=True).over(w)
        if timed:
            ttl_us = min(sources[i].ttl // timedelta(microseconds=1), MAX_US)  # type: ignore[operator]
            value = F.when(F.col(TS) - F.last(f"__t_{out}", ignorenulls=True).over(w) <= F.lit(ttl_us), value)
        filled.append(F.when(F.col(TS).isNotNull(), value).alias(out))
    return (unified.select(PAYLOAD, *filled)
            .where(F.col(PAYLOAD).isNotNull())  # label rows, and only they, carry a payload
            .select(f"{PAYLOAD}.*", *[out for _, _, out, _, _ in feats]))


def _with_carry_rows(unified: DataFrame, key_cols: list[str], feats: list[tuple], order: list[str],
                     bucket: timedelta) -> DataFrame:
    """Add a bucket column, and per (key, bucket) one carry row with the last values of earlier buckets.

    The carry row sorts first in its bucket (the bucket's first instant, kind ``CARRY`` below every
    other kind), so the per-(key, bucket) window sees exactly what the per-key window would have
    seen before the bucket. Buckets are ``floor(time / width)``, also before 1970.
    """
    width = bucket // timedelta(microseconds=1)
    if width <= 0:
        raise JoinError(f"time_bucket must be positive, got {bucket}")
    unified = unified.withColumn(BUCKET, F.expr(f"({TS} - pmod({TS}, {width}L)) div {width}L"))
    sort_key = F.struct(*order)
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
    others = [F.lit(None).cast(unified.schema[c].dataType).alias(c) for c in unified.columns
              if c not in {*key_cols, TS, KIND, BUCKET} and c not in {out for _, _, out, _, _ in feats}
              and not c.startswith("__t_")]
    carry_rows = (carried.where(~all_of([F.col(out).isNull() for _, _, out, _, _ in feats]))
                  .select(*key_cols, (F.col(BUCKET) * F.lit(width)).alias(TS), F.lit(CARRY).cast("tinyint").alias(KIND),
                          *others, *cols, BUCKET))
    return unified.unionByName(carry_rows)


def all_of(conditions: list[Column]) -> Column:
    """The conjunction of ``conditions`` (true for none)."""
    out = F.lit(True)
    for c in conditions:
        out = out & c
    return out
