"""A self-contained HTML skew report (inline CSS and SVG, no scripts, no external files).

Layout: the verdict of the run; a summary with the failed features first (verdict, evidence and
a link to each one's section); coverage; the approximations the figures carry; then per
feature its verdict, online against offline as a chart (``svg``: value histogram, top-category
bars, cosine histogram or length histogram by kind), the per-hour match rate against its
threshold, every metric, and the worst rows (a null side shows as "missing").
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from fstore_batch.storage.files import is_local, location, write_text
from fstore_batch.validation import svg
from fstore_batch.validation.report import SkewReport
from fstore_batch.validation.verdict import Verdict

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#16794c;font-weight:600}.bad{color:#b3261e;font-weight:600}.mono{font-family:monospace;font-size:12px}
.fired{background:#fde8e6}details{margin:.4em 0}small{color:#666}.missing{color:#b3261e;font-style:italic}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plot{border:1px solid #eee}
tr.failed td{background:#fff6f5}.verdict{padding:.3em .6em;border-left:4px solid #16794c}
.verdict.bad{border-left-color:#b3261e;background:#fff6f5}
"""

KEY_METRICS = ["match_rate", "mismatch_rate", "missing_online_rate", "missing_offline_rate", "null_rate_online",
               "null_rate_offline", "psi", "js_distance", "linf", "mean_diff", "absdiff_p99", "cosine_mean",
               "cosine_p1", "cosine_p5", "norm_ratio_mean", "wrong_dim_count", "nan_count_online",
               "exact_match_rate", "length_mismatch_rate", "edit_distance_mean", "jaccard_mean",
               "topk_prefix_match_rate", "stale_rate", "lag_low_h", "lag_high_h"]


def write_html(report: SkewReport, folder: str | Path) -> str:
    """Write ``report.html`` into ``folder`` (a local path or a URI); returns where it went."""
    return write_text(location(folder) / "report.html", render(report))


def render(report: SkewReport) -> str:
    """The report as one HTML document (a string)."""
    d = report.to_dict()
    status = "<span class='bad'>FAILED</span>" if report.failed else "<span class='ok'>passed</span>"
    parts = [(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Skew report {escape(report.run_id)}"
              f"</title><style>{CSS}</style></head><body>"),
             f"<h1>Training-serving skew: {escape(report.config)}</h1>",
             f"<p>Run <b>{escape(report.run_id)}</b> at {escape(d['run_ts'])}: {status}</p>",
             _summary(d), _coverage(d["coverage"]), _approximations(d.get("approximations") or [])]
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


def _failed(f: dict[str, Any]) -> bool:
    return f["verdict"] != Verdict.OK.value


def _verdict_text(f: dict[str, Any]) -> str:
    return f["verdict"] + (f" ({f['pattern']})" if f["pattern"] and _failed(f) else "")


def _summary(d: dict[str, Any]) -> str:
    features = sorted(d["features"], key=lambda f: not _failed(f))  # failed first, in config order
    n_failed = sum(_failed(f) for f in features)
    head = (f"<h2>Summary</h2><p>{n_failed} of {len(features)} features failed"
            + ("" if not d["breaches"] else f"; {len(d['breaches'])} thresholds fired") + ".</p>")
    cov = [b for b in d["breaches"] if b["feature"] == "*"]
    if cov:
        head += "".join(f"<p class='bad'>coverage: {escape(b['metric'])} {_fmt(b['value'])} below "
                        f"{_fmt(b['limit'])}</p>" for b in cov)
    rows = ["<tr><th>feature</th><th>kind</th><th>verdict</th><th>match rate</th><th>evidence</th></tr>"]
    for f in features:
        cls = "bad" if _failed(f) else "ok"
        rows.append(f"<tr class='{'failed' if _failed(f) else ''}'><td><a href='#f-{escape(f['name'])}'>"
                    f"{escape(f['name'])}</a></td><td>{f['kind']}</td><td class='{cls}'>{escape(_verdict_text(f))}</td>"
                    f"<td class='num'>{100 * (f['metrics'].get('match_rate') or 0):.2f}%</td>"
                    f"<td>{escape(f['evidence'])}</td></tr>")
    return f"{head}<table class='summary'>{''.join(rows)}</table>"


