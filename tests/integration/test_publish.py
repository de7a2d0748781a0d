"""Publishing a validated training-set build: `fstore-batch publish` and `spark-submit
jobs/build_training_set.py | jobs/publish_training_set.py` on a small two-day training set."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from fstore_batch.config import FeatureStoreConfig, load_config
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.errors import StorageError
from fstore_batch.joins.build import build_training_set, resolve_inputs
from fstore_batch.spark_local import local_frame
from fstore_batch.storage.delta.registry import build_of_day, publish, published
from tests.support.cli import metrics, run_cli, spark_submit

DAY1 = datetime(2026, 10, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def configs(spark, tmp_path_factory):
    """A one-feature store and a training set whose labels span two UTC days (4 + 2 rows)."""
    folder = tmp_path_factory.mktemp("publish")
    root = folder / "delta"
    local_frame(spark, [(u, DAY1 - timedelta(hours=1), u * 10) for u in (1, 2)],
                          "user_id long, event_ts timestamp, score long").write.format("delta").save(str(root / "profile"))
    times = [DAY1 + timedelta(hours=h) for h in (1, 5, 9, 13)] + [DAY1 + timedelta(days=1, hours=h) for h in (2, 3)]
    local_frame(spark, [(f"r{i}", 1 + i % 2, t, i % 2) for i, t in enumerate(times)],
                          "request_id string, user_id long, event_ts timestamp, label int").write.parquet(str(folder / "labels"))
    store = folder / "store.yaml"
    store.write_text(yaml.safe_dump({"storage": {"root": str(root)},
                                     "spark": {"master": "local[1]", "conf": {"spark.ui.enabled": "false"}}}))
    ts = folder / "ts.yaml"
    ts.write_text(yaml.safe_dump({
        "name": "pub_set", "labels": {"path": str(folder / "labels")}, "output": str(folder / "out"),
        "features": [{"table": "profile", "keys": {"user_id": "user_id"}, "features": ["score"], "ttl": "P1D"}]}))
    return folder, store, ts


def _build_day(spark, store, ts, out: str, day: date) -> None:
    cfg = load_config(TrainingSetConfig, ts, env={})
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    build_training_set(spark, cfg, resolve_inputs(spark, cfg, load_config(FeatureStoreConfig, store, env={})),
                       output=out, window=(start, start + timedelta(days=1)))


def test_build_and_publish_jobs_through_spark_submit(configs, spark):
    folder, store, ts = configs
    built = metrics(spark_submit("build_training_set.py", "--config", str(store), str(ts), "--date", "2026-10-05"))
    assert built["rows"] == 4 and built["window"][0] == "2026-10-05T00:00:00+00:00"

    m = metrics(spark_submit("publish_training_set.py", "--config", str(store), str(ts), "--date", "2026-10-05"))
    assert m == {"training_set": "pub_set", "date": "2026-10-05", "path": str(folder / "out"),
                 "version": built["version"], "rows": 4, "mode": "created",
                 "registry": str(folder / "delta" / "training_set_registry")}
    rows = published(spark, m["registry"]).collect()
    assert [(r.training_set, r.date, r.version, r.rows) for r in rows] == [("pub_set", date(2026, 10, 5), built["version"], 4)]


def test_publish_is_one_row_per_day_replaced_only_by_a_newer_build(configs, spark):
    folder, store, ts = configs
    registry = str(folder / "registry")
    out = str(folder / "out_days")
    day1, day2 = date(2026, 10, 5), date(2026, 10, 6)
    for day in (day1, day2):
        _build_day(spark, store, ts, out, day)
    first = build_of_day(spark, out, day1)
    assert (first.version, first.rows) == (0, 4)
    assert publish(spark, registry, first) == "created"
    assert publish(spark, registry, build_of_day(spark, out, day1)) == "unchanged"
    assert publish(spark, registry, build_of_day(spark, out, day2)) == "published"

    _build_day(spark, store, ts, out, day1)  # a rerun of day 1
    assert publish(spark, registry, build_of_day(spark, out, day1)) == "replaced"
    rows = published(spark, registry, "pub_set").collect()
    assert [(r.date, r.version, r.rows) for r in rows] == [(day2, 1, 2), (day1, 2, 4)]


def test_publishing_a_day_that_was_not_built_names_the_day_and_the_fix(configs, spark):
    folder, store, ts = configs
    out = str(folder / "out_one_day")
    _build_day(spark, store, ts, out, date(2026, 10, 5))
    with pytest.raises(StorageError, match=r"any commit is not a daily build of 2026-10-07 .*--date 2026-10-07"):
        build_of_day(spark, out, date(2026, 10, 7))
    proc = run_cli("publish", str(ts), "-c", str(store), "--out", out, "--date", "2026-10-05", "--version", "7")
    assert proc.returncode == 1 and "version 7 is not a daily build of 2026-10-05" in proc.stderr
