"""Feature state: per entity key, the few history rows that can still decide a join at or after a time.

A feature table's history (``<root>/<table>``) grows by one snapshot a day; a daily build needs
only what its labels can see. The state table (``<root>/_state/<table>``, same columns as the
history) holds, as of a snapshot's as-of time ``A``, per entity key:

* for each feature, every row at the last time ``< A`` where the feature is not null (its carry
  row in the point-in-time join; all rows at that time, so any tie-breaker still decides);
* the rows of the last ``events`` distinct-time ranks ``< A`` (the newest events behind a
  sequence of up to ``events`` items, ties at the boundary included);
* every row at exactly ``A`` (a label at ``A`` sees them unless its source is strict).

So for any label at ``t >= A``, joining ``state ∪ history rows with A < event_ts`` gives exactly
the rows of the full-history join: per-feature latest non-null, TTL (the rows keep their times),
strict sources, tie-breakers, sequences of up to ``events`` items. Extra rows (a key untouched
since an older state keeps its older rows) are real history rows and never change a result.

**Incremental.** The state as of ``A2`` is the state as of ``A1`` with the keys that have rows in
``(A1, A2]`` replaced by the selection over their old state rows plus those rows: one Delta MERGE
touching only the changed keys. The full history is read only when there is no usable state
(first snapshot, ``--full`` backfill, or a state older than a backfill).

**Commit order.** Delta has no multi-table transaction. The snapshot job commits the state first,
recording the history version it expects to become (``history_version``) and the snapshot id,
then appends the history rows, recording the state's version. A state is *valid* only when the
history commit it names exists with its snapshot id. A run killed between the two leaves a state
that names a missing commit: builds skip it (they use an older valid state or the history), and
the rerun recomputes the state from the last valid one, then appends. A state is *usable* for a
build pinned at history version ``H`` when it is valid, covers a version ``<= H``, and no
non-incremental snapshot (``--full`` backfills add rows at old times) committed in between.

**One state commit per snapshot, even an empty one.** Delta skips recording a commit that
changes nothing (``spark.databricks.delta.skipRecordingEmptyCommits``, on by default), so a day
without changed keys would leave the state's as-of behind and every rerun repairing it. The
state's writes turn that off for their own commit: a MERGE of no keys records a commit holding
only its metadata (the new as-of), and the state advances with every snapshot.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fstore_batch.errors import StorageError
from fstore_batch.spark_errors import spark_boundary
from fstore_batch.storage.delta.catalog import SnapshotInfo, snapshot_history
from fstore_batch.storage.delta.tables import session_conf, unreadable_version
from fstore_batch.storage.delta.tiers import TS, read_history

log = logging.getLogger(__name__)
STATE_KEY = "fstore_state"
INCREMENTAL = "incremental"
SKIP_EMPTY_COMMITS = "spark.databricks.delta.skipRecordingEmptyCommits"
COMMIT_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
ROW_PRESERVING = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"})
"""Delta operations that leave a table's rows as they were."""


@dataclass(frozen=True)
class StateInfo:
    """One commit of a state table: the state as of ``as_of_ms`` over history ``history_version``."""

    version: int
    as_of_ms: int
    history_version: int
    snapshot_id: str
    keys: tuple[str, ...]
    events: int

    def manifest(self, path: str) -> dict[str, Any]:
        return {"path": path, "version": self.version, "as_of_ms": self.as_of_ms,
                "history_version": self.history_version, "keys": list(self.keys), "events": self.events}


def state_path(table_path: str) -> str:
    """``<root>/_state/<table>`` for the history table ``<root>/<table>`` (any URI scheme).

    >>> state_path("s3a://bucket/fs/user_profile")
    's3a://bucket/fs/_state/user_profile'
    """
    root, _, name = table_path.rstrip("/").rpartition("/")
    return f"{root}/_state/{name}"


def select_state(rows: DataFrame, keys: list[str], features: list[str], as_of: datetime, events: int) -> DataFrame:
    """The state rows of ``rows`` (history rows with ``keys``, ``event_ts`` and ``features``) as of ``as_of``.

    Returns the rows (columns unchanged) that are, per key: the carry rows of each feature before
    ``as_of``, the rows of the ``events`` newest times before ``as_of`` and the rows at ``as_of``.
    Rows after ``as_of`` are dropped. One shuffle by key and one sort.
    """
    a = F.lit(as_of).cast("timestamp")
    rows = rows.where(F.col(TS) <= a)
    by_key = Window.partitionBy(*keys)
    before = F.col(TS) < a
    keep: list[Column] = [F.col(TS) == a]
    for f in features:
        last = F.max(F.when(before & F.col(f).isNotNull(), F.col(TS))).over(by_key)
        keep.append(F.col(f).isNotNull() & (F.col(TS) == last))
    if events > 0:
        newest = by_key.orderBy(F.when(before, F.col(TS)).desc_nulls_last())
        keep.append(before & (F.rank().over(newest) <= events))
    flag = "__keep"
    return rows.withColumn(flag, reduce(Column.__or__, keep)).where(F.col(flag)).drop(flag)


