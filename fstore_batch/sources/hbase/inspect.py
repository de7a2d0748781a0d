"""Quick looks at HBase feature tables: row counts, regions, a few decoded rows (for `inspect`)."""

from __future__ import annotations

from typing import Any

import happybase

from fstore_batch.config.models import FeatureTableSpec
from fstore_batch.sources.hbase.admin import list_regions
from fstore_batch.sources.hbase.decode import RowDecoder

_COUNT_FILTER = b"FirstKeyOnlyFilter() AND KeyOnlyFilter()"


def count_rows(conn: happybase.Connection, table: str, batch_size: int = 5000) -> int:
    return sum(1 for _ in conn.table(table).scan(filter=_COUNT_FILTER, batch_size=batch_size))


def peek(conn: happybase.Connection, spec: FeatureTableSpec, limit: int = 3) -> list[dict[str, Any]]:
    """The first ``limit`` rows, latest version of each feature, with its cell timestamp."""
    dec = RowDecoder(spec)
    rows = []
    for row_key, data in conn.table(spec.hbase_table).scan(limit=limit, include_timestamp=True):
        cells = [(col, value, ts) for col, (value, ts) in data.items()]
        out: dict[str, Any] = dict(zip(spec.row_key.key_names, dec.decode_key(row_key)))
        for cell in dec.decode_cells(row_key, cells):
            v = cell.value
            if isinstance(v, list) and len(v) > 4:
                v = f"[{', '.join(_short(x) for x in v[:4])}, ... ({len(v)} values)]"
            out[cell.feature] = v
            out[f"{cell.feature}@ts"] = cell.ts
        rows.append(out)
    return rows


def describe(conn: happybase.Connection, spec: FeatureTableSpec, limit: int = 3) -> dict[str, Any]:
    return {
        "table": spec.hbase_table,
        "regions": len(list_regions(conn, spec.hbase_table)),
        "rows": count_rows(conn, spec.hbase_table),
        "sample": peek(conn, spec, limit),
    }


def _short(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)
