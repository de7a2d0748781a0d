"""One end-to-end run of the daily DAG, as `airflow dags test` runs it (DAG.test()), against a
temporary Airflow home: every task spark-submits its job with the real `spark-submit` to the local
Spark standalone cluster (`make cluster-up`, master spark://127.0.0.1:7077) named by the
`spark_default` connection, against the real HBase (seeded with the tiny sample under its own table
prefix), and the Delta outputs are there afterwards.

The library is not installed in this venv, so seeding and reading Delta run in the project's
`.venv` (`fstore-batch sample`, tests/support/delta_facts.py), as separate processes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.airflow.conftest import DAGS, MAIN_VENV, ROOT

DAG_ID = "fstore_ctr_sample"
DAY = "2026-10-20"
LOGICAL_DATE = "2026-10-21T00:00:00+00:00"  # a manual run at midnight: its data interval is the day before
AS_OF = LOGICAL_DATE  # the snapshots' as-of time: the end of the day
NEXT_DATE = "2026-10-22T00:00:00+00:00"  # the run whose skew check fails (faulty online log)
PREFIX = "af_e2e"  # HBase tables of this test: af_e2e_<table>
TABLES = ["user_profile", "user_events"]  # the pipeline's tables: one feature table, one event table
AIRFLOW = str(ROOT / ".venv-airflow" / "bin" / "airflow")
MASTER_HOST, MASTER_PORT = "spark://127.0.0.1", int(os.environ.get("FSTORE_SPARK_MASTER_PORT", "7077"))
MASTER_UI = f"http://127.0.0.1:{os.environ.get('FSTORE_SPARK_MASTER_UI_PORT', '8080')}/json/"
APP_NAME = "fstore-airflow-e2e"  # every job's application name on the cluster (the store config's spark.app_name)
JVM_OPTIONS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")
FAST_START_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert proc.returncode == 0, f"{args[:3]} failed:\n{proc.stdout[-15000:]}\n{proc.stderr[-5000:]}"
    return proc


def _yaml(path: Path, doc: dict) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> dict:
    """Configs derived from the shipped ones (conf/), pointing at a temporary storage root and the
    test's own HBase tables; the tiny sample seeded into them; a pipelines file for the DAG."""
    tmp = tmp_path_factory.mktemp("daily")
    conf = ROOT / "conf"
    store = yaml.safe_load((conf / "sample.yaml").read_text())
    store["hbase"]["table_prefix"] = PREFIX
    store["storage"]["root"] = str(tmp / "delta")
    store["spark"] = {"app_name": APP_NAME, "master": "local[2]",  # master: for the setup; the tasks take the connection's
                      "conf": {"spark.sql.shuffle.partitions": 2, "spark.ui.enabled": False,
                               "spark.databricks.delta.snapshotPartitions": 1}}  # Delta's log replay: 1 task, not 50
    store_file = _yaml(tmp / "store.yaml", store)

    # A two-table pipeline (a feature table and an event table for the sequences): every task kind
    # runs, at a third of the spark-submits of the six-table sample.
    ts = yaml.safe_load((conf / "training_sets" / "sample.yaml").read_text())
    ts["features"] = [f for f in ts["features"] if f["table"] in TABLES]
    ts["sequences"] = [s for s in ts["sequences"] if s["table"] in TABLES]
    ts["labels"]["path"] = str(tmp / "labels")
    ts["output"] = str(tmp / "delta" / "training" / ts["name"])
    ts_file = _yaml(tmp / "training_set.yaml", ts)

    skew = yaml.safe_load((conf / "skew" / "sample.yaml").read_text())
    names = {ref.get("prefix", "") + f for ref in ts["features"] for f in ref["features"]}
    names |= {f"{seq['name']}_{c}" for seq in ts["sequences"] for c in seq["columns"]}
    skew["features"] = [f for f in skew["features"] if f["name"] in names]
    skew["groups"] = {g: {**spec, "features": [f for f in spec["features"] if f in names]}
                      for g, spec in skew["groups"].items() if set(spec["features"]) & names}
    for check in ("max_null_rate", "ranges"):
        skew["expectations"][check] = {f: v for f, v in skew["expectations"][check].items() if f in names}
    skew.update(store_config=store_file, training_set=ts_file, metrics_table=str(tmp / "delta" / "skew_metrics"))
    skew["report"]["dir"] = str(tmp / "reports")
    skew_file = _yaml(tmp / "skew.yaml", skew)

    pipelines = yaml.safe_load((conf / "pipelines.yaml").read_text())
    pipelines["project_dir"] = str(ROOT)
    spark = pipelines["defaults"]["spark"]
    spark["conf"].update({"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
                          "spark.pyspark.python": str(MAIN_VENV / "bin" / "python"),
                          # tiny data on a 2-core machine: one executor per application, and JVMs that
                          # start fast (C1 only, serial GC) rather than peak on long jobs
                          "spark.cores.max": "1", **dict.fromkeys(JVM_OPTIONS, FAST_START_JVM)})
    spark["env"] = {"PYSPARK_PYTHON": str(MAIN_VENV / "bin" / "python")}
    pipelines["defaults"]["retries"] = dict.fromkeys(pipelines["defaults"]["retries"], 0)
    entry = pipelines["pipelines"][0]
    entry.update(store_config=store_file, training_set=ts_file, skew_config=skew_file,
                 online_log=str(tmp / "online_log"), tables=TABLES)
    entry["outputs"] = {"feature_root": store["storage"]["root"], "training_set": ts["output"],
                        "skew_metrics": skew["metrics_table"], "registry": str(tmp / "delta" / "registry")}
    pipelines_file = _yaml(tmp / "pipelines.yaml", pipelines)

    # What the online system served that day: the day's training rows, built beforehand from a
    # snapshot in a separate storage root, served as they are (clean) and with a fault. The setup
    # runs in one process of the project's venv (one JVM): `fstore-batch run` snapshots and builds.
    ref_store = _yaml(tmp / "ref_store.yaml", {**store, "storage": {"root": str(tmp / "reference")}})
    ref_skew = _yaml(tmp / "ref_skew.yaml", {**skew, "store_config": ref_store})
    reference = str(tmp / "reference" / "training")
    faults = _yaml(tmp / "faults.yaml", {"seed": 7, "faults": [{"feature": "u_country", "kind": "missing", "rate": 0.2}]})
    setup = [
        ["sample", "--size", "tiny", "-c", store_file, "--labels-out", ts["labels"]["path"]],
        ["run", ts_file, "-c", ref_store, "--date", DAY, "--out", reference, "--skip", "validate", "--skip", "publish"],
        ["sample-online-log", "-c", ref_skew, "--training-set", reference, "--clean", "--out", entry["online_log"]],
        ["sample-online-log", "-c", ref_skew, "--training-set", reference, "--faults", faults,
         "--out", str(tmp / "online_log_faulty")],
    ]
    _run(str(MAIN_VENV / "bin" / "python"), "tests/support/cli_batch.py", json.dumps(setup))
    failing = yaml.safe_load(Path(pipelines_file).read_text())
    failing["pipelines"][0]["online_log"] = str(tmp / "online_log_faulty")
    return {"tmp": tmp, "pipelines": pipelines_file, "failing_pipelines": _yaml(tmp / "failing.yaml", failing),
            "entry": entry, "ts": ts, "store": store}


