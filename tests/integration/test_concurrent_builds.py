"""Two daily builds of different days at the same time, as two real `fstore-batch build --date`
processes writing to one training set: both succeed, each replacing only its own day. A real
conflict (two writers of the same day) is retried, then reported in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from fstore_batch.config import FeatureStoreConfig, load_config
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.errors import ConcurrentWriteError
from fstore_batch.joins.build import build_training_set, resolve_inputs
from fstore_batch.spark_local import local_frame
from fstore_batch.storage.delta.tables import with_conflict_retries
from tests.support.cli import CLI, ROOT

DAY = datetime(2026, 10, 28, tzinfo=UTC)
DEADLINE_S = 600


def test_two_days_built_at_the_same_time_both_succeed(spark, tmp_path):
    root = tmp_path / "delta"
    local_frame(spark, [(u, DAY - timedelta(hours=1), u * 10) for u in (1, 2)],
                          "user_id long, event_ts timestamp, score long").write.format("delta").save(str(root / "profile"))
    rows = [(f"r{d}{h}", 1 + h % 2, DAY + timedelta(days=d, hours=h), h % 2) for d in range(3) for h in range(d + 2)]
    local_frame(spark, rows, "request_id string, user_id long, event_ts timestamp, label int").write.parquet(
        str(tmp_path / "labels"))
    store, ts = tmp_path / "store.yaml", tmp_path / "ts.yaml"
    store.write_text(yaml.safe_dump({"storage": {"root": str(root)}, "spark": {
        "master": "local[1]", "conf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1"}}}))
    ts.write_text(yaml.safe_dump({
        "name": "conc_set", "labels": {"path": str(tmp_path / "labels")}, "output": str(tmp_path / "out"),
        "features": [{"table": "profile", "keys": {"user_id": "user_id"}, "features": ["score"], "ttl": "P5D"}]}))
    cfg = load_config(TrainingSetConfig, ts, env={})
    inputs = resolve_inputs(spark, cfg, load_config(FeatureStoreConfig, store, env={}))
    build_training_set(spark, cfg, inputs, window=(DAY, DAY + timedelta(days=1)))  # the table exists, day 1 built

    procs = [subprocess.Popen([*CLI, "build", str(ts), "-c", str(store), "--date", day], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for day in ("2026-10-29", "2026-10-30")]
    results = [p.communicate(timeout=DEADLINE_S) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    built = [json.loads(out.strip().splitlines()[-1])["metrics"] for out, _ in results]
    assert sorted(m["rows"] for m in built) == [3, 4]

    days = (spark.read.format("delta").load(str(tmp_path / "out"))
            .groupBy(F.col("label_date").cast("string").alias("d")).count().collect())
    assert {r.d: r["count"] for r in days} == {"2026-10-28": 2, "2026-10-29": 3, "2026-10-30": 4}
    history = DeltaTable.forPath(spark, str(tmp_path / "out")).history().collect()
    assert sorted(h.version for h in history) == [0, 1, 2]
    assert DeltaTable.forPath(spark, str(tmp_path / "out")).detail().first().partitionColumns == ["label_date"]


def _conflicting_writes(spark, tmp_path, attempts: int):
    """Writer A replaces a day; while A's job runs (inside its transaction), writer B commits the
    same day. A's commit then conflicts for real; A runs under ``with_conflict_retries``."""
    path = str(tmp_path / "t")
    day = date(2026, 10, 29)
    where = "label_date = DATE'2026-10-29'"
    if not DeltaTable.isDeltaTable(spark, path):
        local_frame(spark, [(0, day)], "x long, label_date date").write.format("delta").partitionBy("label_date").save(path)
    # Two named pipes hand the turn over without polling: A's task writes "started" (blocking until
    # B reads it) and then blocks reading "go" until B has committed; A's retry finds "done" and runs through.
    started, go, done = tmp_path / "a_started", tmp_path / "b_committed", tmp_path / "b_done"
    for fifo in (started, go):
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
    done.unlink(missing_ok=True)
    started_s, go_s, done_s = str(started), str(go), str(done)

    @F.udf("long")
    def held(x):  # A's first run waits here, mid-transaction, until B has committed
        import os
        if not os.path.exists(done_s):
            with open(started_s, "w") as f:
                f.write("started")
            with open(go_s) as f:
                f.read()
        return x

    def write_a() -> None:
        (local_frame(spark, [(2, day)], "x long, label_date date").coalesce(1)
         .select(held("x").alias("x"), "label_date")
         .write.format("delta").mode("overwrite").option("replaceWhere", where).save(path))

    def write_b() -> None:
        with open(started) as f:
            f.read()
        try:
            local_frame(spark, [(1, day)], "x long, label_date date").write.format("delta") \
                .mode("overwrite").option("replaceWhere", where).save(path)
        finally:
            done.touch()
            with open(go, "w") as f:
                f.write("go")

    b = threading.Thread(target=write_b, daemon=True)
    b.start()
    try:
        with_conflict_retries(write_a, path, attempts=attempts, backoff_s=0.01)
    finally:
        b.join(timeout=180)
    return path


def test_a_real_conflict_is_retried_and_then_reported_in_one_line(spark, tmp_path):
    path = _conflicting_writes(spark, tmp_path, attempts=2)
    assert [r.x for r in spark.read.format("delta").load(path).collect()] == [2]  # A won on its retry
    assert DeltaTable.forPath(spark, path).history().count() == 3  # created, B, A (once)

    with pytest.raises(ConcurrentWriteError, match=rf"^{re.escape(path)}: a concurrent write to the same data "
                                                   r"conflicted with this one \(ConcurrentAppendException\) on all 1 "
                                                   r"attempts; nothing was written by this run"):
        _conflicting_writes(spark, tmp_path, attempts=1)
    assert [r.x for r in spark.read.format("delta").load(path).collect()] == [1]  # B's commit stands, A wrote nothing
