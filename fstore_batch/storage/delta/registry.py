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
from pyspark.sql import types as T

from fstore_batch.errors import DeltaTableNotFoundError, StorageError
from fstore_batch.joins.build import MANIFEST_KEY

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

    Reads only the Delta log. The row count is the commit's own ``numOutputRows``: a daily build
    writes exactly that day's rows.
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
            rows = (row.operationMetrics or {}).get("numOutputRows")
            return Publication(manifest["training_set"], day, path, int(row.version),
                               None if rows is None else int(rows), manifest.get("config_hash"),
                               datetime.now(UTC))
    which = f"version {version}" if version is not None else "any commit"
    raise StorageError(f"{path}: {which} is not a daily build of {day.isoformat()} "
                       f"(no manifest with window {window[0]} .. {window[1]})",
                       hint=f"run `fstore-batch build ... --date {day.isoformat()}` first")


def publish(spark: SparkSession, registry_path: str, entry: Publication) -> str:
    """Record ``entry`` in the registry; returns ``created``, ``published``, ``replaced`` or ``unchanged``."""
    row = spark.createDataFrame([tuple(asdict(entry).values())], SCHEMA)
    if not DeltaTable.isDeltaTable(spark, registry_path):
        row.write.format("delta").mode("append").save(registry_path)
        return "created"
    registry = DeltaTable.forPath(spark, registry_path)
    current = (registry.toDF()
               .where((registry.toDF().training_set == entry.training_set) & (registry.toDF().date == entry.date))
               .select("version").collect())
    if current and current[0].version == entry.version:
        return "unchanged"
    (registry.alias("r")
     .merge(row.alias("n"), "r.training_set = n.training_set AND r.date = n.date")
     .whenMatchedUpdateAll()
     .whenNotMatchedInsertAll()
     .execute())
    return "replaced" if current else "published"


def published(spark: SparkSession, registry_path: str, training_set: str | None = None) -> DataFrame:
    """The registry rows (of one training set), newest date first."""
    df = spark.read.format("delta").load(registry_path)
    if training_set is not None:
        df = df.where(df.training_set == training_set)
    return df.orderBy(df.date.desc())
