"""Running the CLI and jobs as users do (a subprocess from the project root) and reading their metrics line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "fstore_batch.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def metrics(proc: subprocess.CompletedProcess[str]) -> dict:
    """The final JSON metrics line of a successful run."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]
