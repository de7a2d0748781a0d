"""Behaviour sequences: for each label, the last N events of its key strictly before the label
time (and within ``max_age``), newest first, as arrays.

Labels and events are unioned, partitioned by key (in the widest integer type of either side) and
sorted by time in microseconds, then kind (labels before events at the same instant, so an event
at the label time is excluded), then, for events with equal times, by the ``tie_breaker`` (the
largest counts as the newest), a hash of the event's columns and the columns themselves: the
input's row order never decides which equal-time events are kept. One vectorised pass per partition
(``mapInArrow``) gathers each label's window from the events behind it with numpy, carrying the
last N events of the current key between Arrow batches, so memory is bounded by N and the batch
size. No label x event pairs are materialised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import JoinError, SchemaError
from fstore_batch.joins.pit import all_of
from fstore_batch.joins.spec import check_key_types, check_orderable, is_orderable, key_type

TS, KIND, TB, HASH, PAYLOAD = "__ts", "__kind", "__tb", "__h", "__p"
LABEL, EVENT = 0, 1  # kinds, in sort order at one instant


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
    """``labels`` plus one array column ``<name>_<column>`` per sequence column and its times, newest first."""
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
    payload_type = T.StructType([labels.schema[c] for c in labels.columns])
    event_types = {c: seq.df.schema[c].dataType for c in seq.columns}
    tb_type = seq.df.schema[seq.tie_breaker].dataType if seq.tie_breaker else T.ByteType()
    label_rows = labels.select(
        *[F.col(k).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
        F.unix_micros(F.col(label_ts)).alias(TS), F.lit(LABEL).cast("tinyint").alias(KIND),
        F.lit(None).cast(tb_type).alias(TB), F.lit(None).cast("long").alias(HASH),
        F.struct(*[F.col(c) for c in labels.columns]).alias(PAYLOAD),
        *[F.lit(None).cast(t).alias(f"__e_{c}") for c, t in event_types.items()])
    keys_present = all_of([F.col(seq.keys[k]).isNotNull() for k in keys])
    event_rows = seq.df.where(F.col(seq.ts).isNotNull() & keys_present).select(
        *[F.col(seq.keys[k]).cast(key_types[k]).alias(c) for k, c in zip(keys, key_cols)],
        F.unix_micros(F.col(seq.ts)).alias(TS), F.lit(EVENT).cast("tinyint").alias(KIND),
        (F.col(seq.tie_breaker) if seq.tie_breaker else F.lit(None)).cast(tb_type).alias(TB),
        F.xxhash64(*[F.col(c) for c in seq.columns]).alias(HASH),
        F.lit(None).cast(payload_type).alias(PAYLOAD),
        *[F.col(c).alias(f"__e_{c}") for c in seq.columns])
    unified = label_rows.unionByName(event_rows)
    n_parts = partitions or int(labels.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    order = [*key_cols, TS, KIND, TB, HASH, *[f"__e_{c}" for c, t in event_types.items() if is_orderable(t)]]
    ordered = (unified.repartition(n_parts, *key_cols).sortWithinPartitions(*order)
               .select(*key_cols, TS, KIND, PAYLOAD, *[f"__e_{c}" for c in seq.columns]))
    out_fields = [labels.schema[c] for c in labels.columns]
    out_fields += [T.StructField(seq.output[c], T.ArrayType(t, True), True) for c, t in event_types.items()]
    out_fields.append(T.StructField(seq.output[seq.ts], T.ArrayType(T.TimestampType(), True), True))
    window = _Window(key_cols, seq.columns, seq.n,
                     None if seq.max_age is None else min(seq.max_age // timedelta(microseconds=1), 1 << 62),
                     [f.name for f in out_fields])
    return ordered.mapInArrow(window.run, T.StructType(out_fields))


class _Window:
    """Per-partition gathering of each label's last-N window (runs in executors' Python workers)."""

    def __init__(self, key_cols: list[str], columns: list[str], n: int, max_age_us: int | None,
                 out_names: list[str]) -> None:
        self.key_cols, self.columns, self.n, self.max_age_us = key_cols, columns, n, max_age_us
        self.out_names = out_names

    def run(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        carry: pa.Table | None = None
        for batch in batches:
            table = pa.Table.from_batches([batch])
            if carry is not None and carry.num_rows:
                table = pa.concat_tables([carry, table.cast(carry.schema)])
            out, carry = self._one(table)
            if out.num_rows:
                yield from out.to_batches()

    def _one(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        n_rows, N = table.num_rows, self.n
        rows = np.arange(n_rows)
        group_start = np.maximum.accumulate(np.where(_key_starts(table, self.key_cols), rows, 0))
        ts = table[TS]
        us = pc.fill_null(ts, 0).to_numpy().astype(np.int64)
        is_event = pc.fill_null(pc.equal(table[KIND], EVENT), False).to_numpy(zero_copy_only=False)
        is_label = table[PAYLOAD].is_valid().to_numpy(zero_copy_only=False)
        ev_pos = np.flatnonzero(is_event)
        cum = np.cumsum(is_event)  # events up to and including each row
        before_group = cum[group_start] - is_event[group_start]
        labels = np.flatnonzero(is_label)
        c = cum[labels]  # events before each label (labels are never events)
        available = c - before_group[labels]
        k = np.minimum(available, N)
        offs = np.arange(N)
        idx = c[:, None] - 1 - offs[None, :]  # newest first, as positions in ev_pos
        valid = offs[None, :] < k[:, None]
        ev_us = us[ev_pos]
        label_us = us[labels]
        if self.max_age_us is not None and len(ev_pos):
            age_ok = (label_us[:, None] - ev_us[np.clip(idx, 0, None)]) <= self.max_age_us
            valid &= age_ok
        label_ts_ok = ts.is_valid().to_numpy(zero_copy_only=False)[labels]
        valid &= label_ts_ok[:, None]
        lengths = valid.sum(axis=1)
        offsets = np.zeros(len(labels) + 1, dtype=np.int32)
        offsets[1:] = np.cumsum(lengths)
        flat_ev = idx[valid] if len(ev_pos) else np.zeros(0, dtype=np.int64)
        flat = ev_pos[flat_ev]

        payload = table[PAYLOAD].take(pa.array(labels)).combine_chunks()
        arrays = [payload.field(i) for i in range(payload.type.num_fields)]
        for col in self.columns:
            values = table[f"__e_{col}"].take(pa.array(flat, type=pa.int64())).combine_chunks()
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets), values))
        ts_values = pa.array(ev_us[flat_ev], type=pa.timestamp("us", tz="UTC"))
        arrays.append(pa.ListArray.from_arrays(pa.array(offsets), ts_values))
        out = pa.Table.from_arrays(arrays, names=self.out_names)
        # Carry the last key's newest N events into the next batch.
        last_group = group_start[-1] if n_rows else 0
        tail_events = ev_pos[ev_pos >= last_group][-N:]
        carry = table.take(pa.array(tail_events, type=pa.int64()))
        return out, carry


def _key_starts(table: pa.Table, key_cols: list[str]) -> np.ndarray:
    """True where a row's key differs from the previous row's (nulls equal nulls)."""
    n = table.num_rows
    starts = np.zeros(n, dtype=bool)
    if n == 0:
        return starts
    starts[0] = True
    for k in key_cols:
        col = table[k].combine_chunks()
        cur, prev = col.slice(1), col.slice(0, n - 1)
        both_null = pc.and_(pc.is_null(cur), pc.is_null(prev))
        differ = pc.if_else(both_null, False, pc.fill_null(pc.not_equal(cur, prev), True))
        starts[1:] |= differ.to_numpy(zero_copy_only=False)
    return starts
