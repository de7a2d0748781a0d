"""A Spark Python data source over HBase: ``spark.read.format("fstore_hbase")``.

Why the Python Data Source API (Spark 4): partitions are planned on the driver from region
boundaries alone (one Spark partition per HBase region) and each partition's ``read`` runs in an
executor's Python worker, opening its own happybase connection and scanning only its key range.
Rows leave the worker as Arrow record batches, so no per-row Python->JVM conversion is paid, and
nothing but region boundaries passes through the driver. The alternative (the HBase-Spark
connector) is a JVM library talking the native HBase RPC, which neither speaks Thrift nor has a
Spark 4 build.

Options (all strings): ``spec`` (FeatureTableSpec JSON), ``hbase`` (HBaseConfig JSON),
``as_of_ms``, optional ``since_ms``, optional ``max_partitions`` and ``regions``.

``max_partitions`` deals the regions round-robin into at most that many Spark partitions (each
task then scans its regions one after the other). A Python task has a fixed start-up cost in
the worker (on Python 3.11, ``importlib.invalidate_caches`` re-reads ``pyspark.zip`` and the
Spark jar on the workers' path: ~0.1-0.2 s per task), so a snapshot on a few cores runs one task
per core rather than one per region. ``regions`` (JSON ``[[start_hex, end_hex], ...]``, as the
driver listed them) saves the planner a second listing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from fstore_batch.config.models import FeatureTableSpec, HBaseConfig
from fstore_batch.sources.hbase.rows import WideRowBatcher
from fstore_batch.sources.hbase.scan import Region, RegionScanner, ScanSpec, list_region_ranges
from fstore_batch.sources.hbase.schema import source_schema

FORMAT = "fstore_hbase"


class RegionPartition(InputPartition):
    """One Spark partition: one or more regions, scanned one after the other."""

    def __init__(self, index: int, regions: list[Region], n_regions: int) -> None:
        super().__init__(index)
        self.regions = regions
        self.n_regions = n_regions


def group_regions(regions: list[Region], max_partitions: int | None) -> list[list[Region]]:
    """Deal ``regions`` round-robin into at most ``max_partitions`` non-empty groups (one each when ``None``).

    >>> [[r.index for r in g] for g in group_regions([Region(i, b"", b"") for i in range(5)], 2)]
    [[0, 2, 4], [1, 3]]
    """
    k = len(regions) if max_partitions is None else max(1, min(max_partitions, len(regions)))
    return [regions[i::k] for i in range(k)]


class HBaseFeatureSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> StructType:
        return source_schema(FeatureTableSpec.model_validate_json(self.options["spec"]))

    def reader(self, schema: StructType) -> DataSourceReader:
        return HBaseRegionReader(self.options)


class HBaseRegionReader(DataSourceReader):
    def __init__(self, options: dict[str, str]) -> None:
        self.spec = FeatureTableSpec.model_validate_json(options["spec"])
        self.hbase = HBaseConfig.model_validate_json(options["hbase"])
        since = options.get("since_ms")
        self.scan = ScanSpec(
            table=self.spec.hbase_table,
            # Whole families, not explicit qualifiers: HBase scans a family faster than it matches
            # a qualifier list, and unconfigured columns are skipped client-side.
            columns=[f.encode() for f in self.spec.families],
            as_of_ms=int(options["as_of_ms"]),
            since_ms=int(since) if since not in (None, "", "None") else None,
            history=self.spec.history,
            max_versions=self.spec.max_versions,
        )
        limit = options.get("max_partitions")
        self.max_partitions = int(limit) if limit not in (None, "", "None") else None
        listed = options.get("regions")
        self.regions = (None if listed in (None, "", "None") else
                        [Region(i, bytes.fromhex(a), bytes.fromhex(b)) for i, (a, b) in enumerate(json.loads(listed))])

    def partitions(self) -> list[InputPartition]:
        regions = self.regions if self.regions is not None else list_region_ranges(self.hbase, self.spec.hbase_table)
        return [RegionPartition(i, group, len(regions))
                for i, group in enumerate(group_regions(regions, self.max_partitions))]

    def read(self, partition: RegionPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        for region in partition.regions:
            yield from self._read_region(region, partition.n_regions)

    def _read_region(self, region: Region, n_regions: int) -> Iterator[pa.RecordBatch]:
        started = time.monotonic()
        scanner = RegionScanner(self.hbase, self.scan, region)
        batcher = WideRowBatcher(self.spec)
        try:
            yield from batcher.batches(scanner.rows())
        finally:
            scanner.close()
        _progress({"event": "region_done", "table": self.spec.hbase_table,
                   "region": region.describe(), "of": n_regions, **batcher.stats,
                   "retries": scanner.retries, "seconds": round(time.monotonic() - started, 3)})


def _progress(fields: dict[str, object]) -> None:
    """Per-region progress from the executor: one JSON line on the worker's stderr."""
    print(json.dumps({"logger": "fstore_batch.snapshot", **fields}, default=str), file=sys.stderr, flush=True)


def register(spark) -> None:
    """Register the data source with ``spark`` (once per session)."""
    if not getattr(spark, "_fstore_hbase_registered", False):
        spark.dataSource.register(HBaseFeatureSource)
        spark._fstore_hbase_registered = True


def hbase_reader(spark, spec: FeatureTableSpec, hbase: HBaseConfig, *, as_of_ms: int,
                 since_ms: int | None = None, max_partitions: int | None = None,
                 regions: list[Region] | None = None):
    """A DataFrame over ``spec``'s HBase table: cells with ``since < ts <= as_of``.

    One partition per region, or at most ``max_partitions`` partitions of several regions each.
    ``regions``: the table's regions as the caller listed them (:func:`list_region_ranges`);
    listed when the query is planned otherwise.
    """
    register(spark)
    reader = (spark.read.format(FORMAT)
              .option("spec", spec.model_dump_json())
              .option("hbase", hbase.model_dump_json())
              .option("as_of_ms", str(as_of_ms)))
    if since_ms is not None:
        reader = reader.option("since_ms", str(since_ms))
    if max_partitions is not None:
        reader = reader.option("max_partitions", str(max_partitions))
    if regions is not None:
        reader = reader.option("regions", json.dumps([[r.start.hex(), r.end.hex()] for r in regions]))
    return reader.load()
