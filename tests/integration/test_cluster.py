"""The daily pipeline on a real Spark standalone cluster, its tables on an S3-protocol object store.

`make test` starts the cluster (stack/spark/clusterctl: a master and two 1-core workers on
127.0.0.1) and the store (stack/s3/s3ctl: S3Proxy on 127.0.0.1:9000) once per test run; this module
fails, never skips, when they are not up. It runs `jobs/run_pipeline.py` (`fstore-batch run`:
snapshot -> build --date -> validate-skew -> publish) with spark-submit against the real HBase, as
README "Running on a cluster" shows:

* the package reaches the driver and the executors only through `--py-files`: both run the
  workers' Python (`clusterctl python`), which has the dependencies but not fstore_batch;
* storage.root, the labels, the training set, the skew report, the metrics table, the registry
  and the online log are all `s3a://` paths (conf/profiles/cluster.yaml);
* the driver runs in an empty folder with its own HOME and TMPDIR.

It then checks the rows against an in-process local-mode run of the same inputs on local
folders, that the HBase regions were scanned in the executors' processes (their stderr in the
workers' work folders) and never in the driver, and that nothing was written to local disk
outside Spark's own scratch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pyspark
import pytest
import yaml
from pyspark.testing import assertDataFrameEqual

from fstore_batch.config import FeatureStoreConfig, load_config
from fstore_batch.sample.writer import write_labels
from fstore_batch.session import DELTA_CONF, delta_jars, s3a_classpath
from fstore_batch.sources.hbase.scan import list_region_ranges
from fstore_batch.storage.delta.registry import REGISTRY_TABLE
from tests.conftest import ROOT
from tests.support.cli import metrics, run, run_cli

DAY = "2026-10-20"
TABLES = ["user_profile", "user_events"]  # a feature table with history and the event table of the sequences
CLUSTERCTL = ROOT / "stack" / "spark" / "clusterctl"
S3CTL = ROOT / "stack" / "s3" / "s3ctl"
CLUSTER_HOME = Path(os.environ.get("FSTORE_SPARK_CLUSTER_HOME", ROOT / ".data" / "spark-cluster"))
MASTER = f"spark://127.0.0.1:{os.environ.get('FSTORE_SPARK_MASTER_PORT', '7077')}"
MASTER_UI = f"http://127.0.0.1:{os.environ.get('FSTORE_SPARK_MASTER_UI_PORT', '8080')}"
PROFILE = ROOT / "conf" / "profiles" / "cluster.yaml"
HADOOP_PREFIX = "spark.hadoop."
pytestmark = pytest.mark.timeout(1800)  # its first test's set-up: seeding, a local-mode run and the cluster run, on 2 cores


def _yaml(path: Path, doc: dict) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def node_python() -> str:
    """The workers' Python, once the cluster and the object store answer (the test fails otherwise)."""
    for ctl, target in ((CLUSTERCTL, "cluster-up"), (S3CTL, "s3-up")):
        proc = run(str(ctl), "status")
        if proc.returncode != 0:
            pytest.fail(f"{ctl.name} status: {proc.stdout.strip()} {proc.stderr.strip()}; "
                        f"start it with `make {target}` (make test does)", pytrace=False)
    return run(str(CLUSTERCTL), "python").stdout.strip()


