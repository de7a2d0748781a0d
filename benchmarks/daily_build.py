"""Daily build over a growing history: the whole history against the feature state, in one Spark session.

    .venv/bin/python benchmarks/daily_build.py [--scale 1.0] [--days 7,28,56] [--repeat 2]

Data (at --scale 1): one feature table of 200,000 rows a day over 100,000 users, written as the
snapshot job writes it (``fstore_batch.storage.delta.state``): the days before the last one as one
snapshot commit with its feature state as of the last day's start, then the last day as an
incremental snapshot (its state MERGE is timed too: it is the cost the snapshot job takes on).
40,000 labels in the last day. For each history length, the one-day build is the project's
``point_in_time_join`` (three features, a TTL, a tie-breaker) forced with a ``noop`` write:

* ``history``: over every row of the table at its current version (what a build without state reads);
* ``state``: over the state as of the day's start plus the rows after it (what ``build --date`` reads).

The same labels' window aggregations (1 h, 1 d, 7 d x count, sum, mean, max of ``f_double``, the
table read as an event table; ``window_aggregates``):

* ``aggregations_history``: over every row of the table;
* ``aggregations_reach``: over ``events_in_reach`` (the rows from the day's start less 7 days to
  the day's end, what ``build --date`` reads): Delta's file statistics skip the older days' files.

Each pair of results is compared row by row (``exceptAll`` both ways). Prints one JSON line per
history length and a summary line: seconds, the growth ratio longest/shortest history, and the
speed-up at the longest history. Targets (issue 14): growth <= 1.3x with state, >= 5x faster at
56 days. The history's days before the last are written about one file per day (range-partitioned
by time, as daily snapshots leave them), so file statistics can skip whole days.

Where the time goes (2026-11-30, scale 1, load 2.4-3.5): over the whole history the join's one
shuffle carries every feature row (1.4M to 11.2M) and its sort is most of the 2.7-14.5 s; through
the state it carries the state (about one row per user, 100k) plus the day (200k), so 1.5-1.9 s
whatever the history. The day's state MERGE (8.7-15.3 s) is paid once by the snapshot job: Delta
joins the changed keys against the state to find the files to rewrite, then rewrites them.

Window aggregations (2026-12-01, scale 1, load 2.1-3.1): over the whole history 10.3 s, 21.6 s
and 39.3 s at 7, 28 and 56 days (the shuffle and sorts carry every row); over the reach 11.7 s,
6.6 s and 6.1 s (at 7 days the reach is the whole history; the first figure also paid the JVM's
warm-up), so 6.4x faster at 56 days and flat once the history is longer than the widest window.
0 mismatches.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fstore_batch.config import SparkConfig
from fstore_batch.joins.aggregations import (
    Aggregation,
    AggregationSource,
    events_in_reach,
    window_aggregates,
)
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.session import build_session
from fstore_batch.storage.delta.catalog import snapshot_metadata
from fstore_batch.storage.delta.state import pick_state, read_with_state, state_path, update_state
from fstore_batch.storage.delta.tables import append, current_version

DAY_S = 86_400
END_S = 1_790_000_000 // DAY_S * DAY_S  # the last day ends at a midnight UTC
FEATURES = ["f_int", "f_double", "f_str"]
WINDOWS = [timedelta(hours=1), timedelta(days=1), timedelta(days=7)]


def day_rows(spark: SparkSession, first_day: int, days: int, rows_per_day: int, keys: int, snapshot: str) -> DataFrame:
    """``rows_per_day`` feature rows on each of ``days`` days from ``first_day`` (days before the end)."""
    n = days * rows_per_day
    start = END_S - first_day * DAY_S
    return (spark.range(n)
            .withColumn("user_id", F.pmod(F.xxhash64("id", F.lit(1)), F.lit(keys)))
            # (day start, day end]: a snapshot as of a midnight holds the rows at that midnight
            .withColumn("event_ts", F.timestamp_seconds(F.lit(start) + F.floor(F.col("id") / rows_per_day) * DAY_S
                                                        + 1 + F.pmod(F.xxhash64("id", F.lit(2)), F.lit(DAY_S))))
            .withColumn("f_int", F.when(F.col("id") % 5 != 0, (F.col("id") % 1000).cast("int")))
            .withColumn("f_double", F.col("id") / 7.0)
            .withColumn("f_str", F.when(F.col("id") % 3 != 0, F.concat(F.lit("v"), (F.col("id") % 97).cast("string"))))
            .withColumn("snapshot_id", F.lit(snapshot))
            .withColumnRenamed("id", "rid"))


def snapshot(spark: SparkSession, path: str, rows: DataFrame, as_of_s: int, mode: str, snapshot_id: str) -> float:
    """The snapshot job's two commits: the state as of ``as_of_s`` (timed), then the history append."""
    nxt = current_version(spark, path) + 1 if mode != "initial" else 0
    t0 = time.perf_counter()
    st = update_state(spark, path, ["user_id"], FEATURES, events=0, as_of_ms=as_of_s * 1000,
                      snapshot_id=snapshot_id, history_version=nxt, new_rows=rows)
    seconds = time.perf_counter() - t0
    append(rows, path, user_metadata=snapshot_metadata(snapshot_id=snapshot_id, mode=mode, as_of_ms=as_of_s * 1000,
                                                       state_version=st.version))
    return seconds


