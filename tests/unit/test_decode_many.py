"""Batch decoding agrees with single-cell decoding, cell for cell, good bytes and bad."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from fstore_batch.config.models import Codec
from fstore_batch.errors import DecodeError
from fstore_batch.sources.hbase.codecs import decode, decode_many, encode

DIM = 3
VALID = {
    Codec.INT64: st.integers(-(2**63), 2**63 - 1).map(lambda v: encode(Codec.INT64, v)),
    Codec.INT32: st.integers(-(2**31), 2**31 - 1).map(lambda v: encode(Codec.INT32, v)),
    Codec.FLOAT32: st.floats(width=32, allow_nan=False).map(lambda v: struct.pack(">f", v)),
    Codec.FLOAT64: st.floats(allow_nan=False).map(lambda v: encode(Codec.FLOAT64, v)),
    Codec.STRING: st.text(max_size=8).map(lambda v: encode(Codec.STRING, v)),
    Codec.BOOL: st.sampled_from([b"\x00", b"\x01", b"\xff"]),
    Codec.JSON: st.dictionaries(st.text(max_size=3), st.integers(), max_size=3).map(lambda v: encode(Codec.JSON, v)),
    Codec.VECTOR_F32: st.lists(st.floats(width=32, allow_nan=False), min_size=DIM, max_size=DIM)
                        .map(lambda v: encode(Codec.VECTOR_F32, v)),
    Codec.INT64_LIST: st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5).map(lambda v: encode(Codec.INT64_LIST, v)),
}


def cells(codec: Codec):
    return st.lists(st.one_of(VALID[codec], st.binary(max_size=14)), max_size=20)


def single(codec: Codec, raw: bytes):
    try:
        v = decode(codec, raw, DIM if codec is Codec.VECTOR_F32 else None)
    except DecodeError as e:
        return ("bad", e.expected)
    if codec is Codec.JSON:
        return encode(Codec.JSON, v).decode()
    return v


def _case(codec: Codec):
    @settings(max_examples=60, deadline=None)
    @given(cells(codec))
    def check(raws):
        values, bad = decode_many(codec, raws, DIM if codec is Codec.VECTOR_F32 else None)
        got = [("bad", bad[i]) if i in bad else v for i, v in enumerate(values.to_pylist())]
        assert got == [single(codec, r) for r in raws]
    return check


test_int64 = _case(Codec.INT64)
test_int32 = _case(Codec.INT32)
test_float32 = _case(Codec.FLOAT32)
test_float64 = _case(Codec.FLOAT64)
test_string = _case(Codec.STRING)
test_bool = _case(Codec.BOOL)
test_json = _case(Codec.JSON)
test_vector_f32 = _case(Codec.VECTOR_F32)
test_int64_list = _case(Codec.INT64_LIST)
