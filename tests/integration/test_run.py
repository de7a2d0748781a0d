"""`fstore-batch run`: the daily pipeline for one day in one process, against the real HBase and
real Delta tables (in-process, on the test session's SparkSession)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.joins.build import build_training_set, read_manifest
from fstore_batch.storage.delta.registry import REGISTRY_TABLE
from fstore_batch.storage.delta.state import state_history, state_path
from tests.conftest import ROOT
from tests.support.cli import metrics, run_cli

DAY = "2026-10-20"
NEXT_DAY = "2026-10-21"
TABLES = ["user_profile", "user_events"]


def _yaml(path: Path, doc: dict) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def deployment(seeded_sample, tmp_path_factory) -> dict:
    """The shipped configs pointed at the seeded sample's HBase tables and a storage root of this
    module's, cut down to a feature table and an event table."""
    tmp = tmp_path_factory.mktemp("run")
    conf = ROOT / "conf"
    store = seeded_sample.config.model_dump(mode="json")
    store["storage"]["root"] = str(tmp / "delta")
    ts = yaml.safe_load((conf / "training_sets" / "sample.yaml").read_text())
    ts["features"] = [f for f in ts["features"] if f["table"] in TABLES]
    ts["labels"]["path"] = str(seeded_sample.labels)
    ts["output"] = str(tmp / "delta" / "training" / ts["name"])
    files = {"store": _yaml(tmp / "store.yaml", store), "ts": _yaml(tmp / "ts.yaml", ts)}
    skew = yaml.safe_load((conf / "skew" / "sample.yaml").read_text())
    keep = {"u_age", "u_country", "u_lifetime_value", "u_sessions_7d", "u_is_premium", "clicks_item_id"}
    skew.update(store_config=files["store"], training_set=files["ts"], metrics_table=str(tmp / "delta" / "skew_metrics"),
                features=[f for f in skew["features"] if f["name"] in keep],
                groups={"sequences": skew["groups"]["sequences"]}, report={"dir": str(tmp / "reports")})
    skew["expectations"].update(max_null_rate={}, ranges={"u_age": [13, 120]})
    files["skew"] = _yaml(tmp / "skew.yaml", skew)
    files["faults"] = _yaml(tmp / "faults.yaml", {"seed": 7, "faults": [
        {"feature": "u_country", "kind": "missing", "rate": 0.2}]})
    return {"tmp": tmp, "files": files, "ts": ts, "registry": str(tmp / "delta" / REGISTRY_TABLE)}


@pytest.fixture(scope="module")
def first_run(deployment):
    f = deployment["files"]
    return run_cli("run", f["ts"], "-c", f["store"], "--date", DAY)


def test_run_snapshots_builds_and_publishes_the_day(spark, deployment, first_run):
    m = metrics(first_run)
    assert [s["step"] for s in m["steps"]] == ["snapshot", "build", "publish"] and m["failed_step"] is None
    out = first_run.stdout
    snapshot, build, publish = (json.loads(line)["metrics"] for line in out.splitlines() if line.startswith('{"job"')
                                and json.loads(line)["job"] in ("snapshot", "build", "publish"))
    assert sorted(snapshot["tables"]) == sorted(TABLES)  # only what the training set reads
    assert all(t["mode"] == "initial" for t in snapshot["tables"].values())
    labels = spark.read.parquet(deployment["ts"]["labels"]["path"])
    of_day = labels.where(F.to_date("event_ts") == F.lit(DAY)).count()
    assert build["rows"] == of_day > 0 and build["window"][0].startswith(DAY)
    assert publish["rows"] == of_day and publish["date"] == DAY
    [entry] = spark.read.format("delta").load(deployment["registry"]).collect()
    assert (entry.date.isoformat(), entry.rows) == (DAY, of_day)
    assert "step 1/3 snapshot" in first_run.stderr and "step 3/3 publish" in first_run.stderr


