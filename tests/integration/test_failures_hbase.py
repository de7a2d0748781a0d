"""Failure modes of issue 11 that involve the real HBase server and the storage root: HBase down
before a snapshot, a storage root that cannot be written, an HBase table with nothing to snapshot,
`doctor` on a bad root, and what a real `fstore-batch` process prints on stderr (no Spark noise)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from delta.tables import DeltaTable

from fstore_batch.config import FeatureStoreConfig, FeatureTableSpec
from fstore_batch.sources.hbase.admin import create_presplit_tables, feature_table_layout
from fstore_batch.sources.hbase.codecs import encode
from fstore_batch.sources.hbase.connection import hbase_connection
from fstore_batch.sources.hbase.rowkey import RowKeyCodec
from tests.support.cli import CLI, metrics, run, run_cli, spark_submit
from tests.support.tcp_proxy import ThriftProxy

SPEC = FeatureTableSpec.model_validate({
    "name": "fail_profile", "hbase_table": "test_fail_profile", "history": True, "max_versions": 3,
    "row_key": {"salt": {"buckets": 2}, "parts": [{"name": "user_id", "type": "int64"}]},
    "columns": [{"column": "p:score", "feature": "score", "codec": "float64"}],
    "maintenance": {"zorder_by": ["user_id"], "vacuum_retention_hours": 0},
})
AS_OF = "2026-10-20T00:00:00Z"
EARLY = "1970-01-01T00:00:00.500Z"  # before every cell


def _store(path: Path, root: str, port: int) -> Path:
    cfg = FeatureStoreConfig.model_validate({"hbase": {"port": port, "max_retries": 0, "timeout_ms": 2000},
                                             "storage": {"root": root}, "tables": [SPEC.model_dump()]})
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def hbase_table(hbase):
    create_presplit_tables([feature_table_layout(SPEC)])
    keys = RowKeyCodec(SPEC.row_key)
    with hbase_connection(hbase) as conn:
        table = conn.table(SPEC.hbase_table)
        for uid in range(1, 5):
            table.put(keys.encode((uid,)), {b"p:score": encode(SPEC.columns[0].codec, uid / 10)}, timestamp=1_000)
    return hbase


def _error_line(proc, code: int = 1) -> str:
    assert proc.returncode == code, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def test_hbase_down_before_snapshot_is_one_line_naming_the_server_and_writes_nothing(hbase_table, tmp_path):
    proxy = ThriftProxy(hbase_table.port)
    store = _store(tmp_path / "store.yaml", str(tmp_path / "delta"), proxy.port)
    proxy.close()  # HBase (as this config sees it) is down; the real server keeps running for others
    line = _error_line(run_cli("snapshot", "-c", str(store), "--table", SPEC.name, "--as-of", AS_OF))
    assert f"HBase Thrift at 127.0.0.1:{proxy.port} (table '{SPEC.hbase_table}'" in line and "is unreachable" in line
    assert "hint: start it with `make hbase-up`" in line
    assert not (tmp_path / "delta" / SPEC.name).exists()


def test_unwritable_storage_root_fails_before_the_hbase_scan_and_doctor_reports_it(tmp_path, free_port):
    (tmp_path / "a_file").write_text("not a folder")
    root = str(tmp_path / "a_file" / "delta")
    store = _store(tmp_path / "store.yaml", root, free_port)  # HBase unreachable: the root must fail first
    line = _error_line(run_cli("snapshot", "-c", str(store), "--table", SPEC.name, "--as-of", AS_OF))
    assert f"cannot write to {root}: " in line and "nothing was written" in line and "HBase" not in line

    proc = run_cli("doctor", "-c", str(store), "--skip-spark")
    assert proc.returncode == 1
    assert f"[FAIL] storage root: {root} is not writable" in proc.stdout
    assert "fix: fix its permissions, or set storage.root" in proc.stdout


def test_an_empty_first_or_full_snapshot_is_refused_unless_allowed(hbase_table, spark, tmp_path):
    store = _store(tmp_path / "store.yaml", str(tmp_path / "delta"), hbase_table.port)
    path = str(tmp_path / "delta" / SPEC.name)
    line = _error_line(run_cli("snapshot", "-c", str(store), "--table", SPEC.name, "--as-of", EARLY))
    assert f"HBase table {SPEC.hbase_table}: no cells with timestamp <= 1970-01-01T00:00:00.500000+00:00" in line
    assert "--allow-empty" in line and not os.path.exists(path)

    assert metrics(run_cli("snapshot", "-c", str(store), "--table", SPEC.name, "--as-of", AS_OF))["rows"] == 4
    line = _error_line(run_cli("snapshot", "-c", str(store), "--table", SPEC.name, "--as-of", EARLY, "--full"))
    assert "for a full snapshot of fail_profile; nothing was written" in line
    assert DeltaTable.forPath(spark, path).history().count() == 1


def test_a_real_process_prints_one_line_and_no_spark_log_noise(tmp_path):
    store = _store(tmp_path / "store.yaml", str(tmp_path / "delta"), 9090)
    ts = tmp_path / "ts.yaml"
    ts.write_text(yaml.safe_dump({"name": "noise", "labels": {"path": str(tmp_path / "no_labels")},
                                  "output": str(tmp_path / "out"), "features": []}))
    proc = run(*CLI, "build", str(ts), "-c", str(store), "--date", "2026-10-20")
    line = _error_line(proc)
    assert line == f"fstore-batch build: error: labels {tmp_path / 'no_labels'}: no such file or directory " \
                   "(hint: check the path (relative paths are taken from the current directory))"
    # The JVM itself may say it loaded an incubator module; nothing else but the error line.
    others = [x for x in proc.stderr.splitlines() if x.strip() and x != line and not x.startswith("WARNING: Using incubator")]
    assert others == [], proc.stderr


def test_a_spark_submit_job_prints_one_line_not_a_traceback(tmp_path):
    store = _store(tmp_path / "store.yaml", str(tmp_path / "delta"), 9090)
    (tmp_path / "empty_labels").mkdir()
    ts = tmp_path / "ts.yaml"
    ts.write_text(yaml.safe_dump({"name": "job_set", "labels": {"path": str(tmp_path / "empty_labels")},
                                  "output": str(tmp_path / "out"), "features": []}))
    proc = spark_submit("build_training_set.py", "--config", str(store), str(ts), "--date", "2026-10-20")
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr  # spark-submit merges the Python driver's stderr into its stdout
    errors = [x for x in output.splitlines() if ": error: " in x]
    assert len(errors) == 1 and "Traceback" not in output and "Py4JJavaError" not in output, output[-3000:]
    assert errors[0].startswith(f"fstore-batch build: error: labels {tmp_path / 'empty_labels'}: no data files to read")
    assert not (tmp_path / "out").exists()
