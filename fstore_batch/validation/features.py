"""Which features to compare, how (their kind), and what a bad online log schema looks like.

A feature's kind is inferred from its offline column type unless configured: numbers ->
``numeric``; strings and booleans -> ``categorical``; arrays of floats -> ``embedding``; arrays
of integers or strings -> ``sequence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.errors import ConfigError, SchemaError, SchemaErrors
from fstore_batch.joins.aggregations import window_name
from fstore_batch.validation.config import (
    FeatureCheck,
    FeatureKind,
    SkewConfig,
    Thresholds,
    Tolerance,
)

NUMERIC_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
FLOAT_TYPES = (T.FloatType, T.DoubleType)
INT_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


@dataclass(frozen=True)
class FeatureSourceRef:
    """Where a feature's history lives (for the staleness search)."""

    table: str
    keys: dict[str, str]  # label column -> table column
    column: str
    ttl: timedelta | None
    ts: str | None = None  # the table's time column (sequences: the event time)
    n: int | None = None  # sequences: the last-N length (set only for a sequence feature)
    tie_breaker: str | None = None  # sequences: orders events with equal times
    columns: tuple[str, ...] = ()  # sequences: every column of the sequence (their hash orders ties)


@dataclass(frozen=True)
class Feature:
    """A resolved feature check. In the joined skew table its values are ``on__<name>``/``off__<name>``."""

    name: str
    online: str
    offline: str
    kind: FeatureKind
    tolerance: Tolerance
    thresholds: Thresholds
    dim: int | None = None
    top_k: int = 5
    source: FeatureSourceRef | None = None

    @property
    def on(self) -> str:
        return f"on__{self.name}"

    @property
    def off(self) -> str:
        return f"off__{self.name}"


def infer_kind(dtype: T.DataType) -> FeatureKind | None:
    if isinstance(dtype, NUMERIC_TYPES):
        return FeatureKind.NUMERIC
    if isinstance(dtype, T.StringType | T.BooleanType):
        return FeatureKind.CATEGORICAL
    if isinstance(dtype, T.ArrayType):
        if isinstance(dtype.elementType, FLOAT_TYPES):
            return FeatureKind.EMBEDDING
        if isinstance(dtype.elementType, (*INT_TYPES, T.StringType)):
            return FeatureKind.SEQUENCE
    return None


def default_checks(ts_cfg: TrainingSetConfig | None) -> tuple[list[FeatureCheck], dict[str, FeatureSourceRef]]:
    """Every feature and sequence column a training-set config produces, with its source table."""
    if ts_cfg is None:
        return [], {}
    checks, sources = [], {}
    for ref in ts_cfg.features:
        for f in ref.features:
            name = ref.prefix + f
            checks.append(FeatureCheck(name=name))
            sources[name] = FeatureSourceRef(ref.table, dict(ref.keys), f, ref.ttl)
    for seq in ts_cfg.sequences:
        checks += [FeatureCheck(name=f"{seq.name}_{c}", kind=FeatureKind.SEQUENCE) for c in seq.columns]
        for c in seq.columns:
            sources[f"{seq.name}_{c}"] = FeatureSourceRef(seq.table, dict(seq.keys), c, seq.max_age, ts=seq.ts, n=seq.n,
                                                          tie_breaker=seq.tie_breaker, columns=tuple(seq.columns))
    for agg in ts_cfg.aggregations:  # window aggregates are numbers
        checks += [FeatureCheck(name=f"{agg.name}_{f.column}_{op.value}_{window_name(w)}", kind=FeatureKind.NUMERIC)
                   for f in agg.features for op in f.ops for w in f.windows]
    return checks, sources


def resolve_features(cfg: SkewConfig, ts_cfg: TrainingSetConfig | None, log: DataFrame, offline: DataFrame,
                     *, log_name: str = "online log", offline_name: str = "training set") -> list[Feature]:
    """The features to compare; raise one error listing every missing or mistyped column."""
    defaults, sources = default_checks(ts_cfg)
    checks = list(cfg.features) or defaults
    if not checks:
        checks = _common_columns(cfg, log, offline)
    if not checks:
        raise ConfigError(f"skew config '{cfg.name}': no features to compare (list them under 'features:')")
    log_problems, off_problems, out = [], [], []
    for c in checks:
        online, offline_col = c.online or c.name, c.offline or c.name
        off_type = offline.schema[offline_col].dataType if offline_col in offline.columns else None
        on_type = log.schema[online].dataType if online in log.columns else None
        if off_type is None:
            off_problems.append(SchemaError(offline_name, offline_col, f"the offline column of feature '{c.name}'"))
        if on_type is None:
            log_problems.append(SchemaError(log_name, online, f"the served value of feature '{c.name}'"))
        if off_type is None or on_type is None:
            continue
        kind = c.kind or infer_kind(off_type)
        if kind is None:
            off_problems.append(SchemaError(offline_name, offline_col, "a number, string, boolean or array column",
                                            off_type.simpleString()))
            continue
        expected = _expected_type(kind, off_type)
        if not _compatible(kind, off_type, on_type):
            log_problems.append(SchemaError(log_name, online, f"{expected} like the offline column '{offline_col}'",
                                            on_type.simpleString()))
            continue
        out.append(Feature(c.name, online, offline_col, kind, c.tolerance or cfg.tolerance, cfg.thresholds_for(c.name),
                           dim=c.dim, top_k=c.top_k, source=sources.get(c.name)))
    _raise(log_name, log_problems)
    _raise(offline_name, off_problems)
    return out


