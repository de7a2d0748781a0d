"""Distribution distances between the served and the training values of each feature.

* numeric: PSI over 10 bins cut at the offline deciles (equal cut points collapse, so a
  discrete feature may get fewer bins): ``PSI = sum((q - p) * ln(q / p))`` with ``p`` the
  offline and ``q`` the online share of a bin, each floored at ``EPSILON`` so an empty bin
  stays finite;
* categorical: L-infinity ``max |p - q|`` and the Jensen-Shannon distance
  ``sqrt(JSD)``, ``JSD = (KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2`` and base-2
  logarithms (so the distance lies in [0, 1]).

Shares are over each side's non-null values of the matched rows. All features are binned and
counted in one pass (one exploded ``groupBy``); the distances are computed from the counts in
Spark, so a high-cardinality feature never comes back to the driver: only one row per feature.
"""

from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from fstore_batch.validation.config import FeatureKind
from fstore_batch.validation.features import Feature

EPSILON = 1e-4


def bin_index(value: Column, edges: list[float]) -> Column:
    """Number of cut points strictly below ``value``: bin 0 is ``<= edges[0]``."""
    if not edges:
        return F.when(value.isNotNull(), F.lit(0))
    arr = F.array(*[F.lit(float(e)) for e in edges])
    return F.when(value.isNotNull(), F.size(F.filter(arr, lambda e: e < value.cast("double"))))


def distances(matched: DataFrame, features: list[Feature],
              deciles: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    """``{feature: {"psi" | "js_distance" | "linf": value}}`` for numeric and categorical features."""
    cells = []
    for f in features:
        if f.kind is FeatureKind.NUMERIC:
            edges = sorted(set(deciles.get(f.name, [])))
            on, off = bin_index(F.col(f.on), edges).cast("string"), bin_index(F.col(f.off), edges).cast("string")
        elif f.kind is FeatureKind.CATEGORICAL:
            on, off = F.col(f.on).cast("string"), F.col(f.off).cast("string")
        else:
            continue
        cells += [F.struct(F.lit(f.name).alias("f"), F.lit("on").alias("s"), on.alias("v")),
                  F.struct(F.lit(f.name).alias("f"), F.lit("off").alias("s"), off.alias("v"))]
    if not cells:
        return {}
    counts = (matched.select(F.explode(F.array(*cells)).alias("c")).select("c.*")
              .where(F.col("v").isNotNull()).groupBy("f", "s", "v").count())
    return distances_from_counts(counts)


def distances_from_counts(counts: DataFrame) -> dict[str, dict[str, float | None]]:
    """PSI, JS distance and L-inf per ``f`` from ``(f, s in {on, off}, v, count)`` rows."""
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
    rows = wide.groupBy("f").agg(
        F.sum((qe - pe) * F.log(qe / pe)).alias("psi"),
        F.sum((kl(p) + kl(q)) / 2).alias("jsd"),
        F.max(F.abs(p - q)).alias("linf"),
        F.sum("c_on").alias("n_on"), F.sum("c_off").alias("n_off"),
    ).collect()
    out: dict[str, dict[str, float | None]] = {}
    for r in rows:
        empty = not r.n_on or not r.n_off
        jsd = None if empty or r.jsd is None else max(float(r.jsd), 0.0)
        out[r.f] = {"psi": None if empty else float(r.psi), "js_distance": None if jsd is None else math.sqrt(jsd),
                    "linf": None if empty else float(r.linf)}
    return out