def state_history(spark: SparkSession, path: str) -> list[StateInfo]:
    """Every commit of the state table at ``path``, oldest first (none when there is no table)."""
    if not DeltaTable.isDeltaTable(spark, path):
        return []
    out = []
    for r in DeltaTable.forPath(spark, path).history().select("version", "userMetadata").collect():
        meta = json.loads(r.userMetadata or "{}").get(STATE_KEY)
        if meta:
            out.append(StateInfo(int(r.version), int(meta["as_of_ms"]), int(meta["history_version"]),
                                 meta["snapshot_id"], tuple(meta["keys"]), int(meta.get("events", 0))))
    return sorted(out, key=lambda s: s.version)


def usable_states(states: list[StateInfo], snapshots: list[SnapshotInfo], history_version: int) -> list[StateInfo]:
    """The states a reader of the history at ``history_version`` may use, newest as-of first.

    Valid: the history commit the state names exists with its snapshot id. Usable: it covers a
    version ``<= history_version`` and every snapshot committed after it up to there is
    incremental (adds rows only after the state's as-of).
    """
    by_version = {s.version: s for s in snapshots}
    out = []
    for st in states:
        commit = by_version.get(st.history_version)
        if commit is None or commit.meta.get("snapshot_id") != st.snapshot_id or st.history_version > history_version:
            continue
        later = [s for s in snapshots if st.history_version < s.version <= history_version]
        if all(s.meta.get("mode") == INCREMENTAL for s in later):
            out.append(st)
    return sorted(out, key=lambda s: (s.as_of_ms, s.version), reverse=True)


def pick_state(spark: SparkSession, table_path: str, history_version: int, *, at_or_before: datetime,
               keys: set[str], events: int = 0) -> StateInfo | None:
    """The newest usable state of a table kept by ``keys``, as of ``<= at_or_before``, with ``>= events`` events."""
    states = state_history(spark, state_path(table_path))
    if not states:
        return None
    limit = int(at_or_before.timestamp() * 1000)
    for st in usable_states(states, snapshot_history(spark, table_path), history_version):
        if st.as_of_ms <= limit and st.events >= events and set(st.keys) == keys:
            return st
    return None


def read_with_state(spark: SparkSession, table_path: str, history_version: int, state: dict[str, Any] | None,
                    *, until_us: int | None = None) -> DataFrame:
    """The history rows a build at or after the state's as-of needs: state ∪ rows after its as-of.

    ``state`` is :meth:`StateInfo.manifest` (or ``None``: the whole history). ``until_us`` (Unix
    microseconds) drops rows after the last label time (no label can see them). Delta's file statistics on
    ``event_ts`` skip the files of older snapshots, so the cost follows the rows after the as-of.
    """
    table = table_path.rstrip("/").rpartition("/")[2]
    history = read_history(spark, table, table_path, history_version,
                           since_ms=None if state is None else int(state["as_of_ms"]))
    if until_us is not None:
        history = history.where(F.col(TS) <= F.timestamp_micros(F.lit(until_us)))
    if state is None:
        return history
    as_of = F.timestamp_millis(F.lit(state["as_of_ms"]))
    rows = read_state(spark, state["path"], int(state["version"]))
    return rows.unionByName(history.where(F.col(TS) > as_of), allowMissingColumns=True)


def read_state(spark: SparkSession, path: str, version: int) -> DataFrame:
    """The rows of state ``version``: the latest version when every commit after it kept the rows
    (maintenance: OPTIMIZE, VACUUM's log entries, table properties), else time travel to it.

    Delta refuses time travel to a version older than the table's ``deletedFileRetentionDuration``
    and VACUUM deletes the files only older versions need; reading the latest version when it holds
    the same rows keeps a state readable after maintenance, however old it is.
    """
    if _rows_unchanged_since(spark, path, version):
        return spark.read.format("delta").load(path)
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def unreadable_state(spark: SparkSession, path: str, version: int) -> str | None:
    """Why :func:`read_state` cannot read state ``version`` any more (VACUUM, log or time-travel
    retention), or ``None`` when it can."""
    if DeltaTable.isDeltaTable(spark, path) and _rows_unchanged_since(spark, path, version):
        return None
    return unreadable_version(spark, path, version)


def _rows_unchanged_since(spark: SparkSession, path: str, version: int) -> bool:
    later = DeltaTable.forPath(spark, path).history().where(F.col("version") > version).select("operation").collect()
    return all(r.operation in ROW_PRESERVING for r in later)