def test_a_skew_breach_stops_the_run_before_publish(spark, deployment, first_run):
    f, tmp = deployment["files"], deployment["tmp"]
    faulty = str(tmp / "online_log_faulty")
    assert run_cli("sample-online-log", "-c", f["skew"], "--training-set", deployment["ts"]["output"],
                   "--faults", f["faults"], "--out", faulty).returncode == 0
    proc = run_cli("run", f["ts"], "-c", f["store"], "--date", DAY, "--skew-config", f["skew"], "--online-log", faulty)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "u_country" in proc.stderr.strip().splitlines()[-1]  # the one error line names the feature
    m = json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]
    assert [s["step"] for s in m["steps"]] == ["snapshot", "build", "validate"] and m["failed_step"] == "validate"
    snapshot = next(json.loads(line)["metrics"] for line in proc.stdout.splitlines() if '"job": "snapshot"' in line)
    assert all(t["mode"] == "up_to_date" for t in snapshot["tables"].values())  # the rerun adds nothing
    assert spark.read.format("delta").load(deployment["registry"]).count() == 1  # nothing new published


def test_a_bad_step_argument_fails_before_anything_runs(deployment):
    f = deployment["files"]
    proc = run_cli("run", f["ts"], "-c", f["store"], "--date", DAY, "--skip", "everything")
    assert proc.returncode == 2 and "invalid choice: 'everything'" in proc.stderr


def test_the_next_day_reads_the_feature_state_and_gets_the_full_history_rows(spark, deployment, first_run):
    f, tmp = deployment["files"], deployment["tmp"]
    nxt = run_cli("run", f["ts"], "-c", f["store"], "--date", NEXT_DAY, "--skip", "publish")
    snapshot, build = (json.loads(line)["metrics"] for line in nxt.stdout.splitlines()
                       if line.startswith('{"job"') and json.loads(line)["job"] in ("snapshot", "build"))
    assert all(t["mode"] == "incremental" and t["state_version"] == 1 for t in snapshot["tables"].values())
    manifest = read_manifest(spark, deployment["ts"]["output"])
    states = {t: i["state"] for t, i in manifest["inputs"].items()}
    assert {t: (s["version"], s["history_version"]) for t, s in states.items()} == {t: (0, 0) for t in TABLES}
    history = {t: {**i, "state": None} for t, i in manifest["inputs"].items()}  # the same versions, no state
    cfg = TrainingSetConfig.model_validate(manifest["config"])
    window = tuple(datetime.fromisoformat(w) for w in manifest["window"])
    build_training_set(spark, cfg, history, output=str(tmp / "from_history"), labels=manifest["labels"], window=window)
    day = spark.read.format("delta").load(deployment["ts"]["output"]).where(F.col("label_date") == NEXT_DAY)
    assert build["rows"] == day.count() > 0
    assertDataFrameEqual(day, spark.read.format("delta").load(str(tmp / "from_history")), checkRowOrder=False)


def test_an_empty_snapshot_day_moves_the_state_on_and_its_rerun_is_quiet(spark, deployment, first_run):
    """Past the sample's last cell: a snapshot with no new rows still commits the table's state, as of
    its own as-of and naming its own history commit (so the next build can read it), and its rerun
    changes nothing and repairs nothing. Last in this module: it moves the tables past the days above."""
    f = deployment["files"]
    path = state_path(str(deployment["tmp"] / "delta" / "user_profile"))
    assert run_cli("snapshot", "-c", f["store"], "--table", "user_profile",
                   "--as-of", "2026-11-02T00:00:00Z").returncode == 0  # the rest of the sample
    empty = metrics(run_cli("snapshot", "-c", f["store"], "--table", "user_profile",
                            "--as-of", "2026-11-03T00:00:00Z"))["tables"]["user_profile"]
    assert (empty["mode"], empty["rows"]) == ("incremental", 0)
    state = state_history(spark, path)[-1]
    assert (state.version, state.history_version) == (empty["state_version"], empty["version"])
    assert state.as_of_ms == int(datetime.fromisoformat("2026-11-03T00:00:00+00:00").timestamp() * 1000)
    rerun = run_cli("snapshot", "-c", f["store"], "--table", "user_profile", "--as-of", "2026-11-03T00:00:00Z")
    again = metrics(rerun)["tables"]["user_profile"]
    assert (again["mode"], again["version"], again["state_version"]) == ("up_to_date", empty["version"], None)
    assert "repairing" not in rerun.stderr and state_history(spark, path)[-1] == state
