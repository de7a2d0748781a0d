"""Snapshot an HBase feature table into its versioned Delta table: one Delta commit per run.

Modes:

* **initial** (no table yet): every cell with ``ts <= as_of``; creates the table.
* **incremental** (default afterwards): only cells with ``previous as_of < ts <= as_of``,
  appended. Re-running the same ``as_of`` adds nothing: the run is recognised from the log, and
  Delta's idempotent-write guard (``txnAppId``/``txnVersion = as_of``) would skip it anyway.
* **full** (``full=True``): every cell with ``ts <= as_of`` that the table does not already hold
  (anti-join on key + ``event_ts``), appended: a backfill after a config change or late writes.

Each run also keeps the table's feature state (``fstore_batch.storage.delta.state``): per entity
key, the rows a join at or after the as-of can still need, which daily builds read instead of the
whole history. The state commits first, naming the history commit that follows; the history
commit records the state's version (``state_version``). A run that dies between the two leaves a
state builds ignore, and its rerun repairs it.

Cells that do not decode go to the ``quarantine`` Delta table; the run fails, writing nothing,
when their fraction exceeds the table's ``max_bad_fraction``. A run that fails (HBase down,
bad data, any error) leaves no new Delta version: the data is materialised and checked before
the first commit.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fstore_batch.config.loader import config_hash
from fstore_batch.config.models import FeatureStoreConfig, FeatureTableSpec
from fstore_batch.errors import EmptyInputError, ValidationFailed
from fstore_batch.sources.hbase.datasource import hbase_reader
from fstore_batch.sources.hbase.scan import list_region_ranges
from fstore_batch.sources.hbase.schema import feature_schema
from fstore_batch.spark_errors import spark_boundary
from fstore_batch.storage.delta.catalog import (
    SnapshotInfo,
    is_delta_table,
    latest_snapshot,
    snapshot_metadata,
)
from fstore_batch.storage.delta.state import StateInfo, state_history, state_path, update_state
from fstore_batch.storage.delta.tables import append, current_version, ensure_writable
from fstore_batch.storage.delta.tiers import tiering

log = logging.getLogger(__name__)
QUARANTINE_TABLE = "quarantine"


@dataclass(frozen=True)
class SnapshotPlan:
    spec: FeatureTableSpec
    path: str
    as_of_ms: int
    since_ms: int | None
    mode: str  # initial | incremental | full | up_to_date
    snapshot_id: str
    previous: SnapshotInfo | None


def plan_snapshot(spark: SparkSession, cfg: FeatureStoreConfig, table: str, as_of_ms: int,
                  *, full: bool = False) -> SnapshotPlan:
    spec = cfg.table(table)
    path = cfg.storage.table_path(spec.name)
    prev = latest_snapshot(spark, path)
    as_of_iso = datetime.fromtimestamp(as_of_ms / 1000, UTC).isoformat(timespec="milliseconds")
    snapshot_id = f"{spec.name}@{as_of_iso}"
    if prev is None:
        return SnapshotPlan(spec, path, as_of_ms, None, "initial", snapshot_id, None)
    if full:
        return SnapshotPlan(spec, path, as_of_ms, None, "full", snapshot_id + "-full-" + uuid.uuid4().hex[:8], prev)
    since = int(prev.as_of_ms or 0)
    if as_of_ms <= since:
        return SnapshotPlan(spec, path, as_of_ms, since, "up_to_date", snapshot_id, prev)
    if prev.meta.get("config_hash") != config_hash(spec):
        log.warning("table %s: its config changed since snapshot %s; new columns get only new cells "
                    "(run with --full to backfill them)", spec.name, prev.meta.get("snapshot_id"))
    return SnapshotPlan(spec, path, as_of_ms, since, "incremental", snapshot_id, prev)


def run_snapshots(spark: SparkSession, cfg: FeatureStoreConfig, tables: Sequence[str], as_of_ms: int,
                  *, full: bool = False, allow_empty: bool = False, parallel: int = 2) -> list[dict[str, Any]]:
    """Snapshot ``tables`` (config names), up to ``parallel`` at a time; one metrics dict per
    table (:func:`run_snapshot`'s), in the order given.

    A small table's snapshot is mostly driver work (Delta log reads, planning, two commits) and
    HBase round trips, so two tables at a time keep two cores busy where one leaves them idle.
    Each table runs in a session of its own (:meth:`SparkSession.newSession` with this session's
    runtime settings), so the Delta settings one table scopes to its commit (commit metadata)
    never reach another table's. The tables are independent commits: when one fails, the ones
    already running finish, no other starts, and the first failure in ``tables`` order is raised.

    >>> [m["mode"] for m in run_snapshots(spark, cfg, ["user_profile", "item_stats"], as_of_ms)]  # doctest: +SKIP
    ['incremental', 'incremental']
    """
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    if parallel == 1 or len(tables) == 1:
        return [_logged_snapshot(spark, cfg, name, as_of_ms, full=full, allow_empty=allow_empty) for name in tables]
    settings = {k: v for k, v in spark.conf.getAll.items() if spark.conf.isModifiable(k)}

    def one(name: str) -> dict[str, Any]:
        session = spark.newSession()
        for key, value in settings.items():
            session.conf.set(key, value)
        # Delta reads settings from the JVM thread's active session: make it this table's.
        spark._jvm.SparkSession.setActiveSession(session._jsparkSession)  # type: ignore[union-attr]
        try:
            return _logged_snapshot(session, cfg, name, as_of_ms, full=full, allow_empty=allow_empty)
        finally:
            spark._jvm.SparkSession.clearActiveSession()  # type: ignore[union-attr]

    with ThreadPoolExecutor(max_workers=min(parallel, len(tables)), thread_name_prefix="snapshot") as pool:
        futures: list[Future[dict[str, Any]]] = [pool.submit(one, name) for name in tables]
        for future in futures:
            if future.exception() is not None:  # waits for it; then no table not yet started starts
                for pending in futures:
                    pending.cancel()
                break
    return [future.result() for future in futures]  # the first failure, in table order, is raised


def _logged_snapshot(spark: SparkSession, cfg: FeatureStoreConfig, table: str, as_of_ms: int,
                     *, full: bool, allow_empty: bool) -> dict[str, Any]:
    log.info("snapshot %s as of %s%s", table, datetime.fromtimestamp(as_of_ms / 1000, UTC).isoformat(),
             " (full re-read)" if full else "")
    metrics = run_snapshot(spark, cfg, table, as_of_ms, full=full, allow_empty=allow_empty)
    log.info("snapshot %s: %s", table, json.dumps(metrics, default=str))
    return metrics


def run_snapshot(spark: SparkSession, cfg: FeatureStoreConfig, table: str, as_of_ms: int,
                 *, full: bool = False, allow_empty: bool = False) -> dict[str, Any]:
    """Snapshot one table; return the run's metrics (also recorded in the Delta commit).

    A first or ``full`` snapshot of an HBase table with no cells up to ``as_of`` is an
    :class:`EmptyInputError` (nothing written) unless ``allow_empty``: an empty source there
    means a wrong table, prefix or time rather than no news.
    """
    started = time.monotonic()
    plan = plan_snapshot(spark, cfg, table, as_of_ms, full=full)
    base = {"table": plan.spec.name, "source_table": plan.spec.hbase_table, "path": plan.path,
            "mode": plan.mode, "snapshot_id": plan.snapshot_id, "as_of_ms": plan.as_of_ms,
            "since_ms": plan.since_ms}
    if plan.mode == "up_to_date":
        log.info("table %s: already snapshotted as of %s; nothing to do", plan.spec.name,
                 plan.previous.meta.get("as_of") if plan.previous else "?")
        repaired = _repair_state(spark, plan) if plan.spec.state.enabled and plan.previous else None
        return {**base, "version": plan.previous.version if plan.previous else None, "rows": 0, "cells": 0,
                "bytes": 0, "quarantined": 0, "regions": 0,
                **({"state_version": repaired.version} if repaired else {}),
                "seconds": round(time.monotonic() - started, 3)}

    ensure_writable(spark, cfg.storage.root)  # before the HBase scan, not after it
    hbase_name = f"HBase table '{plan.spec.hbase_table}'"
    with spark_boundary(what=hbase_name):
        listed = list_region_ranges(cfg.hbase, plan.spec.hbase_table)  # on the driver: HBase down fails here
        # One task per core, not per region: a Python task's start-up is not free (datasource.py).
        source = hbase_reader(spark, plan.spec, cfg.hbase, as_of_ms=plan.as_of_ms, since_ms=plan.since_ms,
                              max_partitions=spark.sparkContext.defaultParallelism, regions=listed)
    regions = len(listed)
    source = source.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with spark_boundary(what=hbase_name):
            counts = _source_counts(source)  # the one pass over HBase; every failure surfaces here
        if counts["cells"] == 0 and plan.mode in ("initial", "full") and not allow_empty:
            raise EmptyInputError(
                "HBase table", plan.spec.hbase_table,
                f"no cells with timestamp <= {datetime.fromtimestamp(plan.as_of_ms / 1000, UTC).isoformat()} "
                f"for a {plan.mode} snapshot of {plan.spec.name}")
        _check_bad_fraction(plan, counts, source)
        rows = _feature_rows(source, plan)
        if plan.mode == "full":
            rows = rows.join(spark.read.format("delta").load(plan.path).select(*_identity(plan.spec)),
                             on=_identity(plan.spec), how="left_anti")
            tier = tiering(spark, plan.path)
            if tier is not None:  # rows before the retention cutoff belong to the cold tier (or were dropped)
                rows = rows.where(F.col("event_ts") >= F.lit(tier.cutoff))
        metrics = {**base, "regions": regions, "cells": counts["cells"], "bytes": counts["bytes"],
                   "quarantined": counts["bad_cells"]}
        if counts["bad_cells"]:
            _write_quarantine(cfg, plan, source)
        n_rows = rows.count() if plan.mode == "full" else counts["good_rows"]
        state = _update_state(spark, plan, new_rows=rows) if plan.spec.state.enabled else None
        if state is not None:
            metrics["state_version"] = state.version
        meta = snapshot_metadata(**{k: v for k, v in metrics.items() if k != "path"}, rows=n_rows,
                                 as_of=datetime.fromtimestamp(plan.as_of_ms / 1000, UTC).isoformat(),
                                 config_hash=config_hash(plan.spec))
        append(rows, plan.path, user_metadata=meta, txn_app_id=f"fstore-snapshot/{plan.spec.name}",
               txn_version=plan.as_of_ms if plan.mode != "full" else None, properties=_table_properties(plan.spec))
    finally:
        source.unpersist()
    elapsed = time.monotonic() - started
    return {**metrics, "rows": n_rows, "version": current_version(spark, plan.path),
            "seconds": round(elapsed, 3), "cells_per_second": round(counts["cells"] / elapsed) if elapsed else None}


def _update_state(spark: SparkSession, plan: SnapshotPlan, *, new_rows: DataFrame) -> StateInfo:
    """Commit the state as of this snapshot, naming the history commit about to follow (state first)."""
    next_version = current_version(spark, plan.path) + 1 if is_delta_table(spark, plan.path) else 0
    return update_state(spark, plan.path, plan.spec.state_keys, [c.feature for c in plan.spec.columns],
                        events=plan.spec.state.events, as_of_ms=plan.as_of_ms, snapshot_id=plan.snapshot_id,
                        history_version=next_version, new_rows=new_rows, full=plan.mode == "full")


def _repair_state(spark: SparkSession, plan: SnapshotPlan) -> StateInfo | None:
    """A rerun after a run that died between its two commits: bring the state to the last snapshot."""
    last = plan.previous
    assert last is not None
    if any(s.history_version == last.version and s.snapshot_id == last.meta.get("snapshot_id")
           and list(s.keys) == plan.spec.state_keys and s.events >= plan.spec.state.events
           for s in state_history(spark, state_path(plan.path))):
        return None
    log.warning("table %s: its feature state is behind snapshot %s; repairing it", plan.spec.name,
                last.meta.get("snapshot_id"))
    return update_state(spark, plan.path, plan.spec.state_keys, [c.feature for c in plan.spec.columns],
                        events=plan.spec.state.events, as_of_ms=int(last.as_of_ms or 0),
                        snapshot_id=last.meta["snapshot_id"], history_version=last.version, new_rows=None)


def _identity(spec: FeatureTableSpec) -> list[str]:
    return [*spec.row_key.key_names, "event_ts"]


def _source_counts(source: DataFrame) -> dict[str, int]:
    keys_ok = F.col("_key_ok")
    row = (source.select(F.col("_cells"), F.col("_bytes"), F.size(F.coalesce("_bad", F.array())).alias("_nbad"),
                         _has_key(source).alias("_key_ok"), _has_value(source).alias("_has_value"))
           .agg(F.count(F.lit(1)).alias("rows"),
                F.coalesce(F.sum("_cells"), F.lit(0)).alias("cells"),
                F.coalesce(F.sum("_bytes"), F.lit(0)).alias("bytes"),
                F.coalesce(F.sum("_nbad"), F.lit(0)).alias("bad_cells"),
                F.count(F.when(keys_ok & F.col("_has_value"), 1)).alias("good_rows"))
           .first())
    return {k: int(row[k]) for k in ("rows", "cells", "bytes", "bad_cells", "good_rows")}


def _key_columns(source: DataFrame) -> list[str]:
    return source.columns[: source.columns.index("event_ts")]


def _has_key(source: DataFrame) -> Column:
    return reduce(lambda a, b: a & b, [F.col(c).isNotNull() for c in _key_columns(source)])


def _has_value(source: DataFrame) -> Column:
    start = source.columns.index("event_ts") + 1
    features = source.columns[start: source.columns.index("_cells")]
    return reduce(lambda a, b: a | b, [F.col(c).isNotNull() for c in features])


def _feature_rows(source: DataFrame, plan: SnapshotPlan) -> DataFrame:
    schema = feature_schema(plan.spec)
    rows = source.where(_has_key(source) & _has_value(source)).withColumn("snapshot_id", F.lit(plan.snapshot_id))
    return rows.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields])


def _check_bad_fraction(plan: SnapshotPlan, counts: dict[str, int], source: DataFrame) -> None:
    bad, cells = counts["bad_cells"], counts["cells"]
    if not bad or bad / cells <= plan.spec.max_bad_fraction:
        return
    examples = (source.where(F.size(F.coalesce("_bad", F.array())) > 0).select(F.explode("_bad").alias("b"))
                .select("b.*").limit(3).collect())
    shown = "; ".join(f"row {r.row_key!r} column {r.column} ts {r.ts_ms}: {r.reason}" for r in examples)
    raise ValidationFailed(
        f"table {plan.spec.name} (HBase '{plan.spec.hbase_table}'): {bad} of {cells} cells "
        f"({bad / cells:.2%}) do not decode, above max_bad_fraction {plan.spec.max_bad_fraction:.2%}; "
        f"nothing was written. Examples: {shown}",
        hint="fix the writer or the codec in the config, or raise max_bad_fraction for this table")


def _write_quarantine(cfg: FeatureStoreConfig, plan: SnapshotPlan, source: DataFrame) -> None:
    path = cfg.storage.table_path(QUARANTINE_TABLE)
    bad = (source.where(F.size(F.coalesce("_bad", F.array())) > 0)
           .select(F.explode("_bad").alias("b"))
           .select(F.lit(plan.snapshot_id).alias("snapshot_id"),
                   F.lit(plan.spec.name).alias("table"),
                   F.lit(plan.spec.hbase_table).alias("source_table"),
                   F.col("b.row_key").alias("row_key"),
                   F.col("b.column").alias("column"),
                   F.timestamp_millis(F.col("b.ts_ms")).alias("ts"),
                   F.col("b.raw").alias("raw"),
                   F.col("b.reason").alias("reason")))
    append(bad, path, user_metadata=snapshot_metadata(quarantine_for=plan.snapshot_id),
           txn_app_id=f"fstore-quarantine/{plan.spec.name}",
           txn_version=plan.as_of_ms if plan.mode != "full" else None)


def _table_properties(spec: FeatureTableSpec) -> dict[str, str]:
    m = spec.maintenance
    return {
        "delta.logRetentionDuration": f"interval {m.log_retention_days} days",
        "delta.deletedFileRetentionDuration": f"interval {m.vacuum_retention_hours} hours",
        "fstore.source_table": spec.hbase_table,
    }
