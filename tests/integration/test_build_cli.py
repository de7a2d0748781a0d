"""`fstore-batch build | rebuild | status` as users run them (in-process), on config files they wrote; their errors."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from fstore_batch.spark_local import local_frame
from tests.support.cli import metrics, run_cli

T0 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def configs(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("build_cli")
    root = folder / "delta"
    local_frame(spark, [(u, T0 + timedelta(hours=h), u * 10 + h) for u in (1, 2) for h in (0, 2)],
                          "user_id long, event_ts timestamp, score long").write.format("delta").save(str(root / "profile"))
    local_frame(spark, [(f"r{i}", i % 3, T0 + timedelta(hours=5 * i), i % 2) for i in range(6)],  # r5 on Oct 2
                          "request_id string, user_id long, event_ts timestamp, label int").write.parquet(str(folder / "labels"))
    store = folder / "store.yaml"
    store.write_text(yaml.safe_dump({"storage": {"root": str(root)},
                                     "spark": {"master": "local[1]", "conf": {"spark.ui.enabled": "false"}}}))
    ts = folder / "ts.yaml"
    ts.write_text(yaml.safe_dump({
        "name": "cli_set", "labels": {"path": str(folder / "labels")}, "output": str(folder / "out"),
        "features": [{"table": "profile", "keys": {"user_id": "user_id"}, "features": ["score"], "ttl": "PT1H"}]}))
    return folder, store, ts


def test_build_shows_rows_and_manifest_and_rebuild_reproduces_it(configs):
    folder, store, ts = configs
    proc = run_cli("build", str(ts), "-c", str(store), "--show", "2")
    m = metrics(proc)
    assert m["rows"] == 6 and m["inputs"] == {"profile": {
        "path": str(folder / "delta" / "profile"), "version": 0, "state": None,
        "state_path": str(folder / "delta" / "_state" / "profile")}}
    assert '"training_set": "cli_set"' in proc.stdout and "score" in proc.stdout  # the manifest and the rows shown
    assert f"training set cli_set: 6 rows x 6 columns at {folder / 'out'}" in proc.stdout

    again = metrics(run_cli("rebuild", str(folder / "out"), "--out", str(folder / "again"), "-c", str(store)))
    assert again["rows"] == 6 and again["inputs"] == m["inputs"] and again["labels"] == m["labels"]

    proc = run_cli("status", "-c", str(store), "--training-set", str(folder / "out"),
               "--training-set", str(folder / "missing"))
    status = metrics(proc)
    assert status["training_sets"][0] == {"path": str(folder / "out"), "training_set": "cli_set", "version": 0,
                                          "rows": 6, "last_write_rows": 6, "columns": 6, "inputs": {"profile": 0}}
    assert f"training set cli_set: 6 rows x 6 columns, version 0 (profile@v0)  {folder / 'out'}" in proc.stdout
    assert f"training set at {folder / 'missing'}: not built yet" in proc.stdout

    # A daily build replaces one day: the table still holds every day, and status says so.
    assert metrics(run_cli("build", str(ts), "-c", str(store), "--date", "2026-10-02"))["rows"] == 1
    proc = run_cli("status", "-c", str(store), "--training-set", str(folder / "out"))
    assert metrics(proc)["training_sets"][0]["rows"] == 6
    assert "training set cli_set: 6 rows x 6 columns, version 1, its last build wrote 1 rows" in proc.stdout


def test_bad_inputs_fail_with_one_line_naming_the_problem(configs):
    folder, store, ts = configs
    proc = run_cli("build", str(ts), "-c", str(store), "--ts-set", "features.0.keys.uid=user_id")
    assert proc.returncode == 1
    assert "labels: column 'uid' expected a key column for feature table 'profile'" in proc.stderr

    proc = run_cli("build", str(ts), "-c", str(store), "--ts-set", "features.0.ttl=a week")
    assert proc.returncode == 2 and "key 'features[0].ttl': got 'a week', expected a valid timedelta" in proc.stderr

    proc = run_cli("rebuild", str(folder / "nothing"), "--out", str(folder / "x"), "-c", str(store))
    assert proc.returncode == 1 and f"no Delta table at {folder / 'nothing'}" in proc.stderr