def check_log_columns(cfg: SkewConfig, log: DataFrame, offline: DataFrame, offline_ts: str, *,
                      log_name: str = "online log", offline_name: str = "training set") -> None:
    """Request id, time and key columns on both sides: present and typed as expected."""
    spec = cfg.online_log
    log_problems, off_problems = [], []
    if spec.request_id is not None:
        for name, df, problems in ((log_name, log, log_problems), (offline_name, offline, off_problems)):
            p = _check_type(name, df, spec.request_id, "a request id (string or integer)",
                            lambda t: isinstance(t, (T.StringType, *INT_TYPES)))
            if p:
                problems.append(p)
    for name, df, col, problems in ((log_name, log, spec.ts, log_problems),
                                    (offline_name, offline, offline_ts, off_problems)):
        p = _check_type(name, df, col, "the request time: a timestamp with time zone (TIMESTAMP)",
                        lambda t: isinstance(t, T.TimestampType))
        if p is not None and col in df.columns and isinstance(df.schema[col].dataType, T.TimestampNTZType):
            p = SchemaError(name, col, "a timestamp with time zone (TIMESTAMP), not a naive TIMESTAMP_NTZ: "
                                       "write it as UTC (Parquet isAdjustedToUTC=true, or an ISO string with an offset)",
                            "timestamp_ntz")
        if p:
            problems.append(p)
    for key in spec.keys:
        for name, df, problems in ((log_name, log, log_problems), (offline_name, offline, off_problems)):
            p = _check_type(name, df, key, "an entity key (string or integer)",
                            lambda t: isinstance(t, (T.StringType, *INT_TYPES)))
            if p:
                problems.append(p)
    _raise(log_name, log_problems)
    _raise(offline_name, off_problems)


def _check_type(dataset: str, df: DataFrame, col: str, expected: str, ok) -> SchemaError | None:
    if col not in df.columns:
        return SchemaError(dataset, col, expected)
    t = df.schema[col].dataType
    return None if ok(t) else SchemaError(dataset, col, expected, t.simpleString())


def _raise(dataset: str, problems: list[SchemaError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise SchemaErrors(dataset, problems)


def _expected_type(kind: FeatureKind, off_type: T.DataType) -> str:
    return {FeatureKind.NUMERIC: "a number", FeatureKind.EMBEDDING: "an array of numbers",
            FeatureKind.SEQUENCE: f"an array of {_elem(off_type)}",
            FeatureKind.CATEGORICAL: off_type.simpleString()}[kind]


def _elem(t: T.DataType) -> str:
    return t.elementType.simpleString() if isinstance(t, T.ArrayType) else t.simpleString()


def _compatible(kind: FeatureKind, off: T.DataType, on: T.DataType) -> bool:
    if kind is FeatureKind.NUMERIC:
        return isinstance(on, NUMERIC_TYPES)
    if kind is FeatureKind.CATEGORICAL:
        return type(on) is type(off) or (isinstance(on, INT_TYPES) and isinstance(off, INT_TYPES))
    if not isinstance(on, T.ArrayType) or not isinstance(off, T.ArrayType):
        return False
    if kind is FeatureKind.EMBEDDING:
        return isinstance(on.elementType, NUMERIC_TYPES)
    same = type(on.elementType) is type(off.elementType)
    return same or (isinstance(on.elementType, INT_TYPES) and isinstance(off.elementType, INT_TYPES))


def _common_columns(cfg: SkewConfig, log: DataFrame, offline: DataFrame) -> list[FeatureCheck]:
    skip = {cfg.online_log.request_id, cfg.online_log.ts, *cfg.online_log.keys}
    return [FeatureCheck(name=c) for c in log.columns if c in offline.columns and c not in skip
            and infer_kind(offline.schema[c].dataType) is not None]
