"""The HTML skew report in a real browser: Debian's headless ``chromium`` (``make browser``).

A small validation with one fault per feature kind writes the report; chromium opens it over the
DevTools protocol. No console errors; every feature section has its chart; the failed verdicts
are visible, first in the summary; a null side shows as "missing". The full-page screenshot is
kept as the test's artifact: ``.data/artifacts/skew_report.png``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import functions as F

from fstore_batch.spark_local import local_frame
from fstore_batch.validation import SkewConfig, validate_skew
from fstore_batch.validation.html import write_html
from tests.support.browser import open_page
from tests.support.cli import ROOT

ARTIFACT = ROOT / ".data" / "artifacts" / "skew_report.png"

CHECK = """(() => {
  const visible = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  return {
    sections: [...document.querySelectorAll('section.feature')].map(s => ({
      id: s.id, verdict: s.dataset.verdict,
      plots: [...s.querySelectorAll('svg.plot')].filter(p => visible(p) && p.querySelectorAll('rect,polyline').length > 1).length,
      verdictVisible: visible(s.querySelector('.verdict')), verdictText: s.querySelector('.verdict').innerText})),
    summary: [...document.querySelectorAll('table.summary tr.failed td:first-child a')].filter(visible)
      .map(a => a.getAttribute('href')),
    summaryOrder: [...document.querySelectorAll('table.summary td:first-child a')].map(a => a.innerText),
    missing: [...document.querySelectorAll('.missing')].filter(visible).length,
    text: document.body.innerText};
})()"""


def _frames(spark, n: int = 400):
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [(f"r{i}", i % 37, t0 + timedelta(minutes=i), float(i % 50), f"c{i % 7}",
             [float((i * 7 + j) % 11) - 5.0 for j in range(4)], list(range(i % 9 + 1))) for i in range(n)]
    training = local_frame(spark, rows, "request_id string, user_id long, event_ts timestamp, x double, "
                                           "c string, e array<float>, s array<long>")
    pick = (lambda m: F.abs(F.xxhash64("request_id", F.lit(m))) % 100 < 8)
    log = training.select(
        "request_id", "user_id", F.col("event_ts").alias("request_ts"),
        F.when(pick("x"), F.col("x") * 2).otherwise(F.col("x")).alias("x"),
        F.when(pick("c"), F.lit(None)).otherwise(F.col("c")).alias("c"), "e",
        F.when(pick("s"), F.slice("s", 1, 1)).otherwise(F.col("s")).alias("s"))
    return log, training


def test_report_in_headless_chromium(spark, tmp_path):
    log, training = _frames(spark)
    cfg = SkewConfig.model_validate({
        "name": "browser", "online_log": {"keys": ["user_id"]}, "offline_ts": "event_ts",
        "expectations": {"enabled": False}, "metrics_table": None, "report": {"worst_rows": 3},
        "thresholds": {"max_mismatch_rate": 0.01, "max_missing_online_rate": 0.01, "max_psi": 10.0}})
    report = validate_skew(spark, cfg, log, training, run_id="browser")
    failed = {r.feature.name for r in report.features if r.verdict.breaches}
    assert failed == {"x", "c", "s"}
    page = Path(write_html(report, tmp_path))
    run = open_page(page, CHECK, ARTIFACT)
    got = run.value
    assert run.errors == [], run.errors
    assert ARTIFACT.stat().st_size > 10_000  # a real rendering, kept for people to look at
    sections = {s["id"]: s for s in got["sections"]}
    assert set(sections) == {"f-x", "f-c", "f-e", "f-s"}
    for s in sections.values():
        assert s["plots"] == 2, s  # the distribution chart and the per-hour match rate
        assert s["verdictVisible"]
    for name in failed:
        assert sections[f"f-{name}"]["verdict"] != "ok" and "fired" in sections[f"f-{name}"]["verdictText"]
    assert sorted(got["summary"]) == sorted(f"#f-{n}" for n in failed)
    assert set(got["summaryOrder"][:3]) == failed and got["summaryOrder"][3] == "e"
    assert got["missing"] >= 1 and "1e+300" not in got["text"] and "missing online" in got["text"]
    assert json.loads(json.dumps(report.to_dict()))["approximations"]
