"""Writes a generated :class:`SampleData` into the real HBase server and the label log to Parquet."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fstore_batch.config.models import FeatureStoreConfig, FeatureTableSpec, HBaseConfig
from fstore_batch.sample.generator import SampleData, TableCells
from fstore_batch.sources.hbase.admin import create_presplit_tables, feature_table_layout
from fstore_batch.sources.hbase.codecs import encode
from fstore_batch.sources.hbase.connection import hbase_connection
from fstore_batch.sources.hbase.rowkey import RowKeyCodec
from fstore_batch.storage import files

log = logging.getLogger(__name__)
BATCH_ROWS = 1000


def encode_rows(spec: FeatureTableSpec, cells: TableCells) -> dict[int, list[tuple[bytes, dict[bytes, bytes]]]]:
    """Group a table's rows by cell timestamp, keys and values encoded per the config."""
    keys = RowKeyCodec(spec.row_key)
    by_col = {c.column: c for c in spec.columns}
    unknown = set(cells.values) - set(by_col)
    if unknown:
        raise ValueError(f"table {spec.name}: generated columns {sorted(unknown)} are not in the config")
    groups: dict[int, list[tuple[bytes, dict[bytes, bytes]]]] = defaultdict(list)
    for i, (key, ts) in enumerate(zip(cells.keys, cells.ts)):
        data = {}
        for col, values in cells.values.items():
            v = values[i]
            if v is not None:
                c = by_col[col]
                data[col.encode()] = encode(c.codec, v, c.dim)
        groups[ts].append((keys.encode(key), data))
    return groups


def write_table(hbase: HBaseConfig, spec: FeatureTableSpec, cells: TableCells, *, threads: int = 4) -> dict[str, Any]:
    """Put every cell of ``cells`` into ``spec``'s (existing) HBase table with its timestamp."""
    started = time.monotonic()
    groups = sorted(encode_rows(spec, cells).items())
    shards = [groups[i::threads] for i in range(threads)]

    def put_shard(shard: list[tuple[int, list[tuple[bytes, dict[bytes, bytes]]]]]) -> int:
        n = 0
        with hbase_connection(hbase, table=spec.hbase_table) as conn:
            table = conn.table(spec.hbase_table)
            for ts, rows in shard:
                with table.batch(timestamp=ts, batch_size=BATCH_ROWS) as batch:
                    for row, data in rows:
                        batch.put(row, data)
                        n += len(data)
        return n

    with ThreadPoolExecutor(max_workers=threads) as pool:
        n_cells = sum(pool.map(put_shard, shards))
    stats = {"table": spec.hbase_table, "rows": len(cells), "cells": n_cells,
             "seconds": round(time.monotonic() - started, 2)}
    log.info("wrote %s", stats)
    return stats


def write_labels(data: SampleData, out_dir: str | Path) -> Path:
    """The impression log as Parquet, one file per day (``date=YYYY-MM-DD/part-0.parquet``),
    ``event_ts`` in UTC.

    Each day is written by :func:`pyarrow.parquet.write_table` in the calling thread, from
    buffers Arrow allocated (a filter copies them). Arrow's dataset writer would hand the
    NumPy-backed columns to its background threads, and one of them releasing the last
    reference while the interpreter exits (after this call returned) needs the GIL, which a
    finalizing interpreter refuses by ending the thread: ``terminate called without an active
    exception``, exit 134.

    A URI (``s3a://...``) is written locally first and copied through Hadoop's file system, which
    needs an active SparkSession with the store's settings (``fstore-batch sample`` builds one).
    """
    if not files.is_local(out_dir):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="fstore-labels-") as tmp:
            write_labels(data, tmp)
            files.remove(out_dir)
            files.upload_folder(tmp, out_dir)
        return out_dir  # type: ignore[return-value]
    out = files.location(out_dir).local()
    tbl = pa.table({
        "request_id": pa.array(data.labels["request_id"], pa.string()),
        "user_id": pa.array(data.labels["user_id"], pa.int64()),
        "item_id": pa.array(data.labels["item_id"], pa.int64()),
        "position": pa.array(data.labels["position"], pa.int32()),
        "event_ts": pa.array(data.labels["event_ts_ms"], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "label": pa.array(data.labels["label"], pa.int8()),
    })
    dates = pc.strftime(tbl["event_ts"], format="%Y-%m-%d")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    for day in sorted(pc.unique(dates).to_pylist()):
        folder = out / f"date={day}"
        folder.mkdir(parents=True)
        pq.write_table(tbl.filter(pc.equal(dates, day)), folder / "part-0.parquet")
    return out


def write_sample(cfg: FeatureStoreConfig, data: SampleData, labels_dir: str | Path) -> list[dict[str, Any]]:
    """(Re)create the sample tables pre-split by salt, fill them, and write the label log."""
    create_presplit_tables([feature_table_layout(cfg.table(name), prefix=cfg.hbase.table_prefix) for name in data.tables])
    stats = []
    for name, cells in data.tables.items():
        stats.append(write_table(cfg.hbase, cfg.table(name), cells))
    write_labels(data, labels_dir)
    stats.append({"table": "labels", "rows": len(data.labels["request_id"]), "path": str(labels_dir)})
    return stats
