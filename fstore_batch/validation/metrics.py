"""Per-feature skew metrics over the matched rows of the skew table, overall and per hour.

Each metric is one aggregate expression; all features' metrics are computed in one aggregation
pass on executors, and only the one result row comes back. Rates are fractions of the matched
rows (``n``) unless named otherwise:

* every kind: ``null_rate_online/offline``, ``missing_online_rate`` (online null, offline not),
  ``missing_offline_rate``, ``match_rate`` and ``mismatch_rate`` (with the tolerance; both null
  counts as a match), ``value_mismatch_rate`` (both present, different);
* numeric: ``mean_diff`` (online - offline), ``absdiff_p50/p90/p99/max``, evidence for a
  transformation among mismatches (``ratio_p05/p50/p95`` of online/offline, ``rounded_<d>_rate``:
  online equals offline rounded to d decimals, ``diff_p05/p95``);
* categorical: ``case_only_rate`` (equal after trim + lower-case);
* embedding: ``cosine_mean/p1/p5``, ``norm_ratio_mean``, ``wrong_dim_rate``/``_count``,
  ``nan_rate_online/offline``, ``mismatch_cosine_mean``, ``mismatch_norm_ratio_p05/p95``;
* sequence: ``exact_match_rate``, ``length_mismatch_rate``, ``edit_distance_mean/p95``,
  ``jaccard_mean``, ``topk_prefix_match_rate``, ``truncated_rate``, ``length_mean_online/offline``.

Rates over "both present" rows are over ``n_both``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fstore_batch.validation import compare as C
from fstore_batch.validation.config import FeatureKind
from fstore_batch.validation.features import Feature

SEP = "|"
DECILES = [i / 10 for i in range(1, 10)]
ROUNDING_DECIMALS = (0, 1, 2, 3, 4)
ACCURACY = 1_000  # percentile_approx: relative rank error 1/1000


def _rate(cond: Column, denom: Column) -> Column:
    return F.sum(F.when(cond, 1).otherwise(0)) / denom


def _named(f: Feature, metric: str, col: Column) -> Column:
    return col.alias(f"{f.name}{SEP}{metric}")


def feature_columns(f: Feature) -> dict[str, Column]:
    """Row-level helper columns of ``f`` (match flag, present flags), used by every pass."""
    a, b = F.col(f.on), F.col(f.off)
    return {"match": C.values_match(f.kind, a, b, f.tolerance), "both": a.isNotNull() & b.isNotNull()}


def base_columns(f: Feature, i: int) -> dict[str, Column]:
    """The expensive per-row flags, computed once in a first projection (``r<i>_match``, ``r<i>_both``)."""
    h = feature_columns(f)
    return {f"r{i}_match": h["match"], f"r{i}_both": h["both"]}


def row_columns(f: Feature, i: int) -> dict[str, Column]:
    """Per-row values the aggregates need, over the columns of ``base_columns`` (``r<i>_<name>``)."""
    a, b = F.col(f.on), F.col(f.off)
    match, both = F.col(f"r{i}_match"), F.col(f"r{i}_both")
    vmis = both & ~match
    cols = {"match": match, "both": both, "vmis": vmis, "on_null": a.isNull(), "off_null": b.isNull()}
    if f.kind is FeatureKind.NUMERIC:
        cols.update({"d": F.when(both, C.diff(a, b)), "on": a.cast("double"), "off": b.cast("double"),
                     "ratio": F.when(vmis & (b != 0), a.cast("double") / b.cast("double")),
                     "md": F.when(vmis, C.diff(a, b))})
        for dec in ROUNDING_DECIMALS:
            cols[f"rnd{dec}"] = vmis & C.close(a, F.round(b.cast("double"), dec), f.tolerance)
    elif f.kind is FeatureKind.CATEGORICAL:
        cols["case"] = both & C.case_only(a, b)
    elif f.kind is FeatureKind.EMBEDDING:
        wrong = both & (F.size(a) != F.size(b))
        if f.dim is not None:
            wrong = wrong | (a.isNotNull() & (F.size(a) != f.dim))
        cols.update({"cos": F.when(both, C.cosine(a, b)), "nr": F.when(both, C.norm_ratio(a, b)), "wrong": wrong,
                     "nan_on": F.coalesce(C.has_nan(a), F.lit(False)), "nan_off": F.coalesce(C.has_nan(b), F.lit(False))})
    else:
        cols.update({"ed": F.when(both, C.edit_distance(a, b)), "jac": F.when(both, C.jaccard(a, b)),
                     "exact": both & (a == b), "lenmis": both & (F.size(a) != F.size(b)),
                     "pre": both & C.prefix_match(a, b, f.top_k), "trunc": vmis & C.is_truncation(a, b),
                     "len_on": F.size(a), "len_off": F.size(b)})
    return {f"r{i}_{k}": v for k, v in cols.items()}


def aggregates(f: Feature, i: int) -> list[Column]:
    """The metrics of ``f`` over the columns of ``row_columns(f, i)``."""
    r = (lambda name: F.col(f"r{i}_{name}"))
    n = F.count(F.lit(1))
    n_both = F.sum(F.when(r("both"), 1).otherwise(0))
    vmis = r("vmis")
    out = {
        "n": n, "n_both": n_both,
        "null_rate_online": _rate(r("on_null"), n), "null_rate_offline": _rate(r("off_null"), n),
        "missing_online_rate": _rate(r("on_null") & ~r("off_null"), n),
        "missing_offline_rate": _rate(~r("on_null") & r("off_null"), n),
        "match_rate": _rate(r("match"), n), "mismatch_rate": _rate(~r("match"), n),
        "value_mismatch_rate": _rate(vmis, n),
    }
    if f.kind is FeatureKind.NUMERIC:
        out.update({
            "mean_diff": F.avg(r("d")), "absdiff_max": F.max(F.abs(r("d"))),
            "__absdiff_q": F.percentile_approx(F.abs(r("d")), [0.5, 0.9, 0.99], ACCURACY),
            "__offline_deciles": F.percentile_approx(r("off"), DECILES, ACCURACY),
            "__ratio_q": F.percentile_approx(r("ratio"), [0.05, 0.5, 0.95], ACCURACY),
            "__mdiff_q": F.percentile_approx(r("md"), [0.05, 0.95], ACCURACY),
            "mean_online": F.avg(r("on")), "mean_offline": F.avg(r("off")),
        })
        for dec in ROUNDING_DECIMALS:
            out[f"rounded_{dec}_rate"] = _rate(r(f"rnd{dec}"), F.sum(F.when(vmis, 1)))
    elif f.kind is FeatureKind.CATEGORICAL:
        out["case_only_rate"] = _rate(r("case"), n)
    elif f.kind is FeatureKind.EMBEDDING:
        out.update({
            "cosine_mean": F.avg(r("cos")), "__cosine_q": F.percentile_approx(r("cos"), [0.01, 0.05], ACCURACY),
            "norm_ratio_mean": F.avg(r("nr")),
            "wrong_dim_count": F.sum(F.when(r("wrong"), 1).otherwise(0)), "wrong_dim_rate": _rate(r("wrong"), n),
            "nan_count_online": F.sum(F.when(r("nan_on"), 1).otherwise(0)),
            "nan_count_offline": F.sum(F.when(r("nan_off"), 1).otherwise(0)),
            "nan_rate_online": _rate(r("nan_on"), n), "nan_rate_offline": _rate(r("nan_off"), n),
            "mismatch_cosine_mean": F.avg(F.when(vmis, r("cos"))),
            "__mnorm_q": F.percentile_approx(F.when(vmis, r("nr")), [0.05, 0.95], ACCURACY),
        })
    else:
        out.update({
            "exact_match_rate": _rate(r("exact"), n_both), "length_mismatch_rate": _rate(r("lenmis"), n_both),
            "edit_distance_mean": F.avg(r("ed")), "__edit_q": F.percentile_approx(r("ed"), [0.95], ACCURACY),
            "jaccard_mean": F.avg(r("jac")), "topk_prefix_match_rate": _rate(r("pre"), n_both),
            "truncated_rate": _rate(r("trunc"), n),
            "length_mean_online": F.avg(r("len_on")), "length_mean_offline": F.avg(r("len_off")),
        })
    return [_named(f, k, v) for k, v in out.items()]


def row_metrics(matched: DataFrame, features: list[Feature]) -> DataFrame:
    """The matched rows as their per-row metric values (plus ``request_id`` and ``_ts``)."""
    base = matched.select("request_id", "_ts", *[F.col(c) for f in features for c in (f.on, f.off)],
                          *[c.alias(name) for i, f in enumerate(features) for name, c in base_columns(f, i).items()])
    return base.select("request_id", "_ts", *[c.alias(name) for i, f in enumerate(features)
                                              for name, c in row_columns(f, i).items()])


_QUANTILE_NAMES = {
    "__absdiff_q": ["absdiff_p50", "absdiff_p90", "absdiff_p99"],
    "__ratio_q": ["ratio_p05", "ratio_p50", "ratio_p95"],
    "__mdiff_q": ["diff_p05", "diff_p95"],
    "__cosine_q": ["cosine_p1", "cosine_p5"],
    "__mnorm_q": ["mismatch_norm_ratio_p05", "mismatch_norm_ratio_p95"],
    "__edit_q": ["edit_distance_p95"],
}


def overall(matched: DataFrame, features: list[Feature]) -> tuple[dict[str, dict[str, float | None]],
                                                                   dict[str, list[float]]]:
    """``({feature: {metric: value}}, {feature: offline deciles})`` in one aggregation pass."""
    rows = row_metrics(matched, features)
    row = rows.agg(*[c for i, f in enumerate(features) for c in aggregates(f, i)]).first().asDict()
    metrics: dict[str, dict[str, float | None]] = {f.name: {} for f in features}
    deciles: dict[str, list[float]] = {}
    for key, value in row.items():
        name, metric = key.split(SEP, 1)
        if metric == "__offline_deciles":
            deciles[name] = [float(v) for v in (value or [])]
        elif metric in _QUANTILE_NAMES:
            for sub, v in zip(_QUANTILE_NAMES[metric], value or [None] * len(_QUANTILE_NAMES[metric])):
                metrics[name][sub] = None if v is None else float(v)
        else:
            metrics[name][metric] = None if value is None else float(value)
    return metrics, deciles


def hourly(matched: DataFrame, features: list[Feature]) -> list[dict[str, object]]:
    """Per hour of request time: ``{hour, feature, metric, value}`` rows (one aggregation pass)."""
    rows = row_metrics(matched, features)
    cols = []
    for i, f in enumerate(features):
        r = (lambda name, i=i: F.col(f"r{i}_{name}"))
        n = F.count(F.lit(1))
        cols += [_named(f, "n", n), _named(f, "match_rate", _rate(r("match"), n)),
                 _named(f, "missing_online_rate", _rate(r("on_null") & ~r("off_null"), n)),
                 _named(f, "null_rate_offline", _rate(r("off_null"), n))]
        if f.kind is FeatureKind.NUMERIC:
            cols.append(_named(f, "mean_diff", F.avg(r("d"))))
        elif f.kind is FeatureKind.EMBEDDING:
            cols.append(_named(f, "cosine_mean", F.avg(r("cos"))))
        elif f.kind is FeatureKind.SEQUENCE:
            cols.append(_named(f, "edit_distance_mean", F.avg(r("ed"))))
    out = []
    for row in rows.groupBy(F.date_trunc("hour", F.col("_ts")).alias("hour")).agg(*cols).collect():
        d = row.asDict()
        hour = d.pop("hour")
        for key, value in d.items():
            name, metric = key.split(SEP, 1)
            out.append({"hour": hour, "feature": name, "metric": metric, "value": None if value is None else float(value)})
    out.sort(key=lambda x: (x["feature"], x["hour"] is None, x["hour"] or 0, x["metric"]))
    return out
