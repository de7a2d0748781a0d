"""Decoding HBase rows into typed feature values per a :class:`FeatureTableSpec`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fstore_batch.config.models import FeatureTableSpec
from fstore_batch.errors import DecodeError
from fstore_batch.sources.hbase.codecs import decode
from fstore_batch.sources.hbase.rowkey import RowKeyCodec


@dataclass(frozen=True)
class DecodedCell:
    key: tuple[Any, ...]
    feature: str
    value: Any
    ts: int


class RowDecoder:
    """Decodes row keys and cells of one table; raises :class:`DecodeError` naming row and column."""

    def __init__(self, spec: FeatureTableSpec) -> None:
        self.spec = spec
        self.keys = RowKeyCodec(spec.row_key)
        self.columns = {c.column.encode(): c for c in spec.columns}

    def decode_key(self, row_key: bytes) -> tuple[Any, ...]:
        try:
            return self.keys.decode(row_key)
        except DecodeError as e:
            raise DecodeError("row key", row_key, e.expected, row_key=row_key) from None

    def decode_cells(self, row_key: bytes, cells: Iterable[tuple[bytes, bytes, int]]) -> Iterator[DecodedCell]:
        """``cells`` are ``(column, value, timestamp)``; columns not in the config are skipped."""
        key = self.decode_key(row_key)
        for column, raw, ts in cells:
            spec = self.columns.get(column)
            if spec is None:
                continue
            try:
                value = decode(spec.codec, raw, spec.dim)
            except DecodeError as e:
                raise DecodeError(spec.codec.value, raw, e.expected, column=spec.column, row_key=row_key) from None
            yield DecodedCell(key, spec.feature, value, ts)
