"""The snapshot job against the real HBase server, writing real Delta tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from fstore_batch.config import FeatureStoreConfig, FeatureTableSpec
from fstore_batch.config.models import StateSpec
from fstore_batch.errors import ExecutorError, ValidationFailed
from fstore_batch.sources.hbase.admin import create_presplit_tables, feature_table_layout
from fstore_batch.sources.hbase.codecs import encode
from fstore_batch.sources.hbase.connection import hbase_connection
from fstore_batch.sources.hbase.datasource import hbase_reader
from fstore_batch.sources.hbase.rowkey import RowKeyCodec
from fstore_batch.sources.hbase.scan import list_region_ranges
from fstore_batch.spark_local import local_frame
from fstore_batch.storage.delta.catalog import snapshot_history
from fstore_batch.storage.delta.maintenance import maintain
from fstore_batch.storage.delta.snapshot import QUARANTINE_TABLE, run_snapshot
from fstore_batch.storage.delta.state import pick_state, state_history, state_path, update_state
from fstore_batch.storage.delta.tables import current_version
from tests.conftest import ROOT
from tests.support.tcp_proxy import ThriftProxy

T = 1_790_000_000_000  # the as-of instant the boundary tests pivot on (ms)
USERS = list(range(1, 13))

CODECS = FeatureTableSpec.model_validate({
    "name": "snap_codecs", "hbase_table": "test_snap_codecs", "history": True, "max_versions": 5,
    "row_key": {"salt": {"buckets": 4}, "parts": [{"name": "user_id", "type": "int64"},
                                                  {"name": "market", "type": "string"}]},
    "columns": [
        {"column": "f:clicks", "feature": "clicks", "codec": "int64"},
        {"column": "f:age", "feature": "age", "codec": "int32"},
        {"column": "f:score", "feature": "score", "codec": "float32"},
        {"column": "f:ltv", "feature": "ltv", "codec": "float64"},
        {"column": "f:country", "feature": "country", "codec": "string"},
        {"column": "f:premium", "feature": "premium", "codec": "bool"},
        {"column": "f:prefs", "feature": "prefs", "codec": "json"},
        {"column": "f:emb", "feature": "emb", "codec": "vector_f32", "dim": 4},
        {"column": "f:seq", "feature": "seq", "codec": "int64_list"},
    ],
})
LATEST_ONLY = CODECS.model_copy(update={"name": "snap_latest", "history": False})


def put(hbase, spec: FeatureTableSpec, key: tuple, ts: int, **values) -> None:
    cols = {c.feature: c for c in spec.columns}
    data = {cols[f].column.encode(): encode(cols[f].codec, v, cols[f].dim) for f, v in values.items()}
    with hbase_connection(hbase) as conn:
        conn.table(spec.hbase_table).put(RowKeyCodec(spec.row_key).encode(key), data, timestamp=ts)


def put_raw(hbase, table: str, row_key: bytes, ts: int, data: dict[bytes, bytes]) -> None:
    with hbase_connection(hbase) as conn:
        conn.table(table).put(row_key, data, timestamp=ts)


@pytest.fixture(scope="module")
def codecs_table(hbase):
    """12 users over 4 regions: full rows at T-1000, two columns again at T-1, T and T+1."""
    create_presplit_tables([feature_table_layout(CODECS)])
    for uid in USERS:
        key = (uid, "eu")
        put(hbase, CODECS, key, T - 1000, clicks=uid, age=20 + uid, score=0.5, ltv=uid * 1.5, country="DE",
            premium=uid % 2 == 0, prefs={"topics": ["news"], "uid": uid}, emb=[uid, 0.0, -1.0, 0.25],
            seq=[uid * 10, uid * 10 + 1])
        for dt in (-1, 0, 1):
            put(hbase, CODECS, key, T + dt, clicks=uid * 100 + dt, ltv=uid * 100.0 + dt)
    return CODECS


@pytest.fixture()
def store(hbase, tmp_path):
    def make(*tables: FeatureTableSpec, **hbase_updates) -> FeatureStoreConfig:
        return FeatureStoreConfig.model_validate({
            "hbase": hbase.model_copy(update={"scan_batch_size": 3, "max_retries": 2, "retry_backoff_ms": 10,
                                              **hbase_updates}).model_dump(),
            "storage": {"root": str(tmp_path / "delta")},
            "tables": [t.model_dump() for t in tables],
        })
    return make


def read(spark, cfg, name, **options):
    reader = spark.read.format("delta")
    for k, v in options.items():
        reader = reader.option(k, v)
    return reader.load(cfg.storage.table_path(name))


def test_one_partition_per_region_and_every_row_once(spark, hbase, codecs_table):
    df = hbase_reader(spark, codecs_table, hbase.model_copy(update={"scan_batch_size": 2}), as_of_ms=T + 10)
    assert df.rdd.getNumPartitions() == 4
    rows = df.select("user_id", "market", "event_ts").collect()
    assert len(rows) == len(set(rows)) == len(USERS) * 4  # T-1000, T-1, T, T+1 per user
    assert {r.user_id for r in rows} == set(USERS) and {r.market for r in rows} == {"eu"}


def test_regions_grouped_into_fewer_partitions_still_give_every_row_once(spark, hbase, codecs_table):
    """What the snapshot does (one task per core): 4 regions in 3 partitions, from the driver's listing."""
    small = hbase.model_copy(update={"scan_batch_size": 2})
    regions = list_region_ranges(hbase, codecs_table.hbase_table)
    df = hbase_reader(spark, codecs_table, small, as_of_ms=T + 10, max_partitions=3, regions=regions)
    assert len(regions) == 4 and df.rdd.getNumPartitions() == 3
    rows = df.select("user_id", "market", "event_ts").collect()
    whole = hbase_reader(spark, codecs_table, small, as_of_ms=T + 10).select("user_id", "market", "event_ts").collect()
    assert len(rows) == len(set(rows)) == len(USERS) * 4 and sorted(rows) == sorted(whole)


