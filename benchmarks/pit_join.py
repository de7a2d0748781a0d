"""Point-in-time join: the project's join beside the common baselines, in one Spark session.

    .venv/bin/python benchmarks/pit_join.py [--scale 1.0] [--case daily|one_table|four_tables|zipf|sequences|all]

Data (at --scale 1), as Parquet in a temp folder, over 30 days; each method's result is forced
with a `noop` write and timed (best of --repeat, run round robin):

* one_table: 1,000,000 labels x 5,000,000 feature rows x 100,000 keys. The project's
  `point_in_time_join` beside a Feast-style range join (key and `feature_ts <= label_ts`, then
  `row_number() = 1` per label), a Tempo-style union + `last(ignorenulls)` window, and DuckDB's
  `ASOF LEFT JOIN` on the same files (single-machine reference, compared row by row);
* four_tables: four feature tables of 5,000,000 rows on the same key, joined in one pass, beside
  the Tempo-style join chained four times;
* zipf: one table with Zipf(1.1)-skewed keys (labels and features; the hottest key holds ~10% of
  the rows): the project's join with and without hot-key time buckets (one day), beside
  Tempo-style, on 64 shuffle partitions. Besides the time, the slowest and median task of the
  heaviest shuffle-reading stage are read from Spark's status API: the straggler ratio;
* daily: a daily build's shape, one day of labels (1/30 of one_table's) over the month of feature
  rows: the project's join over the month, the same join over what `build --date` reads (the
  month written as the snapshot job writes it, two Delta snapshots with their feature state; the
  state as of the day's start plus the day's rows), and Tempo-style; both project results compared
  with DuckDB's. Target: >= 3x faster than today (see "Where the time goes");
* sequences: last-50 sequences over 20,000,000 events for the labels, `last_n_events` beside the
  baseline: key join on `event_ts < label_ts`, `row_number() <= 50` per label, `collect_list`.

Prints one JSON line per case with the seconds and the ratios the issue sets targets for.

Where the time goes (Spark's status API per stage, scale 0.5, 2026-11-30 and 2026-12-01):

* one_table, 2026-12-01 (`--case one_table --scale 0.5`, load 2.7): project 4.88 s, Tempo-style
  4.36 s (1.12x; target 0.7), Feast-style 7.45 s (0.655x; target 0.35), DuckDB 1.54 s (3.16x; aim
  5), 0 mismatches. The union's shuffle-read stage is most of it, and its sort is most of that stage
  (13.6 s of 25.6 s task time under load); its CPU time is the same for the project and
  Tempo-style (5.5-6.3 s each, 3 tasks after AQE coalescing, no spill with 6g of driver memory,
  142 MB spilled with the 1g default). The project writes 119 MB of shuffle against Tempo's 102 MB
  (the hash tie-breaker and the key cast). Explicit partition counts (4, 8, 16) changed nothing.
* daily with the feature state (2026-12-01, `--case daily`): at scale 0.5 (load 2.7-2.9) the
  month 1.55 s, state + day 1.05 s (1.48x), Tempo-style 3.15 s; at scale 1 (load 2.7-2.8) 2.64 s,
  1.25 s (2.12x), 7.74 s; 0 mismatches against DuckDB for both. The day's state MERGE, paid by the
  snapshot job, took 12.8 s and 15.1 s. Against the join before the bloom filter below (3.21 s at
  scale 0.5, measured in another run), state + day is 3.06x faster; within one run it is not 3x.
  Through the state the join is mostly fixed costs (the bloom filter's subquery, Delta's file
  listing of two tables, two jobs' planning): the rows it shuffles are ~60k at scale 0.5.
* daily (2026-12-01, load 2.3-2.8): a bloom filter of the labels' keys (one scalar subquery)
  drops the feature rows of keys without labels before the shuffle: 104 MB -> 30 MB shuffled, the
  reduce stage 4.05 s -> 1.33 s of task time, the join 3.21 s -> 2.14 s (Tempo-style 3.20 s), same
  rows. What is left: the scan and filter of the month (1.34 s of task time over 4 tasks), the
  sort of the labelled keys' month (1.33 s over 3 tasks), and ~0.5 s of jobs and planning (the
  subquery runs before the map stage). On one_table, where every key has labels, the filter drops
  nothing and costs ~0.5 s (the label scan and the probe; 4.66 s -> 5.39 s in one session).
  A `ts <= max(label_ts)` bound was measured as a second subquery (Spark does not merge it with
  the bloom filter's, which must be a scalar subquery of its own) and dropped: builds already read
  the tables up to the last label time.
* four_tables (2026-12-01, load 2.3-2.9): the one pass shuffles 490 MB (12 mostly-null feature
  columns and 4 tie-breaker columns per row) against 4 x 102-126 MB for the chained recipe, and its
  reduce stage takes 31-36 s of task time (30.8 s CPU for 10.5M rows, 12 window functions each)
  against 5.2-7.7 s for each chained pass. More, smaller reduce tasks (advisory partition size
  16 MB, or 32 uncoalesced partitions) remove the spill (391 MB -> 0) for both: project 20.8-22.4 s
  against chained 15.5-15.8 s. A struct per source does not narrow it by itself: Spark's analyzer
  evaluates a window function's argument (`s.f`) below the window, i.e. before the exchange, so
  per-feature `last` over struct fields ships the fields again; it needs an explicit
  `repartition` + `sortWithinPartitions` so the unpacking runs after the exchange (not done).
* daily, earlier: compacting the history before the first label into one carry row per key (a partial
  `max_by` aggregation before the shuffle) was tried and dropped: `max_by` over a struct sort key
  cannot be hash-aggregated, so the map side sorts the month instead of the reduce side (3.96 s
  against 4.12 s; and 5.63 s against 4.27 s when labels span the month, for the second scan).
* zipf: the bucket carry now comes from each bucket's last row of the main pass (a small second
  exchange of labels and bucket ends); it used to be a second sort aggregation of the whole union.
  2026-12-01 (load 2.7-2.8): 7.15 s split against 4.21 s unsplit (1.70x; target 1.3) and 3.61 s
  Tempo-style; slowest/median task 1.88 split, 23.9 unsplit. Profiled 2026-12-01 (scale 0.5, 64
  partitions, Spark's status API per stage, second run; load 3.5-4.0): split 7.11 s against 5.48 s
  unsplit (1.30x). Task time: the map stage 2.71 s against 3.07 s (both write the 2.9M-row union,
  120 MB against 108 MB: the bucket column), the first window stage 7.53 s against 6.32 s, then the
  split's own second exchange: 500k labels and 322k bucket ends (39 MB) and its window, 1.71 s. So
  12.1 s against 9.6 s of task time (1.26x): what the split adds is that second, small pass, which
  carries every label again; it cannot be dropped without a join back to the labels, a shuffle of
  its own.
* sequences (2026-12-01, scale 0.5: 10M events, 200 per key, 10 labels per key; `--case
  sequences --repeat 1`, load 2.3-2.9): 26.68 s against 62.76 s (2.35x; target 5x not met), 0
  mismatching lists; the previous helper's run, repeat 2, load 2.6-3.0: 14.56 s against 44.95 s
  (3.09x): one cold run is noisy on the shared machine. Stage profile of `last_n_events` (status API, load
  2.3-3.0): events' scan + shuffle write 2.6 s CPU (206 MB); the events' stage (shuffle read, sort
  by (key, time, tie-breaker, hash), `row_number`, block aggregation, labels' scan) 18.6 s CPU;
  labels onto blocks (164 MB re-shuffled, sort, `lag IGNORE NULLS`, the cut) 2.9 s CPU. Inside the
  events' stage, measured piecewise: shuffle read 1.3 s CPU, sort by the key alone (radix) 3.3 s,
  sort by (key, time) 10.6 s (every comparison inside a key leaves the 8-byte prefix and reads
  both rows), `row_number` ~1 s, block aggregation (`collect_list`, sorted by `i`) ~4 s.
  Measured, not yet in `last_n_events`: a radix pre-sort of the events by one long that never
  contradicts (key, time) order (key * 2^32 + seconds for |key| < 2^30, the key's high bits
  beyond) leaves the window's sort a nearly sorted input (TimSort is then linear): `row_number`
  stage 13.4 -> 6.1 s CPU, with the block aggregation 17.3 -> 10.0 s CPU (same session, load 2.3).
  Also measurable next: labels unioned with the blocks in the blocks' own partitioning (the 164 MB
  second shuffle goes). Earlier (scale 0.2): the former union + `mapInArrow` Python pass
  10.7-11.0 s against 6.9 s; blocks equi-joined to the labels 11.9 s (the union's window ran
  twice: the branches prune different columns, so their exchanges are not reused); numbering by
  `monotonically_increasing_id` after a sort the same as `row_number`. A binary search on the
  times written as one column per step was replaced by one `sort_array` + `array_position`: a
  filter on the output (the online log's stale fault) was pushed down through the steps and
  inlined them exponentially (plan 90 KB at n=2, 5.5 MB at n=8, driver OOM at n=20).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import duckdb
from daily_build import snapshot as snapshot_with_state
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fstore_batch.config import SparkConfig
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.session import build_session
from fstore_batch.storage.delta.state import pick_state, read_with_state, state_path
from fstore_batch.storage.delta.tables import current_version

MONTH_S = 30 * 86_400
START_S = 1_790_000_000
FEATURES = ["f_int", "f_double", "f_str"]
LABEL_COLS = ["lid", "user_id", "label_ts", "y"]


def key_column(seed: int, keys: int, zipf: float | None) -> Column:
    """A key in [0, keys): uniform, or ~Zipf(s) by the inverse CDF of the continuous power law."""
    u = F.pmod(F.xxhash64("id", F.lit(seed)), F.lit(1 << 30)) / float(1 << 30)
    if zipf is None:
        return F.floor(u * keys).cast("long")
    a = 1.0 - zipf
    return F.least(F.floor(F.pow((F.pow(F.lit(float(keys + 1)), a) - 1) * u + 1, 1.0 / a)) - 1, F.lit(keys - 1)).cast("long")


def generate(spark: SparkSession, folder: str, labels: int, rows: int, keys: int, *, tables: int = 1,
             zipf: float | None = None, label_days: int = 30) -> tuple[str, list[str]]:
    """Labels over the last ``label_days`` of the month, feature rows over the whole month."""
    span = label_days * 86_400
    lab = (spark.range(labels).withColumn("user_id", key_column(1, keys, zipf))
           .withColumn("label_ts", F.timestamp_seconds(F.lit(START_S + MONTH_S - span) + F.abs(F.xxhash64("id", F.lit(2)) % span)))
           .withColumn("y", (F.xxhash64("id", F.lit(3)) % 2).cast("int")).withColumnRenamed("id", "lid"))
    lp = f"{folder}/labels"
    lab.write.parquet(lp)
    paths = []
    for t in range(tables):
        feat = (spark.range(rows).withColumn("user_id", key_column(4 + 10 * t, keys, zipf))
                .withColumn("event_ts", F.timestamp_seconds(F.lit(START_S) + F.abs(F.xxhash64("id", F.lit(5 + 10 * t)) % MONTH_S)))
                .withColumn("f_int", (F.col("id") % 1000).cast("int"))
                .withColumn("f_double", F.col("id") / 7.0)
                .withColumn("f_str", F.concat(F.lit("v"), (F.col("id") % 97).cast("string")))
                .withColumnRenamed("id", "rid"))
        paths.append(f"{folder}/features_{t}")
        feat.write.parquet(paths[-1])
    return lp, paths


def project(labels: DataFrame, tables: list[DataFrame], time_bucket: timedelta | None = None) -> DataFrame:
    prefix = len(tables) > 1
    sources = [FeatureSource(f"t{i}", df, {"user_id": "user_id"}, FEATURES, tie_breaker="rid",
                             prefix=f"t{i}_" if prefix else "") for i, df in enumerate(tables)]
    return point_in_time_join(labels, sources, time_bucket=time_bucket)


def feast_style(labels: DataFrame, feats: DataFrame) -> DataFrame:
    f = feats.select(F.col("user_id").alias("fk"), F.col("event_ts"), F.col("rid"), *FEATURES)
    joined = labels.join(f, (labels.user_id == f.fk) & (f.event_ts <= labels.label_ts), "left")
    w = Window.partitionBy("lid").orderBy(F.col("event_ts").desc_nulls_last(), F.col("rid").desc_nulls_last())
    return joined.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn", "fk", "event_ts", "rid")


def tempo_style(labels: DataFrame, feats: DataFrame, prefix: str = "") -> DataFrame:
    """Union + forward fill, the way Tempo's ``asofJoin`` does it; labels keep every column they have."""
    carried = [c for c in labels.columns if c != "label_ts"]
    out = [prefix + f for f in FEATURES]
    lab = labels.select(*carried, F.col("label_ts").alias("ts"), "label_ts", F.lit(1).alias("_kind"),
                        F.lit(None).cast("long").alias("rid"),
                        *[F.lit(None).cast(feats.schema[f].dataType).alias(o) for f, o in zip(FEATURES, out)])
    fea = feats.select(*[F.lit(None).cast(labels.schema[c].dataType).alias(c) for c in carried if c != "user_id"],
                       "user_id", F.col("event_ts").alias("ts"), F.lit(None).cast("timestamp").alias("label_ts"),
                       F.lit(0).alias("_kind"), "rid", *[F.col(f).alias(o) for f, o in zip(FEATURES, out)])
    w = (Window.partitionBy("user_id").orderBy("ts", "_kind", "rid")
         .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    filled = lab.unionByName(fea).select(*carried, "label_ts", "_kind", *[F.last(o, ignorenulls=True).over(w).alias(o) for o in out])
    return filled.where("_kind = 1").drop("_kind")


def sequences_project(labels: DataFrame, events: DataFrame) -> DataFrame:
    return last_n_events(labels, SequenceSource("seq", events, {"user_id": "user_id"}, ["f_int"], n=50,
                                                tie_breaker="rid"))


def sequences_baseline(labels: DataFrame, events: DataFrame) -> DataFrame:
    """Join on the key and `event_ts < label_ts`, `row_number() <= 50` per label, `collect_list`.

    The list is collected as (rank, value) pairs and sorted by rank: `collect_list` alone keeps
    no order after the aggregation's shuffle. Ties in time are broken by `rid`, as the project's.
    """
    e = events.select(F.col("user_id").alias("ek"), "event_ts", "rid", "f_int")
    joined = labels.join(e, (labels.user_id == e.ek) & (e.event_ts < labels.label_ts), "left")
    w = Window.partitionBy("lid").orderBy(F.col("event_ts").desc(), F.col("rid").desc())
    top = joined.withColumn("_rn", F.row_number().over(w)).where("_rn <= 50")
    ranked = F.when(F.col("ek").isNotNull(), F.struct("_rn", "f_int"))
    return top.groupBy("lid").agg(F.sort_array(F.collect_list(ranked)).getField("f_int").alias("seq_f_int"))


def timed(spark: SparkSession, name: str, df: DataFrame) -> float:
    spark.sparkContext.setJobGroup(name, name)
    started = time.monotonic()
    df.write.format("noop").mode("overwrite").save()
    return time.monotonic() - started


def straggler_ratio(spark: SparkSession, group: str) -> dict[str, float]:
    """Slowest / median task time in the heaviest shuffle-reading stage of ``group``'s jobs (Spark's status API)."""
    sc = spark.sparkContext
    api = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}"

    def get(path: str) -> list[dict]:
        with urllib.request.urlopen(api + path, timeout=30) as r:
            return json.load(r)

    stage_ids = [s for j in get("/jobs") if j.get("jobGroup") == group for s in j["stageIds"]]
    stages = [a for sid in stage_ids for a in get(f"/stages/{sid}") if a["status"] == "COMPLETE" and a["shuffleReadBytes"]]
    heaviest = max(stages, key=lambda a: a["executorRunTime"])
    tasks = get(f"/stages/{heaviest['stageId']}/{heaviest['attemptId']}/taskList?length=100000")
    runs = [t["taskMetrics"]["executorRunTime"] for t in tasks if t["status"] == "SUCCESS"]
    return {"tasks": len(runs), "slowest_ms": max(runs), "median_ms": statistics.median(runs),
            "slowest_over_median": round(max(runs) / max(statistics.median(runs), 1), 2)}


