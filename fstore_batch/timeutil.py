"""Parsing the times users type (``--as-of``): ISO 8601 with a zone, epoch ms, or ``now[-N(s|m|h|d)]``."""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, date, datetime

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


def utc_day(text: str) -> date:
    """A ``--date`` value: ``YYYY-MM-DD``, a UTC day whose end (the next midnight) exists.

    For argparse's ``type=``: a bad value is a usage error naming what was expected.

    >>> utc_day("2026-10-30")
    datetime.date(2026, 10, 30)
    """
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a day as YYYY-MM-DD") from None
    if day == date.max:
        raise argparse.ArgumentTypeError(f"{text!r}: the day's end (10000-01-01) is past the last time Spark "
                                         "and Python hold; the last day that can be built is 9999-12-30")
    return day
