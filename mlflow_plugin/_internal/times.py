"""RFC 3339 timestamps, one way (``YYYY-MM-DDThh:mm:ssZ``, UTC, whole seconds).

>>> rfc3339(0), rfc3339(-1), rfc3339(253402300800)
('1970-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '10000-01-01T00:00:00Z')
>>> from_mlflow_ms(1767323045123), from_mlflow_ms(None)
('2026-01-02T03:04:05Z', None)
>>> parse_rfc3339("2026-01-02T03:04:05Z").year
2026
>>> len(now_rfc3339())
20
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def rfc3339(ts: int) -> str:
    """Go ``time.Unix(ts, 0).UTC().Format(time.RFC3339)`` for any int64 (years beyond 1..9999 too)."""
    days, secs = divmod(ts, 86400)
    # civil_from_days (H. Hinnant): proleptic Gregorian date of a day count since 1970-01-01
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    year = f"-{-y:04d}" if y < 0 else f"{y:04d}"
    return f"{year}-{m:02d}-{d:02d}T{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}Z"


def now_rfc3339() -> str:
    """The current time."""
    return rfc3339(int(time.time()))


def now_precise() -> str:
    """The current time with microseconds (``2026-12-06T22:01:52.123456Z``), to order events
    that happen within one second; compare with :func:`parse_any`, never as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_any(text: object) -> datetime | None:
    """An RFC 3339 UTC time with or without fractions (None: not one).

    >>> parse_any("2026-12-06T22:01:52.5Z") > parse_any("2026-12-06T22:01:52Z"), parse_any("soon")
    (True, None)
    """
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def from_mlflow_ms(ms: int | None) -> str | None:
    """An MLflow timestamp (milliseconds since the epoch), or None."""
    return None if ms is None else rfc3339(ms // 1000)


def parse_rfc3339(text: str) -> datetime:
    """The inverse of :func:`rfc3339` (for years 1..9999)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
