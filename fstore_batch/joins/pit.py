"""Exact point-in-time joins: one shuffle per entity key, one sorted pass, no row fan-out.

For each group of feature tables that share the labels' entity key, the labels and every
feature row of those tables are unioned into one DataFrame, hash-partitioned by the key and
sorted within partitions by (key, time, kind, tie-breakers). One vectorised pass per partition
(``mapInArrow``) then forward-fills each feature to the label rows behind it: per feature, the
last non-null value of the same key at or before the label time (strictly before for ``strict``
sources), dropped when older than the source's TTL. Label rows come out once each, unchanged;
feature rows are consumed. State is carried between Arrow batches, so memory stays bounded by
the batch size, not by the number of events of a key.

This avoids the range join (every label x every earlier feature row, then ``row_number``) and
evaluates all features of a key group in the same pass.

Semantics, exactly:

* a label at time ``t`` gets, per feature ``f`` of source ``s``, the value of ``f`` in the row of
  ``s`` with the same key, ``f`` not null, and ``ts <= t`` (``ts < t`` when ``s.strict``) that sorts
  last by (``ts``, ``tie_breaker``, hash of the row's features); null when there is none or when
  ``t - ts > s.ttl``;
* labels with a null key or time get null features (they are kept, never dropped).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import JoinError, SchemaError
from fstore_batch.joins.spec import FeatureSource

TS, KIND, TB, TB2, SRC = "__ts", "__kind", "__tb", "__tb2", "__src"
FEATURE, LABEL = 0, 1
CARRY = -2


def point_in_time_join(labels: DataFrame, sources: list[FeatureSource], *, label_ts: str = "label_ts",
                       partitions: int | None = None) -> DataFrame:
    """Join every source's features onto ``labels`` as of each label's ``label_ts``.

    >>> out = point_in_time_join(labels, [FeatureSource("profile", profile_df, {"user_id": "user_id"},
    ...                                                  ["age", "country"])])  # doctest: +SKIP
    """
    _check_labels(labels, sources, label_ts)
    groups: dict[tuple[str, ...], list[FeatureSource]] = {}
    for s in sources:
        groups.setdefault(s.key_group, []).append(s)
    out = labels
    for keys, group in groups.items():
        out = _join_group(out, list(keys), group, label_ts, partitions)
    return out


def _check_labels(labels: DataFrame, sources: list[FeatureSource], label_ts: str) -> None:
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
        for name in s.output:
            if name in seen:
                raise JoinError(f"feature '{name}' of table '{s.name}' clashes with another column; "
                                "give the source a prefix")
            seen.add(name)
    if not sources:
        raise JoinError("no feature tables to join")


def _join_group(labels: DataFrame, keys: list[str], sources: list[FeatureSource], label_ts: str,
                partitions: int | None) -> DataFrame:
    label_cols = labels.columns
    feature_fields = [T.StructField(out, s.df.schema[f].dataType, True)
                      for s in sources for f, out in zip(s.features, s.output)]
    key_types = {k: labels.schema[k].dataType for k in keys}

    def nulls(fields: list[T.StructField]) -> list[Any]:
        return [F.lit(None).cast(f.dataType).alias(f.name) for f in fields]

    label_rows = labels.select(
        *[F.col(k).alias(f"__k_{k}") for k in keys],
        F.unix_micros(F.col(label_ts)).alias(TS), F.lit(LABEL).alias(KIND), F.lit(None).cast("long").alias(TB),
        F.lit(None).cast("long").alias(TB2), F.lit(-1).alias(SRC),
        *[F.col(c) for c in label_cols], *nulls(feature_fields))
    parts = [label_rows]
    label_fields = [labels.schema[c] for c in label_cols]
    for i, s in enumerate(sources):
        values = {out: F.col(f) for f, out in zip(s.features, s.output)}
        tb = F.col(s.tie_breaker) if s.tie_breaker else F.lit(None)
        if s.tie_breaker and s.df.schema[s.tie_breaker].dataType.typeName() == "timestamp":
            tb = F.unix_micros(tb)
        rows = s.df.where(F.col(s.ts).isNotNull()).select(
            *[F.col(s.keys[k]).cast(key_types[k]).alias(f"__k_{k}") for k in keys],
            (F.unix_micros(F.col(s.ts)) + F.lit(1 if s.strict else 0)).alias(TS),
            F.lit(FEATURE).alias(KIND), tb.cast("long").alias(TB),
            F.xxhash64(*[F.col(f) for f in s.features]).alias(TB2), F.lit(i).alias(SRC),
            *nulls(label_fields),
            *[values[f.name].alias(f.name) if f.name in values else F.lit(None).cast(f.dataType).alias(f.name)
              for f in feature_fields])
        parts.append(rows.where(" AND ".join(f"`__k_{k}` IS NOT NULL" for k in keys)))
    unified = parts[0]
    for p in parts[1:]:
        unified = unified.unionByName(p)

    key_cols = [f"__k_{k}" for k in keys]
    n = partitions or int(labels.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    ordered = (unified.repartition(n, *key_cols)
               .sortWithinPartitions(*key_cols, TS, KIND, TB, TB2))
    plan = _FillPlan(
        key_cols=key_cols, label_cols=label_cols,
        features=[(i, out, s.ttl.total_seconds() * 1e6 if s.ttl else None, 1 if s.strict else 0)
                  for i, s in enumerate(sources) for out in s.output],
    )
    out_schema = T.StructType(label_fields + feature_fields)
    return ordered.mapInArrow(plan.fill, out_schema)


class _FillPlan:
    """The per-partition forward fill (runs in the executors' Python workers)."""

    def __init__(self, key_cols: list[str], label_cols: list[str],
                 features: list[tuple[int, str, float | None, int]]) -> None:
        self.key_cols, self.label_cols, self.features = key_cols, label_cols, features

    def fill(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        carry: pa.Table | None = None
        carry_ts: dict[str, int] = {}
        for batch in batches:
            table = pa.Table.from_batches([batch])
            if carry is not None:
                table = pa.concat_tables([carry, table.cast(carry.schema)])
            out, carry, carry_ts = self._fill_table(table, carry is not None, carry_ts)
            if out.num_rows:
                yield from out.to_batches()

    def _fill_table(self, table: pa.Table, has_carry: bool,
                    carry_ts: dict[str, int]) -> tuple[pa.Table, pa.Table, dict[str, int]]:
        n = table.num_rows
        rows = np.arange(n)
        group_start = np.maximum.accumulate(np.where(_key_starts(table, self.key_cols), rows, 0))
        ts = pc.fill_null(table[TS], 0).to_numpy().astype(np.int64)
        ts_valid = table[TS].is_valid().to_numpy(zero_copy_only=False)
        src = table[SRC].to_numpy(zero_copy_only=False).astype(np.int64)
        is_label = table[KIND].to_numpy(zero_copy_only=False) == LABEL
        if has_carry:
            is_label[0] = False
        label_idx = np.flatnonzero(is_label)
        out_cols = {c: table[c].take(pa.array(label_idx)) for c in self.label_cols}
        new_carry_vals: dict[str, pa.Array] = {}
        new_carry_ts: dict[str, int] = {}
        last_row = n - 1
        for i, name, ttl_us, shift in self.features:
            col = table[name]
            valid = col.is_valid().to_numpy(zero_copy_only=False) & (src == i)
            if has_carry:
                valid[0] = bool(col[0].is_valid)
            last = np.maximum.accumulate(np.where(valid, rows, -1))
            last[last < group_start] = -1
            # Real event time of the chosen row (carry row: remembered; strict rows were shifted by 1 us).
            fts = np.where(last >= 0, ts[np.maximum(last, 0)] - shift, 0)
            if has_carry and name in carry_ts:
                fts = np.where(last == 0, carry_ts[name], fts)
            pick = last[label_idx]
            ok = (pick >= 0) & ts_valid[label_idx]
            if ttl_us is not None:
                ok &= (ts[label_idx] - fts[label_idx]) <= ttl_us
            out_cols[name] = col.take(pa.array(np.where(ok, pick, 0), mask=~ok))
            j = last[last_row]
            new_carry_vals[name] = col.take(pa.array([max(j, 0)], type=pa.int64(), mask=np.array([j < 0])))
            if j >= 0:
                new_carry_ts[name] = int(fts[last_row])
        out = pa.table(out_cols)
        carry = self._carry_row(table, new_carry_vals)
        return out, carry, new_carry_ts

    def _carry_row(self, table: pa.Table, values: dict[str, pa.Array]) -> pa.Table:
        """One synthetic feature row holding, for the last key, each feature's last value."""
        last = table.slice(table.num_rows - 1, 1)
        cols = []
        for field in table.schema:
            name = field.name
            if name in self.key_cols or name == TS:
                cols.append(last[name].combine_chunks())
            elif name == KIND:
                cols.append(pa.array([FEATURE], type=field.type))
            elif name == SRC:
                cols.append(pa.array([CARRY], type=field.type))
            elif name in values:
                cols.append(values[name].cast(field.type))
            else:
                cols.append(pa.nulls(1, type=field.type))
        return pa.Table.from_arrays(cols, schema=table.schema)


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