def test_as_of_boundary_includes_t_and_excludes_t_plus_1(spark, store, codecs_table):
    cfg = store(codecs_table)
    m = run_snapshot(spark, cfg, "snap_codecs", T)
    df = read(spark, cfg, "snap_codecs")
    offsets = sorted({(r.event_ts.timestamp() * 1000) - T for r in df.select("event_ts").distinct().collect()})
    assert offsets == [-1000, -1, 0]
    assert df.where("clicks = 100 * user_id + 1").count() == 0
    assert m["mode"] == "initial" and m["rows"] == len(USERS) * 3 and m["quarantined"] == 0


def test_history_keeps_versions_latest_only_keeps_the_newest(spark, store, codecs_table):
    cfg = store(codecs_table, LATEST_ONLY)
    run_snapshot(spark, cfg, "snap_codecs", T)
    run_snapshot(spark, cfg, "snap_latest", T)
    hist = read(spark, cfg, "snap_codecs").where("user_id = 3").select("event_ts", "clicks").orderBy("event_ts")
    assert [r.clicks for r in hist.collect()] == [3, 299, 300]
    latest = read(spark, cfg, "snap_latest").where("user_id = 3")
    # Latest only: each column's newest cell <= T, so clicks/ltv at T and the rest at T-1000.
    assert sorted((r.event_ts.timestamp() * 1000 - T, r.clicks) for r in latest.collect()) == [(-1000, None), (0, 300)]


def test_every_codec_lands_in_a_typed_column(spark, store, codecs_table):
    cfg = store(codecs_table)
    run_snapshot(spark, cfg, "snap_codecs", T)
    df = read(spark, cfg, "snap_codecs")
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    assert types == {"user_id": "bigint", "market": "string", "event_ts": "timestamp", "clicks": "bigint",
                     "age": "int", "score": "float", "ltv": "double", "country": "string", "premium": "boolean",
                     "prefs": "string", "emb": "array<float>", "seq": "array<bigint>", "snapshot_id": "string"}
    r = df.where(f"user_id = 4 AND event_ts = timestamp_millis({T - 1000})").first()
    assert (r.clicks, r.age, r.score, r.ltv, r.country, r.premium) == (4, 24, 0.5, 6.0, "DE", True)
    assert json.loads(r.prefs) == {"topics": ["news"], "uid": 4}
    assert r.emb == [4.0, 0.0, -1.0, 0.25] and r.seq == [40, 41]


