"""Small inline SVG charts for the skew report: no scripts, no fonts or files to fetch.

* ``histogram``: online against offline counts over the same bins (two translucent bar series);
* ``category_bars``: online against offline shares of the top categories (grouped bars);
* ``hourly_line``: a rate per hour, with time and value axes, date labels and a threshold line.

Each returns one ``<svg>`` element (a string) with ``role="img"`` and a ``<title>``.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

ONLINE, OFFLINE, THRESHOLD = "#d9480f", "#1f5fbf", "#b3261e"
W, H = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 66, 34, 12, 44


def _frame(title: str, body: list[str], legend: bool = True, height: int = H) -> str:
    parts = [(f"<svg xmlns='http://www.w3.org/2000/svg' class='plot' role='img' width='{W}' height='{height}' "
             f"viewBox='0 0 {W} {height}'><title>{escape(title)}</title>"),
             f"<rect x='0' y='0' width='{W}' height='{height}' fill='#fff'/>", *body]
    if legend:
        parts += [f"<rect x='{W - 170}' y='{TOP}' width='10' height='10' fill='{ONLINE}' fill-opacity='.55'/>",
                  f"<text x='{W - 156}' y='{TOP + 9}' font-size='11'>online</text>",
                  f"<rect x='{W - 100}' y='{TOP}' width='10' height='10' fill='{OFFLINE}' fill-opacity='.55'/>",
                  f"<text x='{W - 86}' y='{TOP + 9}' font-size='11'>offline</text>"]
    parts.append("</svg>")
    return "".join(parts)


def _axes(height: int, y_ticks: list[tuple[float, str]], x_ticks: list[tuple[float, str]], x_label: str,
          y_label: str) -> list[str]:
    x0, x1, y0, y1 = LEFT, W - RIGHT, height - BOTTOM, TOP
    out = [f"<line x1='{x0}' y1='{y0}' x2='{x1}' y2='{y0}' stroke='#444'/>",
           f"<line x1='{x0}' y1='{y0}' x2='{x0}' y2='{y1}' stroke='#444'/>"]
    for y, text in y_ticks:
        out += [f"<line x1='{x0 - 4}' y1='{y:.1f}' x2='{x1}' y2='{y:.1f}' stroke='#eee'/>",
                f"<text x='{x0 - 6}' y='{y + 4:.1f}' font-size='10' text-anchor='end'>{escape(text)}</text>"]
    for x, text in x_ticks:
        out += [f"<line x1='{x:.1f}' y1='{y0}' x2='{x:.1f}' y2='{y0 + 4}' stroke='#444'/>",
                f"<text x='{x:.1f}' y='{y0 + 15}' font-size='10' text-anchor='middle'>{escape(text)}</text>"]
    out += [f"<text x='{(x0 + x1) / 2:.1f}' y='{height - 6}' font-size='11' text-anchor='middle'>{escape(x_label)}</text>",
            (f"<text x='10' y='{(y0 + y1) / 2:.1f}' font-size='11' text-anchor='middle' "
            f"transform='rotate(-90 10 {(y0 + y1) / 2:.1f})'>{escape(y_label)}</text>")]
    return out


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.2e}"


def histogram(edges: list[float], online: list[int] | None, offline: list[int] | None, *, of: str,
              title: str) -> str:
    """Bars of both sides' shares per bin (``len(edges) == len(counts) + 1``)."""
    series = [(c, color) for c, color in ((offline, OFFLINE), (online, ONLINE)) if c]
    shares = [[v / max(sum(c), 1) for v in c] for c, _ in series]
    top = max([max(s) for s in shares] + [1e-9])
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP + 16
    bw = (x1 - x0) / max(len(edges) - 1, 1)
    body = _axes(H, [(y0 - (y0 - y1) * t, f"{100 * top * t:.0f}%") for t in (0, 0.5, 1)],
                 [(x0 + bw * j, _num(edges[j])) for j in range(0, len(edges), max(len(edges) // 5, 1))],
                 of, "share of rows")
    for s, (_, color) in zip(shares, series):
        for j, v in enumerate(s):
            h = (y0 - y1) * v / top
            body.append(f"<rect x='{x0 + bw * j + 1:.1f}' y='{y0 - h:.1f}' width='{max(bw - 2, 1):.1f}' "
                        f"height='{h:.1f}' fill='{color}' fill-opacity='.55'/>")
    return _frame(title, body, legend=len(series) > 1)


def category_bars(top: list[dict[str, Any]], *, title: str) -> str:
    """Grouped bars: each top category's share of the online and of the offline values."""
    n_on = max(sum(t["online"] for t in top), 1)
    n_off = max(sum(t["offline"] for t in top), 1)
    shares = [(t["online"] / n_on, t["offline"] / n_off) for t in top]
    peak = max([max(s) for s in shares] + [1e-9])
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP + 16
    gw = (x1 - x0) / max(len(top), 1)
    ticks = [(x0 + gw * (j + 0.5), str(t["value"])[:10]) for j, t in enumerate(top)]
    body = _axes(H, [(y0 - (y0 - y1) * t, f"{100 * peak * t:.0f}%") for t in (0, 0.5, 1)], ticks,
                 "category (top by rows; shares of the top categories)", "share")
    for j, (on, off) in enumerate(shares):
        for k, (v, color) in enumerate(((off, OFFLINE), (on, ONLINE))):
            h = (y0 - y1) * v / peak
            body.append(f"<rect x='{x0 + gw * j + 2 + k * (gw - 4) / 2:.1f}' y='{y0 - h:.1f}' "
                        f"width='{max((gw - 4) / 2 - 1, 1):.1f}' height='{h:.1f}' fill='{color}' fill-opacity='.75'/>")
    return _frame(title, body)


def hourly_line(points: list[tuple[datetime, float]], *, threshold: float | None, title: str,
                y_label: str = "match rate") -> str:
    """A line of ``(hour, rate)`` points with time and rate axes and the ``threshold`` line."""
    points = sorted(points)
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    span_t = max(t1 - t0, 3600.0)
    lo = min([v for _, v in points] + ([threshold] if threshold is not None else []))
    lo = max(min(lo - (1 - lo) * 0.1, 0.999), 0.0)
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP + 4
    sx = (lambda t: x0 + (x1 - x0) * (t - t0) / span_t)
    sy = (lambda v: y0 - (y0 - y1) * (v - lo) / max(1.0 - lo, 1e-9))
    y_ticks = [(sy(lo + (1 - lo) * k / 4), f"{100 * (lo + (1 - lo) * k / 4):.2f}%") for k in range(5)]
    n_ticks = min(6, len(points))
    x_ticks = []
    for k in range(n_ticks):
        t = t0 + span_t * k / max(n_ticks - 1, 1)
        x_ticks.append((sx(t), datetime.fromtimestamp(t, points[0][0].tzinfo).strftime("%m-%d %H:00")))
    body = _axes(H, y_ticks, x_ticks, f"hour of request time (UTC), {points[0][0]:%Y-%m-%d} to {points[-1][0]:%Y-%m-%d}",
                 y_label)
    if threshold is not None:
        body += [(f"<line x1='{x0}' y1='{sy(threshold):.1f}' x2='{x1}' y2='{sy(threshold):.1f}' stroke='{THRESHOLD}' "
                 f"stroke-dasharray='5 3'/>"),
                 (f"<text x='{x1 - 2}' y='{sy(threshold) - 4:.1f}' font-size='10' text-anchor='end' fill='{THRESHOLD}'>"
                 f"threshold {100 * threshold:.2f}%</text>")]
    xy = " ".join(f"{sx(t.timestamp()):.1f},{sy(v):.1f}" for t, v in points)
    body.append(f"<polyline fill='none' stroke='{OFFLINE}' stroke-width='1.5' points='{xy}'/>")
    if len(points) == 1:
        body.append(f"<circle cx='{sx(t0):.1f}' cy='{sy(points[0][1]):.1f}' r='3' fill='{OFFLINE}'/>")
    return _frame(title, body, legend=False)
