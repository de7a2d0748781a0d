"""Point-in-time window aggregations: counts, sums, means, min/max and distinct counts of a key's
events in a sliding window ending at each label's time, exact, with no label x event fan-out.

Semantics, exactly (each line is tested against a brute-force oracle):

* a label at time ``t`` aggregates the events of its key with ``t - w <= ts < t`` (``strict``, the
  default: an event at the label's own instant is not seen yet) or ``t - w < ts <= t``
  (``strict=False``). Times are compared as microseconds, for every year 1..9999;
* null values are ignored by every op; events with a null key or time belong to no window;
* an empty window gives 0 for ``count``, ``count_distinct`` and ``approx_count_distinct`` and null
  for ``sum``, ``mean``, ``min`` and ``max``;
* labels with a null key or time come out with every aggregate null (and are counted by the build,
  as in the join); every label row comes out exactly once, its own columns unchanged;
* types: ``count`` and the distinct counts are ``bigint``; ``sum`` of an integer column is
  ``bigint``, of a float column ``double``, of a decimal column Spark's sum type; ``mean`` is
  ``double``; ``min``/``max`` keep the column's type. An integer sum beyond ``bigint`` behaves as
  Spark's ``sum`` does (ANSI mode: an overflow error);
* integer keys of different widths are compared in the wider type (never narrowed), as in the join.

How (no label x event pairs are ever formed):

* ``count``, ``sum``, ``mean``, ``min``, ``max``: each window ``w`` cuts time into tiles of width
  ``w`` (``floor(us / w)``, also before 1970). The window of a label at ``t`` is then exactly the
  tail of tile ``a = tile(t - w)`` from ``t - w`` on, plus the head of tile ``a + 1 = tile(t)`` up
  to ``t`` (``tile(t - w) = tile(t) - 1`` always). Labels and one *probe* row per label and window
  at ``t - w`` are unioned with the events, shuffled once by key; per window, one running
  aggregate over (key, tile) in time order gives each label its head, and one in reverse time order
  gives each probe its tail. Head and tail are merged per label (sum of counts and sums, least /
  greatest). The running frames are O(rows) and their state is one value per op, so memory per
  task is bounded whatever a key's history; a sum never spans more than two tiles (no running
  total over the whole history to overflow or to lose float precision by cancellation). This is the
  tiled design with tiles as wide as the window, where the window's middle is empty and both edge
  tiles are read as running aggregates instead of raw events.
* ``count_distinct`` (exact): an event of value ``v`` at ``ts`` whose previous occurrence of ``v``
  for the key is at ``prev`` is the first occurrence of ``v`` in exactly the windows of the labels
  with ``t`` in ``(max(ts, prev + w), ts + w]`` (``strict=False``: ``[.., ..)``). So each event
  becomes one ``+1`` row and one ``-1`` row, and the count at a label is a running sum over the
  key's rows in time order: memory is one counter per op (never a set of values), cost
  ``2 x events x windows`` rows in the same sort.
* ``approx_count_distinct`` is computed the same way, exactly: its relative error is 0 (it is
  offered so that configs written for sketch-based serving work unchanged; no sketch is needed
  because the exact method already holds no per-key state).

Hot keys: with ``time_bucket`` (as in the join), the tile passes are partitioned by (key,
``floor(us / B)``) with ``B`` the least common multiple of ``time_bucket`` and every window, so a
key's history spreads over many tasks; tiles nest in ``B``, so the result is identical. The
distinct counts keep one running sum per key (not split).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.config.training import AggregationOp
from fstore_batch.errors import JoinError, SchemaError
from fstore_batch.joins.pit import all_of
from fstore_batch.joins.spec import check_key_types, is_orderable, key_type, unpack_labels

TS, KIND, WIN, UID, PAYLOAD, TILE, BUCKET, DELTA = "__ts", "__kind", "__win", "__uid", "__p", "__tile", "__b", "__d"
US = timedelta(microseconds=1)
MAX_WINDOW = timedelta(days=100 * 366)  # keeps t - w and ts + w inside a long for every year 1..9999


Op = AggregationOp  # an aggregation op; its value is its name in configs and output columns

TILED = (Op.COUNT, Op.SUM, Op.MEAN, Op.MIN, Op.MAX)
DISTINCT = (Op.COUNT_DISTINCT, Op.APPROX_COUNT_DISTINCT)
_NUMERIC_OPS = (Op.SUM, Op.MEAN)


def window_name(w: timedelta) -> str:
    """``w`` in the largest whole unit among d, h, m, s: ``1d``, ``36h``, ``90m``, ``45s``.

    >>> window_name(timedelta(days=7)), window_name(timedelta(hours=36)), window_name(timedelta(seconds=90))
    ('7d', '36h', '90s')
    """
    s = w // timedelta(seconds=1)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def events_in_reach(events: DataFrame, ts: str, widest: timedelta, first_us: int, last_us: int) -> DataFrame:
    """The rows of ``events`` that a window of at most ``widest`` ending at a label time in
    ``[first_us, last_us]`` (Unix microseconds) can hold: ``first_us - widest <= ts <= last_us``,
    both bounds inclusive whatever the windows' strictness. The result of :func:`window_aggregates`
    over them is the same as over ``events``.

    The bounds are timestamp literals compared with the ``ts`` column itself (not with a function
    of it), so Delta's file statistics skip every file outside them: a daily build reads the days
    its widest window reaches back, not the table's history.

    >>> events_in_reach(events_df, "event_ts", timedelta(days=7), first_us, last_us)  # doctest: +SKIP
    """
    lo = F.timestamp_micros(F.lit(first_us - widest // US))
    return events.where((F.col(ts) >= lo) & (F.col(ts) <= F.timestamp_micros(F.lit(last_us))))


@dataclass(frozen=True)
class Aggregation:
    """``ops`` of ``column`` over each of ``windows`` (positive, whole seconds, at most 100 years)."""

    column: str
    ops: Sequence[Op | str]
    windows: Sequence[timedelta]

    def __post_init__(self) -> None:
        try:
            ops = tuple(Op(o) for o in self.ops)
        except ValueError:
            raise JoinError(f"aggregation of '{self.column}': ops must be among "
                            f"{', '.join(o.value for o in Op)}, got {list(self.ops)}") from None
        if not ops or not self.windows:
            raise JoinError(f"aggregation of '{self.column}': at least one op and one window")
        for w in self.windows:
            if w <= timedelta(0) or w % timedelta(seconds=1) or w > MAX_WINDOW:
                raise JoinError(f"aggregation of '{self.column}': window {w} must be a positive whole number of "
                                "seconds, at most 100 years")
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "windows", tuple(self.windows))


@dataclass(frozen=True)
class AggregationSource:
    """An event table, how its keys map onto the labels' (label column -> table column), its time
    column and the aggregations to compute; outputs are named ``<name>_<column>_<op>_<window>``."""

    name: str
    df: DataFrame
    keys: dict[str, str]
    features: Sequence[Aggregation]
    ts: str = "event_ts"
    strict: bool = True  # t - w <= ts < t; False: t - w < ts <= t
    table: str | None = None  # the table's name in errors (default: ``name``)
    output: list[tuple[str, Op, timedelta, str]] = field(init=False)

    @property
    def what(self) -> str:
        return f"event table '{self.table or self.name}'" + (f" (aggregations '{self.name}')" if self.table else "")

    def __post_init__(self) -> None:
        what = self.what
        if not self.keys:
            raise JoinError(f"{what}: at least one key (label column -> table column)")
        if not self.features:
            raise JoinError(f"{what}: no aggregations")
        for col in [*self.keys.values(), self.ts, *[a.column for a in self.features]]:
            if col not in self.df.columns:
                raise SchemaError(what, col, "a column of the table")
        if self.df.schema[self.ts].dataType.typeName() != "timestamp":
            raise SchemaError(what, self.ts, "a timestamp with time zone (TIMESTAMP)",
                              self.df.schema[self.ts].dataType.simpleString())
        out = []
        for a in self.features:
            dtype = self.df.schema[a.column].dataType
            for op in a.ops:
                if op in _NUMERIC_OPS and not isinstance(dtype, T.NumericType):
                    raise SchemaError(what, a.column, f"a numeric column for '{op.value}'", dtype.simpleString())
                if not is_orderable(dtype) or isinstance(dtype, (T.ArrayType, T.StructType)):
                    raise SchemaError(what, a.column, f"an atomic orderable column for '{op.value}'",
                                      dtype.simpleString())
                for w in a.windows:
                    out.append((a.column, op, w, f"{self.name}_{a.column}_{op.value}_{window_name(w)}"))
        names = [o[3] for o in out]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise JoinError(f"{what}: aggregations {dup} are listed twice")
        object.__setattr__(self, "output", out)


def window_aggregates(labels: DataFrame, sources: Sequence[AggregationSource], *, label_ts: str = "label_ts",
                      partitions: int | None = None, time_bucket: timedelta | None = None) -> DataFrame:
    """``labels`` (every row once, its columns unchanged) plus one column per (source, column, op,
    window), each aggregating the key's events in the window ending at the row's ``label_ts``.

    ``labels``: any DataFrame with the sources' label key columns and ``label_ts`` (TIMESTAMP).
    ``partitions``: shuffle partitions (default: Spark's). ``time_bucket``: split hot keys' histories
    over tasks (see the module docstring). Raises :class:`SchemaError` for a missing or mistyped
    column (naming the table and column), :class:`JoinError` for a bad op, window or a name clash.

    >>> clicks = AggregationSource("clicks", events_df, {"user_id": "user_id"}, ts="event_ts",
    ...     features=[Aggregation("dwell_ms", ["count", "mean"], [timedelta(hours=1), timedelta(days=7)])])
    >>> window_aggregates(labels_df, [clicks], label_ts="event_ts")  # doctest: +SKIP
    ... # labels_df's columns + clicks_dwell_ms_count_1h, clicks_dwell_ms_mean_1h, ..._count_7d, ..._mean_7d
    """
    if label_ts not in labels.columns or labels.schema[label_ts].dataType.typeName() != "timestamp":
        raise SchemaError("labels", label_ts, "the label time column (a timestamp with time zone)",
                          labels.schema[label_ts].dataType.simpleString() if label_ts in labels.columns else None)
    if time_bucket is not None and (time_bucket <= timedelta(0) or time_bucket % timedelta(seconds=1)):
        raise JoinError(f"time_bucket must be a positive whole number of seconds, got {time_bucket}")
    seen = set(labels.columns)
    for s in sources:
        for k in s.keys:
            if k not in labels.columns:
                raise SchemaError("labels", k, f"a key column for {s.what}")
        check_key_types(labels, s.df, s.keys, s.what)
        for *_, name in s.output:
            if name in seen:
                raise JoinError(f"aggregation '{name}' of {s.what} clashes with another column")
            seen.add(name)
    out = labels
    for s in sources:
        tiled = [o for o in s.output if o[1] in TILED]
        distinct = [o for o in s.output if o[1] in DISTINCT]
        if tiled:
            out = _tiled(out, s, tiled, label_ts, partitions, time_bucket)
        if distinct:
            out = _distinct(out, s, distinct, label_ts, partitions)
    order = [*labels.columns, *[o[3] for s in sources for o in s.output]]
    return out.select(*order)


def _prepare(labels: DataFrame, s: AggregationSource, columns: list[str], label_ts: str):
    keys = list(s.keys)
    key_cols = [f"__k_{k}" for k in keys]
    types = {k: key_type(labels.schema[k].dataType, s.df.schema[s.keys[k]].dataType) for k in keys}
    valid = {c: f"__v{i}" for i, c in enumerate(columns)}
    label_keys = [F.col(k).cast(types[k]).alias(c) for k, c in zip(keys, key_cols)]
    event_rows = s.df.where(F.col(s.ts).isNotNull() & all_of([F.col(s.keys[k]).isNotNull() for k in keys])).select(
        *[F.col(s.keys[k]).cast(types[k]).alias(c) for k, c in zip(keys, key_cols)],
        F.unix_micros(F.col(s.ts)).alias(TS), *[F.col(c).alias(v) for c, v in valid.items()])
    complete = all_of([F.col(k).isNotNull() for k in keys]) & F.col(label_ts).isNotNull()
    return key_cols, label_keys, event_rows, valid, complete, types


def _by_key(label_rows: DataFrame, event_rows: DataFrame, key_cols: list[str], n: int) -> DataFrame:
    """Labels and events, each side hash-partitioned by the key into ``n`` partitions, unioned (the
    union keeps that partitioning). Labels that arrive partitioned so (the join's output, when it
    shuffled by the same key into as many partitions) are not exchanged again."""
    return label_rows.repartition(n, *key_cols).unionByName(event_rows.repartition(n, *key_cols))


def _tiled(labels: DataFrame, s: AggregationSource, outputs: list, label_ts: str, partitions: int | None,
           time_bucket: timedelta | None) -> DataFrame:
    columns = sorted({o[0] for o in outputs})
    key_cols, label_keys, events, valid, complete, types = _prepare(labels, s, columns, label_ts)
    windows = sorted({o[2] for o in outputs})
    w_us = [w // US for w in windows]
    # Kinds at one instant, in time order: strict windows see events of the label's instant after
    # the label (excluded) and at the probe's instant before it (included); non-strict the reverse.
    ev_kind, lbl_kind = (1, 0) if s.strict else (0, 1)
    t = F.unix_micros(F.col(label_ts))
    rows = F.array(F.struct(F.lit(-1).alias("w"), t.alias("t")),
                   *[F.struct(F.lit(j).alias("w"), (t - F.lit(us)).alias("t")) for j, us in enumerate(w_us)])
    label_rows = (labels.withColumn(UID, F.monotonically_increasing_id())  # once per row, before the explode
                  .select(*label_keys, UID, F.struct(*[F.col(c) for c in labels.columns]).alias(PAYLOAD),
                          F.explode(rows).alias("__r"))
                  .select(*key_cols, F.col("__r.t").alias(TS), F.lit(lbl_kind).cast("tinyint").alias(KIND),
                          F.col("__r.w").cast("int").alias(WIN), UID,
                          F.when(F.col("__r.w") < 0, F.col(PAYLOAD)).alias(PAYLOAD),
                          *[F.lit(None).cast(s.df.schema[c].dataType).alias(v) for c, v in valid.items()]))
    payload_type = label_rows.schema[PAYLOAD].dataType
    event_rows = events.select(*key_cols, TS, F.lit(ev_kind).cast("tinyint").alias(KIND),
                               F.lit(None).cast("int").alias(WIN), F.lit(None).cast("long").alias(UID),
                               F.lit(None).cast(payload_type).alias(PAYLOAD), *valid.values())
    part = list(key_cols)
    n = partitions or int(labels.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    if time_bucket is None:
        unified = _by_key(label_rows, event_rows, key_cols, n)
    else:
        width = math.lcm(time_bucket // US, *w_us)
        part.append(BUCKET)
        unified = label_rows.unionByName(event_rows).withColumn(BUCKET, _floor_div(width)).repartition(n, *part)
    # Equal (time, kind): order by the values too, so float sums never depend on the input's order.
    tie = [v for c, v in valid.items() if isinstance(s.df.schema[c].dataType, T.NumericType)]
    parts = []  # per output: (name, op, head column, tail column) -- or (sum, count) pairs for mean
    cols = []
    for j, (w, us) in enumerate(zip(windows, w_us)):
        tile = _floor_div(us)
        unified = unified.withColumn(f"{TILE}{j}", tile)
        head = (Window.partitionBy(*part, f"{TILE}{j}").orderBy(TS, KIND, *tie)
                .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        tail = (Window.partitionBy(*part, f"{TILE}{j}").orderBy(F.col(TS).desc(), F.col(KIND).desc(),
                                                                  *[F.col(c).desc() for c in tie])
                .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        is_label, is_probe = F.col(WIN) < 0, F.col(WIN) == j
        for col, op, win, name in outputs:
            if win != w:
                continue
            v = F.col(valid[col])
            aggs = {Op.COUNT: [F.count(v)], Op.SUM: [F.sum(v)], Op.MIN: [F.min(v)], Op.MAX: [F.max(v)],
                    Op.MEAN: [F.sum(v), F.count(v)]}[op]
            pieces = []
            for i, agg in enumerate(aggs):
                c = f"__a{len(cols)}"
                cols.append(F.when(is_label, agg.over(head)).when(is_probe, agg.over(tail)).alias(c))
                pieces.append(c)
            parts.append((name, op, pieces))
    merged = unified.select(*key_cols, UID, PAYLOAD, *cols).where(F.col(UID).isNotNull())
    combine = {Op.COUNT: F.sum, Op.SUM: F.sum, Op.MIN: F.min, Op.MAX: F.max}
    aggs = [F.first(PAYLOAD, ignorenulls=True).alias(PAYLOAD)]
    for name, op, pieces in parts:
        if op is Op.MEAN:
            total, count = F.sum(pieces[0]), F.sum(pieces[1])
            aggs.append(F.when(count > 0, total.cast("double") / count).alias(name))
        else:
            aggs.append(combine[op](pieces[0]).alias(name))
    grouped = merged.groupBy(*key_cols, UID).agg(*aggs)
    return _finish(grouped, labels, [p[0] for p in parts], complete, dict(zip(s.keys, key_cols)), types)


def _distinct(labels: DataFrame, s: AggregationSource, outputs: list, label_ts: str,
              partitions: int | None) -> DataFrame:
    columns = sorted({o[0] for o in outputs})
    key_cols, label_keys, events, valid, complete, types = _prepare(labels, s, columns, label_ts)
    delta_kind, lbl_kind = (1, 0) if s.strict else (0, 1)
    label_rows = labels.select(*label_keys, F.unix_micros(F.col(label_ts)).alias(TS),
                               F.struct(*[F.col(c) for c in labels.columns]).alias(PAYLOAD),
                               *[F.lit(None).cast(s.df.schema[c].dataType).alias(v) for c, v in valid.items()])
    event_rows = events.select(*key_cols, TS, F.lit(None).cast(label_rows.schema[PAYLOAD].dataType).alias(PAYLOAD),
                               *valid.values())
    n = partitions or int(labels.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    unified = _by_key(label_rows, event_rows, key_cols, n)
    # Per output: +1 at max(ts, prev + w) and -1 at ts + w, prev being the value's previous time for
    # the key; a label is one row of its own (o = -1).
    item = lambda o, t, d: F.struct(F.lit(o).alias("o"), t.alias("t"), F.lit(d).alias("d"))
    for col, v in valid.items():
        unified = unified.withColumn(f"__prev{v}", F.lag(TS).over(Window.partitionBy(*key_cols, v).orderBy(TS)))
    items = []
    for i, (col, _, w, _) in enumerate(outputs):
        us = w // US
        v = F.col(valid[col])
        lo = F.greatest(F.col(TS), F.col(f"__prev{valid[col]}") + F.lit(us))
        hi = F.col(TS) + F.lit(us)
        items.append(F.when(v.isNotNull() & (lo < hi), F.array(item(i, lo, 1), item(i, hi, -1))))
    is_label = F.col(PAYLOAD).isNotNull()
    rows = F.when(is_label, F.array(item(-1, F.col(TS), 0))).otherwise(
        F.flatten(F.filter(F.array(*items), lambda x: x.isNotNull())))
    exploded = unified.select(*key_cols, PAYLOAD, F.explode(rows).alias("__r")).select(
        *key_cols, F.col("__r.t").alias(TS), F.when(is_label, F.lit(lbl_kind)).otherwise(F.lit(delta_kind))
        .cast("tinyint").alias(KIND), PAYLOAD,
        *[F.when(F.col("__r.o") == i, F.col("__r.d")).alias(f"{DELTA}{i}") for i in range(len(outputs))])
    running = (Window.partitionBy(*key_cols).orderBy(TS, KIND)
               .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    counted = exploded.select(*key_cols, PAYLOAD, *[F.coalesce(F.sum(f"{DELTA}{i}").over(running), F.lit(0)).cast("long")
                                         .alias(o[3]) for i, o in enumerate(outputs)])
    return _finish(counted.where(is_label), labels, [o[3] for o in outputs], complete,
                   dict(zip(s.keys, key_cols)), types)


def _finish(rows: DataFrame, labels: DataFrame, names: list[str], complete: Column, key_cols: dict[str, str],
            types: dict[str, T.DataType]) -> DataFrame:
    """Unpack the label payload (keys from the shuffle's key columns, so the partitioning carries
    on); aggregates of labels with a null key or time are null."""
    out = rows.select(*unpack_labels(labels, PAYLOAD, key_cols, types), *names)
    return out.select(*labels.columns, *[F.when(complete, F.col(n)).alias(n) for n in names])


def _floor_div(width: int) -> Column:
    """``floor(__ts / width)``, also for negative times (Spark's ``div`` truncates toward zero)."""
    return F.expr(f"(`{TS}` - pmod(`{TS}`, {width}L)) div {width}L")