def best_of(spark: SparkSession, methods: dict[str, object], repeat: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for r in range(repeat):
        for name, make in methods.items():
            best[name] = min(best.get(name, float("inf")), timed(spark, f"{name}#{r}", make()))  # type: ignore[operator]
    return best


def duckdb_reference(lp: str, fp: str, out: str) -> tuple[float, int]:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    started = time.monotonic()
    con.execute(f"""CREATE TABLE ref AS SELECT l.lid, f.f_int, f.f_double, f.f_str
        FROM read_parquet('{lp}/*.parquet') l ASOF LEFT JOIN
             (SELECT * FROM read_parquet('{fp}/*.parquet')
              QUALIFY row_number() OVER (PARTITION BY user_id, event_ts ORDER BY rid DESC) = 1) f
        ON l.user_id = f.user_id AND l.label_ts >= f.event_ts""")
    secs = time.monotonic() - started
    # ASOF has no tie order, so equal (key, time) feature rows are first reduced to the one with
    # the largest rid: the project's tie-breaker. Then every label must match exactly.
    mismatches = con.execute(f"""SELECT count(*) FROM ref r JOIN read_parquet('{out}/*.parquet') p USING (lid)
        WHERE r.f_int IS DISTINCT FROM p.f_int OR r.f_double IS DISTINCT FROM p.f_double
           OR r.f_str IS DISTINCT FROM p.f_str""").fetchone()[0]
    return secs, int(mismatches)


def rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in d.items()}


