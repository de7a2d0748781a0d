"""Run several ``fstore-batch`` commands in one process, and so on one JVM, for tests whose setup
runs where the library is not installed (tests/airflow, in .venv-airflow)::

    .venv/bin/python tests/support/cli_batch.py '[["sample", "--size", "tiny"], ["snapshot", ...]]'

Stops at the first command that fails, with its exit code.
"""

from __future__ import annotations

import json
import sys

from fstore_batch.cli import main


def run_all(commands: list[list[str]]) -> int:
    for argv in commands:
        code = main(argv)
        if code:
            print(f"cli_batch: {' '.join(argv[:2])} exited {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(run_all(json.loads(sys.argv[1])))
