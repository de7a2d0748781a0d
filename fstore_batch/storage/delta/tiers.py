"""Tiered history and retention: raw rows older than a table's ``retention`` leave the hot table.

``fstore-batch maintain`` moves the history rows with ``event_ts`` before the cutoff (the latest
snapshot's as-of less ``maintenance.retention``) to the table's cold tier,
``<maintenance.cold_root>/<table>`` (e.g. a cheaper bucket), or drops them when no cold tier is
set. Daily builds read the feature state and the recent rows, so they never notice.

Two commits, in this order, so that no row is lost and none is copied twice:

1. the cold table gets the rows in ``[its own cutoff, new cutoff)`` (one append recording the new
   cutoff; Delta's ``txnAppId``/``txnVersion = cutoff`` guard makes a rerun skip it);
2. the hot table deletes the rows before the new cutoff (one DELETE recording the cutoff and the
   cold path).

A run killed between them leaves the rows in both tiers, which readers never see twice (the cold
rows are read only below the hot table's recorded cutoff), and its rerun finishes the delete.

Readers (:func:`read_history`) take the hot table at its pinned version plus, when a retention
commit at or before that version moved rows out, the cold rows below its cutoff. When those rows
were dropped, a read that needs them fails before anything is written, naming the table and the
missing time range.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fstore_batch.errors import StorageError
from fstore_batch.spark_errors import spark_boundary
from fstore_batch.storage.delta.catalog import latest_snapshot
from fstore_batch.storage.delta.tables import append, session_conf

log = logging.getLogger(__name__)
RETENTION_KEY = "fstore_retention"
TIER_KEY = "fstore_tier"
TS = "event_ts"


@dataclass(frozen=True)
class Tiering:
    """The retention state of a hot table at one version: rows before ``cutoff_ms`` are elsewhere."""

    cutoff_ms: int
    cold_path: str | None  # None: dropped
    version: int  # the hot table's retention commit

    @property
    def cutoff(self) -> datetime:
        return datetime.fromtimestamp(self.cutoff_ms / 1000, UTC)


def cold_path(cold_root: str | None, table: str) -> str | None:
    """``<cold_root>/<table>``, or None without a cold tier."""
    return None if cold_root is None else cold_root.rstrip("/") + "/" + table


def tiering(spark: SparkSession, path: str, version: int | None = None) -> Tiering | None:
    """The newest retention commit of the hot table at ``path`` at or before ``version`` (None: none)."""
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    rows = DeltaTable.forPath(spark, path).history().select("version", "userMetadata").collect()
    best = None
    for r in sorted(rows, key=lambda r: r.version):
        if version is not None and r.version > version:
            continue
        meta = _meta(r.userMetadata, RETENTION_KEY)
        if meta:
            best = Tiering(int(meta["cutoff_ms"]), meta.get("cold_path"), int(r.version))
    return best


def read_history(spark: SparkSession, table: str, path: str, version: int, *, since_ms: int | None = None) -> DataFrame:
    """Every history row of ``table`` at ``version``: the hot rows plus, below the retention cutoff, the cold ones.

    ``since_ms``: the reader needs only rows after this time (e.g. a feature state's as-of); the
    cold tier is then not read when the cutoff is at or before it. Raises ``StorageError`` naming
    the table and the missing range when rows the reader needs were dropped by retention.
    """
    hot = spark.read.format("delta").option("versionAsOf", version).load(path)
    tier = tiering(spark, path, version)
    if tier is None or (since_ms is not None and since_ms >= tier.cutoff_ms):
        return hot
    needed_from = "the beginning" if since_ms is None else datetime.fromtimestamp(since_ms / 1000, UTC).isoformat()
    if tier.cold_path is None or not DeltaTable.isDeltaTable(spark, tier.cold_path):
        raise StorageError(
            f"feature table '{table}' ({path}): rows from {needed_from} to {tier.cutoff.isoformat()} were dropped by "
            f"retention at version {tier.version} and there is no cold tier to read them from",
            hint="build labels at or after a feature state's as-of (e.g. build --date), or set "
                 "maintenance.cold_root before the retention runs")
    cold = spark.read.format("delta").load(tier.cold_path).where(F.col(TS) < _ts(tier.cutoff_ms))
    return hot.unionByName(cold, allowMissingColumns=True)


def apply_retention(spark: SparkSession, table: str, path: str, retention: timedelta, cold: str | None) -> dict[str, Any]:
    """Move (or drop) the hot rows older than the latest snapshot's as-of less ``retention``.

    Returns the run's metrics: ``cutoff``, ``rows_moved`` (to ``cold``) or ``rows_dropped``, and
    the versions committed. Nothing is committed when no row is older than the cutoff.
    """
    started = time.monotonic()
    last = latest_snapshot(spark, path)
    if last is None or last.as_of_ms is None:
        return {"table": table, "retention": "no snapshot yet"}
    cutoff_ms = int(last.as_of_ms) - retention // timedelta(milliseconds=1)
    out: dict[str, Any] = {"table": table, "cutoff": datetime.fromtimestamp(cutoff_ms / 1000, UTC).isoformat(),
                           "cold_path": cold}
    prev = tiering(spark, path)
    if prev is not None and prev.cutoff_ms >= cutoff_ms:
        return {**out, "rows_moved" if cold else "rows_dropped": 0, "seconds": round(time.monotonic() - started, 3)}
    hot = DeltaTable.forPath(spark, path)
    old = hot.toDF().where(F.col(TS) < _ts(cutoff_ms))
    with spark_boundary(what=f"feature table '{table}'", path=path):
        n = old.count()
        if n == 0:
            return {**out, "rows_moved" if cold else "rows_dropped": 0, "seconds": round(time.monotonic() - started, 3)}
        if cold is not None:
            cold_from = _cold_cutoff(spark, cold)
            moving = old if cold_from is None else old.where(F.col(TS) >= _ts(cold_from))
            append(moving, cold, user_metadata=json.dumps({TIER_KEY: {"cutoff_ms": cutoff_ms, "source": path}}),
                   txn_app_id=f"fstore-tier/{table}", txn_version=cutoff_ms)
            out["cold_version"] = int(DeltaTable.forPath(spark, cold).history(1).first().version)
        meta = json.dumps({RETENTION_KEY: {"cutoff_ms": cutoff_ms, "cold_path": cold}})
        with session_conf(spark, {"spark.databricks.delta.commitInfo.userMetadata": meta}):
            hot.delete(F.col(TS) < _ts(cutoff_ms))
    out.update({"rows_moved" if cold else "rows_dropped": n,
                "version": int(hot.history(1).first().version), "seconds": round(time.monotonic() - started, 3)})
    log.info("table %s: %d rows before %s %s", table, n, out["cutoff"], f"moved to {cold}" if cold else "dropped")
    return out


def tier_summary(spark: SparkSession, path: str, cold: str | None) -> list[dict[str, Any]]:
    """Each tier's time range, rows and bytes: one aggregation over the time column (Delta answers a
    bare count from its file statistics, but not a timestamp's min and max, so that column is read)."""
    out = []
    for name, p in (("hot", path), ("cold", cold)):
        if p is None or not DeltaTable.isDeltaTable(spark, p):
            continue
        df = spark.read.format("delta").load(p)
        r = df.agg(F.min(F.unix_micros(TS)).alias("lo"), F.max(F.unix_micros(TS)).alias("hi"),
                   F.count(F.lit(1)).alias("rows")).first()
        size = DeltaTable.forPath(spark, p).detail().select("sizeInBytes").first()[0]
        out.append({"tier": name, "path": p, "from": _iso(r.lo), "to": _iso(r.hi), "rows": int(r.rows),
                    "bytes": int(size or 0)})
    return out


def _cold_cutoff(spark: SparkSession, cold: str) -> int | None:
    """The cutoff the cold table holds every row below (its newest tier commit's)."""
    if not DeltaTable.isDeltaTable(spark, cold):
        return None
    cutoffs = [int(m["cutoff_ms"]) for r in DeltaTable.forPath(spark, cold).history().select("userMetadata").collect()
               if (m := _meta(r.userMetadata, TIER_KEY))]
    return max(cutoffs, default=None)


def _meta(raw: str | None, key: str) -> dict[str, Any] | None:
    try:
        return json.loads(raw or "{}").get(key)
    except (ValueError, AttributeError):
        return None


def _ts(ms: int) -> Column:
    return F.timestamp_millis(F.lit(ms))


def _iso(us: int | None) -> str | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, UTC).isoformat()