def _coverage(c: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td class='num'>{_fmt(v)}</td></tr>" for k, v in c.items())
    return f"<h2>Coverage</h2><table>{rows}</table>"


def _approximations(items: list[str]) -> str:
    if not items:
        return ""
    return ("<details><summary>Approximations in these figures</summary><ul>"
            + "".join(f"<li>{escape(x)}</li>" for x in items) + "</ul></details>")


def _distribution(f: dict[str, Any]) -> str:
    name = f["name"]
    if f["kind"] == "categorical" and f.get("top_categories"):
        return svg.category_bars(f["top_categories"], title=f"{name}: top categories, online vs offline")
    h = f.get("histogram")
    if h and (h.get("online") or h.get("offline")):
        what = {"value": "values", "length": "sequence lengths", "cosine(online, offline)": "cosine(online, offline)"}
        title = f"{name}: {what.get(h['of'], h['of'])}" + (", online vs offline" if h.get("offline") else "")
        return svg.histogram(h["edges"], h.get("online"), h.get("offline"), of=h["of"], title=title)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' class='plot' role='img' width='{svg.W}' height='40'>"
            f"<title>{escape(name)}: no values</title><text x='10' y='24' font-size='12'>no values to plot</text></svg>")


def _feature(f: dict[str, Any], hourly: list[tuple[datetime, float]]) -> str:
    fired = {b["metric"] for b in f["breaches"]}
    m = f["metrics"]
    keys = [k for k in KEY_METRICS if k in m] + sorted(k for k in m if k not in KEY_METRICS)
    metric_rows = "".join(
        f"<tr class='{'fired' if k in fired else ''}'><th>{escape(k)}</th><td class='num'>{_fmt(m[k])}</td></tr>"
        for k in keys)
    limit = f["thresholds"].get("max_mismatch_rate")
    plots = [_distribution(f)]
    if hourly:
        plots.append(svg.hourly_line(hourly, threshold=None if limit is None else 1.0 - limit,
                                     title=f"{f['name']}: match rate per hour"))
    cls = "bad" if _failed(f) else "ok"
    return (f"<section class='feature' id='f-{escape(f['name'])}' data-verdict='{escape(f['verdict'])}'>"
            f"<h2>{escape(f['name'])} <small>{f['kind']}, online <code>{escape(f['online_column'])}</code>, offline "
            f"<code>{escape(f['offline_column'])}</code></small></h2>"
            f"<p class='verdict {cls}'><b class='{cls}'>{escape(_verdict_text(f))}</b>: {escape(f['evidence'])}</p>"
            f"<div class='plots'>{''.join(plots)}</div>"
            f"<details><summary>all metrics ({len(m)})</summary><table>{metric_rows}</table></details>"
            f"{_worst(f['worst_rows'])}</section>")


def _value(v: Any) -> str:
    return "<span class='missing'>missing</span>" if v is None else escape(str(v))


def _worst(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    body = []
    for r in rows:
        badness = (f"<span class='missing'>missing {escape(r['missing'])}</span>" if r.get("missing")
                   else _fmt(r.get("score")))
        body.append(f"<tr><td class='mono'>{escape(str(r['request_id']))}</td><td>{escape(str(r['request_ts']))}</td>"
                    f"<td class='mono'>{_value(r['online'])}</td><td class='mono'>{_value(r['offline'])}</td>"
                    f"<td class='num'>{badness}</td></tr>")
    return ("<h3>Worst rows</h3><table><tr><th>request id</th><th>request time</th><th>online</th>"
            f"<th>offline</th><th>badness</th></tr>{''.join(body)}</table>")


def _hourly_match(hourly: list[dict[str, Any]]) -> dict[str, list[tuple[datetime, float]]]:
    out: dict[str, list[tuple[datetime, float]]] = {}
    for h in hourly:
        if h["metric"] == "match_rate" and h["value"] is not None and h["hour"]:
            out.setdefault(h["feature"], []).append((datetime.fromisoformat(h["hour"]), h["value"]))
    return {k: sorted(v) for k, v in out.items()}


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
            rows = "".join(f"<tr><td>{escape(str(x['expectation']))}</td><td>{escape(str(x['column']))}</td></tr>"
                           for x in s["failed"])
            parts.append(f"<table><tr><th>failed expectation</th><th>column</th></tr>{rows}</table>")
    return "".join(parts)