BAD = FeatureTableSpec.model_validate({
    "name": "snap_bad", "hbase_table": "test_snap_bad", "max_bad_fraction": 0.5,
    "row_key": {"salt": {"buckets": 2}, "parts": [{"name": "user_id", "type": "int64"}]},
    "columns": [
        {"column": "f:n", "feature": "n", "codec": "int64"},
        {"column": "f:s", "feature": "s", "codec": "string"},
        {"column": "f:v", "feature": "v", "codec": "vector_f32", "dim": 4},
        {"column": "f:j", "feature": "j", "codec": "json"},
    ],
})


@pytest.fixture(scope="module")
def bad_table(hbase):
    create_presplit_tables([feature_table_layout(BAD)])
    keys = RowKeyCodec(BAD.row_key)
    for uid in range(1, 9):
        put_raw(hbase, BAD.hbase_table, keys.encode((uid,)), 1000,
                {b"f:n": encode(BAD.columns[0].codec, uid), b"f:s": b"ok", b"f:v": bytes(16), b"f:j": b"{}"})
    put_raw(hbase, BAD.hbase_table, keys.encode((20,)), 2000,
            {b"f:n": b"\x01\x02\x03", b"f:s": b"\xff\xfe", b"f:v": bytes(12), b"f:j": b"{nope"})
    put_raw(hbase, BAD.hbase_table, b"\x01abc", 2000, {b"f:s": b"short key"})
    return BAD


def test_bad_cells_go_to_quarantine_with_their_reason(spark, store, bad_table):
    cfg = store(bad_table)
    m = run_snapshot(spark, cfg, "snap_bad", 10_000)
    assert m["quarantined"] == 5 and m["rows"] == 8 and m["cells"] == 8 * 4 + 5
    q = read(spark, cfg, QUARANTINE_TABLE)
    got = {(r.column, r.reason.split(":")[0]): (r.row_key, r.raw) for r in q.collect()}
    assert set(got) == {("f:n", "int64"), ("f:s", "string"), ("f:v", "vector_f32"), ("f:j", "json"), ("f:s", "row key")}
    reasons = {r.column + " " + r.reason for r in q.collect()}
    assert any("exactly 8 bytes" in x for x in reasons) and any("4 float32 values" in x for x in reasons)
    assert any("UTF-8" in x for x in reasons) and got[("f:s", "row key")] == (b"\x01abc", b"short key")
    assert read(spark, cfg, "snap_bad").count() == 8


def test_bad_fraction_above_threshold_fails_and_commits_nothing(spark, store, bad_table):
    strict = bad_table.model_copy(update={"max_bad_fraction": 0.05})
    cfg = store(strict)
    with pytest.raises(ValidationFailed, match=r"snap_bad .*5 of 37 cells .* above max_bad_fraction 5\.00%; nothing was written"):
        run_snapshot(spark, cfg, "snap_bad", 10_000)
    assert not DeltaTable.isDeltaTable(spark, cfg.storage.table_path("snap_bad"))
    assert not DeltaTable.isDeltaTable(spark, cfg.storage.table_path(QUARANTINE_TABLE))


INCR = FeatureTableSpec.model_validate({
    "name": "snap_incr", "hbase_table": "test_snap_incr", "history": True, "max_versions": 10,
    "row_key": {"salt": {"buckets": 2}, "parts": [{"name": "user_id", "type": "int64"}]},
    "columns": [{"column": "f:x", "feature": "x", "codec": "int64"}],
})


