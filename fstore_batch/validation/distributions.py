"""Distribution distances between the served and the training values of categorical features.

* L-infinity ``max |p - q|`` and the Jensen-Shannon distance ``sqrt(JSD)``,
  ``JSD = (KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2`` and base-2 logarithms (so the
  distance lies in [0, 1]); PSI as for numbers, each share floored at ``EPSILON``.

Shares are over each side's non-null values of the matched rows. All categorical features are
counted in one pass (one exploded ``groupBy``, exact); the distances are computed from the counts
in Spark, so a high-cardinality feature never comes back to the driver: only one row per feature
and its ``TOP_CATEGORIES`` most frequent categories (for the report's bars). Numeric PSI comes
from the quantile sketches of ``metrics``.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fstore_batch.validation.config import FeatureKind
from fstore_batch.validation.features import Feature

EPSILON = 1e-4
TOP_CATEGORIES = 10


def distances(matched: DataFrame, features: list[Feature]) -> tuple[dict[str, dict[str, float | None]],
                                                                   dict[str, list[dict[str, Any]]]]:
    """``({feature: {"psi" | "js_distance" | "linf": value}}, {feature: top categories})`` of the
    categorical features; a top category is ``{"value", "online", "offline"}`` (row counts)."""
    cells = []
    for f in features:
        if f.kind is not FeatureKind.CATEGORICAL:
            continue
        on, off = F.col(f.on).cast("string"), F.col(f.off).cast("string")
        cells += [F.struct(F.lit(f.name).alias("f"), F.lit("on").alias("s"), on.alias("v")),
                  F.struct(F.lit(f.name).alias("f"), F.lit("off").alias("s"), off.alias("v"))]
    if not cells:
        return {}, {}
    counts = (matched.select(F.explode(F.array(*cells)).alias("c")).select("c.*")
              .where(F.col("v").isNotNull()).groupBy("f", "s", "v").count())
    return distances_from_counts(counts)


def distances_from_counts(counts: DataFrame) -> tuple[dict[str, dict[str, float | None]],
                                                      dict[str, list[dict[str, Any]]]]:
    """PSI, JS distance and L-inf per ``f`` from ``(f, s in {on, off}, v, count)`` rows, and
    each ``f``'s top categories (one job: the per-``f`` rows carry them)."""
    per_f = Window.partitionBy("f")
    wide = (counts.groupBy("f", "v")
            .agg(F.sum(F.when(F.col("s") == "on", F.col("count")).otherwise(0)).alias("c_on"),
                 F.sum(F.when(F.col("s") == "off", F.col("count")).otherwise(0)).alias("c_off"))
            .withColumn("q", F.col("c_on") / F.sum("c_on").over(per_f))
            .withColumn("p", F.col("c_off") / F.sum("c_off").over(per_f)))
    p, q = F.col("p"), F.col("q")
    m = (p + q) / 2
    pe, qe = F.greatest(F.coalesce(p, F.lit(0.0)), F.lit(EPSILON)), F.greatest(F.coalesce(q, F.lit(0.0)), F.lit(EPSILON))
    kl = (lambda x: F.when(x > 0, x * F.log2(x / m)).otherwise(0.0))
    top = Window.partitionBy("f").orderBy(F.desc(F.col("c_on") + F.col("c_off")), "v")
    wide = wide.withColumn("__top", F.when(F.row_number().over(top) <= TOP_CATEGORIES,
                                           F.struct(F.col("c_on") + F.col("c_off"), "v", "c_on", "c_off")))
    rows = wide.groupBy("f").agg(
        F.sort_array(F.collect_list("__top"), asc=False).alias("top"),
        F.sum((qe - pe) * F.log(qe / pe)).alias("psi"),
        F.sum((kl(p) + kl(q)) / 2).alias("jsd"),
        F.max(F.abs(p - q)).alias("linf"),
        F.sum("c_on").alias("n_on"), F.sum("c_off").alias("n_off"),
    ).collect()
    out: dict[str, dict[str, float | None]] = {}
    tops: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        tops[r.f] = [{"value": t["v"], "online": int(t["c_on"]), "offline": int(t["c_off"])} for t in r.top]
        empty = not r.n_on or not r.n_off
        jsd = None if empty or r.jsd is None else max(float(r.jsd), 0.0)
        out[r.f] = {"psi": None if empty else float(r.psi), "js_distance": None if jsd is None else math.sqrt(jsd),
                    "linf": None if empty else float(r.linf)}
    return out, tops
