"""Build a training set from a config, as one Delta commit carrying its manifest; rebuild from it.

The manifest records the exact Delta version of every input (latest versions are resolved when
the build starts), the labels (their Delta version, or for Parquet/JSON the fingerprint of their
file list), the config and its hash. ``rebuild`` reads a manifest from an output table's commit and
reruns the build with every input pinned, so it reproduces the same rows after the inputs have
moved on, and refuses, naming the path, when file-based labels have changed since.

Order of work: read labels -> sample (time window, strata) -> point-in-time join -> window
aggregations (sharing the join's shuffle of the labels on the same key) -> sequences -> quantize
embeddings -> one Delta commit; the columns come out as labels, features, sequences,
aggregations. Aggregations read their event tables at the same pinned versions as every other
input, only the rows their widest window reaches. Labels whose key or time is null are kept with
null features and counted (``labels_null_key_or_time``) while the output is written.

The output is partitioned by ``label_date`` (the UTC day of the label time), so a daily build
replaces exactly its day's partition, and daily builds of different days running at the same
time touch disjoint files (Delta's conflict check sees that). A real conflict is retried with
backoff. An empty label input (after the window and the sampling) fails before anything is
written, unless ``allow_empty`` says an empty result is intended.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from fstore_batch.config.loader import config_hash
from fstore_batch.config.models import FeatureStoreConfig
from fstore_batch.config.training import LabelFormat, SamplingConfig, TrainingSetConfig
from fstore_batch.errors import (
    DeltaTableNotFoundError,
    DeltaVersionNotFoundError,
    EmptyInputError,
    StorageError,
)
from fstore_batch.joins.aggregations import (
    US,
    Aggregation,
    AggregationSource,
    events_in_reach,
    window_aggregates,
)
from fstore_batch.joins.pit import all_of, point_in_time_join
from fstore_batch.joins.quantize import error_report, quantize_embeddings
from fstore_batch.joins.sampling import LabelSampling, Stratum, sample_labels, timestamp_lit
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.spark_errors import spark_boundary
from fstore_batch.storage.delta.state import (
    pick_state,
    read_with_state,
    state_path,
    unreadable_state,
)
from fstore_batch.storage.delta.tables import (
    current_version,
    new_table_guard,
    unreadable_version,
    with_conflict_retries,
)
from fstore_batch.storage.delta.tiers import read_history
from fstore_batch.storage.readers import read_events

log = logging.getLogger(__name__)
MANIFEST_KEY = "fstore_training_set"
TS_COLUMN = "event_ts"  # every feature table's time column
DATE_COLUMN = "label_date"
"""The output's partition column: the UTC calendar day of the label time."""


def resolve_inputs(spark: SparkSession, cfg: TrainingSetConfig, store: FeatureStoreConfig) -> dict[str, dict[str, Any]]:
    """``{table: {"path", "version"}}`` for every input, latest versions made concrete."""
    pinned: dict[str, int | None] = {}
    for ref in [*cfg.features, *cfg.sequences, *cfg.aggregations]:
        pinned.setdefault(ref.table, ref.version)
    out = {}
    for table, version in pinned.items():
        path = store.storage.table_path(table)
        if not DeltaTable.isDeltaTable(spark, path):
            raise DeltaTableNotFoundError(path)
        out[table] = {"path": path, "version": current_version(spark, path) if version is None else version,
                      "state_path": state_path(path)}
    return out


def resolve_labels(spark: SparkSession, cfg: TrainingSetConfig) -> dict[str, Any]:
    """The label source made exact: Delta labels get a version, file labels a fingerprint of their files."""
    src = cfg.labels
    out: dict[str, Any] = {"path": src.path, "format": src.format.value}
    if src.format is LabelFormat.DELTA:
        if not DeltaTable.isDeltaTable(spark, src.path):
            raise DeltaTableNotFoundError(src.path)
        out["version"] = current_version(spark, src.path) if src.version is None else src.version
    else:
        out.update(_file_fingerprint(_read_labels(spark, out, src.ts)))
    return out


