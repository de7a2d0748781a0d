"""local_frame gives the rows spark.createDataFrame gives, with no Python worker behind them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import Row

from fstore_batch.spark_local import local_frame

DDL = ("a long, t timestamp, n timestamp_ntz, d date, s string, dec decimal(30,2), arr array<float>, "
       "ta array<timestamp>, m map<string,long>, st struct<x:int,y:string>, b binary, f double, i int, bo boolean")
ROWS = [
    (1, datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999), date(1, 1, 1), "x",
     Decimal(10**25) + Decimal("0.01"), [1.5, None], [datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)], {"k": 2},
     (1, "a"), b"\x00\x01", 1.0, 2**31 - 1, True),
    (None,) * 14,
    (2, datetime(2026, 10, 1, 12), datetime(2026, 1, 1), date(2026, 1, 1), True, None, [], [], {},
     Row(x=2, y=None), bytearray(b"z"), float("nan"), -5, False),
    (3, datetime(9999, 12, 31, 23, 59, 40, tzinfo=UTC), None, None, 5, None, None, None, None, {"x": 3, "y": "q"},
     None, -0.0, 0, None),
]


def _json(df):
    # to_json in Spark: Python's datetime cannot hold every instant Spark can (year 1 in local time)
    return [r[0] for r in df.selectExpr("to_json(struct(*), map('timestampFormat', 'yyyy-MM-dd HH:mm:ss.SSSSSS'))")
            .collect()]


def test_rows_and_schema_equal_create_data_frame(spark):
    want = spark.createDataFrame(ROWS, DDL)
    got = local_frame(spark, ROWS, DDL)
    assert got.schema == want.schema
    assert _json(got) == _json(want)


def test_rows_by_name_empty_input_and_no_python_worker(spark):
    named = local_frame(spark, [Row(user_id=1, country="DE"), {"country": "US", "user_id": 2}],
                        "user_id long, country string")
    assert named.collect() == [Row(user_id=1, country="DE"), Row(user_id=2, country="US")]
    assert local_frame(spark, [], DDL).count() == 0
    lineage = named._jdf.queryExecution().toRdd().toDebugString()
    assert "PythonRDD" not in lineage  # createDataFrame's is: ParallelCollectionRDD <- PythonRDD <- SerDeUtil ...
    assert "PythonRDD" in spark.createDataFrame([(1, "DE")], "user_id long, country string")._jdf.queryExecution() \
        .toRdd().toDebugString()


def test_a_row_of_the_wrong_width_names_the_columns(spark):
    with pytest.raises(ValueError, match=r"a row has 1 values for 2 columns \(user_id, country\)"):
        local_frame(spark, [(1,)], "user_id long, country string")
