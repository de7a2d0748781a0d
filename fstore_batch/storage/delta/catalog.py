"""The snapshot catalog: what each snapshot commit of a Delta feature table recorded.

Every snapshot is one Delta commit whose ``userMetadata`` is a JSON object with an ``fstore``
key (snapshot id, as-of time, source table, config hash, counts). Reading it needs only the
Delta log (``DESCRIBE HISTORY``), never the data files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from fstore_batch.errors import DeltaTableNotFoundError

METADATA_KEY = "fstore"


@dataclass(frozen=True)
class SnapshotInfo:
    version: int
    committed_at: datetime
    operation: str
    meta: dict[str, Any]

    @property
    def as_of_ms(self) -> int | None:
        return self.meta.get("as_of_ms")

    def row(self) -> dict[str, Any]:
        m = self.meta
        return {
            "version": self.version,
            "committed_at": self.committed_at.isoformat(timespec="seconds"),
            "snapshot_id": m.get("snapshot_id"),
            "mode": m.get("mode"),
            "as_of": m.get("as_of"),
            "source": m.get("source_table"),
            "rows_added": m.get("rows"),
            "cells": m.get("cells"),
            "quarantined": m.get("quarantined"),
            "config_hash": (m.get("config_hash") or "")[:12],
        }


def snapshot_metadata(**fields: Any) -> str:
    return json.dumps({METADATA_KEY: fields}, sort_keys=True, default=str)


def is_delta_table(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def snapshot_history(spark: SparkSession, path: str) -> list[SnapshotInfo]:
    """Snapshot commits of the table at ``path``, oldest first (other commits are skipped)."""
    if not is_delta_table(spark, path):
        raise DeltaTableNotFoundError(path)
    rows = (DeltaTable.forPath(spark, path).history()
            .select("version", "timestamp", "operation", "userMetadata").collect())
    out = []
    for r in rows:
        try:
            meta = json.loads(r.userMetadata or "{}").get(METADATA_KEY)
        except (ValueError, AttributeError):
            meta = None
        if meta:
            ts = r.timestamp if r.timestamp.tzinfo else r.timestamp.replace(tzinfo=UTC)
            out.append(SnapshotInfo(r.version, ts, r.operation, meta))
    return sorted(out, key=lambda s: s.version)


def latest_snapshot(spark: SparkSession, path: str) -> SnapshotInfo | None:
    if not is_delta_table(spark, path):
        return None
    history = snapshot_history(spark, path)
    return history[-1] if history else None


def format_versions(infos: list[SnapshotInfo]) -> str:
    """A fixed-width table of snapshot versions, for people."""
    rows = [i.row() for i in infos]
    if not rows:
        return "(no snapshots)"
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)
