"""Table administration that thrift1 (and so happybase) cannot do: pre-split table creation.

HBase's thrift1 API creates tables without split points, so pre-split tables are created by the
local stack's ``TableAdmin`` tool (``stack/hbase/hbasectl create-tables``), which talks to HBase
through its Java client. Regions are then listed through happybase like any other client would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import happybase

from fstore_batch.config.models import FeatureTableSpec
from fstore_batch.errors import HBaseTableError
from fstore_batch.sources.hbase.rowkey import RowKeyCodec

HBASECTL = Path(__file__).resolve().parents[3] / "stack" / "hbase" / "hbasectl"


TableLayout = tuple[str, dict[str, int], list[bytes]]
"""``(table name, {family: max_versions}, region boundaries)``."""


def create_presplit_tables(layouts: list[TableLayout]) -> None:
    """(Re)create each table with its families and region boundaries (one JVM for all)."""
    names = ", ".join(name for name, _, _ in layouts)
    if not HBASECTL.exists():
        raise HBaseTableError(names, f"cannot create pre-split tables: {HBASECTL} is missing "
                                     "(pre-splitting needs the project's local HBase stack tools)")
    args = []
    for name, families, split_points in layouts:
        args += [name, ",".join(f"{f}:{v}" for f, v in sorted(families.items())),
                 ",".join(p.hex() for p in split_points)]
    proc = subprocess.run([str(HBASECTL), "create-tables", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise HBaseTableError(names, f"create-tables failed (exit {proc.returncode}): {tail}")


def feature_table_layout(spec: FeatureTableSpec, *, prefix: str | None = None) -> TableLayout:
    """The HBase layout a feature-table spec describes: one region per salt bucket.

    ``prefix`` is the connection's ``hbase.table_prefix``: happybase reads ``<prefix>_<table>``.
    """
    families = {fam: spec.max_versions for fam in spec.families}
    name = f"{prefix}_{spec.hbase_table}" if prefix else spec.hbase_table
    return name, families, RowKeyCodec(spec.row_key).split_points()


def list_regions(conn: happybase.Connection, table: str) -> list[tuple[bytes, bytes]]:
    """``[(start_key, end_key), ...]`` in key order; ``b""`` marks an open end."""
    if table.encode() not in conn.tables():
        raise HBaseTableError(table, "does not exist")
    regions = conn.table(table).regions()
    return sorted(((r["start_key"], r["end_key"]) for r in regions), key=lambda r: r[0])
