"""The one place a SparkSession is built.

Locally (plain ``python``, notebooks, tests) the session runs on ``spark.master`` from config
(``local[*]`` by default) with Delta's jars loaded from the project's jar cache, so nothing is
resolved over the network. Under ``spark-submit`` the master, jars and packages are whatever
spark-submit was given; this module never overrides them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from fstore_batch.config.models import SparkConfig
from fstore_batch.errors import EnvironmentSetupError
from fstore_batch.spark_logging import local_log_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JARS_DIR = PROJECT_ROOT / ".cache" / "spark-jars"

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
DEFAULT_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
}

# Local mode only: Spark's defaults assume a cluster (under spark-submit the cluster's
# spark-defaults.conf decides). VACUUM's file listing, for one, fans out into 10,000 tasks by
# default, which takes a minute on a laptop for a ten-file table; 200 shuffle partitions and 50
# Delta log-replay partitions are as far off for a few cores.
LOCAL_DEFAULTS = {
    "spark.driver.bindAddress": "127.0.0.1",  # listen on loopback only
    "spark.driver.host": "127.0.0.1",
    "spark.sql.shuffle.partitions": "8",  # AQE coalesces them further to the data's size
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
    "spark.databricks.delta.snapshotPartitions": "4",
}


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (its JVM already exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def delta_jars(jars_dir: Path | None = None) -> list[Path]:
    """The cached Delta jars; raise with the fix when they are missing."""
    folder = jars_dir or Path(os.environ.get("FSTORE_SPARK_JARS_DIR", DEFAULT_JARS_DIR))
    jars = sorted(folder.glob("*.jar"))
    if not any(j.name.startswith("delta-spark_") for j in jars):
        raise EnvironmentSetupError(
            f"Delta jars not found in {folder}",
            hint="run `make jars` once (fetches io.delta:delta-spark_4.1_2.13 into the project cache)",
        )
    return jars


def s3a_classpath(jars_dir: Path | None = None) -> str | None:
    """The class-path entry of the cached s3a connector (hadoop-aws + AWS SDK bundle), if fetched.

    A class-path entry, not ``spark.jars``: the SDK bundle is 600 MB, which ``spark.jars`` would
    copy into every executor's (and, in local mode, the session's) work folder at start-up.
    """
    folder = (jars_dir or Path(os.environ.get("FSTORE_SPARK_JARS_DIR", DEFAULT_JARS_DIR))) / "s3a"
    return str(folder / "*") if any(folder.glob("hadoop-aws-*.jar")) else None


def build_session(cfg: SparkConfig | None = None, *, conf: dict[str, str] | None = None) -> SparkSession:
    """Build a SparkSession with Delta enabled, or return the active one unchanged.

    An active session (a notebook's, a test run's, or one verb of ``fstore-batch run`` after
    another) is reused as it is: its settings are not overwritten by ``cfg``, which applies only
    when a session is built.

    >>> spark = build_session()  # doctest: +SKIP
    >>> spark.range(3).count()  # doctest: +SKIP
    3
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        _check_delta(active)
        return active
    cfg = cfg or SparkConfig()
    builder = SparkSession.builder.appName(cfg.app_name)
    settings = {**DEFAULT_CONF, **cfg.conf, **(conf or {}), **DELTA_CONF}
    if not launched_by_spark_submit():
        settings = {**LOCAL_DEFAULTS, **local_log_settings(), **settings}  # Spark's log4j lines to a file
        builder = builder.master(cfg.master)
        # Local Python workers (UDFs, the HBase data source's planner and readers) run this
        # interpreter, whose environment has happybase and pyarrow. The JVM reads it from the
        # environment it inherits; on a cluster, spark-submit's own settings decide.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the JVM resolves its address at start-up
        jars = ",".join(str(j) for j in delta_jars())
        existing = settings.get("spark.jars")
        settings["spark.jars"] = f"{existing},{jars}" if existing else jars
        s3a = s3a_classpath()  # s3a:// paths work locally too (conf/profiles/cluster.yaml)
        if s3a:
            existing = settings.get("spark.driver.extraClassPath")
            settings["spark.driver.extraClassPath"] = f"{existing}{os.pathsep}{s3a}" if existing else s3a
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    _check_delta(spark)
    return spark


def _check_delta(spark: SparkSession) -> None:
    exts = spark.conf.get("spark.sql.extensions", "") or ""
    if "DeltaSparkSessionExtension" not in exts:
        raise EnvironmentSetupError(
            "the active SparkSession was built without Delta "
            "(spark.sql.extensions lacks io.delta.sql.DeltaSparkSessionExtension)",
            hint="stop it and build sessions with fstore_batch.session.build_session()",
        )