@pytest.fixture(scope="module")
def bucket_prefix(spark, node_python) -> str:
    """This run's folder on the object store; the test session reaches it with the profile's s3a settings."""
    profile = load_config(FeatureStoreConfig, PROFILE, env={})
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in profile.spark.conf.items():
        if key.startswith(HADOOP_PREFIX):
            hadoop.set(key[len(HADOOP_PREFIX):], value)
    bucket = profile.storage.root.removeprefix("s3a://").split("/")[0]
    return f"s3a://{bucket}/tests/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def deployment(seeded_sample, tmp_path_factory, bucket_prefix) -> dict:
    """Two deployments of the same pipeline over the seeded HBase tables: local folders for the
    in-process local-mode run, `s3a://` for the cluster; the configs differ only in their paths."""
    tmp = tmp_path_factory.mktemp("cluster")
    conf = ROOT / "conf"
    app = f"fstore-cluster-test-{bucket_prefix.rsplit('/', 1)[1]}"
    sides = {}
    for side, root in (("local", str(tmp / "local")), ("cluster", bucket_prefix)):
        folder = tmp / f"{side}-conf"
        folder.mkdir()
        if side == "local":
            store = seeded_sample.config.model_dump(mode="json")
            store["storage"]["root"] = f"{root}/delta"
        else:  # the shipped cluster profile, on this test's HBase tables and bucket folder
            store = {"extends": str(PROFILE), "hbase": {"table_prefix": seeded_sample.config.hbase.table_prefix},
                     "storage": {"root": f"{root}/delta"},
                     "spark": {"app_name": app, "conf": {"spark.sql.shuffle.partitions": 2,
                                                         "spark.databricks.delta.snapshotPartitions": 1}}}
        ts = yaml.safe_load((conf / "training_sets" / "sample.yaml").read_text())
        ts["features"] = [f for f in ts["features"] if f["table"] in TABLES]
        ts["labels"]["path"] = str(seeded_sample.labels) if side == "local" else f"{root}/labels"
        ts["output"] = f"{root}/delta/training/{ts['name']}"
        files = {"store": _yaml(folder / "store.yaml", store), "ts": _yaml(folder / "ts.yaml", ts)}
        skew = yaml.safe_load((conf / "skew" / "sample.yaml").read_text())
        keep = {"u_age", "u_country", "u_lifetime_value", "u_sessions_7d", "u_is_premium", "clicks_item_id"}
        skew.update(store_config=files["store"], training_set=files["ts"], metrics_table=f"{root}/delta/skew_metrics",
                    features=[f for f in skew["features"] if f["name"] in keep],
                    groups={"sequences": skew["groups"]["sequences"]}, report={"dir": f"{root}/reports"})
        skew["expectations"].update(max_null_rate={}, ranges={"u_age": [13, 120]})
        files["skew"] = _yaml(folder / "skew.yaml", skew)
        sides[side] = {"root": root, "files": files, "ts": ts, "store": store,
                       "registry": f"{root}/delta/{REGISTRY_TABLE}", "online_log": f"{root}/online_log"}
    return {"tmp": tmp, "app": app, **sides}


@pytest.fixture(scope="module")
def local_run(spark, deployment, seeded_sample):
    """The pipeline in local mode on local folders (in-process); then the inputs the cluster reads,
    copied to the object store: the labels, and the day served as it was built (the online log)."""
    local, cluster = deployment["local"], deployment["cluster"]
    f = local["files"]
    proc = run_cli("run", f["ts"], "-c", f["store"], "--date", DAY)
    metrics(proc)
    served = run_cli("sample-online-log", "-c", f["skew"], "--training-set", local["ts"]["output"], "--clean",
                     "--out", cluster["online_log"])
    assert served.returncode == 0, served.stderr[-3000:]
    write_labels(seeded_sample.data, cluster["ts"]["labels"]["path"])  # as `fstore-batch sample --labels-out s3a://`
    return proc


def _package_zip(folder: Path) -> Path:
    """dist/fstore_batch.zip as `make dist` builds it (the wheel's files: the package's modules and
    py.typed), from this tree, so the cluster runs the code under test."""
    out = folder / "fstore_batch.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted((ROOT / "fstore_batch").rglob("*")):
            if path.is_file() and (path.suffix == ".py" or path.name == "py.typed"):
                z.write(path, path.relative_to(ROOT).as_posix())
    return out


def _master_state() -> dict:
    with urllib.request.urlopen(f"{MASTER_UI}/json/", timeout=10) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def cluster_run(deployment, local_run, node_python) -> dict:
    """spark-submit of jobs/run_pipeline.py on the cluster, client mode, from an empty folder."""
    tmp, cluster = deployment["tmp"], deployment["cluster"]
    driver = {name: tmp / "driver" / name for name in ("cwd", "home", "tmp", "scratch")}
    for d in driver.values():
        d.mkdir(parents=True)
    dist = tmp / "dist"
    dist.mkdir()
    py_files = _package_zip(dist)
    s3a = s3a_classpath()
    assert s3a, "the s3a jars are missing from .cache/spark-jars/s3a: run `make jars`"
    confs = {**DELTA_CONF,
             "spark.pyspark.python": node_python, "spark.pyspark.driver.python": node_python,
             "spark.executor.extraClassPath": s3a, "spark.executor.memory": "1g",
             "spark.local.dir": str(driver["scratch"]), "spark.ui.enabled": "false"}
    f = cluster["files"]
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", MASTER,
           "--jars", ",".join(str(j) for j in delta_jars()), "--driver-class-path", s3a,
           *[x for k, v in confs.items() for x in ("--conf", f"{k}={v}")],
           "--py-files", str(py_files), str(ROOT / "jobs" / "run_pipeline.py"),
           "--config", f["store"], f["ts"], "--date", DAY, "--skew-config", f["skew"],
           "--online-log", cluster["online_log"]]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYSPARK_", "FSTORE__", "SPARK_")) and k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HOME=str(driver["home"]), TMPDIR=str(driver["tmp"]), SPARK_LOCAL_IP="127.0.0.1",
               SPARK_HOME=str(Path(pyspark.__file__).parent))
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=driver["cwd"], env=env, check=False)
    seconds = round(time.monotonic() - started, 1)
    apps = [a for a in _master_state().get("completedapps", []) if a.get("name") == deployment["app"]]
    app_id = apps[0]["id"] if apps else None
    executors = sorted(CLUSTER_HOME.glob(f"worker-*/work/{app_id}/*")) if app_id else []
    print(f"cluster run: {seconds} s, app {app_id}, executors {[str(e) for e in executors]}")
    return {"proc": proc, "seconds": seconds, "app": apps[0] if apps else None, "executors": executors,
            "driver": driver, "py_files": py_files}


