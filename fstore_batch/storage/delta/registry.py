"""The training-set registry: which Delta version of a training set is the validated one for a day.

Downstream consumers (model training jobs, other DAGs) read this small Delta table instead of
guessing a version: one row per ``(training_set, date)`` with the training set's path, the Delta
version that the daily build wrote for that date, its row count and when it was published.
Publishing the same date again replaces that row (one MERGE commit), or changes nothing when the
row already names the same version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import DeltaTableNotFoundError, EmptyInputError, StorageError
from fstore_batch.joins.build import MANIFEST_KEY
from fstore_batch.spark_errors import spark_boundary
from fstore_batch.spark_local import local_frame
from fstore_batch.storage.delta.tables import new_table_guard, with_conflict_retries

REGISTRY_TABLE = "training_set_registry"

SCHEMA = T.StructType([
    T.StructField("training_set", T.StringType(), False),
    T.StructField("date", T.DateType(), False),
    T.StructField("path", T.StringType(), False),
    T.StructField("version", T.LongType(), False),
    T.StructField("rows", T.LongType(), True),
    T.StructField("config_hash", T.StringType(), True),
    T.StructField("validated_at", T.TimestampType(), False),
])


@dataclass(frozen=True)
class Publication:
    """One registry row: the validated build of ``training_set`` for ``date``."""

    training_set: str
    date: date
    path: str
    version: int
    rows: int | None
    config_hash: str | None
    validated_at: datetime


def day_window(day: date) -> list[str]:
    """The ``[start, end)`` window (ISO strings) that ``build --date day`` records in its manifest."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    return [start.isoformat(), (start + timedelta(days=1)).isoformat()]


def build_of_day(spark: SparkSession, path: str, day: date, version: int | None = None) -> Publication:
    """The newest commit of the training set at ``path`` that built ``day`` (or exactly ``version``).

    The row count is the one the build observed and recorded in its manifest (``rows``): what
    the day holds. (The commit's ``numOutputRows`` is not it: a replaceWhere on a table that is
    not partitioned by day also counts the other days' rows it copies.) Builds older than that
    field are counted from the day's rows at that version.
    """
    if not DeltaTable.isDeltaTable(spark, path):
        raise DeltaTableNotFoundError(path)
    history = (DeltaTable.forPath(spark, path).history()
               .select("version", "userMetadata", "operationMetrics").collect())
    window = day_window(day)
    for row in sorted(history, key=lambda r: r.version, reverse=True):
        if version is not None and row.version != version:
            continue
        manifest: dict[str, Any] = json.loads(row.userMetadata or "{}").get(MANIFEST_KEY) or {}
        if manifest.get("window") == window:
            rows = manifest.get("rows")
            if rows is None:
                rows = _count_day(spark, path, int(row.version), manifest, window)
            return Publication(manifest["training_set"], day, path, int(row.version), int(rows),
                               manifest.get("config_hash"), datetime.now(UTC))
    which = f"version {version}" if version is not None else "any commit"
    raise StorageError(f"{path}: {which} is not a daily build of {day.isoformat()} "
                       f"(no manifest with window {window[0]} .. {window[1]})",
                       hint=f"run `fstore-batch build ... --date {day.isoformat()}` first")


def _count_day(spark: SparkSession, path: str, version: int, manifest: dict[str, Any], window: list[str]) -> int:
    ts = ((manifest.get("config") or {}).get("labels") or {}).get("ts", "event_ts")
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    return df.where((F.col(ts) >= F.lit(window[0]).cast("timestamp")) & (F.col(ts) < F.lit(window[1]).cast("timestamp"))).count()


def publish(spark: SparkSession, registry_path: str, entry: Publication, *, allow_empty: bool = False) -> str:
    """Record ``entry`` in the registry; returns ``created``, ``published``, ``replaced`` or ``unchanged``.

    A build with 0 rows is refused (:class:`EmptyInputError`) unless ``allow_empty``: publishing
    it would replace the day's validated data with nothing.
    """
    if entry.rows == 0 and not allow_empty:
        raise EmptyInputError("training set", entry.path,
                              f"the build of {entry.date.isoformat()} (version {entry.version}) has 0 rows, so it "
                              "would replace the published day with nothing")
    row = local_frame(spark, [tuple(asdict(entry).values())], SCHEMA)
    if not DeltaTable.isDeltaTable(spark, registry_path):
        with new_table_guard(spark, registry_path), spark_boundary(what="registry", path=registry_path):
            row.write.format("delta").mode("append").save(registry_path)
        return "created"
    registry = DeltaTable.forPath(spark, registry_path)
    current = (registry.toDF()
               .where((registry.toDF().training_set == entry.training_set) & (registry.toDF().date == entry.date))
               .select("version").collect())
    if current and current[0].version == entry.version:
        return "unchanged"
    merge = (registry.alias("r")
             .merge(row.alias("n"), "r.training_set = n.training_set AND r.date = n.date")
             .whenMatchedUpdateAll()
             .whenNotMatchedInsertAll())
    with spark_boundary(what="registry", path=registry_path):
        with_conflict_retries(merge.execute, registry_path)
    return "replaced" if current else "published"


def published(spark: SparkSession, registry_path: str, training_set: str | None = None) -> DataFrame:
    """The registry rows (of one training set), newest date first."""
    df = spark.read.format("delta").load(registry_path)
    if training_set is not None:
        df = df.where(df.training_set == training_set)
    return df.orderBy(df.date.desc())
