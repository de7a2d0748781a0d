"""Delta table maintenance driven by each table's config: compaction (OPTIMIZE, Z-order by the
entity key) and retention (VACUUM after ``vacuum_retention_hours``, log retention in days).

Compaction and VACUUM go through Delta's Python API (``DeltaTable.optimize().executeZOrderBy``,
``DeltaTable.vacuum``). Delta's Python API has no call that sets table properties, so the retention
properties are one ``ALTER TABLE delta.`<absolute path>` SET TBLPROPERTIES`` statement.

A feature table's state (``<root>/_state/<table>``) is maintained with it (:func:`maintain_state`):
its VACUUM keeps every file of the newest usable state, whatever the configured hours, since that
state need not be the state table's latest version (a run that died after its state commit, or the
compaction itself, comes after it)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fstore_batch.config.models import MaintenanceSpec, absolute_path
from fstore_batch.errors import DeltaTableNotFoundError
from fstore_batch.spark_errors import spark_boundary
from fstore_batch.storage.delta.catalog import snapshot_history
from fstore_batch.storage.delta.state import state_history, state_path, usable_states
from fstore_batch.storage.delta.tables import current_version, session_conf

log = logging.getLogger(__name__)
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


def maintain(spark: SparkSession, path: str, spec: MaintenanceSpec, *, optimize: bool = True,
             vacuum: bool = True) -> dict[str, Any]:
    """OPTIMIZE (Z-order by ``spec.zorder_by``), VACUUM after ``spec.vacuum_retention_hours`` and set
    the retention properties of the Delta table at ``path``; return the run's metrics.
    Raises :class:`DeltaTableNotFoundError`."""
    path = absolute_path(path)  # a path identifier in SQL must be absolute
    if not DeltaTable.isDeltaTable(spark, path):
        raise DeltaTableNotFoundError(path)
    with spark_boundary(what="Delta table", path=path):
        return _maintain(spark, path, spec, optimize=optimize, vacuum=vacuum)


def maintain_state(spark: SparkSession, table_path: str, spec: MaintenanceSpec, *, optimize: bool = True,
                   vacuum: bool = True) -> dict[str, Any] | None:
    """:func:`maintain` the feature state of the feature table at ``table_path`` (``None``: it has none),
    keeping its newest usable state, which the next snapshot and build read, readable.

    That state is read by version, and maintenance itself commits after it (OPTIMIZE, VACUUM's own
    log entries), so its VACUUM retention and ``delta.deletedFileRetentionDuration`` (Delta also
    refuses to time travel beyond it) are raised above that version's age when needed.

    >>> maintain_state(spark, "/data/fs/user_profile", MaintenanceSpec())  # doctest: +SKIP
    {'path': '/data/fs/_state/user_profile', ..., 'kept_version': 12}
    """
    path = absolute_path(state_path(table_path))
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    usable = usable_states(state_history(spark, path), snapshot_history(spark, table_path),
                           current_version(spark, table_path))
    keep = usable[0].version if usable else None
    hours = _hours_keeping(DeltaTable.forPath(spark, path), path, spec.vacuum_retention_hours, keep)
    kept = spec.model_copy(update={"vacuum_retention_hours": hours})
    return {**maintain(spark, path, kept, optimize=optimize, vacuum=vacuum), "kept_version": keep}


def _maintain(spark: SparkSession, path: str, spec: MaintenanceSpec, *, optimize: bool, vacuum: bool) -> dict[str, Any]:
    table = DeltaTable.forPath(spark, path)
    out: dict[str, Any] = {"path": path}
    started = time.monotonic()
    _set_retention_properties(spark, path, spec)
    if optimize:
        builder = table.optimize()
        metrics = builder.executeZOrderBy(*spec.zorder_by) if spec.zorder_by else builder.executeCompaction()
        m = metrics.select("metrics.numFilesAdded", "metrics.numFilesRemoved").first()
        out.update(optimize="zorder" if spec.zorder_by else "compaction", zorder_by=spec.zorder_by,
                   files_added=int(m[0]), files_removed=int(m[1]))
    if vacuum:
        out["files_before_vacuum"] = _data_files(spark, path)
        _vacuum(spark, table, spec.vacuum_retention_hours)
        out["files_after_vacuum"] = _data_files(spark, path)
        out["vacuum_retention_hours"] = spec.vacuum_retention_hours
    out["version"] = int(table.history(1).select("version").first()[0])
    out["seconds"] = round(time.monotonic() - started, 3)
    return out


def _hours_keeping(table: DeltaTable, path: str, hours: int, keep_version: int | None) -> int:
    """Retention hours under which ``keep_version`` stays readable: above its age (maintenance commits
    after it, so it is no longer the latest version, whose files VACUUM would never delete)."""
    if keep_version is None:
        return hours
    committed = table.history().where(F.col("version") == keep_version).select(F.unix_millis("timestamp")).first()[0]
    needed = math.ceil(max(time.time() * 1000 - committed, 0) / 3_600_000) + 1
    if needed > hours:
        log.info("%s: keeping %d h instead of %d h, for version %d (the newest usable state)", path, needed, hours,
                 keep_version)
    return max(hours, needed)


def _vacuum(spark: SparkSession, table: DeltaTable, hours: int) -> None:
    """VACUUM with the configured retention. Delta refuses < 168 h unless its safety check is
    off; the config is the user's explicit choice, so the check is lifted for this call only."""
    if hours >= 168:
        table.vacuum(float(hours))
        return
    with session_conf(spark, {RETENTION_CHECK: "false"}):
        table.vacuum(float(hours))


def _set_retention_properties(spark: SparkSession, path: str, spec: MaintenanceSpec) -> None:
    # The path is a validated StoragePath (no quotes, backticks or whitespace); escape anyway.
    ident = "delta.`" + path.replace("`", "``") + "`"
    spark.sql(
        f"ALTER TABLE {ident} SET TBLPROPERTIES ("
        f"'delta.logRetentionDuration' = 'interval {int(spec.log_retention_days)} days', "
        f"'delta.deletedFileRetentionDuration' = 'interval {int(spec.vacuum_retention_hours)} hours')"
    )


def _data_files(spark: SparkSession, path: str) -> int:
    """Parquet files physically present under the table (what VACUUM removes), via Hadoop FS."""
    jvm = spark.sparkContext._jvm  # Hadoop FileSystem has no Python API
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(conf)
    files = fs.listFiles(hpath, True)
    n = 0
    while files.hasNext():
        f = files.next().getPath()
        if f.getName().endswith(".parquet") and "_delta_log" not in f.toString():
            n += 1
    return n
