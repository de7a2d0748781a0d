"""Tiered history and retention: rows move to the cold tier (or are dropped), readers see each row once."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from fstore_batch.errors import StorageError
from fstore_batch.spark_local import local_frame
from fstore_batch.storage.delta.state import pick_state, read_with_state, state_path
from fstore_batch.storage.delta.tiers import apply_retention, read_history, tier_summary, tiering
from tests.unit.test_feature_state import _snapshot, _version, at, joined

ROWS = [(1, 1, 0, 30, "DE"), (2, 2, 1, 40, None), (3, 4, 0, 50, "DE"), (1, 6, 0, None, "US"), (2, 7, None, 42, None),
        (1, 9, 1, 31, None), (3, 10, 0, None, "US"), (4, 11, 0, 60, "NL")]


@pytest.fixture()
def history(spark, tmp_path):
    path = str(tmp_path / "user_profile")
    _snapshot(spark, path, [r for r in ROWS if r[1] <= 5], as_of=5, mode="initial", snapshot_id="a")
    _snapshot(spark, path, [r for r in ROWS if 5 < r[1] <= 8], as_of=8, mode="incremental", snapshot_id="b")
    _snapshot(spark, path, [r for r in ROWS if 8 < r[1]], as_of=12, mode="incremental", snapshot_id="c")
    return path


def test_retention_moves_old_rows_to_the_cold_tier_and_readers_see_each_row_once(spark, tmp_path, history):
    before = spark.read.format("delta").load(history)
    everything = before.collect()
    cold = str(tmp_path / "cold" / "user_profile")
    m = apply_retention(spark, "user_profile", history, at(12) - at(5), cold)  # cutoff: as-of 12 less 7 s = 5
    assert m["rows_moved"] == 3 and m["cutoff"] == at(5).isoformat()
    assert spark.read.format("delta").load(history).where(F.col("event_ts") < F.lit(at(5))).count() == 0
    assert spark.read.format("delta").load(cold).count() == 3
    version = _version(spark, history)
    assertDataFrameEqual(read_history(spark, "user_profile", history, version), everything, checkRowOrder=False)
    assert apply_retention(spark, "user_profile", history, at(12) - at(5), cold)["rows_moved"] == 0  # rerun: nothing
    assert _version(spark, history) == version and DeltaTable.forPath(spark, cold).history().count() == 1

    # a daily build through the state as of 8 s (after the cutoff) reads no cold rows and joins like the history
    state = pick_state(spark, history, version, at_or_before=at(8), keys={"user_id"})
    assert state.as_of_ms == int(at(8).timestamp() * 1000)
    labels = local_frame(spark, [(i, k, at(8 + d)) for i, (k, d) in enumerate((k, d) for k in (1, 2, 3, 4)
                                                                                   for d in (0, 2, 5))],
                                   "lid long, user_id long, label_ts timestamp")
    via = read_with_state(spark, history, version, state.manifest(state_path(history)))
    assert joined(labels, via, ttl=None, n=2) == joined(labels, spark.createDataFrame(everything), ttl=None, n=2)
    # a backfill from the start reads both tiers
    tiers = {t["tier"]: (t["rows"], t["from"], t["to"]) for t in tier_summary(spark, history, cold)}
    assert tiers == {"hot": (5, at(6).isoformat(), at(11).isoformat()), "cold": (3, at(1).isoformat(), at(4).isoformat())}


def test_dropped_history_fails_a_read_that_needs_it_naming_the_table_and_range(spark, history):
    m = apply_retention(spark, "user_profile", history, at(12) - at(5), None)
    assert m["rows_dropped"] == 3 and tiering(spark, history).cold_path is None
    version = _version(spark, history)
    with pytest.raises(StorageError, match=r"feature table 'user_profile' .*rows from the beginning to "
                                           r"2026-10-01T00:00:05\+00:00 were dropped by retention"):
        read_history(spark, "user_profile", history, version)
    assert read_history(spark, "user_profile", history, version, since_ms=int(at(5).timestamp() * 1000)).count() == 5
