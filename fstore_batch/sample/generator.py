"""A realistic, deterministic sample data set for a recommendation feature store.

Everything derives from one ``numpy.random.Generator`` seeded by ``seed``, so the same seed and
size always give identical data. The simulated month is ``[start, start + days)`` in UTC; every
timestamp is epoch milliseconds inside it.

Users' activity and items' popularity follow a bounded Zipf law (``P(rank k) ~ k^-alpha``), so a
few users and items dominate, as in production traffic. The data set has:

* ``user_profile``: profile features that change over the month (several versions per user; not
  every column changes at every update),
* ``user_embedding`` / ``item_embedding``: float32[64] vectors recomputed weekly by a batch job,
* ``item_stats``: daily 7-day impression/click counters and CTR per item,
* ``user_events``: click events (row key: user id + event time), written by a streaming job
  in one-minute micro-batches,
* ``user_sequence``: each active user's last 50 clicked items and their times, refreshed daily,
* ``labels``: the impression log (request id, user, item, position, event time, click label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

DAY_MS = 86_400_000
MINUTE_MS = 60_000
EMBEDDING_DIM = 64
SEQUENCE_LEN = 50
COUNTRIES = np.array(["US", "GB", "DE", "FR", "BR", "IN", "JP", "ES"])
COUNTRY_WEIGHTS = np.array([0.30, 0.12, 0.10, 0.08, 0.12, 0.15, 0.08, 0.05])
CATEGORIES = np.array(["news", "sports", "music", "movies", "games", "food", "travel", "tech"])


@dataclass(frozen=True)
class SampleSize:
    users: int
    items: int
    impressions: int

    @classmethod
    def preset(cls, name: str) -> SampleSize:
        try:
            return SIZES[name]
        except KeyError:
            raise ValueError(f"unknown sample size {name!r}; expected one of {', '.join(SIZES)}") from None


SIZES = {
    "tiny": SampleSize(users=200, items=400, impressions=4_000),
    "small": SampleSize(users=2_000, items=4_000, impressions=60_000),
    "medium": SampleSize(users=20_000, items=40_000, impressions=1_000_000),
    "large": SampleSize(users=100_000, items=200_000, impressions=5_000_000),
}


@dataclass(frozen=True)
class SampleSpec:
    size: SampleSize
    seed: int = 7
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC)
    days: int = 30
    zipf_alpha: float = 1.1
    max_profile_versions: int = 10

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * DAY_MS


@dataclass
class TableCells:
    """Cells of one HBase table, column-oriented: ``keys[i]`` is the row key tuple of row ``i``,
    ``ts[i]`` its cell timestamp, ``values[column][i]`` its value (``None`` = no cell)."""

    keys: list[tuple[Any, ...]] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    values: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, key: tuple[Any, ...], ts: int, **cols: Any) -> None:
        n = len(self.keys)
        self.keys.append(key)
        self.ts.append(int(ts))
        for col in set(self.values) | set(cols):
            if col not in self.values:  # a new column: earlier rows have no cell (built once, not per call)
                self.values[col] = [None] * n
            self.values[col].append(cols.get(col))

    def __len__(self) -> int:
        return len(self.keys)

    def cell_count(self) -> int:
        return sum(v is not None for col in self.values.values() for v in col)


@dataclass
class SampleData:
    spec: SampleSpec
    user_ids: np.ndarray
    item_ids: np.ndarray
    tables: dict[str, TableCells]
    labels: dict[str, np.ndarray]


def zipf_probabilities(n: int, alpha: float) -> np.ndarray:
    """P(rank k) proportional to k^-alpha for k = 1..n."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -alpha
    return w / w.sum()


def zipf_sample(rng: np.random.Generator, ids_by_rank: np.ndarray, alpha: float, size: int) -> np.ndarray:
    """Draw ``size`` ids, the id at rank k with probability ~ k^-alpha."""
    ranks = rng.choice(len(ids_by_rank), size=size, p=zipf_probabilities(len(ids_by_rank), alpha))
    return ids_by_rank[ranks]


