"""The sample generator: deterministic by seed, timestamps inside the month, Zipf-skewed traffic."""

from __future__ import annotations

import numpy as np
import pytest

from fstore_batch.sample.generator import (
    DAY_MS,
    EMBEDDING_DIM,
    SampleSize,
    SampleSpec,
    generate,
    zipf_probabilities,
    zipf_sample,
)

TINY = SampleSpec(SampleSize.preset("tiny"), seed=11)


@pytest.fixture(scope="module")
def data():
    return generate(TINY)


def _fingerprint(d):
    parts = [repr(sorted(d.labels))]
    parts += [np.asarray(v).tobytes().hex() if np.asarray(v).dtype != object else repr(list(v)) for v in d.labels.values()]
    for name, t in sorted(d.tables.items()):
        parts.append(repr((name, t.keys, t.ts, {c: [np.asarray(x).tolist() if x is not None else None for x in vals]
                                                for c, vals in sorted(t.values.items())})))
    return "".join(parts)


def test_same_seed_gives_identical_data(data):
    assert _fingerprint(generate(TINY)) == _fingerprint(data)


def test_other_seed_gives_other_data(data):
    other = generate(SampleSpec(TINY.size, seed=12))
    assert _fingerprint(other) != _fingerprint(data)


def test_every_timestamp_is_inside_the_simulated_month(data):
    lo, hi = TINY.start_ms, TINY.end_ms
    assert hi - lo == 30 * DAY_MS
    for name, table in data.tables.items():
        ts = np.array(table.ts)
        assert ((ts >= lo) & (ts < hi)).all(), name
    ev = data.labels["event_ts_ms"]
    assert ((ev >= lo) & (ev < hi)).all()


def test_profiles_change_over_time_with_several_versions(data):
    profile = data.tables["user_profile"]
    versions: dict[int, list[int]] = {}
    for (uid,), ts in zip(profile.keys, profile.ts):
        versions.setdefault(uid, []).append(ts)
    assert len(versions) == TINY.size.users
    assert np.mean([len(v) for v in versions.values()]) > 2
    assert max(len(v) for v in versions.values()) <= TINY.max_profile_versions
    # Later versions update activity columns without rewriting the static ones.
    ages = profile.values["p:age"]
    assert sum(a is not None for a in ages) == TINY.size.users
    assert sum(v is not None for v in profile.values["p:ltv"]) == len(profile)


def test_embeddings_are_float32_64_and_weekly(data):
    emb = data.tables["user_embedding"]
    assert all(np.asarray(v).shape == (EMBEDDING_DIM,) and np.asarray(v).dtype == np.float32 for v in emb.values["e:vec"])
    days = sorted({(ts - TINY.start_ms) // DAY_MS for ts in emb.ts})
    assert days == [0, 7, 14, 21, 28]


def test_sequences_are_newest_first_and_before_their_cell_time(data):
    seq = data.tables["user_sequence"]
    for ts, items, times in zip(seq.ts, seq.values["h:recent_items"], seq.values["h:recent_ts"]):
        assert len(items) == len(times) <= 50
        assert times == sorted(times, reverse=True)
        assert times[0] < ts


def test_label_log_is_time_ordered_with_a_plausible_click_rate(data):
    ev = data.labels["event_ts_ms"]
    assert (np.diff(ev) >= 0).all()
    assert 0.01 < data.labels["label"].mean() < 0.2
    assert len(set(data.labels["request_id"].tolist())) == TINY.size.impressions


def test_zipf_sampler_follows_the_power_law():
    rng = np.random.default_rng(0)
    ids = np.arange(1000)
    draws = zipf_sample(rng, ids, 1.1, 400_000)
    counts = np.bincount(draws, minlength=1000)
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert slope == pytest.approx(-1.1, abs=0.05)
    assert counts[0] / counts[9] == pytest.approx(10 ** 1.1, rel=0.1)
    p = zipf_probabilities(1000, 1.1)
    assert p.sum() == pytest.approx(1.0) and (np.diff(p) < 0).all()


def test_traffic_is_skewed_towards_few_users_and_items(data):
    def top_share(ids, frac=0.1):
        counts = np.sort(np.unique(ids, return_counts=True)[1])[::-1]
        return counts[: max(1, int(len(counts) * frac))].sum() / counts.sum()

    assert top_share(data.labels["user_id"]) > 0.4
    assert top_share(data.labels["item_id"]) > 0.4
