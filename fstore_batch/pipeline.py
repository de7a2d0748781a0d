"""``fstore-batch run``: the daily pipeline for one UTC day in one process and one SparkSession.

The same steps as the Airflow DAG (``airflow_dags/fstore_pipelines.py``), each the verb of the
same name with the same flags, for users who schedule with cron or run a day by hand::

    snapshot (every table the training set reads, as of the day's end)
        -> build --date DAY -> validate-skew (when a skew config is given) -> publish --date DAY

Running them in one process saves a JVM start and Spark's warm-up per step. Each step prints its
own metrics line and a progress line ``step i/n <name> ...``; the run ends with one metrics line
(``job: run``) listing the steps run, in order, with their seconds. The first failing step ends the run with that step's
exit code (2 config, 3 skew breach, 1 other), so a breach never reaches ``publish``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fstore_batch.logs import emit_metrics
from fstore_batch.timeutil import utc_day

log = logging.getLogger("fstore_batch.cli")
STEPS = ("snapshot", "build", "validate", "publish")


def plan_steps(args: argparse.Namespace, tables: list[str], output: str) -> list[tuple[str, list[str]]]:
    """The verbs ``run`` executes for ``args``, as (step, argv) pairs in order.

    ``tables`` are the feature tables to snapshot, ``output`` the training set's Delta path (what
    the validate step compares with the log). Each argv is what a user would type after
    ``fstore-batch``, so a step behaves exactly like its verb.

    >>> args = build_parser().parse_args(["run", "ts.yaml", "--date", "2026-10-30"])  # doctest: +SKIP
    >>> [name for name, _ in plan_steps(args, ["user_profile"], "out")]  # doctest: +SKIP
    ['snapshot', 'build', 'publish']
    """
    store = ["--config", args.config, *[x for o in args.overrides for x in ("--set", o)]]
    day = args.date.isoformat()
    as_of = args.as_of or datetime.combine(args.date + timedelta(days=1), datetime.min.time(), UTC).isoformat()
    out = ["--out", args.out] if args.out else []
    steps: list[tuple[str, list[str]]] = []
    if "snapshot" not in args.skip and tables:
        steps.append(("snapshot", ["snapshot", *store, *[x for t in tables for x in ("--table", t)],
                                   "--as-of", as_of]))
    if "build" not in args.skip:
        steps.append(("build", ["build", *store, args.training_set, "--date", day, *out]))
    if "validate" not in args.skip and args.skew_config:
        validate = ["validate-skew", "--config", args.skew_config, "--training-set", output]
        if args.online_log:
            validate += ["--online-log", args.online_log]
        steps.append(("validate", validate))
    if "publish" not in args.skip:
        registry = ["--registry", args.registry] if args.registry else []
        steps.append(("publish", ["publish", *store, args.training_set, "--date", day, *out, *registry]))
    return steps


def cmd_run(args: argparse.Namespace, parse: Callable[[list[str]], argparse.Namespace]) -> int:
    """Run the planned steps in order on one SparkSession; stop at the first failure."""
    from fstore_batch.config import FeatureStoreConfig, load_config
    from fstore_batch.config.training import TrainingSetConfig
    from fstore_batch.session import build_session

    store = load_config(FeatureStoreConfig, args.config, overrides=args.overrides)
    ts = load_config(TrainingSetConfig, args.training_set, env={})
    known = {t.name for t in store.tables}
    tables = args.table or [t for t in dict.fromkeys(r.table for r in [*ts.features, *ts.sequences, *ts.aggregations]) if t in known]
    steps = plan_steps(args, tables, args.out or ts.output)
    # Every step's argv is parsed before anything runs: a typo fails the run, not its last step.
    parsed = [(name, parse(argv)) for name, argv in steps]
    build_session(store.spark)  # one session for every step (build_session returns the active one)
    started = time.monotonic()
    seconds: dict[str, float] = {}
    for i, (name, step_args) in enumerate(parsed, 1):
        log.info("step %d/%d %s (%.0fs elapsed)", i, len(parsed), name, time.monotonic() - started)
        t0 = time.monotonic()
        try:
            code = step_args.handler(step_args)
        except Exception:  # the CLI turns it into one line and its exit code; record the step first
            seconds[name] = round(time.monotonic() - t0, 2)
            _emit(args, seconds, failed=name)
            raise
        seconds[name] = round(time.monotonic() - t0, 2)
        if code:
            log.error("step %d/%d %s exited %d: the run stops here", i, len(parsed), name, code)
            _emit(args, seconds, failed=name)
            return code
    _emit(args, seconds, failed=None)
    return 0


def _emit(args: argparse.Namespace, seconds: dict[str, float], failed: str | None) -> None:
    emit_metrics("run", {"date": args.date.isoformat(), "training_set": args.training_set,
                         "steps": [{"step": name, "seconds": s} for name, s in seconds.items()],
                         "failed_step": failed, "seconds": round(sum(seconds.values()), 2)})


def add_parser(sub: Any, config_args: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Add the ``run`` verb to the CLI's subparsers."""
    p = sub.add_parser(
        "run", help="the daily pipeline for one day in one Spark session: snapshot -> build -> validate -> publish",
        description="Runs the daily DAG's steps for one UTC day in this process: snapshot every table the "
                    "training set reads as of the day's end, build the day, validate skew against the online "
                    "log (with --skew-config), publish the day. Stops at the first failing step with its exit "
                    "code (3: a skew breach, so nothing is published).")
    config_args(p)
    p.add_argument("training_set", help="training-set YAML (e.g. conf/training_sets/sample.yaml)")
    p.add_argument("--date", type=utc_day, required=True, metavar="YYYY-MM-DD",
                   help="the UTC day to build, validate and publish")
    p.add_argument("--as-of", help="snapshot time (default: the end of --date, i.e. the next midnight UTC)")
    p.add_argument("--table", action="append", metavar="NAME",
                   help="table to snapshot (repeatable; default: every HBase table the training set reads)")
    p.add_argument("--skew-config", metavar="YAML", help="skew config; without it the validate step is skipped")
    p.add_argument("--online-log", metavar="PATH", help="online serving log (default: the skew config's)")
    p.add_argument("--out", help="training set Delta path (default: the training set's output)")
    p.add_argument("--registry", help="registry Delta table (default: <storage.root>/training_set_registry)")
    p.add_argument("--skip", action="append", default=[], choices=STEPS, metavar="STEP",
                   help=f"leave out a step (repeatable; one of {', '.join(STEPS)})")
    return p