def generate(spec: SampleSpec) -> SampleData:
    rng = np.random.default_rng(spec.seed)
    n_users, n_items = spec.size.users, spec.size.items
    user_ids = np.arange(1, n_users + 1, dtype=np.int64) + 1_000_000
    item_ids = np.arange(1, n_items + 1, dtype=np.int64) + 5_000_000
    # Popularity rank -> id: a seeded permutation, so popular ids are not simply the smallest.
    users_by_rank = rng.permutation(user_ids)
    items_by_rank = rng.permutation(item_ids)

    user_base = _unit(rng.standard_normal((n_users, EMBEDDING_DIM)))
    item_base = _unit(rng.standard_normal((n_items, EMBEDDING_DIM)))
    item_category = CATEGORIES[rng.integers(0, len(CATEGORIES), n_items)]

    labels = _impressions(spec, rng, users_by_rank, items_by_rank, user_base, item_base)
    tables = {
        "user_profile": _user_profiles(spec, rng, user_ids),
        "user_embedding": _embeddings(spec, rng, user_ids, user_base, hour=3),
        "item_embedding": _embeddings(spec, rng, item_ids, item_base, hour=4),
        "item_stats": _item_stats(spec, item_ids, item_category, labels),
        "user_events": _user_events(spec, rng, labels),
    }
    tables["user_sequence"] = _user_sequences(spec, tables["user_events"])
    return SampleData(spec, user_ids, item_ids, tables, labels)


def _unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def _impressions(spec: SampleSpec, rng: np.random.Generator, users_by_rank: np.ndarray,
                 items_by_rank: np.ndarray, user_base: np.ndarray, item_base: np.ndarray) -> dict[str, np.ndarray]:
    n = spec.size.impressions
    users = zipf_sample(rng, users_by_rank, spec.zipf_alpha, n)
    items = zipf_sample(rng, items_by_rank, spec.zipf_alpha, n)
    # Diurnal traffic: more impressions in the evening (UTC) than at night.
    day = rng.integers(0, spec.days, n)
    hour_w = 1.0 + 0.8 * np.sin((np.arange(24) - 9) / 24 * 2 * np.pi)
    hour = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    within = rng.integers(0, 3_600_000, n)
    event_ts = spec.start_ms + day * DAY_MS + hour * 3_600_000 + within
    order = np.argsort(event_ts, kind="stable")
    users, items, event_ts = users[order], items[order], event_ts[order]
    affinity = np.einsum("ij,ij->i", user_base[users - 1_000_001], item_base[items - 5_000_001])
    position = rng.integers(0, 10, n)
    p_click = 1 / (1 + np.exp(-(-3.0 + 4.0 * affinity - 0.15 * position)))
    label = (rng.random(n) < p_click).astype(np.int8)
    request_id = np.array([f"req-{spec.seed:04d}-{i:010d}" for i in range(n)])
    return {
        "request_id": request_id,
        "user_id": users.astype(np.int64),
        "item_id": items.astype(np.int64),
        "position": position.astype(np.int32),
        "event_ts_ms": event_ts.astype(np.int64),
        "label": label,
    }


def _user_profiles(spec: SampleSpec, rng: np.random.Generator, user_ids: np.ndarray) -> TableCells:
    out = TableCells()
    ages = rng.integers(18, 71, len(user_ids))
    countries = rng.choice(COUNTRIES, size=len(user_ids), p=COUNTRY_WEIGHTS)
    for uid, age, country in zip(user_ids.tolist(), ages.tolist(), countries.tolist()):
        n_versions = int(min(1 + rng.poisson(2.0), spec.max_profile_versions))
        times = np.sort(rng.choice(spec.days * DAY_MS, size=n_versions, replace=False)) + spec.start_ms
        ltv = float(rng.gamma(2.0, 20.0))
        premium = bool(rng.random() < 0.15)
        for v, ts in enumerate(times.tolist()):
            ltv = round(ltv + float(rng.gamma(1.0, 5.0)), 2)
            cols: dict[str, Any] = {"p:ltv": ltv, "p:sessions_7d": int(rng.poisson(6))}
            if v == 0:  # the first write carries the full profile
                cols.update({"p:age": age, "p:country": country, "p:is_premium": premium,
                             "p:prefs": {"lang": country.lower(), "topics": sorted(rng.choice(CATEGORIES, 2, replace=False).tolist())}})
            elif rng.random() < 0.2:  # upgrades/downgrades are rarer than activity updates
                premium = not premium
                cols["p:is_premium"] = premium
            out.add((uid,), ts, **cols)
    return out


