"""conf/pipelines.yaml (read by the Airflow DAGs, which never load the library) agrees with the
configs it names, and every spark-submit entry point in jobs/ documents each of its flags."""

from __future__ import annotations

import argparse
import re
import sys

import pytest
import yaml

from fstore_batch.cli import build_parser
from fstore_batch.config import FeatureStoreConfig, load_config
from fstore_batch.config.models import absolute_path
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.storage.delta.registry import REGISTRY_TABLE
from fstore_batch.validation.config import SkewConfig
from tests.support.cli import ROOT, run

PIPELINES = yaml.safe_load((ROOT / "conf" / "pipelines.yaml").read_text())
JOBS = {"snapshot_hbase.py": "snapshot", "build_training_set.py": "build", "validate_skew.py": "validate-skew",
        "publish_training_set.py": "publish", "run_pipeline.py": "run"}


@pytest.mark.parametrize("pipeline", PIPELINES["pipelines"], ids=lambda p: p["name"])
def test_declared_outputs_match_the_configs(pipeline):
    base = (ROOT / "conf" / PIPELINES["project_dir"]).resolve()
    assert base == ROOT
    store = load_config(FeatureStoreConfig, base / pipeline["store_config"], env={})
    ts = load_config(TrainingSetConfig, base / pipeline["training_set"], env={})
    skew = load_config(SkewConfig, base / pipeline["skew_config"], env={})
    out = pipeline["outputs"]
    assert {t.name for t in store.tables} >= set(pipeline["tables"])
    assert {f.table for f in ts.features} | {s.table for s in ts.sequences} <= set(pipeline["tables"])
    # Storage paths in the configs are made absolute when they are loaded (from the project dir here).
    assert store.storage.root == absolute_path(out["feature_root"])
    assert ts.output == absolute_path(out["training_set"]) and skew.metrics_table == absolute_path(out["skew_metrics"])
    assert store.storage.table_path(REGISTRY_TABLE) == absolute_path(out["registry"])
    assert (skew.store_config, skew.training_set) == (pipeline["store_config"], pipeline["training_set"])


def test_every_job_is_listed_here():
    assert sorted(p.name for p in (ROOT / "jobs").glob("*.py")) == sorted(JOBS)


@pytest.mark.parametrize("job", sorted(JOBS))
def test_job_help_explains_every_flag(job):
    [verb_parser] = [a.choices[JOBS[job]] for a in build_parser()._actions
                     if isinstance(a, argparse._SubParsersAction)]
    actions = [a for a in verb_parser._actions if not isinstance(a, argparse._HelpAction)]
    assert actions and all(a.help for a in actions), [a.dest for a in actions if not a.help]
    proc = run(sys.executable, f"jobs/{job}", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: fstore-batch {JOBS[job]}")
    for a in actions:
        name = a.option_strings[-1] if a.option_strings else a.dest
        assert re.search(rf"(^|\s){re.escape(name)}\b", proc.stdout), f"{job} --help does not show {name}"