def update_state(spark: SparkSession, table_path: str, keys: list[str], features: list[str], *, events: int,
                 as_of_ms: int, snapshot_id: str, history_version: int, new_rows: DataFrame | None,
                 full: bool = False) -> StateInfo:
    """Bring the state to ``as_of_ms`` and commit it, naming history commit ``history_version``.

    ``new_rows`` are rows the history is about to get in that commit (``None`` when it already
    holds them: a repair). Incremental from the newest usable state (MERGE of the changed keys);
    from the whole history when there is none, when ``full`` or when ``events`` grew.
    Always exactly one commit, also when no key changed (its metadata moves the as-of on).

    Returns the committed state; raises :class:`StorageError` when the state's newest commit is
    then not this run's (another writer committed at the same time).
    """
    path = state_path(table_path)
    as_of = datetime.fromtimestamp(as_of_ms / 1000, UTC)
    exists = DeltaTable.isDeltaTable(spark, table_path)
    snapshots = snapshot_history(spark, table_path) if exists else []
    latest = int(DeltaTable.forPath(spark, table_path).history(1).first().version) if exists else -1
    states = state_history(spark, path)
    base = None if full else next(iter(usable_states(states, snapshots, latest)), None)
    if base is not None and (base.events < events or list(base.keys) != keys):
        base = None  # the config now asks for more events or another key: rebuilt from the history
    if base is not None and exists:
        kept = set(read_state(spark, path, base.version).columns)
        now = set(spark.read.format("delta").load(table_path).columns) | set(new_rows.columns if new_rows else [])
        if now - kept:
            base = None  # the table gained columns: their values are in the history only
    meta = json.dumps({STATE_KEY: {"as_of_ms": as_of_ms, "history_version": history_version,
                                   "snapshot_id": snapshot_id, "keys": keys, "events": events}}, sort_keys=True)
    table = table_path.rstrip("/").rpartition("/")[2]
    history = (read_history(spark, table, table_path, latest, since_ms=None if base is None else base.as_of_ms)
               if exists else None)
    with spark_boundary(what="feature state", path=path), session_conf(spark, {SKIP_EMPTY_COMMITS: "false"}):
        if base is None:
            rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True),
                          [d for d in (history, new_rows) if d is not None])
            (select_state(rows, keys, features, as_of, events).write.format("delta").mode("overwrite")
             .option("overwriteSchema", "true").option("userMetadata", meta).save(path))
            log.info("state %s: rebuilt from the history as of %s", path, as_of.isoformat())
        else:
            orphaned = any(s.version > base.version for s in states)  # a run that died after its state commit
            _merge_changed_keys(spark, path, base, history, new_rows, keys, features, as_of, events, meta,
                                orphaned=orphaned)
    committed = state_history(spark, path)[-1]
    if (committed.as_of_ms, committed.history_version, committed.snapshot_id) != (as_of_ms, history_version,
                                                                                   snapshot_id):
        raise StorageError(f"feature state {path}: its newest commit (version {committed.version}) is not the one "
                           f"this run made for snapshot {snapshot_id} (history version {history_version})",
                           hint="another writer committed to the state at the same time; rerun the snapshot")
    return committed


def _merge_changed_keys(spark: SparkSession, path: str, base: StateInfo, history: DataFrame | None,
                        new_rows: DataFrame | None, keys: list[str], features: list[str], as_of: datetime,
                        events: int, meta: str, *, orphaned: bool = False) -> None:
    """Replace the state rows of every key with rows after ``base``'s as-of: one MERGE (a commit even
    when no key changed: the caller turned Delta's empty-commit skipping off).

    ``orphaned``: state commits of runs that died before their history commit came after ``base``;
    the keys they changed are replaced too (from ``base``), so none of their rows stays behind, even
    when the rerun's as-of is earlier than theirs."""
    since = F.timestamp_millis(F.lit(base.as_of_ms))
    fresh = [d for d in ((history.where(F.col(TS) > since) if history is not None else None), new_rows)
             if d is not None]
    delta_rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), fresh)
    old = read_state(spark, path, base.version)
    changed = delta_rows.select(*keys)
    if orphaned:
        changed = changed.unionByName(_keys_changed_since(spark, path, base, keys))
    changed = changed.distinct()
    candidates = old.join(changed, on=keys, how="left_semi").unionByName(delta_rows, allowMissingColumns=True)
    replaced = select_state(candidates, keys, features, as_of, events)
    action = "__action"
    source = (replaced.withColumn(action, F.lit("insert"))
              .unionByName(changed.withColumn(action, F.lit("delete")), allowMissingColumns=True))
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys) + f" AND s.{action} = 'delete'"
    with session_conf(spark, {COMMIT_METADATA: meta}):  # MERGE takes no userMetadata option
        (DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), on)
         .whenMatchedDelete()
         .whenNotMatchedInsert(condition=f"s.{action} = 'insert'",
                               values={c: f"s.`{c}`" for c in old.columns})
         .execute())


def _keys_changed_since(spark: SparkSession, path: str, base: StateInfo, keys: list[str]) -> DataFrame:
    """The keys whose state rows differ between ``base``'s version and the table now (a diff of the
    two versions; only a repair after a dead run pays for it)."""
    then = read_state(spark, path, base.version)
    now = spark.read.format("delta").load(path)
    cols = [c for c in then.columns if c in set(now.columns)]
    then, now = then.select(*cols), now.select(*cols)
    return now.exceptAll(then).unionByName(then.exceptAll(now)).select(*keys)
