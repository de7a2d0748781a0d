"""Build a training set from a config, as one Delta commit carrying its manifest; rebuild from it.

The manifest records the exact Delta version of every input (latest versions are resolved when
the build starts), the label source, the config and its hash. ``rebuild`` reads a manifest from
an output table's commit and reruns the build with every input pinned, so it reproduces the same
rows after the inputs have moved on.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from fstore_batch.config.loader import config_hash
from fstore_batch.config.models import FeatureStoreConfig
from fstore_batch.config.training import LabelFormat, TrainingSetConfig
from fstore_batch.errors import DeltaTableNotFoundError, StorageError
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.storage.delta.tables import current_version

log = logging.getLogger(__name__)
MANIFEST_KEY = "fstore_training_set"


def resolve_inputs(spark: SparkSession, cfg: TrainingSetConfig, store: FeatureStoreConfig) -> dict[str, dict[str, Any]]:
    """``{table: {"path", "version"}}`` for every input, latest versions made concrete."""
    pinned: dict[str, int | None] = {}
    for ref in [*cfg.features, *cfg.sequences]:
        pinned.setdefault(ref.table, ref.version)
    out = {}
    for table, version in pinned.items():
        path = store.storage.table_path(table)
        if not DeltaTable.isDeltaTable(spark, path):
            raise DeltaTableNotFoundError(path)
        out[table] = {"path": path, "version": current_version(spark, path) if version is None else version}
    return out


def build_training_set(spark: SparkSession, cfg: TrainingSetConfig, inputs: dict[str, dict[str, Any]],
                       *, output: str | None = None) -> dict[str, Any]:
    """Join, then write the training set to ``output`` (default ``cfg.output``) as one commit."""
    started = time.monotonic()
    out_path = output or cfg.output
    labels = _read_labels(spark, cfg)
    tables = {t: spark.read.format("delta").option("versionAsOf", i["version"]).load(i["path"])
              for t, i in inputs.items()}
    sources = [FeatureSource(f.table, tables[f.table], dict(f.keys), list(f.features), ttl=f.ttl, strict=f.strict,
                             prefix=f.prefix, tie_breaker=f.tie_breaker) for f in cfg.features]
    rows = point_in_time_join(labels, sources, label_ts=cfg.labels.ts) if sources else labels
    for s in cfg.sequences:
        rows = last_n_events(rows, SequenceSource(s.name, tables[s.table], dict(s.keys), list(s.columns), n=s.n,
                                                  ts=s.ts, max_age=s.max_age), label_ts=cfg.labels.ts)
    manifest = {"training_set": cfg.name, "config": cfg.model_dump(mode="json"), "config_hash": config_hash(cfg),
                "inputs": inputs, "labels": {"path": cfg.labels.path, "format": cfg.labels.format.value}}
    (rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
     .option("userMetadata", json.dumps({MANIFEST_KEY: manifest}, sort_keys=True, default=str)).save(out_path))
    # Row count from the commit's own metrics: no second pass over the output.
    last = DeltaTable.forPath(spark, out_path).history(1).select("version", "operationMetrics").first()
    version, n = int(last.version), int(last.operationMetrics["numOutputRows"])
    return {"training_set": cfg.name, "path": out_path, "version": version, "rows": n,
            "columns": len(rows.columns), "inputs": inputs, "seconds": round(time.monotonic() - started, 2)}


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


def rebuild(spark: SparkSession, manifest: dict[str, Any], *, output: str) -> dict[str, Any]:
    """Rebuild a training set exactly as a manifest describes (every input pinned)."""
    cfg = TrainingSetConfig.model_validate(manifest["config"])
    return build_training_set(spark, cfg, manifest["inputs"], output=output)


def _read_labels(spark: SparkSession, cfg: TrainingSetConfig) -> DataFrame:
    src = cfg.labels
    reader = spark.read.format(src.format.value)
    if src.format is LabelFormat.JSON:
        reader = reader.option("mode", "FAILFAST")
    return reader.load(src.path)
