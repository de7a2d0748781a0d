"""A ready sample feature store in one call, for notebooks and walkthroughs.

Seeds the deterministic sample into HBase (only when its tables or the label log are missing)
and snapshots every table into Delta as of each given time (a snapshot already taken is a no-op),
so running a notebook twice costs the snapshots' checks only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from fstore_batch.config import FeatureStoreConfig
from fstore_batch.sample.generator import SampleSize, SampleSpec, generate
from fstore_batch.sample.writer import write_sample
from fstore_batch.sources.hbase.connection import hbase_connection
from fstore_batch.storage.delta.snapshot import run_snapshots
from fstore_batch.timeutil import parse_time_ms

log = logging.getLogger(__name__)
DEFAULT_AS_OF = ("2026-10-20T00:00:00Z", "2026-10-31T00:00:00Z")


def prepare_sample_store(spark: SparkSession, cfg: FeatureStoreConfig, *, labels_dir: str | Path,
                         size: str = "tiny", seed: int = 7, as_of: Sequence[str] = DEFAULT_AS_OF) -> dict[str, Any]:
    """Make sure the sample is in HBase and snapshotted into Delta as of each time in ``as_of``.

    >>> cfg = load_config(FeatureStoreConfig, "conf/sample.yaml", overrides=["hbase.table_prefix=nb"])  # doctest: +SKIP
    >>> prepare_sample_store(spark, cfg, labels_dir=".data/notebooks/labels")  # doctest: +SKIP
    """
    with hbase_connection(cfg.hbase) as conn:
        present = {t.decode() for t in conn.tables()}
    missing = [t.hbase_table for t in cfg.tables if t.hbase_table not in present]
    seeded = bool(missing) or not Path(labels_dir).exists()
    if seeded:
        log.info("seeding the %s sample into HBase (missing: %s)", size, ", ".join(missing) or "the label log")
        write_sample(cfg, generate(SampleSpec(size=SampleSize.preset(size), seed=seed)), labels_dir)
    snapshots = {}
    names = [table.name for table in cfg.tables]
    for t in as_of:  # two tables at a time, as `fstore-batch snapshot` does
        for name, m in zip(names, run_snapshots(spark, cfg, names, parse_time_ms(t))):
            snapshots.setdefault(name, []).append({"as_of": t, "mode": m["mode"], "version": m.get("version")})
    return {"seeded": seeded, "labels": str(labels_dir), "snapshots": snapshots}
