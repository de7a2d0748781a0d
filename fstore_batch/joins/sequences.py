"""Behaviour sequences: for each label, the last N events of its key strictly before the label
time (and within ``max_age``), newest first, as arrays.

Events are ordered per key by time in microseconds, then, for events with equal times, by the
``tie_breaker`` (the largest counts as the newest, a null one as the oldest), a hash of the
event's columns and the columns themselves: the input's row order never decides which equal-time
events are kept. Everything runs in the JVM, in two passes and no Python worker:

1. **Blocks.** Events are shuffled by key and sorted; ``row_number`` numbers them per key, and
   each run of ``n`` consecutive events becomes one block row ``(key, block, start time, array of
   its events)``. Grouping by ``(key, block)`` reuses the key's partitioning, so this pass has one
   exchange, the events', and one sort.
2. **Labels onto blocks.** Labels and block rows are shuffled by key and sorted by (time, labels
   before blocks at one instant, block number); ``lag(block, 1)`` and ``lag(block, 2)`` ``IGNORE
   NULLS`` hand every label the newest block starting strictly before it and the block before
   that: together at most ``2n`` events holding the label's last ``n``. A binary search on their
   times (``log2(2n)`` steps of ``element_at``, no lambda) counts the events before the label
   time (and before ``time - max_age``), ``slice`` cuts the last ``n`` and ``reverse`` puts the
   newest first.

Memory is bounded per task: no array holds more than ``n`` events (a label's, ``2n``), no key's
events are collected, and the two window passes buffer a partition in Spark's spillable row
buffer. A hot key's events are still sorted in one task (as in every per-key window); its blocks
and labels then cost ``O(n)`` each. No label x event pairs are materialised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import JoinError, SchemaError
from fstore_batch.joins.pit import all_of
from fstore_batch.joins.spec import check_key_types, check_orderable, is_orderable, key_type

TS, KIND, TB, HASH, IDX, BLOCK, EVENTS, PAYLOAD = "__ts", "__kind", "__tb", "__h", "__i", "__b", "__evs", "__p"
LABEL, BLOCK_ROW = 0, 1  # row kinds of the second pass, in sort order at one instant


@dataclass(frozen=True)
class SequenceSource:
    """An event table and the sequence to cut from it: ``n`` newest ``columns`` before each label.

    Events with equal times are ordered by ``tie_breaker`` (any orderable type; the largest counts
    as the newest, a null one as the oldest), then by a hash of their ``columns``, then by the
    columns: deterministic whatever the input's row order.
    """

    name: str
    df: DataFrame
    keys: dict[str, str]
    columns: list[str]
    n: int = 50
    ts: str = "event_ts"
    max_age: timedelta | None = None
    tie_breaker: str | None = None
    output: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise JoinError(f"sequence '{self.name}': n must be >= 1, got {self.n}")
        for col in [*self.keys.values(), *self.columns, self.ts, *([self.tie_breaker] if self.tie_breaker else [])]:
            if col not in self.df.columns:
                raise SchemaError(f"event table '{self.name}'", col, "a column of the table")
        if self.tie_breaker:
            check_orderable(self.df, self.tie_breaker, f"event table '{self.name}'")
        if self.df.schema[self.ts].dataType.typeName() != "timestamp":
            raise SchemaError(f"event table '{self.name}'", self.ts, "a timestamp with time zone (TIMESTAMP)",
                              self.df.schema[self.ts].dataType.typeName())
        out = {c: f"{self.name}_{c}" for c in self.columns}
        out[self.ts] = f"{self.name}_{self.ts}"
        object.__setattr__(self, "output", out)


def last_n_events(labels: DataFrame, seq: SequenceSource, *, label_ts: str = "label_ts",
                  partitions: int | None = None) -> DataFrame:
    """``labels`` plus one array column ``<name>_<column>`` per sequence column and its times, newest first.

    Shapes: every label row comes out once, with its own columns unchanged, then
    ``array<type of column>`` per sequence column and ``array<timestamp>`` of the event times
    (``seq.output`` names them), each of at most ``seq.n`` items: the events of the label's key
    strictly before ``label_ts`` and at most ``seq.max_age`` older (inclusive, in microseconds),
    newest first. A label with no such event, a null key or a null time gets empty arrays (never
    null). ``partitions`` sets the shuffle partition count (default:
    ``spark.sql.shuffle.partitions``).

    Raises ``SchemaError`` for a missing key or label time column, or key types that differ
    (integer widths may: both sides are compared in the wider one), and ``JoinError`` when an
    output column would clash with a label column.

    >>> clicks = SequenceSource("clicks", events, {"user_id": "user_id"}, ["item_id"], n=20)
    >>> last_n_events(labels, clicks).select("lid", "clicks_item_id", "clicks_event_ts")
    """
    for k in seq.keys:
        if k not in labels.columns:
            raise SchemaError("labels", k, f"a key column for sequence '{seq.name}'")
    check_key_types(labels, seq.df, seq.keys, f"sequence table '{seq.name}'")
    if label_ts not in labels.columns or labels.schema[label_ts].dataType.typeName() != "timestamp":
        raise SchemaError("labels", label_ts, "the label time column (a timestamp)")
    clash = set(seq.output.values()) & set(labels.columns)
    if clash:
        raise JoinError(f"sequence '{seq.name}' columns {sorted(clash)} clash with label columns")
    keys = list(seq.keys)
    key_cols = [f"__k_{k}" for k in keys]
    key_types = {k: key_type(labels.schema[k].dataType, seq.df.schema[seq.keys[k]].dataType) for k in keys}
    n_parts = partitions or int(labels.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    blocks = _blocks(seq, key_cols, key_types, n_parts)
    blocks_type = blocks.schema[EVENTS].dataType
    payload = F.struct(*[F.col(c) for c in labels.columns])
    label_rows = labels.select(
        *[F.col(k).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
        F.unix_micros(F.col(label_ts)).alias(TS), F.lit(LABEL).cast("tinyint").alias(KIND),
        F.lit(None).cast("long").alias(BLOCK), payload.alias(PAYLOAD), F.lit(None).cast(blocks_type).alias(EVENTS))
    block_rows = blocks.select(*key_cols, TS, F.lit(BLOCK_ROW).cast("tinyint").alias(KIND), BLOCK,
                               F.lit(None).cast(label_rows.schema[PAYLOAD].dataType).alias(PAYLOAD), EVENTS)
    w = Window.partitionBy(*key_cols).orderBy(TS, KIND, BLOCK)
    empty = F.array().cast(blocks_type)
    newest = F.coalesce(F.expr(f"lag({EVENTS}, 1) IGNORE NULLS").over(w), empty)
    before = F.coalesce(F.expr(f"lag({EVENTS}, 2) IGNORE NULLS").over(w), empty)
    rows = (label_rows.unionByName(block_rows).repartition(n_parts, *key_cols)
            .select(KIND, TS, PAYLOAD, F.concat(before, newest).alias(EVENTS)).where(F.col(KIND) == LABEL)
            .drop(KIND))
    # The candidates are in time order, and every one before the newest block's start is before
    # the label: those before the label time are a prefix, of length `last`.
    times = F.col(EVENTS).getField("ts")
    rows = rows.withColumn("__last", _count_below(times, F.col(TS)))
    first = F.greatest(F.col("__last") - seq.n, F.lit(0))
    if seq.max_age is not None:
        age_us = min(seq.max_age // timedelta(microseconds=1), 1 << 62)
        rows = rows.withColumn("__old", _count_below(times, F.col(TS) - F.lit(age_us)))  # older than max_age
        first = F.greatest(first, F.col("__old"))
    picked = F.when(F.col(TS).isNull(), empty).otherwise(
        F.reverse(F.slice(F.col(EVENTS), first + 1, F.greatest(F.col("__last") - first, F.lit(0)))))
    rows = rows.select(PAYLOAD, picked.alias(EVENTS))
    event_types = {c: seq.df.schema[c].dataType for c in seq.columns}
    return rows.select(
        *[F.col(PAYLOAD).getField(c).alias(c) for c in labels.columns],
        *[F.col(EVENTS).getField(f"v{j}").cast(T.ArrayType(t, True)).alias(seq.output[c])
          for j, (c, t) in enumerate(event_types.items())],
        F.col(EVENTS).getField("ts").cast(T.ArrayType(T.TimestampType(), True)).alias(seq.output[seq.ts]))


def _blocks(seq: SequenceSource, key_cols: list[str], key_types: dict[str, T.DataType], n_parts: int) -> DataFrame:
    """Per key, its events in runs of ``seq.n``: ``(keys, BLOCK, TS = first event's micros, EVENTS)``.

    ``EVENTS`` is an array of ``struct<i, ts, v0, v1, ...>`` in event order (``i``: the event's
    number within its key). Only the key, the time, the tie-breaker and the columns are shuffled;
    the hash is computed after the exchange.
    """
    keys = list(seq.keys)
    values = [f"v{j}" for j in range(len(seq.columns))]
    present = all_of([F.col(seq.keys[k]).isNotNull() for k in keys])
    events = seq.df.where(F.col(seq.ts).isNotNull() & present).select(
        *[F.col(seq.keys[k]).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
        F.unix_micros(F.col(seq.ts)).alias(TS),
        *([F.col(seq.tie_breaker).alias(TB)] if seq.tie_breaker else []),
        *[F.col(c).alias(v) for c, v in zip(seq.columns, values)])
    orderable = [v for c, v in zip(seq.columns, values) if is_orderable(seq.df.schema[c].dataType)]
    order = [TS, *([TB] if seq.tie_breaker else []), HASH, *orderable]
    numbered = (events.repartition(n_parts, *key_cols).withColumn(HASH, F.xxhash64(*[F.col(v) for v in values]))
                .withColumn(IDX, F.row_number().over(Window.partitionBy(*key_cols).orderBy(*order)) - 1))
    # The time is never null here (filtered above); coalesce tells Spark so, for `_count_below`'s sort.
    ts = F.coalesce(F.timestamp_micros(F.col(TS)), F.timestamp_micros(F.lit(0)))
    element = F.struct(F.col(IDX).alias("i"), ts.alias("ts"), *values)
    # Sorted by i first, which is unique (TimSort: linear on the already ordered input).
    return numbered.groupBy(*key_cols, F.floor(F.col(IDX) / seq.n).alias(BLOCK)).agg(
        F.min(TS).alias(TS), F.sort_array(F.collect_list(element)).alias(EVENTS))


def _count_below(times: Column, bound_us: Column) -> Column:
    """How many items of ``times`` (ascending timestamps, no nulls) are before ``bound_us`` (micros).

    One expression, no chain of columns: ``bound`` is sorted into the times and found again (its
    first occurrence follows exactly the items below it). A binary search written as one column
    per step is exponential once the optimizer inlines the steps (a filter on the output is
    pushed down through them, each step naming the previous bounds several times). The times are
    sorted as a primitive ``long[]`` (no nulls on either side), in ``O(n log n)`` for ``n`` items.
    """
    bound = F.coalesce(F.timestamp_micros(bound_us), F.timestamp_micros(F.lit(0)))  # null time: result unused
    return (F.array_position(F.sort_array(F.concat(times, F.array(bound))), bound) - 1).cast("int")