def case_one_table(spark: SparkSession, folder: str, n: dict[str, int], args: argparse.Namespace) -> dict:
    lp, (fp,) = generate(spark, f"{folder}/one", n["labels"], n["rows"], n["keys"])
    labels, feats = spark.read.parquet(lp), spark.read.parquet(fp)
    methods = {"project_s": lambda: project(labels, [feats]), "tempo_style_s": lambda: tempo_style(labels, feats)}
    if not args.skip_feast:
        methods["feast_style_s"] = lambda: feast_style(labels, feats)
    res = best_of(spark, methods, args.repeat)
    out = f"{folder}/one/project_out"
    project(labels, [feats]).write.parquet(out)
    res["duckdb_asof_s"], mismatches = duckdb_reference(lp, fp, out)
    report = {**rounded(res), "project_over_tempo": round(res["project_s"] / res["tempo_style_s"], 3),
              "target_tempo": "<= 0.7", "project_over_duckdb": round(res["project_s"] / res["duckdb_asof_s"], 2),
              "aim_duckdb": "<= 5", "mismatches_vs_duckdb": mismatches}
    if "feast_style_s" in res:
        report |= {"project_over_feast": round(res["project_s"] / res["feast_style_s"], 3), "target_feast": "<= 0.35"}
    return report


