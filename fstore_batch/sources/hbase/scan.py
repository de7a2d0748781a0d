"""Region scans on executors: one happybase connection per region, retries that resume.

HBase's thrift1 scans return the latest version of each column (the server's ``Scan`` keeps its
default of one version), with ``timestamp`` as an exclusive upper bound. So a scan as of ``T`` asks
for ``timestamp = T + 1`` and sees, per column, the newest cell with ``ts <= T``. Tables with
history then fetch the older versions of the cells that changed after ``since`` with ``getVerTs``
(happybase ``Table.cells``), one call per changed (row, column). Those calls are round trips that
wait on the server, so each scanner batch's calls run on ``hbase.version_fetch_threads`` threads,
each with its own connection (happybase connections are not thread-safe).

A dropped connection or a timeout reconnects with exponential backoff and resumes the region just
after the last row it finished, so each row is read exactly once. After ``max_retries`` failed
reconnects the scan raises :class:`HBaseUnavailableError` naming the table and region.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

import happybase

from fstore_batch.config.models import HBaseConfig
from fstore_batch.errors import HBaseUnavailableError
from fstore_batch.sources.hbase.connection import TRANSPORT_ERRORS, open_connection

log = logging.getLogger(__name__)

# Worth a reconnect: broken sockets and timeouts, and server-side IOErrors (region moving, etc.).
from Hbase_thrift import IOError as ThriftServerIOError  # registered by happybase on import

RETRYABLE = (*TRANSPORT_ERRORS, ThriftServerIOError)

Cell = tuple[bytes, int]
"""``(value, timestamp_ms)``"""
ScannedRow = tuple[bytes, dict[bytes, list[Cell]]]
"""``(row_key, {column: [cells, newest first]})``"""


@dataclass(frozen=True)
class Region:
    """One region's key range ``[start, end)``; ``b""`` is an open end."""

    index: int
    start: bytes
    end: bytes

    def describe(self) -> str:
        return f"#{self.index} [{self.start.hex() or '-inf'}, {self.end.hex() or '+inf'})"


@dataclass(frozen=True)
class ScanSpec:
    table: str
    columns: list[bytes]  # families (b"f") or family:qualifier columns to fetch
    as_of_ms: int
    since_ms: int | None = None
    history: bool = False
    max_versions: int = 1


class RegionScanner:
    """Reads one region with retries; yields rows whose cells are ``since < ts <= as_of``."""

    def __init__(self, hbase: HBaseConfig, spec: ScanSpec, region: Region,
                 *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.hbase, self.spec, self.region = hbase, spec, region
        self._sleep = sleep
        self._conn: happybase.Connection | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._pool_conns: list[happybase.Connection] = []
        self.retries = 0

    def rows(self) -> Iterator[ScannedRow]:
        resume_after: bytes | None = None
        while True:
            try:
                for row_key, cells in self._scan_from(resume_after):
                    yield row_key, cells
                    resume_after = row_key
                return
            except RETRYABLE as e:
                self._reconnect_after(e)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for conn in self._pool_conns:
            conn.close()
        self._pool_conns, self._local = [], threading.local()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- internals ------------------------------------------------------------------------

    def _table(self) -> happybase.Table:
        if self._conn is None:
            self._conn = open_connection(self.hbase, table=self.spec.table)
        return self._conn.table(self.spec.table)

    def _scan_from(self, resume_after: bytes | None) -> Iterator[ScannedRow]:
        start = self.region.start if resume_after is None else resume_after + b"\x00"
        table = self._table()
        scanner = table.scan(
            row_start=start or None,
            row_stop=self.region.end or None,
            columns=self.spec.columns,
            timestamp=self.spec.as_of_ms + 1,
            include_timestamp=True,
            batch_size=self.hbase.scan_batch_size,
        )
        since = self.spec.since_ms
        changed = (
            (row_key, {column: [(value, ts)] for column, (value, ts) in data.items() if since is None or ts > since})
            for row_key, data in scanner)  # a cell at or before `since` is unchanged, and so are its older versions
        rows = ((row_key, cells) for row_key, cells in changed if cells)
        if not (self.spec.history and self.spec.max_versions > 1):
            yield from rows
            return
        while chunk := list(islice(rows, self.hbase.scan_batch_size)):
            yield from self._with_versions(chunk)

    def _with_versions(self, chunk: list[ScannedRow]) -> list[ScannedRow]:
        """Replace each cell of ``chunk`` by its versions in ``(since, as_of]``, fetched concurrently."""
        wanted = [(row_key, column) for row_key, cells in chunk for column in cells]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.hbase.version_fetch_threads, thread_name_prefix="hbase-versions")
        fetched = dict(zip(wanted, self._pool.map(lambda rc: self._versions(*rc), wanted)))
        return [(row_key, {column: fetched[row_key, column] for column in cells}) for row_key, cells in chunk]

    def _versions(self, row_key: bytes, column: bytes) -> list[Cell]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = open_connection(self.hbase, table=self.spec.table)
            self._pool_conns.append(conn)
        versions = conn.table(self.spec.table).cells(row_key, column, versions=self.spec.max_versions,
                                                     timestamp=self.spec.as_of_ms + 1, include_timestamp=True)
        since = self.spec.since_ms
        return [(v, ts) for v, ts in versions if since is None or ts > since]

    def _reconnect_after(self, error: BaseException) -> None:
        self.close()
        if self.retries >= self.hbase.max_retries:
            raise HBaseUnavailableError(self.hbase.host, self.hbase.port,
                                        f"{error!r} (gave up after {self.retries} retries)",
                                        table=self.spec.table, region=self.region.describe()) from error
        delay = self.hbase.retry_backoff_ms / 1000 * (2 ** self.retries)
        self.retries += 1
        log.warning("table %s region %s: %r; retry %d/%d in %.1fs", self.spec.table, self.region.describe(),
                    error, self.retries, self.hbase.max_retries, delay)
        self._sleep(delay)


def list_region_ranges(hbase: HBaseConfig, table: str) -> list[Region]:
    """The table's regions in key order (driver side: only boundaries cross the wire)."""
    from fstore_batch.sources.hbase.admin import list_regions

    conn = open_connection(hbase, table=table)
    try:
        return [Region(i, start, end) for i, (start, end) in enumerate(list_regions(conn, table))]
    finally:
        conn.close()