def _airflow_env(home: Path, pipelines: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FSTORE_PIPELINES": pipelines,
        # the standalone cluster; spark-submit is the one of the project venv's pyspark, found on PATH
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": MASTER_HOST, "port": MASTER_PORT}),
        "PATH": f"{MAIN_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _dag_test(home: Path, pipelines: str, logical_date: str, *extra: str) -> dict:
    """`airflow dags test` (DAG.test()) of the daily DAG; the task states and asset events of the run."""
    proc = subprocess.run([AIRFLOW, "dags", "test", DAG_ID, logical_date, *extra], capture_output=True,
                          text=True, cwd=ROOT, env=_airflow_env(home, pipelines), check=False)
    with sqlite3.connect(home / "airflow.db") as db:
        [run_id] = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? AND substr(logical_date, 1, 10) = ?",
                              (DAG_ID, logical_date[:10])).fetchone()
        states = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                                 (DAG_ID, run_id)))
        events = [r[0] for r in db.execute(
            "SELECT a.uri FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE e.source_dag_id = ? AND e.source_run_id = ?", (DAG_ID, run_id))]
    return {"proc": proc, "states": states, "events": events}


@pytest.fixture(scope="module")
def airflow_home(deployment) -> Path:
    home = deployment["tmp"] / "airflow-home"
    _run(AIRFLOW, "db", "migrate", env=_airflow_env(home, deployment["pipelines"]))
    return home


