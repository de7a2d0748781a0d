"""Skew metric math against hand-computed values on small cases (PSI, JS, L-inf, cosine, edit distance)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fstore_batch.spark_local import local_frame
from fstore_batch.validation import compare as C
from fstore_batch.validation.config import DEFAULT_THRESHOLDS, FeatureKind, Tolerance
from fstore_batch.validation.distributions import distances
from fstore_batch.validation.features import Feature
from fstore_batch.validation.metrics import hourly, summarise, summary_frame

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def feature(name: str, kind: FeatureKind, **kw) -> Feature:
    return Feature(name, name, name, kind, kw.pop("tolerance", Tolerance()), DEFAULT_THRESHOLDS, **kw)


def table(spark, name: str, ddl: str, pairs: list[tuple], hours: list[int] | None = None):
    """A matched skew table with one feature: ``(online, offline)`` per row."""
    rows = [(f"r{i}", T0 + timedelta(hours=(hours[i] if hours else 0)), "matched", a, b) for i, (a, b) in enumerate(pairs)]
    return local_frame(spark, rows, f"request_id string, _ts timestamp, _status string, on__{name} {ddl}, off__{name} {ddl}")


def levenshtein(a: list, b: list) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_psi_over_offline_deciles_matches_hand_computation(spark):
    # Offline 1..10: deciles cut at 1..9, so each offline value is its own bin (p = 0.1 each).
    # Online: five values in bin 0, none in bins 1-4, one in each of bins 5-9.
    online = [1, 1, 1, 1, 1, 6, 7, 8, 9, 10]
    df = table(spark, "x", "double", [(float(a), float(b)) for a, b in zip(online, range(1, 11))])
    f = feature("x", FeatureKind.NUMERIC)
    metrics = summarise(df, [f]).metrics  # sketches are exact below k = 200 values
    got = metrics["x"]["psi"]
    eps = 1e-4
    expected = (0.5 - 0.1) * math.log(0.5 / 0.1) + 4 * (eps - 0.1) * math.log(eps / 0.1)
    assert got == pytest.approx(expected, rel=1e-9)  # 3.4041...
    assert metrics["x"]["mismatch_rate"] == pytest.approx(0.4)  # rows 2-5 differ


def test_js_distance_and_linf_match_hand_computation(spark):
    df = table(spark, "c", "string", [("a", "a"), ("a", "a"), ("a", "b"), ("c", "b")])
    f = feature("c", FeatureKind.CATEGORICAL)
    metrics = summarise(df, [f]).metrics
    dist, top = distances(df, [f])
    got = dist["c"]
    p, q = {"a": 0.5, "b": 0.5, "c": 0.0}, {"a": 0.75, "b": 0.0, "c": 0.25}
    m = {k: (p[k] + q[k]) / 2 for k in p}
    kl = (lambda x: sum(x[k] * math.log2(x[k] / m[k]) for k in x if x[k] > 0))
    assert got["js_distance"] == pytest.approx(math.sqrt((kl(p) + kl(q)) / 2), rel=1e-9)  # 0.62702...
    assert got["linf"] == pytest.approx(0.5)
    assert metrics["c"]["match_rate"] == pytest.approx(0.5)
    assert top["c"] == [{"value": "a", "online": 3, "offline": 2}, {"value": "b", "online": 0, "offline": 2},
                        {"value": "c", "online": 1, "offline": 0}]


def test_cosine_norm_ratio_wrong_dim_and_nan(spark):
    pairs = [([1.0, 0.0], [1.0, 1.0]),                     # cos 1/sqrt(2), norm ratio 1/sqrt(2)
             ([1.0, 2.0, 3.0][:2], [2.0, 4.0]),            # same direction, norm ratio 0.5
             ([1.0, 2.0, 3.0], [1.0, 2.0]),                 # wrong dimension
             ([float("nan"), 1.0], [0.5, 1.0])]             # NaN online
    df = table(spark, "e", "array<float>", pairs)
    metrics = summarise(df, [feature("e", FeatureKind.EMBEDDING)]).metrics
    m = metrics["e"]
    assert m["cosine_mean"] == pytest.approx((1 / math.sqrt(2) + 1.0) / 2, rel=1e-6)  # wrong-dim and NaN rows have none
    assert m["wrong_dim_count"] == 1 and m["nan_count_online"] == 1 and m["nan_count_offline"] == 0
    assert m["norm_ratio_mean"] == pytest.approx((1 / math.sqrt(2) + 0.5) / 2, rel=1e-6)
    one = local_frame(spark, [([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])], "a array<double>, b array<double>")
    assert one.selectExpr(C.cosine("a", "b")).first()[0] == pytest.approx(10 / 14)


def test_edit_distance_jaccard_prefix_on_hand_cases(spark):
    rows = [(list("kitten"), list("sitting")), ([1, 2, 3], [1, 3, 4, 5]), ([], [7]), ([5, 5], [5, 5])]
    df = local_frame(spark, [([str(x) for x in a], [str(x) for x in b]) for a, b in rows], "a array<string>, b array<string>")
    got = df.selectExpr(f"{C.edit_distance('a', 'b')} AS d", f"{C.jaccard('a', 'b')} AS j",
                        f"{C.prefix_match('a', 'b', 1)} AS p", f"{C.is_truncation('a', 'b')} AS t").collect()
    assert [r.d for r in got] == [3, 3, 1, 0]
    assert got[1].j == pytest.approx(2 / 5) and got[2].j == 0.0 and got[3].j == 1.0
    assert [r.p for r in got] == [False, True, False, True]
    assert [r.t for r in got] == [False, False, True, False]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(0, 4), max_size=8), min_size=2, max_size=2))
def test_edit_distance_matches_dynamic_programming(spark, pair):
    a, b = pair
    df = local_frame(spark, [(a, b)], "a array<long>, b array<long>")
    assert df.selectExpr(C.edit_distance("a", "b")).first()[0] == levenshtein(a, b)


def test_sequence_metrics_and_truncation_share(spark):
    off = list(range(20))
    pairs = [(off[:5], off), (off, off), (off, off), ([99, *off[1:]], off)]
    df = table(spark, "s", "array<long>", pairs)
    m = summarise(df, [feature("s", FeatureKind.SEQUENCE, top_k=3)]).metrics["s"]
    assert m["exact_match_rate"] == pytest.approx(0.5)
    assert m["length_mismatch_rate"] == pytest.approx(0.25)
    assert m["edit_distance_mean"] == pytest.approx((15 + 0 + 0 + 1) / 4)
    assert m["truncated_rate"] == pytest.approx(0.25)
    assert m["topk_prefix_match_rate"] == pytest.approx(0.75)  # only the row with a new head differs


def test_numeric_tolerance_nulls_and_hourly(spark):
    f = feature("x", FeatureKind.NUMERIC, tolerance=Tolerance(abs=0.01, rel=0.0))
    pairs = [(1.0, 1.005), (1.0, 1.02), (None, 2.0), (3.0, None), (None, None), (2.0, 2.0)]
    df = table(spark, "x", "double", pairs, hours=[0, 0, 1, 1, 1, 1])
    s = summarise(df, [f], worst_rows=2)
    m = s.metrics["x"]
    assert m["match_rate"] == pytest.approx(3 / 6)  # within tolerance, both null, equal
    assert m["missing_online_rate"] == pytest.approx(1 / 6) and m["missing_offline_rate"] == pytest.approx(1 / 6)
    assert m["value_mismatch_rate"] == pytest.approx(1 / 6)
    per_hour = {(h["hour"].hour, h["metric"]): h["value"] for h in hourly(df, [f])}
    assert per_hour[(0, "match_rate")] == pytest.approx(0.5) and per_hour[(1, "match_rate")] == pytest.approx(0.5)
    # The worst mismatching row of each hour (a null side first, shown as missing with no score, then the
    # largest |diff|), the worst of those first.
    assert [(w["request_id"], w["missing"], w["score"]) for w in s.worst["x"]] == [
        ("r2", "online", None), ("r1", None, pytest.approx(0.02))]


def test_every_metric_of_every_kind_comes_from_one_scan_and_two_shuffles(spark):
    """The plan's shape: one scan of the skew table, one shuffle by hour, one to roll up; no Python."""
    kinds = {"x": ("double", FeatureKind.NUMERIC), "c": ("string", FeatureKind.CATEGORICAL),
             "e": ("array<float>", FeatureKind.EMBEDDING), "s": ("array<long>", FeatureKind.SEQUENCE)}
    cols = ", ".join(f"on__{n} {t}, off__{n} {t}" for n, (t, _) in kinds.items())
    row = ("r0", T0, "matched", 1.0, 1.0, "a", "a", [1.0], [1.0], [1], [1])
    df = local_frame(spark, [row], f"request_id string, _ts timestamp, _status string, {cols}")
    plan = summary_frame(df, [feature(n, k) for n, (_, k) in kinds.items()])._jdf.queryExecution().executedPlan()
    text = plan.toString()
    assert text.count("Exchange") == 2 and text.count("Scan") == 1, text
    assert "ArrowEvalPython" not in text and "BatchEvalPython" not in text
