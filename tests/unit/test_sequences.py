"""Last-N behaviour sequences against a brute-force oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fstore_batch.errors import SchemaError
from fstore_batch.joins.sequences import SequenceSource, last_n_events

EPOCH = datetime(2026, 10, 1, tzinfo=UTC)
LABELS = "lid long, user_id long, label_ts timestamp"
EVENTS = "uid long, event_ts timestamp, item_id long, dwell int"


def at(s: int) -> datetime:
    return EPOCH + timedelta(seconds=s)


def oracle(labels, events, n, max_age):
    out = {}
    for lid, uid, t in labels:
        evs = [e for e in events if e[0] == uid and t is not None and e[1] < t
               and (max_age is None or t - e[1] <= timedelta(seconds=max_age))]
        evs.sort(key=lambda e: e[1], reverse=True)
        out[lid] = [e[2] for e in evs[:n]], [e[1] for e in evs[:n]]
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 30)), min_size=1, max_size=10),
       st.lists(st.tuples(st.integers(1, 3), st.integers(0, 30)), max_size=40, unique=True),
       st.integers(1, 5), st.one_of(st.none(), st.integers(0, 15)))
def test_last_n_matches_brute_force(spark, labels_in, events_in, n, max_age):
    labels = [(i, k, at(t)) for i, (k, t) in enumerate(labels_in)]
    events = [(k, at(t), 1000 * k + t, t) for k, t in events_in]  # one event per (key, time)
    seq = SequenceSource("clicks", spark.createDataFrame(events, EVENTS), {"user_id": "uid"}, ["item_id", "dwell"],
                         n=n, max_age=None if max_age is None else timedelta(seconds=max_age))
    got = last_n_events(spark.createDataFrame(labels, LABELS), seq, partitions=2).collect()
    assert sorted(r.lid for r in got) == [lbl[0] for lbl in labels]
    want = oracle(labels, events, n, max_age)
    for r in got:
        items, times = want[r.lid]
        assert r.clicks_item_id == items
        assert [t.replace(tzinfo=UTC) for t in r.clicks_event_ts] == times
        assert r.clicks_dwell == [(i % 1000) for i in items]


def test_windows_cross_arrow_batches(spark):
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "4")
    try:
        events = [(1, at(t), t, t) for t in range(0, 60, 2)]
        labels = [(i, 1, at(t)) for i, t in enumerate(range(1, 70, 5))]
        seq = SequenceSource("clicks", spark.createDataFrame(events, EVENTS), {"user_id": "uid"}, ["item_id"], n=3)
        got = {r.lid: r.clicks_item_id for r in last_n_events(spark.createDataFrame(labels, LABELS), seq,
                                                               partitions=1).collect()}
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    want = oracle(labels, events, 3, None)
    assert got == {lid: items for lid, (items, _) in want.items()}


def test_bad_sequence_inputs(spark):
    events = spark.createDataFrame([(1, at(0), 1, 1)], EVENTS)
    with pytest.raises(SchemaError, match="event table 'clicks': column 'sku' expected a column of the table"):
        SequenceSource("clicks", events, {"user_id": "uid"}, ["sku"])
    seq = SequenceSource("clicks", events, {"user_id": "uid"}, ["item_id"])
    labels = spark.createDataFrame([(1, 1, at(1))], LABELS)
    with pytest.raises(SchemaError, match="labels: column 'user_id' expected a key column"):
        last_n_events(labels.drop("user_id"), seq)
    as_string = SequenceSource("clicks", events.withColumn("uid", events.uid.cast("string")), {"user_id": "uid"}, ["item_id"])
    with pytest.raises(SchemaError, match="sequence table 'clicks': column 'uid' expected the type of label key"):
        last_n_events(labels, as_string)
