"""End to end on the sample data (no HBase): injected faults at known rates are found and named.

The feature tables come straight from the generator as Delta tables, the training set is built
with the point-in-time builder, the online log is that training set as served plus the faults of
``conf/skew/sample_faults.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fstore_batch.config import FeatureStoreConfig, load_config
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.joins.build import build_training_set, resolve_inputs
from fstore_batch.sample.frames import write_delta_tables
from fstore_batch.sample.generator import SampleSize, SampleSpec, generate
from fstore_batch.sample.online_log import FaultSpec, inject_faults, serve
from fstore_batch.sample.writer import write_labels
from fstore_batch.validation import SkewConfig, Verdict, validate_skew
from fstore_batch.validation.io import feature_tables

ROOT = Path(__file__).resolve().parents[2]
TABLES = ["user_profile", "user_embedding", "item_stats", "item_embedding", "user_events"]
EXPECTED = {"u_lifetime_value": (Verdict.STALE, "stale"), "i_ctr_7d": (Verdict.TRANSFORM_MISMATCH, "rounded"),
            "u_country": (Verdict.MISSING_ONLINE, None), "user_emb": (Verdict.TRANSFORM_MISMATCH, "noise"),
            "clicks_item_id": (Verdict.TRANSFORM_MISMATCH, "truncated"),
            "i_impressions_7d": (Verdict.TRANSFORM_MISMATCH, "scaled"), "i_category": (Verdict.ENCODING, "case"),
            "item_emb": (Verdict.ENCODING, "wrong_dimension"),
            "clicks_dwell_ms_mean_7d": (Verdict.TRANSFORM_MISMATCH, "scaled")}


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("skew")
    store = FeatureStoreConfig.model_validate({**load_config(FeatureStoreConfig, ROOT / "conf/sample.yaml", env={})
                                              .model_dump(mode="json"), "storage": {"root": str(tmp / "delta")}})
    data = generate(SampleSpec(size=SampleSize(users=120, items=200, impressions=3000), seed=3))
    write_delta_tables(spark, store, data, TABLES)
    write_labels(data, tmp / "labels")
    ts_cfg = load_config(TrainingSetConfig, ROOT / "conf/training_sets/sample.yaml", env={},
                         overrides=[f"labels.path={tmp / 'labels'}", f"output={tmp / 'training'}"])
    inputs = resolve_inputs(spark, ts_cfg, store)
    build_training_set(spark, ts_cfg, inputs)
    training = spark.read.format("delta").load(str(tmp / "training")).cache()
    cfg = load_config(SkewConfig, ROOT / "conf/skew/sample.yaml", env={},
                      overrides=[f"metrics_table={tmp / 'metrics'}", "expectations.enabled=false"])
    tables = feature_tables(spark, inputs, store, TABLES)
    clean = serve(training, request_id="request_id", ts="event_ts", keys=["user_id", "item_id"],
                  features=[f.name for f in cfg.features]).cache()
    return {"cfg": cfg, "ts_cfg": ts_cfg, "training": training, "tables": tables, "clean": clean}


def test_each_injected_fault_is_found_at_its_rate_and_named(spark, world):
    sample = load_config(FaultSpec, ROOT / "conf/skew/sample_faults.yaml", env={})
    more = [{"feature": "i_impressions_7d", "kind": "scale", "rate": 0.1, "factor": 2.0},
            {"feature": "i_category", "kind": "recase", "rate": 0.04},
            {"feature": "item_emb", "kind": "drop_dim", "rate": 0.02}]
    faults = FaultSpec.model_validate({**sample.model_dump(mode="json"), "faults": [
        *sample.model_dump(mode="json")["faults"], *more]})
    log, injected = inject_faults(world["clean"], faults, ts_cfg=world["ts_cfg"], feature_tables=world["tables"])
    report = validate_skew(spark, world["cfg"], log, world["training"], ts_cfg=world["ts_cfg"],
                           feature_tables=world["tables"], run_id="faults")
    assert report.coverage.matched == report.coverage.online_rows == 3000
    for fault in faults.faults:
        r = report.feature(fault.feature)
        assert abs(r.metrics["mismatch_rate"] - fault.rate) <= 0.005, (fault.feature, r.metrics["mismatch_rate"])
        assert injected[fault.feature]["rate"] == pytest.approx(fault.rate, abs=1 / 3000)
        verdict, pattern = EXPECTED[fault.feature]
        assert (r.verdict.verdict, r.verdict.pattern) == (verdict, pattern), r.verdict.evidence
        assert fault.feature in {b.feature for b in report.breaches}
    for r in report.features:
        if r.feature.name not in EXPECTED:
            assert r.verdict.verdict is Verdict.OK, (r.feature.name, r.verdict.evidence)
    # The staleness search recovers the 2-day serving lag.
    m = report.feature("u_lifetime_value").metrics
    assert m["stale_share"] >= 0.99 and m["lag_consistent"] == 1.0
    assert m["lag_low_h"] <= 48.0 <= m["lag_high_h"] and m["lag_high_h"] - m["lag_low_h"] < 12
    assert report.feature("item_emb").metrics["wrong_dim_count"] == 60
    worst = report.feature("clicks_item_id").worst_rows
    assert len(worst) == 5 and all(r["score"] >= 1 for r in worst)


def test_without_faults_every_feature_is_ok(spark, world):
    report = validate_skew(spark, world["cfg"], world["clean"], world["training"], ts_cfg=world["ts_cfg"],
                           feature_tables=world["tables"], run_id="clean")
    assert not report.failed and report.coverage.matched == 3000
    assert {r.feature.name: r.verdict.verdict for r in report.features} == {
        f.name: Verdict.OK for f in world["cfg"].features}
    assert all(r.metrics["match_rate"] == 1.0 for r in report.features)


def test_a_lagging_sequence_cache_is_found_stale_with_its_lag(spark, world):
    """Last-N clicks served 2 days behind: found stale, and the lag recovered within 12 h."""
    faults = FaultSpec.model_validate({"seed": 11, "faults": [
        {"feature": "clicks_item_id", "kind": "stale", "rate": 0.03, "lag": "P2D"}]})
    log, injected = inject_faults(world["clean"], faults, ts_cfg=world["ts_cfg"], feature_tables=world["tables"])
    only = world["cfg"].model_dump(mode="json")
    only.update(features=[f for f in only["features"] if f["name"] == "clicks_item_id"],
                groups={"sequences": only["groups"]["sequences"]})
    report = validate_skew(spark, SkewConfig.model_validate(only), log, world["training"], ts_cfg=world["ts_cfg"],
                           feature_tables=world["tables"], run_id="stale-seq")
    r = report.feature("clicks_item_id")
    assert injected["clicks_item_id"]["rows"] == 90
    assert (r.verdict.verdict, r.verdict.pattern) == (Verdict.STALE, "stale"), r.verdict.evidence
    m = r.metrics
    assert m["mismatch_rate"] == pytest.approx(0.03) and m["stale_share"] >= 0.95 and m["lag_consistent"] == 1.0
    assert m["lag_low_h"] <= 48.0 <= m["lag_high_h"] and m["lag_high_h"] - m["lag_low_h"] < 12, m
