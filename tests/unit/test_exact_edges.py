"""Issue 12's inputs, each with its expected value, through the Python API and `fstore-batch build`.

Tie-breakers of any orderable type, integer keys of different widths, times before 1970 and at
both ends of 0001..9999, NaN/inf in quantized embeddings, equal-time sequence events. Every
Spark-facing case runs with ANSI mode on (Spark 4's default) and off (where a narrowing cast
would silently wrap into a false match instead of failing).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from pyspark.sql import functions as F

from fstore_batch.config.training import QuantizeMode
from fstore_batch.errors import SchemaError
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.quantize import error_report, quantize_embeddings
from fstore_batch.joins.sampling import LabelSampling, sample_labels
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.spark_local import local_frame

T = datetime(2026, 10, 1, tzinfo=UTC)
SNAP_20 = "user_profile@2026-10-20T00:00:00Z"
SNAP_31 = "user_profile@2026-10-31T00:00:00Z"
FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def micros(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)




def ages(df, key: str = "lid") -> dict:
    return {r[key]: r.age for r in df.select(key, "age").collect()}


# --- 1. tie-breakers of any orderable type ----------------------------------------------------

@pytest.mark.parametrize("reverse", [False, True], ids=["in_order", "reversed"])
def test_string_snapshot_id_tie_breaker_picks_the_newest_snapshot(spark, ansi, reverse):
    rows = [(1, s(5), SNAP_20, 30), (1, s(5), SNAP_31, 31)]
    profile = local_frame(spark, rows[::-1] if reverse else rows, "user_id long, event_ts timestamp, snapshot_id string, age int")
    labels = local_frame(spark, [(0, 1, s(10))], "lid long, user_id long, label_ts timestamp")
    src = FeatureSource("user_profile", profile, {"user_id": "user_id"}, ["age"], tie_breaker="snapshot_id")
    for bucket in (None, timedelta(seconds=7)):
        assert ages(point_in_time_join(labels, [src], partitions=2, time_bucket=bucket)) == {0: 31}


TIE_BREAKERS = [
    ("double", 1.2, 1.7),                                     # cast to a long, both were 1
    ("float", -0.5, -0.25),
    ("decimal(20,4)", Decimal("1.0001"), Decimal("1.0002")),
    ("decimal(38,0)", Decimal(10**30), Decimal(10**30 + 1)),  # beyond any long
    ("string", "b", "ba"),
    ("date", date(1969, 12, 31), date(2026, 1, 1)),
    ("timestamp", datetime(1900, 1, 1, tzinfo=UTC), datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
    ("boolean", False, True),
    ("tinyint", -128, 127),
]


@pytest.mark.parametrize("reverse", [False, True], ids=["in_order", "reversed"])
def test_tie_breakers_of_every_orderable_type_compare_natively(spark, ansi, reverse):
    """One source per type, all in one key group (one pass): the larger tie-breaker wins in each."""
    labels = local_frame(spark, [(0, 1, s(10))], "lid long, user_id long, label_ts timestamp")
    sources = []
    for i, (ddl, low, high) in enumerate(TIE_BREAKERS):
        rows = [(1, s(5), low, 30 + i), (1, s(5), high, 60 + i)]
        df = local_frame(spark, rows[::-1] if reverse else rows, f"user_id long, event_ts timestamp, tb {ddl}, f{i} int")
        sources.append(FeatureSource(f"p{i}", df, {"user_id": "user_id"}, [f"f{i}"], tie_breaker="tb"))
    row = point_in_time_join(labels, sources, partitions=2).first()
    assert {ddl: row[f"f{i}"] for i, (ddl, _, _) in enumerate(TIE_BREAKERS)} == \
        {ddl: 60 + i for i, (ddl, _, _) in enumerate(TIE_BREAKERS)}


def test_an_unorderable_tie_breaker_is_rejected_when_the_source_is_made(spark):
    profile = local_frame(spark, [(1, s(5), {"a": 1}, 30)], "user_id long, event_ts timestamp, tb map<string,int>, age int")
    with pytest.raises(SchemaError, match="feature table 'p': column 'tb' expected a tie-breaker of an orderable type.*"
                                          "got map<string,int>"):
        FeatureSource("p", profile, {"user_id": "user_id"}, ["age"], tie_breaker="tb")
    events = profile.withColumnRenamed("age", "item_id")
    with pytest.raises(SchemaError, match="event table 'c': column 'tb' expected a tie-breaker.*got map<string,int>"):
        SequenceSource("c", events, {"user_id": "user_id"}, ["item_id"], tie_breaker="tb")


def test_rows_equal_after_the_tie_breaker_never_follow_input_order(spark):
    """Same time, same tie-breaker, different values: one fixed winner for every row order and partitioning."""
    rows = [(1, s(5), 7, age, country) for age, country in [(30, "DE"), (31, "US"), (None, "FR"), (32, None)]]
    labels = local_frame(spark, [(0, 1, s(10))], "lid long, user_id long, label_ts timestamp")
    seen = set()
    for perm in ([0, 1, 2, 3], [2, 0, 3, 1]):
        for parts in (1, 3):
            profile = local_frame(spark, [rows[i] for i in perm], "user_id long, event_ts timestamp, tb int, age int, "
                                            "country string").repartition(parts)
            for tb in ("tb", None):
                src = FeatureSource("p", profile, {"user_id": "user_id"}, ["age", "country"], tie_breaker=tb)
                r = point_in_time_join(labels, [src], partitions=parts).first()
                seen.add((tb, r.age, r.country))
    assert len({x for x in seen if x[0] == "tb"}) == 1 and len({x for x in seen if x[0] is None}) == 1


# --- 2. integer key widths: widen, never narrow -----------------------------------------------

def test_int_label_keys_against_bigint_table_keys_beyond_int(spark, ansi):
    labels = local_frame(spark, [(0, 7, s(10)), (1, 8, s(10))], "lid long, user_id int, label_ts timestamp")
    profile = local_frame(spark, [(2**32 + 7, s(5), 99), (8, s(5), 40)], "user_id bigint, event_ts timestamp, age int")
    src = FeatureSource("p", profile, {"user_id": "user_id"}, ["age"])
    for bucket in (None, timedelta(days=1)):
        out = point_in_time_join(labels, [src], time_bucket=bucket)
        assert ages(out) == {0: None, 1: 40}
        assert dict(out.dtypes)["user_id"] == "int"  # label columns come out unchanged

    events = local_frame(spark, [(2**32 + 7, s(1), 900), (8, s(2), 800), (8, s(3), 801)],
                                   "user_id bigint, event_ts timestamp, item_id long")
    seq = last_n_events(labels, SequenceSource("clicks", events, {"user_id": "user_id"}, ["item_id"], n=5))
    assert {r.lid: r.clicks_item_id for r in seq.collect()} == {0: [], 1: [801, 800]}


def test_bigint_label_keys_against_narrower_table_keys(spark, ansi):
    labels = local_frame(spark, [(0, 2**32 + 7, s(10)), (1, 7, s(10)), (2, -(2**40), s(10))],
                                   "lid long, user_id bigint, label_ts timestamp")
    profile = local_frame(spark, [(7, s(5), 1), (-32768, s(5), 2)], "user_id smallint, event_ts timestamp, age int")
    assert ages(point_in_time_join(labels, [FeatureSource("p", profile, {"user_id": "user_id"}, ["age"])])) == \
        {0: None, 1: 1, 2: None}


# --- 3. every timestamp Spark can hold --------------------------------------------------------

def test_labels_before_1970_come_out_with_their_features(spark, ansi):
    labels = local_frame(spark, [(0, 1, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
                                    (1, 1, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))],
                                   "lid long, user_id long, label_ts timestamp")
    profile = local_frame(spark, [(1, datetime(1969, 12, 31, 23, tzinfo=UTC), 30)], "user_id long, event_ts timestamp, age int")
    for bucket in (None, timedelta(minutes=7), timedelta(days=1)):
        for ttl in (None, timedelta(hours=1, seconds=1)):
            src = FeatureSource("p", profile, {"user_id": "user_id"}, ["age"], ttl=ttl)
            assert ages(point_in_time_join(labels, [src], time_bucket=bucket)) == {0: 30, 1: 30}, (bucket, ttl)


@pytest.mark.parametrize("bucket", [None, timedelta(days=365)])
def test_first_and_last_instants_of_years_1_to_9999(spark, ansi, bucket):
    """Labels at both ends of the range; strict sources and TTLs measured exactly in microseconds."""
    labels = local_frame(spark, [(0, 1, FIRST), (1, 1, FIRST + timedelta(microseconds=1)), (2, 1, LAST),
                                    (3, 1, LAST - timedelta(microseconds=1))], "lid long, user_id long, label_ts timestamp")
    feats = local_frame(spark, [(1, FIRST, 10), (1, LAST, 20), (1, LAST - timedelta(microseconds=2), 19)],
                                  "user_id long, event_ts timestamp, age int")
    plain = FeatureSource("p", feats, {"user_id": "user_id"}, ["age"], ttl=timedelta(microseconds=1))
    strict = FeatureSource("q", feats.withColumnRenamed("age", "age_q"), {"user_id": "user_id"}, ["age_q"], strict=True)
    out = point_in_time_join(labels, [plain, strict], time_bucket=bucket)
    got = {r.lid: (r.age, r.age_q, r.us) for r in out.select("lid", "age", "age_q", F.unix_micros("label_ts").alias("us")).collect()}
    us = [micros(t) for t in [FIRST, FIRST + timedelta(microseconds=1), LAST, LAST - timedelta(microseconds=1)]]
    assert got == {0: (10, None, us[0]), 1: (10, 10, us[1]), 2: (20, 19, us[2]), 3: (19, 19, us[3])}


def test_sequences_and_sampling_windows_before_1970_and_at_the_ends(spark, ansi):
    old = datetime(1200, 3, 1, tzinfo=UTC)  # before the Gregorian switch: no Julian shift may happen
    labels = local_frame(spark, [(0, 1, old), (1, 1, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)), (2, 1, LAST)],
                                   "lid long, user_id long, label_ts timestamp")
    events = local_frame(spark, [(1, FIRST, 1), (1, old - timedelta(microseconds=1), 2), (1, old, 3),
                                    (1, datetime(1969, 12, 31, 23, 59, 58, tzinfo=UTC), 4), (1, LAST, 5)],
                                   "user_id long, event_ts timestamp, item_id long")
    seq = SequenceSource("c", events, {"user_id": "user_id"}, ["item_id"], n=10)
    # (Python's datetime cannot hold every instant near year 1, so times are compared in micros.)
    got = {r.lid: (r.c_item_id, r.us) for r in last_n_events(labels, seq).select(
        "lid", "c_item_id", F.transform("c_event_ts", F.unix_micros).alias("us")).collect()}
    assert got == {0: ([2, 1], [micros(old) - 1, micros(FIRST)]),
                   1: ([4, 3, 2, 1], [micros(datetime(1969, 12, 31, 23, 59, 58, tzinfo=UTC)), micros(old),
                                      micros(old) - 1, micros(FIRST)]),
                   2: ([4, 3, 2, 1], got[1][1])}
    aged = SequenceSource("c", events, {"user_id": "user_id"}, ["item_id"], n=10, max_age=timedelta(microseconds=1))
    assert {r.lid: r.c_item_id for r in last_n_events(labels, aged).select("lid", "c_item_id").collect()}[0] == [2]

    window = LabelSampling(["lid"], start=old, end=datetime(1970, 1, 1, tzinfo=UTC))
    assert sorted(r.lid for r in sample_labels(labels, window, ts="label_ts").select("lid").collect()) == [0, 1]
    window = LabelSampling(["lid"], start=old + timedelta(microseconds=1), end=LAST)
    assert sorted(r.lid for r in sample_labels(labels, window, ts="label_ts").select("lid").collect()) == [1]


# --- 4. non-finite values in embeddings -------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_vectors_come_out_null_and_are_counted(spark, ansi, tmp_path, bad):
    df = local_frame(spark, [(0, [bad, 1.0], [bad, 1.0]), (1, [2.0, 1.0], [2.0, 1.0]), (2, None, None),
                                (3, [1e300, -1e300], [1.0, 7e4])], "id int, a array<double>, b array<float>")
    modes = {"a": QuantizeMode.INT8, "b": QuantizeMode.FLOAT16}
    out, obs = quantize_embeddings(df, modes)
    out.write.parquet(str(tmp_path / "q"))
    got = {r.id: r for r in spark.read.parquet(str(tmp_path / "q")).collect()}
    assert got[0].a is None and got[0].a_scale is None and got[0].b is None
    assert list(got[1].a) == [127, 64] and got[1].a_scale == pytest.approx(2 / 127)
    assert np.frombuffer(got[1].b, "<f2").tolist() == [2.0, 1.0]
    assert list(got[3].a) == [127, -127]  # huge but finite: quantized, not lost
    report = error_report(obs, modes)
    assert report["a"]["non_finite_vectors"] == 1 and report["b"]["non_finite_vectors"] == 1
    assert report["a"]["max_rel_l2_error"] < 0.01
    assert report["b"]["max_abs_error"] == float("inf")  # 7e4 overflows half precision: still reported


# --- 5. equal-time events in sequences --------------------------------------------------------

def test_equal_time_events_give_the_same_sequence_in_any_row_order(spark, ansi):
    labels = local_frame(spark, [(0, 7, s(11))], "lid long, user_id long, label_ts timestamp")
    outs = set()
    for rows in ([(7, s(10), 100, 1), (7, s(10), 200, 2)], [(7, s(10), 200, 2), (7, s(10), 100, 1)]):
        for parts in (1, 2, 5):
            events = local_frame(spark, rows, "user_id long, event_ts timestamp, item_id long, rank int").repartition(parts)
            plain = SequenceSource("c", events, {"user_id": "user_id"}, ["item_id"], n=1)
            ranked = SequenceSource("c", events, {"user_id": "user_id"}, ["item_id"], n=1, tie_breaker="rank")
            outs.add(("plain", tuple(last_n_events(labels, plain, partitions=parts).first().c_item_id)))
            assert last_n_events(labels, ranked, partitions=parts).first().c_item_id == [200]  # largest is newest
    assert len(outs) == 1


# --- the same inputs through `fstore-batch build` ---------------------------------------------

def _write_build_inputs(spark, tmp_path, *, label_rows, label_ddl, tables, training):
    root = tmp_path / "delta"
    for name, (rows, ddl) in tables.items():
        local_frame(spark, rows, ddl).write.format("delta").save(str(root / name))
    local_frame(spark, label_rows, label_ddl).write.parquet(str(tmp_path / "labels"))
    store = tmp_path / "store.yaml"
    store.write_text(json.dumps({"storage": {"root": str(root)}}))
    ts = tmp_path / "training.yaml"
    ts.write_text(json.dumps({"name": "edges", "labels": {"path": str(tmp_path / "labels"), "ts": "event_ts"},
                              "output": str(tmp_path / "out"), **training}))
    return store, ts


def _build(spark, tmp_path, store, ts):
    from tests.support.cli import run_cli

    proc = run_cli("build", "--config", str(store), str(ts))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]
    return spark.read.format("delta").load(str(tmp_path / "out")), metrics


def test_cli_build_tie_breaker_key_widths_and_pre_1970(spark, ansi, tmp_path):
    store, ts = _write_build_inputs(
        spark, tmp_path,
        label_rows=[(0, 1, s(10)), (1, 7, s(10)), (2, 8, s(10)), (3, 9, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
                    (4, 9, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))],
        label_ddl="lid long, user_id int, event_ts timestamp",
        tables={"user_profile": ([(1, s(5), SNAP_31, 31), (1, s(5), SNAP_20, 30), (2**32 + 7, s(5), SNAP_20, 99),
                                  (8, s(5), SNAP_20, 40), (9, datetime(1969, 12, 31, 23, tzinfo=UTC), SNAP_20, 30)],
                                 "user_id bigint, event_ts timestamp, snapshot_id string, age int"),
                "user_events": ([(7, s(10), 100), (7, s(10), 200), (2**32 + 7, s(1), 900), (8, s(2), 800)],
                                "user_id bigint, event_ts timestamp, item_id long")},
        training={"features": [{"table": "user_profile", "keys": {"user_id": "user_id"}, "features": ["age"],
                                "tie_breaker": "snapshot_id"}],
                  "sequences": [{"name": "clicks", "table": "user_events", "keys": {"user_id": "user_id"},
                                 "columns": ["item_id"], "n": 1, "tie_breaker": "item_id"}]})
    out, metrics = _build(spark, tmp_path, store, ts)
    assert metrics["rows"] == 5
    got = {r.lid: (r.age, r.clicks_item_id) for r in out.collect()}
    assert got == {0: (31, []), 1: (None, []), 2: (40, [800]), 3: (30, []), 4: (30, [])}


def test_cli_build_sequence_tie_breaker_and_bucketed_join(spark, tmp_path):
    store, ts = _write_build_inputs(
        spark, tmp_path,
        label_rows=[(0, 7, s(11)), (1, 9, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
                    (2, 9, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))],
        label_ddl="lid long, user_id long, event_ts timestamp",
        tables={"user_events": ([(7, s(10), 200, 1), (7, s(10), 100, 2), (9, datetime(1969, 12, 31, 23, tzinfo=UTC), 5, 1)],
                                "user_id long, event_ts timestamp, item_id long, seq int")},
        training={"features": [{"table": "user_events", "keys": {"user_id": "user_id"}, "features": ["item_id"],
                                "tie_breaker": "seq"}],
                  "sequences": [{"name": "clicks", "table": "user_events", "keys": {"user_id": "user_id"},
                                 "columns": ["item_id"], "n": 1, "tie_breaker": "seq"}],
                  "join": {"time_bucket": "PT1H"}})
    out, _ = _build(spark, tmp_path, store, ts)
    assert {r.lid: (r.item_id, r.clicks_item_id) for r in out.collect()} == {0: (100, [100]), 1: (5, [5]), 2: (5, [5])}


def test_cli_build_quantizes_clean_rows_and_counts_non_finite_vectors(spark, tmp_path):
    store, ts = _write_build_inputs(
        spark, tmp_path,
        label_rows=[(0, 1, s(10)), (1, 2, s(10)), (2, 3, s(10))],
        label_ddl="lid long, user_id long, event_ts timestamp",
        tables={"user_embedding": ([(1, s(5), [float("nan"), 1.0], [float("nan"), 1.0]),
                                    (2, s(5), [2.0, 1.0], [2.0, 1.0]), (3, s(5), [float("inf"), 1.0], [1.0, float("-inf")])],
                                   "user_id long, event_ts timestamp, emb array<float>, emb16 array<float>")},
        training={"features": [{"table": "user_embedding", "keys": {"user_id": "user_id"}, "features": ["emb", "emb16"],
                                "quantize": {"emb": "int8", "emb16": "float16"}}]})
    out, metrics = _build(spark, tmp_path, store, ts)
    got = {r.lid: r for r in out.collect()}
    assert got[0].emb is None and got[0].emb_scale is None and got[0].emb16 is None
    assert got[2].emb is None and got[2].emb16 is None
    assert list(got[1].emb) == [127, 64] and np.frombuffer(got[1].emb16, "<f2").tolist() == [2.0, 1.0]
    q = metrics["quantization"]
    assert (q["emb"]["non_finite_vectors"], q["emb16"]["non_finite_vectors"]) == (2, 2)


def test_skew_matching_compares_and_outputs_keys_in_the_wider_type(spark, ansi):
    from fstore_batch.validation.match import MATCHED, OFFLINE_ONLY, ONLINE_ONLY, Sides, match_rows

    log = local_frame(spark, [("a", 7, s(0)), ("c", 8, s(0))], "request_id string, user_id int, request_ts timestamp")
    offline = local_frame(spark, [("b", 2**32 + 7, s(0)), ("c", 8, s(0))],
                                    "request_id string, user_id bigint, event_ts timestamp")
    # The request-id path; every key column of the skew table comes from _finish either way.
    table = match_rows(log, offline, Sides("request_id", "request_ts", "event_ts", ["user_id"]), [], fallback=False)
    try:
        got = sorted((r.user_id, r._status) for r in table.select("user_id", "_status").collect())
    finally:
        table.unpersist()
    assert got == [(7, ONLINE_ONLY), (8, MATCHED), (2**32 + 7, OFFLINE_ONLY)]


@pytest.mark.parametrize("request_id", ["request_id", None])
def test_skew_matching_falls_back_to_keys_and_time_in_the_wider_key_type(spark, request_id):
    """Rows the request id leaves unmatched (or every row, in a log without ids) pair up by entity
    key and nearest time within the tolerance; a key beyond the narrower type matches nothing."""
    from fstore_batch.validation.match import (
        MATCHED,
        OFFLINE_ONLY,
        ONLINE_ONLY,
        Sides,
        coverage,
        match_rows,
    )

    log = local_frame(spark, [("a", 7, s(0)), ("c", 8, s(0)), ("d", 9, s(100))],
                                "request_id string, user_id int, request_ts timestamp")
    offline = local_frame(spark, [("x", 2**32 + 7, s(0)), ("c", 8, s(0)), ("y", 9, s(100) + timedelta(milliseconds=400))],
                                    "request_id string, user_id bigint, event_ts timestamp")
    sides = Sides(request_id, "request_ts", "event_ts", ["user_id"])
    table = match_rows(log, offline, sides, [], fallback=True, time_tolerance=timedelta(seconds=1))
    try:
        got = sorted((r.user_id, r._status, r._by) for r in table.select("user_id", "_status", "_by").collect())
        cov = coverage(table, sides)
    finally:
        table.unpersist()
    by_id = "id" if request_id else "keys"
    assert got == [(7, ONLINE_ONLY, None), (8, MATCHED, by_id), (9, MATCHED, "keys"), (2**32 + 7, OFFLINE_ONLY, None)]
    assert (cov.matched, cov.online_only, cov.offline_only) == (2, 1, 1)


def test_hourly_skew_metrics_before_1970(spark):
    from fstore_batch.validation.config import DEFAULT_THRESHOLDS, FeatureKind, Tolerance
    from fstore_batch.validation.features import Feature
    from fstore_batch.validation.metrics import hourly

    hours = [datetime(1969, 12, 31, 23, 30, tzinfo=UTC), datetime(1970, 1, 1, 0, 30, tzinfo=UTC),
             datetime(1969, 12, 31, 23, 59, tzinfo=UTC)]
    rows = [(f"r{i}", t, "matched", 1.0, 1.0 if i else 2.0) for i, t in enumerate(hours)]
    matched = local_frame(spark, rows, "request_id string, _ts timestamp, _status string, on__x double, off__x double")
    feature = Feature("x", "x", "x", FeatureKind.NUMERIC, Tolerance(), DEFAULT_THRESHOLDS)
    got = {(h["hour"].replace(tzinfo=UTC), h["value"]) for h in hourly(matched, [feature]) if h["metric"] == "n"}
    assert got == {(datetime(1969, 12, 31, 23, tzinfo=UTC), 2.0), (datetime(1970, 1, 1, tzinfo=UTC), 1.0)}


def test_cli_build_date_window_before_the_gregorian_switch(spark, tmp_path):
    """`build --date` on a day of year 1200 takes exactly that UTC day (no 7-day Julian shift)."""
    day = datetime(1200, 3, 1, tzinfo=UTC)
    store, ts = _write_build_inputs(
        spark, tmp_path,
        label_rows=[(0, 1, day + timedelta(hours=5)), (1, 1, day - timedelta(hours=1)), (2, 1, day - timedelta(days=7)),
                    (3, 1, day + timedelta(days=1))],
        label_ddl="lid long, user_id long, event_ts timestamp",
        tables={"user_profile": ([(1, day - timedelta(days=30), 30)], "user_id long, event_ts timestamp, age int")},
        training={"features": [{"table": "user_profile", "keys": {"user_id": "user_id"}, "features": ["age"]}]})
    from tests.support.cli import run_cli

    proc = run_cli("build", "--config", str(store), str(ts), "--date", "1200-03-01")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(r.lid, r.age) for r in spark.read.format("delta").load(str(tmp_path / "out")).select("lid", "age").collect()] \
        == [(0, 30)]


def test_a_date_whose_end_cannot_be_held_is_a_usage_error():
    """`--date 9999-12-31` would need a window end of 10000-01-01: refused before anything runs."""
    from tests.support.cli import run_cli

    for verb in (["build", "ts.yaml"], ["publish", "ts.yaml"], ["run", "ts.yaml"]):
        proc = run_cli(*verb, "--date", "9999-12-31")
        assert proc.returncode == 2 and "the last day that can be built is 9999-12-30" in proc.stderr
    assert run_cli("build", "ts.yaml", "--date", "2026-13-01").returncode == 2
