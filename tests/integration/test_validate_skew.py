"""The skew verbs as users run them, on Delta feature tables and a Parquet/JSON online log on disk:
`fstore-batch sample-online-log`, `fstore-batch validate-skew` and `spark-submit jobs/validate_skew.py`.

No HBase: the feature tables are written straight from the sample generator as Delta tables.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from fstore_batch.cli import main
from fstore_batch.config import FeatureStoreConfig, load_config
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.joins.build import build_training_set, resolve_inputs
from fstore_batch.sample.frames import write_delta_tables
from fstore_batch.sample.generator import SampleSize, SampleSpec, generate
from fstore_batch.sample.writer import write_labels
from tests.support.cli import ROOT, metrics, run_cli, spark_submit

TABLES = ["user_profile", "user_embedding", "item_stats", "item_embedding", "user_events"]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("skew_cli")
    base = load_config(FeatureStoreConfig, ROOT / "conf/sample.yaml", env={}).model_dump(mode="json")
    store = FeatureStoreConfig.model_validate({
        **base, "storage": {"root": str(tmp / "delta")},
        "spark": {"master": "local[2]", "conf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}}})
    data = generate(SampleSpec(size=SampleSize(users=80, items=150, impressions=1500), seed=5))
    write_delta_tables(spark, store, data, TABLES)
    write_labels(data, tmp / "labels")
    ts = yaml.safe_load((ROOT / "conf/training_sets/sample.yaml").read_text())
    ts.update({"labels": {**ts["labels"], "path": str(tmp / "labels")}, "output": str(tmp / "training")})
    build_training_set(spark, TrainingSetConfig.model_validate(ts), resolve_inputs(spark, TrainingSetConfig.model_validate(ts), store))
    files = {"store": tmp / "store.yaml", "ts": tmp / "ts.yaml", "skew": tmp / "skew.yaml"}
    files["store"].write_text(yaml.safe_dump(store.model_dump(mode="json"), sort_keys=False))
    files["ts"].write_text(yaml.safe_dump(ts, sort_keys=False))
    skew = yaml.safe_load((ROOT / "conf/skew/sample.yaml").read_text())
    skew.update({"store_config": str(files["store"]), "training_set": str(files["ts"]),
                 "metrics_table": str(tmp / "metrics"), "report": {"dir": str(tmp / "reports"), "worst_rows": 3}})
    files["skew"].write_text(yaml.safe_dump(skew, sort_keys=False))
    return {**files, "tmp": tmp, "training": tmp / "training"}


def _in_process(capsys, *argv: str) -> dict:
    """Run a verb in this process (the test session's Spark), returning its metrics line."""
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]


def test_faulty_log_fails_the_run_naming_the_features_and_writes_every_metric(spark, world, capsys):
    log_path = world["tmp"] / "log_faulty"
    m = _in_process(capsys, "sample-online-log", "-c", str(world["skew"]), "--out", str(log_path))
    assert set(m["faults"]) == {"u_lifetime_value", "i_ctr_7d", "u_country", "user_emb", "clicks_item_id",
                                "clicks_dwell_ms_mean_7d"}
    proc = run_cli("validate-skew", "-c", str(world["skew"]), "--online-log", str(log_path),
                   "--training-set", str(world["training"]), "--run-id", "faulty")
    assert proc.returncode == 3, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("fstore-batch validate-skew: error: skew thresholds breached by 6 feature(s)")
    for f in m["faults"]:
        assert f in error
    out = json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]
    assert out["verdicts"]["u_lifetime_value"] == "stale" and out["verdicts"]["u_country"] == "missing_online"
    assert out["verdicts"]["u_age"] == "ok"
    assert re.search(r"^u_lifetime_value +numeric +stale", proc.stdout, re.MULTILINE)  # the human summary table

    folder = world["tmp"] / "reports" / "faulty"
    report = json.loads((folder / "report.json").read_text())
    assert report["failed"] and report["coverage"]["matched"] == 1500
    assert {s: r["success"] for s, r in report["expectations"]["suites"].items()} == {
        "training_set": True, "skew_table": False}
    assert Path(report["expectations"]["data_docs"]).is_file()
    html = (folder / "report.html").read_text()
    assert "Worst rows" in html and "clicks_item_id" in html and "<script" not in html

    rows = spark.read.format("delta").load(str(world["tmp"] / "metrics")).where("run_id = 'faulty'")
    overall = rows.where("scope = 'overall'")
    # Every metric is stored, firing or not, with its threshold where one is set.
    age = {r.metric: (r.value, r.threshold, r.fired) for r in overall.where("feature = 'u_age'").collect()}
    assert age["mismatch_rate"] == (0.0, 0.01, False) and age["psi"][2] is False
    ctr = overall.where("feature = 'i_ctr_7d' AND metric = 'mismatch_rate'").first()
    assert ctr.fired and ctr.value == pytest.approx(0.08, abs=0.005)
    assert rows.where("scope = 'hour'").count() > 0 and rows.where("scope = 'coverage'").count() > 0


