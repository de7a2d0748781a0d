"""Request-id matching of the skew table against a brute-force oracle: duplicate ids on either
side collapse to one row, the earliest, and are counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fstore_batch.spark_local import local_frame
from fstore_batch.validation.config import DEFAULT_THRESHOLDS, FeatureKind, Tolerance
from fstore_batch.validation.features import Feature
from fstore_batch.validation.match import (
    MATCHED,
    OFFLINE_ONLY,
    ONLINE_ONLY,
    Sides,
    coverage,
    match_rows,
)

T0 = datetime(2026, 10, 1, tzinfo=UTC)
FEATURES = [Feature("x", "x", "x", FeatureKind.NUMERIC, Tolerance(), DEFAULT_THRESHOLDS),
            Feature("s", "s", "s", FeatureKind.SEQUENCE, Tolerance(), DEFAULT_THRESHOLDS)]
# (request id or None, user, seconds after T0, x, s): few ids and times, so duplicates and ties are common
row = st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(1, 2), st.integers(0, 2),
                st.one_of(st.none(), st.integers(0, 2).map(float)), st.lists(st.integers(0, 2), max_size=2))


def _oracle(rows: list[tuple]) -> dict[str, tuple[int, tuple | None]]:
    """id -> (row count, kept row): the earliest; None (not checked) when several rows share the
    earliest time (the identity hash orders them)."""
    out: dict[str, tuple[int, tuple | None]] = {}
    for rid in {r[0] for r in rows if r[0] is not None}:
        same = [r for r in rows if r[0] == rid]
        first = [r for r in same if r[2] == min(x[2] for x in same)]
        out[rid] = (len(same), first[0] if len(first) == 1 else None)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row, max_size=6), st.lists(row, max_size=6))
def test_request_id_matching_collapses_duplicates_like_the_oracle(spark, online, offline):
    ddl = "request_id string, user_id int, {ts} timestamp, x double, s array<int>"
    to_rows = (lambda rows: [(r[0], r[1], T0 + timedelta(seconds=r[2]), r[3], r[4]) for r in rows])
    log = local_frame(spark, to_rows(online), ddl.format(ts="request_ts"))
    training = local_frame(spark, to_rows(offline), ddl.format(ts="event_ts"))
    sides = Sides("request_id", "request_ts", "event_ts", ["user_id"])
    table = match_rows(log, training, sides, FEATURES, fallback=False)
    try:
        got = table.select("request_id", "_status", "_n_on", "_n_off", "_ts", "on__x", "off__x", "on__s", "off__s").collect()
        cov = coverage(table, sides)
    finally:
        table.unpersist()
    on, off = _oracle(online), _oracle(offline)
    by_id = {r.request_id: r for r in got if r.request_id is not None}
    assert sorted(r.request_id for r in got if r.request_id is not None) == sorted({*on, *off})
    assert sum(1 for r in got if r.request_id is None) == sum(1 for r in online + offline if r[0] is None)
    for rid in {*on, *off}:
        r = by_id[rid]
        assert r._status == (MATCHED if rid in on and rid in off else ONLINE_ONLY if rid in on else OFFLINE_ONLY)
        assert (r._n_on, r._n_off) == (on.get(rid, (0, None))[0], off.get(rid, (0, None))[0])
        for side, oracle in (("on", on), ("off", off)):
            if rid in oracle and oracle[rid][1] is not None:
                keep = oracle[rid][1]
                assert (r[f"{side}__x"], list(r[f"{side}__s"])) == (keep[3], keep[4])
    assert cov.matched == len(on.keys() & off.keys())
    assert cov.duplicate_ids_online == sum(1 for n, _ in on.values() if n > 1)
    assert cov.duplicate_ids_offline == sum(1 for n, _ in off.values() if n > 1)
    assert cov.online_rows == len(online) and cov.offline_rows == len(offline)