def test_rerun_is_idempotent_incremental_adds_only_new_cells_and_time_travel_sees_the_old(spark, hbase, store):
    create_presplit_tables([feature_table_layout(INCR)])
    for uid in (1, 2, 3):
        put(hbase, INCR, (uid,), 1_000, x=uid)
    cfg = store(INCR)
    first = run_snapshot(spark, cfg, "snap_incr", 5_000)
    v0 = read(spark, cfg, "snap_incr").collect()
    again = run_snapshot(spark, cfg, "snap_incr", 5_000)
    assert again["mode"] == "up_to_date" and read(spark, cfg, "snap_incr").count() == 3
    put(hbase, INCR, (1,), 6_000, x=10)    # new version of an old cell
    put(hbase, INCR, (4,), 7_000, x=4)     # a new row
    put(hbase, INCR, (5,), 9_000, x=5)     # after the next as-of
    second = run_snapshot(spark, cfg, "snap_incr", 8_000)
    assert (first["version"], second["version"]) == (0, 1)
    assert second["mode"] == "incremental" and second["rows"] == 2 and second["cells"] == 2
    now = read(spark, cfg, "snap_incr").select("user_id", "x", F.unix_millis("event_ts").alias("ts"))
    assertDataFrameEqual(now, [(1, 1, 1_000), (2, 2, 1_000), (3, 3, 1_000), (1, 10, 6_000), (4, 4, 7_000)],
                         checkRowOrder=False)
    assertDataFrameEqual(read(spark, cfg, "snap_incr", versionAsOf=0), v0, checkRowOrder=False)
    history = snapshot_history(spark, cfg.storage.table_path("snap_incr"))
    assert [(h.version, h.meta["mode"], h.meta["rows"]) for h in history] == [(0, "initial", 3), (1, "incremental", 2)]
    assert history[1].meta["since_ms"] == 5_000 and history[1].meta["source_table"] == "test_snap_incr"


def test_a_run_that_dies_between_the_state_and_the_history_commit_is_repaired_by_its_rerun(
        spark, hbase, store):
    spec = INCR.model_copy(update={"name": "snap_dies", "hbase_table": "test_snap_dies"})
    create_presplit_tables([feature_table_layout(spec)])
    for uid in (1, 2, 3):
        put(hbase, spec, (uid,), 1_000, x=uid)
    cfg = store(spec)
    path = cfg.storage.table_path("snap_dies")
    assert run_snapshot(spark, cfg, "snap_dies", 5_000)["state_version"] == 0
    put(hbase, spec, (1,), 6_000, x=10)
    put(hbase, spec, (4,), 7_000, x=4)

    # What a run as of 8 s that died between its two commits leaves behind: the state's commit, naming
    # history commit 1 and the run's snapshot id, and no history commit.
    dead_id = "snap_dies@" + datetime.fromtimestamp(8, UTC).isoformat(timespec="milliseconds")
    scanned = local_frame(spark, [(1, datetime.fromtimestamp(6, UTC), 10, dead_id),
                                     (4, datetime.fromtimestamp(7, UTC), 4, dead_id)],
                                    spark.read.format("delta").load(path).schema)
    update_state(spark, path, ["user_id"], ["x"], events=0, as_of_ms=8_000, history_version=1, new_rows=scanned,
                 snapshot_id=dead_id)
    assert current_version(spark, path) == 0  # the history did not move
    assert [s.history_version for s in state_history(spark, state_path(path))] == [0, 1]  # commit 1 never came
    at_8s = datetime.fromtimestamp(8, UTC)
    assert pick_state(spark, path, 0, at_or_before=at_8s, keys={"user_id"}).version == 0  # builds skip the orphan

    again = run_snapshot(spark, cfg, "snap_dies", 8_000)
    assert (again["mode"], again["version"], again["state_version"]) == ("incremental", 1, 2)
    state = pick_state(spark, path, 1, at_or_before=at_8s, keys={"user_id"})
    assert state.version == 2 and state.history_version == 1
    rows = spark.read.format("delta").load(state_path(path)).select("user_id", "x", F.unix_millis("event_ts"))
    assertDataFrameEqual(rows, [(1, 10, 6_000), (2, 2, 1_000), (3, 3, 1_000), (4, 4, 7_000)], checkRowOrder=False)

    # a table snapshotted while its state was off gets one on the next run, even with nothing new
    off = spec.model_copy(update={"name": "snap_stateless", "state": StateSpec(enabled=False)})
    run_snapshot(spark, store(off), "snap_stateless", 8_000)
    assert not state_history(spark, state_path(cfg.storage.table_path("snap_stateless")))
    rerun = run_snapshot(spark, store(off.model_copy(update={"state": StateSpec()})), "snap_stateless", 8_000)
    assert rerun["mode"] == "up_to_date" and rerun["state_version"] == 0


