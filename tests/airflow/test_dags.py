"""Every DAG file imports cleanly, and each daily pipeline DAG is what conf/pipelines.yaml and the
docs say: the tasks, their order, spark-submit of the jobs/ entry points with the day templated in,
retries, timeouts and the Delta outputs as Assets."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from tests.airflow.conftest import DAGS, ROOT

PIPELINES = yaml.safe_load((ROOT / "conf" / "pipelines.yaml").read_text())
SAMPLE = PIPELINES["pipelines"][0]
DAY_START = datetime(2026, 10, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=DAGS)


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags[f"fstore_{SAMPLE['name']}"]


def render(task, args):
    return task.render_template(args, {"data_interval_start": DAY_START,
                                       "data_interval_end": DAY_START + timedelta(days=1)})


def test_every_dag_file_imports_without_errors_or_the_library(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == sorted(f"fstore_{p['name']}" for p in PIPELINES["pipelines"])
    assert not any(m == "fstore_batch" or m.startswith("fstore_batch.") for m in sys.modules), \
        "DAG files must not import the library at parse time"


def test_the_task_graph_is_snapshots_in_parallel_then_build_validate_publish(dag):
    snapshots = {f"snapshot_{t}" for t in SAMPLE["tables"]}
    assert set(dag.task_ids) == snapshots | {"build_training_set", "validate_skew", "publish"}
    for tid in snapshots:
        task = dag.get_task(tid)
        assert task.upstream_task_ids == set() and task.downstream_task_ids == {"build_training_set"}
    assert dag.get_task("build_training_set").upstream_task_ids == snapshots
    assert dag.get_task("validate_skew").upstream_task_ids == {"build_training_set"}
    assert dag.get_task("publish").upstream_task_ids == {"validate_skew"}
    assert dag.get_task("publish").downstream_task_ids == set()


def test_each_task_spark_submits_a_job_with_retries_and_a_timeout(dag):
    jobs = {"build_training_set": "build_training_set.py", "validate_skew": "validate_skew.py",
            "publish": "publish_training_set.py"}
    defaults = PIPELINES["defaults"]
    for task in dag.tasks:
        assert isinstance(task, SparkSubmitOperator)
        job = jobs.get(task.task_id, "snapshot_hbase.py")
        assert task.application == str(ROOT / "jobs" / job)
        assert (ROOT / "jobs" / job).is_file(), f"{task.task_id} submits jobs/{job}, which does not exist"
        stage = {"build_training_set": "build", "validate_skew": "validate"}.get(
            task.task_id, "snapshot" if task.task_id.startswith("snapshot_") else task.task_id)
        assert task.retries == defaults["retries"][stage]
        assert task.execution_timeout == timedelta(minutes=defaults["timeout_minutes"][stage])
        assert task.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
        assert task.jars == str(ROOT / ".cache" / "spark-jars" / "*.jar")
    assert dag.get_task("validate_skew").retries == 0  # a skew breach is not transient


def test_the_day_is_templated_from_the_data_interval(dag):
    store = str(ROOT / SAMPLE["store_config"])
    training_set_out = str(ROOT / SAMPLE["outputs"]["training_set"])
    snap = dag.get_task("snapshot_user_profile")
    assert render(snap, snap.application_args) == [
        "--config", store, "--table", "user_profile", "--as-of", "2026-10-21T00:00:00+00:00"]
    build = dag.get_task("build_training_set")
    assert render(build, build.application_args) == [
        "--config", store, str(ROOT / SAMPLE["training_set"]), "--date", "2026-10-20", "--out", training_set_out]
    validate = dag.get_task("validate_skew")
    assert render(validate, validate.application_args) == [
        "--config", str(ROOT / SAMPLE["skew_config"]), "--online-log", str(ROOT / SAMPLE["online_log"]),
        "--training-set", training_set_out]
    publish = dag.get_task("publish")
    assert render(publish, publish.application_args)[3:] == [
        "--date", "2026-10-20", "--out", training_set_out,
        "--registry", str(ROOT / SAMPLE["outputs"]["registry"])]


def test_the_schedule_is_one_utc_day_per_run_after_it_ends(dag):
    assert dag.timetable.expression == "0 0 * * *" and str(dag.timetable.timezone) == "UTC"
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"  # interval = the day before the run
    assert dag.catchup is False and dag.max_active_runs == 1


def test_delta_outputs_are_assets_for_data_aware_downstream_dags(dag):
    out = {k: (ROOT / v).as_uri() for k, v in SAMPLE["outputs"].items()}
    assets = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks}
    assert assets == {
        **{f"snapshot_{t}": [f"{out['feature_root']}/{t}"] for t in SAMPLE["tables"]},
        "build_training_set": [out["training_set"]],
        "validate_skew": [out["skew_metrics"]],
        "publish": [out["registry"]],
    }


def test_paths_with_a_scheme_and_absolute_paths_are_kept_as_given(tmp_path: Path):
    from airflow_dags.fstore_pipelines import _asset, _resolve

    assert _resolve(tmp_path, "s3a://bucket/delta/x") == "s3a://bucket/delta/x"
    assert _resolve(tmp_path, "/data/x") == "/data/x"
    assert _resolve(tmp_path, "conf/a.yaml") == str(tmp_path / "conf" / "a.yaml")
    assert _asset("s3a://bucket/delta/x").uri == "s3a://bucket/delta/x"
