"""Point-in-time window aggregations (issue 16) against a brute-force oracle.

Every op, strict and non-strict windows, null values, empty windows, labels with a null key or
time, equal times, times before 1970 and at both ends of years 1..9999, integer keys of different
widths, reshuffled input, hot-key time buckets, ANSI mode on and off.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from fstore_batch.errors import ConfigValidationError, JoinError, SchemaError
from fstore_batch.joins.aggregations import (
    Aggregation,
    AggregationSource,
    Op,
    events_in_reach,
    window_aggregates,
    window_name,
)
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.spark_local import local_frame

ANCHORS = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 55, tzinfo=UTC),
           datetime(2026, 10, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 40, tzinfo=UTC)]
WIDE = 2**32  # key 3 becomes 2^32 + 3 in a bigint column: an int column's 3 must not match it
OPS = [op.value for op in Op]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def oracle(labels, events, column, op, w, strict):
    """For each label id: ``op`` over the non-null ``column`` values of its key's events in the window."""
    out = {}
    for lid, key, t in labels:
        if key is None or t is None:
            out[lid] = None
            continue
        lo, hi = t - w, t
        vals = [e[column] for e in events if e["key"] == key and e["ts"] is not None and e[column] is not None
                and ((lo <= e["ts"] < hi) if strict else (lo < e["ts"] <= hi))]
        if op == "count":
            out[lid] = len(vals)
        elif op in ("count_distinct", "approx_count_distinct"):
            out[lid] = len(set(vals))
        elif not vals:
            out[lid] = None
        else:
            out[lid] = {"sum": sum, "min": min, "max": max, "mean": lambda v: sum(v) / len(v)}[op](vals)
    return out


label_rows = st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 3)), st.one_of(st.none(), st.integers(0, 14))),
                      min_size=1, max_size=10)
event_rows = st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 3)), st.one_of(st.none(), st.integers(0, 12)),
                                st.one_of(st.none(), st.integers(-5, 5)), st.one_of(st.none(), st.sampled_from("ab"))),
                      max_size=14)
window_sets = st.lists(st.sampled_from([1, 2, 3, 5, 7]), min_size=1, max_size=2, unique=True)


@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],  # per ANSI mode
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(label_rows, event_rows, window_sets, st.booleans(), st.sampled_from(ANCHORS), st.sampled_from(["int", "bigint"]),
       st.sampled_from(["smallint", "int", "bigint"]), st.sampled_from([None, 2, 6]), st.randoms(use_true_random=False),
       st.integers(1, 3))
