"""Embedding quantization: int8 with a per-vector scale and float16, with the observed error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from fstore_batch.errors import SchemaError
from fstore_batch.joins.quantize import QuantizeMode, error_report, quantize_embeddings
from fstore_batch.spark_local import local_frame


def test_int8_and_float16_reconstruct_within_their_precision_and_report_the_error(spark, tmp_path):
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((50, 16)).astype(np.float32)
    rows = [(i, v.tolist(), v.tolist()) for i, v in enumerate(vecs)] + [(50, None, None), (51, [0.0] * 16, [0.0] * 16)]
    df = local_frame(spark, rows, "id int, a array<float>, b array<float>")
    modes = {"a": QuantizeMode.INT8, "b": QuantizeMode.FLOAT16}
    out, obs = quantize_embeddings(df, modes)
    out.write.parquet(str(tmp_path / "q"))  # the observation fills while the output is written
    report = error_report(obs, modes)

    got = {r.id: r for r in spark.read.parquet(str(tmp_path / "q")).collect()}
    assert dict(spark.read.parquet(str(tmp_path / "q")).dtypes)["a"] == "array<tinyint>"
    rec_a = np.array([np.array(got[i].a) * got[i].a_scale for i in range(50)])
    rec_b = np.array([np.frombuffer(got[i].b, "<f2").astype(np.float64) for i in range(50)])
    x = vecs.astype(np.float64)
    scale = np.abs(x).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(rec_a - x) <= scale * 0.5 + 1e-6)  # rounding: at most half a step
    assert np.allclose(rec_b, x.astype(np.float16), atol=0)
    assert got[50].a is None and got[50].b is None and list(got[51].a) == [0] * 16

    rel_a = np.linalg.norm(rec_a - x, axis=1) / np.linalg.norm(x, axis=1)
    assert report["a"]["mode"] == "int8"
    assert report["a"]["max_abs_error"] == pytest.approx(np.abs(rec_a - x).max(), rel=1e-5)
    assert report["a"]["mean_rel_l2_error"] == pytest.approx(rel_a.mean(), rel=1e-5)
    assert report["b"]["max_rel_l2_error"] == pytest.approx((np.linalg.norm(rec_b - x, axis=1) / np.linalg.norm(x, axis=1)).max(), rel=1e-5)
    assert 0 < report["b"]["mean_rel_l2_error"] < report["a"]["mean_rel_l2_error"] < 0.01


def test_only_float_arrays_can_be_quantized(spark):
    df = local_frame(spark, [(1, [1, 2])], "id int, v array<int>")
    with pytest.raises(SchemaError, match="column 'v' expected array<float> or array<double> to quantize.*array<int>"):
        quantize_embeddings(df, {"v": QuantizeMode.INT8})
    with pytest.raises(SchemaError, match="column 'w' expected an embedding column"):
        quantize_embeddings(df, {"w": QuantizeMode.FLOAT16})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.none(), st.lists(st.one_of(
    st.floats(-1e6, 1e6, width=32), st.sampled_from([float("nan"), float("inf"), float("-inf")])), min_size=3, max_size=3)),
    min_size=1, max_size=12))
def test_non_finite_vectors_are_null_and_counted_finite_ones_quantized(spark, tmp_path_factory, vectors):
    df = local_frame(spark, list(enumerate(vectors)), "id int, v array<float>").withColumn("w", F.col("v"))
    modes = {"v": QuantizeMode.INT8, "w": QuantizeMode.FLOAT16}
    out, obs = quantize_embeddings(df, modes)
    path = str(tmp_path_factory.mktemp("q"))
    out.write.mode("overwrite").parquet(path)
    report = error_report(obs, modes)
    bad = [v is not None and not all(math.isfinite(x) for x in v) for v in vectors]
    assert report["v"]["non_finite_vectors"] == report["w"]["non_finite_vectors"] == sum(bad)
    for r in spark.read.parquet(path).collect():
        x = vectors[r.id]
        if x is None or bad[r.id]:
            assert r.v is None and r.v_scale is None and r.w is None
            continue
        x = np.array(x, dtype=np.float64)
        assert np.all(np.abs(np.array(r.v) * r.v_scale - x) <= r.v_scale * 0.5 + 1e-6 * np.abs(x).max())
        with np.errstate(over="ignore"):  # beyond 65504 a finite value becomes inf in half precision
            assert np.array_equal(np.frombuffer(r.w, "<f2"), x.astype(np.float16))
