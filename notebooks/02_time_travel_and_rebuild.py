# %% [markdown]
# # Time travel and reproducible training sets
#
# Every snapshot is a Delta version. A training set records the exact versions it read (its
# manifest, in the output's commit), so it can be rebuilt identically after the tables move on.
# Uses the tiny sample of notebook 01 (created here if missing).

# %%
import os
from pathlib import Path

ROOT = Path.cwd() if (Path.cwd() / "conf").is_dir() else Path.cwd().parent
os.chdir(ROOT)

SIZE = "tiny"
DATA = ".data/notebooks"

# %%
import json

import pandas as pd

from fstore_batch.config import FeatureStoreConfig, SparkConfig, load_config
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.joins.build import build_training_set, read_manifest, rebuild, resolve_inputs
from fstore_batch.sample.quickstart import prepare_sample_store
from fstore_batch.session import build_session
from fstore_batch.storage.delta.catalog import snapshot_history

store = load_config(FeatureStoreConfig, "conf/sample.yaml", env={},
                    overrides=["hbase.table_prefix=nb", f"storage.root={DATA}/delta"])
spark = build_session(SparkConfig(app_name="notebook-time-travel", master="local[2]",
                                  conf={"spark.sql.shuffle.partitions": "4", "spark.ui.showConsoleProgress": "false"}))
spark.sparkContext.setLogLevel("ERROR")
ready = prepare_sample_store(spark, store, labels_dir=f"{DATA}/labels", size=SIZE)

# %% [markdown]
# ## The snapshot history of a table
# One Delta version per snapshot: the first as of 2026-10-20, then an incremental one as of 10-31.

# %%
profile_path = store.storage.table_path("user_profile")
pd.DataFrame([i.row() for i in snapshot_history(spark, profile_path)])

# %%
first = spark.read.format("delta").option("versionAsOf", 0).load(profile_path)
latest = spark.read.format("delta").load(profile_path)
print(f"version 0: {first.count()} rows, newest cell {first.agg({'event_ts': 'max'}).first()[0]}")
print(f"latest:    {latest.count()} rows, newest cell {latest.agg({'event_ts': 'max'}).first()[0]}")

# %% [markdown]
# ## A training set pinned to the first snapshots
# `version: 0` on every input: the features as they were known on 2026-10-20.

# %%
cfg = load_config(TrainingSetConfig, "conf/training_sets/sample.yaml", env={}, overrides=[
    f"labels.path={ready['labels']}", f"output={DATA}/training/pinned",
    *[f"features.{i}.version=0" for i in range(4)], "sequences.0.version=0"])
built = build_training_set(spark, cfg, resolve_inputs(spark, cfg, store))
{k: built[k] for k in ("rows", "columns", "version", "labels_null_key_or_time")}

# %% [markdown]
# ## Its manifest, and a rebuild from it
# The manifest names every input's exact version; `rebuild` pins them and must give the same rows.

# %%
manifest = read_manifest(spark, cfg.output)
print(json.dumps({"inputs": manifest["inputs"], "labels": manifest["labels"], "config_hash": manifest["config_hash"]},
                 indent=2))

# %%
again = rebuild(spark, manifest, output=f"{DATA}/training/pinned_rebuilt")
a = spark.read.format("delta").load(cfg.output)
b = spark.read.format("delta").load(again["path"])
differences = a.exceptAll(b).count() + b.exceptAll(a).count()
print(f"rebuilt {again['rows']} rows; rows that differ: {differences}")
assert differences == 0

# %% [markdown]
# ## What the later snapshot changes
# The same labels against the latest versions: more labels find a profile within its TTL.

# %%
latest_cfg = cfg.model_copy(update={"output": f"{DATA}/training/latest",
                                    "features": [f.model_copy(update={"version": None}) for f in cfg.features],
                                    "sequences": [s.model_copy(update={"version": None}) for s in cfg.sequences]})
now = build_training_set(spark, latest_cfg, resolve_inputs(spark, latest_cfg, store))
fresh = spark.read.format("delta").load(now["path"])
pd.DataFrame({"pinned (v0)": [a.where("u_age IS NOT NULL").count()],
              "latest": [fresh.where("u_age IS NOT NULL").count()]}, index=["labels with u_age"])

# %%
spark.stop()
