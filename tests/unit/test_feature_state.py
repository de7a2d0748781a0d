"""Feature state: joins over ``state ∪ rows after its as-of`` give the full-history join's rows.

The full-history join is the reference (itself checked against brute force and DuckDB in
test_pit_join.py and test_sequences.py). Random histories, as-of times, labels at or after the
as-of (at it included), TTLs, strict sources, tie-breakers with frequent ties, sequences.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from delta.tables import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from fstore_batch.config.models import MaintenanceSpec
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.errors import DeltaVersionNotFoundError
from fstore_batch.joins.build import build_training_set, read_manifest, rebuild
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.spark_local import local_frame
from fstore_batch.storage.delta.catalog import snapshot_metadata
from fstore_batch.storage.delta.maintenance import maintain, maintain_state
from fstore_batch.storage.delta.state import (
    pick_state,
    read_with_state,
    select_state,
    state_history,
    state_path,
    update_state,
)
from fstore_batch.storage.delta.tables import append, unreadable_version

EPOCH = datetime(2026, 10, 1, tzinfo=UTC)
HISTORY = "user_id long, event_ts timestamp, seq long, age int, country string, snapshot_id string"
LABELS = "lid long, user_id long, label_ts timestamp"
FEATURES = ["age", "country"]
TS_COL = "event_ts"

history_rows = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 16), st.one_of(st.none(), st.integers(0, 2)),
                                  st.one_of(st.none(), st.integers(0, 9)),
                                  st.one_of(st.none(), st.sampled_from(["DE", "US"]))), max_size=24)


def at(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def joined(labels, rows, *, ttl, n):
    """Features (with ``ttl`` and tie-breaker ``seq``; as a source and as a strict one) and a
    sequence of ``n`` events, one tuple per label, sorted."""
    srcs = [FeatureSource("profile", rows, {"user_id": "user_id"}, FEATURES, tie_breaker="seq", strict=strict,
                          ttl=None if ttl is None else timedelta(seconds=ttl), prefix="strict_" if strict else "")
            for strict in (False, True)]
    out = point_in_time_join(labels, srcs, partitions=2)
    out = last_n_events(out, SequenceSource("recent", rows, {"user_id": "user_id"}, ["age"], n=n, tie_breaker="seq"))
    return sorted(tuple(r) for r in out.select("lid", *FEATURES, *[f"strict_{f}" for f in FEATURES],
                                               "recent_age").collect())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(history_rows, st.integers(0, 16), st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3)), min_size=1,
                                                   max_size=8),
       st.one_of(st.none(), st.integers(0, 5)), st.integers(1, 3), st.integers(0, 2))
def test_state_plus_later_rows_joins_like_the_full_history(spark, rows_in, as_of, labels_in, ttl, n, spare):
    history = local_frame(spark, [(k, at(t), s, a, c, f"s{t}") for k, t, s, a, c in rows_in], HISTORY)
    # labels at the as-of (offset 0) or after it; key 4 has no history
    labels = local_frame(spark, [(i, k, at(as_of + d)) for i, (k, d) in enumerate(labels_in)], LABELS)
    state = select_state(history, ["user_id"], FEATURES, at(as_of), events=n + spare)
    rows = state.unionByName(history.where(F.col("event_ts") > F.lit(at(as_of))))
    assert joined(labels, rows, ttl=ttl, n=n) == joined(labels, history, ttl=ttl, n=n)


def _snapshot(spark, path, rows, *, as_of, mode, snapshot_id, events=2, kill=False):
    """What the snapshot job does: the state first (naming the history commit to come), then the history."""
    df = local_frame(spark, [(k, at(t), s, a, c, snapshot_id) for k, t, s, a, c in rows], HISTORY)
    nxt = _version(spark, path) + 1 if DeltaTable.isDeltaTable(spark, path) else 0
    st_info = update_state(spark, path, ["user_id"], FEATURES, events=events, as_of_ms=int(at(as_of).timestamp() * 1000),
                           snapshot_id=snapshot_id, history_version=nxt, new_rows=df, full=mode == "full")
    if kill:
        return st_info  # the run dies between its two commits
    as_of_ms = int(at(as_of).timestamp() * 1000)
    append(df, path, user_metadata=snapshot_metadata(snapshot_id=snapshot_id, mode=mode, as_of_ms=as_of_ms,
                                                     state_version=st_info.version),
           txn_app_id="fstore-snapshot/user_profile", txn_version=as_of_ms if mode != "full" else None)
    return st_info


def _version(spark, path):
    return int(spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first().version)


def test_incremental_state_backfill_and_a_run_killed_between_its_commits(spark, tmp_path):
    path = str(tmp_path / "user_profile")
    rows = [(1, 1, 0, 30, "DE"), (1, 3, None, None, "US"), (2, 2, 1, 40, None), (2, 2, 2, 41, "FR"),
            (3, 4, 0, 50, "DE"), (1, 6, 0, None, "DE"), (2, 7, None, 42, None), (1, 9, 1, 31, None),
            (3, 9, 0, None, "US"), (4, 11, 0, 60, "NL"), (1, 12, 0, 32, "DE"), (2, 12, 0, None, "IT")]

    def window(lo, hi):
        return [r for r in rows if lo < r[1] <= hi]

    def check(first_label):
        """A build of labels from ``first_label`` on, through the state it picks, joins like the history."""
        version = _version(spark, path)
        st_info = pick_state(spark, path, version, at_or_before=at(first_label), keys={"user_id"}, events=2)
        assert st_info is not None
        labels = local_frame(spark, [(i, k, at(first_label + d)) for i, (k, d) in
                                        enumerate((k, d) for k in (1, 2, 3, 4) for d in (0, 1, 5))], LABELS)
        full = spark.read.format("delta").load(path)
        via = read_with_state(spark, path, version, st_info.manifest(state_path(path)), until_us=None)
        assert joined(labels, via, ttl=4, n=2) == joined(labels, full, ttl=4, n=2)
        return st_info

    first = _snapshot(spark, path, window(-1, 4), as_of=4, mode="initial", snapshot_id="a")
    assert check(4).version == first.version == 0
    second = _snapshot(spark, path, window(4, 9), as_of=9, mode="incremental", snapshot_id="b")
    assert check(9).version == second.version
    assert [h.operation for h in [spark.sql(f"DESCRIBE HISTORY delta.`{state_path(path)}`")
                                  .orderBy("version").collect()[-1]]] == ["MERGE"]  # only the changed keys
    assert check(5).version == first.version  # a backfill of earlier days takes the older state

    # killed between its commits: the state names a history commit that never came; builds skip it
    dead = _snapshot(spark, path, window(9, 12), as_of=12, mode="incremental", snapshot_id="c", kill=True)
    assert check(12).version == second.version != dead.version
    third = _snapshot(spark, path, window(9, 12), as_of=12, mode="incremental", snapshot_id="c")  # the rerun
    assert check(12).version == third.version
    commit = json.loads(spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first().userMetadata)
    assert commit["fstore"]["state_version"] == third.version

    # a --full backfill adds a late row at an old time: older states are no longer usable
    _snapshot(spark, path, [(1, 8, 5, 99, "XX")], as_of=12, mode="full", snapshot_id="d")
    rows.append((1, 8, 5, 99, "XX"))
    assert pick_state(spark, path, _version(spark, path), at_or_before=at(9), keys={"user_id"}) is None
    latest = check(12)
    assert latest.history_version == _version(spark, path) and len(state_history(spark, state_path(path))) == 5


def _build(spark, tmp_path, path, version, first_label, out, *, use_state=True):
    """``build_training_set`` of labels for keys 1-4 at ``first_label`` + 0, 1, 2 s (features with a 6 s TTL and
    a tie-breaker, a sequence of 2 events) against history ``version``; returns (metrics, rows sorted)."""
    labels = tmp_path / f"labels_{first_label}"
    if not labels.exists():  # written once: a rebuild checks that the label files are the build's
        local_frame(spark, [(i, k, at(first_label + d)) for i, (k, d) in enumerate((k, d) for k in (1, 2, 3, 4)
                                                                                      for d in (0, 1, 2))],
                              LABELS).write.parquet(str(labels))
    cfg = TrainingSetConfig.model_validate({
        "name": "ts", "labels": {"path": str(labels), "ts": "label_ts"}, "output": str(tmp_path / out),
        "features": [{"table": "user_profile", "keys": {"user_id": "user_id"}, "features": FEATURES,
                      "tie_breaker": "seq", "ttl": "PT6S"}],
        "sequences": [{"name": "recent", "table": "user_profile", "keys": {"user_id": "user_id"}, "columns": ["age"],
                       "n": 2, "tie_breaker": "seq"}]})
    inputs = {"user_profile": {"path": path, "version": version, "state_path": state_path(path)}}
    return build_training_set(spark, cfg, inputs, use_state=use_state), _rows(spark, tmp_path / out)


def _rows(spark, out):
    return sorted(tuple(r) for r in spark.read.format("delta").load(str(out))
                  .select("lid", *FEATURES, "recent_age").collect())


def test_an_empty_day_moves_the_state_on_and_a_rebuild_survives_its_vacuum(spark, tmp_path, caplog):
    path = str(tmp_path / "user_profile")
    _snapshot(spark, path, [(1, 1, 0, 30, "DE"), (2, 2, 1, 40, None), (3, 4, 0, 50, "DE"), (1, 3, None, None, "US"),
                            (2, 4, 2, 41, "FR")], as_of=4, mode="initial", snapshot_id="a")
    empty = _snapshot(spark, path, [], as_of=9, mode="incremental", snapshot_id="b")  # no changed key
    assert (empty.as_of_ms, empty.history_version, empty.version) == (int(at(9).timestamp() * 1000), 1, 1)
    last = spark.sql(f"DESCRIBE HISTORY delta.`{state_path(path)}` LIMIT 1").first()
    assert last.operation == "MERGE" and last.operationMetrics["numTargetRowsInserted"] == "0"

    # a build of labels from 9 s on reads that state, and gets the history build's rows
    m, via_state = _build(spark, tmp_path, path, 1, 9, "with_state")
    assert m["inputs"]["user_profile"]["state"]["version"] == empty.version
    h, via_history = _build(spark, tmp_path, path, 1, 9, "from_history", use_state=False)
    assert h["inputs"]["user_profile"]["state"] is None and via_state == via_history and len(via_state) == 12

    # the rebuild from the manifest reads the same state version, and the same rows
    manifest = read_manifest(spark, str(tmp_path / "with_state"))
    again = rebuild(spark, manifest, output=str(tmp_path / "rebuilt"))
    assert again["inputs"]["user_profile"]["state"]["version"] == empty.version
    assert _rows(spark, tmp_path / "rebuilt") == via_history

    # a later day rewrites the changed keys' state files; a VACUUM of the state table then deletes the old ones
    _snapshot(spark, path, [(1, 10, 0, 31, None), (3, 11, 1, None, "US")], as_of=12, mode="incremental",
              snapshot_id="c")
    maintain(spark, state_path(path), MaintenanceSpec(vacuum_retention_hours=0))
    assert "data files were removed" in unreadable_version(spark, state_path(path), empty.version)
    with caplog.at_level(logging.WARNING, logger="fstore_batch.joins.build"):
        fallback = rebuild(spark, manifest, output=str(tmp_path / "rebuilt_from_history"))
    assert fallback["inputs"]["user_profile"]["state"] is None  # what it read: the history at version 1
    assert _rows(spark, tmp_path / "rebuilt_from_history") == via_history
    [line] = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert f"feature state version {empty.version}" in line and "history at version 1 instead" in line

    # once the history's version 1 is vacuumed too, the rebuild fails naming the table, version and remedy
    maintain(spark, path, MaintenanceSpec(vacuum_retention_hours=0))  # compaction rewrites its files
    with pytest.raises(DeltaVersionNotFoundError, match=r"table 'user_profile' at .*: version 1 cannot be read: data "
                                                        r"files were removed .*nor can its feature state version 1 .*"
                                                        r"hint: build the training set again"):
        rebuild(spark, manifest, output=str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_maintenance_keeps_the_newest_usable_state_behind_a_dead_run_and_its_rerun_drops_the_dead_rows(spark, tmp_path):
    path = str(tmp_path / "user_profile")
    rows = [(1, 1, 0, 30, "DE"), (2, 2, 1, 40, None), (3, 4, 0, 50, "DE"), (1, 10, 0, 31, None), (3, 11, 1, None, "US")]
    _snapshot(spark, path, [r for r in rows if r[1] <= 4], as_of=4, mode="initial", snapshot_id="a")
    good = _snapshot(spark, path, [r for r in rows if r[1] > 4], as_of=12, mode="incremental", snapshot_id="b")
    # a run as of 15 s dies between its commits: its state replaced keys 1 and 2 (files of `good` left behind)
    _snapshot(spark, path, [(1, 13, 0, 32, "NL"), (2, 14, 0, None, "IT")], as_of=15, mode="incremental",
              snapshot_id="dead", kill=True)
    only_good = (set(spark.read.format("delta").option("versionAsOf", good.version).load(state_path(path)).inputFiles())
                 - set(spark.read.format("delta").load(state_path(path)).inputFiles()))
    assert only_good  # what a VACUUM of 0 h would delete
    m = maintain_state(spark, path, MaintenanceSpec(vacuum_retention_hours=0))
    assert m["kept_version"] == good.version and m["vacuum_retention_hours"] >= 1
    assert unreadable_version(spark, state_path(path), good.version) is None
    assert pick_state(spark, path, _version(spark, path), at_or_before=at(12), keys={"user_id"}) == good

    # the rerun, as of an earlier time than the dead run's: key 2 gets its state back, without the dead row at 14 s
    rerun = _snapshot(spark, path, [(1, 13, 0, 32, "NL")], as_of=13, mode="incremental", snapshot_id="rerun")
    rows.append((1, 13, 0, 32, "NL"))
    version = _version(spark, path)
    assert pick_state(spark, path, version, at_or_before=at(13), keys={"user_id"}) == rerun
    labels = local_frame(spark, [(i, k, at(13 + d)) for i, (k, d) in enumerate((k, d) for k in (1, 2, 3, 4)
                                                                                   for d in (0, 1, 2))], LABELS)
    via = read_with_state(spark, path, version, rerun.manifest(state_path(path)))
    assert joined(labels, via, ttl=None, n=2) == joined(labels, spark.read.format("delta").load(path), ttl=None, n=2)
    state_rows = spark.read.format("delta").load(state_path(path)).where("user_id = 2").select(F.unix_millis(TS_COL))
    assert {r[0] for r in state_rows.collect()} == {int(at(2).timestamp() * 1000)}
