"""Config files that extend another (``extends:``), and the shipped cluster profile that does."""

from __future__ import annotations

from pathlib import Path

import pytest

from fstore_batch.config import FeatureStoreConfig, load_config
from fstore_batch.errors import ConfigFileError

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_merges_over_the_file_it_extends_mapping_by_mapping(tmp_path):
    _write(tmp_path / "base" / "store.yaml", "hbase: {host: h1, port: 9091}\nspark: {conf: {a: 1, b: 2}}\n"
                                              "storage: {root: /data/base}\n")
    child = _write(tmp_path / "profiles" / "child.yaml",
                   "extends: ../base/store.yaml\nhbase: {port: 9092}\nspark: {conf: {b: 3}}\n")
    cfg = load_config(FeatureStoreConfig, child, overrides=["spark.conf.c=4"], env={})
    assert (cfg.hbase.host, cfg.hbase.port) == ("h1", 9092)  # the base's host, the child's port
    assert cfg.spark.conf == {"a": "1", "b": "3", "c": "4"}  # merged key by key; overrides still last
    assert cfg.storage.root == "/data/base"


def test_extends_chains_through_several_files(tmp_path):
    _write(tmp_path / "a.yaml", "hbase: {host: a}\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\nhbase: {port: 9095}\n")
    c = _write(tmp_path / "c.yaml", "extends: b.yaml\nhbase: {timeout_ms: 500}\n")
    cfg = load_config(FeatureStoreConfig, c, env={})
    assert (cfg.hbase.host, cfg.hbase.port, cfg.hbase.timeout_ms) == ("a", 9095, 500)


@pytest.mark.parametrize(("files", "message"), [
    ({"x.yaml": "extends: missing.yaml\n"}, "extends: missing.yaml"),
    ({"x.yaml": "extends: y.yaml\n", "y.yaml": "extends: x.yaml\n"}, "extends itself"),
    ({"x.yaml": "extends: [a.yaml]\n"}, "expected the path of a config file"),
])
def test_a_bad_extends_names_the_file_and_the_problem(tmp_path, files, message):
    for name, text in files.items():
        _write(tmp_path / name, text)
    with pytest.raises(ConfigFileError, match=message) as e:
        load_config(FeatureStoreConfig, tmp_path / "x.yaml", env={})
    assert "x.yaml" in str(e.value)


def test_the_cluster_profile_is_the_sample_store_on_s3a():
    sample = load_config(FeatureStoreConfig, ROOT / "conf" / "sample.yaml", env={})
    cluster = load_config(FeatureStoreConfig, ROOT / "conf" / "profiles" / "cluster.yaml", env={})
    assert cluster.tables == sample.tables and cluster.hbase == sample.hbase
    assert cluster.storage.root.startswith("s3a://")
    conf = cluster.spark.conf
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.delta.logStore.s3a.impl"] == "io.delta.storage.S3SingleDriverLogStore"
    assert {k: v for k, v in conf.items() if k in sample.spark.conf} == sample.spark.conf
