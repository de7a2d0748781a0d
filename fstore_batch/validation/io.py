"""The edges of a skew validation: read the online log and the offline side, rebuild features.

The offline side is either an already-built training set (Delta; its manifest pins the feature
table versions used, which the staleness search reuses) or a rebuild: the logged requests become
the labels of the point-in-time builder (``fstore_batch.joins.build``), so training features are
computed exactly as a training set would get them, for exactly the logged requests.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fstore_batch.config.models import FeatureStoreConfig
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.errors import InputNotFoundError, StorageError
from fstore_batch.joins.build import build_training_set, read_manifest, resolve_inputs
from fstore_batch.storage.readers import read_events
from fstore_batch.validation.config import LogFormat, OnlineLogSpec

log = logging.getLogger(__name__)


def read_online_log(spark: SparkSession, path: str, spec: OnlineLogSpec, fmt: LogFormat | None = None) -> DataFrame:
    """The online log at ``path``; JSON-lines times must carry a zone (``Z`` or ``+hh:mm``).

    The same reader as the labels' (:func:`fstore_batch.storage.readers.read_events`).
    """
    return read_events(spark, path, (fmt or spec.format).value, what="online log", ts=spec.ts)


def read_training_set(spark: SparkSession, path: str) -> tuple[DataFrame, dict[str, dict[str, Any]] | None]:
    """A built training set and its input tables' pinned versions (``None`` without a manifest)."""
    if not DeltaTable.isDeltaTable(spark, path):
        raise InputNotFoundError("training set", path, "not a Delta table")
    df = spark.read.format("delta").load(path)
    try:
        inputs = read_manifest(spark, path).get("inputs")
    except StorageError:
        inputs = None
    return df, inputs


def rebuild_offline(spark: SparkSession, ts_cfg: TrainingSetConfig, store: FeatureStoreConfig, online_log: DataFrame,
                    spec: OnlineLogSpec, work_dir: str) -> tuple[DataFrame, dict[str, dict[str, Any]]]:
    """Rebuild the training features for the logged requests with the point-in-time builder.

    The log's request id, keys and time are written as the labels (Parquet, under ``work_dir``),
    the builder writes its output there as Delta, and that output is returned with its inputs.
    """
    labels_path, out_path = str(Path(work_dir) / "labels"), str(Path(work_dir) / "offline")
    cols = [c for c in [spec.request_id, *spec.keys] if c]
    labels = online_log.select(*cols, F.col(spec.ts).alias(ts_cfg.labels.ts))
    labels.write.mode("overwrite").parquet(labels_path)
    data = ts_cfg.model_dump(mode="json")
    data["labels"] = {**data["labels"], "path": labels_path, "format": "parquet"}
    data["labels"].pop("version", None)
    data["output"] = out_path
    if "sampling" in data:
        data["sampling"] = None  # every logged request, not a sample of them
    cfg = TrainingSetConfig.model_validate(data)
    inputs = resolve_inputs(spark, cfg, store)
    m = build_training_set(spark, cfg, inputs, output=out_path, allow_empty=True)  # an empty log fails validation
    log.info("rebuilt %d offline rows for the logged requests at %s", m["rows"], out_path)
    return spark.read.format("delta").load(out_path), inputs


def feature_tables(spark: SparkSession, inputs: dict[str, dict[str, Any]] | None,
                   store: FeatureStoreConfig | None, tables: list[str]) -> dict[str, DataFrame]:
    """The feature tables at the versions the offline side used (else their latest version)."""
    out = {}
    for t in tables:
        info = (inputs or {}).get(t)
        if info is not None:
            out[t] = spark.read.format("delta").option("versionAsOf", info["version"]).load(info["path"])
        elif store is not None and DeltaTable.isDeltaTable(spark, store.storage.table_path(t)):
            out[t] = spark.read.format("delta").load(store.storage.table_path(t))
    return out
