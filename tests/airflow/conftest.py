"""Tests of the Airflow DAGs. They run in `.venv-airflow` (Airflow 3 + the Spark provider), never in
the project's `.venv`: `make airflow` creates it and tests/integration/test_airflow_dags.py runs
this folder there with its own config (`.venv-airflow/bin/python -m pytest -c tests/airflow/pytest.ini tests/airflow`).

Airflow reads AIRFLOW_HOME when it is first imported, so this file points it at a fresh temporary
folder before any test imports Airflow: no test touches ~/airflow or another test run's database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "airflow_dags"
MAIN_VENV = ROOT / ".venv"

if Path(sys.prefix).name != ".venv-airflow":
    raise RuntimeError(f"tests/airflow run in .venv-airflow (`make airflow` creates it), not in {sys.prefix}: "
                       ".venv-airflow/bin/python -m pytest -c tests/airflow/pytest.ini tests/airflow")

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="fstore-airflow-home-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