def test_matches_brute_force(spark, ansi, labels_in, events_in, windows, strict, anchor, label_key, table_key, bucket,
                             rnd, parts):
    at = lambda s: None if s is None else anchor + timedelta(seconds=s)
    wide = lambda k: k + WIDE if k == 3 else k
    lk = wide if label_key == "bigint" else (lambda k: k)
    tk = wide if table_key == "bigint" else (lambda k: k)
    labels = [(i, None if k is None else lk(k), at(t)) for i, (k, t) in enumerate(labels_in)]
    labels += labels[:1]  # a duplicate label row comes out twice
    labels = [(i, *rest) for i, (_, *rest) in enumerate(labels)]
    events = [(None if k is None else tk(k), at(t), v, s) for k, t, v, s in events_in]
    events += [e for e in events[:3] if e[1] is not None]  # equal-time duplicates
    rnd.shuffle(events), rnd.shuffle(labels)  # input order must not matter
    ev_df = local_frame(spark, events, f"user_id {table_key}, event_ts timestamp, v int, s string").repartition(parts)
    lab_df = local_frame(spark, labels, f"lid long, user_id {label_key}, label_ts timestamp")
    ws = [timedelta(seconds=w) for w in windows]
    src = AggregationSource("e", ev_df, {"user_id": "user_id"}, strict=strict, features=[
        Aggregation("v", ["count", "sum", "mean", "min", "max"], ws),
        Aggregation("s", ["count_distinct", "approx_count_distinct", "count", "max"], ws[:1])])
    got = window_aggregates(lab_df, [src], partitions=parts,
                            time_bucket=None if bucket is None else timedelta(seconds=bucket))
    # (Python's datetime cannot hold the first hours of year 1 in every zone: times come back as micros.)
    got = got.withColumn("label_ts", F.unix_micros("label_ts")).collect()

    assert sorted(r.lid for r in got) == list(range(len(labels)))  # every label exactly once
    us_labels = [(lid, k, None if t is None else micros(t)) for lid, k, t in labels]
    us_events = [{"key": k, "ts": None if t is None else micros(t), "v": v, "s": s} for k, t, v, s in events]
    by_lid = {r.lid: r for r in got}
    for col, op, w, name in src.output:
        want = oracle(us_labels, us_events, col, op.value, w // timedelta(microseconds=1), strict)
        have = {lid: by_lid[lid][name] for lid in want}
        if op is Op.MEAN:
            assert {k: v if v is None else round(v, 9) for k, v in have.items()} == \
                {k: v if v is None else round(v, 9) for k, v in want.items()}, name
        else:
            assert have == want, name
    for lid, k, t in us_labels:
        assert (by_lid[lid].user_id, by_lid[lid].label_ts) == (k, t)  # label columns unchanged


def test_output_names_types_and_column_order(spark):
    ev = local_frame(spark, [(1, datetime(2026, 1, 1, tzinfo=UTC), 1, 2.5, 7)],
                               "user_id long, event_ts timestamp, n tinyint, x double, item_id long")
    labels = local_frame(spark, [(1, datetime(2026, 1, 2, tzinfo=UTC), "a")], "user_id long, label_ts timestamp, y string")
    src = AggregationSource("clicks", ev, {"user_id": "user_id"}, features=[
        Aggregation("n", ["sum", "mean", "min"], [timedelta(days=30)]),
        Aggregation("x", ["sum", "max"], [timedelta(hours=36)]),
        Aggregation("item_id", ["count", "approx_count_distinct"], [timedelta(hours=1), timedelta(seconds=90)])])
    out = window_aggregates(labels, [src])
    assert out.dtypes == [("user_id", "bigint"), ("label_ts", "timestamp"), ("y", "string"),
                          ("clicks_n_sum_30d", "bigint"), ("clicks_n_mean_30d", "double"), ("clicks_n_min_30d", "tinyint"),
                          ("clicks_x_sum_36h", "double"), ("clicks_x_max_36h", "double"),
                          ("clicks_item_id_count_1h", "bigint"), ("clicks_item_id_count_90s", "bigint"),
                          ("clicks_item_id_approx_count_distinct_1h", "bigint"),
                          ("clicks_item_id_approx_count_distinct_90s", "bigint")]
    r = out.first()
    assert (r.clicks_n_sum_30d, r.clicks_x_sum_36h, r.clicks_item_id_count_1h) == (1, 2.5, 0)
    assert [window_name(timedelta(**kw)) for kw in ({"days": 7}, {"hours": 48}, {"minutes": 90}, {"seconds": 61})] == \
        ["7d", "2d", "90m", "61s"]


def test_bad_inputs_get_clear_errors(spark):
    ev = local_frame(spark, [(1, datetime(2026, 1, 1, tzinfo=UTC), "a")], "user_id long, event_ts timestamp, s string")
    labels = local_frame(spark, [(1, datetime(2026, 1, 2, tzinfo=UTC))], "user_id long, label_ts timestamp")
    day = [timedelta(days=1)]
    with pytest.raises(JoinError, match="ops must be among count, sum.*got \\['median'\\]"):
        Aggregation("s", ["median"], day)
    with pytest.raises(JoinError, match="window 0:00:00.500000 must be a positive whole number of seconds"):
        Aggregation("s", ["count"], [timedelta(milliseconds=500)])
    with pytest.raises(SchemaError, match="event table 'e': column 's' expected a numeric column for 'sum', got string"):
        AggregationSource("e", ev, {"user_id": "user_id"}, [Aggregation("s", ["sum"], day)])
    with pytest.raises(SchemaError, match="event table 'e': column 'dwell' expected a column of the table"):
        AggregationSource("e", ev, {"user_id": "user_id"}, [Aggregation("dwell", ["count"], day)])
    src = AggregationSource("e", ev, {"user_id": "user_id"}, [Aggregation("s", ["count"], day)])
    with pytest.raises(SchemaError, match="labels: column 'user_id' expected a key column for event table 'e'"):
        window_aggregates(labels.drop("user_id"), [src])
    with pytest.raises(SchemaError, match="labels: column 'ts' expected the label time column"):
        window_aggregates(labels, [src], label_ts="ts")
    with pytest.raises(JoinError, match="aggregation 'e_s_count_1d' of event table 'e' clashes"):
        window_aggregates(labels.withColumn("e_s_count_1d", F.lit(1)), [src])
    as_string = labels.withColumn("user_id", F.col("user_id").cast("string"))
    with pytest.raises(SchemaError, match="event table 'e': column 'user_id' expected the type of label key"):
        window_aggregates(as_string, [src])


def test_one_exchange_per_side_and_no_python_without_distinct_counts(spark):
    """The tiled ops exchange the labels and the events once each (by key) for every window; no
    Python worker anywhere."""
    ev = local_frame(spark, [(1, datetime(2026, 1, 1, tzinfo=UTC), 5)], "user_id int, event_ts timestamp, v int")
    labels = local_frame(spark, [(1, datetime(2026, 1, 2, tzinfo=UTC))], "user_id long, label_ts timestamp")
    src = AggregationSource("e", ev, {"user_id": "user_id"}, [
        Aggregation("v", ["count", "sum", "mean", "max"], [timedelta(hours=1), timedelta(days=1), timedelta(days=7)])])
    out = window_aggregates(labels, [src])
    plan = out._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Exchange hashpartitioning") == 2, plan
    assert "ArrowEvalPython" not in plan and "BatchEvalPython" not in plan and "MapInArrow" not in plan
    assert out.first().e_v_sum_1d == 5


@pytest.mark.parametrize("label_key", ["bigint", "int"])
def test_after_the_join_on_the_same_key_the_labels_are_not_exchanged_again(spark, label_key):
    """The join's output stays partitioned by the key it shuffled by, so the aggregations (tiled and
    distinct) exchange only their events; a label key of another width than the tables' (compared
    in the wider type) is exchanged again, with the same rows."""
    t = datetime(2026, 1, 2, tzinfo=UTC)
    labels = local_frame(spark, [(0, 1, t), (1, 2, t), (2, None, t)], f"lid long, user_id {label_key}, label_ts timestamp")
    feats = local_frame(spark, [(1, t - timedelta(days=1), 7)], "user_id long, event_ts timestamp, age int")
    ev = local_frame(spark, [(1, t - timedelta(hours=2), 5), (1, t - timedelta(hours=1), 5),
                                (2, t - timedelta(days=3), 4)], "user_id long, event_ts timestamp, v int")
    rows = point_in_time_join(labels, [FeatureSource("p", feats, {"user_id": "user_id"}, ["age"])])
    src = AggregationSource("e", ev, {"user_id": "user_id"}, [
        Aggregation("v", ["count", "sum", "count_distinct"], [timedelta(days=1), timedelta(days=7)])])
    out = window_aggregates(rows, [src])
    plan = out._jdf.queryExecution().executedPlan().toString()
    # join: 1; aggregations: events of the tiled and of the distinct pass (+ labels twice when the key is cast)
    assert plan.count("Exchange hashpartitioning") == (3 if label_key == "bigint" else 5), plan
    got = {r.lid: (r.user_id, r.age, r.e_v_count_1d, r.e_v_sum_7d, r.e_v_count_distinct_7d) for r in out.collect()}
    assert got == {0: (1, 7, 2, 10, 1), 1: (2, None, 0, 4, 1), 2: (None, None, None, None, None)}


def test_a_window_reads_only_the_files_of_the_days_it_reaches(spark, tmp_path):
    """``events_in_reach`` bounds the time column with literals, so Delta skips older snapshots' files:
    the aggregates are the same with those files deleted from disk (pre-1970, bounds inclusive)."""
    path = str(tmp_path / "events")
    t = datetime(1969, 12, 20, 1, tzinfo=UTC)  # the labels' time
    ddl = "user_id int, event_ts timestamp, v int"
    local_frame(spark, [(1, t - timedelta(days=30), 1000)], ddl).write.format("delta").save(path)
    old_files = spark.read.format("delta").load(path).inputFiles()
    local_frame(spark, [(1, t - timedelta(days=7), 2), (1, t - timedelta(hours=2), 5), (1, t, 9)], ddl) \
        .write.format("delta").mode("append").save(path)
    labels = local_frame(spark, [(0, 1, t), (1, 1, t - timedelta(hours=1))], "lid long, user_id int, label_ts timestamp")
    feats = [Aggregation("v", ["count", "sum"], [timedelta(days=1), timedelta(days=7)])]

    def aggregate(events, strict=True):
        out = window_aggregates(labels, [AggregationSource("e", events, {"user_id": "user_id"}, feats, strict=strict)])
        return sorted(tuple(r) for r in out.drop("label_ts").collect())

    want = {s: aggregate(spark.read.format("delta").load(path), s) for s in (True, False)}
    for f in old_files:
        Path(f.removeprefix("file:")).unlink()
    for strict in (True, False):
        reach = events_in_reach(spark.read.format("delta").load(path), "event_ts", timedelta(days=7),
                                micros(t - timedelta(hours=1)), micros(t))
        assert aggregate(reach, strict) == want[strict]
    assert want[True][0][2:] == (1, 2, 5, 7)  # label 0 (counts, sums over 1 d, 7 d): 1 d holds 5; 7 d holds 2 and 5


# --- config and `fstore-batch build` ------------------------------------------------------------

def _training(tmp_path, aggregations) -> Path:
    path = tmp_path / "training.yaml"
    path.write_text(json.dumps({"name": "aggs", "labels": {"path": str(tmp_path / "labels"), "ts": "event_ts"},
                                "output": str(tmp_path / "out"), "aggregations": aggregations}))
    return path


def test_config_parses_iso_durations_and_names_bad_keys(tmp_path):
    from fstore_batch.config import load_config
    from fstore_batch.config.training import AggregationOp, TrainingSetConfig

    good = [{"name": "clicks", "table": "user_events", "keys": {"user_id": "user_id"},
             "features": [{"column": "dwell_ms", "ops": ["sum", "mean"], "windows": ["PT1H", "P1D", "P7D"]}]}]
    cfg = load_config(TrainingSetConfig, _training(tmp_path, good), env={})
    a = cfg.aggregations[0]
    assert (a.strict, a.ts, a.features[0].ops) == (True, "event_ts", [AggregationOp.SUM, AggregationOp.MEAN])
    assert a.features[0].windows == [timedelta(hours=1), timedelta(days=1), timedelta(days=7)]
    bad = [{**good[0], "features": [{"column": "dwell_ms", "ops": ["median"], "windows": ["PT0.5S"]}], "typo": 1}]
    path = _training(tmp_path, bad)
    with pytest.raises(ConfigValidationError) as info:
        load_config(TrainingSetConfig, path, env={})
    msg = str(info.value)
    assert str(path) in msg and "key 'aggregations[0:clicks].features[0].ops[0]': got 'median', expected one of" in msg
    assert "key 'aggregations[0:clicks].typo': got 1, expected no such key" in msg
    bad = [{**good[0], "features": [{"column": "dwell_ms", "ops": ["max"], "windows": ["PT0.5S", "P1D"]}]}]
    with pytest.raises(ConfigValidationError, match=r"key 'aggregations\[0:clicks\]\.features\[0\]'.*windows must be "
                                                    "positive whole seconds"):
        load_config(TrainingSetConfig, _training(tmp_path, bad), env={})


def test_cli_build_aggregates_as_of_pinned_versions_and_rebuild_reproduces(spark, tmp_path):
    from delta.tables import DeltaTable

    from tests.support.cli import run_cli

    root = tmp_path / "delta"
    t0 = datetime(1969, 12, 31, 23, tzinfo=UTC)  # windows across 1970
    events = [(1, t0, 100, 10), (1, t0 + timedelta(minutes=30), None, 11), (1, t0 + timedelta(minutes=50), 300, 10),
              (2**32 + 7, t0, 5, 1), (7, t0 + timedelta(minutes=10), 40, 2)]
    ddl = "user_id bigint, event_ts timestamp, dwell_ms int, item_id long"
    local_frame(spark, events, ddl).write.format("delta").save(str(root / "user_events"))
    local_frame(spark, [(0, 1, t0 + timedelta(hours=1)), (1, 7, t0 + timedelta(minutes=10)), (2, None, t0),
                           (3, 1, t0 + timedelta(minutes=50))], "lid long, user_id int, event_ts timestamp"
                          ).write.parquet(str(tmp_path / "labels"))
    store = tmp_path / "store.yaml"
    store.write_text(json.dumps({"storage": {"root": str(root)}}))
    ts = _training(tmp_path, [{"name": "clicks", "table": "user_events", "keys": {"user_id": "user_id"},
                               "features": [{"column": "dwell_ms", "ops": ["count", "mean", "max"], "windows": ["PT1H"]},
                                            {"column": "item_id", "ops": ["count_distinct"], "windows": ["P1D"]}]}])
    proc = run_cli("build", "--config", str(store), str(ts))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]
    assert (metrics["rows"], metrics["labels_null_key_or_time"], metrics["inputs"]["user_events"]["version"]) == (4, 1, 0)
    cols = ["clicks_dwell_ms_count_1h", "clicks_dwell_ms_mean_1h", "clicks_dwell_ms_max_1h",
            "clicks_item_id_count_distinct_1d"]
    want = {0: (2, 200.0, 300, 2), 1: (0, None, None, 0), 2: (None, None, None, None), 3: (1, 100.0, 100, 2)}

    def read(path):
        return {r.lid: tuple(r[c] for c in cols) for r in spark.read.format("delta").load(path).collect()}

    assert read(str(tmp_path / "out")) == want
    # The event table moves on; a rebuild from the manifest reads version 0 again.
    local_frame(spark, [(1, t0 + timedelta(minutes=5), 10_000, 99)], ddl).write.format("delta").mode("append") \
        .save(str(root / "user_events"))
    assert DeltaTable.forPath(spark, str(root / "user_events")).history(1).first().version == 1
    proc = run_cli("rebuild", str(tmp_path / "out"), "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read(str(tmp_path / "again")) == want
