"""Last-N behaviour sequences against a brute-force oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from fstore_batch.errors import SchemaError
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.spark_local import local_frame

EPOCH = datetime(2026, 10, 1, tzinfo=UTC)
LABELS = "lid long, user_id long, label_ts timestamp"
EVENTS = "uid long, event_ts timestamp, item_id long, dwell int"


def at(s: int) -> datetime:
    return EPOCH + timedelta(seconds=s)


def oracle(labels, events, n, max_age, rank=lambda e: e[1]):
    """Per label: the ``n`` events of its key strictly before it (within ``max_age``), newest first.

    ``rank`` orders events; equal-time events by (tie-breaker, hash of the columns, the columns).
    """
    out = {}
    for lid, uid, t in labels:
        evs = [e for e in events if e[0] == uid and t is not None and e[1] < t
               and (max_age is None or t - e[1] <= timedelta(seconds=max_age))]
        evs.sort(key=rank, reverse=True)
        out[lid] = [e[2] for e in evs[:n]], [e[1] for e in evs[:n]]
    return out




ANCHORS = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 45, tzinfo=UTC), EPOCH,
           datetime(9999, 12, 31, 23, 59, 0, tzinfo=UTC)]
TIE_TYPES = {"none": None, "string": lambda v: "abc"[v], "decimal(30,3)": lambda v: Decimal(10**26) + Decimal(v) / 1000,
             "timestamp": lambda v: datetime(1901, 1, 1, tzinfo=UTC) + timedelta(microseconds=v)}


@settings(max_examples=8, deadline=None,  # per ANSI mode
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 30)), min_size=1, max_size=10),
       st.lists(st.tuples(st.integers(1, 3), st.integers(0, 30), st.integers(0, 3), st.one_of(st.none(), st.integers(0, 2))),
                max_size=40),
       st.integers(1, 5), st.one_of(st.none(), st.integers(0, 15)), st.sampled_from(ANCHORS),
       st.sampled_from(sorted(TIE_TYPES)), st.sampled_from(["int", "bigint"]), st.sampled_from(["int", "bigint"]),
       st.randoms(use_true_random=False), st.integers(1, 4))
def test_last_n_matches_brute_force(spark, ansi, labels_in, events_in, n, max_age, anchor, tie_type, label_key,
                                    table_key, rnd, parts):
    """Equal-time events (drawn often), extreme times, key widths beyond int, shuffled inputs."""
    at_ = lambda t: anchor + timedelta(seconds=t)
    wide = (lambda k: k + 2**32 if k == 3 else k)  # key 3 becomes 2^32 + 3 where the column can hold it
    lk, tk = (wide if label_key == "bigint" else int), (wide if table_key == "bigint" else int)
    tb = TIE_TYPES[tie_type]
    labels = [(i, lk(k), at_(t)) for i, (k, t) in enumerate(labels_in)]
    # item_id = 1000 * key + time + 100 * j: several items per (key, time)
    events = [(tk(k), at_(t), 1000 * k + 100 * j + t, t, None if tb is None or r is None else tb(r))
              for k, t, j, r in events_in]
    rnd.shuffle(events)
    ddl = f"uid {table_key}, event_ts timestamp, item_id long, dwell int, tb {'int' if tb is None else tie_type}"
    events_df = local_frame(spark, events, ddl).repartition(parts)
    seq = SequenceSource("clicks", events_df, {"user_id": "uid"}, ["item_id", "dwell"],
                         n=n, max_age=None if max_age is None else timedelta(seconds=max_age),
                         tie_breaker=None if tb is None else "tb")
    got = last_n_events(local_frame(spark, labels, f"lid long, user_id {label_key}, label_ts timestamp"), seq,
                        partitions=parts).select("lid", "clicks_item_id", "clicks_dwell",
                                                 F.transform("clicks_event_ts", F.unix_micros).alias("us")).collect()
    assert sorted(r.lid for r in got) == [lbl[0] for lbl in labels]
    h = {(r.item_id, r.dwell): r.h for r in events_df.select("item_id", "dwell", F.xxhash64("item_id", "dwell")
                                                             .alias("h")).collect()}
    want = oracle(labels, events, n, max_age,
                  rank=lambda e: (e[1], (e[4] is not None, e[4]), h[(e[2], e[3])], e[2], e[3]))
    for r in got:
        items, times = want[r.lid]
        assert r.clicks_item_id == items
        assert r.us == [(t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for t in times]
        assert r.clicks_dwell == [(i % 100) for i in items]


def test_reshuffled_events_give_identical_sequences(spark):
    """Many equal-time events per user, stored in other row orders and partition counts: the same lists."""
    events = [(u, at(t // 4), 100 * u + t) for u in range(1, 4) for t in range(40)]  # 4 events per second
    labels = local_frame(spark, [(i, u, at(s)) for i, (u, s) in enumerate([(u, s) for u in range(1, 4)
                                                                              for s in (3, 6, 11)])],
                                   "lid long, user_id long, label_ts timestamp")
    results = []
    for seed, parts in [(0, 1), (1, 3), (2, 7)]:
        df = local_frame(spark, events, "uid long, event_ts timestamp, item_id long").orderBy(F.rand(seed)).repartition(parts)
        seq = SequenceSource("clicks", df, {"user_id": "uid"}, ["item_id"], n=5)
        results.append(sorted((r.lid, tuple(r.clicks_item_id)) for r in last_n_events(labels, seq, partitions=parts).collect()))
    assert results[0] == results[1] == results[2]


def test_windows_cross_arrow_batches(spark):
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "4")
    try:
        events = [(1, at(t), t, t) for t in range(0, 60, 2)]
        labels = [(i, 1, at(t)) for i, t in enumerate(range(1, 70, 5))]
        seq = SequenceSource("clicks", local_frame(spark, events, EVENTS), {"user_id": "uid"}, ["item_id"], n=3)
        got = {r.lid: r.clicks_item_id for r in last_n_events(local_frame(spark, labels, LABELS), seq,
                                                               partitions=1).collect()}
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    want = oracle(labels, events, 3, None)
    assert got == {lid: items for lid, (items, _) in want.items()}


def test_bad_sequence_inputs(spark):
    events = local_frame(spark, [(1, at(0), 1, 1)], EVENTS)
    with pytest.raises(SchemaError, match="event table 'clicks': column 'sku' expected a column of the table"):
        SequenceSource("clicks", events, {"user_id": "uid"}, ["sku"])
    seq = SequenceSource("clicks", events, {"user_id": "uid"}, ["item_id"])
    labels = local_frame(spark, [(1, 1, at(1))], LABELS)
    with pytest.raises(SchemaError, match="labels: column 'user_id' expected a key column"):
        last_n_events(labels.drop("user_id"), seq)
    as_string = SequenceSource("clicks", events.withColumn("uid", events.uid.cast("string")), {"user_id": "uid"}, ["item_id"])
    with pytest.raises(SchemaError, match="sequence table 'clicks': column 'uid' expected the type of label key"):
        last_n_events(labels, as_string)


def test_labels_without_events_get_empty_lists_never_null(spark):
    """A null key, a null time, a key without events, labels at or before the first event: []."""
    events = local_frame(spark, [(1, at(5), 10, 1), (1, at(6), 11, 2)], EVENTS)
    labels = local_frame(spark, [(0, None, at(9)), (1, 1, None), (2, 7, at(9)), (3, 1, at(5)), (4, 1, at(6))],
                                   LABELS)
    seq = SequenceSource("clicks", events, {"user_id": "uid"}, ["item_id", "dwell"], n=3)
    got = {r.lid: (r.clicks_item_id, r.clicks_dwell, r.clicks_event_ts) for r in last_n_events(labels, seq).collect()}
    assert got == {0: ([], [], []), 1: ([], [], []), 2: ([], [], []), 3: ([], [], []), 4: ([10], [1], [at(5).replace(tzinfo=None)])}


def test_long_histories_cut_at_n_across_blocks(spark):
    """Hundreds of events per key, many labels, n not dividing the count: the oracle's lists."""
    events = [(u, at(t), 1000 * u + t, t % 7) for u in (1, 2) for t in range(0, 600, 2)]
    labels = [(i, u, at(t)) for i, (u, t) in enumerate((u, t) for u in (1, 2, 3) for t in range(-1, 640, 37))]
    seq = SequenceSource("clicks", local_frame(spark, events, EVENTS), {"user_id": "uid"}, ["item_id"], n=23,
                         max_age=timedelta(seconds=41))
    got = {r.lid: r.clicks_item_id for r in last_n_events(local_frame(spark, labels, LABELS), seq,
                                                           partitions=3).collect()}
    assert got == {lid: items for lid, (items, _) in oracle(labels, events, 23, 41).items()}
    seq = SequenceSource("clicks", local_frame(spark, events, EVENTS), {"user_id": "uid"}, ["item_id"], n=23)
    got = {r.lid: r.clicks_item_id for r in last_n_events(local_frame(spark, labels, LABELS), seq).collect()}
    assert got == {lid: items for lid, (items, _) in oracle(labels, events, 23, None).items()}



def test_a_filter_on_the_sequences_keeps_the_plan_small(spark):
    """A filter on the output (the online log's stale fault filters on the list's size) is pushed
    down through the cut: the plan must stay linear in size, not blow up with ``n``."""
    events = [(1, at(t), t, 0) for t in range(0, 300, 3)]
    labels = [(i, 1, at(t)) for i, t in enumerate(range(1, 320, 29))]
    seq = SequenceSource("clicks", local_frame(spark, events, EVENTS), {"user_id": "uid"}, ["item_id"], n=64,
                         max_age=timedelta(seconds=150))
    out = last_n_events(local_frame(spark, labels, LABELS), seq).where(F.size("clicks_item_id") > 1)
    assert len(out._jdf.queryExecution().optimizedPlan().toString()) < 50_000
    want = {lid: items for lid, (items, _) in oracle(labels, events, 64, 150).items() if len(items) > 1}
    assert {r.lid: r.clicks_item_id for r in out.collect()} == want
