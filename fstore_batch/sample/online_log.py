"""A sample online serving log, with switchable, known injected faults.

What a perfectly consistent online system would have served for each request is the training
row itself; this module turns a built training set into that log and then injects faults,
per feature, at exact known rates.

Online log schema (Parquet, Delta or JSON lines; one row per served request):

============== =========================== ==============================================
column         type                        meaning
============== =========================== ==============================================
request_id     string                      the request (impression) id
user_id        bigint                      entity keys, named as in the labels
item_id        bigint
request_ts     timestamp (UTC)             when the request was served; JSON: ISO 8601
                                           with a zone (``2026-10-01T12:00:00.123Z``)
<feature>      as in the training set      each served value, named like its training
                                           column: numbers, strings, booleans,
                                           ``array<float>`` embeddings,
                                           ``array<bigint>`` sequences (newest first)
============== =========================== ==============================================

Faults (``FaultSpec``; see ``conf/skew/sample_faults.yaml``), one per feature:

* ``stale``: the value as of ``request_ts - lag`` (point-in-time join at the earlier time; for a
  sequence feature, the last-N events before the earlier time, and only where that is not empty);
* ``scale`` (``factor``) and ``round`` (``decimals``): a transformation bug;
* ``missing``: served null;
* ``noise``: embedding plus uniform noise in ``[-sigma, sigma]`` per element;
* ``truncate``: the sequence cut to its first ``keep`` elements;
* ``recase``: a string served upper-cased (lower-cased if it already is): an encoding difference;
* ``drop_dim``: an embedding served without its last element (wrong dimension).

``rate`` is the fraction of *all* logged requests whose served value the fault changes
(compared exactly as the validator compares): among the rows it would change, the
``round(rate * rows)`` with the smallest ``xxhash64(request_id, seed, feature)`` get it. So the
realised rate is exact and reproducible; a rate the data cannot reach is an error.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

from pydantic import Field
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.config.models import Identifier, StrictModel
from fstore_batch.config.training import SequenceRef, TrainingSetConfig
from fstore_batch.errors import ConfigError
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.validation.compare import ident, values_match
from fstore_batch.validation.config import Tolerance
from fstore_batch.validation.features import infer_kind


class FaultKind(str, Enum):
    STALE = "stale"
    SCALE = "scale"
    ROUND = "round"
    MISSING = "missing"
    NOISE = "noise"
    TRUNCATE = "truncate"
    RECASE = "recase"
    DROP_DIM = "drop_dim"


class Fault(StrictModel):
    feature: Identifier
    kind: FaultKind
    rate: float
    lag: timedelta | None = None
    factor: float = 1.1
    decimals: int = 2
    sigma: float = 0.05
    keep: int = 5


class FaultSpec(StrictModel):
    seed: int = 0
    faults: list[Fault] = Field(default_factory=list)


def serve(training: DataFrame, *, request_id: str, ts: str, keys: list[str], features: list[str],
          request_ts: str = "request_ts") -> DataFrame:
    """The clean log: what a consistent online system served (the training values)."""
    return training.select(F.col(request_id), *[F.col(k) for k in keys], F.col(ts).alias(request_ts),
                           *[F.col(f) for f in features])


def inject_faults(log: DataFrame, spec: FaultSpec, *, request_id: str = "request_id", request_ts: str = "request_ts",
                  ts_cfg: TrainingSetConfig | None = None, feature_tables: dict[str, DataFrame] | None = None,
                  tolerance: Tolerance | None = None) -> tuple[DataFrame, dict[str, dict[str, float]]]:
    """``log`` with ``spec``'s faults; ``{feature: {"rows", "rate", "eligible"}}`` as injected."""
    tol = tolerance or Tolerance()
    names = [f.feature for f in spec.faults]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"fault spec: one fault per feature, got several for {dup}")
    total = log.count()
    out, realised = log, {}
    for fault in spec.faults:
        if fault.feature not in out.columns:
            raise ConfigError(f"fault spec: feature '{fault.feature}' is not a column of the log")
        dtype = out.schema[fault.feature].dataType
        kind = infer_kind(dtype)
        clean = F.col(fault.feature)
        if fault.kind is FaultKind.STALE:
            out, faulty = _stale(out, fault, request_id, request_ts, ts_cfg, feature_tables or {})
        else:
            faulty = _transform(fault, clean, F.col(request_id)).cast(dtype)
        changes = ~F.expr(values_match(kind, "__faulty", ident(fault.feature), tol))
        if fault.kind is not FaultKind.MISSING:
            changes = changes & faulty.isNotNull()  # e.g. no version yet at the stale time: that is not staleness
        if fault.kind is FaultKind.STALE and isinstance(dtype, T.ArrayType):
            changes = changes & (F.size(faulty) > 0)  # no events yet at the stale time: not a lagging cache
        k = round(fault.rate * total)
        h = F.xxhash64(F.col(request_id), F.lit(spec.seed), F.lit(fault.feature))
        staged = out.withColumn("__faulty", faulty).withColumn("__changes", changes).withColumn("__h", h)
        # The k eligible rows with the smallest hashes: cut at the k-th smallest hash. One pass: the
        # observation counts every eligible row on its way into the top k.
        counted = Observation(f"eligible {fault.feature}")
        top = (staged.where("__changes").select("__h").observe(counted, F.count(F.lit(1)).alias("rows"))
               .orderBy("__h").limit(max(k, 1)).agg(F.max("__h")).first()[0])
        eligible = counted.get["rows"]
        if eligible < k:
            raise ConfigError(f"fault spec: {fault.kind.value} on '{fault.feature}' at rate {fault.rate} needs {k} "
                              f"rows it would change, but only {eligible} of {total} qualify")
        cut = top if k else None
        hit = F.col("__changes") & (F.col("__h") <= F.lit(cut)) if k else F.lit(False)
        out = staged.withColumn(fault.feature, F.when(hit, F.col("__faulty")).otherwise(clean))
        out = out.select(*log.columns).localCheckpoint()  # the next fault starts from here, not from scratch
        realised[fault.feature] = {"kind": fault.kind.value, "rows": k, "rate": k / total if total else 0.0,
                                   "eligible": eligible}
    return out, realised


