"""Exact point-in-time joins: one shuffle per entity key, one sorted pass, no row fan-out.

For each group of feature tables that share the labels' entity key, the labels and every
feature row of those tables are unioned into one narrow DataFrame (label columns packed into one
struct), partitioned by the key (compared in the widest integer type of either side) and ordered
by time in microseconds, then the row kind (feature rows sort before labels at the same instant,
rows of strict sources after them), then the tie-breakers. One window pass with a
running frame carries, per feature, the last non-null value (and its time, when a TTL applies)
forward to the label rows. Label rows come out once each, unchanged; feature rows are consumed.

Before the shuffle, feature rows whose key no label has are dropped by a bloom filter of the
labels' keys (``key_filter``): a daily build's one day of labels shuffles only its keys' history.

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
so a key with millions of rows is spread over many tasks. The window pass gives each label the
last values within its bucket and marks each bucket's last row; then only the labels and one row
per bucket go through a second, small exchange by key, where a running window over the earlier
buckets' last rows supplies what came before the bucket. The result is identical.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import JoinError, SchemaError
from fstore_batch.joins.spec import (
    FeatureSource,
    check_key_types,
    is_orderable,
    key_type,
    unpack_labels,
)

TS, KIND, HASH, PAYLOAD, BUCKET = "__ts", "__kind", "__h", "__p", "__b"
# Row kinds in sort order at one instant: feature rows, labels, rows of strict
# sources (``ts < label_ts``). Time and kind are two sort columns, never packed into one number,
# so every timestamp from 0001-01-01 to 9999-12-31 (before 1970 included) sorts exactly.
BEFORE_LABEL, LABEL, AFTER_LABEL = 0, 1, 2
MAX_US = 1 << 62  # TTLs are capped here (longer than years 1..9999), so they fit a long


def point_in_time_join(labels: DataFrame, sources: list[FeatureSource], *, label_ts: str = "label_ts",
                       partitions: int | None = None, time_bucket: timedelta | None = None) -> DataFrame:
    """Join every source's features onto ``labels`` as of each label's ``label_ts``.

    Returns ``labels`` (every row exactly once, its columns unchanged) plus one column per feature
    (``FeatureSource.output``), typed as in its table. Raises ``SchemaError`` for a missing or
    mistyped label/key/time column and ``JoinError`` for clashing output names.

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
        out = _join_group(out, list(keys), group, label_ts, partitions, time_bucket, bounds=labels)
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
                partitions: int | None, time_bucket: timedelta | None, bounds: DataFrame) -> DataFrame:
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
    label_keys = [F.col(k).cast(key_types[k]) for k in keys]
    known_key = key_filter(bounds, label_keys)
    feature_rows = []
    for i, s in enumerate(sources):
        ts = F.unix_micros(F.col(s.ts))
        not_null_keys = [F.col(s.keys[k]).isNotNull() for k in keys]
        if known_key is not None:
            not_null_keys.append(known_key(F.xxhash64(*[F.col(s.keys[k]).cast(key_types[k]) for k in keys])))
        feature_rows.append(s.df.where(F.col(s.ts).isNotNull() & all_of(not_null_keys)).select(
            *[F.col(s.keys[k]).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
            ts.alias(TS), F.lit(AFTER_LABEL if s.strict else BEFORE_LABEL).cast("tinyint").alias(KIND),
            *tie_columns(i),
            # Rows still tied after the tie-breaker: by a hash of their feature values, then the values.
            F.xxhash64(*[F.col(f) for f in s.features]).alias(HASH),
            F.lit(None).cast(payload_type).alias(PAYLOAD),
            *feature_columns(i, ts)))
    history = reduce(DataFrame.unionByName, feature_rows)
    order = [TS, KIND, *[c for c, _ in tbs.values()], HASH,
             *[out for _, _, out, dtype, _ in feats if is_orderable(dtype)]]
    unified = label_rows.unionByName(history)
    if time_bucket is not None:
        return _join_bucketed(unified, key_cols, feats, order, sources, partitions, time_bucket)
    if partitions:
        unified = unified.repartition(partitions, *key_cols)
    w = (Window.partitionBy(*key_cols).orderBy(*order)
         .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    filled = []
    for i, _, out, _, timed in feats:
        value = F.last(out, ignorenulls=True).over(w)
        if timed:
            value = _within_ttl(F.last(f"__t_{out}", ignorenulls=True).over(w), value, sources[i])
        filled.append(F.when(F.col(TS).isNotNull(), value).alias(out))
    return (unified.select(*key_cols, PAYLOAD, *filled)
            .where(F.col(PAYLOAD).isNotNull())  # label rows, and only they, carry a payload
            .select(*unpack_labels(labels, PAYLOAD, dict(zip(keys, key_cols)), key_types),
                    *[out for _, _, out, _, _ in feats]))


def _within_ttl(ts: Column, value: Column, source: FeatureSource) -> Column:
    """``value`` when the row's time ``TS`` is at most ``source.ttl`` after ``ts``, else null."""
    ttl_us = min(source.ttl // timedelta(microseconds=1), MAX_US)  # type: ignore[operator]
    return F.when(F.col(TS) - ts <= F.lit(ttl_us), value)


def _join_bucketed(unified: DataFrame, key_cols: list[str], feats: list[tuple], order: list[str],
                   sources: list[FeatureSource], partitions: int | None, bucket: timedelta) -> DataFrame:
    """The join's pass per (key, time bucket), so that a hot key's rows are spread over many tasks.

    1. One sorted window pass per (key, bucket) gives each label the last values (and times)
       within its bucket, and marks each bucket's last row, which holds the bucket's last values.
    2. Only the labels and the bucket ends go on, partitioned by key, ordered by bucket with a
       bucket's end after its labels: a running window over the earlier buckets' ends gives each
       label the value from before its bucket.
    3. A label takes its bucket's value, else the earlier buckets' one, then the TTL applies.
    Buckets are ``floor(time / width)``, also before 1970. The rows are the unbucketed join's.
    """
    width = bucket // timedelta(microseconds=1)
    if width <= 0:
        raise JoinError(f"time_bucket must be positive, got {bucket}")
    unified = unified.withColumn(BUCKET, F.expr(f"({TS} - pmod({TS}, {width}L)) div {width}L"))
    part_cols = [*key_cols, BUCKET]
    if partitions:
        unified = unified.repartition(partitions, *part_cols)
    spec = Window.partitionBy(*part_cols).orderBy(*order)
    running = spec.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    values = [(out, f"__t_{out}" if timed else None) for _, _, out, _, timed in feats]
    in_bucket = (unified.select(*part_cols, TS, PAYLOAD, F.lead(F.lit(1)).over(spec).isNull().alias("__end"),
                                *[F.last(c, ignorenulls=True).over(running).alias(c)
                                  for v, t in values for c in (v, t) if c])
                 .where(F.col(PAYLOAD).isNotNull() | F.col("__end")))
    earlier = (Window.partitionBy(*key_cols).orderBy(BUCKET, "__end")
               .rowsBetween(Window.unboundedPreceding, -1))
    filled = []
    for i, (v, t) in enumerate(values):
        before = F.last(F.when(F.col("__end"), F.col(v)), ignorenulls=True).over(earlier)
        value = F.coalesce(F.col(v), before)
        if t:
            time = F.when(F.col(v).isNotNull(), F.col(t)).otherwise(
                F.last(F.when(F.col("__end"), F.col(t)), ignorenulls=True).over(earlier))
            value = _within_ttl(time, value, sources[feats[i][0]])
        filled.append(F.when(F.col(TS).isNotNull(), value).alias(v))
    if partitions:
        in_bucket = in_bucket.repartition(partitions, *key_cols)
    return (in_bucket.select(PAYLOAD, *filled)
            .where(F.col(PAYLOAD).isNotNull())
            .select(f"{PAYLOAD}.*", *[v for v, _ in values]))


def key_filter(labels: DataFrame, keys: list[Column]) -> Callable[[Column], Column] | None:
    """A filter for feature rows that no label can see, as a function of their hashed keys, or ``None``.

    A bloom filter of the labels' keys drops rows whose key no label has (a false positive only
    keeps a useless row, so the result is exact; 8 Mbit, Spark's runtime filter default). It is one
    scalar subquery over the labels, computed once before the join's shuffle: Spark's own runtime
    bloom filters do not fire for a union + window. Spark has no public API for its bloom filter
    expressions, so they are built through the JVM; without one (Spark Connect) there is no filter.
    The labels are read once more for it: cache them when they are expensive to compute.
    """
    try:
        jvm = labels.sparkSession._jvm  # type: ignore[attr-defined]
        exprs = jvm.org.apache.spark.sql.classic.ExpressionUtils
        catalyst = jvm.org.apache.spark.sql.catalyst.expressions
    except Exception:  # noqa: BLE001 - Spark Connect: no JVM on this side
        return None
    agg = catalyst.aggregate.BloomFilterAggregate(exprs.expression(F.xxhash64(*keys)._jc))
    bloom = labels.where(all_of([k.isNotNull() for k in keys])).select(
        Column(exprs.column(agg.toAggregateExpression()))).scalar()  # type: ignore[operator]

    def might_contain(h: Column) -> Column:
        return Column(exprs.column(catalyst.BloomFilterMightContain(exprs.expression(bloom._jc),  # type: ignore[operator]
                                                                    exprs.expression(h._jc))))
    return might_contain


def all_of(conditions: list[Column]) -> Column:
    """The conjunction of ``conditions`` (true for none)."""
    out = F.lit(True)
    for c in conditions:
        out = out & c
    return out
