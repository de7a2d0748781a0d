"""The generated sample tables as Spark DataFrames in the offline (Delta) layout, without HBase.

One row per (entity key, cell timestamp) with the key columns, ``event_ts`` (UTC) and one typed
column per feature, as a snapshot writes them. Tests, notebooks and the skew demo use it to get
feature tables straight from the generator.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from fstore_batch.config.models import Codec, FeatureStoreConfig, KeyPartType
from fstore_batch.sample.generator import SampleData
from fstore_batch.spark_local import local_frame

CODEC_TYPES: dict[Codec, T.DataType] = {
    Codec.INT32: T.IntegerType(), Codec.INT64: T.LongType(), Codec.FLOAT32: T.FloatType(),
    Codec.FLOAT64: T.DoubleType(), Codec.STRING: T.StringType(), Codec.BOOL: T.BooleanType(),
    Codec.JSON: T.StringType(), Codec.VECTOR_F32: T.ArrayType(T.FloatType()),
    Codec.INT64_LIST: T.ArrayType(T.LongType()),
}
KEY_TYPES = {KeyPartType.INT64: T.LongType(), KeyPartType.INT32: T.IntegerType(), KeyPartType.STRING: T.StringType()}


def table_frame(spark: SparkSession, cfg: FeatureStoreConfig, data: SampleData, name: str) -> DataFrame:
    """Sample table ``name`` as a DataFrame in the snapshot layout."""
    import json
    from datetime import UTC, datetime

    spec, cells = cfg.table(name), data.tables[name]
    fields = [T.StructField(p.name, KEY_TYPES[p.type], False) for p in spec.row_key.parts]
    fields.append(T.StructField("event_ts", T.TimestampType(), False))
    fields += [T.StructField(c.feature, CODEC_TYPES[c.codec], True) for c in spec.columns]
    rows = []
    for i, (key, ts) in enumerate(zip(cells.keys, cells.ts)):
        values = []
        for c in spec.columns:
            v = cells.values.get(c.column, [None] * len(cells))[i]
            if v is not None and c.codec is Codec.JSON:
                v = json.dumps(v, sort_keys=True)
            elif v is not None and c.codec is Codec.VECTOR_F32:
                v = [float(x) for x in v]
            values.append(v)
        rows.append((*key, datetime.fromtimestamp(ts / 1000, UTC), *values))
    return local_frame(spark, rows, T.StructType(fields))


def write_delta_tables(spark: SparkSession, cfg: FeatureStoreConfig, data: SampleData, names: list[str]) -> None:
    """Write sample tables as Delta tables under ``cfg.storage.root`` (overwriting)."""
    for name in names:
        (table_frame(spark, cfg, data, name).write.format("delta").mode("overwrite")
         .option("overwriteSchema", "true").save(cfg.storage.table_path(name)))
