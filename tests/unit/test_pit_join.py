"""Point-in-time join semantics against two independent oracles: brute force and DuckDB ASOF JOIN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from fstore_batch.errors import JoinError, SchemaError
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.spark_local import local_frame

EPOCH = datetime(2026, 10, 1, tzinfo=UTC)
LABELS = "lid long, user_id long, label_ts timestamp, y int"
PROFILE = "user_id long, event_ts timestamp, seq long, age int, country string"
STATS = "uid long, event_ts timestamp, seq long, clicks long"


def at(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


keys = st.integers(1, 3)
times = st.integers(0, 12)
label_rows = st.lists(st.tuples(keys, times), min_size=1, max_size=12)
profile_rows = st.lists(st.tuples(keys, times, st.one_of(st.none(), st.integers(0, 99)),
                                  st.one_of(st.none(), st.sampled_from(["DE", "US"]))), max_size=14)
stats_rows = st.lists(st.tuples(keys, times, st.one_of(st.none(), st.integers(0, 9))), max_size=10)
ttls = st.one_of(st.none(), st.integers(0, 6))
buckets = st.sampled_from([None, 1, 4])  # hot-key split into time buckets of N seconds, or none
# Labels over the whole history, or only its last seconds (a daily build's shape).
label_shifts = st.sampled_from([0, 8])

# Issue 12: where the times sit (seconds 0..12 after an anchor), at both ends of years 1..9999 and
# across 1970; tie-breakers of several types drawn from 0..2 (so ties are common; None loses);
# key widths with values that a narrower type would wrap onto 1..3.
ANCHORS = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 55, tzinfo=UTC), EPOCH,
           datetime(9999, 12, 31, 23, 59, 40, tzinfo=UTC)]
TIE_TYPES = {
    "bigint": lambda v: v,
    "string": lambda v: "snap@" + "abc"[v],
    "decimal(30,2)": lambda v: Decimal(10**25) + Decimal(v) / 100,
    "timestamp": lambda v: datetime(1950, 1, 1, tzinfo=UTC) + timedelta(microseconds=v),
}
WIDE = 2**32  # label key k + WIDE in a bigint column would wrap onto k in an int
KEY_TYPES = ["int", "bigint"]




def brute_force(labels, tables) -> dict[int, dict[str, object]]:
    """For each label and feature: the latest non-null value at/before (or before) the label time.

    "Latest" is the largest (ts, tie-breaker, hash of the row's features, the features); a null
    tie-breaker and null features sort lowest, as in Spark's ascending order.
    """
    out = {}
    for lid, uid, t, _ in labels:
        row = {}
        for rows, feats, ttl, strict in tables:
            for f in feats:
                best = None
                for r in rows:
                    if uid is None or t is None or r["key"] != uid or r[f] is None:
                        continue
                    if (r["ts"] < t if strict else r["ts"] <= t) and (best is None or _rank(r, feats) > _rank(best, feats)):
                        best = r
                ok = best is not None and (ttl is None or (t - best["ts"]) <= timedelta(seconds=ttl))
                row[f] = best[f] if ok else None
        out[lid] = row
    return out


def _rank(r, feats):
    nulls_low = lambda v: (v is not None, v)
    return (r["ts"], nulls_low(r["seq"]), r["hash"], tuple(nulls_low(r[f]) for f in feats))


def _hashes(df, features):
    """Spark's xxhash64 of each row's features (the documented fallback order), by row id."""
    return {r.rid: r.h for r in df.select("rid", F.xxhash64(*features).alias("h")).collect()}


@settings(max_examples=8, deadline=None,  # per ANSI mode
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(label_rows, profile_rows, stats_rows, ttls, ttls, st.booleans(), buckets,
       st.sampled_from(ANCHORS), st.sampled_from(sorted(TIE_TYPES)), st.sampled_from(KEY_TYPES),
       st.sampled_from(KEY_TYPES + ["smallint"]), st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=24, max_size=24),
       st.randoms(use_true_random=False), st.integers(1, 4), label_shifts)
def test_matches_brute_force(spark, ansi, labels_in, profile_in, stats_in, ttl_p, ttl_s, strict_s, bucket,
                             anchor, tie_type, label_key, table_key, ties, rnd, parts, shift):
    at_ = lambda t: anchor + timedelta(seconds=t)
    wide = (lambda k: k + WIDE if k == 3 else k)  # key 3 becomes 2^32 + 3 where the column can hold it
    lk = wide if label_key == "bigint" else (lambda k: k)
    tk = wide if table_key == "bigint" else (lambda k: k)
    labels = [(i, lk(k), at_(min(t + shift, 12)), i % 2) for i, (k, t) in enumerate(labels_in)]
    labels += labels[:2]  # duplicate label rows come out twice
    labels = [(i, *rest) for i, (_, *rest) in enumerate(labels)]
    tb = TIE_TYPES[tie_type]
    profile = [(rid, tk(k), at_(t), None if ties[rid % 24] is None else tb(ties[rid % 24]), age, c)
               for rid, (k, t, age, c) in enumerate(profile_in)]
    stats = [(rid, tk(k), at_(t), rid, n) for rid, (k, t, n) in enumerate(stats_in)]
    rnd.shuffle(profile), rnd.shuffle(stats), rnd.shuffle(labels)  # input order must not matter
    profile_df = local_frame(spark, profile, f"rid long, user_id {table_key}, event_ts timestamp, seq {tie_type}, "
                                                "age int, country string").repartition(parts)
    stats_df = local_frame(spark, stats, f"rid long, uid {table_key}, event_ts timestamp, seq long, clicks long")
    sources = [
        FeatureSource("profile", profile_df, {"user_id": "user_id"}, ["age", "country"],
                      ttl=None if ttl_p is None else timedelta(seconds=ttl_p), tie_breaker="seq"),
        FeatureSource("stats", stats_df, {"user_id": "uid"}, ["clicks"],
                      ttl=None if ttl_s is None else timedelta(seconds=ttl_s), tie_breaker="seq", strict=strict_s),
    ]
    label_df = local_frame(spark, labels, f"lid long, user_id {label_key}, label_ts timestamp, y int")
    got = point_in_time_join(label_df, sources, partitions=3,
                             time_bucket=None if bucket is None else timedelta(seconds=bucket)
                             ).select("lid", "user_id", "y", "age", "country", "clicks").collect()

    assert len(got) == len(labels)  # every label exactly once: no fan-out, no loss
    assert sorted(r.lid for r in got) == list(range(len(labels)))
    h = _hashes(profile_df, ["age", "country"])
    expected = brute_force(sorted(labels), [
        ([{"key": k, "ts": ts, "seq": s, "hash": h[rid], "age": a, "country": c} for rid, k, ts, s, a, c in profile],
         ["age", "country"], ttl_p, False),
        ([{"key": k, "ts": ts, "seq": s, "hash": 0, "clicks": n} for _, k, ts, s, n in stats], ["clicks"], ttl_s, strict_s),
    ])
    by_lid = {lbl[0]: lbl for lbl in labels}
    for r in got:
        want = expected[r.lid]
        assert (r.age, r.country, r.clicks) == (want["age"], want["country"], want["clicks"]), r
        assert (r.user_id, r.y) == (by_lid[r.lid][1], by_lid[r.lid][3])  # label columns unchanged


def _none(v):
    return None if pd.isna(v) else (int(v) if isinstance(v, float) else v)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_rows, st.lists(st.tuples(keys, times, st.integers(0, 99)), max_size=14), ttls)
def test_matches_duckdb_asof_join(spark, labels_in, feats_in, ttl):
    labels = [(i, k, at(t), 0) for i, (k, t) in enumerate(labels_in)]
    uniq = {(k, t): v for k, t, v in feats_in}  # one row per (key, ts): ASOF has no tie order
    feats = [(k, at(t), 0, v, None) for (k, t), v in uniq.items()]
    src = FeatureSource("profile", local_frame(spark, feats, PROFILE), {"user_id": "user_id"}, ["age"],
                        ttl=None if ttl is None else timedelta(seconds=ttl))
    got = point_in_time_join(local_frame(spark, labels, LABELS), [src], partitions=2).toPandas()

    con = duckdb.connect()
    con.register("l", pd.DataFrame(labels, columns=["lid", "user_id", "label_ts", "y"]))
    con.register("f", pd.DataFrame([(k, t, v) for k, t, _, v, _ in feats], columns=["user_id", "event_ts", "age"])
                 if feats else pd.DataFrame({"user_id": pd.Series(dtype="int64"),
                                             "event_ts": pd.Series(dtype="datetime64[us, UTC]"),
                                             "age": pd.Series(dtype="int64")}))
    ref = con.execute("""
        SELECT l.lid, f.age, f.event_ts, l.label_ts FROM l ASOF LEFT JOIN f
        ON l.user_id = f.user_id AND l.label_ts >= f.event_ts ORDER BY l.lid""").df()
    want = {}
    for r in ref.itertuples():
        fresh = ttl is None or pd.isna(r.event_ts) or (r.label_ts - r.event_ts) <= pd.Timedelta(seconds=ttl)
        want[r.lid] = None if pd.isna(r.age) or not fresh else int(r.age)
    assert {r.lid: _none(r.age) for r in got.itertuples()} == want


def test_bad_inputs_get_clear_errors(spark):
    labels = local_frame(spark, [(1, 1, at(0), 0)], LABELS)
    profile = local_frame(spark, [(1, at(0), 0, 1, "DE")], PROFILE)
    with pytest.raises(SchemaError, match="feature table 'profile': column 'height' expected a column of the table"):
        FeatureSource("profile", profile, {"user_id": "user_id"}, ["height"])
    src = FeatureSource("profile", profile, {"user_id": "user_id"}, ["age"])
    with pytest.raises(SchemaError, match="labels: column 'ts' expected the label time column"):
        point_in_time_join(labels, [src], label_ts="ts")
    as_string = labels.withColumn("label_ts", labels.label_ts.cast("string"))
    with pytest.raises(SchemaError, match="labels: column 'label_ts' expected a timestamp with time zone.*got string"):
        point_in_time_join(as_string, [src])
    ntz = profile.withColumn("event_ts", profile.event_ts.cast("timestamp_ntz"))
    with pytest.raises(SchemaError, match="TIMESTAMP_NTZ"):
        FeatureSource("profile", ntz, {"user_id": "user_id"}, ["age"])
    with pytest.raises(JoinError, match="feature 'y' of table 'p2' clashes"):
        point_in_time_join(labels, [FeatureSource("p2", profile.withColumnRenamed("age", "y"), {"user_id": "user_id"}, ["y"])])
    string_ids = profile.withColumn("user_id", profile.user_id.cast("string"))
    with pytest.raises(SchemaError, match="feature table 'p': column 'user_id' expected the type of label key 'user_id' "
                                          r"\(bigint\).*got string"):
        point_in_time_join(labels, [FeatureSource("p", string_ids, {"user_id": "user_id"}, ["age"])])
    narrow = profile.withColumn("user_id", profile.user_id.cast("int"))  # integer widths may differ
    assert point_in_time_join(labels, [FeatureSource("p", narrow, {"user_id": "user_id"}, ["age"])]).first().age == 1
    no_key = labels.drop("user_id")
    with pytest.raises(SchemaError, match="labels: column 'user_id' expected a key column for feature table 'profile'"):
        point_in_time_join(no_key, [src])


def test_labels_with_null_key_or_time_are_kept_with_null_features(spark):
    labels = local_frame(spark, [(0, None, at(5), 0), (1, 1, None, 0), (2, 1, at(5), 0)], LABELS)
    profile = local_frame(spark, [(1, at(1), 0, 30, "DE")], PROFILE)
    got = point_in_time_join(labels, [FeatureSource("p", profile, {"user_id": "user_id"}, ["age"])]).toPandas()
    assert {r.lid: _none(r.age) for r in got.itertuples()} == {0: None, 1: None, 2: 30}


@pytest.mark.parametrize("bucket", [None, timedelta(seconds=7)])
def test_a_long_history_per_key_with_ttl(spark, bucket):
    """With time buckets, values and their TTL clocks carry across bucket boundaries."""
    ttl = timedelta(seconds=10)
    feats = [(1, at(t), t, t, None) for t in range(0, 40, 2)]
    labels = [(i, 1, at(t), 0) for i, t in enumerate(range(1, 60, 3))]
    got = point_in_time_join(local_frame(spark, labels, LABELS),
                             [FeatureSource("p", local_frame(spark, feats, PROFILE), {"user_id": "user_id"},
                                            ["age", "country"], ttl=ttl)],
                             partitions=1, time_bucket=bucket).toPandas()
    for r in got.itertuples():
        label_time = labels[r.lid][2]
        last = max(s for s in range(0, 40, 2) if at(s) <= label_time)
        fresh = label_time - at(last) <= ttl
        assert _none(r.age) == (last if fresh else None)
        assert _none(r.country) is None


def test_native_tie_breakers_keep_one_shuffle_and_no_python_per_key_group(spark):
    """String and decimal tie-breakers, widened keys and a TTL add sort columns, not exchanges."""
    labels = local_frame(spark, [(0, 1, at(5), 0)], "lid long, user_id int, label_ts timestamp, y int")
    a = local_frame(spark, [(1, at(1), "s1", 30)], "user_id long, event_ts timestamp, snapshot_id string, age int")
    b = local_frame(spark, [(1, at(1), Decimal(1), 7)], "uid smallint, event_ts timestamp, v decimal(20,2), clicks int")
    out = point_in_time_join(labels, [FeatureSource("a", a, {"user_id": "user_id"}, ["age"], tie_breaker="snapshot_id",
                                                    ttl=timedelta(seconds=9)),
                                      FeatureSource("b", b, {"user_id": "uid"}, ["clicks"], tie_breaker="v")])
    plan = out._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Exchange hashpartitioning") == 1, plan
    assert "ArrowEvalPython" not in plan and "BatchEvalPython" not in plan
    assert (out.first().age, out.first().clicks) == (30, 7)


def test_feature_rows_of_keys_no_label_has_are_dropped_before_the_shuffle(spark):
    """A bloom filter of the labels' keys (compared in the wider key type) filters the feature rows
    before the exchange: a daily build's one day of labels shuffles only its keys' history."""
    labels = local_frame(spark, [(0, 1, at(5), 0), (1, None, at(5), 0)], "lid long, user_id int, label_ts timestamp, y int")
    profile = local_frame(spark, [(1, at(1), 0, 30, "DE"), ((1 << 32) + 1, at(1), 0, 40, "FR"), (2, at(2), 0, 50, "IT")],
                                    PROFILE)
    out = point_in_time_join(labels, [FeatureSource("p", profile, {"user_id": "user_id"}, ["age"])])
    plan = out._jdf.queryExecution().executedPlan().toString()
    assert "might_contain" in plan, plan
    assert sorted((r.lid, r.age) for r in out.collect()) == [(0, 30), (1, None)]
