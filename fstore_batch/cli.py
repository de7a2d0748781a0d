"""The one command-line entry point: ``fstore-batch VERB [options]``.

Library errors become one clear line on stderr and a non-zero exit (``--debug`` shows the
traceback). Each verb ends with one JSON metrics line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fstore_batch import __version__
from fstore_batch.errors import FstoreError
from fstore_batch.logs import emit_metrics, setup_logging
from fstore_batch.timeutil import utc_day

log = logging.getLogger("fstore_batch.cli")
DEFAULT_CONFIG = "conf/sample.yaml"

Handler = Callable[[argparse.Namespace], int]


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse names the flag in its error)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                   help=f"feature store YAML config (default: {DEFAULT_CONFIG})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set hbase.port=9091 (repeatable; wins over "
                        "FSTORE__SECTION__KEY environment variables)")


def _load(args: argparse.Namespace) -> Any:
    from fstore_batch.config import FeatureStoreConfig, load_config

    return load_config(FeatureStoreConfig, args.config, overrides=args.overrides)


# --- verbs -----------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from fstore_batch.doctor import render, run_checks

    checks = run_checks(args.config, args.overrides, spark=not args.skip_spark)
    print(render(checks))
    failed = [c.name for c in checks if not c.ok]
    emit_metrics("doctor", {"checks": len(checks), "failed": failed})
    return 1 if failed else 0


def cmd_sample(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fstore_batch.sample.generator import SampleSize, SampleSpec, generate
    from fstore_batch.sample.writer import write_sample
    from fstore_batch.session import build_session
    from fstore_batch.storage.files import is_local

    cfg = _load(args)
    size = SampleSize.preset(args.size)
    size = replace(size, **{k: v for k, v in (("users", args.users), ("items", args.items),
                                               ("impressions", args.impressions)) if v is not None})
    started = time.monotonic()
    log.info("generating sample data: size=%s %s seed=%d", args.size, size, args.seed)
    data = generate(SampleSpec(size=size, seed=args.seed))
    log.info("writing %d HBase tables to %s:%d and labels to %s",
             len(data.tables), cfg.hbase.host, cfg.hbase.port, args.labels_out)
    if not is_local(args.labels_out):  # written through Hadoop's file system, with the config's s3a settings
        build_session(cfg.spark)
    stats = write_sample(cfg, data, args.labels_out)
    for s in stats:
        log.info("  %s", s)
    cells = sum(s.get("cells", 0) for s in stats)
    elapsed = time.monotonic() - started
    emit_metrics("sample", {"size": args.size, "seed": args.seed, "tables": len(data.tables), "cells": cells,
                            "labels": len(data.labels["request_id"]), "seconds": round(elapsed, 2),
                            "cells_per_second": round(cells / elapsed) if elapsed else None})
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from fstore_batch.sources.hbase.connection import hbase_connection
    from fstore_batch.sources.hbase.inspect import describe

    cfg = _load(args)
    specs = [cfg.table(args.table)] if args.table else list(cfg.tables)
    total = 0
    with hbase_connection(cfg.hbase) as conn:
        for spec in specs:
            info = describe(conn, spec, args.rows)
            total += info["rows"]
            print(f"\n== {spec.name} (HBase '{info['table']}'): {info['rows']} rows in {info['regions']} regions")
            for row in info["sample"]:
                print("   " + json.dumps(row, default=str))
    emit_metrics("inspect", {"tables": len(specs), "rows": total})
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    from fstore_batch.session import build_session
    from fstore_batch.storage.delta.snapshot import run_snapshots
    from fstore_batch.timeutil import parse_time_ms

    cfg = _load(args)
    as_of_ms = parse_time_ms(args.as_of)
    tables = args.table or [t.name for t in cfg.tables]
    for name in tables:
        cfg.table(name)  # fail on an unknown table before starting Spark
    spark = build_session(cfg.spark)
    results = run_snapshots(spark, cfg, tables, as_of_ms, full=args.full, allow_empty=args.allow_empty,
                            parallel=args.parallel)
    total_cells = sum(m["cells"] for m in results)
    seconds = sum(m["seconds"] for m in results)
    emit_metrics("snapshot", {
        "tables": {m["table"]: {k: m.get(k) for k in ("mode", "version", "state_version", "rows", "cells", "bytes",
                                                       "quarantined", "regions", "seconds")} for m in results},
        "rows": sum(m["rows"] for m in results), "cells": total_cells,
        "bytes": sum(m["bytes"] for m in results), "quarantined": sum(m["quarantined"] for m in results),
        "regions": sum(m["regions"] for m in results), "seconds": round(seconds, 3),
        "cells_per_second": round(total_cells / seconds) if seconds else None,
    })
    return 0


def _table_path(cfg: Any, name_or_path: str) -> tuple[str, Any]:
    """A config table name, or the path of a configured table -> (its Delta path, its spec);
    any other path -> (that path made absolute, None)."""
    from fstore_batch.config.models import absolute_path

    path = absolute_path(name_or_path).rstrip("/")
    for t in cfg.tables:
        if name_or_path == t.name or path == cfg.storage.table_path(t.name).rstrip("/"):
            return cfg.storage.table_path(t.name), t
    return path, None


def cmd_versions(args: argparse.Namespace) -> int:
    from fstore_batch.session import build_session
    from fstore_batch.storage.delta.catalog import format_versions, snapshot_history

    cfg = _load(args)
    path, _ = _table_path(cfg, args.delta_table)
    spark = build_session(cfg.spark)
    infos = snapshot_history(spark, path)
    print(f"{path}:")
    print(format_versions(infos))
    emit_metrics("versions", {"path": path, "snapshots": len(infos),
                              "latest_version": infos[-1].version if infos else None})
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from fstore_batch.config.models import MaintenanceSpec
    from fstore_batch.session import build_session
    from fstore_batch.storage.delta.maintenance import maintain, maintain_state

    cfg = _load(args)
    path, spec = _table_path(cfg, args.delta_table)
    spark = build_session(cfg.spark)
    moved = None
    if spec is not None and spec.maintenance.retention is not None and not args.no_retention:
        from fstore_batch.storage.delta.tiers import apply_retention, cold_path

        moved = apply_retention(spark, spec.name, path, spec.maintenance.retention,
                                cold_path(spec.maintenance.cold_root, spec.name))
    m = maintain(spark, path, spec.maintenance if spec else MaintenanceSpec(),
                 optimize=not args.no_optimize, vacuum=not args.no_vacuum)
    state = (maintain_state(spark, path, spec.maintenance, optimize=not args.no_optimize, vacuum=not args.no_vacuum)
             if spec is not None else None)  # keeps the files of the state the next build reads
    emit_metrics("maintain", {**m, **({"retention": moved} if moved else {}), **({"state": state} if state else {})})
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from fstore_batch.config import load_config
    from fstore_batch.config.training import TrainingSetConfig
    from fstore_batch.joins.build import build_training_set, resolve_inputs
    from fstore_batch.session import build_session

    store = _load(args)
    ts_overrides = list(args.ts_overrides)
    if args.labels:
        ts_overrides.append(f"labels.path={args.labels}")
    cfg = load_config(TrainingSetConfig, args.training_set, overrides=ts_overrides, env={})
    window = None
    if args.date:
        start = datetime.combine(args.date, datetime.min.time(), tzinfo=UTC)
        window = (start, start + timedelta(days=1))
    spark = build_session(store.spark)
    inputs = resolve_inputs(spark, cfg, store)
    m = build_training_set(spark, cfg, inputs, output=args.out, window=window, allow_empty=args.allow_empty)
    print(json.dumps({"manifest": {"training_set": cfg.name, "inputs": m["inputs"]}}, indent=2))
    print(f"training set {cfg.name}: {m['rows']} rows x {m['columns']} columns at {m['path']} (version {m['version']})")
    if args.show:
        out = spark.read.format("delta").load(m["path"])  # the newest labels: the most history behind them
        out.orderBy(out[cfg.labels.ts].desc()).show(args.show, truncate=24, vertical=True)
    emit_metrics("build", m)
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from fstore_batch.joins.build import read_manifest, rebuild
    from fstore_batch.session import build_session

    store = _load(args)
    spark = build_session(store.spark)
    manifest = read_manifest(spark, args.training_set_path, args.version)
    emit_metrics("rebuild", rebuild(spark, manifest, output=args.out, allow_empty=args.allow_empty))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from fstore_batch.config import load_config
    from fstore_batch.config.training import TrainingSetConfig
    from fstore_batch.session import build_session
    from fstore_batch.storage.delta.registry import REGISTRY_TABLE, build_of_day, publish

    store = _load(args)
    ts = load_config(TrainingSetConfig, args.training_set, env={})
    path = args.out or ts.output
    registry = args.registry or store.storage.table_path(REGISTRY_TABLE)
    spark = build_session(store.spark)
    entry = build_of_day(spark, path, args.date, args.version)
    mode = publish(spark, registry, entry, allow_empty=args.allow_empty)
    log.info("publish %s %s: version %d of %s (%s) in %s", entry.training_set, args.date, entry.version,
             path, mode, registry)
    emit_metrics("publish", {"training_set": entry.training_set, "date": args.date.isoformat(), "path": path,
                             "version": entry.version, "rows": entry.rows, "registry": registry, "mode": mode})
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from fstore_batch.config import load_config
    from fstore_batch.session import build_session
    from fstore_batch.status import render_status, store_status
    from fstore_batch.validation.config import SkewConfig

    store = _load(args)
    skew = load_config(SkewConfig, args.skew_config, env={}) if args.skew_config else None
    spark = build_session(store.spark)
    status = store_status(spark, store, training_sets=args.training_set,
                          skew_metrics=skew.metrics_table if skew else None, report_dir=skew.report.dir if skew else None,
                          skew_runs=args.skew_runs)
    print(render_status(status))
    emit_metrics("status", status)
    return 0


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fstore-batch",
        description="Batch training-data builder for recommendation feature stores: "
                    "HBase snapshots into Delta, point-in-time joins, skew validation.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="log lines on stderr as text (default) or JSON lines")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = sub.add_parser("doctor", help="check Java, Spark, Delta jars, HBase and the config; say how to fix")
    _config_args(p)
    p.add_argument("--skip-spark", action="store_true", help="skip starting a SparkSession (faster)")
    p.set_defaults(handler=cmd_doctor)

    p = sub.add_parser("sample", help="generate the deterministic sample data set into HBase (+ label log)")
    _config_args(p)
    p.add_argument("--size", default="tiny", choices=["tiny", "small", "medium", "large"],
                   help="preset scale (tiny: 200 users, for tests; large: 5M impressions, for benchmarks)")
    p.add_argument("--seed", type=int, default=7, help="random seed; same seed, same data (default 7)")
    p.add_argument("--users", type=int, help="override the preset's user count")
    p.add_argument("--items", type=int, help="override the preset's item count")
    p.add_argument("--impressions", type=int, help="override the preset's impression count")
    p.add_argument("--labels-out", default=".data/sample/labels",
                   help="where to write the impression label log as Parquet (default .data/sample/labels)")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("inspect", help="show HBase feature tables: regions, row counts, a few decoded rows")
    _config_args(p)
    p.add_argument("--table", help="one table (default: all in the config)")
    p.add_argument("--rows", type=int, default=3, help="decoded rows to show per table (default 3)")
    p.set_defaults(handler=cmd_inspect)

    p = sub.add_parser("snapshot", help="snapshot HBase feature tables into versioned Delta tables",
                       description="Reads each table region-parallel on Spark executors and appends the cells "
                                   "with since < ts <= as-of as one Delta commit (initial run: all cells <= as-of).")
    _config_args(p)
    p.add_argument("--table", action="append", metavar="NAME",
                   help="feature table from the config (repeatable; default: every table)")
    p.add_argument("--as-of", default="now-1m",
                   help="snapshot time: ISO 8601 with zone, epoch ms, or now[-N(s|m|h|d)]; cells with "
                        "timestamp <= as-of are included (default now-1m, leaving in-flight writes to the next run)")
    p.add_argument("--full", action="store_true",
                   help="re-read every cell <= as-of and add what the Delta table lacks (backfill)")
    p.add_argument("--allow-empty", action="store_true",
                   help="accept an HBase table with no cells <= as-of on a first or --full snapshot (default: refuse, naming the input, and write nothing)")
    p.add_argument("--parallel", type=_positive_int, default=2, metavar="N",
                   help="tables snapshotted at a time, each its own Delta commits (default 2)")
    p.set_defaults(handler=cmd_snapshot)

    p = sub.add_parser("versions", help="snapshot history of a Delta feature table (from its commit log)")
    _config_args(p)
    p.add_argument("delta_table", help="a table name from the config, or a Delta table path")
    p.set_defaults(handler=cmd_versions)

    p = sub.add_parser("maintain", help="retention to the cold tier, OPTIMIZE (Z-order by entity key) and VACUUM "
                                        "a Delta feature table",
                       description="Applies the table's maintenance settings from the config: history older than "
                                   "`retention` moves to `cold_root` (or is dropped), then Z-order columns, VACUUM "
                                   "retention hours and log retention days, for the table and its feature state "
                                   "(whose VACUUM keeps the files of the state the next build reads).")
    _config_args(p)
    p.add_argument("delta_table", help="a table name from the config, or a Delta table path")
    p.add_argument("--no-optimize", action="store_true", help="skip compaction")
    p.add_argument("--no-vacuum", action="store_true", help="skip VACUUM")
    p.add_argument("--no-retention", action="store_true",
                   help="skip moving history older than maintenance.retention to the cold tier (or dropping it)")
    p.set_defaults(handler=cmd_maintain)

    p = sub.add_parser("build", help="build a training set: point-in-time join of feature tables onto labels",
                       description="Joins every feature table of the training-set config onto the labels as of each "
                                   "label's time and writes one Delta commit whose metadata is the manifest.")
    _config_args(p)
    p.add_argument("training_set", help="training-set YAML (e.g. conf/training_sets/sample.yaml)")
    p.add_argument("--labels", help="label path (overrides labels.path)")
    p.add_argument("--out", help="output Delta path (overrides output)")
    p.add_argument("--date", type=utc_day, metavar="YYYY-MM-DD",
                   help="build only the labels of this UTC day and replace only that day in the output "
                        "(daily runs; rerunning a day is safe). Default: all labels, whole output replaced")
    p.add_argument("--show", type=int, default=0, metavar="N", help="print N rows of the result")
    p.add_argument("--allow-empty", action="store_true",
                   help="write an empty training set (or day) when no labels are left after the window and sampling (default: refuse, naming the input, and write nothing)")
    p.add_argument("--ts-set", dest="ts_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training-set config key, e.g. --ts-set features.0.version=3")
    p.set_defaults(handler=cmd_build)

    p = sub.add_parser("status", help="what the store holds: table versions, training sets, the last skew run",
                       description="Reads Delta metadata (commit history, file statistics) and, for each "
                                   "tier's time range, the feature tables' time column.")
    _config_args(p)
    p.add_argument("--training-set", action="append", default=[], metavar="PATH",
                   help="a built training set's Delta path (repeatable)")
    p.add_argument("--skew-config", metavar="YAML", help="skew config whose metrics table and reports to summarise")
    p.add_argument("--skew-runs", type=int, default=1, metavar="N", help="how many of the newest skew runs (default 1)")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("rebuild", help="rebuild a training set from the manifest in its Delta commit",
                       description="Reads the manifest (input tables and their exact Delta versions, labels, "
                                   "config) from a built training set and writes identical rows to --out.")
    _config_args(p)
    p.add_argument("training_set_path", help="Delta path of a built training set")
    p.add_argument("--version", type=int, help="which build (Delta version) to reproduce (default: latest)")
    p.add_argument("--out", required=True, help="where to write the rebuilt training set")
    p.add_argument("--allow-empty", action="store_true",
                   help="write an empty result when the manifest's labels have no rows (default: refuse, naming the input, and write nothing)")
    p.set_defaults(handler=cmd_rebuild)

    p = sub.add_parser("publish", help="record the validated training-set version of a day in the registry",
                       description="Finds the newest commit of the training set that `build --date` wrote for "
                                   "DATE and records (training_set, date, path, Delta version, rows, "
                                   "validated_at) in the registry Delta table that downstream jobs read. "
                                   "Publishing a date again replaces its row; the same version is a no-op.")
    _config_args(p)
    p.add_argument("training_set", help="training-set YAML (e.g. conf/training_sets/sample.yaml)")
    p.add_argument("--date", type=utc_day, required=True, metavar="YYYY-MM-DD",
                   help="the UTC day whose build to publish (as given to build --date)")
    p.add_argument("--out", help="the training set's Delta path, when build was given --out (overrides output)")
    p.add_argument("--version", type=int, help="publish exactly this Delta version (must be a build of --date; "
                                               "default: the newest build of --date)")
    p.add_argument("--registry", help="registry Delta table (default: <storage.root>/training_set_registry)")
    p.add_argument("--allow-empty", action="store_true",
                   help="publish a build of the day that has 0 rows (default: refuse, naming the input, and write nothing)")
    p.set_defaults(handler=cmd_publish)

    from fstore_batch.validation.commands import add_parsers as add_skew_parsers

    add_skew_parsers(sub)  # validate-skew, sample-online-log

    from fstore_batch.pipeline import add_parser as add_run_parser
    from fstore_batch.pipeline import cmd_run

    add_run_parser(sub, _config_args).set_defaults(
        handler=lambda args: cmd_run(args, parse=lambda argv: build_parser().parse_args(argv)))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging("DEBUG" if args.debug else "INFO", args.log_format)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"fstore-batch {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # every failure becomes one line; --debug shows the trace
        err = as_fstore_error(e)
        if args.debug:
            log.exception("failed")
        print(f"fstore-batch {args.verb}: error: {err}", file=sys.stderr)
        return err.exit_code


def as_fstore_error(e: Exception) -> FstoreError:
    """The project error for any exception: ours as they are, Spark/Delta/Py4J ones translated by
    condition (fstore_batch.spark_errors), anything else named by its type."""
    if isinstance(e, FstoreError):
        return e
    from fstore_batch.spark_errors import translate

    err = translate(e)
    if err is not None:
        return err
    return FstoreError(f"unexpected {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                       hint="run with --debug for the traceback, and report it")


if __name__ == "__main__":
    sys.exit(main())
