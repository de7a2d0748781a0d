"""A Spark Python data source over HBase: ``spark.read.format("fstore_hbase")``.

Why the Python Data Source API (Spark 4): partitions are planned on the driver from region
boundaries alone (one Spark partition per HBase region) and each partition's ``read`` runs in an
executor's Python worker, opening its own happybase connection and scanning only its key range.
Rows leave the worker as Arrow record batches, so no per-row Python->JVM conversion is paid, and
nothing but region boundaries passes through the driver. The alternative (the HBase-Spark
connector) is a JVM library talking the native HBase RPC, which neither speaks Thrift nor has a
Spark 4 build.

Options (all strings): ``spec`` (FeatureTableSpec JSON), ``hbase`` (HBaseConfig JSON),
``as_of_ms``, optional ``since_ms``.
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
    def __init__(self, region: Region, n_regions: int) -> None:
        super().__init__(region.index)
        self.region = region
        self.n_regions = n_regions


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

    def partitions(self) -> list[InputPartition]:
        regions = list_region_ranges(self.hbase, self.spec.hbase_table)
        return [RegionPartition(r, len(regions)) for r in regions]

    def read(self, partition: RegionPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        started = time.monotonic()
        scanner = RegionScanner(self.hbase, self.scan, partition.region)
        batcher = WideRowBatcher(self.spec)
        try:
            yield from batcher.batches(scanner.rows())
        finally:
            scanner.close()
        _progress({"event": "region_done", "table": self.spec.hbase_table,
                   "region": partition.region.describe(), "of": partition.n_regions, **batcher.stats,
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
                 since_ms: int | None = None):
    """A DataFrame over ``spec``'s HBase table: cells with ``since < ts <= as_of``, one partition per region."""
    register(spark)
    reader = (spark.read.format(FORMAT)
              .option("spec", spec.model_dump_json())
              .option("hbase", hbase.model_dump_json())
              .option("as_of_ms", str(as_of_ms)))
    if since_ms is not None:
        reader = reader.option("since_ms", str(since_ms))
    return reader.load()
