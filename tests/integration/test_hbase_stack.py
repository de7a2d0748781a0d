"""happybase against the real HBase server: pre-split tables, versions, explicit timestamps, regions."""

from __future__ import annotations

import pytest

from fstore_batch.errors import HBaseTableError, HBaseUnavailableError
from fstore_batch.sources.hbase.admin import create_presplit_tables, list_regions
from fstore_batch.sources.hbase.connection import hbase_connection, open_connection

TABLE = "test_presplit_versions"


@pytest.fixture(scope="module")
def presplit_table(hbase):
    create_presplit_tables([(TABLE, {"f": 5}, [b"\x40", b"\x80", b"\xc0"])])
    return TABLE


def test_presplit_table_has_the_requested_regions(hbase, presplit_table):
    with hbase_connection(hbase) as conn:
        regions = list_regions(conn, presplit_table)
    assert regions == [(b"", b"\x40"), (b"\x40", b"\x80"), (b"\x80", b"\xc0"), (b"\xc0", b"")]


def test_versions_with_explicit_timestamps_read_back_newest_first(hbase, presplit_table):
    with hbase_connection(hbase) as conn:
        table = conn.table(presplit_table)
        for ts, value in [(1_000, b"v1"), (2_000, b"v2"), (3_000, b"v3")]:
            table.put(b"\x50row", {b"f:x": value}, timestamp=ts)
        cells = table.cells(b"\x50row", b"f:x", versions=10, include_timestamp=True)
        assert cells == [(b"v3", 3_000), (b"v2", 2_000), (b"v1", 1_000)]
        # A read as of t=2500 (HBase time range [0, 2500)) sees the version written at 2000.
        row = table.row(b"\x50row", columns=[b"f:x"], timestamp=2_500, include_timestamp=True)
        assert row == {b"f:x": (b"v2", 2_000)}


def test_rows_land_in_the_region_their_key_belongs_to(hbase, presplit_table):
    with hbase_connection(hbase) as conn:
        table = conn.table(presplit_table)
        for first in (0x10, 0x90, 0xd0):
            table.put(bytes([first]) + b"k", {b"f:x": b"1"}, timestamp=10)
        in_third = [k for k, _ in table.scan(row_start=b"\x80", row_stop=b"\xc0")]
    assert in_third == [b"\x90k"]


def test_missing_table_and_unreachable_server_give_clear_errors(hbase, free_port):
    with hbase_connection(hbase) as conn, pytest.raises(HBaseTableError, match="'no_such_table': does not exist"):
        list_regions(conn, "no_such_table")
    with pytest.raises(HBaseUnavailableError, match=f"127.0.0.1:{free_port} is unreachable.*make hbase-up"):
        open_connection(hbase.model_copy(update={"port": free_port}))
