# %% [markdown]
# # Build a training set ad hoc
#
# The Python API behind `fstore-batch build`: read the Delta feature tables, pick features, join
# them onto the labels as of each label's time, add the last clicks, and look at the result.
# Runs on the tiny sample by default (its own HBase tables, prefix `nb`, and its own Delta root);
# set `SIZE = "small"` for more.

# %%
import os
from datetime import timedelta
from pathlib import Path

ROOT = Path.cwd() if (Path.cwd() / "conf").is_dir() else Path.cwd().parent
os.chdir(ROOT)  # paths in the configs are relative to the project root

SIZE = "tiny"
DATA = ".data/notebooks"

# %%
import matplotlib.pyplot as plt
from pyspark.sql import functions as F

from fstore_batch.config import FeatureStoreConfig, SparkConfig, load_config
from fstore_batch.joins.pit import point_in_time_join
from fstore_batch.joins.sequences import SequenceSource, last_n_events
from fstore_batch.joins.spec import FeatureSource
from fstore_batch.sample.quickstart import prepare_sample_store
from fstore_batch.session import build_session

store = load_config(FeatureStoreConfig, "conf/sample.yaml", env={},
                    overrides=["hbase.table_prefix=nb", f"storage.root={DATA}/delta"])
spark = build_session(SparkConfig(app_name="notebook-build", master="local[2]",
                                  conf={"spark.sql.shuffle.partitions": "4", "spark.ui.showConsoleProgress": "false"}))
spark.sparkContext.setLogLevel("ERROR")
ready = prepare_sample_store(spark, store, labels_dir=f"{DATA}/labels", size=SIZE)
{t: [s["mode"] for s in snaps] for t, snaps in ready["snapshots"].items()}

# %% [markdown]
# ## Labels and feature tables
# Labels are impressions (`label` = clicked). Feature tables are the Delta snapshots: one row per
# entity key and cell time (`event_ts`), typed columns.

# %%
labels = spark.read.parquet(ready["labels"])
tables = {name: spark.read.format("delta").load(store.storage.table_path(name))
          for name in ("user_profile", "item_stats", "user_embedding", "user_events")}
print(f"{labels.count()} labels, click rate {labels.agg(F.avg('label')).first()[0]:.3f}")
tables["user_profile"].orderBy("user_id", "event_ts").show(4, truncate=False)

# %% [markdown]
# ## The point-in-time join
# Each label gets, per feature, the latest value at or before its time, within the table's TTL.

# %%
sources = [
    FeatureSource("user_profile", tables["user_profile"], {"user_id": "user_id"},
                  ["age", "country", "sessions_7d"], ttl=timedelta(days=30), prefix="u_"),
    FeatureSource("item_stats", tables["item_stats"], {"item_id": "item_id"},
                  ["category", "ctr_7d"], ttl=timedelta(days=2), prefix="i_"),
    FeatureSource("user_embedding", tables["user_embedding"], {"user_id": "user_id"}, ["user_emb"],
                  ttl=timedelta(days=14)),
]
rows = point_in_time_join(labels, sources, label_ts="event_ts")
rows = last_n_events(rows, SequenceSource("clicks", tables["user_events"], {"user_id": "user_id"}, ["item_id"],
                                          n=10, max_age=timedelta(days=7)), label_ts="event_ts")
rows = rows.cache()
print(f"{rows.count()} rows x {len(rows.columns)} columns")
rows.select("request_id", "event_ts", "label", "u_age", "u_country", "i_category", "i_ctr_7d",
            F.size("clicks_item_id").alias("clicks")).orderBy(F.desc("event_ts")).show(5, truncate=False)

# %% [markdown]
# ## How complete are the features?
# Share of labels with a value per feature: early labels have less history behind them.

# %%
features = ["u_age", "u_country", "u_sessions_7d", "i_category", "i_ctr_7d", "user_emb"]
coverage = rows.groupBy(F.to_date("event_ts").alias("day")).agg(
    *[F.avg(F.col(f).isNotNull().cast("double")).alias(f) for f in features]).orderBy("day").toPandas()
ax = coverage.set_index("day").plot(figsize=(9, 3.5), title="feature coverage by label day")
ax.set_ylabel("share of labels with a value")
plt.tight_layout()

# %% [markdown]
# ## Click rate against item CTR and clicks in the last week

# %%
pdf = rows.select("label", "i_ctr_7d", F.size("clicks_item_id").alias("recent_clicks")).toPandas()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
pdf.groupby(pdf["i_ctr_7d"].round(2))["label"].mean().plot(ax=axes[0], marker="o", title="click rate by item ctr_7d")
pdf.groupby("recent_clicks")["label"].mean().plot(ax=axes[1], marker="o", title="click rate by clicks in last 7 days")
plt.tight_layout()

# %%
rows.unpersist()
spark.stop()