def _embeddings(spec: SampleSpec, rng: np.random.Generator, ids: np.ndarray, base: np.ndarray, hour: int) -> TableCells:
    """Weekly batch recomputation: one version per entity at ``hour``:00 on days 0, 7, 14, ..."""
    out = TableCells()
    for week_day in range(0, spec.days, 7):
        ts = spec.start_ms + week_day * DAY_MS + hour * 3_600_000
        vecs = _unit(base + 0.1 * rng.standard_normal(base.shape).astype(np.float32))
        for eid, vec in zip(ids.tolist(), vecs):
            out.add((eid,), ts, **{"e:vec": vec})
    return out


def _item_stats(spec: SampleSpec, item_ids: np.ndarray, category: np.ndarray, labels: dict[str, np.ndarray]) -> TableCells:
    """Daily at 02:00: trailing 7-day impressions/clicks/CTR for items seen in those 7 days."""
    out = TableCells()
    day_of = (labels["event_ts_ms"] - spec.start_ms) // DAY_MS
    idx = labels["item_id"] - item_ids[0]
    n_items = len(item_ids)
    imps = np.zeros((spec.days + 1, n_items), dtype=np.int64)
    clicks = np.zeros((spec.days + 1, n_items), dtype=np.int64)
    np.add.at(imps, (day_of, idx), 1)
    np.add.at(clicks, (day_of, idx), labels["label"].astype(np.int64))
    first_written = np.zeros(n_items, dtype=bool)
    for d in range(1, spec.days + 1):
        lo = max(0, d - 7)
        imp7, clk7 = imps[lo:d].sum(axis=0), clicks[lo:d].sum(axis=0)
        ts = spec.start_ms + d * DAY_MS + 2 * 3_600_000
        if ts >= spec.end_ms:
            break
        for i in np.flatnonzero(imp7).tolist():
            cols: dict[str, Any] = {"s:impressions_7d": int(imp7[i]), "s:clicks_7d": int(clk7[i]),
                                    "s:ctr_7d": float(clk7[i]) / float(imp7[i])}
            if not first_written[i]:
                cols["s:category"] = str(category[i])
                first_written[i] = True
            out.add((int(item_ids[i]),), ts, **cols)
    return out


def _user_events(spec: SampleSpec, rng: np.random.Generator, labels: dict[str, np.ndarray]) -> TableCells:
    """Clicks as events; the stream job writes them in one-minute micro-batches (the cell ts)."""
    out = TableCells()
    clicked = np.flatnonzero(labels["label"] == 1)
    delay = rng.integers(500, 20_000, len(clicked))
    dwell = rng.gamma(2.0, 15_000.0, len(clicked)).astype(np.int32)
    for j, i in enumerate(clicked.tolist()):
        event_ts = int(labels["event_ts_ms"][i] + delay[j])
        ingest_ts = min((event_ts // MINUTE_MS + 1) * MINUTE_MS, spec.end_ms - 1)
        out.add((int(labels["user_id"][i]), event_ts), ingest_ts,
                **{"e:item_id": int(labels["item_id"][i]), "e:action": "click", "e:dwell_ms": int(dwell[j])})
    return out


def _user_sequences(spec: SampleSpec, events: TableCells) -> TableCells:
    """Daily at 01:00: each user with a new click that day gets their last 50 clicks, newest first."""
    out = TableCells()
    by_user: dict[int, list[tuple[int, int]]] = {}
    for (uid, event_ts), item in zip(events.keys, events.values.get("e:item_id", [])):
        by_user.setdefault(uid, []).append((event_ts, item))
    for uid, evs in sorted(by_user.items()):
        evs.sort()
        ts_arr = np.array([e[0] for e in evs], dtype=np.int64)
        for d in range(1, spec.days + 1):
            cut = spec.start_ms + d * DAY_MS + 3_600_000
            if cut >= spec.end_ms:
                break
            hi = int(np.searchsorted(ts_arr, cut, side="left"))
            lo_prev = int(np.searchsorted(ts_arr, cut - DAY_MS, side="left"))
            if hi == lo_prev:
                continue  # no new click since the last refresh
            window = evs[max(0, hi - SEQUENCE_LEN):hi][::-1]
            out.add((uid,), cut, **{"h:recent_items": [e[1] for e in window], "h:recent_ts": [e[0] for e in window]})
    return out
