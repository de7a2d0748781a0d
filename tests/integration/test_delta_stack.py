"""Spark + Delta on the local stack: write, append, read back, time travel by version and time."""

from __future__ import annotations

from datetime import UTC, datetime

from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from fstore_batch.spark_local import local_frame


def test_write_append_read_and_time_travel(spark, tmp_path):
    path = str(tmp_path / "features")
    v0 = local_frame(spark, [(1, "a"), (2, "b")], "id long, v string")
    v0.write.format("delta").save(path)
    local_frame(spark, [(3, "c")], "id long, v string").write.format("delta").mode("append").save(path)
    # an instant between the two commits' timestamps (milliseconds; the second commit takes far longer than one)
    t0, t1 = [r[0] for r in DeltaTable.forPath(spark, path).history().orderBy("version")
              .select(F.unix_millis("timestamp")).collect()]
    assert t1 > t0
    between = datetime.fromtimestamp((t0 + (t1 - t0) // 2) / 1000, UTC)

    latest = spark.read.format("delta").load(path)
    assertDataFrameEqual(latest, [(1, "a"), (2, "b"), (3, "c")], checkRowOrder=False)

    as_v0 = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assertDataFrameEqual(as_v0, v0, checkRowOrder=False)

    as_of_time = spark.read.format("delta").option("timestampAsOf", between.isoformat()).load(path)
    assertDataFrameEqual(as_of_time, v0, checkRowOrder=False)

    history = DeltaTable.forPath(spark, path).history().orderBy("version").select("version", "operation").collect()
    assert [(r.version, r.operation) for r in history] == [(0, "WRITE"), (1, "WRITE")]


def test_session_uses_cached_delta_jars_offline(spark):
    from fstore_batch.session import DEFAULT_JARS_DIR

    jars = spark.conf.get("spark.jars")
    assert "delta-spark_4.1_2.13" in jars
    assert all(j.startswith(str(DEFAULT_JARS_DIR)) for j in jars.split(","))
    assert not spark.conf.get("spark.jars.packages", None)
