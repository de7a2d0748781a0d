"""Thresholds and verdicts: which metrics fire, and *why* a feature is skewed.

A feature with fewer matched rows than ``min_matched_rows`` is ``no_data``, which fails the run:
nothing validated is not a pass. A feature is ``ok`` when none of its thresholds fires. Otherwise its mismatching rows are split
into causes, each a fraction of the matched rows:

* ``missing_online`` - served null where training has a value;
* ``missing_offline`` - training null where a value was served;
* ``stale`` - the served value equals an earlier version of the feature (staleness search);
* ``encoding`` - the same value, represented differently: case/whitespace of a string, an
  embedding of the wrong dimension or with NaNs;
* ``transform_mismatch`` - everything else that differs; ``pattern`` says how (``scaled``,
  ``rounded``, ``offset``, ``noise``, ``truncated``, ``differs``).

The verdict is the largest cause, with its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from fstore_batch.validation.config import FeatureKind, Thresholds
from fstore_batch.validation.metrics import ROUNDING_DECIMALS


class Verdict(str, Enum):
    OK = "ok"
    STALE = "stale"
    TRANSFORM_MISMATCH = "transform_mismatch"
    MISSING_ONLINE = "missing_online"
    MISSING_OFFLINE = "missing_offline"
    ENCODING = "encoding"
    NO_DATA = "no_data"


# threshold field -> (metric, fires when the value is above (True) or below (False) the limit)
THRESHOLD_METRICS: dict[str, tuple[str, bool]] = {
    "max_mismatch_rate": ("mismatch_rate", True),
    "max_missing_online_rate": ("missing_online_rate", True),
    "max_missing_offline_rate": ("missing_offline_rate", True),
    "max_psi": ("psi", True),
    "max_js_distance": ("js_distance", True),
    "max_linf": ("linf", True),
    "min_cosine_mean": ("cosine_mean", False),
    "min_cosine_p5": ("cosine_p5", False),
    "max_wrong_dim_rate": ("wrong_dim_rate", True),
    "max_nan_rate": ("nan_rate_online", True),
    "max_length_mismatch_rate": ("length_mismatch_rate", True),
    "max_edit_distance_mean": ("edit_distance_mean", True),
}


@dataclass(frozen=True)
class Breach:
    feature: str
    metric: str
    value: float
    limit: float


@dataclass
class FeatureVerdict:
    feature: str
    kind: FeatureKind
    verdict: Verdict
    pattern: str | None
    evidence: str
    breaches: list[Breach] = field(default_factory=list)
    causes: dict[str, float] = field(default_factory=dict)


def limits(thresholds: Thresholds) -> dict[str, tuple[float, bool]]:
    """``{metric: (limit, fires_above)}`` of the set thresholds."""
    return {THRESHOLD_METRICS[k][0]: (float(v), THRESHOLD_METRICS[k][1])
            for k, v in thresholds.model_dump(exclude_none=True).items()}


def find_breaches(feature: str, metrics: dict[str, float | None], thresholds: Thresholds) -> list[Breach]:
    out = []
    for metric, (limit, above) in limits(thresholds).items():
        v = metrics.get(metric)
        if v is not None and (v > limit if above else v < limit):
            out.append(Breach(feature, metric, float(v), limit))
    return out


def causes(kind: FeatureKind, m: dict[str, float | None]) -> dict[str, float]:
    g = (lambda k: float(m.get(k) or 0.0))
    value_mismatch = g("value_mismatch_rate")
    encoding = 0.0
    if kind is FeatureKind.CATEGORICAL:
        encoding = g("case_only_rate")
    elif kind is FeatureKind.EMBEDDING:
        encoding = max(g("wrong_dim_rate"), g("nan_rate_online") - g("nan_rate_offline"), 0.0)
    encoding = min(encoding, value_mismatch)
    stale = min(g("stale_rate"), value_mismatch - encoding)
    return {"missing_online": g("missing_online_rate"), "missing_offline": g("missing_offline_rate"),
            "stale": stale, "encoding": encoding, "transform_mismatch": max(value_mismatch - stale - encoding, 0.0)}


def judge(feature: str, kind: FeatureKind, m: dict[str, float | None], thresholds: Thresholds,
          *, min_rows: int = 1) -> FeatureVerdict:
    n = int(m.get("n") or 0)
    if n < min_rows:
        return FeatureVerdict(feature, kind, Verdict.NO_DATA, None,
                              f"{n} matched rows, fewer than min_matched_rows {min_rows}: nothing to compare",
                              [Breach(feature, "matched_rows", float(n), float(min_rows))], {})
    br = find_breaches(feature, m, thresholds)
    split = causes(kind, m)
    if not br:
        return FeatureVerdict(feature, kind, Verdict.OK, None,
                              f"match rate {_pct(m.get('match_rate'))}; no threshold fired", br, split)
    cause = max(split, key=lambda k: split[k]) if any(split.values()) else "transform_mismatch"
    verdict = Verdict(cause)
    pattern, evidence = _explain(verdict, kind, m, split)
    fired = ", ".join(f"{b.metric} {b.value:.4g} vs {b.limit:.4g}" for b in br)
    return FeatureVerdict(feature, kind, verdict, pattern, f"{evidence}; fired: {fired}", br, split)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def _near(a: float | None, b: float | None, rel: float = 1e-3) -> bool:
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def _explain(verdict: Verdict, kind: FeatureKind, m: dict[str, float | None],
             split: dict[str, float]) -> tuple[str | None, str]:
    share = f"{_pct(split[verdict.value])} of matched rows"
    if verdict is Verdict.MISSING_ONLINE:
        return None, f"served null where training has a value in {share}"
    if verdict is Verdict.MISSING_OFFLINE:
        return None, f"training null where a value was served in {share}"
    if verdict is Verdict.STALE:
        lo, hi = m.get("lag_low_h"), m.get("lag_high_h")
        lag = (f"served {lo:.1f}-{hi:.1f} h behind the offline store" if m.get("lag_consistent")
               else f"served an older version (median {m.get('lag_lower_p50_h') or 0:.1f}-"
                    f"{m.get('lag_upper_p50_h') or 0:.1f} h behind)")
        return "stale", f"{share} equal an earlier version of the feature; {lag}"
    if verdict is Verdict.ENCODING:
        if kind is FeatureKind.CATEGORICAL:
            return "case", f"{share} differ only in case or whitespace"
        if (m.get("wrong_dim_rate") or 0) >= (m.get("nan_rate_online") or 0):
            return "wrong_dimension", f"{share} have another dimension ({int(m.get('wrong_dim_count') or 0)} rows)"
        return "nan", f"{share} carry NaN values online ({int(m.get('nan_count_online') or 0)} rows)"
    share = f"{_pct(m.get('value_mismatch_rate'))} of matched rows"
    if split["stale"] or split["encoding"]:
        share += (f" ({_pct(split['stale'])} also equal an earlier version, "
                  f"{_pct(split['encoding'])} differ in encoding)")
    return _transform(kind, m, share)


def _transform(kind: FeatureKind, m: dict[str, float | None], share: str) -> tuple[str, str]:
    if kind is FeatureKind.NUMERIC:
        r05, r50, r95 = m.get("ratio_p05"), m.get("ratio_p50"), m.get("ratio_p95")
        if _near(r05, r95) and r50 is not None and abs(r50 - 1) > 1e-6:
            return "scaled", f"{share} are the training value x {r50:.4g} (online/offline ratio p5-p95 {r05:.4g}-{r95:.4g})"
        rounded = {d: m.get(f"rounded_{d}_rate") or 0.0 for d in ROUNDING_DECIMALS}
        best = max(rounded, key=lambda d: rounded[d])
        if rounded[best] >= 0.9:
            return "rounded", (f"{share} differ; {_pct(rounded[best])} of them equal the training value "
                               f"rounded to {best} decimals")
        d05, d95 = m.get("diff_p05"), m.get("diff_p95")
        if _near(d05, d95):
            return "offset", f"{share} are the training value {d05:+.4g}"
        return "differs", f"{share} differ (mean difference {m.get('mean_diff') or 0:.4g}, |diff| p99 {m.get('absdiff_p99') or 0:.4g})"
    if kind is FeatureKind.EMBEDDING:
        n05, n95 = m.get("mismatch_norm_ratio_p05"), m.get("mismatch_norm_ratio_p95")
        if _near(n05, n95) and n05 is not None and abs(n05 - 1) > 1e-3:
            return "scaled", f"{share} are the training vector x {n05:.4g}"
        return "noise", (f"{share} differ by noise: cosine among them {m.get('mismatch_cosine_mean') or 0:.4f}, "
                         f"norm ratio p5-p95 {n05 or 0:.3f}-{n95 or 0:.3f}")
    if kind is FeatureKind.SEQUENCE:
        vm, tr = m.get("value_mismatch_rate") or 0.0, m.get("truncated_rate") or 0.0
        if vm and tr / vm >= 0.9:
            return "truncated", (f"{share} differ; {_pct(tr / vm)} of them are a strict prefix of the training "
                                 f"sequence (mean length {m.get('length_mean_online') or 0:.1f} online vs "
                                 f"{m.get('length_mean_offline') or 0:.1f})")
        return "differs", f"{share} differ (edit distance mean {m.get('edit_distance_mean') or 0:.3g})"
    return "differs", f"{share} serve another category (JS distance {m.get('js_distance') or 0:.3g})"
