"""Cell codecs: bytes <-> feature values, byte-compatible with HBase's ``Bytes.toBytes``.

Numbers are big-endian. ``vector_f32`` is ``dim`` big-endian float32s; ``int64_list`` is a
concatenation of big-endian int64s. Decoding is strict: a wrong length, bad UTF-8 or bad JSON
raises :class:`~fstore_batch.errors.DecodeError` saying what was expected.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from fstore_batch.config.models import Codec
from fstore_batch.errors import DecodeError

_FIXED = {Codec.INT64: ">q", Codec.INT32: ">i", Codec.FLOAT32: ">f", Codec.FLOAT64: ">d"}
_BE_F32 = np.dtype(">f4")
_BE_I64 = np.dtype(">i8")


def decode(codec: Codec, raw: bytes, dim: int | None = None) -> Any:
    """Decode one cell's bytes.

    >>> decode(Codec.INT64, b"\\x00" * 7 + b"\\x2a")
    42
    >>> decode(Codec.VECTOR_F32, bytes(8), dim=2)
    [0.0, 0.0]
    """
    fmt = _FIXED.get(codec)
    if fmt is not None:
        size = struct.calcsize(fmt)
        if len(raw) != size:
            raise DecodeError(codec.value, raw, f"exactly {size} bytes")
        return struct.unpack(fmt, raw)[0]
    if codec is Codec.STRING:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(codec.value, raw, f"valid UTF-8 ({e.reason} at byte {e.start})") from None
    if codec is Codec.BOOL:
        if len(raw) != 1 or raw[0] not in (0, 0xFF, 1):
            raise DecodeError(codec.value, raw, "1 byte, 0x00 (false) or 0xff/0x01 (true)")
        return raw[0] != 0
    if codec is Codec.JSON:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise DecodeError(codec.value, raw, f"UTF-8 JSON ({e})") from None
    if codec is Codec.VECTOR_F32:
        if dim is None or len(raw) != 4 * dim:
            raise DecodeError(codec.value, raw, f"{dim} float32 values ({4 * (dim or 0)} bytes)")
        return np.frombuffer(raw, dtype=_BE_F32).astype(np.float32).tolist()
    if codec is Codec.INT64_LIST:
        if len(raw) % 8:
            raise DecodeError(codec.value, raw, "a multiple of 8 bytes (big-endian int64s)")
        return np.frombuffer(raw, dtype=_BE_I64).astype(np.int64).tolist()
    raise DecodeError(str(codec), raw, "a known codec")  # pragma: no cover - enum is closed


def encode(codec: Codec, value: Any, dim: int | None = None) -> bytes:
    """Encode a feature value into cell bytes (the inverse of :func:`decode`)."""
    fmt = _FIXED.get(codec)
    if fmt is not None:
        return struct.pack(fmt, value)
    if codec is Codec.STRING:
        return str(value).encode("utf-8")
    if codec is Codec.BOOL:
        return b"\xff" if value else b"\x00"
    if codec is Codec.JSON:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if codec is Codec.VECTOR_F32:
        arr = np.asarray(value, dtype=_BE_F32)
        if arr.ndim != 1 or (dim is not None and arr.shape[0] != dim):
            raise ValueError(f"vector_f32 expects a 1-d vector of {dim} values, got shape {arr.shape}")
        return arr.tobytes()
    if codec is Codec.INT64_LIST:
        return np.asarray(value, dtype=_BE_I64).tobytes()
    raise ValueError(f"unknown codec {codec!r}")  # pragma: no cover
