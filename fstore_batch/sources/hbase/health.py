"""Health probe for an HBase Thrift server: create a table, put a cell, read it back.

Used by ``make hbase-up`` (waits until it passes), ``make hbase-status`` and ``fstore-batch doctor``.
Run as ``python -m fstore_batch.sources.hbase.health --host 127.0.0.1 --port 9090``.
"""

from __future__ import annotations

import argparse
import sys
import time

from fstore_batch.config.models import HBaseConfig
from fstore_batch.errors import FstoreError
from fstore_batch.sources.hbase.connection import TRANSPORT_ERRORS, hbase_connection

PROBE_TABLE = "fstore_probe"


def probe(cfg: HBaseConfig) -> str:
    """Round-trip one cell through HBase; return a one-line summary or raise."""
    with hbase_connection(cfg) as conn:
        if PROBE_TABLE.encode() not in conn.tables():
            try:
                conn.create_table(PROBE_TABLE, {"f": {"max_versions": 1}})
            except Exception:  # a concurrent probe created it first (AlreadyExists)
                if PROBE_TABLE.encode() not in conn.tables():
                    raise
        table = conn.table(PROBE_TABLE)
        value = str(time.time_ns()).encode()
        table.put(b"probe", {b"f:v": value})
        got = table.row(b"probe", columns=[b"f:v"]).get(b"f:v")
        if got != value:
            raise FstoreError(f"HBase probe read back {got!r}, expected {value!r}")
        return f"HBase Thrift {cfg.host}:{cfg.port}: create/put/get ok ({len(conn.tables())} tables)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--quiet", action="store_true", help="print nothing; exit status only")
    args = parser.parse_args(argv)
    try:
        line = probe(HBaseConfig(host=args.host, port=args.port, timeout_ms=5000))
    except (FstoreError, *TRANSPORT_ERRORS) as e:
        if not args.quiet:
            print(f"HBase probe failed: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - thrift IOError from a half-started server, etc.
        if not args.quiet:
            print(f"HBase probe failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