def join(labels: DataFrame, rows: DataFrame) -> DataFrame:
    return point_in_time_join(labels, [FeatureSource("t", rows, {"user_id": "user_id"}, FEATURES, tie_breaker="rid",
                                                     ttl=timedelta(days=30))])


def aggregate(labels: DataFrame, events: DataFrame) -> DataFrame:
    return window_aggregates(labels, [AggregationSource("t", events, {"user_id": "user_id"}, [
        Aggregation("f_double", ["count", "sum", "mean", "max"], WINDOWS)])])


def timed(df: DataFrame) -> float:
    t0 = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t0


def run(spark: SparkSession, folder: str, days: int, scale: float, repeat: int) -> dict:
    rows_per_day, keys, n_labels = int(200_000 * scale), int(100_000 * scale), int(40_000 * scale)
    path = f"{folder}/history_{days}"
    spark.sparkContext.setJobDescription(f"setup {days} days")
    day_start = END_S - DAY_S
    # one file per day, as daily snapshots leave them (and what Delta's file statistics can skip)
    old = day_rows(spark, days, days - 1, rows_per_day, keys, "initial").repartitionByRange(days - 1, "event_ts").persist()
    snapshot(spark, path, old, day_start, "initial", f"t@{day_start}")
    old.unpersist()
    today = day_rows(spark, 1, 1, rows_per_day, keys, "today").persist()
    merge_s = snapshot(spark, path, today, END_S, "incremental", f"t@{END_S}")
    today.unpersist()
    labels = (spark.range(n_labels).withColumnRenamed("id", "lid")
              .withColumn("user_id", F.pmod(F.xxhash64("lid", F.lit(3)), F.lit(keys)))
              .withColumn("label_ts", F.timestamp_seconds(F.lit(day_start) + F.pmod(F.xxhash64("lid", F.lit(4)),
                                                                                       F.lit(DAY_S)))))
    labels.write.parquet(f"{folder}/labels_{days}")
    labels = spark.read.parquet(f"{folder}/labels_{days}")
    version = current_version(spark, path)
    first = datetime.fromtimestamp(day_start, UTC)
    st = pick_state(spark, path, version, at_or_before=first, keys={"user_id"})
    assert st is not None and st.as_of_ms == day_start * 1000, st
    history = spark.read.format("delta").load(path)
    with_state = read_with_state(spark, path, version, st.manifest(state_path(path)))
    reach = events_in_reach(history, "event_ts", max(WINDOWS), day_start * 1_000_000, END_S * 1_000_000)
    cases = {"history": join(labels, history), "state": join(labels, with_state),
             "aggregations_history": aggregate(labels, history), "aggregations_reach": aggregate(labels, reach)}
    times = {name: [] for name in cases}
    for _ in range(repeat):
        for name, df in cases.items():
            spark.sparkContext.setJobDescription(f"{name} {days} days")
            times[name].append(timed(df))
    mismatches = 0
    for a, b in ((cases["history"], cases["state"]), (cases["aggregations_history"], cases["aggregations_reach"])):
        mismatches += a.exceptAll(b).count() + b.exceptAll(a).count()
    best = {k: round(min(v), 2) for k, v in times.items()}
    return {"days": days, "feature_rows": rows_per_day * days, "labels": n_labels, "seconds": best,
            "state_merge_seconds": round(merge_s, 2), "speedup": round(best["history"] / best["state"], 2),
            "aggregations_speedup": round(best["aggregations_history"] / best["aggregations_reach"], 2),
            "mismatches": mismatches}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="rows, keys and labels times this (default 1)")
    p.add_argument("--days", default="7,28,56", help="history lengths, comma-separated (default 7,28,56)")
    p.add_argument("--repeat", type=int, default=2, help="timed runs per method; the best counts (default 2)")
    args = p.parse_args()
    spark = build_session(SparkConfig(app_name="bench-daily-build", master="local[2]", conf={
        "spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8", "spark.ui.showConsoleProgress": "false"}))
    folder = tempfile.mkdtemp(prefix="fstore-daily-")
    try:
        results = []
        for days in [int(d) for d in args.days.split(",")]:
            results.append(run(spark, folder, days, args.scale, args.repeat))
            print(json.dumps(results[-1]), flush=True)
        lo, hi = results[0], results[-1]
        print(json.dumps({"summary": True, "growth_history": round(hi["seconds"]["history"] / lo["seconds"]["history"], 2),
                          "growth_state": round(hi["seconds"]["state"] / lo["seconds"]["state"], 2),
                          "speedup_at_longest": hi["speedup"],
                          "growth_aggregations_reach": round(hi["seconds"]["aggregations_reach"]
                                                             / lo["seconds"]["aggregations_reach"], 2),
                          "aggregations_speedup_at_longest": hi["aggregations_speedup"], "days": [lo["days"], hi["days"]],
                          "mismatches": sum(r["mismatches"] for r in results)}), flush=True)
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
