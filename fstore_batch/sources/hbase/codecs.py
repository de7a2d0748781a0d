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
import pyarrow as pa

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


# --- batch decoding -----------------------------------------------------------------------------

_NP_FIXED = {Codec.INT64: (">i8", "<i8", 8), Codec.INT32: (">i4", "<i4", 4),
             Codec.FLOAT32: (">f4", "<f4", 4), Codec.FLOAT64: (">f8", "<f8", 8)}
_EXPECTED_FIXED = {c: f"exactly {n} bytes" for c, (_, _, n) in _NP_FIXED.items()}


def decode_many(codec: Codec, raws: list[bytes], dim: int | None = None) -> tuple[pa.Array, dict[int, str]]:
    """Decode a batch of cells of one codec at once (numpy/Arrow, not a Python loop per cell).

    Returns the decoded values as an Arrow array with one slot per input (null where a cell is
    bad) and ``{position: expected}`` for the cells that do not decode. Agrees with :func:`decode`
    cell for cell; it is only faster.
    """
    n = len(raws)
    lens = np.fromiter(map(len, raws), dtype=np.int64, count=n)
    if codec in _NP_FIXED:
        be, le, size = _NP_FIXED[codec]
        good = lens == size
        return _fixed(raws, good, be, le), _bad_positions(good, _EXPECTED_FIXED[codec])
    if codec is Codec.BOOL:
        good = lens == 1
        first = np.frombuffer(b"".join(r for r, g in zip(raws, good) if g), dtype=np.uint8)
        ok_byte = np.isin(first, (0, 1, 0xFF))
        good[np.flatnonzero(good)[~ok_byte]] = False
        values = np.zeros(n, dtype=bool)
        values[good] = first[ok_byte] != 0
        return pa.array(values, mask=~good), _bad_positions(good, "1 byte, 0x00 (false) or 0xff/0x01 (true)")
    if codec is Codec.VECTOR_F32:
        good = lens == 4 * (dim or 0)
        flat = _concat(raws, good, ">f4", "<f4")
        offsets = np.zeros(n + 1, dtype=np.int32)
        offsets[1:] = np.cumsum(np.where(good, dim or 0, 0))
        arr = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float32()), mask=pa.array(~good))
        return arr, _bad_positions(good, f"{dim} float32 values ({4 * (dim or 0)} bytes)")
    if codec is Codec.INT64_LIST:
        good = lens % 8 == 0
        flat = _concat(raws, good, ">i8", "<i8")
        offsets = np.zeros(n + 1, dtype=np.int32)
        offsets[1:] = np.cumsum(np.where(good, lens // 8, 0))
        arr = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.int64()), mask=pa.array(~good))
        return arr, _bad_positions(good, "a multiple of 8 bytes (big-endian int64s)")
    if codec is Codec.STRING:
        binary = pa.array(raws, type=pa.binary())
        try:
            return binary.cast(pa.string()), {}
        except pa.ArrowInvalid:  # some cell is not UTF-8: find which, one by one
            pass
    # Strings with bad UTF-8, and JSON: per cell (the slow path, rare or small).
    values: list[Any] = []
    bad: dict[int, str] = {}
    for i, raw in enumerate(raws):
        try:
            v = decode(codec, raw, dim)
            values.append(json.dumps(v, sort_keys=True, separators=(",", ":")) if codec is Codec.JSON else v)
        except DecodeError as e:
            values.append(None)
            bad[i] = e.expected
    return pa.array(values, type=pa.string()), bad


def _concat(raws: list[bytes], good: np.ndarray, be: str, le: str) -> np.ndarray:
    buf = b"".join(r for r, g in zip(raws, good) if g) if not good.all() else b"".join(raws)
    return np.frombuffer(buf, dtype=be).astype(le)


def _fixed(raws: list[bytes], good: np.ndarray, be: str, le: str) -> pa.Array:
    compact = _concat(raws, good, be, le)
    if good.all():
        return pa.array(compact)
    full = np.zeros(len(raws), dtype=le)
    full[good] = compact
    return pa.array(full, mask=~good)


def _bad_positions(good: np.ndarray, expected: str) -> dict[int, str]:
    return {int(i): expected for i in np.flatnonzero(~good)}