def case_four_tables(spark: SparkSession, folder: str, n: dict[str, int], args: argparse.Namespace) -> dict:
    lp, fps = generate(spark, f"{folder}/four", n["labels"], n["rows"], n["keys"], tables=4)
    labels, tables = spark.read.parquet(lp), [spark.read.parquet(p) for p in fps]

    def chained() -> DataFrame:
        out = labels
        for i, t in enumerate(tables):
            out = tempo_style(out, t, prefix=f"t{i}_")
        return out

    res = best_of(spark, {"project_s": lambda: project(labels, tables), "tempo_chained_s": chained}, args.repeat)
    return {**rounded(res), "project_over_tempo_chained": round(res["project_s"] / res["tempo_chained_s"], 3),
            "target": "<= 0.6"}


def case_zipf(spark: SparkSession, folder: str, n: dict[str, int], args: argparse.Namespace) -> dict:
    lp, (fp,) = generate(spark, f"{folder}/zipf", n["labels"], n["rows"], n["keys"], zipf=1.1)
    labels, feats = spark.read.parquet(lp), spark.read.parquet(fp)
    top = feats.groupBy("user_id").count().orderBy(F.desc("count")).first()
    # As on a cluster: many shuffle partitions, all kept (coalescing would hide the straggler).
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    spark.conf.set("spark.sql.shuffle.partitions", "64")
    methods = {"project_buckets_s": lambda: project(labels, [feats], timedelta(days=1)),
               "project_no_buckets_s": lambda: project(labels, [feats]),
               "tempo_style_s": lambda: tempo_style(labels, feats)}
    res = best_of(spark, methods, args.repeat)
    last = args.repeat - 1
    stragglers = {m: straggler_ratio(spark, f"{m}#{last}") for m in methods}
    spark.conf.unset("spark.sql.adaptive.coalescePartitions.enabled")
    spark.conf.set("spark.sql.shuffle.partitions", "16")
    return {**rounded(res), "hottest_key_rows": top["count"],
            "project_over_tempo": round(res["project_buckets_s"] / res["tempo_style_s"], 3),
            "buckets_over_no_buckets": round(res["project_buckets_s"] / res["project_no_buckets_s"], 3),
            "stragglers": stragglers,
            "target": "slowest task <= 3x median with buckets; buckets_over_no_buckets <= 1.3"}


