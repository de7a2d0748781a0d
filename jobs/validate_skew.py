"""spark-submit entry point: validate a training set against the online serving log (skew).

    spark-submit jobs/validate_skew.py --config conf/skew/sample.yaml --online-log .data/sample/online_log

Takes exactly the flags of `fstore-batch validate-skew` (run with --help); prints the summary,
the report path and one JSON metrics line; exits 3 when a skew threshold is breached.
"""

import sys

from fstore_batch.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate-skew", *sys.argv[1:]]))
