"""Parsing the times users type (``--as-of``): ISO 8601 with a zone, epoch ms, or ``now[-N(s|m|h|d)]``."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from fstore_batch.errors import ConfigError

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhd]))?$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_time_ms(text: str, *, what: str = "--as-of", now_ms: int | None = None) -> int:
    """``"2026-10-31T00:00:00Z"`` / ``"1793404800000"`` / ``"now-1m"`` -> epoch milliseconds.

    >>> parse_time_ms("2026-10-31T00:00:00Z")
    1793404800000
    >>> parse_time_ms("now-1m", now_ms=120_000)
    60000
    """
    s = text.strip()
    m = _RELATIVE.match(s)
    if m:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return now - (int(m.group(1)) * _UNIT_MS[m.group(2)] if m.group(1) else 0)
    if s.isdigit():
        return int(s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected ISO 8601 with a zone (2026-10-31T00:00:00Z), "
                          "epoch milliseconds, or now[-N(s|m|h|d)]") from None
    if dt.tzinfo is None:
        raise ConfigError(f"{what} {text!r}: has no time zone; expected e.g. 2026-10-31T00:00:00Z "
                          "(snapshots compare against UTC cell timestamps)")
    return int(dt.timestamp() * 1000)


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
