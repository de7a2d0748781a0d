"""Temporal sampling: time window, per-stratum rates and weights, deterministic across partitionings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fstore_batch.errors import SchemaError
from fstore_batch.joins.sampling import LabelSampling, Stratum, sample_labels
from fstore_batch.spark_local import local_frame

T0 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def labels(spark):
    rows = [(f"r{i}", T0 + timedelta(minutes=i), i % 4 == 0) for i in range(20_000)]
    return local_frame(spark, rows, "request_id string, event_ts timestamp, clicked boolean").selectExpr(
        "request_id", "event_ts", "cast(clicked as int) as label")


def test_negatives_are_downsampled_at_their_rate_with_weight_and_positives_kept(labels):
    spec = LabelSampling(["request_id"], [Stratum({"label": 0}, 0.1)], seed=3)
    out = sample_labels(labels, spec, ts="event_ts")
    counts = {r.label: (r.n, r.w) for r in out.groupBy("label").agg({"*": "count", "sample_weight": "max"})
              .withColumnsRenamed({"count(1)": "n", "max(sample_weight)": "w"}).collect()}
    assert counts[1] == (5_000, 1.0)
    n0, w0 = counts[0]
    assert w0 == pytest.approx(10.0)
    assert abs(n0 - 1_500) < 4 * (15_000 * 0.1 * 0.9) ** 0.5  # binomial(15000, 0.1): within 4 sigma


def test_same_rows_whatever_the_partitioning_and_another_seed_differs(labels):
    spec = LabelSampling(["request_id"], [Stratum({"label": 0}, 0.2)], seed=1)
    a = {r.request_id for r in sample_labels(labels.repartition(1), spec, ts="event_ts").collect()}
    b = {r.request_id for r in sample_labels(labels.repartition(7, "event_ts"), spec, ts="event_ts").collect()}
    c = {r.request_id for r in sample_labels(labels, LabelSampling(["request_id"], [Stratum({"label": 0}, 0.2)], seed=2),
                                             ts="event_ts").collect()}
    assert a == b and a != c


def test_time_window_is_start_inclusive_end_exclusive_and_first_stratum_wins(labels):
    spec = LabelSampling(["request_id"], [Stratum({"label": 1}, 1.0), Stratum({"label": 1}, 0.01)],
                         start=T0 + timedelta(minutes=10), end=T0 + timedelta(minutes=20))
    got = sorted(r.request_id for r in sample_labels(labels, spec, ts="event_ts").collect())
    assert got == sorted(f"r{i}" for i in range(10, 20))


def test_missing_columns_are_named(labels):
    with pytest.raises(SchemaError, match="labels: column 'uid' expected a column used by sampling"):
        sample_labels(labels, LabelSampling(["uid"]), ts="event_ts")
    with pytest.raises(SchemaError, match="column 'label' expected a free name"):
        sample_labels(labels, LabelSampling(["request_id"], weight_column="label"), ts="event_ts")
