"""Embedding quantization for training sets, with the reconstruction error measured in the same pass.

* ``int8``: per vector, ``scale = max|x| / 127`` and ``q = round(x / scale)``; the column becomes
  ``array<tinyint>`` plus a ``<name>_scale`` float column (``x ~ q * scale``). Spark SQL
  higher-order functions, so it runs in the JVM.
* ``float16``: the column becomes ``binary``: the vector's IEEE half-precision values,
  little-endian (``numpy.frombuffer(b, "<f2")`` reads it back).

The error is collected with a Spark ``Observation`` while the output is written (no second pass):
per column the largest absolute error of any element and the mean and largest relative L2 error
``|x - x'| / |x|`` per vector.

Non-finite input: a vector holding NaN, +inf or -inf has no meaningful scale or half-precision
form, so it comes out null (and so does its ``_scale``); the other rows are unaffected, and the
observation counts such vectors per column (``non_finite_vectors``). A finite float16 input beyond
its range (|x| > 65504) still overflows to inf and shows as an infinite ``max_abs_error``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fstore_batch.config.training import QuantizeMode
from fstore_batch.errors import SchemaError

__all__ = ["QuantizeMode", "error_report", "quantize_embeddings"]


_F16 = T.StructType([T.StructField("value", T.BinaryType()), T.StructField("max_abs", T.DoubleType()),
                     T.StructField("rel_l2", T.DoubleType())])


def quantize_embeddings(df: DataFrame, columns: dict[str, QuantizeMode]) -> tuple[DataFrame, Observation | None]:
    """Quantize the ``columns`` (``array<float|double>``) of ``df``; the observation holds the errors.

    >>> out, errors = quantize_embeddings(df, {"user_emb": QuantizeMode.INT8})  # doctest: +SKIP
    >>> out.write.format("delta").save(path); errors.get  # doctest: +SKIP
    """
    if not columns:
        return df, None
    for name in columns:
        if name not in df.columns:
            raise SchemaError("training set", name, "an embedding column to quantize")
        dtype = df.schema[name].dataType
        if not (isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, (T.FloatType, T.DoubleType))):
            raise SchemaError("training set", name, "array<float> or array<double> to quantize", dtype.simpleString())
    out = df
    aggs = []
    for name, mode in columns.items():
        tmp = f"__q_{name}"
        x = F.col(name)
        finite = F.when(x.isNotNull() & is_finite_vector(x), x)
        out = out.withColumn(tmp, _int8(finite) if mode is QuantizeMode.INT8 else _float16_udf(finite))
        aggs += [F.count(F.when(x.isNotNull() & ~is_finite_vector(x), 1)).alias(f"{name}.non_finite_vectors"),
                 F.max(f"{tmp}.max_abs").alias(f"{name}.max_abs_error"),
                 F.avg(f"{tmp}.rel_l2").alias(f"{name}.mean_rel_l2_error"),
                 F.max(f"{tmp}.rel_l2").alias(f"{name}.max_rel_l2_error")]
    obs = Observation("quantization")
    out = out.observe(obs, *aggs)
    for name, mode in columns.items():
        tmp = f"__q_{name}"
        out = out.withColumn(name, F.col(f"{tmp}.value"))
        if mode is QuantizeMode.INT8:
            out = out.withColumn(f"{name}_scale", F.col(f"{tmp}.scale"))
        out = out.drop(tmp)
    return out, obs


def error_report(obs: Observation | None, columns: dict[str, QuantizeMode]) -> dict[str, dict[str, object]]:
    """``{column: {"mode", "non_finite_vectors", "max_abs_error", "mean_rel_l2_error", "max_rel_l2_error"}}``.

    Read it after the write (the observation fills while the output is written).
    """
    if obs is None:
        return {}
    got = obs.get
    return {name: {"mode": mode.value, "non_finite_vectors": int(got.get(f"{name}.non_finite_vectors") or 0),
                   **{k: got.get(f"{name}.{k}") for k in ("max_abs_error", "mean_rel_l2_error", "max_rel_l2_error")}}
            for name, mode in columns.items()}


def is_finite_vector(x: Column) -> Column:
    """True when no element of ``x`` is NaN or infinite (no lambda: Spark orders NaN above +inf)."""
    hi, lo = F.array_max(x), F.array_min(x)
    return F.coalesce(~F.isnan(hi) & (hi < F.lit(float("inf"))) & (lo > F.lit(float("-inf"))), F.lit(True))


def _int8(x: Column) -> Column:
    # No lambda below refers to anything but its own arguments: the optimizer inlines a per-row
    # value (the scale, or the cast vector) into a lambda that refers to it, which then recomputes
    # it for every element, O(dim^2) per vector. Per-row values enter as arrays of the vector's
    # length (``array_repeat``) zipped with it instead.
    x = x.cast("array<double>")
    top = F.coalesce(F.greatest(F.abs(F.array_max(x)), F.abs(F.array_min(x))), F.lit(0.0))  # max |x|, finite here
    scale = top / 127.0
    scales = F.array_repeat(scale, F.size(x))
    q = F.zip_with(x, scales, lambda v, s: F.when(s > 0, F.round(v / s)).otherwise(F.lit(0.0)).cast("tinyint"))
    diffs = F.zip_with(x, F.zip_with(q, scales, lambda b, s: b * s), lambda a, r: a - r)
    # Norms of x / max|x| (and diffs / max|x|), so squares cannot overflow for huge finite values.
    units = F.array_repeat(F.when(top > 0, top), F.size(x))  # null for an all-zero vector: no relative error

    def norm(v: Column) -> Column:
        return F.sqrt(F.aggregate(F.zip_with(v, units, lambda a, u: a / u), F.lit(0.0), lambda acc, a: acc + a * a))

    x_norm = norm(x)
    rel_l2 = norm(diffs) / F.when(x_norm > 0, x_norm)
    return F.when(x.isNotNull(), F.struct(q.alias("value"), scale.cast("float").alias("scale"),
                                          F.array_max(F.transform(diffs, F.abs)).alias("max_abs"), rel_l2.alias("rel_l2")))


@F.pandas_udf(_F16)
def _float16_udf(vectors: pd.Series) -> pd.DataFrame:
    n = len(vectors)
    out = pd.DataFrame({"value": pd.Series([None] * n, dtype=object), "max_abs": np.full(n, np.nan),
                        "rel_l2": np.full(n, np.nan)})
    present = vectors.notna().to_numpy()
    dims = np.array([len(v) if ok else -1 for v, ok in zip(vectors, present)])
    for dim in np.unique(dims[present]):  # vectorised per dimension (normally one)
        rows = np.flatnonzero(dims == dim)
        x = np.vstack(vectors.iloc[rows].to_numpy()).astype(np.float64) if dim else np.zeros((len(rows), 0))
        h = x.astype("<f2")
        d = x - h.astype(np.float64)
        norm = np.linalg.norm(x, axis=1)
        out.iloc[rows, 0] = pd.Series([r.tobytes() for r in h], index=rows, dtype=object)
        out.iloc[rows, 1] = np.abs(d).max(axis=1) if dim else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            out.iloc[rows, 2] = np.where(norm > 0, np.linalg.norm(d, axis=1) / norm, np.nan)
    return out
