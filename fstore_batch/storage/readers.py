"""The one reader of event inputs (label logs, online serving logs): Parquet, Delta or JSON lines.

JSON has no timestamp type, so the time column of a JSON input must be an ISO 8601 string
**with a zone** (``2026-10-20T00:02:04Z``, ``...+02:00``); it is parsed to a TIMESTAMP, and a
naive time is an error naming the input, the column and the value. A missing path, an empty
folder or a zero-byte file is one :class:`~fstore_batch.errors.InputNotFoundError` naming the path.
"""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import InputNotFoundError, SchemaError
from fstore_batch.spark_errors import spark_boundary

ZONED = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"
FORMATS = ("parquet", "delta", "json")


def read_events(spark: SparkSession, path: str, fmt: str, *, what: str, ts: str | None = None,
                version: int | None = None) -> DataFrame:
    """The input at ``path`` (``fmt``: parquet | delta | json), its JSON time column ``ts`` parsed.

    ``what`` names the input in errors ("labels", "online log"); ``version`` pins a Delta version.

    >>> labels = read_events(spark, "labels.json", "json", what="labels", ts="event_ts")  # doctest: +SKIP
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")
    if fmt == "delta" and not DeltaTable.isDeltaTable(spark, path):
        raise InputNotFoundError(what, path, "not a Delta table")
    with spark_boundary(what=what, path=path, version=version):
        reader = spark.read.format(fmt)
        if fmt == "json":
            reader = reader.option("mode", "FAILFAST")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        df = reader.load(path)
        if fmt == "json" and ts is not None and ts in df.columns and isinstance(df.schema[ts].dataType, T.StringType):
            df = zoned_times(df, ts, f"{what} {path}")
    return df


def zoned_times(df: DataFrame, col: str, name: str) -> DataFrame:
    """``col`` (ISO 8601 strings) as a TIMESTAMP; a naive time (no zone) is a :class:`SchemaError`."""
    naive = df.where(F.col(col).isNotNull() & ~F.col(col).rlike(ZONED)).select(col).limit(1).collect()
    if naive:
        raise SchemaError(name, col, "ISO 8601 times with a zone (e.g. 2026-10-01T12:00:00Z or +02:00)",
                          f"a naive time '{naive[0][0]}'")
    return df.withColumn(col, F.to_timestamp(F.col(col)))