def test_the_daily_pipeline_runs_every_step_on_the_cluster(cluster_run):
    proc = cluster_run["proc"]
    m = metrics(proc)
    assert [s["step"] for s in m["steps"]] == ["snapshot", "build", "validate", "publish"]
    assert m["failed_step"] is None
    app = cluster_run["app"]
    assert app is not None and app["state"] == "FINISHED", app
    workers = {e.parent.parent.parent.name for e in cluster_run["executors"]}
    assert workers == {"worker-1", "worker-2"}  # executors in both workers' JVMs, none in the driver's


def test_the_cluster_rows_equal_the_local_mode_rows(spark, deployment, local_run, cluster_run):
    metrics(cluster_run["proc"])
    local, cluster = deployment["local"], deployment["cluster"]
    read = spark.read.format("delta").load
    for table in TABLES:  # the snapshots
        assertDataFrameEqual(read(f"{cluster['root']}/delta/{table}"), read(f"{local['root']}/delta/{table}"))
    built = read(cluster["ts"]["output"])
    assert built.count() > 0
    assertDataFrameEqual(built, read(local["ts"]["output"]))
    cols = ["training_set", "date", "rows"]
    assertDataFrameEqual(read(cluster["registry"]).select(cols), read(local["registry"]).select(cols))
    verdicts = read(f"{cluster['root']}/delta/skew_metrics").where("verdict IS NOT NULL")
    assert verdicts.count() > 0 and verdicts.where("verdict != 'ok'").count() == 0  # served as built: no skew
    [report] = spark.read.text(f"{cluster['root']}/reports/*/report.json", wholetext=True).collect()
    paths = json.loads(report.value)["paths"]  # the HTML report and Great Expectations' Data Docs are on the store
    assert paths["html"].startswith(cluster["root"]) and paths["data_docs"].startswith(cluster["root"])
    assert spark.read.text(paths["html"]).count() > 0 and spark.read.text(paths["data_docs"]).count() > 0


def test_the_hbase_regions_were_scanned_in_the_executors(seeded_sample, cluster_run):
    metrics(cluster_run["proc"])
    scanned: dict[str, set[str]] = {}
    for executor in cluster_run["executors"]:
        for line in (executor / "stderr").read_text(errors="replace").splitlines():
            if '"region_done"' in line:
                event = json.loads(line[line.index("{"):])
                scanned.setdefault(event["table"], set()).add(event["region"])
    hbase = seeded_sample.config.hbase
    for table in TABLES:
        regions = {r.describe() for r in list_region_ranges(hbase, table)}
        assert len(regions) > 1 and scanned.get(table) == regions, (table, scanned)
    driver_out = cluster_run["proc"].stdout + cluster_run["proc"].stderr
    assert '"region_done"' not in driver_out  # the driver planned the regions; it scanned none


def test_the_package_reached_the_cluster_only_through_py_files(node_python, cluster_run):
    metrics(cluster_run["proc"])
    neutral = cluster_run["driver"]["cwd"]
    lacks = subprocess.run([node_python, "-c", "import fstore_batch"], cwd=neutral, capture_output=True, text=True,
                           check=False)
    assert lacks.returncode != 0 and "No module named 'fstore_batch'" in lacks.stderr
    has = subprocess.run([node_python, "-c", "import happybase, pyarrow, pydantic, delta, great_expectations"],
                         cwd=neutral, capture_output=True, text=True, check=False)
    assert has.returncode == 0, has.stderr
    for executor in cluster_run["executors"]:  # each executor fetched the zip it imports from
        assert (executor / cluster_run["py_files"].name).is_file()


def test_nothing_was_written_to_local_disk_outside_spark_scratch(cluster_run):
    metrics(cluster_run["proc"])
    driver = cluster_run["driver"]
    for name in ("cwd", "home", "tmp"):
        assert sorted(p.relative_to(driver[name]).as_posix() for p in driver[name].rglob("*")) == [], name
    shipped = {"stdout", "stderr", cluster_run["py_files"].name, *(j.name for j in delta_jars())}
    for executor in cluster_run["executors"]:  # a work folder holds the executor's logs and what was shipped
        assert {p.name for p in executor.iterdir()} <= shipped, executor