def _bytes_for_a_full_run(spark, hbase, store, spec, name) -> int:
    proxy = ThriftProxy(hbase.port)
    try:
        run_snapshot(spark, store(spec.model_copy(update={"name": name}), port=proxy.port), name, T)
        return proxy.forwarded
    finally:
        proxy.close()


def test_dropped_connection_is_retried_and_the_region_resumes(spark, hbase, store, codecs_table):
    total = _bytes_for_a_full_run(spark, hbase, store, codecs_table, "snap_probe_bytes")
    proxy = ThriftProxy(hbase.port, cut_after=total // 2)
    try:
        cfg = store(codecs_table, port=proxy.port)
        m = run_snapshot(spark, cfg, "snap_codecs", T)
    finally:
        proxy.close()
    assert proxy.drops == 1
    assert m["rows"] == len(USERS) * 3
    rows = read(spark, cfg, "snap_codecs").select("user_id", "event_ts").collect()
    assert len(rows) == len(set(rows)) == len(USERS) * 3


def _stop_thrift_server() -> None:
    """Kill the real HBase Thrift server of the local stack (make test restarts it after)."""
    pid_file = Path(os.environ.get("FSTORE_HBASE_HOME", ROOT / ".data" / "hbase-stack")) / "thrift.pid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_thrift_server_stopped_mid_job_fails_clearly_and_commits_nothing(thrift_outage, spark, hbase, store,
                                                                          codecs_table):
    cfg_direct = store(codecs_table)
    run_snapshot(spark, cfg_direct, "snap_codecs", T - 1)
    path = cfg_direct.storage.table_path("snap_codecs")
    before = current_version(spark, path)
    total = _bytes_for_a_full_run(spark, hbase, store, codecs_table, "snap_probe_bytes2")
    # Halfway through the scan the real Thrift server dies; the proxy only marks the moment.
    proxy = ThriftProxy(hbase.port, cut_after=total // 3, on_cut=_stop_thrift_server)
    try:
        with pytest.raises(ExecutorError) as err:
            run_snapshot(spark, store(codecs_table, port=proxy.port), "snap_codecs", T)
    finally:
        proxy.close()
        up = subprocess.run([str(ROOT / "stack" / "hbase" / "hbasectl"), "up"], capture_output=True, text=True,
                            check=False)
        assert up.returncode == 0, up.stdout + up.stderr
    assert err.value.kind == "HBaseUnavailableError"
    assert "table 'test_snap_codecs', region #" in str(err.value) and "gave up after 2 retries" in str(err.value)
    assert current_version(spark, path) == before


def test_maintain_compacts_and_vacuum_honours_retention(spark, hbase, store):
    spec = FeatureTableSpec.model_validate({**INCR.model_dump(), "name": "snap_maint",
                                            "maintenance": {"zorder_by": ["user_id"], "vacuum_retention_hours": 0}})
    create_presplit_tables([feature_table_layout(spec)])
    cfg = store(spec)
    for i, as_of in enumerate((2_000, 4_000, 6_000)):
        put(hbase, spec, (i + 1,), as_of - 500, x=i)
        run_snapshot(spark, cfg, "snap_maint", as_of)
    path = cfg.storage.table_path("snap_maint")
    before = read(spark, cfg, "snap_maint").collect()
    m = maintain(spark, path, spec.maintenance)
    assert m["optimize"] == "zorder" and m["files_removed"] >= 3 and m["files_added"] >= 1
    assert m["files_after_vacuum"] < m["files_before_vacuum"]
    assertDataFrameEqual(read(spark, cfg, "snap_maint"), before, checkRowOrder=False)
    props = DeltaTable.forPath(spark, path).detail().first().properties
    assert props["delta.deletedFileRetentionDuration"] == "interval 0 hours"
    keep = FeatureTableSpec.model_validate({**spec.model_dump(), "maintenance": {"vacuum_retention_hours": 168}})
    put(hbase, spec, (9,), 7_000, x=9)
    run_snapshot(spark, cfg, "snap_maint", 8_000)
    m2 = maintain(spark, path, keep.maintenance)
    assert m2["files_after_vacuum"] == m2["files_before_vacuum"]  # nothing is old enough yet
