"""Delta table maintenance driven by each table's config: compaction (OPTIMIZE, Z-order by the
entity key) and retention (VACUUM after ``vacuum_retention_hours``, log retention in days).

Compaction and VACUUM go through Delta's Python API (``DeltaTable.optimize().executeZOrderBy``,
``DeltaTable.vacuum``). Delta's Python API has no call that sets table properties, so the retention
properties are one ``ALTER TABLE delta.`<absolute path>` SET TBLPROPERTIES`` statement."""

from __future__ import annotations

import logging
import time
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from fstore_batch.config.models import MaintenanceSpec, absolute_path
from fstore_batch.errors import DeltaTableNotFoundError
from fstore_batch.spark_errors import spark_boundary

log = logging.getLogger(__name__)
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


def maintain(spark: SparkSession, path: str, spec: MaintenanceSpec, *, optimize: bool = True,
             vacuum: bool = True) -> dict[str, Any]:
    path = absolute_path(path)  # a path identifier in SQL must be absolute
    if not DeltaTable.isDeltaTable(spark, path):
        raise DeltaTableNotFoundError(path)
    with spark_boundary(what="Delta table", path=path):
        return _maintain(spark, path, spec, optimize=optimize, vacuum=vacuum)


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


def _vacuum(spark: SparkSession, table: DeltaTable, hours: int) -> None:
    """VACUUM with the configured retention. Delta refuses < 168 h unless its safety check is
    off; the config is the user's explicit choice, so the check is lifted for this call only."""
    if hours >= 168:
        table.vacuum(float(hours))
        return
    previous = spark.conf.get(RETENTION_CHECK, "true")
    spark.conf.set(RETENTION_CHECK, "false")
    try:
        table.vacuum(float(hours))
    finally:
        spark.conf.set(RETENTION_CHECK, previous)


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
