"""Small, explicit Delta I/O helpers: append as one commit (creating the table on first write),
write with retries on commit conflicts, leave nothing behind at a new path when a write fails,
and check that a storage location is writable before a long run starts."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from fstore_batch.errors import ConcurrentWriteError, StorageNotWritableError
from fstore_batch.spark_errors import conditions, failures, is_concurrent_conflict, spark_boundary

log = logging.getLogger(__name__)
T = TypeVar("T")
TIME_TRAVEL_REFUSED = "DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION"
ENFORCE_RETENTION = "spark.databricks.delta.vacuum.enforceTimeTravelWithinDeletedFileRetentionDuration"


def append(df: DataFrame, path: str, *, user_metadata: str, txn_app_id: str | None = None,
           txn_version: int | None = None, properties: dict[str, str] | None = None) -> None:
    """Append ``df`` to the Delta table at ``path`` as one commit carrying ``user_metadata``.

    The first append creates the table (in that same commit) with ``properties`` (``delta.*``
    table properties). With ``txn_app_id``/``txn_version``, Delta skips the write when that
    application already committed this or a later version (idempotent reruns).
    """
    writer = df.write.format("delta").mode("append").option("userMetadata", user_metadata)
    if txn_app_id is not None and txn_version is not None:
        writer = writer.option("txnAppId", txn_app_id).option("txnVersion", str(txn_version))
    if properties and not DeltaTable.isDeltaTable(df.sparkSession, path):
        for key, value in properties.items():
            writer = writer.option(key, value)
    with new_table_guard(df.sparkSession, path), spark_boundary(what="Delta table", path=path):
        writer.save(path)


def current_version(spark: SparkSession, path: str) -> int:
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


@contextmanager
def session_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """Set session confs for the block and restore what was there before (unset ones stay unset).
    For Delta settings that are read only from the session (commit metadata, empty commits,
    retention checks), scoped to one write.

    >>> with session_conf(spark, {"spark.databricks.delta.commitInfo.userMetadata": "{}"}):  # doctest: +SKIP
    ...     DeltaTable.forPath(spark, path).delete("ts < '2026-01-01'")
    """
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def unreadable_version(spark: SparkSession, path: str, version: int) -> str | None:
    """Why ``version`` of the Delta table at ``path`` can no longer be read, or ``None`` when it can.

    A pinned version goes when its log entries expire (``delta.logRetentionDuration``), when
    VACUUM deletes data files that only older versions referenced, or when it is older than the
    table's ``delta.deletedFileRetentionDuration`` (Delta refuses to time travel that far, to any
    version but the latest). Checked from the log and one listing of the table's folder (works
    on ``s3a://``); no data is read.

    >>> unreadable_version(spark, "/data/fs/_state/user_profile", 3)  # doctest: +SKIP
    'data files were removed (1 of 2, e.g. part-00000-....parquet; VACUUM deletes ...)'
    """
    if not DeltaTable.isDeltaTable(spark, path):
        return "there is no Delta table there any more"
    refused = None
    try:
        files = _version_files(spark, path, version)
    except Exception as e:
        found = {c: p for c, p, _ in failures(e) if c}
        if "DELTA_VERSION_NOT_FOUND" in found:
            p = found["DELTA_VERSION_NOT_FOUND"]
            return f"its log holds only versions {p.get('earliest')} to {p.get('latest')} (log retention)"
        if TIME_TRAVEL_REFUSED not in found:
            raise
        hours = found[TIME_TRAVEL_REFUSED].get("deletedFileRetention")
        refused = (f"it is older than the table's delta.deletedFileRetentionDuration ({hours} h), and Delta "
                   "refuses to time travel that far")
        with session_conf(spark, {ENFORCE_RETENTION: "false"}):  # only to list the version's files
            files = _version_files(spark, path, version)
    fs, hpath = _fs(spark, path)
    present, listing = set(), fs.listFiles(hpath, True)
    while listing.hasNext():
        present.add(listing.next().getPath().toUri().getPath())
    jvm = spark.sparkContext._jvm
    missing = [f for f in files if jvm.org.apache.hadoop.fs.Path(f).toUri().getPath() not in present]
    if missing:
        return (f"data files were removed ({len(missing)} of {len(files)}, e.g. {missing[0].rsplit('/', 1)[-1]}; "
                "VACUUM deletes the files of older versions after the table's retention)")
    return refused


def _version_files(spark: SparkSession, path: str, version: int) -> list[str]:
    return list(spark.read.format("delta").option("versionAsOf", version).load(path).inputFiles())


def with_conflict_retries(write: Callable[[], T], path: str, *, attempts: int = 4, backoff_s: float = 1.0) -> T:
    """Run ``write``; on a Delta commit conflict wait (doubling, with jitter) and run it again.

    ``write`` must decide everything it reads (does the table exist, which predicate) afresh on
    each call. After ``attempts`` conflicts, one :class:`ConcurrentWriteError` naming the path.
    """
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except Exception as e:
            if not is_concurrent_conflict(e):
                raise
            conflict = (conditions(e) or [type(e).__name__])[0]
            if attempt == attempts:
                raise ConcurrentWriteError(path, attempts, conflict) from e
            delay = backoff_s * 2 ** (attempt - 1) * (1 + random.random())
            log.warning("%s: concurrent write conflict (%s); retry %d of %d in %.1f s",
                        path, conflict, attempt, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """The Hadoop FileSystem and Path for ``path`` (Hadoop's FS has no Python API; works for s3a:// too)."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


@contextmanager
def new_table_guard(spark: SparkSession, path: str) -> Iterator[None]:
    """When the block fails, remove what it left at a path that held no Delta table before.

    Delta creates ``_delta_log/`` (and ``_delta_log/_staged_commits/``) before the job runs; a
    failed first write would leave them empty, and a later reader would take the folder for a
    broken table. Only folders holding no file at all are removed, so anything another writer
    committed meanwhile is never touched.
    """
    fs, hpath = _fs(spark, path)
    log_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(hpath, "_delta_log")
    existed, had_log = bool(fs.exists(hpath)), bool(fs.exists(log_path))
    try:
        yield
    except BaseException:
        if not had_log:
            for p, keep in ((log_path, False), (hpath, existed)):
                try:
                    if not keep and fs.exists(p) and fs.isDirectory(p) and not fs.listFiles(p, True).hasNext():
                        fs.delete(p, True)  # a tree of empty folders only
                except Exception:
                    log.debug("could not remove %s after a failed write", p, exc_info=True)
        raise


def ensure_writable(spark: SparkSession, root: str) -> None:
    """Create ``root`` if needed and write and delete a probe file there, or raise naming it."""
    fs, hpath = _fs(spark, root)
    probe = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(hpath, f"_fstore_write_probe_{uuid.uuid4().hex}")
    try:
        if not fs.exists(hpath) and not fs.mkdirs(hpath):
            raise StorageNotWritableError(root, "the folder cannot be created")
        if not fs.getFileStatus(hpath).isDirectory():
            raise StorageNotWritableError(root, "it is a file, not a folder")
        fs.create(probe, True).close()
        fs.delete(probe, False)
    except StorageNotWritableError:
        raise
    except Exception as e:
        java = getattr(e, "java_exception", None)
        reason = f"{java.getClass().getSimpleName()}: {java.getMessage()}" if java is not None else str(e)
        raise StorageNotWritableError(root, reason.splitlines()[0]) from e
