"""Driver-local rows as a Spark DataFrame, handed to the JVM as Arrow.

``spark.createDataFrame(rows, schema)`` on a Python list pickles the rows into a Python RDD: every
read of that DataFrame (each job, each side of a self-join, a runtime filter's subquery) starts
Python worker tasks to unpickle them again. :func:`local_frame` converts the rows to an Arrow
table on the driver once, and Spark reads its batches in the JVM with no Python worker. Measured
on the tests' tiny point-in-time joins (10 labels, two feature tables, local[2]): a collect of
1.21 s against 0.49 s, a one-column projection of 0.27 s against 0.09 s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def local_frame(spark: SparkSession, rows: Iterable[Any], schema: T.StructType | str) -> DataFrame:
    """A DataFrame of ``rows`` with ``schema`` (a ``StructType`` or a DDL string such as
    ``"user_id long, event_ts timestamp"``), read by Spark without Python workers.

    Rows are tuples (by position), ``Row`` objects with field names or dicts (by name). Values
    mean what they mean to ``spark.createDataFrame``: a naive ``datetime`` in a ``timestamp``
    column is local time, a tz-aware one its instant; a non-string in a ``string`` column becomes
    its ``str`` (``True`` -> ``"true"``). A value Arrow cannot hold in its column's type raises
    ``pyarrow.ArrowInvalid`` or ``pyarrow.ArrowTypeError`` naming it.

    >>> local_frame(spark, [(1, "DE")], "user_id long, country string").collect()  # doctest: +SKIP
    [Row(user_id=1, country='DE')]
    """
    struct = schema if isinstance(schema, T.StructType) else T._parse_datatype_string(schema)
    if not isinstance(struct, T.StructType):
        raise TypeError(f"schema must be a struct (columns), got {struct.simpleString()}")
    names = struct.fieldNames()
    records = [_fields(r, names) for r in rows]
    arrow_schema = to_arrow_schema(struct)
    arrays = [pa.array([_value(f.dataType, rec[i]) for rec in records], type=arrow_schema.field(i).type)
              for i, f in enumerate(struct.fields)]
    return spark.createDataFrame(pa.Table.from_arrays(arrays, schema=arrow_schema), struct)


def _fields(row: Any, names: list[str]) -> Sequence[Any]:
    if isinstance(row, Row) and hasattr(row, "__fields__"):
        row = row.asDict(recursive=False)
    if isinstance(row, Mapping):
        return [row.get(n) for n in names]
    if len(row) != len(names):
        raise ValueError(f"a row has {len(row)} values for {len(names)} columns ({', '.join(names)}): {row!r}")
    return row


def _value(dtype: T.DataType, v: Any) -> Any:
    """``v`` as the Python value pyarrow takes for the Arrow type of ``dtype``."""
    if v is None:
        return None
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        instant = _EPOCH + timedelta(microseconds=dtype.toInternal(v))  # naive: local time / wall clock (ntz)
        return instant if isinstance(dtype, T.TimestampType) else instant.replace(tzinfo=None)
    if isinstance(dtype, T.StringType) and not isinstance(v, str):
        return str(v).lower() if isinstance(v, bool) else str(v)
    if isinstance(dtype, T.ArrayType):
        return [_value(dtype.elementType, x) for x in v]
    if isinstance(dtype, T.MapType):
        items = v.items() if isinstance(v, Mapping) else v
        return [(_value(dtype.keyType, k), _value(dtype.valueType, x)) for k, x in items]
    if isinstance(dtype, T.StructType):
        names = dtype.fieldNames()
        return {n: _value(f.dataType, x) for n, f, x in zip(names, dtype.fields, _fields(v, names))}
    return v
