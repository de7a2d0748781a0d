"""What a point-in-time join needs to know about each feature table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.errors import SchemaError


@dataclass(frozen=True)
class FeatureSource:
    """A feature table to join: its DataFrame, how its keys map onto the labels, its features.

    ``keys`` maps label column -> feature table column (``{"user_id": "user_id"}``). ``features``
    are taken as they are named in ``df`` and come out as ``prefix + name``. ``tie_breaker``
    orders rows with equal ``ts`` (the largest wins; a null one loses) and may be of any orderable
    type (numbers, decimals, strings, dates, timestamps, booleans, binary), compared natively.
    Rows still equal after it are ordered by a hash of their feature values, then by the values:
    deterministic (never the input order), but arbitrary.
    """

    name: str
    df: DataFrame
    keys: dict[str, str]
    features: list[str]
    ts: str = "event_ts"
    ttl: timedelta | None = None
    tie_breaker: str | None = None
    prefix: str = ""
    strict: bool = False  # feature_ts < label_ts instead of <=
    output: list[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", [self.prefix + f for f in self.features])
        cols = set(self.df.columns)
        for col in [*self.keys.values(), *self.features, self.ts, *([self.tie_breaker] if self.tie_breaker else [])]:
            if col not in cols:
                raise SchemaError(f"feature table '{self.name}'", col, "a column of the table")
        if self.tie_breaker:
            check_orderable(self.df, self.tie_breaker, f"feature table '{self.name}'")
        ts_type = self.df.schema[self.ts].dataType.typeName()
        if ts_type not in ("timestamp", "timestamp_ntz"):
            raise SchemaError(f"feature table '{self.name}'", self.ts, "a timestamp", ts_type)
        if ts_type == "timestamp_ntz":
            raise SchemaError(f"feature table '{self.name}'", self.ts,
                              "a timestamp with time zone (TIMESTAMP), not TIMESTAMP_NTZ: convert it to UTC first",
                              ts_type)

    @property
    def key_group(self) -> tuple[str, ...]:
        return tuple(sorted(self.keys))


_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)  # narrowest first
_ORDERABLE = (T.NumericType, T.StringType, T.CharType, T.VarcharType, T.DateType, T.TimestampType,
              T.TimestampNTZType, T.BooleanType, T.BinaryType, T.DayTimeIntervalType, T.YearMonthIntervalType)


def is_orderable(dtype: T.DataType) -> bool:
    """True for the types Spark sorts natively (atomic ones, and arrays/structs of them)."""
    if isinstance(dtype, T.ArrayType):
        return is_orderable(dtype.elementType)
    if isinstance(dtype, T.StructType):
        return all(is_orderable(f.dataType) for f in dtype.fields)
    return isinstance(dtype, _ORDERABLE)


def check_orderable(df: DataFrame, column: str, what: str) -> None:
    """A tie-breaker must be of a type Spark can order (not a map, variant, ...)."""
    dtype = df.schema[column].dataType
    if not is_orderable(dtype):
        raise SchemaError(what, column, "a tie-breaker of an orderable type (number, decimal, string, date, "
                          "timestamp, boolean, binary)", dtype.simpleString())


def key_type(*types: T.DataType) -> T.DataType:
    """The type keys of ``types`` are compared in: the widest integer type among them (never narrower).

    Non-integer keys must all have one type (``check_key_types``), which is returned.
    """
    if all(isinstance(t, _INTEGRAL) for t in types):
        return max(types, key=lambda t: next(i for i, c in enumerate(_INTEGRAL) if isinstance(t, c)))
    return types[0]


def check_key_types(labels: DataFrame, df: DataFrame, keys: dict[str, str], what: str) -> None:
    """Each label key column must have its table column's type (integer widths may differ).

    A silent cast (string ids onto long ids) would turn unparseable keys into nulls and lose their
    features, so it is an error instead. Integer keys are compared in the wider type (``key_type``).
    """
    for label_col, table_col in keys.items():
        want, got = labels.schema[label_col].dataType, df.schema[table_col].dataType
        if want != got and not (isinstance(want, _INTEGRAL) and isinstance(got, _INTEGRAL)):
            raise SchemaError(what, table_col, f"the type of label key '{label_col}' ({want.simpleString()}); "
                              "cast one side explicitly", got.simpleString())


def unpack_labels(labels: DataFrame, payload: str, key_cols: dict[str, str],
                  key_types: dict[str, T.DataType]) -> list[Column]:
    """The columns of ``labels``, in order, out of the ``payload`` struct a pass carried them in.

    A key column the pass shuffled by unchanged (``key_cols``: label column -> the pass's key
    column, compared in ``key_types[label column]``, the label column's own type) is read from
    that key column instead: the same values, and the result stays hash-partitioned by it, so a
    later pass on the same key (the aggregations after the join) does not exchange the labels again.
    """
    return [F.col(key_cols[c]).alias(c) if c in key_cols and key_types[c] == labels.schema[c].dataType
            else F.col(payload).getField(c).alias(c) for c in labels.columns]
