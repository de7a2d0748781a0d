"""Temporal sampling of label logs: a time window and per-stratum downsampling with weights.

Deterministic: whether a label is kept depends only on a hash of its ``hash_columns`` and the
seed, never on partitioning or run order, so a rebuild keeps exactly the same rows. A kept row of
a stratum sampled at rate ``r`` gets weight ``1 / r`` (unsampled rows weight 1), so weighted
metrics and losses stay unbiased.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fstore_batch.errors import SchemaError

_HASH_RANGE = 1 << 53  # a uniform double in [0, 1) from 53 hash bits
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_lit(value: datetime) -> Column:
    """A TIMESTAMP literal for ``value`` (naive means UTC), exact for every year 1..9999.

    ``F.lit(datetime)`` goes through ``java.sql.Timestamp``, whose hybrid Julian calendar shifts
    times before 1582-10-15 by days; microseconds since the epoch do not.
    """
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return F.timestamp_micros(F.lit((aware - _EPOCH) // timedelta(microseconds=1)))


@dataclass(frozen=True)
class Stratum:
    """Labels whose columns equal ``where`` (all of them) are kept at ``rate`` (0 < rate <= 1)."""

    where: Mapping[str, object]
    rate: float


@dataclass(frozen=True)
class LabelSampling:
    """What to keep: labels with ``start <= ts < end`` (either bound optional), then per stratum."""

    hash_columns: Sequence[str]
    strata: Sequence[Stratum] = field(default_factory=tuple)
    start: datetime | None = None
    end: datetime | None = None
    seed: int = 0
    weight_column: str = "sample_weight"


def sample_fraction(columns: Sequence[str], seed: int) -> Column:
    """A deterministic pseudo-uniform value in [0, 1) per row, from a hash of ``columns``."""
    return F.pmod(F.xxhash64(F.lit(seed), *[F.col(c) for c in columns]), F.lit(_HASH_RANGE)) / float(_HASH_RANGE)


def sample_labels(labels: DataFrame, spec: LabelSampling, *, ts: str) -> DataFrame:
    """Keep the labels ``spec`` selects and add ``spec.weight_column`` (1 / the stratum's rate).

    The first stratum a row matches decides its rate; rows matching none are all kept.

    >>> negatives = Stratum({"label": 0}, rate=0.1)  # keep 10% of negatives, weight 10
    >>> sample_labels(labels, LabelSampling(["request_id"], [negatives]), ts="event_ts")  # doctest: +SKIP
    """
    for col in [*spec.hash_columns, ts, *[c for s in spec.strata for c in s.where]]:
        if col not in labels.columns:
            raise SchemaError("labels", col, "a column used by sampling")
    if spec.weight_column in labels.columns:
        raise SchemaError("labels", spec.weight_column, "a free name for the sampling weight (it already exists)")
    out = labels
    if spec.start is not None:
        out = out.where(F.col(ts) >= timestamp_lit(spec.start))
    if spec.end is not None:
        out = out.where(F.col(ts) < timestamp_lit(spec.end))
    rate: Column = F.lit(1.0)
    for stratum in reversed(spec.strata):  # the first match wins: build the CASE from the last one
        matches = F.lit(True)
        for col, value in stratum.where.items():
            matches = matches & (F.col(col) == F.lit(value))
        rate = F.when(matches, F.lit(float(stratum.rate))).otherwise(rate)
    return (out.withColumn(spec.weight_column, 1.0 / rate)
            .where(sample_fraction(spec.hash_columns, spec.seed) < 1.0 / F.col(spec.weight_column)))
