"""The label log writer: one Parquet file per day, and no native thread left running at exit.

`fstore-batch sample` used to abort at interpreter exit, after its metrics line, with
"terminate called without an active exception" (exit 134) now and then: Arrow's dataset writer
left its I/O threads holding the NumPy-backed label columns, and a thread that released one while
the interpreter was finalizing asked for the GIL and was ended mid-C++. The writer now writes in
the calling thread, so nothing of Arrow's outlives the call.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq

from fstore_batch.sample.generator import SampleSize, SampleSpec, generate
from fstore_batch.sample.writer import write_labels

CHILD = """
import json, os, sys
import pyarrow.compute, pyarrow.parquet  # imported before counting: importing starts no thread
from fstore_batch.sample.generator import SampleSize, SampleSpec, generate
from fstore_batch.sample.writer import write_labels

data = generate(SampleSpec(SampleSize.preset("tiny"), seed=7))
before = sorted(os.listdir("/proc/self/task"))
write_labels(data, sys.argv[1])
print(json.dumps({"before": before, "after": sorted(os.listdir("/proc/self/task"))}))
"""


def test_labels_are_one_file_per_day_with_every_row(tmp_path):
    data = generate(SampleSpec(SampleSize.preset("tiny"), seed=7))
    out = write_labels(data, tmp_path / "labels")
    days = sorted(p.name for p in out.iterdir())
    assert days and all(p.startswith("date=") for p in days)
    assert all([f.name for f in (out / d).iterdir()] == ["part-0.parquet"] for d in days)
    table = pq.read_table(out)
    assert table.num_rows == len(data.labels["request_id"])
    assert sorted(table.column("request_id").to_pylist()) == sorted(data.labels["request_id"].tolist())
    for row in table.select(["event_ts", "date"]).to_pylist()[:200]:
        assert row["event_ts"].strftime("%Y-%m-%d") == row["date"]  # each row in its UTC day's folder
    write_labels(data, out)  # a rerun replaces the log: no row twice
    assert pq.read_table(out).num_rows == len(data.labels["request_id"])


def test_writing_labels_leaves_no_native_thread_running_at_exit(tmp_path):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "labels")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    threads = json.loads(proc.stdout.strip().splitlines()[-1])
    assert threads["after"] == threads["before"]  # the dataset writer left 8 I/O threads here
