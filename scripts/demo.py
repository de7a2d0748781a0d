"""The end-to-end demo on the built-in sample data (run by `make demo`, which installs and starts
what it needs first).

The daily pipeline's steps, as the Airflow DAG runs them: seed HBase -> snapshot into Delta ->
build the training set -> validate skew against the online serving log -> publish; then a summary
of what was written. Each step is an ``fstore-batch`` command, printed before it runs: copy a line
to run it alone. They run here in one process, so Spark starts once and stays warm (each command
on its own would start a JVM of its own).

    .venv/bin/python scripts/demo.py            # SIZE=tiny|small|medium in the environment (default small)
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from fstore_batch.cli import main as fstore_batch

ROOT = Path(__file__).resolve().parents[1]
SIZE = os.environ.get("SIZE", "small")
DAY = "2026-10-30"
TS = "conf/training_sets/sample.yaml"
OUT = ".data/delta/training/ctr_sample"
SKEW_BREACH = 3  # validate-skew's exit code when a threshold fires
STEPS = 9
started = time.monotonic()


def say(step: int, text: str) -> None:
    print(f"\n\033[1m== [{step}/{STEPS}, {time.monotonic() - started:.0f}s] {text}\033[0m", flush=True)


def run(*argv: str, expect: int = 0) -> None:
    """Run one ``fstore-batch`` command in this process; stop the demo on any other exit code."""
    print(f"$ fstore-batch {shlex.join(argv)}", flush=True)
    code = fstore_batch(list(argv))
    sys.stdout.flush()
    if code != expect:
        print(f"demo: `fstore-batch {argv[0]}` exited {code}, expected {expect}", file=sys.stderr)
        raise SystemExit(1)


def demo() -> None:
    say(1, "check the set-up (Java, packages, Delta jars, config, HBase)")
    run("doctor", "--skip-spark")

    say(2, f"seed the deterministic sample ({SIZE}) into HBase: 6 feature tables and an impression label log")
    # Snapshots of another sample (another SIZE) would mix with this one: start their Delta tables over.
    stamp = Path(".data/sample/demo-size")
    if not stamp.exists() or stamp.read_text().strip() != SIZE:
        for folder in (".data/delta", ".data/reports"):
            shutil.rmtree(folder, ignore_errors=True)
    run("sample", "--size", SIZE)
    stamp.write_text(f"{SIZE}\n")
    run("inspect", "--table", "user_profile", "--rows", "1")

    say(3, f"snapshot every HBase table into Delta as of 2026-10-20, then incrementally as of the end of {DAY}")
    run("snapshot", "--as-of", "2026-10-20T00:00:00Z")
    run("snapshot", "--as-of", "2026-10-31T00:00:00Z")

    say(4, "build the CTR training set: point-in-time join of the snapshots onto every impression label")
    run("build", TS, "--show", "2")

    say(5, "the same set sampled (a quarter of the non-clicks, weighted), embeddings quantized, hot users split by day")
    run("build", "conf/training_sets/sample_compact.yaml")

    say(6, "an online serving log with known faults injected (conf/skew/sample_faults.yaml), and a healthy one")
    run("sample-online-log", "--out", ".data/sample/online_log")
    run("sample-online-log", "--clean", "--out", ".data/sample/online_log_clean")

    say(7, "validate skew against the faulty log: the injected faults must be found, and the check must fail (exit 3)")
    run("validate-skew", "--online-log", ".data/sample/online_log", "--training-set", OUT, expect=SKEW_BREACH)
    print("(exit 3 as expected: in the daily pipeline this stops the run before publish)")

    say(8, f"the daily pipeline for {DAY} in one Spark session, as cron or Airflow runs it: "
           "snapshot, build the day, validate the healthy log, publish")
    run("run", TS, "--date", DAY, "--skew-config", "conf/skew/sample.yaml",
        "--online-log", ".data/sample/online_log_clean")

    say(9, "summary: table versions, training sets, the last two skew runs")
    run("status", "--training-set", OUT, "--training-set", ".data/delta/training/ctr_sample_compact",
        "--skew-config", "conf/skew/sample.yaml", "--skew-runs", "2")
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s. "
          "HTML skew reports: .data/reports/skew/<run id>/report.html")


if __name__ == "__main__":
    os.chdir(ROOT)  # the configs' paths are relative to the project root
    demo()
