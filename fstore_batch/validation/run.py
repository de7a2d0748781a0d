"""The one entry point of skew validation: ``validate_skew`` (DataFrames in, a report out) and
``run_validation`` (paths in; reads, rebuilds, validates, writes the report and metrics).

Work happens on executors: the skew table (the matched log and training rows) is persisted once
(memory, spilling to disk) and read by three passes: coverage (counts), every metric of every
feature overall and per hour with sketches and worst rows (``metrics.summarise``), and the
categorical value counts (``distributions``); Great Expectations checks the training set's
schema and nulls and the computed results. Only one result row per pass comes back to the driver.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fstore_batch.config.models import FeatureStoreConfig
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.storage.files import location
from fstore_batch.validation import io
from fstore_batch.validation.config import SkewConfig
from fstore_batch.validation.distributions import distances
from fstore_batch.validation.expectations import (
    preload,
    run_suites,
    skew_facts,
    skew_suite,
    training_suite,
)
from fstore_batch.validation.features import check_log_columns, resolve_features
from fstore_batch.validation.html import write_html
from fstore_batch.validation.match import MATCHED, Sides, coverage, match_rows
from fstore_batch.validation.metrics import summarise
from fstore_batch.validation.report import (
    FeatureResult,
    SkewReport,
    append_metrics,
    write_json,
)
from fstore_batch.validation.staleness import stale_metrics
from fstore_batch.validation.verdict import Breach, judge

log = logging.getLogger(__name__)


def new_run_id(name: str) -> str:
    return f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def validate_skew(spark: SparkSession, cfg: SkewConfig, online_log: DataFrame, training: DataFrame, *,
                  ts_cfg: TrainingSetConfig | None = None, feature_tables: dict[str, DataFrame] | None = None,
                  run_id: str | None = None, docs_dir: str | None = None, log_name: str = "online log",
                  offline_name: str = "training set") -> SkewReport:
    """Compare what was served (``online_log``) with what training sees (``training``).

    ``feature_tables`` (``{table: DataFrame}``) enable the staleness search for features whose
    source ``ts_cfg`` names. Nothing is written except Great Expectations' Data Docs (``docs_dir``).

    >>> report = validate_skew(spark, cfg, spark.read.parquet(".data/sample/online_log"),
    ...                        spark.read.format("delta").load(".data/delta/training/ctr_sample"),
    ...                        ts_cfg=ts_cfg)  # doctest: +SKIP
    >>> print(report.summary()); report.failed  # doctest: +SKIP
    """
    run_id = run_id or new_run_id(cfg.name)
    if cfg.expectations.enabled:
        preload()  # GX's import overlaps with the Spark jobs below
    offline_ts = cfg.offline_ts or (ts_cfg.labels.ts if ts_cfg else "event_ts")
    check_log_columns(cfg, online_log, training, offline_ts, log_name=log_name, offline_name=offline_name)
    features = resolve_features(cfg, ts_cfg, online_log, training, log_name=log_name, offline_name=offline_name)
    spec = cfg.online_log
    sides = Sides(spec.request_id, spec.ts, offline_ts, list(spec.keys))
    started = time.monotonic()
    sc = spark.sparkContext
    timings: dict[str, float] = {}

    def phase(name: str) -> None:
        now = time.monotonic()
        timings[name] = now
        sc.setJobDescription(f"skew {run_id}: {name}")
    phase("match")
    table = match_rows(online_log, training, sides, features, fallback=cfg.matching.fallback,
                       time_tolerance=cfg.matching.time_tolerance)
    try:
        phase("coverage")
        cov = coverage(table, sides, sample_rate=spec.sample_rate)
        matched = table.where(F.col("_status") == MATCHED)
        phase("metrics")
        summary = summarise(matched, features, worst_rows=cfg.report.worst_rows)
        metrics = summary.metrics
        phase("categorical distances")
        dist, tops = distances(matched, features)
        for name, d in dist.items():
            metrics[name].update(d)
        phase("staleness search")
        for f in features:
            m = metrics[f.name]
            n_vm = round((m.get("value_mismatch_rate") or 0.0) * (m.get("n") or 0))
            hist = (feature_tables or {}).get(f.source.table) if f.source else None
            if cfg.staleness.enabled and hist is not None and n_vm:
                m.update(stale_metrics(table, f, hist, max_lag=cfg.staleness.max_lag,
                                       n_matched=int(m.get("n") or 0), n_value_mismatch=n_vm))
        results = [FeatureResult(f, metrics[f.name], judge(f.name, f.kind, metrics[f.name], f.thresholds,
                                                           min_rows=cfg.min_matched_rows),
                                 histogram=summary.histograms.get(f.name), top_categories=tops.get(f.name))
                   for f in features]
        for r in results:
            if r.verdict.breaches or r.metrics.get("mismatch_rate"):
                r.worst_rows = summary.worst.get(r.feature.name, [])
        expectations = None
        if cfg.expectations.enabled:
            phase("expectations")
            by_id = spec.request_id is not None and list(cfg.expectations.unique_by) == [spec.request_id]
            expectations = run_suites({
                "training_set": (training, training_suite(cfg.expectations, features, ts=offline_ts,
                                                          keys=list(spec.keys), columns=training.columns,
                                                          request_id=spec.request_id)),
                "skew_table": (skew_facts(spark, cov, metrics, features), skew_suite(features, unique_request_ids=by_id)),
            }, docs_dir=docs_dir)
        phase("end")
    finally:
        table.unpersist()
        sc.setJobDescription(None)  # type: ignore[arg-type]
    cov_breach = None
    if cov.matched < cfg.min_matched_rows:  # nothing (or too little) validated is a failure
        cov_breach = Breach("*", "matched_rows", float(cov.matched), float(cfg.min_matched_rows))
    elif cfg.min_match_coverage is not None and cov.online_match_rate < cfg.min_match_coverage:
        cov_breach = Breach("*", "online_match_rate", cov.online_match_rate, cfg.min_match_coverage)
    report = SkewReport(run_id, datetime.now(UTC), cfg.name, cov, results, summary.hourly, expectations, cov_breach)
    names = list(timings)
    report.timings = {a: round(timings[b] - timings[a], 2) for a, b in itertools.pairwise(names)}
    log.info("skew %s: %d features, %d breaches in %.1f s (%s)", run_id, len(results), len(report.breaches),
             time.monotonic() - started, ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()))
    return report


def run_validation(spark: SparkSession, cfg: SkewConfig, *, online_log_path: str, training_set_path: str | None,
                   store: FeatureStoreConfig | None, ts_cfg: TrainingSetConfig | None, run_id: str | None = None,
                   report_dir: str | None = None, write_metrics: bool = True) -> SkewReport:
    """Read the log and the offline side (or rebuild it), validate, write report + metrics."""
    run_id = run_id or new_run_id(cfg.name)
    folder = location(report_dir or cfg.report.dir) / run_id  # joined as text: s3a:// stays a URI
    log_df = io.read_online_log(spark, online_log_path, cfg.online_log)
    if training_set_path:
        training, inputs = io.read_training_set(spark, training_set_path)
        offline_name = f"training set {training_set_path}"
    else:
        if ts_cfg is None or store is None:
            from fstore_batch.errors import ConfigError

            raise ConfigError(f"skew config '{cfg.name}': give --training-set PATH, or 'training_set' and "
                              "'store_config' in the config to rebuild the features for the logged requests")
        training, inputs = io.rebuild_offline(spark, ts_cfg, store, log_df, cfg.online_log, str(folder / "offline"))
        offline_name = f"rebuilt training rows {folder / 'offline'}"
    tables = sorted({r.table for r in [*(ts_cfg.features if ts_cfg else []), *(ts_cfg.sequences if ts_cfg else [])]})
    hist = io.feature_tables(spark, inputs, store, tables) if cfg.staleness.enabled else {}
    report = validate_skew(spark, cfg, log_df, training, ts_cfg=ts_cfg, feature_tables=hist, run_id=run_id,
                           docs_dir=str(folder / "gx_docs") if cfg.expectations.enabled else None,
                           log_name=f"online log {online_log_path}", offline_name=offline_name)
    report.paths["json"] = str(folder / "report.json")
    report.paths["html"] = str(folder / "report.html")
    if report.expectations and report.expectations.get("data_docs"):
        report.paths["data_docs"] = report.expectations["data_docs"]
    if write_metrics and cfg.metrics_table:
        report.paths["metrics_table"] = cfg.metrics_table
        append_metrics(spark, report, cfg.metrics_table)
    write_json(report, folder)
    write_html(report, folder)
    return report
