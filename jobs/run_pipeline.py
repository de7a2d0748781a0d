"""spark-submit entry point: the daily pipeline for one UTC day in one Spark application.

    spark-submit jobs/run_pipeline.py --config conf/sample.yaml conf/training_sets/sample.yaml --date 2026-10-30 \
        --skew-config conf/skew/sample.yaml --online-log .data/sample/online_log_clean

snapshot -> build --date -> validate-skew -> publish, as `fstore-batch run` (takes exactly its flags;
run with --help); prints each step's metrics line and a final one (`"job": "run"`).
"""

import sys

from fstore_batch.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
