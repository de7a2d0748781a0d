"""Per-feature skew metrics over the matched rows of the skew table: overall, per hour, quantile
sketches, histograms and the worst rows, all from **one aggregation pass** (one Spark job).

How: every row's per-feature values (match flag, difference, cosine, edit distance, ...) are
computed once in a projection; the rows are grouped by hour of request time into counts, sums,
maxima, one KLL quantile sketch (``kll_sketch_agg_double``) per feature and quantity, and the
worst mismatching row; those hour rows are then rolled up (sums of counts and sums, merged
sketches, the per-hour rows as a list) into one row, from which quantiles, PSI bins and
histogram bins are read off the merged sketches. Only that one row comes back to the driver.
Its size is bounded by the number of hours and features, never by the number of rows.

Rates are fractions of the matched rows (``n``) unless named otherwise:

* every kind: ``null_rate_online/offline``, ``missing_online_rate`` (online null, offline not),
  ``missing_offline_rate``, ``match_rate`` and ``mismatch_rate`` (with the tolerance; both null
  counts as a match), ``value_mismatch_rate`` (both present, different);
* numeric: ``mean_diff`` (online - offline), ``absdiff_p50/p90/p99/max``, ``psi`` (10 bins cut
  at the offline deciles), evidence for a transformation among mismatches
  (``ratio_p05/p50/p95`` of online/offline, ``rounded_<d>_rate``: online equals offline rounded
  to d decimals, ``diff_p05/p95``), ``mean_online/offline``;
* categorical: ``case_only_rate`` (equal after trim + lower-case); distances in
  ``distributions``;
* embedding: ``cosine_mean/p1/p5``, ``norm_ratio_mean``, ``wrong_dim_rate``/``_count``,
  ``nan_rate_online/offline``, ``mismatch_cosine_mean``, ``mismatch_norm_ratio_p05/p95``;
* sequence: ``exact_match_rate``, ``length_mismatch_rate``, ``edit_distance_mean/p95``,
  ``jaccard_mean``, ``topk_prefix_match_rate``, ``truncated_rate``, ``length_mean_online/offline``.

Rates over "both present" rows are over ``n_both``.

**Approximations.** Counts, rates, means and maxima are exact. Quantiles (``*_p<q>``), PSI and
the histograms come from KLL sketches with ``k = SKETCH_K`` (200): a value's rank is within
``RANK_ERROR`` (1.33 %, 99 % confidence) of the asked rank, and a bin's share within
``PMF_ERROR`` (1.65 %). A sketch is exact while it has seen fewer than ``k`` values. The worst
rows are the worst mismatching row of each hour, the ``k`` worst of those (exact when the ``k``
worst rows lie in different hours).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fstore_batch.validation import compare as C
from fstore_batch.validation.config import FeatureKind
from fstore_batch.validation.features import Feature

DECILES = [i / 10 for i in range(1, 10)]
ROUNDING_DECIMALS = (0, 1, 2, 3, 4)
SKETCH_K = 200
RANK_ERROR = 0.0133  # DataSketches KLL, k = 200: single-rank error at 99 % confidence
PMF_ERROR = 0.0165  # the same for a bin's share (PMF / histogram)
EPSILON = 1e-4  # PSI: a bin's share is floored here, so an empty bin stays finite
HIST_BINS = 20
GRID = 1_000  # PSI and histograms read ranks off a grid of quantiles at j / GRID
GRID_RANKS = [j / GRID for j in range(GRID + 1)]
RENDER_CHARS = 160

# sketch name -> (metric names, ranks)
QUANTILES: dict[str, tuple[list[str], list[float]]] = {
    "k_absd": (["absdiff_p50", "absdiff_p90", "absdiff_p99"], [0.5, 0.9, 0.99]),
    "k_ratio": (["ratio_p05", "ratio_p50", "ratio_p95"], [0.05, 0.5, 0.95]),
    "k_md": (["diff_p05", "diff_p95"], [0.05, 0.95]),
    "k_cos": (["cosine_p1", "cosine_p5"], [0.01, 0.05]),
    "k_mnr": (["mismatch_norm_ratio_p05", "mismatch_norm_ratio_p95"], [0.05, 0.95]),
    "k_ed": (["edit_distance_p95"], [0.95]),
}
APPROXIMATIONS = [
    (f"Quantiles (*_p<q>) come from KLL sketches (k = {SKETCH_K}): the returned value's rank is within "
     f"{100 * RANK_ERROR:.2f}% of the asked rank (99% confidence); exact below {SKETCH_K} values."),
    (f"Numeric PSI and the histograms read shares off a grid of {GRID} sketch quantiles: a share is within "
     f"{100 * (PMF_ERROR + 1 / GRID):.2f}% of the exact share (99% confidence)."),
    ("Worst rows: the worst mismatching row of each hour, then the worst of those (exact when the worst rows "
     "fall in different hours)."),
    "Counts, rates, means, maxima and the categorical distances (PSI, JS, L-inf) are exact.",
]
QUANTILE_SKETCHES = {FeatureKind.NUMERIC: ("k_absd", "k_ratio", "k_md"), FeatureKind.EMBEDDING: ("k_cos", "k_mnr"),
                     FeatureKind.SEQUENCE: ("k_ed",)}
# kind -> (online sketch, offline sketch or None) whose histogram the report draws
HISTOGRAM_SKETCHES = {FeatureKind.NUMERIC: ("k_on", "k_off"), FeatureKind.EMBEDDING: ("k_cos", None),
                      FeatureKind.SEQUENCE: ("k_lon", "k_loff")}
HOURLY_METRICS = {FeatureKind.NUMERIC: ("mean_diff", "d_sum", "d_n"), FeatureKind.EMBEDDING: ("cosine_mean", "cos_sum", "cos_n"),
                  FeatureKind.SEQUENCE: ("edit_distance_mean", "ed_sum", "ed_n")}


@dataclass
class Summary:
    """What the pass found: ``metrics`` ``{feature: {metric: value}}``; ``hourly`` rows
    ``{hour, feature, metric, value}``; ``histograms`` ``{feature: {"edges": [B + 1 floats],
    "online": [B counts], "offline": [B counts] | None, "of": what is counted}}``; ``worst``
    ``{feature: [{request_id, request_ts, online, offline, score, missing}]}``."""

    metrics: dict[str, dict[str, float | None]]
    hourly: list[dict[str, Any]]
    histograms: dict[str, dict[str, Any]] = field(default_factory=dict)
    worst: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def feature_columns(f: Feature) -> dict[str, str]:
    """Row-level helper columns of ``f`` as SQL: the match flag and both-present flag."""
    a, b = C.ident(f.on), C.ident(f.off)
    return {"match": C.values_match(f.kind, a, b, f.tolerance), "both": f"({a} IS NOT NULL AND {b} IS NOT NULL)"}


def _base_columns(f: Feature, i: int) -> dict[str, str]:
    return {f"r{i}_{k}": v for k, v in feature_columns(f).items()}


def _row_columns(f: Feature, i: int) -> dict[str, str]:
    """Per-row values the aggregates need (SQL), over the columns of ``_base_columns`` (``r<i>_<name>``).

    No higher-order functions except where two arrays differ (cosine, norm ratio, edit distance
    of the mismatching minority: ``compare`` short-cuts equal arrays)."""
    a, b = C.ident(f.on), C.ident(f.off)
    match, both = C.ident(f"r{i}_match"), C.ident(f"r{i}_both")
    vmis = f"({both} AND NOT {match})"
    cols = {"match": match, "both": both, "vmis": vmis, "on_null": f"({a} IS NULL)", "off_null": f"({b} IS NULL)"}
    on, off = f"CAST({a} AS DOUBLE)", f"CAST({b} AS DOUBLE)"
    if f.kind is FeatureKind.NUMERIC:
        cols.update({"d": f"CASE WHEN {both} THEN {C.diff(a, b)} END", "on": on, "off": off,
                     "ratio": f"CASE WHEN {vmis} AND {b} != 0 THEN {on} / {off} END",
                     "md": f"CASE WHEN {vmis} THEN {C.diff(a, b)} END"})
        for dec in ROUNDING_DECIMALS:
            cols[f"rnd{dec}"] = f"({vmis} AND {C.close(a, f'round({off}, {dec})', f.tolerance)})"
        score = f"abs({C.diff(a, b)})"
    elif f.kind is FeatureKind.CATEGORICAL:
        cols["case"] = f"({both} AND {C.case_only(a, b)})"
        score = C.double(1)
    elif f.kind is FeatureKind.EMBEDDING:
        wrong = f"({both} AND size({a}) != size({b}))"
        if f.dim is not None:
            wrong = f"({wrong} OR ({a} IS NOT NULL AND size({a}) != {int(f.dim)}))"
        cos = f"CASE WHEN {both} THEN {C.cosine(a, b)} END"
        cols.update({"cos": cos, "nr": f"CASE WHEN {both} THEN {C.norm_ratio(a, b)} END", "wrong": wrong,
                     "nan_on": f"coalesce({C.has_nan(a)}, false)", "nan_off": f"coalesce({C.has_nan(b)}, false)"})
        score = f"coalesce({C.double(1)} - {cos}, {C.double(3)})"  # no cosine (dimension, NaN, zero): worst
    else:
        ed = f"CASE WHEN {both} THEN {C.edit_distance(a, b)} END"
        cols.update({"ed": ed,
                     "jac": f"CASE WHEN {both} THEN {C.jaccard(a, b)} END",
                     "exact": f"({both} AND {a} = {b})", "lenmis": f"({both} AND size({a}) != size({b}))",
                     "pre": f"({both} AND {C.prefix_match(a, b, f.top_k)})",
                     "trunc": f"({vmis} AND {C.is_truncation(a, b)})", "len_on": f"size({a})", "len_off": f"size({b})"})
        score = f"CAST({ed} AS DOUBLE)"
    out = {f"r{i}_{k}": v for k, v in cols.items()}
    missing = f"CASE WHEN {a} IS NULL THEN 2 WHEN {b} IS NULL THEN 1 ELSE 0 END"
    # The worst row: missing first (then the larger score); compared as a struct by max().
    out[f"r{i}_worst"] = (f"CASE WHEN NOT {match} THEN named_struct('missing', {missing}, "
                          f"'score', CASE WHEN {missing} = 0 THEN {score} END, 'request_id', `request_id`, "
                          f"'request_ts', `_ts`, 'online', {a}, 'offline', {b}) END")
    return out


def _cnt(c: str) -> str:
    return f"count(CASE WHEN {c} THEN 1 END)"


def _hour_aggregates(f: Feature, i: int, k: int) -> dict[str, str]:
    """Counts, sums, maxima, sketches and the worst row of ``f`` in one hour (SQL aggregates)."""
    r = (lambda name: C.ident(f"r{i}_{name}"))
    kll = (lambda c: f"kll_sketch_agg_double(CAST({c} AS DOUBLE), {int(k)})")
    out: dict[str, str] = {
        "n": "count(1)", "both": _cnt(r("both")), "on_null": _cnt(r("on_null")), "off_null": _cnt(r("off_null")),
        "miss_on": _cnt(f"{r('on_null')} AND NOT {r('off_null')}"),
        "miss_off": _cnt(f"NOT {r('on_null')} AND {r('off_null')}"),
        "match": _cnt(r("match")), "vmis": _cnt(r("vmis")), "worst": f"max({r('worst')})",
    }

    def mean(name: str, col: str) -> None:
        out[f"{name}_sum"], out[f"{name}_n"] = f"sum({col})", f"count({col})"

    if f.kind is FeatureKind.NUMERIC:
        mean("d", r("d"))
        mean("on", r("on"))
        mean("off", r("off"))
        out["absd_max"] = f"max(abs({r('d')}))"
        out.update({f"rnd{d}": _cnt(r(f"rnd{d}")) for d in ROUNDING_DECIMALS})
        out.update({"k_absd": kll(f"abs({r('d')})"), "k_on": kll(r("on")), "k_off": kll(r("off")),
                    "k_ratio": kll(r("ratio")), "k_md": kll(r("md"))})
    elif f.kind is FeatureKind.CATEGORICAL:
        out["case"] = _cnt(r("case"))
    elif f.kind is FeatureKind.EMBEDDING:
        mean("cos", r("cos"))
        mean("nr", r("nr"))
        mean("mcos", f"CASE WHEN {r('vmis')} THEN {r('cos')} END")
        out.update({"wrong": _cnt(r("wrong")), "nan_on": _cnt(r("nan_on")), "nan_off": _cnt(r("nan_off")),
                    "k_cos": kll(r("cos")), "k_mnr": kll(f"CASE WHEN {r('vmis')} THEN {r('nr')} END")})
    else:
        for name in ("ed", "jac", "len_on", "len_off"):
            mean(name, r(name))
        out.update({name: _cnt(r(name)) for name in ("exact", "lenmis", "pre", "trunc")})
        out.update({"k_ed": kll(r("ed")), "k_lon": kll(r("len_on")), "k_loff": kll(r("len_off"))})
    return out


def _rollup(name: str, col: str, top: int) -> str:
    c = C.ident(col)
    if name.startswith("k_"):
        return f"kll_merge_agg_double({c})"
    if name == "worst":
        return f"slice(sort_array(collect_list({c}), false), 1, {max(top, 1)})"
    if name == "absd_max":
        return f"max({c})"
    return f"sum({c})"


def _quantiles(sketch: str, ranks: list[float]) -> str:
    """The sketch's quantiles at ``ranks`` (null for an empty sketch); the ranks are one array of
    DOUBLE literals (Spark wants them foldable; ``0.5D``, not ``CAST('0.5' AS DOUBLE)``: the grid
    has 1,001 of them per sketch, and the parser and analyser work per node)."""
    return (f"CASE WHEN kll_sketch_get_n_double({sketch}) > 0 THEN kll_sketch_get_quantile_double({sketch}, "
            f"array({', '.join(C.double(q) for q in ranks)})) END")


def _read_sketches(f: Feature, i: int) -> dict[str, str]:
    """Expressions over the rolled-up row: the quantile metrics, and each side's quantile grid
    (ranks ``j / GRID``) from which PSI and the histograms are read on the driver."""
    s = (lambda name: C.ident(f"a{i}_{name}"))
    out: dict[str, str] = {}
    for sk in QUANTILE_SKETCHES.get(f.kind, ()):
        out[f"q_{sk}"] = _quantiles(s(sk), QUANTILES[sk][1])
    for sk in HISTOGRAM_SKETCHES.get(f.kind, ()):
        if sk:
            out[f"g_{sk}"] = _quantiles(s(sk), GRID_RANKS)
            out[f"n_{sk}"] = f"kll_sketch_get_n_double({s(sk)})"
    return {f"x{i}_{k}": v for k, v in out.items()}


def summarise(matched: DataFrame, features: list[Feature], *, worst_rows: int = 5,
              sketch_k: int = SKETCH_K) -> Summary:
    """Every metric of every feature, overall and per hour, in one pass over ``matched``.

    ``matched``: skew-table rows (``request_id``, ``_ts`` and ``on__<f>``/``off__<f>`` per
    feature) that matched. Returns a ``Summary``; ``worst_rows`` (>= 0) bounds the worst rows
    kept per feature, ``sketch_k`` (8-65535) the KLL sketches' size and accuracy.

    >>> s = summarise(table.where("_status = 'matched'"), features)  # doctest: +SKIP
    >>> s.metrics["u_age"]["match_rate"], s.histograms["u_age"]["edges"][:2]  # doctest: +SKIP
    """
    row = summary_frame(matched, features, worst_rows=worst_rows, sketch_k=sketch_k).first()
    d = row.asDict(recursive=False) if row is not None else {}
    summary = Summary({}, _hourly(d.get("hours") or [], features))
    for i, f in enumerate(features):
        g = (lambda name, i=i: d.get(f"a{i}_{name}"))
        x = (lambda name, i=i: d.get(f"x{i}_{name}"))
        summary.metrics[f.name] = _overall(f, g, x)
        hist = _histogram(f, x)
        if hist:
            summary.histograms[f.name] = hist
        summary.worst[f.name] = [_worst(w) for w in (g("worst") or [])[:worst_rows]]
    return summary


def summary_frame(matched: DataFrame, features: list[Feature], *, worst_rows: int = 5,
                  sketch_k: int = SKETCH_K) -> DataFrame:
    """The one-row DataFrame ``summarise`` collects: one scan of ``matched``, grouped by hour, then rolled up."""
    def named(exprs: dict[str, str]) -> list[str]:
        return [f"{e} AS {C.ident(n)}" for n, e in exprs.items()]

    base = matched.selectExpr("request_id", "_ts", *[C.ident(c) for f in features for c in (f.on, f.off)],
                              *[e for i, f in enumerate(features) for e in named(_base_columns(f, i))])
    rows = base.selectExpr("date_trunc('hour', `_ts`) AS hour",
                           *[e for i, f in enumerate(features) for e in named(_row_columns(f, i))])
    names = {i: _hour_aggregates(f, i, sketch_k) for i, f in enumerate(features)}
    per_hour = rows.groupBy("hour").agg(*[F.expr(e) for i, aggs in names.items()
                                          for e in named({f"a{i}_{n}": c for n, c in aggs.items()})])
    plain = [f"a{i}_{n}" for i, aggs in names.items() for n in aggs if not n.startswith("k_") and n != "worst"]
    hours = f"collect_list(struct(hour, {', '.join(C.ident(c) for c in plain)})) AS hours"
    rolled = per_hour.agg(F.expr(hours), *[F.expr(e) for i, aggs in names.items() for e in named(
        {f"a{i}_{n}": _rollup(n, f"a{i}_{n}", worst_rows) for n in aggs})])
    reads = [e for i, f in enumerate(features) for e in named(_read_sketches(f, i))]
    return rolled.selectExpr("hours", *[C.ident(c) for c in plain], *[C.ident(f"a{i}_worst") for i in names], *reads)


def _div(a: Any, b: Any) -> float | None:
    return None if a is None or not b else float(a) / float(b)


def _overall(f: Feature, g: Any, x: Any) -> dict[str, float | None]:
    n = int(g("n") or 0)
    both = int(g("both") or 0)
    m: dict[str, float | None] = {
        "n": float(n), "n_both": float(both),
        "null_rate_online": _div(g("on_null"), n), "null_rate_offline": _div(g("off_null"), n),
        "missing_online_rate": _div(g("miss_on"), n), "missing_offline_rate": _div(g("miss_off"), n),
        "match_rate": _div(g("match"), n), "mismatch_rate": _div(n - int(g("match") or 0), n),
        "value_mismatch_rate": _div(g("vmis"), n),
    }
    if f.kind is FeatureKind.NUMERIC:
        m.update({"mean_diff": _div(g("d_sum"), g("d_n")), "absdiff_max": _float(g("absd_max")),
                  "mean_online": _div(g("on_sum"), g("on_n")), "mean_offline": _div(g("off_sum"), g("off_n"))})
        m.update({f"rounded_{d}_rate": _div(g(f"rnd{d}"), g("vmis")) for d in ROUNDING_DECIMALS})
        m["psi"] = psi(x("g_k_off"), x("g_k_on"))
    elif f.kind is FeatureKind.CATEGORICAL:
        m["case_only_rate"] = _div(g("case"), n)
    elif f.kind is FeatureKind.EMBEDDING:
        m.update({"cosine_mean": _div(g("cos_sum"), g("cos_n")), "norm_ratio_mean": _div(g("nr_sum"), g("nr_n")),
                  "wrong_dim_count": float(g("wrong") or 0), "wrong_dim_rate": _div(g("wrong"), n),
                  "nan_count_online": float(g("nan_on") or 0), "nan_count_offline": float(g("nan_off") or 0),
                  "nan_rate_online": _div(g("nan_on"), n), "nan_rate_offline": _div(g("nan_off"), n),
                  "mismatch_cosine_mean": _div(g("mcos_sum"), g("mcos_n"))})
    else:
        m.update({"exact_match_rate": _div(g("exact"), both), "length_mismatch_rate": _div(g("lenmis"), both),
                  "edit_distance_mean": _div(g("ed_sum"), g("ed_n")), "jaccard_mean": _div(g("jac_sum"), g("jac_n")),
                  "topk_prefix_match_rate": _div(g("pre"), both), "truncated_rate": _div(g("trunc"), n),
                  "length_mean_online": _div(g("len_on_sum"), g("len_on_n")),
                  "length_mean_offline": _div(g("len_off_sum"), g("len_off_n"))})
    for sk in QUANTILE_SKETCHES.get(f.kind, ()):
        metric_names = QUANTILES[sk][0]
        for name, v in zip(metric_names, x(f"q_{sk}") or [None] * len(metric_names)):
            m[name] = _float(v)
    return m


def cdf(grid: list[float], x: float) -> float:
    """Share of values ``<= x`` from a quantile grid (``grid[j]`` = quantile at rank ``j / GRID``)."""
    c = bisect.bisect_right(grid, x)
    return 0.0 if c == 0 else (c - 1) / (len(grid) - 1)


def psi(off_grid: list[float] | None, on_grid: list[float] | None) -> float | None:
    """PSI ``sum((q - p) * ln(q / p))`` over 10 bins cut at the offline deciles, from both sides'
    quantile grids: ``p`` the offline and ``q`` the online share of a bin, floored at ``EPSILON``.

    Equal cut points give empty bins on both sides, which add nothing (as if collapsed)."""
    if not off_grid or not on_grid:
        return None
    step = (len(off_grid) - 1) // 10
    cuts = [off_grid[step * j] for j in range(1, 10)]
    total = 0.0
    for pi, qi in zip(_shares([cdf(off_grid, c) for c in cuts]), _shares([cdf(on_grid, c) for c in cuts])):
        pe, qe = max(pi, EPSILON), max(qi, EPSILON)
        total += (qe - pe) * math.log(qe / pe)
    return total


def _shares(cdf_at_cuts: list[float]) -> list[float]:
    points = [0.0, *cdf_at_cuts, 1.0]
    return [max(b - a, 0.0) for a, b in itertools.pairwise(points)]


def _histogram(f: Feature, x: Any) -> dict[str, Any] | None:
    """``HIST_BINS`` equal-width bins; numbers span p1-p99 of both sides (the tails fall in the end bins)."""
    if f.kind not in HISTOGRAM_SKETCHES:
        return None
    on, off = HISTOGRAM_SKETCHES[f.kind]
    grids = [(x(f"g_{sk}"), x(f"n_{sk}")) if sk else (None, None) for sk in (on, off)]
    present = [g for g, _ in grids if g]
    if not present:
        return None
    if f.kind is FeatureKind.NUMERIC:
        lo, hi = min(g[GRID // 100] for g in present), max(g[GRID - GRID // 100] for g in present)
    else:
        lo, hi = min(g[0] for g in present), max(g[-1] for g in present)
    if f.kind is FeatureKind.EMBEDDING:
        hi = max(hi, 1.0)
        lo = min(lo, hi - 0.01)  # all (near) 1: still a readable axis
    elif hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    edges = [lo + (hi - lo) * j / HIST_BINS for j in range(HIST_BINS + 1)]

    def counts(grid: list[float] | None, n: int | None) -> list[int] | None:
        if not grid or not n:
            return None
        return [round(s * n) for s in _shares([cdf(grid, e) for e in edges[1:-1]])]

    of = {FeatureKind.NUMERIC: "value", FeatureKind.EMBEDDING: "cosine(online, offline)",
          FeatureKind.SEQUENCE: "length"}[f.kind]
    return {"edges": edges, "online": counts(*grids[0]), "offline": counts(*grids[1]), "of": of}


def _hourly(hours: list[Any], features: list[Feature]) -> list[dict[str, Any]]:
    out = []
    for h in hours:
        d = h.asDict()
        for i, f in enumerate(features):
            g = (lambda name, i=i, d=d: d.get(f"a{i}_{name}"))
            n = g("n") or 0
            vals = {"n": float(n), "match_rate": _div(g("match"), n), "missing_online_rate": _div(g("miss_on"), n),
                    "null_rate_offline": _div(g("off_null"), n)}
            if f.kind in HOURLY_METRICS:
                name, s, c = HOURLY_METRICS[f.kind]
                vals[name] = _div(g(s), g(c))
            out += [{"hour": d["hour"], "feature": f.name, "metric": k, "value": v} for k, v in vals.items()]
    out.sort(key=lambda r: (r["feature"], r["hour"] is None, r["hour"] or 0, r["metric"]))
    return out


def _worst(w: Any) -> dict[str, Any]:
    missing = {2: "online", 1: "offline"}.get(w["missing"])
    return {"request_id": w["request_id"], "request_ts": None if w["request_ts"] is None else str(w["request_ts"]),
            "online": _render(w["online"]), "offline": _render(w["offline"]),
            "score": _float(w["score"]), "missing": missing}


def _render(v: Any) -> str | None:
    if v is None:
        return None
    text = json.dumps(v, default=str, allow_nan=True) if isinstance(v, list) else str(v)
    return text if len(text) <= RENDER_CHARS else text[: RENDER_CHARS - 3] + "..."


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def hourly(matched: DataFrame, features: list[Feature]) -> list[dict[str, Any]]:
    """Per hour of request time: ``{hour, feature, metric, value}`` rows (``summarise(...).hourly``)."""
    return summarise(matched, features, worst_rows=0).hourly
