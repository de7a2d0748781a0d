"""Row keys: salted and composite binary keys, delimited text keys, region split points."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fstore_batch.config import RowKeySpec
from fstore_batch.errors import DecodeError
from fstore_batch.sources.hbase.rowkey import RowKeyCodec

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def codec(**spec) -> RowKeyCodec:
    return RowKeyCodec(RowKeySpec.model_validate(spec))


SALTED_USER = codec(salt={"buckets": 4}, parts=[{"name": "user_id", "type": "int64"}])
USER_EVENT = codec(parts=[{"name": "user_id", "type": "int64"}, {"name": "event_ts", "type": "int64"}])
DELIMITED = codec(separator="|", parts=[{"name": "country", "type": "string"}, {"name": "user_id", "type": "int64"}])
FIXED_STRING = codec(parts=[{"name": "country", "type": "string", "length": 4}, {"name": "user_id", "type": "int32"}])


# --- round trips -------------------------------------------------------------------------------


@given(INT64)
def test_salted_int64_key_roundtrip(user_id):
    assert SALTED_USER.decode(SALTED_USER.encode((user_id,))) == (user_id,)


def test_salted_key_layout_is_salt_byte_then_big_endian_int64():
    # Golden keys: rows already in HBase were written with these bytes; they must never change.
    assert SALTED_USER.encode((42,)) == bytes.fromhex("03" "000000000000002a")
    assert SALTED_USER.encode((-1,)) == bytes.fromhex("00" "ffffffffffffffff")


@given(INT64, INT64)
def test_composite_binary_key_roundtrip(user_id, event_ts):
    key = USER_EVENT.encode((user_id, event_ts))
    assert key == struct.pack(">qq", user_id, event_ts)
    assert USER_EVENT.decode(key) == (user_id, event_ts)


@given(st.text().filter(lambda s: "|" not in s), INT64)
def test_delimited_key_roundtrip(country, user_id):
    assert DELIMITED.decode(DELIMITED.encode((country, user_id))) == (country, user_id)


def test_delimited_key_is_plain_text():
    assert DELIMITED.encode(("DE", 42)) == b"DE|42"
    assert DELIMITED.decode(b"FR|-7") == ("FR", -7)


def test_delimited_encode_refuses_separator_inside_a_part():
    # "a|b" + 1 would give b"a|b|1", which decodes to a different key (or not at all).
    with pytest.raises(ValueError, match="'country' contains the separator"):
        DELIMITED.encode(("a|b", 1))


def test_fixed_length_string_part_is_nul_padded():
    key = FIXED_STRING.encode(("DE", 7))
    assert key == b"DE\x00\x00" + b"\x00\x00\x00\x07"
    assert FIXED_STRING.decode(key) == ("DE", 7)


def test_fixed_length_string_part_too_long_is_refused():
    with pytest.raises(ValueError, match="longer than 4 bytes"):
        FIXED_STRING.encode(("DEUTSCH", 7))


# --- salt and region splits ----------------------------------------------------------------------


@given(INT64)
def test_salt_byte_is_a_bucket_and_follows_crc32_of_the_body(user_id):
    key = SALTED_USER.encode((user_id,))
    body = key[1:]
    assert key[0] < 4
    assert key[0] == zlib.crc32(body) % 4  # the documented layout, reproducible by other writers
    assert SALTED_USER.encode((user_id,)) == key


def test_salt_spreads_keys_over_every_bucket():
    salts = {SALTED_USER.encode((uid,))[0] for uid in range(1000)}
    assert salts == {0, 1, 2, 3}


@pytest.mark.parametrize("buckets", [2, 4, 16, 256])
def test_split_points_give_one_region_per_bucket(buckets):
    c = codec(salt={"buckets": buckets}, parts=[{"name": "user_id", "type": "int64"}])
    points = c.split_points()
    assert len(points) == buckets - 1
    assert points == sorted(points)
    assert points[0] == b"\x01" and points[-1] == bytes([buckets - 1])


def test_unsalted_keys_have_no_split_points():
    assert USER_EVENT.split_points() == []


# --- bad keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rowkey", "key", "expected"),
    [
        (SALTED_USER, b"", "at least 1 salt byte"),
        (SALTED_USER, b"\x01\x00\x00", "8 bytes for int64 part 'user_id'"),
        (SALTED_USER, b"\x01" + bytes(9), "8 bytes after the salt, found 9"),
        (USER_EVENT, bytes(12), "8 bytes for int64 part 'event_ts'"),
        (FIXED_STRING, b"DE", "4 bytes for string part 'country'"),
        (DELIMITED, b"DE", "2 parts separated by '|'"),
        (DELIMITED, b"DE|abc", "an int64 integer for part 'user_id', got 'abc'"),
        (DELIMITED, b"DE|4|2", "an int64 integer for part 'user_id', got '4|2'"),
        (DELIMITED, b"DE| 42", "an int64 integer for part 'user_id', got ' 42'"),
        (DELIMITED, b"DE|4_2", "an int64 integer for part 'user_id', got '4_2'"),
        (DELIMITED, b"DE|9223372036854775808", "an int64 integer for part 'user_id'"),
        (DELIMITED, b"\xff|1", "UTF-8 text"),
    ],
    ids=lambda v: repr(v) if isinstance(v, bytes) else None,
)
def test_bad_keys_raise_decode_error_naming_the_problem(rowkey, key, expected):
    with pytest.raises(DecodeError) as info:
        rowkey.decode(key)
    assert f"as row key: expected {expected}" in str(info.value)
