"""Great Expectations 1.x suites, run inside the validation over what it has already computed.

* ``training_set``, on the training DataFrame: schema (required columns exist, with the types
  their feature kinds need), null rates (``max_null_rate`` per column; ids, keys and times never
  null), value ranges (``ranges``) and label row uniqueness (``unique_by``) unless it is the
  request id the matching already deduplicates and counts;
* ``skew_table``, on one row of results the validation computed (no pass over the rows): per
  feature the mismatch rate at most ``max_mismatch_rate`` (the same tolerance as the metrics),
  and no duplicate request ids in the training set (``duplicate_ids_offline``, counted by the
  matching) when ``unique_by`` is that request id.

Result format ``BOOLEAN_ONLY`` (no unexpected-value samples, no extra passes). The context is
ephemeral (nothing is written besides the Data Docs site, when a folder is given). Results come
back as plain dicts for the report.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from fstore_batch.spark_local import local_frame
from fstore_batch.storage.files import is_local, location, upload_folder
from fstore_batch.validation.config import ExpectationsSpec, FeatureKind
from fstore_batch.validation.features import Feature
from fstore_batch.validation.match import Coverage

log = logging.getLogger(__name__)

KIND_TYPES = {
    FeatureKind.NUMERIC: ["ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType"],
    FeatureKind.CATEGORICAL: ["StringType", "BooleanType", "IntegerType", "LongType"],
    FeatureKind.EMBEDDING: ["ArrayType"],
    FeatureKind.SEQUENCE: ["ArrayType"],
}


def preload() -> threading.Thread:
    """Import Great Expectations in a background thread and return it (already started).

    The import costs 5-8 s of Python (``great_expectations`` pulls in altair, pandas, ...),
    paid once per process; started when the validation starts, it overlaps with the Spark jobs
    of the matching and the metrics, where the driver only waits. Importing it again later
    waits for this thread (Python's import lock); a failed import is raised there, not here.
    """
    def load() -> None:
        try:
            importlib.import_module("great_expectations")
            importlib.import_module("great_expectations.expectations")
        except Exception:  # the import in run_suites raises it with its own traceback
            log.debug("preloading Great Expectations failed", exc_info=True)

    thread = threading.Thread(target=load, name="gx-preload", daemon=True)
    thread.start()
    return thread


def training_suite(spec: ExpectationsSpec, features: list[Feature], *, ts: str, keys: list[str],
                   columns: list[str], request_id: str | None = None) -> list[Any]:
    """Expectations on the training set; ``unique_by == [request_id]`` is left to ``skew_suite``."""
    import great_expectations.expectations as gxe

    out: list[Any] = []
    for c in dict.fromkeys([*spec.unique_by, *keys, ts]):
        out.append(gxe.ExpectColumnToExist(column=c))
        if c in columns:
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=c))
    out.append(gxe.ExpectColumnValuesToBeOfType(column=ts, type_="TimestampType"))
    for f in features:
        out.append(gxe.ExpectColumnToExist(column=f.offline))
        out.append(gxe.ExpectColumnValuesToBeInTypeList(column=f.offline, type_list=KIND_TYPES[f.kind]))
    for c, rate in spec.max_null_rate.items():
        out.append(gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=round(1.0 - rate, 6)))
    for c, (lo, hi) in spec.ranges.items():
        out.append(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi))
    if request_id is not None and list(spec.unique_by) == [request_id]:
        pass  # counted by the matching (duplicate_ids_offline): checked in skew_suite
    elif len(spec.unique_by) == 1:
        out.append(gxe.ExpectColumnValuesToBeUnique(column=spec.unique_by[0]))
    elif spec.unique_by:
        out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.unique_by)))
    return out


def skew_facts(spark: SparkSession, coverage: Coverage, metrics: dict[str, dict[str, float | None]],
               features: list[Feature]) -> DataFrame:
    """One row of computed results: ``duplicate_ids_offline`` and ``mismatch_rate__<feature>``."""
    row = {"duplicate_ids_offline": float(coverage.duplicate_ids_offline),
           **{f"mismatch_rate__{f.name}": metrics[f.name].get("mismatch_rate") for f in features}}
    schema = ", ".join(f"`{k}` double" for k in row)
    return local_frame(spark, [tuple(row.values())], schema)


def skew_suite(features: list[Feature], *, unique_request_ids: bool = True) -> list[Any]:
    import great_expectations.expectations as gxe

    out: list[Any] = []
    if unique_request_ids:
        out.append(gxe.ExpectColumnValuesToBeBetween(column="duplicate_ids_offline", min_value=0, max_value=0))
    for f in features:
        limit = f.thresholds.max_mismatch_rate
        out.append(gxe.ExpectColumnValuesToBeBetween(column=f"mismatch_rate__{f.name}", min_value=0.0,
                                                     max_value=limit or 0.0))
    return out


def run_suites(suites: dict[str, tuple[DataFrame, list[Any]]], *, docs_dir: str | None) -> dict[str, Any]:
    """Validate each ``{name: (DataFrame, expectations)}``; build Data Docs into ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    # GX writes Data Docs to local folders only: for a URI, build them in a temporary folder and upload.
    staging = tempfile.TemporaryDirectory(prefix="fstore-gx-docs-") if docs_dir and not is_local(docs_dir) else None
    build_dir = Path(staging.name) if staging else location(docs_dir).local().resolve() if docs_dir else None
    if build_dir:
        build_dir.mkdir(parents=True, exist_ok=True)
        sites["fstore"] = {"class_name": "SiteBuilder",
                           "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                             "base_directory": str(build_dir)},
                           "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
    ctx = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites, analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False)))
    source = ctx.data_sources.add_spark("fstore_spark")
    results: dict[str, Any] = {}
    for name, (df, expectations) in suites.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all_rows")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name))
        for e in expectations:
            suite.add_expectation(e)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        actions = [gx.checkpoint.UpdateDataDocsAction(name="docs")] if docs_dir else []
        cp = ctx.checkpoints.add(gx.Checkpoint(name=f"{name}_checkpoint", validation_definitions=[vd],
                                               actions=actions, result_format={"result_format": "BOOLEAN_ONLY"}))
        run = cp.run(batch_parameters={"dataframe": df})
        results[name] = _summarise(run)
    if staging:
        with staging:
            upload_folder(staging.name, docs_dir)
    docs = str(location(docs_dir) / "index.html") if staging else str(build_dir / "index.html") if build_dir else None
    return {"success": all(r["success"] for r in results.values()), "suites": results, "data_docs": docs}


def _summarise(run: Any) -> dict[str, Any]:
    (result,) = run.run_results.values()
    failed = []
    for r in result.results:
        if not r.success:
            kw = r.expectation_config.kwargs
            res = r.result or {}
            failed.append({"expectation": r.expectation_config.type,
                           "column": kw.get("column") or kw.get("column_list"),
                           "mostly": kw.get("mostly"),
                           "observed": _plain(res.get("observed_value")),
                           "unexpected_percent": _plain(res.get("unexpected_percent")),
                           "exception": (r.exception_info or {}).get("exception_message")
                           if isinstance(r.exception_info, dict) else None})
    stats = dict(result.statistics)
    return {"success": bool(result.success), "evaluated": int(stats.get("evaluated_expectations", 0)),
            "successful": int(stats.get("successful_expectations", 0)), "failed": failed}


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)
