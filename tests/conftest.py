"""Shared fixtures: one SparkSession and one HBase connection config for the whole test session.

HBase is started by `make test` (stack/hbase/hbasectl up). A test that needs it and cannot reach
it fails; it never skips.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fstore_batch.config import FeatureStoreConfig, HBaseConfig, SparkConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")  # pandas-on-Spark (used by assertDataFrameEqual) asks for it
SAMPLE_CONFIG = ROOT / "conf" / "sample.yaml"
# tests/airflow run in .venv-airflow, driven by tests/integration/test_airflow_dags.py
collect_ignore = ["airflow"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                     help="a Spark setting for the tests' session (repeatable), over the suite's own")


def pytest_configure(config: pytest.Config) -> None:
    from tests.support.parallel import NotebookThriftLock

    config.pluginmanager.register(NotebookThriftLock(), "fstore-notebook-thrift-lock")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.support.parallel import check_hbase_modules, check_module_units

    check_hbase_modules(items)
    check_module_units(items)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own; optional: xdist may be absent
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`make test` runs two processes (pytest -n 2 --dist loadscope): tests/support/parallel.py
    says which tests share what and keeps those in one process."""
    if config.getvalue("dist") in ("loadscope", "loadgroup"):
        from tests.support.parallel import make_scheduler

        return make_scheduler(config, log)
    return None


@pytest.fixture(scope="session")
def spark(pytestconfig):
    from fstore_batch.session import build_session

    extra = dict(kv.split("=", 1) for kv in pytestconfig.getoption("spark_conf"))

    session = build_session(SparkConfig(
        app_name="fstore-batch-tests",
        master="local[2]",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.ui.enabled": "false",
            "spark.sql.session.timeZone": "UTC",
            **extra,
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


@pytest.fixture()
def thrift_outage():
    """For a test that stops the real Thrift server: holds the Thrift lock exclusively, so the
    notebooks, which use HBase from the other test process, wait until the server is back."""
    from tests.support.parallel import thrift_lock

    with thrift_lock(exclusive=True):
        yield


@dataclass(frozen=True)
class SeededSample:
    """The tiny sample (seed 7) in the real HBase under table prefix ``t``, written once per test run."""

    config: FeatureStoreConfig  # the sample config with the prefix (storage.root: a session folder)
    data: Any  # fstore_batch.sample.generator.SampleData
    stats: list[dict[str, Any]]  # what write_sample reported per table
    labels: Path  # the label log (Parquet)


@pytest.fixture(scope="session")
def seeded_sample(hbase, sample_config, tmp_path_factory) -> SeededSample:
    """Tests read these HBase tables and never write to them; each writes Delta under its own root."""
    from fstore_batch.sample.generator import SampleSize, SampleSpec, generate
    from fstore_batch.sample.writer import write_sample

    folder = tmp_path_factory.mktemp("seeded_sample")
    cfg = sample_config.model_copy(update={
        "hbase": sample_config.hbase.model_copy(update={"table_prefix": "t"}),
        "storage": sample_config.storage.model_copy(update={"root": str(folder / "delta")})})
    data = generate(SampleSpec(SampleSize.preset("tiny"), seed=7))
    stats = write_sample(cfg, data, folder / "labels")
    return SeededSample(cfg, data, stats, folder / "labels")