def _transform(fault: Fault, clean: Column, rid: Column) -> Column:
    if fault.kind is FaultKind.SCALE:
        return clean * F.lit(fault.factor)
    if fault.kind is FaultKind.ROUND:
        return F.round(clean.cast("double"), fault.decimals)
    if fault.kind is FaultKind.MISSING:
        return F.lit(None)
    if fault.kind is FaultKind.NOISE:
        return F.transform(clean, lambda x, i: x + F.lit(fault.sigma) * (
            (F.abs(F.xxhash64(rid, i)) % 2001).cast("double") / 1000.0 - 1.0))
    if fault.kind is FaultKind.TRUNCATE:
        return F.slice(clean, 1, fault.keep)
    if fault.kind is FaultKind.RECASE:
        return F.when(clean == F.upper(clean), F.lower(clean)).otherwise(F.upper(clean))
    if fault.kind is FaultKind.DROP_DIM:
        return F.slice(clean, 1, F.size(clean) - 1)
    raise ConfigError(f"fault kind {fault.kind.value} needs its own handler")


def _stale(log: DataFrame, fault: Fault, request_id: str, request_ts: str, ts_cfg: TrainingSetConfig | None,
           tables: dict[str, DataFrame]) -> tuple[DataFrame, Column]:
    """Join the value as of ``request_ts - lag`` (the same point-in-time join as training)."""
    if fault.lag is None:
        raise ConfigError(f"fault spec: stale fault on '{fault.feature}' needs a 'lag' (e.g. P2D)")
    seq = next(((s, c) for s in (ts_cfg.sequences if ts_cfg else []) for c in s.columns
                if f"{s.name}_{c}" == fault.feature), None)
    if seq is not None and seq[0].table in tables:
        return _stale_sequence(log, fault.lag, request_id, request_ts, seq[0], seq[1], tables[seq[0].table])
    ref = next(((r, f) for r in (ts_cfg.features if ts_cfg else []) for f in r.features
                if r.prefix + f == fault.feature), None)
    if ref is None or ref[0].table not in tables:
        raise ConfigError(f"fault spec: stale fault on '{fault.feature}' needs its feature table "
                          "(a feature of the training-set config with its Delta table)")
    r, col = ref
    labels = log.select(F.col(request_id).alias("__rid"), *[F.col(k) for k in r.keys],
                        (F.col(request_ts) - F.expr(f"INTERVAL {int(fault.lag.total_seconds())} SECONDS")).alias("__as_of"))
    src = FeatureSource(r.table, tables[r.table], dict(r.keys), [col], ttl=r.ttl, strict=r.strict,
                        prefix="__stale_", tie_breaker=r.tie_breaker)
    old = point_in_time_join(labels, [src], label_ts="__as_of").select("__rid", F.col(f"__stale_{col}").alias("__old"))
    joined = log.join(old, log[request_id] == old["__rid"], "left").drop("__rid")
    return joined, F.col("__old")


def _stale_sequence(log: DataFrame, lag: timedelta, request_id: str, request_ts: str, seq: SequenceRef, column: str,
                    events: DataFrame) -> tuple[DataFrame, Column]:
    """The last-N events before ``request_ts - lag`` (the same sequence builder as training)."""
    labels = log.select(F.col(request_id).alias("__rid"), *[F.col(k) for k in seq.keys],
                        (F.col(request_ts) - F.expr(f"INTERVAL {int(lag.total_seconds())} SECONDS")).alias("__as_of"))
    src = SequenceSource(f"__stale_{seq.name}", events, dict(seq.keys), list(seq.columns), n=seq.n, ts=seq.ts,
                         max_age=seq.max_age, tie_breaker=seq.tie_breaker)
    old = last_n_events(labels, src, label_ts="__as_of").select("__rid", F.col(src.output[column]).alias("__old"))
    joined = log.join(old, log[request_id] == old["__rid"], "left").drop("__rid")
    return joined, F.col("__old")
