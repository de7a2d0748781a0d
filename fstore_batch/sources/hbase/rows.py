"""Scanned HBase rows -> Arrow record batches of wide rows (one per entity key and cell time).

Cells that do not decode (wrong length, bad UTF-8, wrong vector dimension, bad JSON) and rows
whose key does not decode are not dropped: they travel in the ``_bad`` column of the row they
came from (a row with an undecodable key has null keys), to be written to the quarantine table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from fstore_batch.config.models import Codec, FeatureTableSpec
from fstore_batch.errors import DecodeError
from fstore_batch.sources.hbase.codecs import decode
from fstore_batch.sources.hbase.rowkey import RowKeyCodec
from fstore_batch.sources.hbase.scan import ScannedRow
from fstore_batch.sources.hbase.schema import source_arrow_schema


class WideRowBatcher:
    """Turns scanned rows into Arrow batches of at most ``batch_rows`` wide rows."""

    def __init__(self, spec: FeatureTableSpec, batch_rows: int = 4096) -> None:
        self.spec = spec
        self.schema = source_arrow_schema(spec)
        self.keys = RowKeyCodec(spec.row_key)
        self.columns = {c.column.encode(): c for c in spec.columns}
        self.n_keys = len(spec.row_key.parts)
        self.batch_rows = batch_rows
        self.stats = {"rows": 0, "cells": 0, "bytes": 0, "bad_cells": 0}
        self._reset()

    def _reset(self) -> None:
        self._cols: list[list[Any]] = [[] for _ in self.schema.names]

    def batches(self, scanned: Iterable[ScannedRow]) -> Iterator[pa.RecordBatch]:
        for row_key, cells in scanned:
            self._add(row_key, cells)
            if len(self._cols[0]) >= self.batch_rows:
                yield self._flush()
        if self._cols[0]:
            yield self._flush()

    def _flush(self) -> pa.RecordBatch:
        arrays = [pa.array(values, type=field.type) for values, field in zip(self._cols, self.schema)]
        self._reset()
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _add(self, row_key: bytes, cells: dict[bytes, list[tuple[bytes, int]]]) -> None:
        try:
            key: tuple[Any, ...] | None = self.keys.decode(row_key)
            key_problem = None
        except DecodeError as e:
            key, key_problem = None, f"row key: expected {e.expected}"
        # Group this row's cells by timestamp: one wide row per (key, ts).
        by_ts: dict[int, dict[str, Any]] = {}
        bad: dict[int, list[dict[str, Any]]] = {}
        sizes: dict[int, tuple[int, int]] = {}
        for column, versions in cells.items():
            spec = self.columns.get(column)
            if spec is None:
                continue
            for raw, ts in versions:
                n, b = sizes.get(ts, (0, 0))
                sizes[ts] = (n + 1, b + len(raw))
                reason = key_problem
                if reason is None:
                    try:
                        value = decode(spec.codec, raw, spec.dim)
                        if spec.codec is Codec.JSON:
                            value = json.dumps(value, sort_keys=True, separators=(",", ":"))
                        by_ts.setdefault(ts, {})[spec.feature] = value
                        continue
                    except DecodeError as e:
                        reason = f"{spec.codec.value}: expected {e.expected}"
                bad.setdefault(ts, []).append({"row_key": row_key, "column": spec.column, "ts_ms": ts,
                                               "raw": raw, "reason": reason})
        for ts in sorted(sizes):
            values = by_ts.get(ts, {})
            bad_cells = bad.get(ts)
            self._append_row(key, ts, values, sizes[ts], bad_cells)

    def _append_row(self, key: tuple[Any, ...] | None, ts: int, values: dict[str, Any],
                    size: tuple[int, int], bad_cells: list[dict[str, Any]] | None) -> None:
        cols = self._cols
        for i in range(self.n_keys):
            cols[i].append(None if key is None else key[i])
        cols[self.n_keys].append(ts * 1000)  # microseconds for timestamp[us]
        j = self.n_keys + 1
        for c in self.spec.columns:
            cols[j].append(values.get(c.feature))
            j += 1
        cols[j].append(size[0])
        cols[j + 1].append(size[1])
        cols[j + 2].append(bad_cells)
        self.stats["rows"] += 1
        self.stats["cells"] += size[0]
        self.stats["bytes"] += size[1]
        self.stats["bad_cells"] += len(bad_cells or ())
