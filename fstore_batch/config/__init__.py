"""Typed configuration: models and the one loader."""

from fstore_batch.config.loader import config_hash, load_config
from fstore_batch.config.models import (
    Codec,
    ColumnSpec,
    FeatureStoreConfig,
    FeatureTableSpec,
    HBaseConfig,
    KeyPart,
    KeyPartType,
    RowKeySpec,
    SaltSpec,
    SparkConfig,
    StorageConfig,
)

__all__ = [
    "Codec", "ColumnSpec", "FeatureStoreConfig", "FeatureTableSpec", "HBaseConfig", "KeyPart",
    "KeyPartType", "RowKeySpec", "SaltSpec", "SparkConfig", "StorageConfig", "config_hash", "load_config",
]
