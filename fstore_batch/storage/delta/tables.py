"""Small, explicit Delta I/O helpers: append as one commit (creating the table on first write)."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession


def append(df: DataFrame, path: str, *, user_metadata: str, txn_app_id: str | None = None,
           txn_version: int | None = None, properties: dict[str, str] | None = None) -> None:
    """Append ``df`` to the Delta table at ``path`` as one commit carrying ``user_metadata``.

    The first append creates the table (in that same commit) with ``properties`` (``delta.*``
    table properties). With ``txn_app_id``/``txn_version``, Delta skips the write when that
    application already committed this or a later version (idempotent reruns).
    """
    writer = df.write.format("delta").mode("append").option("userMetadata", user_metadata)
    if txn_app_id is not None and txn_version is not None:
        writer = writer.option("txnAppId", txn_app_id).option("txnVersion", str(txn_version))
    if properties and not DeltaTable.isDeltaTable(df.sparkSession, path):
        for key, value in properties.items():
            writer = writer.option(key, value)
    writer.save(path)


def current_version(spark: SparkSession, path: str) -> int:
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
