"""Plain files at storage paths: URIs keep their scheme and authority, local paths stay local."""

from __future__ import annotations

from pathlib import Path

import pytest

from fstore_batch.storage.files import is_local, location, remove, upload_folder, write_text


@pytest.mark.parametrize(("base", "expected"), [
    ("s3a://bucket/reports", "s3a://bucket/reports/run-1/report.json"),
    ("s3a://bucket/reports/", "s3a://bucket/reports/run-1/report.json"),
    ("/data/reports", "/data/reports/run-1/report.json"),
    ("file:///data/reports", "file:///data/reports/run-1/report.json"),
])
def test_joining_keeps_a_uri_a_uri(base, expected):
    joined = location(base) / "run-1" / "report.json"
    assert str(joined) == expected
    assert str(Path("s3a://bucket/x")) == "s3a:/bucket/x"  # what pathlib would have made of it: a local folder


@pytest.mark.parametrize(("path", "local"), [
    ("/a/b", True), ("a/b", True), ("file:/a/b", True), ("file:///a/b", True),
    ("s3a://bucket/a", False), ("abfss://c@acct.dfs.core.windows.net/a", False), ("hdfs://nn:8020/a", False),
])
def test_is_local(path, local):
    assert is_local(path) is local


def test_local_writes_create_parents_and_replace(tmp_path):
    target = location(f"file://{tmp_path}") / "a" / "b.json"
    assert write_text(target, "one") == str(target)
    write_text(target, "two")
    assert (tmp_path / "a" / "b.json").read_text() == "two"
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.html").write_text("x")
    upload_folder(src, tmp_path / "copy")
    assert (tmp_path / "copy" / "sub" / "x.html").read_text() == "x"



def test_remove_deletes_a_folder_or_a_file_and_says_whether_there_was_one(tmp_path):
    (tmp_path / "d" / "date=2026-10-01").mkdir(parents=True)
    (tmp_path / "f.txt").write_text("x")
    assert remove(tmp_path / "d") and remove(tmp_path / "f.txt")
    assert not remove(tmp_path / "d") and not (tmp_path / "f.txt").exists()
