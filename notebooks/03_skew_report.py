# %% [markdown]
# # Read a skew report
#
# Training-serving skew on the sample: build the CTR training set, serve it the way a faulty
# online system would (known faults at known rates, from `conf/skew/sample_faults.yaml`), validate,
# then look at what the report says and plot the worst features. Tiny sample by default.

# %%
import os
from pathlib import Path

ROOT = Path.cwd() if (Path.cwd() / "conf").is_dir() else Path.cwd().parent
os.chdir(ROOT)

SIZE = "tiny"
DATA = ".data/notebooks"

# %%
import matplotlib.pyplot as plt
import pandas as pd
from pyspark.sql import functions as F

from fstore_batch.config import FeatureStoreConfig, SparkConfig, load_config
from fstore_batch.config.training import TrainingSetConfig
from fstore_batch.joins.build import build_training_set, resolve_inputs
from fstore_batch.sample.online_log import FaultSpec, inject_faults, serve
from fstore_batch.sample.quickstart import prepare_sample_store
from fstore_batch.session import build_session
from fstore_batch.validation.config import SkewConfig
from fstore_batch.validation.io import feature_tables
from fstore_batch.validation.run import run_validation

store = load_config(FeatureStoreConfig, "conf/sample.yaml", env={},
                    overrides=["hbase.table_prefix=nb", f"storage.root={DATA}/delta"])
spark = build_session(SparkConfig(app_name="notebook-skew", master="local[2]",
                                  conf={"spark.sql.shuffle.partitions": "4", "spark.ui.showConsoleProgress": "false"}))
spark.sparkContext.setLogLevel("ERROR")
ready = prepare_sample_store(spark, store, labels_dir=f"{DATA}/labels", size=SIZE)

# %% [markdown]
# ## The offline side: the training set, and what the online system served
# The online log here is the training set served back with faults injected; a real one comes
# from the serving system's request log (schema: README, "Skew validation").

# %%
ts_cfg = load_config(TrainingSetConfig, "conf/training_sets/sample.yaml", env={},
                     overrides=[f"labels.path={ready['labels']}", f"output={DATA}/training/ctr_sample"])
built = build_training_set(spark, ts_cfg, resolve_inputs(spark, ts_cfg, store))
skew = load_config(SkewConfig, "conf/skew/sample.yaml", env={},
                   overrides=[f"metrics_table={DATA}/delta/skew_metrics", f"report.dir={DATA}/reports"])
faults = load_config(FaultSpec, "conf/skew/sample_faults.yaml", env={})
training = spark.read.format("delta").load(built["path"])
served = serve(training, request_id="request_id", ts=ts_cfg.labels.ts, keys=["user_id", "item_id"],
               features=[f.name for f in skew.features], request_ts="request_ts")
history = feature_tables(spark, built["inputs"], store, sorted({r.table for r in ts_cfg.features}))
online, injected = inject_faults(served, faults, request_id="request_id", request_ts="request_ts", ts_cfg=ts_cfg,
                                 feature_tables=history, tolerance=skew.tolerance)
online.write.mode("overwrite").parquet(f"{DATA}/online_log")
pd.DataFrame(injected).T[["kind", "rate", "rows"]]

# %% [markdown]
# ## Validate
# Matching by request id, per-feature metrics, a staleness search, verdicts, Great Expectations.

# %%
report = run_validation(spark, skew, online_log_path=f"{DATA}/online_log", training_set_path=built["path"],
                        store=store, ts_cfg=ts_cfg)
print(report.summary())
print("HTML report:", report.paths["html"])

# %% [markdown]
# ## The features, worst first

# %%
table = pd.DataFrame([{"feature": r.feature.name, "verdict": r.verdict.verdict.value,
                       "mismatch_rate": 1 - (r.metrics.get("match_rate") or 0),
                       "missing_online": r.metrics.get("null_rate_online"), "evidence": r.verdict.evidence}
                      for r in report.features]).sort_values("mismatch_rate", ascending=False)
table.head(8)

# %%
worst = table[table.verdict != "ok"].feature.tolist()
ax = table.set_index("feature")["mismatch_rate"].plot.barh(figsize=(8, 4), title="mismatch rate per feature")
ax.invert_yaxis()
plt.tight_layout()

# %% [markdown]
# ## Online against offline, for the numeric features that disagree
# A rounding bug shows as spikes online; a stale value as a shifted copy of the distribution.

# %%
pairs = online.alias("o").join(training.alias("t"), "request_id")
numeric = [f for f in worst if dict(training.dtypes).get(f) in ("double", "float", "int", "bigint")]
fig, axes = plt.subplots(1, max(len(numeric), 1), figsize=(5 * max(len(numeric), 1), 3.5), squeeze=False)
for ax, f in zip(axes[0], numeric):
    pdf = pairs.select(F.col(f"o.{f}").alias("online"), F.col(f"t.{f}").alias("offline")).toPandas()
    ax.hist([pdf["offline"].dropna(), pdf["online"].dropna()], bins=30, label=["offline", "online"])
    ax.set_title(f)
    ax.legend()
plt.tight_layout()

# %% [markdown]
# ## How stale were the stale values?
# For each mismatched `u_lifetime_value`, the age (at request time) of the profile version whose
# value was served. The injected lag is 2 days: a served version is at least that old.

# %%
profile = history["user_profile"].select("user_id", F.col("event_ts").alias("version_ts"), "lifetime_value")
mismatched = pairs.where(F.col("o.u_lifetime_value") != F.col("t.u_lifetime_value")).select(
    "request_id", F.col("o.user_id").alias("user_id"), F.col("o.request_ts").alias("request_ts"),
    F.col("o.u_lifetime_value").alias("served"))
ages = (mismatched.join(profile, (mismatched.user_id == profile.user_id) & (mismatched.served == profile.lifetime_value)
                        & (profile.version_ts <= mismatched.request_ts))
        .groupBy("request_id").agg(F.max((F.unix_seconds("request_ts") - F.unix_seconds("version_ts")) / 3600).alias("age_h"))
        .toPandas())
ax = ages["age_h"].plot.hist(bins=30, figsize=(7, 3.5), title="age of the served profile version (hours)")
ax.axvline(48, color="red", linestyle="--", label="injected lag: 48 h")
ax.legend()
plt.tight_layout()
stale = report.feature("u_lifetime_value").metrics
{k: stale.get(k) for k in ("stale_share", "lag_low_h", "lag_high_h")}

# %%
spark.stop()
