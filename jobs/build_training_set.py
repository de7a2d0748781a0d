"""spark-submit entry point: build a training set (point-in-time join) as one Delta commit.

    spark-submit jobs/build_training_set.py --config conf/sample.yaml conf/training_sets/sample.yaml

Takes exactly the flags of `fstore-batch build` (run with --help); prints one JSON metrics line.
"""

import sys

from fstore_batch.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
