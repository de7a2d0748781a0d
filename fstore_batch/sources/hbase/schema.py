"""The offline (Spark/Arrow) schema of an HBase feature table.

Layout: one **wide row per (entity key, cell timestamp)**. Key parts become typed columns,
``event_ts`` is the cell's HBase timestamp (UTC, millisecond precision), and every feature has
one typed column that is null where that feature had no cell at that timestamp. A feature
updated at its own time therefore lands in its own row; the point-in-time join takes, per
feature, the latest non-null value at or before the label time. ``snapshot_id`` names the
snapshot that added the row.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

from fstore_batch.config.models import Codec, FeatureTableSpec, KeyPartType

SPARK_TYPES: dict[Codec, T.DataType] = {
    Codec.INT64: T.LongType(),
    Codec.INT32: T.IntegerType(),
    Codec.FLOAT32: T.FloatType(),
    Codec.FLOAT64: T.DoubleType(),
    Codec.STRING: T.StringType(),
    Codec.BOOL: T.BooleanType(),
    Codec.JSON: T.StringType(),  # canonical JSON text
    Codec.VECTOR_F32: T.ArrayType(T.FloatType(), containsNull=False),
    Codec.INT64_LIST: T.ArrayType(T.LongType(), containsNull=False),
}
ARROW_TYPES: dict[Codec, pa.DataType] = {
    Codec.INT64: pa.int64(),
    Codec.INT32: pa.int32(),
    Codec.FLOAT32: pa.float32(),
    Codec.FLOAT64: pa.float64(),
    Codec.STRING: pa.string(),
    Codec.BOOL: pa.bool_(),
    Codec.JSON: pa.string(),
    Codec.VECTOR_F32: pa.list_(pa.field("element", pa.float32(), nullable=False)),
    Codec.INT64_LIST: pa.list_(pa.field("element", pa.int64(), nullable=False)),
}
KEY_SPARK = {KeyPartType.INT64: T.LongType(), KeyPartType.INT32: T.IntegerType(), KeyPartType.STRING: T.StringType()}
KEY_ARROW = {KeyPartType.INT64: pa.int64(), KeyPartType.INT32: pa.int32(), KeyPartType.STRING: pa.string()}

BAD_CELL = T.StructType([
    T.StructField("row_key", T.BinaryType()),
    T.StructField("column", T.StringType()),
    T.StructField("ts_ms", T.LongType()),
    T.StructField("raw", T.BinaryType()),
    T.StructField("reason", T.StringType()),
])
BAD_CELL_ARROW = pa.struct([
    ("row_key", pa.binary()), ("column", pa.string()), ("ts_ms", pa.int64()), ("raw", pa.binary()),
    ("reason", pa.string()),
])
EVENT_TS_ARROW = pa.timestamp("us", tz="UTC")


def feature_schema(spec: FeatureTableSpec) -> T.StructType:
    """The Delta table's schema: keys, ``event_ts``, features, ``snapshot_id``."""
    fields = [T.StructField(p.name, KEY_SPARK[p.type], nullable=False) for p in spec.row_key.parts]
    fields.append(T.StructField("event_ts", T.TimestampType(), nullable=False))
    fields += [T.StructField(c.feature, SPARK_TYPES[c.codec], nullable=True) for c in spec.columns]
    fields.append(T.StructField("snapshot_id", T.StringType(), nullable=False))
    return T.StructType(fields)


def source_schema(spec: FeatureTableSpec) -> T.StructType:
    """What the HBase data source emits: the feature schema (keys nullable: a row whose key does
    not decode has null keys) plus per-row statistics and the cells that failed to decode."""
    fields = [T.StructField(f.name, f.dataType, nullable=True) for f in feature_schema(spec).fields
              if f.name != "snapshot_id"]
    fields += [
        T.StructField("_cells", T.IntegerType(), nullable=False),
        T.StructField("_bytes", T.LongType(), nullable=False),
        T.StructField("_bad", T.ArrayType(BAD_CELL, containsNull=False), nullable=True),
    ]
    return T.StructType(fields)


def source_arrow_schema(spec: FeatureTableSpec) -> pa.Schema:
    fields = [pa.field(p.name, KEY_ARROW[p.type]) for p in spec.row_key.parts]
    fields.append(pa.field("event_ts", EVENT_TS_ARROW))
    fields += [pa.field(c.feature, ARROW_TYPES[c.codec]) for c in spec.columns]
    fields += [pa.field("_cells", pa.int32(), nullable=False), pa.field("_bytes", pa.int64(), nullable=False),
               pa.field("_bad", pa.list_(pa.field("element", BAD_CELL_ARROW, nullable=False)))]
    return pa.schema(fields)
