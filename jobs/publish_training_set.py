"""spark-submit entry point: record the validated training-set version of a day in the registry.

    spark-submit jobs/publish_training_set.py --config conf/sample.yaml conf/training_sets/sample.yaml --date 2026-10-21

Takes exactly the flags of `fstore-batch publish` (run with --help); prints one JSON metrics line.
"""

import sys

from fstore_batch.cli import main

if __name__ == "__main__":
    sys.exit(main(["publish", *sys.argv[1:]]))
