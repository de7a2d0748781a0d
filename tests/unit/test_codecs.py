"""Cell codecs: round trips, byte compatibility with HBase ``Bytes.toBytes``, strict decoding."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fstore_batch.config import Codec
from fstore_batch.errors import DecodeError
from fstore_batch.sources.hbase.codecs import decode, encode

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
FLOAT32 = st.floats(width=32, allow_nan=False)
FLOAT64 = st.floats(allow_nan=False)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


def roundtrip(codec: Codec, value, dim: int | None = None):
    return decode(codec, encode(codec, value, dim), dim)


# --- round trips -------------------------------------------------------------------------------


@given(INT64)
def test_int64_roundtrip(value):
    assert roundtrip(Codec.INT64, value) == value


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63)])
def test_int64_roundtrip_extremes(value):
    assert roundtrip(Codec.INT64, value) == value


@given(INT32)
def test_int32_roundtrip(value):
    assert roundtrip(Codec.INT32, value) == value


@given(FLOAT32)
def test_float32_roundtrip(value):
    assert roundtrip(Codec.FLOAT32, value) == value


@given(FLOAT64)
def test_float64_roundtrip(value):
    assert roundtrip(Codec.FLOAT64, value) == value


@pytest.mark.parametrize("codec", [Codec.FLOAT32, Codec.FLOAT64])
def test_nan_roundtrips_as_nan(codec):
    assert math.isnan(roundtrip(codec, float("nan")))


@given(st.text())
def test_string_roundtrip(value):
    assert roundtrip(Codec.STRING, value) == value


def test_non_ascii_string_is_utf8():
    assert encode(Codec.STRING, "Zürich 東京 🚀") == "Zürich 東京 🚀".encode()
    assert roundtrip(Codec.STRING, "Zürich 東京 🚀") == "Zürich 東京 🚀"


@pytest.mark.parametrize("value", [True, False])
def test_bool_roundtrip(value):
    assert roundtrip(Codec.BOOL, value) is value


@given(JSON_VALUES)
def test_json_roundtrip(value):
    assert roundtrip(Codec.JSON, value) == value


@given(st.lists(FLOAT32, min_size=64, max_size=64))
def test_vector_f32_dim64_roundtrip(vec):
    raw = encode(Codec.VECTOR_F32, vec, 64)
    assert len(raw) == 64 * 4
    assert decode(Codec.VECTOR_F32, raw, 64) == vec


def test_vector_f32_encode_rejects_wrong_dimension():
    with pytest.raises(ValueError, match="64"):
        encode(Codec.VECTOR_F32, [0.0] * 63, 64)


@given(st.lists(INT64, max_size=50))
def test_int64_list_roundtrip(values):
    assert roundtrip(Codec.INT64_LIST, values) == values


def test_empty_int64_list_is_empty_cell():
    assert encode(Codec.INT64_LIST, []) == b""
    assert decode(Codec.INT64_LIST, b"") == []


# --- byte compatibility with HBase Bytes.toBytes (big-endian) ----------------------------------


def test_int64_matches_hbase_bytes():
    assert encode(Codec.INT64, 1) == b"\x00" * 7 + b"\x01"
    assert encode(Codec.INT64, -1) == b"\xff" * 8
    assert encode(Codec.INT64, 2**63 - 1) == b"\x7f" + b"\xff" * 7


def test_int32_matches_hbase_bytes():
    assert encode(Codec.INT32, 1) == b"\x00\x00\x00\x01"
    assert encode(Codec.INT32, -2) == b"\xff\xff\xff\xfe"


def test_floats_match_hbase_bytes():
    assert encode(Codec.FLOAT64, 1.5) == struct.pack(">d", 1.5) == bytes.fromhex("3ff8000000000000")
    assert encode(Codec.FLOAT32, 1.5) == struct.pack(">f", 1.5) == bytes.fromhex("3fc00000")


def test_bool_matches_hbase_bytes():
    assert encode(Codec.BOOL, True) == b"\xff"
    assert encode(Codec.BOOL, False) == b"\x00"
    assert decode(Codec.BOOL, b"\x01") is True  # some writers use 0x01 for true


def test_vector_and_list_are_big_endian_concatenations():
    assert encode(Codec.VECTOR_F32, [1.0, -2.0], 2) == struct.pack(">ff", 1.0, -2.0)
    assert encode(Codec.INT64_LIST, [1, -1]) == struct.pack(">qq", 1, -1)


@given(st.binary(min_size=8, max_size=8))
def test_any_8_bytes_decode_to_the_int64_that_encodes_back(raw):
    assert encode(Codec.INT64, decode(Codec.INT64, raw)) == raw


# --- strict decoding: DecodeError says what was expected -----------------------------------------


@pytest.mark.parametrize(
    ("codec", "raw", "dim", "expected"),
    [
        pytest.param(Codec.INT64, bytes(7), None, "expected exactly 8 bytes", id="int64-short"),
        pytest.param(Codec.INT64, bytes(9), None, "expected exactly 8 bytes", id="int64-long"),
        pytest.param(Codec.INT32, bytes(8), None, "expected exactly 4 bytes", id="int32"),
        pytest.param(Codec.FLOAT32, bytes(8), None, "expected exactly 4 bytes", id="float32"),
        pytest.param(Codec.FLOAT64, bytes(4), None, "expected exactly 8 bytes", id="float64"),
        pytest.param(Codec.STRING, b"ok\xff", None, "expected valid UTF-8", id="string-bad-utf8"),
        pytest.param(Codec.JSON, b'{"a": ', None, "expected UTF-8 JSON", id="json-truncated"),
        pytest.param(Codec.JSON, b"\xff", None, "expected UTF-8 JSON", id="json-bad-utf8"),
        pytest.param(Codec.VECTOR_F32, bytes(63 * 4), 64, "expected 64 float32 values (256 bytes)",
                     id="vector-dim63-for-64"),
        pytest.param(Codec.INT64_LIST, bytes(12), None, "expected a multiple of 8 bytes", id="int64_list"),
        pytest.param(Codec.BOOL, b"\x00\x01", None, "expected 1 byte", id="bool-2-bytes"),
        pytest.param(Codec.BOOL, b"\x02", None, "0x00 (false) or 0xff/0x01 (true)", id="bool-0x02"),
    ],
)
def test_bad_bytes_raise_decode_error_naming_the_expectation(codec, raw, dim, expected):
    with pytest.raises(DecodeError) as info:
        decode(codec, raw, dim)
    message = str(info.value)
    assert expected in message
    assert f"cannot decode {len(raw)} bytes" in message
    assert f"as {codec.value}" in message


def test_decode_error_is_a_value_error_with_fields():
    with pytest.raises(ValueError) as info:
        decode(Codec.INT64, b"\x01\x02")
    err = info.value
    assert isinstance(err, DecodeError)
    assert (err.codec, err.raw) == ("int64", b"\x01\x02")
    assert "0x0102" in str(err)
