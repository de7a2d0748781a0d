"""Daily feature-store pipelines, one DAG per entry of ``conf/pipelines.yaml``.

Each DAG ``fstore_<name>`` runs once per UTC day, after the day has ended::

    snapshot_<table> (one per HBase table, in parallel)
        -> build_training_set -> validate_skew -> publish

Every task is a ``spark-submit`` of a ``jobs/`` entry point (so it runs wherever the Airflow
Spark connection points: local, YARN or Kubernetes). The day comes from the run's data interval:
snapshots are taken as of its end, the training set is built and published for its start date
(``{{ ds }}`` of a scheduled run; manual runs get the same day). A skew breach makes
``validate_skew`` exit 3, which fails the run before ``publish``. Each task declares the Delta
table it writes as an outlet ``Asset``, so downstream DAGs can be scheduled on them.

This file holds wiring only: it reads the small pipelines YAML and never imports fstore_batch
(which lives in the Spark jobs' environment, not Airflow's). ``FSTORE_PIPELINES`` names another
pipelines file, the way a deployment points the same DAG file at its own config.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable

PIPELINES_FILE = Path(os.environ.get("FSTORE_PIPELINES")
                      or Path(__file__).resolve().parents[1] / "conf" / "pipelines.yaml")
DAY = "{{ data_interval_start | ds }}"  # the UTC day whose labels are built
AS_OF = "{{ data_interval_end | ts }}"  # snapshot every cell written before the day ended


def _resolve(base: Path, value: str) -> str:
    """A path from the YAML: URIs (s3a://...) and absolute paths as they are, others under ``base``."""
    if urlsplit(value).scheme or value.startswith(("/", "{{")):
        return value
    return str(base / value)


def _asset(path: str) -> Asset:
    return Asset(uri=path if urlsplit(path).scheme else Path(path).as_uri())


def _pipeline_dag(spec: dict[str, Any], defaults: dict[str, Any], base: Path, jobs: str) -> DAG:
    cfg = {**defaults, **spec, "spark": {**defaults.get("spark", {}), **spec.get("spark", {})}}
    name = cfg["name"]
    path = {key: _resolve(base, cfg[key]) for key in ("store_config", "training_set", "skew_config", "online_log")}
    out = {key: _resolve(base, value) for key, value in cfg["outputs"].items()}
    spark = cfg["spark"]
    jars = spark.get("jars")

    def submit(task_id: str, stage: str, job: str, args: list[str], outlet: str) -> SparkSubmitOperator:
        return SparkSubmitOperator(
            task_id=task_id,
            application=f"{jobs}/{job}",
            application_args=args,
            name=f"fstore-{name}-{task_id}",
            conn_id=spark.get("conn_id", "spark_default"),
            conf=spark.get("conf") or {},
            jars=_resolve(base, jars) if jars else None,
            packages=spark.get("packages"),
            py_files=_resolve(base, spark["py_files"]) if spark.get("py_files") else None,
            properties_file=_resolve(base, spark["properties_file"]) if spark.get("properties_file") else None,
            env_vars=spark.get("env") or None,
            retries=cfg["retries"][stage],
            retry_delay=timedelta(minutes=cfg["retry_delay_minutes"]),
            execution_timeout=timedelta(minutes=cfg["timeout_minutes"][stage]),
            outlets=[_asset(outlet)],
        )

    with DAG(
        dag_id=f"fstore_{name}",
        description=f"daily snapshot -> build -> validate -> publish of training set {name}",
        schedule=CronDataIntervalTimetable(cfg["schedule"], timezone="UTC"),
        start_date=datetime.fromisoformat(f"{cfg['start_date']}T00:00:00+00:00"),
        catchup=cfg["catchup"],
        max_active_runs=cfg["max_active_runs"],
        tags=["fstore-batch", name],
        doc_md=__doc__,
    ) as dag:
        snapshots = [
            submit(f"snapshot_{table}", "snapshot", "snapshot_hbase.py",
                   ["--config", path["store_config"], "--table", table, "--as-of", AS_OF],
                   f"{out['feature_root'].rstrip('/')}/{table}")
            for table in cfg["tables"]
        ]
        build = submit("build_training_set", "build", "build_training_set.py",
                       ["--config", path["store_config"], path["training_set"], "--date", DAY,
                        "--out", out["training_set"]],
                       out["training_set"])
        validate = submit("validate_skew", "validate", "validate_skew.py",
                          ["--config", path["skew_config"], "--online-log", path["online_log"],
                           "--training-set", out["training_set"]],
                          out["skew_metrics"])
        publish = submit("publish", "publish", "publish_training_set.py",
                         ["--config", path["store_config"], path["training_set"], "--date", DAY,
                          "--out", out["training_set"], "--registry", out["registry"]],
                         out["registry"])
        snapshots >> build >> validate >> publish
    return dag


def _load(file: Path) -> list[DAG]:
    doc = yaml.safe_load(file.read_text())
    base = (file.parent / doc.get("project_dir", ".")).resolve()
    jobs = _resolve(base, doc.get("jobs_dir", "jobs"))
    return [_pipeline_dag(spec, doc.get("defaults", {}), base, jobs) for spec in doc["pipelines"]]


for _dag in _load(PIPELINES_FILE):
    globals()[_dag.dag_id] = _dag
