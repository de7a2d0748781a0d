"""Typed configuration models. One model per concern, composed into job configs.

Every model forbids unknown keys, so a typo in YAML is an error naming the key, never a silently
ignored setting. Names that reach Spark or Delta (features, entity keys, tables) are identifiers
checked here once, so no later code pastes unchecked text into SQL.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from enum import Enum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""A feature, key or table name: letters, digits and underscores, not starting with a digit."""

HBaseTableName = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_]+:)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
"""An HBase table name, optionally with a namespace (``ns:table``)."""

URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def absolute_path(path: str) -> str:
    """A relative local path made absolute (from the current directory), once, where config is loaded.

    URIs (``s3a://...``, ``file:/...``) and absolute paths are returned as they are, so on a cluster
    a scheme-less absolute path keeps meaning the cluster's default file system.

    >>> absolute_path("s3a://bucket/fs")
    's3a://bucket/fs'
    """
    if URI_SCHEME.match(path) or os.path.isabs(path):
        return path
    return os.path.abspath(path)


PathText = Annotated[str, StringConstraints(pattern=r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?[^\s'\"`;]+$")]
"""A local path or URI as written (no whitespace or quotes); for config file references."""

StoragePath = Annotated[PathText, AfterValidator(absolute_path)]
"""Where data lives: a local path (made absolute when the config is loaded) or a URI
(``s3a://bucket/prefix``, ``file:///...``, kept as it is); no whitespace or quotes."""


RESERVED_COLUMNS = frozenset({"event_ts", "snapshot_id"})
"""Columns every offline feature table has; features and key parts cannot take these names."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Codec(str, Enum):
    """How a cell's bytes decode into a feature value (big-endian, as HBase's ``Bytes`` writes)."""

    INT64 = "int64"
    INT32 = "int32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"
    JSON = "json"
    VECTOR_F32 = "vector_f32"
    INT64_LIST = "int64_list"


class KeyPartType(str, Enum):
    INT64 = "int64"
    INT32 = "int32"
    STRING = "string"


# --- HBase feature tables --------------------------------------------------------------------


class ColumnSpec(StrictModel):
    """One HBase column (``family:qualifier``) and the feature it holds."""

    column: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$")]
    feature: Identifier
    codec: Codec
    dim: int | None = Field(default=None, ge=1, le=65536, description="vector dimension (vector_f32 only)")

    @model_validator(mode="after")
    def _dim_matches_codec(self) -> ColumnSpec:
        if self.codec is Codec.VECTOR_F32 and self.dim is None:
            raise ValueError("codec vector_f32 needs 'dim' (the embedding dimension)")
        if self.codec is not Codec.VECTOR_F32 and self.dim is not None:
            raise ValueError(f"'dim' applies only to codec vector_f32, not {self.codec.value}")
        return self

    @property
    def family(self) -> str:
        return self.column.split(":", 1)[0]


class SaltSpec(StrictModel):
    """A hash salt prefix on the row key: ``bytes`` leading bytes = crc32(rest) % ``buckets``."""

    bytes: int = Field(default=1, ge=1, le=1)
    buckets: int = Field(ge=2, le=256)


class KeyPart(StrictModel):
    name: Identifier
    type: KeyPartType
    length: int | None = Field(default=None, ge=1, description="fixed byte length of a binary string part")


class RowKeySpec(StrictModel):
    """How a row key decodes into entity key columns.

    Binary keys (``separator`` unset) are a concatenation of big-endian int64/int32 parts and
    strings (fixed ``length``, or the remainder when last). Delimited keys are UTF-8 text split on
    ``separator``, each part then parsed as its type.
    """

    salt: SaltSpec | None = None
    separator: str | None = Field(default=None, min_length=1, max_length=4)
    parts: list[KeyPart] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_parts(self) -> RowKeySpec:
        names = [p.name for p in self.parts]
        if len(set(names)) != len(names):
            raise ValueError(f"key part names must be unique, got {names}")
        if self.separator is None:
            for p in self.parts[:-1]:
                if p.type is KeyPartType.STRING and p.length is None:
                    raise ValueError(f"binary key part '{p.name}' is a string before the last part: give it a 'length'")
        return self

    @property
    def key_names(self) -> list[str]:
        return [p.name for p in self.parts]


class MaintenanceSpec(StrictModel):
    """Per-table Delta maintenance: compaction and retention."""

    zorder_by: list[Identifier] = Field(default_factory=list)
    vacuum_retention_hours: int = Field(default=168, ge=0)
    log_retention_days: int = Field(default=30, ge=1)
    retention: timedelta | None = Field(
        default=None, description="raw history older than this (before the latest as-of) leaves the hot table")
    cold_root: StoragePath | None = Field(
        default=None, description="cold tier for that history, e.g. a cheaper bucket (table at <cold_root>/<table>); "
                                  "unset: the rows are dropped")


class StateSpec(StrictModel):
    """Per-table feature state (``fstore_batch.storage.delta.state``), kept by every snapshot."""

    enabled: bool = Field(default=True, description="keep the compacted state that daily builds read")
    keys: list[Identifier] | None = Field(
        default=None, description="entity key the state is kept by (default: every row-key part); joins on "
                                  "other keys read the history")
    events: int = Field(default=0, ge=0, le=100_000,
                        description="newest events kept per key: the largest sequence `n` any training set needs")


class FeatureTableSpec(StrictModel):
    """How one HBase table maps to an offline feature table."""

    name: Identifier = Field(description="offline (Delta) table name")
    hbase_table: HBaseTableName
    row_key: RowKeySpec
    columns: list[ColumnSpec] = Field(min_length=1)
    history: bool = Field(default=False, description="keep every retained cell version, not only the latest")
    max_versions: int = Field(default=1, ge=1, le=1000, description="versions kept by the HBase column family")
    ttl: timedelta | None = Field(default=None, description="feature TTL for point-in-time joins")
    maintenance: MaintenanceSpec = Field(default_factory=MaintenanceSpec)
    state: StateSpec = Field(default_factory=StateSpec)
    max_bad_fraction: float = Field(default=0.01, ge=0.0, le=1.0,
                                    description="fail the snapshot when more than this fraction of cells is quarantined")

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureTableSpec:
        feats = [c.feature for c in self.columns]
        cols = [c.column for c in self.columns]
        clash = set(feats) & set(self.row_key.key_names)
        for what, values in (("feature", feats), ("column", cols)):
            dup = sorted({v for v in values if values.count(v) > 1})
            if dup:
                raise ValueError(f"unique {what} names, got duplicates {dup}")
        if clash:
            raise ValueError(f"feature names distinct from row-key parts, got {sorted(clash)} in both")
        unknown = sorted(set(self.state.keys or []) - set(self.row_key.key_names))
        if unknown:
            raise ValueError(f"state.keys among the row-key parts {self.row_key.key_names}, got {unknown}")
        return self

    @property
    def state_keys(self) -> list[str]:
        """The entity key of the table's feature state."""
        return list(self.state.keys or self.row_key.key_names)

    @property
    def families(self) -> list[str]:
        return sorted({c.family for c in self.columns})


# --- runtime ---------------------------------------------------------------------------------


class HBaseTransport(str, Enum):
    BUFFERED = "buffered"
    FRAMED = "framed"


class HBaseProtocol(str, Enum):
    BINARY = "binary"
    COMPACT = "compact"


class HBaseConfig(StrictModel):
    """Where the HBase Thrift (thrift1) server is and how to talk to it."""

    host: str = "127.0.0.1"
    port: int = Field(default=9090, ge=1, le=65535)
    timeout_ms: int = Field(default=30_000, ge=100)
    transport: HBaseTransport = HBaseTransport.BUFFERED
    protocol: HBaseProtocol = HBaseProtocol.BINARY
    scan_batch_size: int = Field(default=1000, ge=1, le=100_000)
    version_fetch_threads: int = Field(
        default=4, ge=1, le=64,
        description="history tables: concurrent getVerTs calls per region task (each its own connection)")
    max_retries: int = Field(default=5, ge=0, le=100, description="reconnects per region before failing")
    retry_backoff_ms: int = Field(default=500, ge=0, description="first backoff; doubles per retry")
    table_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+$")


class SparkConfig(StrictModel):
    """SparkSession settings. ``master`` applies only when spark-submit did not set one."""

    app_name: str = "fstore-batch"
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, v: object) -> object:
        if isinstance(v, dict):
            return {str(k): (str(val).lower() if isinstance(val, bool) else str(val)) for k, val in v.items()}
        return v


class StorageConfig(StrictModel):
    """Where offline tables live: a local folder or an object-store URI (``s3a://...``)."""

    root: StoragePath = Field(default=".data/delta", validate_default=True)

    def table_path(self, name: str) -> str:
        if not re.match(IDENTIFIER_PATTERN, name):
            raise ValueError(f"not a table name: {name!r}")
        return self.root.rstrip("/") + "/" + name


class FeatureStoreConfig(StrictModel):
    """The config of a feature store: connections, storage and its HBase feature tables."""

    hbase: HBaseConfig = Field(default_factory=HBaseConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    tables: list[FeatureTableSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_tables(self) -> FeatureStoreConfig:
        names = [t.name for t in self.tables]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"unique table names, got duplicates {dup}")
        return self

    def table(self, name: str) -> FeatureTableSpec:
        for t in self.tables:
            if t.name == name or t.hbase_table == name:
                return t
        from fstore_batch.errors import ConfigError

        raise ConfigError(f"no table '{name}' in config; known tables: {', '.join(t.name for t in self.tables) or 'none'}")
