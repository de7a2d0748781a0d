"""The snapshot verbs as users run them: `fstore-batch snapshot | versions | maintain` and
`spark-submit jobs/snapshot_hbase.py`, on a config file they wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from delta.tables import DeltaTable

from fstore_batch.config import FeatureStoreConfig, FeatureTableSpec
from fstore_batch.sources.hbase.admin import create_presplit_tables, feature_table_layout
from fstore_batch.sources.hbase.codecs import encode
from fstore_batch.sources.hbase.connection import hbase_connection
from fstore_batch.sources.hbase.rowkey import RowKeyCodec
from tests.support.cli import metrics, run_cli, spark_submit

SPEC = FeatureTableSpec.model_validate({
    "name": "cli_profile", "hbase_table": "test_cli_profile", "history": True, "max_versions": 3,
    "row_key": {"salt": {"buckets": 2}, "parts": [{"name": "user_id", "type": "int64"}]},
    "columns": [{"column": "p:score", "feature": "score", "codec": "float64"}],
    "maintenance": {"zorder_by": ["user_id"], "vacuum_retention_hours": 0},
})


def _store_file(hbase, folder: Path, specs: list[FeatureTableSpec]) -> Path:
    cfg = FeatureStoreConfig.model_validate({"hbase": hbase.model_dump(), "storage": {"root": str(folder / "delta")},
                                             "spark": {"master": "local[2]", "conf": {"spark.ui.enabled": "false"}},
                                             "tables": [spec.model_dump() for spec in specs]})
    path = folder / "store.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def config_file(hbase, tmp_path_factory) -> Path:
    create_presplit_tables([feature_table_layout(SPEC)])
    keys = RowKeyCodec(SPEC.row_key)
    with hbase_connection(hbase) as conn:
        table = conn.table(SPEC.hbase_table)
        for uid in range(1, 7):
            for ts in (1_000, 2_000):
                table.put(keys.encode((uid,)), {b"p:score": encode(SPEC.columns[0].codec, uid + ts / 1e4)}, timestamp=ts)
    return _store_file(hbase, tmp_path_factory.mktemp("cli"), [SPEC])



def test_cli_snapshot_versions_and_maintain(config_file):
    m1 = metrics(run_cli("snapshot", "-c", str(config_file), "--table", "cli_profile", "--as-of", "1970-01-01T00:00:01.5Z"))
    assert m1["tables"]["cli_profile"]["mode"] == "initial" and m1["rows"] == 6 and m1["regions"] == 2
    m2 = metrics(run_cli("snapshot", "-c", str(config_file), "--table", "cli_profile", "--as-of", "2500"))
    assert m2["tables"]["cli_profile"]["mode"] == "incremental" and m2["rows"] == 6

    proc = run_cli("versions", "-c", str(config_file), "cli_profile")
    table_lines = proc.stdout.strip().splitlines()
    assert metrics(proc)["snapshots"] == 2
    assert "initial" in table_lines[2] and "incremental" in table_lines[3] and "test_cli_profile" in table_lines[3]

    m = metrics(run_cli("maintain", "-c", str(config_file), "cli_profile"))
    assert m["optimize"] == "zorder" and m["files_after_vacuum"] < m["files_before_vacuum"]


def test_snapshot_rejects_a_naive_as_of_time(config_file):
    proc = run_cli("snapshot", "-c", str(config_file), "--as-of", "2026-10-01T00:00:00")
    assert proc.returncode == 2 and "has no time zone" in proc.stderr


def test_spark_submit_job(config_file):
    proc = spark_submit("snapshot_hbase.py", "--config", str(config_file), "--full", "--as-of", "5000")
    m = metrics(proc)
    assert m["tables"]["cli_profile"]["mode"] == "full"
    assert '"event": "region_done"' in proc.stderr  # per-region progress from the executors while running
    assert m["rows"] == 0  # every cell is already there: a full re-read adds nothing twice


def test_tables_snapshotted_at_once_each_commit_their_own_metadata_and_a_failure_names_its_table(
        config_file, hbase, spark, tmp_path):
    # The same HBase table under three names, and a fourth whose HBase table does not exist; two at a time.
    twins = [SPEC.model_copy(update={"name": f"cli_twin{i}"}) for i in range(3)]
    missing = SPEC.model_copy(update={"name": "cli_missing", "hbase_table": "test_cli_no_such_table"})
    store = str(_store_file(hbase, tmp_path, [*twins, missing]))
    m = metrics(run_cli("snapshot", "-c", store, *[x for t in twins for x in ("--table", t.name)], "--as-of", "1500"))
    assert [m["tables"][t.name]["rows"] for t in twins] == [6, 6, 6]

    proc = run_cli("snapshot", "-c", store, "--table", "cli_missing", *[x for t in twins for x in ("--table", t.name)],
                   "--as-of", "2500", "--parallel", "2")
    assert proc.returncode == 1 and "test_cli_no_such_table" in proc.stderr.strip().splitlines()[-1]
    # The other tables are independent commits: those that started finished (no table starts after a
    # failure), and every commit names its own table and its own state commit.
    for twin in twins:
        commits = [json.loads(r.userMetadata)["fstore"] for r in DeltaTable.forPath(
            spark, str(tmp_path / "delta" / twin.name)).history().orderBy("version").collect()]
        state = {r.version: json.loads(r.userMetadata)["fstore_state"] for r in DeltaTable.forPath(
            spark, str(tmp_path / "delta" / "_state" / twin.name)).history().collect()}
        assert [c["snapshot_id"] for c in commits] == [
            f"{twin.name}@1970-01-01T00:00:0{s}.500+00:00" for s in (1, 2)][:len(commits)]
        assert [state[c["state_version"]]["snapshot_id"] for c in commits] == [c["snapshot_id"] for c in commits]
