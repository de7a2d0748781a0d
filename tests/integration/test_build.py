"""Building a training set from Delta feature tables, its manifest, and an exact rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyspark.testing import assertDataFrameEqual

from fstore_batch.config import FeatureStoreConfig
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.errors import DeltaTableNotFoundError, StorageError
from fstore_batch.joins.build import build_training_set, read_manifest, rebuild, resolve_inputs
from fstore_batch.spark_local import local_frame

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def at(h: int) -> datetime:
    return T0 + timedelta(hours=h)


@pytest.fixture()
def world(spark, tmp_path):
    store = FeatureStoreConfig.model_validate({"storage": {"root": str(tmp_path / "delta")}})
    profile = local_frame(spark, [(1, at(0), 30, "DE"), (2, at(1), 40, "US"), (1, at(5), 31, None)],
                                    "user_id long, event_ts timestamp, age int, country string")
    profile.write.format("delta").save(store.storage.table_path("user_profile"))
    events = local_frame(spark, [(1, at(h), 100 + h) for h in range(6)], "user_id long, event_ts timestamp, item_id long")
    events.write.format("delta").save(store.storage.table_path("user_events"))
    labels = local_frame(spark, [("r1", 1, at(3), 1), ("r2", 1, at(6), 0), ("r3", 2, at(2), 0), ("r4", 3, at(2), 1)],
                                   "request_id string, user_id long, event_ts timestamp, label int")
    labels.write.parquet(str(tmp_path / "labels"))
    cfg = TrainingSetConfig.model_validate({
        "name": "t", "labels": {"path": str(tmp_path / "labels")}, "output": str(tmp_path / "out"),
        "features": [{"table": "user_profile", "keys": {"user_id": "user_id"}, "features": ["age", "country"],
                      "prefix": "u_", "ttl": "PT4H"}],
        "sequences": [{"name": "clicks", "table": "user_events", "keys": {"user_id": "user_id"},
                       "columns": ["item_id"], "n": 2}],
    })
    return store, cfg, tmp_path


def test_build_writes_rows_and_a_manifest_and_rebuild_reproduces_them(spark, world):
    store, cfg, tmp = world
    inputs = resolve_inputs(spark, cfg, store)
    m = build_training_set(spark, cfg, inputs)
    assert m["rows"] == 4 and {t: (i["path"], i["version"]) for t, i in inputs.items()} == {
        t: (store.storage.table_path(t), 0) for t in ("user_profile", "user_events")}
    assert {i["state"] for i in m["inputs"].values()} == {None}  # no snapshot job made a feature state here
    built = spark.read.format("delta").load(cfg.output)
    got = {r.request_id: (r.u_age, r.u_country, r.clicks_item_id) for r in built.collect()}
    # r2: country was last set at h0, 6 h before the label: past the 4 h TTL, so null.
    assert got == {"r1": (30, "DE", [102, 101]), "r2": (31, None, [105, 104]), "r3": (40, "US", []),
                   "r4": (None, None, [])}

    # The inputs move on: a new profile version and new events.
    local_frame(spark, [(1, at(2), 99, "FR")], "user_id long, event_ts timestamp, age int, country string") \
        .write.format("delta").mode("append").save(store.storage.table_path("user_profile"))
    manifest = read_manifest(spark, cfg.output)
    assert manifest["inputs"]["user_profile"]["version"] == 0 and manifest["config_hash"]
    rebuild(spark, manifest, output=str(tmp / "again"))
    assertDataFrameEqual(spark.read.format("delta").load(str(tmp / "again")), built, checkRowOrder=False)
    fresh = build_training_set(spark, cfg, resolve_inputs(spark, cfg, store), output=str(tmp / "fresh"))
    assert fresh["inputs"]["user_profile"]["version"] == 1
    assert spark.read.format("delta").load(str(tmp / "fresh")).where("request_id = 'r1'").first().u_age == 99


def test_missing_feature_table_is_named(spark, world):
    store, cfg, _ = world
    bad = TrainingSetConfig.model_validate({**cfg.model_dump(), "features": [
        {"table": "nope", "keys": {"user_id": "user_id"}, "features": ["x"]}]})
    with pytest.raises(DeltaTableNotFoundError, match="no Delta table at .*/nope"):
        resolve_inputs(spark, bad, store)


def test_sampling_quantization_and_time_buckets_through_the_config(spark, world):
    store, cfg, tmp = world
    emb = local_frame(spark, [(1, at(0), [0.5, -1.0, 0.25]), (2, at(0), [2.0, 0.0, -2.0])],
                                "user_id long, event_ts timestamp, emb array<float>")
    emb.write.format("delta").save(store.storage.table_path("user_embedding"))
    conf = cfg.model_dump(mode="json")
    conf["features"].append({"table": "user_embedding", "keys": {"user_id": "user_id"}, "features": ["emb"],
                             "quantize": {"emb": "int8"}})
    conf["sampling"] = {"hash_columns": ["request_id"], "rates": [{"where": {"label": 0}, "rate": 0.5}],
                        "end": at(6).isoformat()}
    conf["join"] = {"time_bucket": "PT2H"}
    sampled = TrainingSetConfig.model_validate(conf)
    m = build_training_set(spark, sampled, resolve_inputs(spark, sampled, store), output=str(tmp / "sampled"))
    out = {r.request_id: r for r in spark.read.format("delta").load(str(tmp / "sampled")).collect()}

    assert "r2" not in out  # at h6: outside the window [.., h6)
    assert out["r1"].sample_weight == 1.0 and out["r4"].sample_weight == 1.0  # positives are all kept
    assert all(out[r].sample_weight == 2.0 for r in out if out[r].label == 0)
    assert m["rows"] == len(out) and m["labels_null_key_or_time"] == 0
    assert list(out["r1"].emb) == [64, -127, 32] and out["r1"].emb_scale == pytest.approx(1.0 / 127)
    assert (out["r1"].u_age, out["r1"].u_country) == (30, "DE")  # the time-bucketed join, same answers
    assert m["quantization"]["emb"]["mode"] == "int8" and m["quantization"]["emb"]["max_abs_error"] < 0.004

    rebuilt = rebuild(spark, read_manifest(spark, str(tmp / "sampled")), output=str(tmp / "again"))
    assert rebuilt["rows"] == m["rows"]
    assertDataFrameEqual(spark.read.format("delta").load(str(tmp / "again")),
                         spark.read.format("delta").load(str(tmp / "sampled")), checkRowOrder=False)


def test_delta_labels_are_pinned_and_changed_file_labels_refuse_a_rebuild(spark, world):
    store, cfg, tmp = world
    spark.read.parquet(str(tmp / "labels")).write.format("delta").save(str(tmp / "labels_delta"))
    on_delta = TrainingSetConfig.model_validate({**cfg.model_dump(mode="json"),
                                                 "labels": {"path": str(tmp / "labels_delta"), "format": "delta"}})
    m = build_training_set(spark, on_delta, resolve_inputs(spark, on_delta, store), output=str(tmp / "d"))
    assert m["labels"] == {"path": str(tmp / "labels_delta"), "format": "delta", "version": 0}
    more = local_frame(spark, [("r5", None, at(4), 1)], "request_id string, user_id long, event_ts timestamp, label int")
    more.write.format("delta").mode("append").save(str(tmp / "labels_delta"))
    again = rebuild(spark, read_manifest(spark, str(tmp / "d")), output=str(tmp / "d2"))
    assert again["rows"] == 4  # label version 0, not the appended row
    fresh = build_training_set(spark, on_delta, resolve_inputs(spark, on_delta, store), output=str(tmp / "d3"))
    assert fresh["rows"] == 5 and fresh["labels_null_key_or_time"] == 1  # r5 kept, with null features, counted

    build_training_set(spark, cfg, resolve_inputs(spark, cfg, store))
    more.write.mode("append").parquet(str(tmp / "labels"))
    now = len(list((tmp / "labels").glob("*.parquet")))
    assert now > 2
    with pytest.raises(StorageError, match=rf"labels at .*/labels changed since the build: 2 files then, {now} now"):
        rebuild(spark, read_manifest(spark, cfg.output), output=str(tmp / "p2"))


def test_windowed_builds_replace_only_their_range_and_rerun_safely(spark, world):
    store, cfg, tmp = world
    first, second = (at(0), at(3)), (at(3), at(7))
    a = build_training_set(spark, cfg, resolve_inputs(spark, cfg, store), window=first)
    b = build_training_set(spark, cfg, resolve_inputs(spark, cfg, store), window=second)
    assert (a["rows"], b["rows"]) == (2, 2) and b["window"] == [at(3).isoformat(), at(7).isoformat()]
    again = build_training_set(spark, cfg, resolve_inputs(spark, cfg, store), window=first)  # a rerun of the day
    out = spark.read.format("delta").load(cfg.output)
    assert again["version"] == 2 and sorted(r.request_id for r in out.collect()) == ["r1", "r2", "r3", "r4"]
    rebuilt = rebuild(spark, read_manifest(spark, cfg.output, version=1), output=str(tmp / "day2"))
    assert rebuilt["rows"] == 2 and rebuilt["window"] == b["window"]
