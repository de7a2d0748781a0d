"""Failure modes of issue 11, against real Delta tables on disk (and the real HBase where named):
nothing lost, nothing silently wrong, one clear line for every failure."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from fstore_batch.spark_local import local_frame
from fstore_batch.storage.delta.registry import published
from tests.support.cli import metrics, run_cli

DAY1 = datetime(2026, 10, 5, tzinfo=UTC)
LABELS = "request_id string, user_id long, event_ts timestamp, label int"


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory) -> dict[str, Path]:
    """A one-feature store; labels over two UTC days (4 + 2 rows); a valid 0-row Parquet label folder."""
    tmp = tmp_path_factory.mktemp("failures")
    root = tmp / "delta"
    local_frame(spark, [(u, DAY1 - timedelta(hours=1), u * 10) for u in (1, 2)],
                          "user_id long, event_ts timestamp, score long").write.format("delta").save(str(root / "profile"))
    times = [DAY1 + timedelta(hours=h) for h in (1, 5, 9, 13)] + [DAY1 + timedelta(days=1, hours=h) for h in (2, 3)]
    local_frame(spark, [(f"r{i}", 1 + i % 2, t, i % 2) for i, t in enumerate(times)], LABELS).write.parquet(str(tmp / "labels"))
    local_frame(spark, [], LABELS).write.parquet(str(tmp / "empty_labels"))
    store, ts = tmp / "store.yaml", tmp / "ts.yaml"
    store.write_text(yaml.safe_dump({"storage": {"root": str(root)},
                                     "spark": {"master": "local[1]", "conf": {"spark.ui.enabled": "false"}}}))
    ts.write_text(yaml.safe_dump({
        "name": "fail_set", "labels": {"path": str(tmp / "labels")}, "output": str(tmp / "out"),
        "features": [{"table": "profile", "keys": {"user_id": "user_id"}, "features": ["score"], "ttl": "P1D"}]}))
    return {"tmp": tmp, "store": store, "ts": ts, "out": tmp / "out", "registry": tmp / "registry"}


def _cli(world, verb: str, *args: str):
    extra = ["-c", str(world["store"])]
    if verb in ("build", "publish"):
        extra = [str(world["ts"]), *extra]
    return run_cli(verb, *extra, *args)


def _one_line_error(proc, code: int = 1) -> str:
    """The error line of a failed run, after checking it is the only thing on stderr that is not a log line."""
    assert proc.returncode == code, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def _days(spark, path: Path) -> dict[str, int]:
    rows = spark.read.format("delta").load(str(path)).groupBy(F.col("label_date").cast("string").alias("d")).count()
    return {r.d: r["count"] for r in rows.collect()}


def _versions(spark, path: Path) -> int:
    return DeltaTable.forPath(spark, str(path)).history().count()


# --- 1. an empty label input never replaces data ------------------------------------------------


def test_empty_labels_fail_naming_path_and_window_and_write_nothing(world, spark):
    assert metrics(_cli(world, "build", "--date", "2026-10-05"))["rows"] == 4
    assert metrics(_cli(world, "build", "--date", "2026-10-06"))["rows"] == 2
    before = _versions(spark, world["out"])
    empty = world["tmp"] / "empty_labels"

    line = _one_line_error(_cli(world, "build", "--labels", str(empty), "--date", "2026-10-05"))
    assert (f"labels {empty}: no labels with time in [2026-10-05T00:00:00+00:00, 2026-10-06T00:00:00+00:00); "
            "nothing was written") in line and "--allow-empty" in line
    line = _one_line_error(_cli(world, "build", "--labels", str(empty)))  # the whole output
    assert f"labels {empty}: no labels; nothing was written" in line
    line = _one_line_error(_cli(world, "build", "--date", "2026-09-01"))  # a day without labels
    assert "no labels with time in [2026-09-01T00:00:00+00:00" in line
    assert _versions(spark, world["out"]) == before
    assert _days(spark, world["out"]) == {"2026-10-05": 4, "2026-10-06": 2}


def test_empty_output_only_when_allowed_and_then_not_published_or_rebuilt_silently(world, spark):
    out = world["tmp"] / "out_empty"
    empty = str(world["tmp"] / "empty_labels")
    m = metrics(_cli(world, "build", "--labels", empty, "--date", "2026-10-05", "--out", str(out), "--allow-empty"))
    assert m["rows"] == 0
    line = _one_line_error(_cli(world, "publish", "--date", "2026-10-05", "--out", str(out),
                                "--registry", str(world["registry"])))
    assert f"training set {out}: the build of 2026-10-05 (version 0) has 0 rows" in line
    assert not (world["registry"] / "_delta_log").exists()  # nothing published, no empty log left behind
    line = _one_line_error(run_cli("rebuild", str(out), "--out", str(world["tmp"] / "rebuilt"), "-c", str(world["store"])))
    assert f"labels {empty}: no labels with time in [2026-10-05" in line
    assert not (world["tmp"] / "rebuilt").exists()
    m = metrics(_cli(world, "publish", "--date", "2026-10-05", "--out", str(out), "--registry",
                     str(world["registry"]), "--allow-empty"))
    assert m["rows"] == 0 and m["mode"] == "created"


# --- 3. publish records the day's own row count ------------------------------------------------


def test_publish_records_the_rows_the_day_holds(world, spark):
    out = world["tmp"] / "out_counts"
    registry = world["tmp"] / "registry_counts"
    metrics(_cli(world, "build", "--out", str(out)))  # both days: 6 rows
    built = metrics(_cli(world, "build", "--date", "2026-10-06", "--out", str(out)))
    history = DeltaTable.forPath(spark, str(out)).history(1).first()
    assert json.loads(history.userMetadata)["fstore_training_set"]["rows"] == 2 == built["rows"]
    m = metrics(_cli(world, "publish", "--date", "2026-10-06", "--out", str(out), "--registry", str(registry)))
    assert (m["version"], m["rows"]) == (built["version"], 2)
    assert [(r.date, r.rows) for r in published(spark, str(registry)).collect()] == [(date(2026, 10, 6), 2)]


# --- 2. nothing validated is a failure ----------------------------------------------------------


def test_a_zero_row_online_log_fails_validation_with_no_data(world, spark):
    training = world["tmp"] / "out_skew"
    metrics(_cli(world, "build", "--out", str(training)))
    log = world["tmp"] / "empty_log"
    local_frame(spark, [], "request_id string, user_id long, request_ts timestamp, score long").write.parquet(str(log))
    skew = world["tmp"] / "skew.yaml"
    skew.write_text(yaml.safe_dump({
        "name": "fail_skew", "store_config": str(world["store"]), "training_set": str(world["ts"]),
        "online_log": {"keys": ["user_id"]}, "features": [{"name": "score"}],  # min_match_coverage: the default
        "staleness": {"enabled": False}, "expectations": {"enabled": False},
        "report": {"dir": str(world["tmp"] / "reports")}, "metrics_table": str(world["tmp"] / "skew_metrics")}))
    proc = run_cli("validate-skew", "-c", str(skew), "--online-log", str(log), "--training-set", str(training))
    line = _one_line_error(proc, code=3)
    assert "skew thresholds breached" in line and "score: matched_rows = 0 (threshold 1)" in line
    m = json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]
    assert m["failed"] and m["matched"] == 0 and m["verdicts"] == {"score": "no_data"}
    assert "coverage: matched_rows 0 below 1" in proc.stdout


# --- 7. unreadable labels: one line naming the path ---------------------------------------------


def test_missing_empty_or_zero_byte_labels_are_one_line_naming_the_path(world):
    tmp = world["tmp"]
    (tmp / "empty_folder").mkdir()
    (tmp / "zero_byte").mkdir()
    (tmp / "zero_byte" / "part-00000.parquet").write_bytes(b"")
    cases = {
        tmp / "no_such_labels": "no such file or directory",
        tmp / "empty_folder": "no data files to read (Parquet format)",
        tmp / "zero_byte": f"{tmp / 'zero_byte' / 'part-00000.parquet'} is not a valid Parquet file",
    }
    for path, problem in cases.items():
        line = _one_line_error(_cli(world, "build", "--labels", str(path), "--date", "2026-10-05",
                                    "--out", str(tmp / "never")))
        assert f"labels {path}: " in line and problem in line, line
    assert not (tmp / "never").exists()
    proc = run_cli("--debug", "build", str(world["ts"]), "-c", str(world["store"]), "--labels", str(tmp / "empty_folder"))
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "UNABLE_TO_INFER_SCHEMA" in proc.stderr


# --- 9. a pinned version whose files VACUUM removed ---------------------------------------------


def test_rebuild_after_vacuum_names_the_table_and_version_and_leaves_no_delta_log(world, spark):
    tmp = world["tmp"] / "vacuumed"
    root = tmp / "delta"
    profile = str(root / "profile")
    local_frame(spark, [(u, DAY1 - timedelta(hours=1), u * 10) for u in (1, 2)],
                          "user_id long, event_ts timestamp, score long").write.format("delta").save(profile)
    store = tmp / "store.yaml"
    store.write_text(yaml.safe_dump({"storage": {"root": str(root)}}))
    built = metrics(run_cli("build", str(world["ts"]), "-c", str(store), "--out", str(tmp / "out")))
    assert built["inputs"]["profile"]["version"] == 0
    local_frame(spark, [(u, DAY1, u * 20) for u in (1, 2)], "user_id long, event_ts timestamp, score long") \
        .write.format("delta").mode("overwrite").save(profile)
    previous = spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        DeltaTable.forPath(spark, profile).vacuum(0.0)
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", previous)

    line = _one_line_error(run_cli("rebuild", str(tmp / "out"), "--out", str(tmp / "again"), "-c", str(store)))
    assert f"table 'profile' at {profile}: version 0 cannot be read: its data file" in line
    assert "removed (VACUUM" in line and "hint: rebuild against a version inside the retention" in line
    assert not (tmp / "again").exists()  # the failed first write left no empty _delta_log behind

    line = _one_line_error(run_cli("build", str(world["ts"]), "-c", str(store), "--out", str(tmp / "pinned"),
                                   "--ts-set", "features.0.version=9"))
    assert f"table 'profile' at {profile}: version 9 cannot be read: the log holds versions 0 to 3" in line


# --- 6. JSON labels with zoned ISO 8601 times ---------------------------------------------------


def test_json_labels_with_zoned_times_build_and_naive_times_are_refused(world, spark):
    tmp = world["tmp"]
    (tmp / "json_labels").mkdir()
    (tmp / "json_labels" / "part-0.json").write_text(
        '{"request_id": "j1", "user_id": 1, "event_ts": "2026-10-05T01:00:00Z", "label": 1}\n'
        '{"request_id": "j2", "user_id": 2, "event_ts": "2026-10-05T03:30:00+02:00", "label": 0}\n'
        '{"request_id": "j3", "user_id": 2, "event_ts": "2026-10-06T00:02:04Z", "label": 0}\n')
    out = tmp / "json_out"
    m = metrics(_cli(world, "build", "--labels", str(tmp / "json_labels"), "--ts-set", "labels.format=json",
                     "--date", "2026-10-05", "--out", str(out)))
    assert m["rows"] == 2
    rows = spark.read.format("delta").load(str(out)).orderBy("request_id").collect()
    assert [(r.request_id, r.event_ts.isoformat(), r.score) for r in rows] == [
        ("j1", "2026-10-05T01:00:00", 10), ("j2", "2026-10-05T01:30:00", 20)]

    (tmp / "naive_labels").mkdir()
    (tmp / "naive_labels" / "part-0.json").write_text(
        '{"request_id": "n1", "user_id": 1, "event_ts": "2026-10-05T01:00:00", "label": 1}\n')
    line = _one_line_error(_cli(world, "build", "--labels", str(tmp / "naive_labels"), "--ts-set", "labels.format=json",
                                "--out", str(tmp / "naive_out")))
    assert (f"labels {tmp / 'naive_labels'}: column 'event_ts' expected ISO 8601 times with a zone" in line
            and "got a naive time '2026-10-05T01:00:00'" in line)


# --- 5. maintain on a config with a relative storage root ---------------------------------------


def test_maintain_by_name_or_path_on_a_relative_root_uses_the_tables_settings(world, spark):
    root = world["tmp"] / "rel_delta"
    table = root / "profile"
    for score in (1, 2, 3):  # three small files
        local_frame(spark, [(u, DAY1, u * score) for u in (1, 2)], "user_id long, event_ts timestamp, score long") \
            .write.format("delta").mode("append").save(str(table))
    store = world["tmp"] / "rel_store.yaml"
    store.write_text(yaml.safe_dump({"storage": {"root": os.path.relpath(root)}, "tables": [{
        "name": "profile", "hbase_table": "profile", "row_key": {"parts": [{"name": "user_id", "type": "int64"}]},
        "columns": [{"column": "p:score", "feature": "score", "codec": "int64"}],
        "maintenance": {"zorder_by": ["user_id"], "vacuum_retention_hours": 0, "log_retention_days": 7}}]}))
    by_name = metrics(run_cli("maintain", "profile", "-c", str(store)))
    assert by_name["path"] == str(table) and by_name["optimize"] == "zorder" and by_name["zorder_by"] == ["user_id"]
    assert by_name["files_after_vacuum"] == 1 and by_name["vacuum_retention_hours"] == 0
    props = DeltaTable.forPath(spark, str(table)).detail().first().properties
    assert props["delta.logRetentionDuration"] == "interval 7 days"
    by_path = metrics(run_cli("maintain", os.path.relpath(table), "-c", str(store)))
    assert by_path["path"] == str(table) and by_path["zorder_by"] == ["user_id"] and by_path["vacuum_retention_hours"] == 0
