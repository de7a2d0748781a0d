"""Shared fixtures: one SparkSession and one HBase connection config for the whole test session.

HBase is started by `make test` (stack/hbase/hbasectl up). A test that needs it and cannot reach
it fails; it never skips.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from fstore_batch.config import FeatureStoreConfig, HBaseConfig, SparkConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")  # pandas-on-Spark (used by assertDataFrameEqual) asks for it
SAMPLE_CONFIG = ROOT / "conf" / "sample.yaml"
# tests/airflow run in .venv-airflow, driven by tests/integration/test_airflow_dags.py
collect_ignore = ["airflow"]


@pytest.fixture(scope="session")
def spark():
    from fstore_batch.session import build_session

    session = build_session(SparkConfig(
        app_name="fstore-batch-tests",
        master="local[2]",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.ui.enabled": "false",
            "spark.sql.session.timeZone": "UTC",
        },
    ))
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_config() -> FeatureStoreConfig:
    return load_config(FeatureStoreConfig, SAMPLE_CONFIG, env={})


@pytest.fixture(scope="session")
def hbase(sample_config: FeatureStoreConfig) -> HBaseConfig:
    """The real HBase Thrift server's config; fails the test when the server is not up."""
    from fstore_batch.sources.hbase.health import probe

    try:
        probe(sample_config.hbase)
    except Exception as e:  # noqa: BLE001 - any failure means the stack is not usable
        pytest.fail(f"HBase is not reachable at {sample_config.hbase.host}:{sample_config.hbase.port} "
                    f"({e}); start it with `make hbase-up` (make test does)", pytrace=False)
    return sample_config.hbase


@pytest.fixture()
def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
