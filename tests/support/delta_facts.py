"""Print facts about Delta tables as one JSON line, for tests that run where the library is not
installed (tests/airflow, in .venv-airflow): `.venv/bin/python tests/support/delta_facts.py SPEC.json`.

SPEC: {"tables": {name: path}, "day": "YYYY-MM-DD", "ts": label time column,
       "training_set": path, "labels": parquet path, "registry": path}
Out:  {"tables": {name: {"versions": n, "rows": n}}, "training_set": {"dates": {date: rows}},
       "labels_of_day": n, "registry": [rows]}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from fstore_batch.config import SparkConfig
from fstore_batch.session import build_session


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    spark = build_session(SparkConfig(master="local[1]", conf={"spark.ui.enabled": "false",
                                                                "spark.sql.shuffle.partitions": "1"}))
    out: dict = {"tables": {}}
    for name, path in spec["tables"].items():
        out["tables"][name] = {"versions": DeltaTable.forPath(spark, path).history().count(),
                               "rows": spark.read.format("delta").load(path).count()}
    ts = spec["ts"]
    by_day = (spark.read.format("delta").load(spec["training_set"])
              .groupBy(F.date_format(ts, "yyyy-MM-dd").alias("d")).count().collect())
    out["training_set"] = {"dates": {r.d: r["count"] for r in by_day}}
    out["labels_of_day"] = (spark.read.parquet(spec["labels"])
                            .where(F.date_format(ts, "yyyy-MM-dd") == spec["day"]).count())
    out["registry"] = [r.asDict() for r in spark.read.format("delta").load(spec["registry"]).collect()]
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
