"""The tiny sample data set written through happybase into the real HBase server."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from fstore_batch.sources.hbase.admin import list_regions
from fstore_batch.sources.hbase.connection import hbase_connection
from fstore_batch.sources.hbase.decode import RowDecoder
from fstore_batch.sources.hbase.inspect import count_rows
from tests.support.cli import run_cli


@pytest.fixture(scope="module")
def seeded(seeded_sample):
    return seeded_sample.data, seeded_sample.stats, seeded_sample.labels


@pytest.fixture(scope="module")
def cfg(seeded_sample):
    return seeded_sample.config


def test_each_table_is_presplit_by_salt_and_holds_every_row(cfg, seeded):
    data, stats, _ = seeded
    with hbase_connection(cfg.hbase) as conn:
        for name, cells in data.tables.items():
            spec = cfg.table(name)
            assert len(list_regions(conn, spec.hbase_table)) == spec.row_key.salt.buckets
            assert count_rows(conn, spec.hbase_table) == len(set(cells.keys)), name
    written = {s["table"]: s.get("cells") for s in stats}
    assert written["user_profile"] == data.tables["user_profile"].cell_count()


def test_cells_keep_their_timestamps_and_versions(cfg, seeded):
    data, _, _ = seeded
    spec = cfg.table("user_profile")
    profile = data.tables["user_profile"]
    uid = profile.keys[0][0]
    expected = sorted(((ts, v) for (k,), ts, v in zip(profile.keys, profile.ts, profile.values["p:ltv"]) if k == uid),
                      reverse=True)
    dec = RowDecoder(spec)
    with hbase_connection(cfg.hbase) as conn:
        row_key = dec.keys.encode((uid,))
        cells = conn.table(spec.hbase_table).cells(row_key, b"p:ltv", versions=20, include_timestamp=True)
    got = [(c.ts, c.value) for c in dec.decode_cells(row_key, [(b"p:ltv", v, ts) for v, ts in cells])]
    assert got == expected and len(got) >= 1


def test_label_log_is_written_as_parquet(seeded):
    _, _, labels = seeded
    table = pq.read_table(labels)
    assert table.num_rows == len(seeded[0].labels["request_id"])
    assert {"request_id", "user_id", "item_id", "event_ts", "label", "date"} <= set(table.column_names)
    assert str(table.schema.field("event_ts").type) == "timestamp[ms, tz=UTC]"


def test_cli_inspect_shows_counts_and_decoded_rows(hbase, seeded):
    proc = run_cli("inspect", "--set", "hbase.table_prefix=t", "--table", "user_embedding", "--rows", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    users = len(set(seeded[0].tables["user_embedding"].keys))
    assert f"user_embedding (HBase 'user_embedding'): {users} rows in 4 regions" in out
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics == {"job": "inspect", "metrics": {"rows": users, "tables": 1}}
