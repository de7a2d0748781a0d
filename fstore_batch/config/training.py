"""Typed config of a training set: labels, feature references (pinned or latest), sequences, output."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

from pydantic import Field, model_validator

from fstore_batch.config.models import Identifier, StoragePath, StrictModel


class LabelFormat(str, Enum):
    PARQUET = "parquet"
    DELTA = "delta"
    JSON = "json"


class LabelSource(StrictModel):
    path: StoragePath
    format: LabelFormat = LabelFormat.PARQUET
    ts: Identifier = Field(default="event_ts", description="label time column (timestamp with zone)")


class FeatureRef(StrictModel):
    """Features of one offline table, as of a pinned Delta version or timestamp (default: latest)."""

    table: Identifier
    keys: dict[Identifier, Identifier] = Field(description="label column -> feature table column")
    features: list[Identifier] = Field(min_length=1)
    ttl: timedelta | None = None
    strict: bool = False
    prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_]*$")
    tie_breaker: Identifier | None = None
    version: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _keys(self) -> FeatureRef:
        if not self.keys:
            raise ValueError("at least one key mapping (label column: table column)")
        return self


class SequenceRef(StrictModel):
    name: Identifier
    table: Identifier
    keys: dict[Identifier, Identifier]
    columns: list[Identifier] = Field(min_length=1)
    ts: Identifier = "event_ts"
    n: int = Field(default=50, ge=1, le=10_000)
    max_age: timedelta | None = None
    version: int | None = Field(default=None, ge=0)


class TrainingSetConfig(StrictModel):
    name: Identifier
    labels: LabelSource
    features: list[FeatureRef] = Field(default_factory=list)
    sequences: list[SequenceRef] = Field(default_factory=list)
    output: StoragePath
