"""The skew verbs of the ``fstore-batch`` CLI: ``validate-skew`` and ``sample-online-log``.

Registered by ``fstore_batch.cli.build_parser``; heavy imports happen inside the handlers, so
``fstore-batch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from fstore_batch.logs import emit_metrics

log = logging.getLogger("fstore_batch.cli")
DEFAULT_SKEW_CONFIG = "conf/skew/sample.yaml"
DEFAULT_FAULTS = "conf/skew/sample_faults.yaml"


def _configs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from fstore_batch.config import FeatureStoreConfig, load_config
    from fstore_batch.config.training import TrainingSetConfig
    from fstore_batch.validation.config import SkewConfig

    cfg = load_config(SkewConfig, args.config, overrides=args.overrides, env={})
    store = load_config(FeatureStoreConfig, cfg.store_config) if cfg.store_config else FeatureStoreConfig()
    ts_cfg = load_config(TrainingSetConfig, cfg.training_set, env={}) if cfg.training_set else None
    return cfg, store, ts_cfg


def cmd_validate_skew(args: argparse.Namespace) -> int:
    from fstore_batch.errors import ConfigError, SkewThresholdBreached, ValidationFailed
    from fstore_batch.session import build_session
    from fstore_batch.validation.config import LogFormat
    from fstore_batch.validation.run import run_validation

    cfg, store, ts_cfg = _configs(args)
    log_path = args.online_log or cfg.online_log.path
    if not log_path:
        raise ConfigError(f"skew config {args.config}: no online log; give --online-log PATH or online_log.path")
    if args.format:
        cfg = cfg.model_copy(update={"online_log": cfg.online_log.model_copy(update={"format": LogFormat(args.format)})})
    started = time.monotonic()
    spark = build_session(store.spark)
    report = run_validation(spark, cfg, online_log_path=log_path, training_set_path=args.training_set, store=store,
                            ts_cfg=ts_cfg, run_id=args.run_id, report_dir=args.report_dir,
                            write_metrics=not args.no_metrics_table)
    print(report.summary())
    print(f"report: {report.paths['html']} (JSON: {report.paths['json']})")
    c = report.coverage
    exp = report.expectations
    emit_metrics("validate-skew", {
        "run_id": report.run_id, "config": cfg.name, "failed": report.failed, "online_rows": c.online_rows,
        "offline_rows": c.offline_rows, "matched": c.matched, "online_only": c.online_only,
        "offline_only": c.offline_only, "breached_features": sorted({b.feature for b in report.breaches}),
        "verdicts": {r.feature.name: r.verdict.verdict.value for r in report.features},
        "expectations_success": None if exp is None else exp["success"], "report": report.paths.get("html"),
        "seconds": round(time.monotonic() - started, 2), "phases": report.timings,
    })
    if report.failed:
        raise SkewThresholdBreached([(b.feature, b.metric, b.value, b.limit) for b in report.breaches],
                                    report.paths.get("html"))
    if exp is not None and not exp["success"] and cfg.expectations.fail_run:
        failed = [f"{n}: {x['expectation']}({x['column']})" for n, s in exp["suites"].items() for x in s["failed"]]
        raise ValidationFailed("expectations failed: " + "; ".join(failed))
    return 0


def cmd_sample_online_log(args: argparse.Namespace) -> int:
    from fstore_batch.config import load_config
    from fstore_batch.errors import ConfigError
    from fstore_batch.sample.online_log import FaultSpec, inject_faults, serve
    from fstore_batch.session import build_session
    from fstore_batch.validation.features import default_checks
    from fstore_batch.validation.io import feature_tables, read_training_set

    cfg, store, ts_cfg = _configs(args)
    if ts_cfg is None:
        raise ConfigError(f"skew config {args.config}: 'training_set' is needed to serve a sample log")
    spec = cfg.online_log
    if spec.request_id is None:
        raise ConfigError(f"skew config {args.config}: the sample log needs online_log.request_id")
    faults = FaultSpec() if args.clean else load_config(FaultSpec, args.faults, env={})
    started = time.monotonic()
    spark = build_session(store.spark)
    training, inputs = read_training_set(spark, args.training_set or ts_cfg.output)
    names = [f.name for f in cfg.features] or [c.name for c in default_checks(ts_cfg)[0]]
    clean = serve(training, request_id=spec.request_id, ts=ts_cfg.labels.ts, keys=list(spec.keys),
                  features=names, request_ts=spec.ts)
    tables = feature_tables(spark, inputs, store, sorted({r.table for r in ts_cfg.features}))
    out, injected = inject_faults(clean, faults, request_id=spec.request_id, request_ts=spec.ts, ts_cfg=ts_cfg,
                                  feature_tables=tables, tolerance=cfg.tolerance)
    out.write.format(args.format).mode("overwrite").option("overwriteSchema", "true").save(args.out)
    for name, f in injected.items():
        log.info("fault %-10s on %-18s %5d rows (%.2f%% of the log; %d could be changed)",
                 f["kind"], name, f["rows"], 100 * f["rate"], f["eligible"])
    emit_metrics("sample-online-log", {"path": args.out, "format": args.format, "features": len(names),
                                       "faults": injected, "seconds": round(time.monotonic() - started, 2)})
    return 0


def add_parsers(sub: Any) -> None:
    """Add the skew verbs to the CLI's subparsers."""
    p = sub.add_parser("validate-skew", help="compare training rows with the online serving log, per feature",
                       description="Matches logged requests with training rows (request id, then keys + time), "
                                   "computes per-feature skew metrics overall and per hour, finds stale values, "
                                   "gives each feature a verdict, runs Great Expectations suites, and writes a "
                                   "JSON + HTML report and the metrics Delta table. Exit 3 when a threshold fires.")
    _skew_config_args(p)
    p.add_argument("--online-log", metavar="PATH", help="online serving log (default: online_log.path)")
    p.add_argument("--format", choices=["parquet", "delta", "json"], help="log format (default: online_log.format)")
    p.add_argument("--training-set", metavar="PATH",
                   help="built training set (Delta); default: rebuild the features for the logged requests")
    p.add_argument("--report-dir", help="report folder (default: report.dir); the run writes <dir>/<run id>/")
    p.add_argument("--run-id", help="run id (default: <name>-<UTC time>-<random>)")
    p.add_argument("--no-metrics-table", action="store_true", help="do not append to the metrics Delta table")
    p.set_defaults(handler=cmd_validate_skew)

    p = sub.add_parser("sample-online-log", help="write a sample online serving log with known injected faults",
                       description="Serves the built training set as an online system would have (one row per "
                                   "request) and injects the faults of --faults at exact rates.")
    _skew_config_args(p)
    p.add_argument("--training-set", metavar="PATH", help="built training set (default: the training-set output)")
    p.add_argument("--faults", default=DEFAULT_FAULTS, help=f"fault spec YAML (default: {DEFAULT_FAULTS})")
    p.add_argument("--clean", action="store_true", help="inject no faults")
    p.add_argument("--out", default=".data/sample/online_log", help="where to write (default .data/sample/online_log)")
    p.add_argument("--format", choices=["parquet", "delta", "json"], default="parquet")
    p.set_defaults(handler=cmd_sample_online_log)


def _skew_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=DEFAULT_SKEW_CONFIG,
                   help=f"skew config YAML (default: {DEFAULT_SKEW_CONFIG}); it names the feature store and "
                        "training-set configs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a skew config key, e.g. --set thresholds.max_mismatch_rate=0.05")