def build_training_set(spark: SparkSession, cfg: TrainingSetConfig, inputs: dict[str, dict[str, Any]],
                       *, output: str | None = None, labels: dict[str, Any] | None = None,
                       window: tuple[datetime, datetime] | None = None, allow_empty: bool = False,
                       use_state: bool = True) -> dict[str, Any]:
    """Join, then write the training set to ``output`` (default ``cfg.output``) as one commit.

    Each feature table is read through its feature state when one is usable for the labels (all at
    or after the state's as-of; ``fstore_batch.storage.delta.state``): the state plus the rows after
    it, not the whole history. The manifest records each state (``inputs[t]["state"]``), and a
    rebuild reads the same. ``use_state=False`` reads every table's whole history (same rows).

    ``labels`` is the resolved label source (default: ``resolve_labels``); a rebuild passes the
    manifest's, and file-based labels must still have the fingerprint recorded there.

    ``window`` = ``(start, end)`` builds only the labels with ``start <= ts < end`` and replaces
    just that time range of the output (Delta ``replaceWhere``): a daily run for one date, rerun
    safely. Without it the whole output is replaced.

    No labels left after the window and the sampling is an :class:`EmptyInputError` naming the
    label path and the window, raised before anything is written, unless ``allow_empty``.
    """
    started = time.monotonic()
    out_path = output or cfg.output
    labels = labels or resolve_labels(spark, cfg)
    label_df = _read_labels(spark, labels, cfg.labels.ts)
    if "fingerprint" in labels:
        now = _file_fingerprint(label_df)
        if now["fingerprint"] != labels["fingerprint"]:
            raise StorageError(f"labels at {labels['path']} changed since the build: {labels['files']} files then, "
                               f"{now['files']} now; the manifest cannot be reproduced from them")
    if window:
        label_df = label_df.where((F.col(cfg.labels.ts) >= timestamp_lit(window[0]))
                                  & (F.col(cfg.labels.ts) < timestamp_lit(window[1])))
    if cfg.sampling:
        label_df = sample_labels(label_df, _sampling(cfg.sampling), ts=cfg.labels.ts)
    if DATE_COLUMN in label_df.columns:
        raise StorageError(f"labels {labels['path']}: column '{DATE_COLUMN}' is reserved for the output's date "
                           "partition", hint="rename that label column")
    with spark_boundary(what="labels", path=labels["path"], version=labels.get("version")):
        span = label_df.agg(F.count(F.lit(1)), F.min(F.unix_micros(cfg.labels.ts)),
                            F.max(F.unix_micros(cfg.labels.ts))).first()
    n_labels, first_us, last_us = int(span[0]), span[1], span[2]
    if n_labels == 0 and not allow_empty:
        raise EmptyInputError("labels", labels["path"], _empty_problem(window, cfg.sampling is not None))
    inputs = {t: dict(i) for t, i in inputs.items()}
    tables, raw = {}, {}
    for t, i in inputs.items():
        with spark_boundary(what=f"feature table '{t}'", path=i["path"], version=i["version"],
                            sources={i["path"]: (t, i["version"])}):
            if "state" not in i:  # a fresh build (a rebuild keeps the manifest's choice)
                i["state"] = _pick_state(spark, cfg, t, i, first_us) if use_state else None
            elif i["state"] is not None:
                i["state"] = _pinned_state(spark, t, i)
            tables[t] = read_with_state(spark, i["path"], i["version"], i["state"],
                                        until_us=last_us if _joins_on_event_ts(cfg, t) else None)
            aggregated = [a for a in cfg.aggregations if a.table == t]
            if aggregated:
                reach = None if first_us is None else min(first_us - _widest(a) // US for a in aggregated) // 1000 - 1
                raw[t] = read_history(spark, t, i["path"], i["version"], since_ms=reach)
    sources = [FeatureSource(f.table, tables[f.table], dict(f.keys), list(f.features), ttl=f.ttl, strict=f.strict,
                             prefix=f.prefix, tie_breaker=f.tie_breaker) for f in cfg.features]
    rows = (point_in_time_join(label_df, sources, label_ts=cfg.labels.ts, partitions=cfg.join.partitions,
                               time_bucket=cfg.join.time_bucket) if sources else label_df)
    joined = rows.columns
    if cfg.aggregations:  # right after the join: on the join's key they reuse its shuffle of the labels
        aggs = [AggregationSource(a.name, _window_rows(raw[a.table], a, first_us, last_us), dict(a.keys), ts=a.ts,
                                  strict=a.strict, table=a.table,
                                  features=[Aggregation(f.column, [o.value for o in f.ops], list(f.windows))
                                            for f in a.features]) for a in cfg.aggregations]
        rows = window_aggregates(rows, aggs, label_ts=cfg.labels.ts, partitions=cfg.join.partitions,
                                 time_bucket=cfg.join.time_bucket)
    aggregated = [c for c in rows.columns if c not in set(joined)]
    for s in cfg.sequences:
        rows = last_n_events(rows, SequenceSource(s.name, tables[s.table], dict(s.keys), list(s.columns), n=s.n,
                                                  ts=s.ts, max_age=s.max_age, tie_breaker=s.tie_breaker),
                             label_ts=cfg.labels.ts)
    rows = rows.select(*joined, *[c for c in rows.columns if c not in set(joined + aggregated)], *aggregated)
    keys = sorted({k for ref in [*cfg.features, *cfg.sequences, *cfg.aggregations] for k in ref.keys})
    incomplete = ~all_of([F.col(c).isNotNull() for c in [*keys, cfg.labels.ts]])
    modes = {f.prefix + name: mode for f in cfg.features for name, mode in f.quantize.items()}
    rows, quantized = quantize_embeddings(rows, modes)
    rows = rows.withColumn(DATE_COLUMN, utc_date(F.col(cfg.labels.ts)))
    manifest = {"training_set": cfg.name, "config": cfg.model_dump(mode="json"), "config_hash": config_hash(cfg),
                "inputs": inputs, "labels": labels, "rows": n_labels,
                "window": None if window is None else [w.isoformat() for w in window]}
    meta = json.dumps({MANIFEST_KEY: manifest}, sort_keys=True, default=str)
    sources = {i["path"]: (t, i["version"]) for t, i in inputs.items()}
    if "version" in labels:
        sources[labels["path"]] = ("labels", labels["version"])

    def write() -> Observation:
        counted = Observation("labels")
        observed = rows.observe(counted, F.count(F.lit(1)).alias("rows"),
                                F.sum(incomplete.cast("long")).alias("labels_null_key_or_time"))
        writer = (observed.write.format("delta").mode("overwrite").partitionBy(DATE_COLUMN)
                  .option("userMetadata", meta))
        if window and DeltaTable.isDeltaTable(spark, out_path):
            _check_partitioned(spark, out_path)
            writer = writer.option("replaceWhere", _replace_where(cfg.labels.ts, window))
        else:
            writer = writer.option("overwriteSchema", "true")
        writer.save(out_path)
        return counted

    with new_table_guard(spark, out_path), spark_boundary(what="training set", path=out_path, sources=sources):
        got = with_conflict_retries(write, out_path).get
    version = int(DeltaTable.forPath(spark, out_path).history(1).first().version)
    if got["rows"] != n_labels:
        log.warning("training set %s: wrote %d rows for %d labels", cfg.name, got["rows"], n_labels)
    return {"training_set": cfg.name, "path": out_path, "version": version, "rows": got["rows"],
            "window": manifest["window"],
            "columns": len(rows.columns), "labels_null_key_or_time": got["labels_null_key_or_time"] or 0,
            "quantization": error_report(quantized, modes), "inputs": inputs, "labels": labels,
            "seconds": round(time.monotonic() - started, 2)}


def read_manifest(spark: SparkSession, path: str, version: int | None = None) -> dict[str, Any]:
    if not DeltaTable.isDeltaTable(spark, path):
        raise DeltaTableNotFoundError(path)
    history = DeltaTable.forPath(spark, path).history().select("version", "userMetadata").collect()
    for row in sorted(history, key=lambda r: r.version, reverse=True):
        if version is not None and row.version != version:
            continue
        meta = json.loads(row.userMetadata or "{}").get(MANIFEST_KEY)
        if meta:
            return meta
    raise StorageError(f"{path}: no training-set manifest in its commits"
                       + (f" at version {version}" if version is not None else ""))


def rebuild(spark: SparkSession, manifest: dict[str, Any], *, output: str, allow_empty: bool = False) -> dict[str, Any]:
    """Rebuild a training set exactly as a manifest describes (every input pinned).

    Each feature table is read as the build read it: through the feature state version the
    manifest records, plus the history at its pinned version. When that state version is gone
    (VACUUM, log retention) the rebuild reads the whole history at the pinned version instead (the
    same rows; one warning says so). When that history version is gone too it raises
    :class:`DeltaVersionNotFoundError` naming the table, the version and what to do, before writing.
    The returned metrics and the new commit's manifest record what was read.

    >>> rebuild(spark, read_manifest(spark, "/data/training/ctr"), output="/tmp/ctr_again")  # doctest: +SKIP
    """
    cfg = TrainingSetConfig.model_validate(manifest["config"])
    window = manifest.get("window")
    return build_training_set(spark, cfg, manifest["inputs"], output=output, labels=manifest["labels"],
                              window=None if window is None else (datetime.fromisoformat(window[0]),
                                                                  datetime.fromisoformat(window[1])),
                              allow_empty=allow_empty)


def _pick_state(spark: SparkSession, cfg: TrainingSetConfig, table: str, i: dict[str, Any],
                first_us: int | None) -> dict[str, Any] | None:
    """The feature state a build of labels from ``first_us`` on reads for ``table`` (None: the history).

    Usable when every feature and sequence of the table joins on the state's key, sequences are on
    ``event_ts`` and no longer than the state keeps, and the state is as of the first label or before.
    """
    refs = [r for r in [*cfg.features, *cfg.sequences] if r.table == table]
    if first_us is None or not refs or "state_path" not in i:
        return None
    keys = {frozenset(r.keys.values()) for r in refs}
    seqs = [r for r in cfg.sequences if r.table == table]
    if len(keys) != 1 or any(s.ts != TS_COLUMN for s in seqs):
        return None
    st = pick_state(spark, i["path"], i["version"], at_or_before=datetime.fromtimestamp(first_us / 1e6, UTC),
                    keys=set(next(iter(keys))), events=max((s.n for s in seqs), default=0))
    if st is None:
        log.info("feature table %s: no usable feature state as of the first label; reading its history", table)
    return None if st is None else st.manifest(i["state_path"])


def _pinned_state(spark: SparkSession, table: str, i: dict[str, Any]) -> dict[str, Any] | None:
    """A rebuild's recorded feature state when it can still be read; else ``None`` (the history at the
    pinned version gives the same rows), or the error when that history version is gone too."""
    st = i["state"]
    problem = unreadable_state(spark, st["path"], int(st["version"]))
    if problem is None:
        return st
    gone = unreadable_version(spark, i["path"], int(i["version"]))
    if gone is not None:
        raise DeltaVersionNotFoundError(
            i["path"], i["version"], f"{gone}; nor can its feature state version {st['version']} at {st['path']} "
                                     f"({problem})", table=table,
            hint=f"build the training set again from the current versions (fstore-batch build); to keep builds "
                 f"reproducible longer, raise maintenance.vacuum_retention_hours and log_retention_days of '{table}'")
    log.warning("feature table %s: feature state version %s at %s cannot be read (%s); reading the history at "
                "version %s instead (same rows)", table, st["version"], st["path"], problem, i["version"])
    return None


def _joins_on_event_ts(cfg: TrainingSetConfig, table: str) -> bool:
    return all(s.ts == TS_COLUMN for s in cfg.sequences if s.table == table)


def _window_rows(rows: DataFrame, agg: Any, first_us: int | None, last_us: int | None) -> DataFrame:
    """The event rows any label's windows can reach (all of them when there are no labels)."""
    if first_us is None or last_us is None:
        return rows
    return events_in_reach(rows, agg.ts, _widest(agg), first_us, last_us)


def _widest(agg: Any) -> timedelta:
    return max(w for f in agg.features for w in f.windows)


def utc_date(ts: Column) -> Column:
    """The UTC calendar day of a timestamp, whatever the session time zone."""
    return F.date_from_unix_date(F.floor(F.unix_seconds(ts) / 86400).cast("int"))


def _replace_where(ts: str, window: tuple[datetime, datetime]) -> str:
    """The replaceWhere predicate of a window: on the date partition (whole UTC days, so Delta's
    conflict check sees only that partition), plus the exact times when the window is not whole days."""
    start, end = window[0].astimezone(UTC), window[1].astimezone(UTC)
    first = start.date()
    last = end.date() if end.time() == dt_time(0) else end.date() + timedelta(days=1)
    pred = f"`{DATE_COLUMN}` >= DATE'{first.isoformat()}' AND `{DATE_COLUMN}` < DATE'{last.isoformat()}'"
    if start.time() != dt_time(0) or end.time() != dt_time(0):
        pred += f" AND `{ts}` >= '{start.isoformat()}' AND `{ts}` < '{end.isoformat()}'"
    return pred


def _check_partitioned(spark: SparkSession, path: str) -> None:
    cols = list(DeltaTable.forPath(spark, path).detail().select("partitionColumns").first()[0])
    if cols != [DATE_COLUMN]:
        raise StorageError(f"training set {path} is partitioned by {cols or 'nothing'}, not by {DATE_COLUMN}: it was "
                           "built before daily builds were partitioned, so a daily build cannot replace one day",
                           hint="build it once without --date (replaces the whole output), then run daily builds")


def _empty_problem(window: tuple[datetime, datetime] | None, sampled: bool) -> str:
    where = (f"no labels with time in [{window[0].isoformat()}, {window[1].isoformat()})" if window
             else "no labels")
    return where + (" after sampling" if sampled else "")


def _read_labels(spark: SparkSession, labels: dict[str, Any], ts: str) -> DataFrame:
    return read_events(spark, labels["path"], labels["format"], what="labels", ts=ts, version=labels.get("version"))


def _file_fingerprint(df: DataFrame) -> dict[str, Any]:
    """How many files a file-based label source has and a hash of their names (Spark names are unique)."""
    files = sorted(df.inputFiles())
    return {"files": len(files), "fingerprint": hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]}


def _sampling(s: SamplingConfig) -> LabelSampling:
    return LabelSampling(list(s.hash_columns), [Stratum(dict(r.where), r.rate) for r in s.rates],
                         start=s.start, end=s.end, seed=s.seed, weight_column=s.weight_column)
