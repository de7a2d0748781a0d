"""Running the CLI and jobs as users do (a subprocess from the project root) and reading their metrics line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "fstore_batch.cli"]
# spark-submit settings for jobs on the tests' tiny data, as a deployment passes its own: no UI, and
# Delta's log replay (state reconstruction) in one task instead of its default 50, unless the job's
# store config sets it (measured on the validate-skew job: 127 s -> 97 s, its Spark jobs 41 s -> 12 s).
TINY_DATA_CONF = {"spark.ui.enabled": "false", "spark.databricks.delta.snapshotPartitions": "1"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def metrics(proc: subprocess.CompletedProcess[str]) -> dict:
    """The final JSON metrics line of a successful run."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]


def spark_submit(job: str, *args: str, master: str = "local[2]") -> subprocess.CompletedProcess[str]:
    """Run ``jobs/<job>`` through the real ``spark-submit`` of this venv's pyspark, as on a cluster.

    The Delta jars come from the project cache via ``--jars``; the driver and the executors run
    this interpreter (PYSPARK_PYTHON), which has the library installed.
    """
    from fstore_batch.session import DELTA_CONF, delta_jars

    confs = [x for key, value in {**TINY_DATA_CONF, **DELTA_CONF}.items() for x in ("--conf", f"{key}={value}")]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    return run(str(Path(sys.executable).parent / "spark-submit"), "--master", master,
               "--jars", ",".join(str(j) for j in delta_jars()), *confs, f"jobs/{job}", *args, env=env)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``fstore-batch ARGS`` in this process, on the test session's SparkSession (no JVM start).

    Returns what ``run`` returns: the exit code and everything the verb printed on stdout and
    stderr (its log lines included). Use ``run(*CLI, ...)`` only where the process boundary is
    what a test is about.
    """
    import contextlib
    import io
    import logging

    from fstore_batch.cli import main

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse: --help, usage errors
            code = e.code if isinstance(e.code, int) else 2
    root.handlers[:], root.level = handlers, level
    return subprocess.CompletedProcess(["fstore-batch", *args], code, out.getvalue(), err.getvalue())
