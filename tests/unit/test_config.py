"""Config loading: the sample config, clear errors, overrides, identifier checks, config hash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from fstore_batch.config import Codec, FeatureStoreConfig, StorageConfig, config_hash, load_config
from fstore_batch.errors import ConfigError, ConfigFileError, ConfigValidationError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "conf" / "sample.yaml"

TABLE = """
tables:
  - name: user_profile
    hbase_table: user_profile
    row_key: {parts: [{name: user_id, type: int64}]}
    columns:
      - {column: "p:age", feature: age, codec: int32}
      - {column: "p:emb", feature: emb, codec: vector_f32, dim: 8}
"""


def write(tmp_path: Path, text: str, name: str = "fs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(path: Path, *overrides: str, env: dict[str, str] | None = None) -> FeatureStoreConfig:
    return load_config(FeatureStoreConfig, path, overrides=list(overrides), env=env or {})


def validation_error(path: Path, *overrides: str) -> ConfigValidationError:
    with pytest.raises(ConfigValidationError) as info:
        load(path, *overrides)
    return info.value


# --- the sample config -----------------------------------------------------------------------


def test_sample_config_loads():
    cfg = load(SAMPLE)
    assert cfg.hbase.port == 9090
    assert [t.name for t in cfg.tables] == [
        "user_profile", "user_embedding", "item_embedding", "item_stats", "user_sequence", "user_events",
    ]
    emb = cfg.table("user_embedding").columns[0]
    assert (emb.codec, emb.dim) == (Codec.VECTOR_F32, 64)
    assert cfg.table("user_profile").ttl == timedelta(days=30)
    assert cfg.table("user_events").row_key.key_names == ["user_id", "event_ts_ms"]
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "8"  # Spark conf values are strings


# --- clear errors: file, key, bad value, what was expected -----------------------------------


def test_typo_in_key_is_named(tmp_path):
    path = write(tmp_path, "hbase:\n  prot: 9090\n")
    err = validation_error(path)
    assert str(path) in str(err)
    assert "key 'hbase.prot': got 9090, expected no such key" in str(err)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "hbase:\n  port: abc\n")
    err = validation_error(path)
    assert str(path) in str(err)
    assert "key 'hbase.port': got 'abc', expected a valid integer" in str(err)


def test_unknown_codec_lists_the_valid_ones(tmp_path):
    path = write(tmp_path, TABLE.replace("codec: int32", "codec: int16"))
    err = validation_error(path)
    assert str(path) in str(err)
    assert "key 'tables[0:user_profile].columns[0].codec': got 'int16'" in str(err)
    assert "expected one of 'int64', 'int32'" in str(err)


def test_vector_f32_without_dim_asks_for_dim(tmp_path):
    path = write(tmp_path, TABLE.replace(", dim: 8", ""))
    err = validation_error(path)
    assert str(path) in str(err)
    assert "key 'tables[0:user_profile].columns[1]'" in str(err)
    assert "'feature': 'emb'" in str(err)
    assert "expected codec vector_f32 needs 'dim'" in str(err)


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigFileError, match="no such file") as info:
        load(missing)
    assert str(missing) in str(info.value)


def test_every_problem_is_listed_at_once(tmp_path):
    path = write(tmp_path, """
        hbase: {prot: 1, port: abc}
        storage: {root: "a b"}
    """)
    err = validation_error(path)
    assert [key for key, _, _ in err.problems] == ["hbase.port", "hbase.prot", "storage.root"]
    for key in ("'hbase.port'", "'hbase.prot'", "'storage.root'"):
        assert key in str(err)


def test_invalid_yaml_gives_the_line(tmp_path):
    path = write(tmp_path, "hbase:\n  port: 9090\n prot: 1\n")
    with pytest.raises(ConfigFileError) as info:
        load(path)
    assert str(path) in str(info.value)
    assert "invalid YAML at line 3" in str(info.value)


def test_top_level_list_is_refused(tmp_path):
    with pytest.raises(ConfigFileError, match="expected a mapping at the top level, got list"):
        load(write(tmp_path, "- hbase\n"))


def test_config_errors_are_value_errors_with_exit_code_2(tmp_path):
    err = validation_error(write(tmp_path, "hbase: {port: abc}\n"))
    assert isinstance(err, ValueError)
    assert err.exit_code == 2


# --- overrides -------------------------------------------------------------------------------


def test_env_override():
    assert load(SAMPLE, env={"FSTORE__HBASE__PORT": "9091"}).hbase.port == 9091


def test_cli_override_wins_over_env():
    assert load(SAMPLE, "hbase.port=9092", env={"FSTORE__HBASE__PORT": "9091"}).hbase.port == 9092


def test_process_environment_is_used_only_when_env_is_not_given():
    code = ("import sys; from fstore_batch.config import FeatureStoreConfig, load_config; "
            "print(load_config(FeatureStoreConfig, sys.argv[1]).hbase.port, "
            "load_config(FeatureStoreConfig, sys.argv[1], env={}).hbase.port)")
    out = subprocess.run([sys.executable, "-c", code, str(SAMPLE)], capture_output=True, text=True, check=True,
                         env={**os.environ, "FSTORE__HBASE__PORT": "9093"}).stdout.split()
    assert out == ["9093", "9090"]


def test_override_list_element_by_table_name():
    cfg = load(SAMPLE, "tables.user_profile.history=false")
    assert cfg.table("user_profile").history is False
    assert cfg.table("user_embedding").history is True


def test_override_of_unknown_table_is_named():
    with pytest.raises(ConfigError, match="no list element 'user_profil'"):
        load(SAMPLE, "tables.user_profil.history=false")


def test_override_through_a_scalar_is_a_config_error():
    with pytest.raises(ConfigError, match="'hbase.port' is not a mapping"):
        load(SAMPLE, "hbase.port.x.y=1")


def test_override_with_bad_value_names_the_key():
    err = validation_error(SAMPLE, "hbase.port=70000")
    assert "key 'hbase.port': got 70000, expected less than or equal to 65535" in str(err)


# --- names that reach Spark and Delta --------------------------------------------------------


def test_duplicate_feature_names_are_rejected(tmp_path):
    path = write(tmp_path, TABLE.replace("feature: emb", "feature: age"))
    err = validation_error(path)
    assert "expected unique feature names, got duplicates ['age']" in str(err)


def test_duplicate_table_names_are_rejected(tmp_path):
    body = textwrap.dedent(TABLE)
    path = write(tmp_path, body + body.split("tables:\n", 1)[1])
    err = validation_error(path)
    assert "expected unique table names, got duplicates ['user_profile']" in str(err)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("tables.user_profile.columns.0.feature=x; DROP TABLE y", "tables[0:user_profile].columns[0].feature"),
        ("tables.user_profile.name=user_profile` --", "tables[0:user_profile` --].name"),
        ("tables.user_profile.row_key.parts.0.name=id) OR 1=1",
         "tables[0:user_profile].row_key.parts[0:id) OR 1=1].name"),
        ("tables.user_profile.maintenance.zorder_by=[\"user_id; DROP\"]",
         "tables[0:user_profile].maintenance.zorder_by[0]"),
    ],
)
def test_sql_like_identifiers_are_rejected(override, key):
    err = validation_error(SAMPLE, override)
    bad = override.split("=", 1)[1].strip("[]\"")
    assert f"key '{key}': got {bad!r}" in str(err)
    assert "expected a name of letters, digits and '_' not starting with a digit" in str(err)


# --- config hash -----------------------------------------------------------------------------


def test_config_hash_ignores_key_order(tmp_path):
    a = write(tmp_path, "hbase: {host: h, port: 1234}\nstorage: {root: /x}\n", "a.yaml")
    b = write(tmp_path, "storage: {root: /x}\nhbase: {port: 1234, host: h}\n", "b.yaml")
    assert config_hash(load(a)) == config_hash(load(b))


def test_config_hash_changes_with_a_value():
    assert config_hash(load(SAMPLE)) == config_hash(load(SAMPLE))
    assert config_hash(load(SAMPLE)) != config_hash(load(SAMPLE, "tables.user_profile.ttl=P31D"))


# --- storage paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["s3a://bucket/prefix", "s3a://bucket/prefix/"])
def test_storage_table_path_on_object_store(root):
    assert StorageConfig(root=root).table_path("user_profile") == "s3a://bucket/prefix/user_profile"


def test_storage_table_path_refuses_non_identifiers():
    with pytest.raises(ValueError, match="not a table name"):
        StorageConfig(root="s3a://bucket/prefix").table_path("../other")


@pytest.mark.parametrize("root", ["s3a://bucket/my prefix", "/data/x';rm", "/data/`x`"])
def test_storage_root_with_whitespace_or_quotes_is_rejected(root):
    with pytest.raises(ValidationError):
        StorageConfig(root=root)
