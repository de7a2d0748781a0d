"""The CLI's failure behaviour and `doctor`, run as a user runs them (in-process)."""

from __future__ import annotations

import json

from tests.support.cli import CLI, run, run_cli


def test_doctor_passes_on_the_running_stack(hbase):
    proc = run_cli("doctor", "--skip-spark")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok] hbase thrift" in proc.stdout and "[ok] delta jars" in proc.stdout


def test_doctor_reports_a_stopped_hbase_with_its_fix(free_port):
    proc = run_cli("doctor", "--skip-spark", "--set", f"hbase.port={free_port}")
    assert proc.returncode == 1
    assert f"[FAIL] hbase thrift: 127.0.0.1:{free_port} unreachable" in proc.stdout
    assert "fix: start it with `make hbase-up`" in proc.stdout
    assert json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]["failed"] == ["hbase thrift"]


def test_bad_config_is_one_clear_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hbase:\n  port: not-a-port\n")
    proc = run(*CLI, "inspect", "--config", str(bad))  # a real process: what a user's shell sees
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("fstore-batch inspect: error: config ")
    assert str(bad) in lines[-1] and "'hbase.port'" in lines[-1] and "'not-a-port'" in lines[-1]
    assert "Traceback" not in proc.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    proc = run_cli("--debug", "inspect", "--config", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "no such file" in proc.stderr


def test_help_lists_every_verb():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for verb in ("doctor", "sample", "inspect"):
        assert verb in proc.stdout


def test_doctor_spark_check_round_trips_a_delta_table(spark):
    from fstore_batch.doctor import check_spark

    check = check_spark(None)
    assert check.ok, check.detail
    assert "wrote and read a Delta table" in check.detail
