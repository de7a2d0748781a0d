"""spark-submit entry point: snapshot HBase feature tables into versioned Delta tables.

    spark-submit jobs/snapshot_hbase.py --config conf/sample.yaml --table user_profile --as-of 2026-10-31T00:00:00Z

Takes exactly the flags of `fstore-batch snapshot` (run with --help); prints one JSON metrics line.
"""

import sys

from fstore_batch.cli import main

if __name__ == "__main__":
    sys.exit(main(["snapshot", *sys.argv[1:]]))
