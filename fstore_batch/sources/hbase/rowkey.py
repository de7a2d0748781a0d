"""Row keys: decode HBase row keys into entity key values, and build them (salted, composite)."""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

from fstore_batch.config.models import KeyPartType, RowKeySpec
from fstore_batch.errors import DecodeError

_INT = {KeyPartType.INT64: ">q", KeyPartType.INT32: ">i"}
_INT_BITS = {KeyPartType.INT64: 64, KeyPartType.INT32: 32}
_DECIMAL = re.compile(r"-?[0-9]+")  # not int(): it also takes " 42", "4_2" and non-ASCII digits


class RowKeyCodec:
    """Encodes and decodes the row keys of one table, per its :class:`RowKeySpec`.

    >>> from fstore_batch.config import RowKeySpec
    >>> spec = RowKeySpec.model_validate({"salt": {"buckets": 8}, "parts": [{"name": "user_id", "type": "int64"}]})
    >>> codec = RowKeyCodec(spec)
    >>> codec.decode(codec.encode((42,)))
    (42,)
    """

    def __init__(self, spec: RowKeySpec) -> None:
        self.spec = spec
        self.salt_bytes = spec.salt.bytes if spec.salt else 0

    # -- decode ---------------------------------------------------------------------------

    def decode(self, key: bytes) -> tuple[Any, ...]:
        body = key[self.salt_bytes:]
        if len(key) < self.salt_bytes:
            raise DecodeError("row key", key, f"at least {self.salt_bytes} salt byte(s)")
        if self.spec.separator is not None:
            return self._decode_delimited(key, body)
        return self._decode_binary(key, body)

    def _decode_delimited(self, key: bytes, body: bytes) -> tuple[Any, ...]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("row key", key, "UTF-8 text") from None
        fields = text.split(self.spec.separator, len(self.spec.parts) - 1)
        if len(fields) != len(self.spec.parts):
            raise DecodeError("row key", key, f"{len(self.spec.parts)} parts separated by {self.spec.separator!r}")
        out = []
        for part, field in zip(self.spec.parts, fields):
            if part.type is KeyPartType.STRING:
                out.append(field)
                continue
            bits = _INT_BITS[part.type]
            value = int(field) if _DECIMAL.fullmatch(field) else None
            if value is None or not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                raise DecodeError("row key", key, f"an {part.type.value} integer for part '{part.name}', got {field!r}")
            out.append(value)
        return tuple(out)

    def _decode_binary(self, key: bytes, body: bytes) -> tuple[Any, ...]:
        out: list[Any] = []
        pos = 0
        for i, part in enumerate(self.spec.parts):
            last = i == len(self.spec.parts) - 1
            if part.type in _INT:
                size = struct.calcsize(_INT[part.type])
                chunk = body[pos:pos + size]
                if len(chunk) != size:
                    raise DecodeError("row key", key, f"{size} bytes for {part.type.value} part '{part.name}'")
                out.append(struct.unpack(_INT[part.type], chunk)[0])
                pos += size
                continue
            size = part.length if part.length is not None else len(body) - pos
            chunk = body[pos:pos + size]
            if len(chunk) != size:
                raise DecodeError("row key", key, f"{size} bytes for string part '{part.name}'")
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("row key", key, f"UTF-8 for string part '{part.name}'") from None
            out.append(text.rstrip("\x00") if part.length is not None else text)
            pos += size
            if last:
                break
        if pos != len(body):
            raise DecodeError("row key", key, f"{pos} bytes after the salt, found {len(body)}")
        return tuple(out)

    # -- encode ---------------------------------------------------------------------------

    def encode(self, values: tuple[Any, ...] | list[Any]) -> bytes:
        if len(values) != len(self.spec.parts):
            raise ValueError(f"expected {len(self.spec.parts)} key values, got {len(values)}")
        if self.spec.separator is not None:
            texts = [str(v) for v in values]
            for part, text in zip(self.spec.parts[:-1], texts):
                if self.spec.separator in text:
                    raise ValueError(f"key part '{part.name}' contains the separator {self.spec.separator!r}: {text!r}")
            body = self.spec.separator.join(texts).encode("utf-8")
        else:
            chunks = []
            for part, v in zip(self.spec.parts, values):
                if part.type in _INT:
                    chunks.append(struct.pack(_INT[part.type], v))
                else:
                    b = str(v).encode("utf-8")
                    if part.length is not None:
                        if len(b) > part.length:
                            raise ValueError(f"key part '{part.name}' longer than {part.length} bytes")
                        b = b.ljust(part.length, b"\x00")
                    chunks.append(b)
            body = b"".join(chunks)
        return self.salt_of(body) + body

    def salt_of(self, body: bytes) -> bytes:
        if self.spec.salt is None:
            return b""
        return bytes([zlib.crc32(body) % self.spec.salt.buckets])

    def split_points(self) -> list[bytes]:
        """Region boundaries that spread salted keys evenly: one region per salt bucket."""
        if self.spec.salt is None:
            return []
        return [bytes([b]) for b in range(1, self.spec.salt.buckets)]
