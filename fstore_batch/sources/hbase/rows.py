"""Scanned HBase rows -> Arrow record batches of wide rows (one per entity key and cell time).

Cells are collected per batch into flat lists and decoded column by column with
:func:`~fstore_batch.sources.hbase.codecs.decode_many` (numpy/Arrow), so the per-cell Python
work is a few list appends. Cells that do not decode (wrong length, bad UTF-8, wrong vector
dimension, bad JSON) and rows whose key does not decode are not dropped: they travel in the
``_bad`` column of the wide row they came from (a row with an undecodable key has null keys),
to be written to the quarantine table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from fstore_batch.config.models import FeatureTableSpec
from fstore_batch.errors import DecodeError
from fstore_batch.sources.hbase.codecs import decode_many
from fstore_batch.sources.hbase.rowkey import RowKeyCodec
from fstore_batch.sources.hbase.scan import ScannedRow
from fstore_batch.sources.hbase.schema import source_arrow_schema


class WideRowBatcher:
    """Turns scanned rows into Arrow batches of about ``batch_cells`` cells each."""

    def __init__(self, spec: FeatureTableSpec, batch_cells: int = 65_536) -> None:
        self.spec = spec
        self.schema = source_arrow_schema(spec)
        self.keys = RowKeyCodec(spec.row_key)
        self.col_index = {c.column.encode(): i for i, c in enumerate(spec.columns)}
        self.batch_cells = batch_cells
        self.stats = {"rows": 0, "cells": 0, "bytes": 0, "bad_cells": 0}
        self._reset()

    def _reset(self) -> None:
        self._row_keys: list[bytes] = []
        self._cell_row: list[int] = []
        self._cell_ts: list[int] = []
        self._cell_col: list[int] = []
        self._cell_raw: list[bytes] = []

    def batches(self, scanned: Iterable[ScannedRow]) -> Iterator[pa.RecordBatch]:
        col_index = self.col_index
        for row_key, cells in scanned:
            r = len(self._row_keys)
            self._row_keys.append(row_key)
            for column, versions in cells.items():
                j = col_index.get(column)
                if j is None:
                    continue
                for raw, ts in versions:
                    self._cell_row.append(r)
                    self._cell_ts.append(ts)
                    self._cell_col.append(j)
                    self._cell_raw.append(raw)
            if len(self._cell_raw) >= self.batch_cells:
                yield self._flush()
        if self._cell_raw:
            yield self._flush()

    # -- one batch ------------------------------------------------------------------------

    def _flush(self) -> pa.RecordBatch:
        row_keys, raws = self._row_keys, self._cell_raw
        cell_row = np.asarray(self._cell_row, dtype=np.int64)
        cell_ts = np.asarray(self._cell_ts, dtype=np.int64)
        cell_col = np.asarray(self._cell_col, dtype=np.int64)
        self._reset()

        keys, key_problems = self._decode_keys(row_keys)
        # Wide rows: one per distinct (HBase row, timestamp), in key then time order.
        order = np.lexsort((cell_ts, cell_row))
        r_sorted, t_sorted = cell_row[order], cell_ts[order]
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = (r_sorted[1:] != r_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
        wide_sorted = np.cumsum(starts) - 1
        n_wide = int(wide_sorted[-1]) + 1
        wide_of_cell = np.empty(len(order), dtype=np.int64)
        wide_of_cell[order] = wide_sorted
        wide_row = r_sorted[starts]
        wide_ts = t_sorted[starts]
        lens = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))

        bad: dict[int, list[dict[str, Any]]] = {}

        def quarantine(cell: int, reason: str) -> None:
            bad.setdefault(int(wide_of_cell[cell]), []).append({
                "row_key": row_keys[cell_row[cell]], "column": self.spec.columns[cell_col[cell]].column,
                "ts_ms": int(cell_ts[cell]), "raw": raws[cell], "reason": reason})

        bad_key_rows = set(key_problems)
        arrays: list[pa.Array] = [k.take(pa.array(wide_row)) for k in keys]
        arrays.append(pa.array(wide_ts * 1000, type=pa.timestamp("us", tz="UTC")))
        for j, col in enumerate(self.spec.columns):
            cells = np.flatnonzero(cell_col == j)
            if bad_key_rows:
                keep = np.array([cell_row[c] not in bad_key_rows for c in cells], dtype=bool)
                for c in cells[~keep]:
                    quarantine(c, f"row key: expected {key_problems[int(cell_row[c])]}")
                cells = cells[keep]
            values, problems = decode_many(col.codec, [raws[c] for c in cells], col.dim)
            for pos, expected in problems.items():
                quarantine(cells[pos], f"{col.codec.value}: expected {expected}")
            slot = np.full(n_wide, -1, dtype=np.int64)
            slot[wide_of_cell[cells]] = np.arange(len(cells))
            field_type = self.schema.field(col.feature).type
            arrays.append(values.take(pa.array(slot, mask=slot < 0)).cast(field_type))
        arrays.append(pa.array(np.bincount(wide_of_cell, minlength=n_wide).astype(np.int32)))
        arrays.append(pa.array(np.bincount(wide_of_cell, weights=lens, minlength=n_wide).astype(np.int64)))
        bad_type = self.schema.field("_bad").type
        if bad:
            arrays.append(pa.array([bad.get(w) for w in range(n_wide)], type=bad_type))
        else:
            arrays.append(pa.nulls(n_wide, type=bad_type))

        n_bad = sum(len(v) for v in bad.values())
        self.stats["rows"] += n_wide
        self.stats["cells"] += len(raws)
        self.stats["bytes"] += int(lens.sum())
        self.stats["bad_cells"] += n_bad
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _decode_keys(self, row_keys: list[bytes]) -> tuple[list[pa.Array], dict[int, str]]:
        """Key part arrays (one slot per HBase row, null where the key is bad) and the bad rows."""
        parts: list[list[Any]] = [[] for _ in self.spec.row_key.parts]
        problems: dict[int, str] = {}
        decode = self.keys.decode
        for i, key in enumerate(row_keys):
            try:
                values = decode(key)
            except DecodeError as e:
                problems[i] = e.expected
                values = (None,) * len(parts)
            for p, v in zip(parts, values):
                p.append(v)
        types = [self.schema.field(p.name).type for p in self.spec.row_key.parts]
        return [pa.array(p, type=t) for p, t in zip(parts, types)], problems


