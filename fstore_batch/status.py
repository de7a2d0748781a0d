"""What the store holds now, from Delta metadata: feature tables, training sets, last skew runs.

``fstore-batch status`` prints it for people (the demo ends with it); ``store_status`` returns it
for code. Snapshot row counts come from commit metadata, and a training set's and each tier's rows
from Delta's file statistics. Each tier's time range is the one read of data: Delta's statistics
do not answer ``min``/``max`` of a timestamp, so its time column alone is scanned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fstore_batch.config import FeatureStoreConfig
from fstore_batch.storage.delta.catalog import snapshot_history
from fstore_batch.storage.delta.state import state_history, state_path
from fstore_batch.storage.delta.tiers import cold_path, tier_summary


def store_status(spark: SparkSession, store: FeatureStoreConfig, *, training_sets: Sequence[str] = (),
                 skew_metrics: str | None = None, report_dir: str | None = None, skew_runs: int = 1) -> dict[str, Any]:
    tables = []
    for spec in store.tables:
        path = store.storage.table_path(spec.name)
        if not DeltaTable.isDeltaTable(spark, path):
            tables.append({"table": spec.name, "path": path, "version": None})
            continue
        snaps = snapshot_history(spark, path)
        states = state_history(spark, state_path(path))
        tables.append({"table": spec.name, "path": path, "version": _version(spark, path), "snapshots": len(snaps),
                       "as_of": snaps[-1].meta.get("as_of") if snaps else None,
                       "rows": sum(s.meta.get("rows") or 0 for s in snaps),
                       "tiers": tier_summary(spark, path, cold_path(spec.maintenance.cold_root, spec.name)),
                       "state": None if not states else {"version": states[-1].version,
                                                         "as_of_ms": states[-1].as_of_ms,
                                                         "history_version": states[-1].history_version}})
    built = []
    for path in training_sets:
        if not DeltaTable.isDeltaTable(spark, path):
            built.append({"path": path, "version": None})
            continue
        last = DeltaTable.forPath(spark, path).history(1).first()
        meta = json.loads(last.userMetadata or "{}").get("fstore_training_set") or {}
        table = spark.read.format("delta").load(path)
        built.append({"path": path, "training_set": meta.get("training_set"), "version": int(last.version),
                      "rows": table.count(),  # Delta answers it from its file statistics
                      "last_write_rows": int((last.operationMetrics or {}).get("numOutputRows", 0)),
                      "columns": len(table.columns),
                      "inputs": {t: i["version"] for t, i in (meta.get("inputs") or {}).items()}})
    return {"tables": tables, "training_sets": built, "skew": _skew_runs(spark, skew_metrics, report_dir, skew_runs)}


def render_status(status: dict[str, Any]) -> str:
    lines = ["feature tables (Delta):"]
    for t in status["tables"]:
        if t["version"] is None:
            lines.append(f"  {t['table']:<16} not snapshotted yet ({t['path']})")
        else:
            lines.append(f"  {t['table']:<16} version {t['version']:<3} {t['snapshots']} snapshots, as of "
                         f"{t['as_of']}, {t['rows']} rows  {t['path']}")
            for tier in t["tiers"]:
                lines.append(f"    {tier['tier']:<5} {tier['from']} .. {tier['to']}  {tier['rows']} rows, "
                             f"{tier['bytes']} bytes  {tier['path']}")
            if t["state"]:
                lines.append(f"    state version {t['state']['version']} over history version "
                             f"{t['state']['history_version']}")
    for b in status["training_sets"]:
        if b["version"] is None:
            lines.append(f"training set at {b['path']}: not built yet")
        else:
            pinned = ", ".join(f"{k}@v{v}" for k, v in sorted(b["inputs"].items()))
            last = "" if b["last_write_rows"] == b["rows"] else f", its last build wrote {b['last_write_rows']} rows"
            lines.append(f"training set {b['training_set']}: {b['rows']} rows x {b['columns']} columns, version "
                         f"{b['version']}{last} ({pinned})  {b['path']}")
    for s in status["skew"]:
        lines.append(f"skew run {s['run_id']} ({s['run_ts']}): {s['fired']} thresholds fired")
        for verdict, feats in sorted(s["verdicts"].items()):
            lines.append(f"  {verdict:<18} {', '.join(sorted(feats))}")
        if s.get("report"):
            lines.append(f"  report: {s['report']}")
    return "\n".join(lines)


def _version(spark: SparkSession, path: str) -> int:
    return int(DeltaTable.forPath(spark, path).history(1).first().version)


def _skew_runs(spark: SparkSession, path: str | None, report_dir: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` runs in the skew metrics table, oldest first: verdicts, thresholds fired, report."""
    if not path or not DeltaTable.isDeltaTable(spark, path):
        return []
    metrics = spark.read.format("delta").load(path)
    runs = metrics.select("run_id", "run_ts").distinct().orderBy(F.desc("run_ts")).limit(limit).collect()
    out = []
    for last in reversed(runs):
        run = metrics.where(F.col("run_id") == last.run_id)
        verdicts: dict[str, list[str]] = {}
        for r in run.where("feature != '*' AND verdict IS NOT NULL").select("feature", "verdict").distinct().collect():
            verdicts.setdefault(r.verdict, []).append(r.feature)
        html = Path(report_dir) / last.run_id / "report.html" if report_dir else None
        out.append({"run_id": last.run_id, "run_ts": last.run_ts.isoformat(timespec="seconds"),
                    "fired": run.where("fired").count(), "verdicts": verdicts,
                    "report": str(html) if html and html.exists() else None})
    return out
