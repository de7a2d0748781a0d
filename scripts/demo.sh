#!/usr/bin/env bash
# The end-to-end demo on the built-in sample data (run by `make demo`, which installs and starts
# what it needs first). The daily pipeline's steps, as the Airflow DAG runs them, one after the
# other: seed HBase -> snapshot into Delta -> build the training set -> validate skew against the
# online serving log -> publish; then a summary of what was written.
set -euo pipefail
cd "$(dirname "$0")/.."

FS=".venv/bin/fstore-batch"
SIZE="${SIZE:-small}"
DAY="2026-10-30"
TS="conf/training_sets/sample.yaml"
OUT=".data/delta/training/ctr_sample"
STEPS=9
step=0
started=$SECONDS

say() {
  step=$((step + 1))
  printf '\n\033[1m== [%d/%d, %ds] %s\033[0m\n' "$step" "$STEPS" "$((SECONDS - started))" "$*"
}

say "check the set-up (Java, packages, Delta jars, config, HBase)"
$FS doctor --skip-spark

say "seed the deterministic sample ($SIZE) into HBase: 6 feature tables and an impression label log"
# Snapshots of another sample (another SIZE) would mix with this one: start their Delta tables over.
stamp=.data/sample/demo-size
if [ "$(cat "$stamp" 2>/dev/null)" != "$SIZE" ]; then rm -rf .data/delta .data/reports; fi
$FS sample --size "$SIZE"
echo "$SIZE" > "$stamp"
$FS inspect --table user_profile --rows 1

say "snapshot every HBase table into Delta as of 2026-10-20, then incrementally as of the end of $DAY"
$FS snapshot --as-of 2026-10-20T00:00:00Z
$FS snapshot --as-of 2026-10-31T00:00:00Z

say "build the CTR training set: point-in-time join of the snapshots onto every impression label"
$FS build "$TS" --show 2

say "the same set sampled (a quarter of the non-clicks, weighted), embeddings quantized, hot users split by day"
$FS build conf/training_sets/sample_compact.yaml

say "an online serving log with known faults injected (conf/skew/sample_faults.yaml), and a healthy one"
$FS sample-online-log --out .data/sample/online_log
$FS sample-online-log --clean --out .data/sample/online_log_clean

say "validate skew against the faulty log: the injected faults must be found, and the check must fail (exit 3)"
rc=0
$FS validate-skew --online-log .data/sample/online_log --training-set "$OUT" || rc=$?
if [ "$rc" -ne 3 ]; then echo "demo: expected validate-skew to fail with exit 3, got $rc" >&2; exit 1; fi
echo "(exit 3 as expected: in the daily pipeline this stops the run before publish)"

say "the daily pipeline for $DAY in one Spark session, as cron or Airflow runs it: snapshot, build the day, validate the healthy log, publish"
$FS run "$TS" --date "$DAY" --skew-config conf/skew/sample.yaml --online-log .data/sample/online_log_clean

say "summary: table versions, training sets, the last two skew runs"
$FS status --training-set "$OUT" --training-set .data/delta/training/ctr_sample_compact --skew-config conf/skew/sample.yaml --skew-runs 2
printf '\ndemo finished in %ds. HTML skew reports: .data/reports/skew/<run id>/report.html\n' "$((SECONDS - started))"
