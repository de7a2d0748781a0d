"""Fixtures of the unit tests (the SparkSession itself is tests/conftest.py's)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[True, False], ids=["ansi_on", "ansi_off"])
def ansi(spark, request):
    """Run the test with spark.sql.ansi.enabled on (Spark 4's default) and off (common on
    clusters, where a false match would be silent); restore the session's setting."""
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", str(request.param).lower())
    try:
        yield request.param
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before)