def case_sequences(spark: SparkSession, folder: str, n: dict[str, int], args: argparse.Namespace) -> dict:
    lp, (ep,) = generate(spark, f"{folder}/seq", n["labels"], 4 * n["rows"], n["keys"])
    labels, events = spark.read.parquet(lp), spark.read.parquet(ep)
    res = best_of(spark, {"project_s": lambda: sequences_project(labels, events),
                          "baseline_s": lambda: sequences_baseline(labels, events)}, args.repeat)
    # Row by row: every label's list from the project against the baseline's (not timed).
    got = sequences_project(labels, events).select("lid", F.col("seq_f_int").alias("got"))
    want = sequences_baseline(labels, events).select("lid", F.col("seq_f_int").alias("want"))
    mismatches = got.join(want, "lid", "full").where(~F.col("got").eqNullSafe(F.col("want"))).count()
    return {"events": 4 * n["rows"], "n": 50, "events_per_key": round(4 * n["rows"] / n["keys"]),
            "labels_per_key": round(n["labels"] / n["keys"]), **rounded(res),
            "speedup": round(res["baseline_s"] / res["project_s"], 2), "target": ">= 5", "mismatches": mismatches}


def case_daily(spark: SparkSession, folder: str, n: dict[str, int], args: argparse.Namespace) -> dict:
    """A daily build's shape: one day of labels (the last) over a month of feature history."""
    day_labels = max(n["labels"] // 30, 1)
    lp, (fp,) = generate(spark, f"{folder}/daily", day_labels, n["rows"], n["keys"], label_days=1)
    labels, feats = spark.read.parquet(lp), spark.read.parquet(fp)
    with_state, merge_s = feature_state_of_month(spark, f"{folder}/daily/delta", feats)
    res = best_of(spark, {"project_s": lambda: project(labels, [feats]),
                          "project_state_s": lambda: project(labels, [with_state]),
                          "tempo_style_s": lambda: tempo_style(labels, feats)}, args.repeat)
    out, out_state = f"{folder}/daily/project_out", f"{folder}/daily/project_state_out"
    project(labels, [feats]).write.parquet(out)
    project(labels, [with_state]).write.parquet(out_state)
    _, mismatches = duckdb_reference(lp, fp, out)
    _, mismatches_state = duckdb_reference(lp, fp, out_state)
    return {"labels": day_labels, **rounded(res), "project_over_tempo": round(res["project_s"] / res["tempo_style_s"], 3),
            "state_speedup_over_history": round(res["project_s"] / res["project_state_s"], 2), "target": ">= 3",
            "day_state_merge_s": round(merge_s, 2), "mismatches_vs_duckdb": mismatches,
            "state_mismatches_vs_duckdb": mismatches_state}


def feature_state_of_month(spark: SparkSession, path: str, feats: DataFrame) -> tuple[DataFrame, float]:
    """The month as the snapshot job leaves it: a Delta history of two snapshots (the days before
    the last, then the last day incrementally), each with its feature state. Returns what a
    ``build --date`` of the last day reads (the state as of the day's start plus the day's rows)
    and the seconds of the day's state MERGE (the snapshot job's cost, not the build's)."""
    day_start = START_S + MONTH_S - 86_400
    rows = feats.withColumn("snapshot_id", F.lit("bench"))
    before = F.col("event_ts") <= F.timestamp_seconds(F.lit(day_start))
    # the snapshot job's two commits per snapshot: the state, then the history append
    snapshot_with_state(spark, path, rows.where(before), day_start, "initial", f"bench@{day_start}")
    merge_s = snapshot_with_state(spark, path, rows.where(~before), START_S + MONTH_S, "incremental",
                                  f"bench@{START_S + MONTH_S}")
    version = current_version(spark, path)
    state = pick_state(spark, path, version, at_or_before=datetime.fromtimestamp(day_start, UTC), keys={"user_id"})
    assert state is not None and state.as_of_ms == day_start * 1000, state
    return read_with_state(spark, path, version, state.manifest(state_path(path))), merge_s


CASES = {"daily": case_daily, "one_table": case_one_table, "four_tables": case_four_tables, "zipf": case_zipf, "sequences": case_sequences}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M labels x 5M feature rows x 100k keys")
    p.add_argument("--case", choices=[*CASES, "all"], default="all", help="which comparison (default: all)")
    p.add_argument("--skip-feast", action="store_true", help="skip the (slow) range-join baseline")
    p.add_argument("--repeat", type=int, default=2, help="timed runs per method, round robin; best is kept")
    args = p.parse_args()
    n = {"labels": int(1_000_000 * args.scale), "rows": int(5_000_000 * args.scale), "keys": int(100_000 * args.scale)}
    spark = build_session(SparkConfig(master="local[2]", conf={"spark.sql.shuffle.partitions": "16",
                                                               "spark.ui.showConsoleProgress": "false"}))
    spark.sparkContext.setLogLevel("ERROR")
    folder = tempfile.mkdtemp(prefix="bench-pit-")
    try:
        for name in CASES if args.case == "all" else [args.case]:
            print(json.dumps({"case": name, **n, **CASES[name](spark, folder, n, args)}), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