@pytest.fixture(scope="module")
def dag_run(deployment, airflow_home, cluster_apps_before) -> dict:
    """The daily run for DAY, every task really run."""
    return _dag_test(airflow_home, deployment["pipelines"], LOGICAL_DATE)


def _cluster_apps() -> list[dict]:
    """The applications the standalone master has run under this test's name."""
    with urllib.request.urlopen(MASTER_UI, timeout=10) as r:
        state = json.load(r)
    return [a for a in state.get("completedapps", []) + state.get("activeapps", []) if a.get("name") == APP_NAME]


@pytest.fixture(scope="module")
def cluster_apps_before(deployment) -> set[str]:
    try:
        return {a["id"] for a in _cluster_apps()}
    except OSError as e:
        pytest.fail(f"the Spark cluster's master does not answer at {MASTER_UI} ({e}); start it with "
                    "`make cluster-up` (make test does)", pytrace=False)


def test_the_daily_run_succeeds_task_by_task(cluster_apps_before, dag_run, deployment):
    proc = dag_run["proc"]
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    tables = deployment["entry"]["tables"]
    assert dag_run["states"] == {**{f"snapshot_{t}": "success" for t in tables},
                                 "build_training_set": "success", "validate_skew": "success", "publish": "success"}
    ran = [a for a in _cluster_apps() if a["id"] not in cluster_apps_before]
    assert len(ran) == len(dag_run["states"]) and all(a["state"] == "FINISHED" for a in ran), ran  # each task on the cluster


def test_each_task_emits_its_delta_output_as_an_asset_event(dag_run, deployment):
    out = deployment["entry"]["outputs"]
    uris = [Path(p).as_uri() for p in (*(f"{out['feature_root']}/{t}" for t in deployment["entry"]["tables"]),
                                       out["training_set"], out["skew_metrics"], out["registry"])]
    assert sorted(dag_run["events"]) == sorted(uris)


def test_the_delta_outputs_hold_the_day(dag_run, deployment):
    out = deployment["entry"]["outputs"]
    tables = {t: f"{out['feature_root']}/{t}" for t in deployment["entry"]["tables"]}
    spec = deployment["tmp"] / "facts.json"
    spec.write_text(json.dumps({"tables": tables, "day": DAY, "ts": deployment["ts"]["labels"]["ts"],
                                "training_set": out["training_set"], "labels": deployment["ts"]["labels"]["path"],
                                "registry": out["registry"]}))
    proc = _run(str(MAIN_VENV / "bin" / "python"), "tests/support/delta_facts.py", str(spec))
    facts = json.loads(proc.stdout.strip().splitlines()[-1])

    for name, t in facts["tables"].items():
        assert t["versions"] == 1 and t["rows"] > 0, name  # one snapshot commit each, as of the day's end
    assert facts["labels_of_day"] > 0
    assert facts["training_set"]["dates"] == {DAY: facts["labels_of_day"]}  # the day's labels, nothing else
    [entry] = facts["registry"]
    assert (entry["training_set"], entry["date"], entry["rows"], entry["version"]) == (
        deployment["ts"]["name"], DAY, facts["labels_of_day"], 0)


def test_a_skew_breach_fails_the_run_and_nothing_is_published(dag_run, deployment, airflow_home):
    # the next day, against an online log that served u_country as null for 20% of requests; the
    # Spark steps before validation are marked done (their outputs are there from the first run)
    failed = _dag_test(airflow_home, deployment["failing_pipelines"], NEXT_DATE,
                       "--mark-success-pattern", "snapshot_.*|build_training_set")
    assert failed["proc"].returncode != 0 and "DagRun failed" in failed["proc"].stderr
    assert failed["states"]["validate_skew"] == "failed" and failed["states"]["publish"] == "upstream_failed"
    log = failed["proc"].stdout + failed["proc"].stderr
    assert "Error code is: 3" in log and "u_country" in log
    assert deployment["entry"]["outputs"]["registry"] not in "".join(failed["events"])