def test_clean_log_passes_through_spark_submit_with_rebuilt_features(world, capsys):
    log_path = world["tmp"] / "log_clean"
    _in_process(capsys, "sample-online-log", "-c", str(world["skew"]), "--clean", "--format", "json",
                "--out", str(log_path))
    proc = spark_submit("validate_skew.py", "-c", str(world["skew"]), "--online-log", str(log_path),
                        "--format", "json", "--run-id", "clean", "--no-metrics-table")
    m = metrics(proc)
    assert not m["failed"] and m["matched"] == 1500 and set(m["verdicts"].values()) == {"ok"}
    assert (world["tmp"] / "reports" / "clean" / "offline" / "offline" / "_delta_log").is_dir()  # rebuilt offline rows


def _bad_log(spark, world, name: str, df) -> Path:
    path = world["tmp"] / name
    df.write.mode("overwrite").parquet(str(path))
    return path


def test_bad_log_schemas_are_clear_errors(spark, world, capsys):
    good = spark.read.format("delta").load(str(world["training"])).select(
        "request_id", "user_id", "item_id", F.col("event_ts").alias("request_ts"), "u_age", "u_country",
        "u_lifetime_value", "u_sessions_7d", "u_is_premium", "user_emb", "i_category", "i_impressions_7d",
        "i_clicks_7d", "i_ctr_7d", "item_emb", "clicks_item_id").limit(50)
    cases = {
        "no_request_id": (good.drop("request_id"),
                          "column 'request_id' expected a request id (string or integer), but it is missing"),
        "ts_as_number": (good.withColumn("request_ts", F.unix_millis("request_ts")),
                         "column 'request_ts' expected the request time: a timestamp with time zone (TIMESTAMP), got bigint"),
        "naive_ts": (good.withColumn("request_ts", F.col("request_ts").cast("timestamp_ntz")),
                     "column 'request_ts' expected a timestamp with time zone (TIMESTAMP), not a naive TIMESTAMP_NTZ"),
        "emb_as_string": (good.withColumn("user_emb", F.lit("0.1,0.2")),
                          "column 'user_emb' expected an array of numbers like the offline column 'user_emb', got string"),
    }
    for name, (df, expected) in cases.items():
        path = _bad_log(spark, world, name, df)
        code = main(["validate-skew", "-c", str(world["skew"]), "--online-log", str(path),
                     "--training-set", str(world["training"]), "--no-metrics-table"])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert code == 1 and f"online log {path}: " in err and expected in err, (name, err)
    naive_json = world["tmp"] / "naive.json"
    naive_json.write_text(json.dumps({"request_id": "r1", "user_id": 1, "item_id": 2,
                                      "request_ts": datetime(2026, 10, 1, tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")}))
    code = main(["validate-skew", "-c", str(world["skew"]), "--online-log", str(naive_json), "--format", "json",
                 "--training-set", str(world["training"]), "--no-metrics-table"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and "column 'request_ts' expected ISO 8601 times with a zone" in err
    assert "a naive time '2026-10-01 00:00:00'" in err
    code = main(["validate-skew", "-c", str(world["skew"]), "--online-log", str(world["tmp"] / "nope"),
                 "--training-set", str(world["training"])])
    assert code == 1 and "online log" in capsys.readouterr().err
