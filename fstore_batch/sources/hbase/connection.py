"""happybase connections built from :class:`HBaseConfig`, with errors that say where and what."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import happybase

from fstore_batch.config.models import HBaseConfig
from fstore_batch.errors import HBaseUnavailableError

# Errors the thrift client raises when the server is down or the socket breaks.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError)
try:  # thriftpy2 wraps socket errors in its own transport exception
    from thriftpy2.transport import TTransportException

    TRANSPORT_ERRORS = (*TRANSPORT_ERRORS, TTransportException)
except ImportError:  # pragma: no cover
    pass


def open_connection(cfg: HBaseConfig, *, table: str | None = None) -> happybase.Connection:
    """Open a connection and check it answers; raise :class:`HBaseUnavailableError` if not."""
    try:
        conn = happybase.Connection(
            host=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout_ms,
            transport=cfg.transport.value,
            protocol=cfg.protocol.value,
            table_prefix=cfg.table_prefix,
            autoconnect=True,
        )
        conn.tables()  # a cheap round trip: fail here, not in the middle of a job
        return conn
    except TRANSPORT_ERRORS as e:
        raise HBaseUnavailableError(cfg.host, cfg.port, e, table=table) from e


@contextmanager
def hbase_connection(cfg: HBaseConfig, *, table: str | None = None) -> Iterator[happybase.Connection]:
    conn = open_connection(cfg, table=table)
    try:
        yield conn
    finally:
        conn.close()
