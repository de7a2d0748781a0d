"""A self-contained HTML skew report (inline CSS and SVG, no scripts, no external files)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from fstore_batch.storage.files import is_local, location, write_text
from fstore_batch.validation.report import SkewReport
from fstore_batch.validation.verdict import Verdict

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#16794c;font-weight:600}.bad{color:#b3261e;font-weight:600}.mono{font-family:monospace;font-size:12px}
.fired{background:#fde8e6}details{margin:.4em 0}small{color:#666}
"""

KEY_METRICS = ["match_rate", "mismatch_rate", "missing_online_rate", "missing_offline_rate", "null_rate_online",
               "null_rate_offline", "psi", "js_distance", "linf", "mean_diff", "absdiff_p99", "cosine_mean",
               "cosine_p1", "cosine_p5", "norm_ratio_mean", "wrong_dim_count", "nan_count_online",
               "exact_match_rate", "length_mismatch_rate", "edit_distance_mean", "jaccard_mean",
               "topk_prefix_match_rate", "stale_rate", "lag_low_h", "lag_high_h"]


def write_html(report: SkewReport, folder: str | Path) -> str:
    return write_text(location(folder) / "report.html", render(report))


def render(report: SkewReport) -> str:
    d = report.to_dict()
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>Skew report {escape(report.run_id)}</title>"
             f"<style>{CSS}</style></head><body>"),
             f"<h1>Training-serving skew: {escape(report.config)}</h1>",
             f"<p>Run <b>{escape(report.run_id)}</b> at {escape(d['run_ts'])}: "
             + ("<span class='bad'>FAILED</span>" if report.failed else "<span class='ok'>passed</span>") + "</p>",
             _coverage(d["coverage"]), "<h2>Features</h2>", _summary(d["features"])]
    hourly = _hourly_match(d["hourly"])
    for f in d["features"]:
        parts.append(_feature(f, hourly.get(f["name"], [])))
    if d["expectations"] is not None:
        parts.append(_expectations(d["expectations"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def _coverage(c: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td class='num'>{_fmt(v)}</td></tr>" for k, v in c.items())
    return f"<h2>Coverage</h2><table>{rows}</table>"


def _summary(features: list[dict[str, Any]]) -> str:
    head = "<tr><th>feature</th><th>kind</th><th>verdict</th><th>match rate</th><th>evidence</th></tr>"
    body = []
    for f in features:
        cls = "ok" if f["verdict"] == Verdict.OK.value else "bad"
        verdict = f["verdict"] + (f" ({f['pattern']})" if f["pattern"] and cls == "bad" else "")
        body.append(f"<tr><td><a href='#f-{escape(f['name'])}'>{escape(f['name'])}</a></td><td>{f['kind']}</td>"
                    f"<td class='{cls}'>{escape(verdict)}</td>"
                    f"<td class='num'>{100 * (f['metrics'].get('match_rate') or 0):.2f}%</td>"
                    f"<td>{escape(f['evidence'])}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _feature(f: dict[str, Any], hourly: list[tuple[str, float]]) -> str:
    fired = {b["metric"] for b in f["breaches"]}
    m = f["metrics"]
    keys = [k for k in KEY_METRICS if k in m] + sorted(k for k in m if k not in KEY_METRICS)
    metric_rows = "".join(
        f"<tr class='{'fired' if k in fired else ''}'><th>{escape(k)}</th><td class='num'>{_fmt(m[k])}</td></tr>"
        for k in keys)
    worst = ""
    if f["worst_rows"]:
        rows = "".join(f"<tr><td class='mono'>{escape(str(r['request_id']))}</td><td>{escape(str(r['request_ts']))}</td>"
                       f"<td class='mono'>{escape(str(r['online']))}</td><td class='mono'>{escape(str(r['offline']))}</td>"
                       f"<td class='num'>{_fmt(r['score'])}</td></tr>" for r in f["worst_rows"])
        worst = ("<h3>Worst rows</h3><table><tr><th>request id</th><th>request time</th><th>online</th>"
                 f"<th>offline</th><th>badness</th></tr>{rows}</table>")
    return (f"<h2 id='f-{escape(f['name'])}'>{escape(f['name'])} <small>{f['kind']}, online "
            f"<code>{escape(f['online_column'])}</code>, offline <code>{escape(f['offline_column'])}</code></small></h2>"
            f"<p><b>{escape(f['verdict'])}</b>{' (' + escape(f['pattern']) + ')' if f['pattern'] else ''}: "
            f"{escape(f['evidence'])}</p>{_sparkline(hourly)}"
            f"<details><summary>all metrics ({len(m)})</summary><table>{metric_rows}</table></details>{worst}")


def _hourly_match(hourly: list[dict[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for h in hourly:
        if h["metric"] == "match_rate" and h["value"] is not None:
            out.setdefault(h["feature"], []).append((h["hour"] or "", h["value"]))
    return {k: sorted(v) for k, v in out.items()}


def _sparkline(points: list[tuple[str, float]], width: int = 600, height: int = 40) -> str:
    if len(points) < 2:
        return ""
    lo = min(v for _, v in points)
    span = max(1.0 - lo, 1e-9)
    step = width / (len(points) - 1)
    xy = " ".join(f"{i * step:.1f},{height - (v - lo) / span * (height - 4) - 2:.1f}" for i, (_, v) in enumerate(points))
    return (f"<p><small>match rate per hour, {escape(points[0][0])} to {escape(points[-1][0])} "
            f"(min {100 * lo:.2f}%)</small><br><svg width='{width}' height='{height}' "
            f"style='border:1px solid #eee'><polyline fill='none' stroke='#1f5fbf' points='{xy}'/></svg></p>")


def _expectations(e: dict[str, Any]) -> str:
    parts = ["<h2>Great Expectations</h2>"]
    if e.get("data_docs"):
        href = ("file://" if is_local(e["data_docs"]) else "") + e["data_docs"]
        parts.append(f"<p>Data Docs: <a href='{escape(href)}'>{escape(e['data_docs'])}</a></p>")
    for name, s in e["suites"].items():
        cls = "ok" if s["success"] else "bad"
        parts.append(f"<p><b>{escape(name)}</b>: <span class='{cls}'>{'passed' if s['success'] else 'failed'}</span> "
                     f"({s['successful']}/{s['evaluated']} expectations)</p>")
        if s["failed"]:
            rows = "".join(f"<tr><td>{escape(str(x['expectation']))}</td><td>{escape(str(x['column']))}</td>"
                           f"<td>{_fmt(x['mostly'])}</td><td>{_fmt(x['observed'])}</td>"
                           f"<td>{_fmt(x['unexpected_percent'])}</td></tr>" for x in s["failed"])
            parts.append("<table><tr><th>expectation</th><th>column</th><th>mostly</th><th>observed</th>"
                         f"<th>unexpected %</th></tr>{rows}</table>")
    return "".join(parts)
