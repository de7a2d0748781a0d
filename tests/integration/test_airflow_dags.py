"""The Airflow DAG tests (tests/airflow) run in their own virtualenv, `.venv-airflow`, because
Airflow's Spark provider brings a `pyspark` of its own. This test runs them there, as part of the
main test run; it fails (never skips) when `make airflow` has not created that venv."""

from __future__ import annotations

import re

import pytest

from tests.support.cli import ROOT, run

AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"


@pytest.mark.timeout(3600)  # one real daily DAG run (8 spark-submits) and one failing run, on 2 cores
def test_airflow_dag_tests_pass_in_the_airflow_venv():
    assert AIRFLOW_PY.exists(), f"{AIRFLOW_PY} is missing: run `make airflow` (make test does)"
    proc = run(str(AIRFLOW_PY), "-m", "pytest", "-c", "tests/airflow/pytest.ini", "tests/airflow",
               "-p", "no:cacheprovider")
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-3000:]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", summary)}
    assert counts.get("passed", 0) >= 8 and not set(counts) - {"passed", "warnings", "warning"}, summary
