"""What may leave the server: one-line messages without secrets, JSON without NaN or datetimes.

>>> mask_uri("https://alice:s3cret@mlflow.example.com/api")
'https://***@mlflow.example.com/api'
>>> one_line("cannot read run\\n  Traceback: ...", secrets=["s3cret"])
'cannot read run Traceback: ...'
>>> import datetime as dt
>>> jsonable({"auc": float("nan"), "at": dt.datetime(2026, 12, 6, 22, 10, tzinfo=dt.timezone.utc)})
{'auc': None, 'at': '2026-12-06T22:10:00.000Z'}
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable
from typing import Any

MAX_LINE = 600
# environment variables whose values are secrets wherever they show up
SECRET_ENV = (
    "MLFLOW_MODELKIT_REGISTRY_PASSWORD",
    "MLFLOW_MODELKIT_KEY_PASSWORD",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "DATABRICKS_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization|password|passphrase|token)(\s*[:=]\s*)[^\s,;'\"]+")


def mask_uri(uri: str) -> str:
    """``uri`` (or any text) with the credentials of every URL replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", uri)


def redact(text: str, secrets: Iterable[str | bytes] = ()) -> str:
    """``text`` without URL credentials, ``password=…``-style values, the values of the secret
    environment variables, or any of ``secrets``."""
    out = _AUTH_HEADER.sub(r"\1\2***", mask_uri(text))
    values: list[str] = [os.environ.get(v, "") for v in SECRET_ENV]
    for s in secrets:
        values.append(s.decode("utf-8", "replace") if isinstance(s, bytes) else s)
    for v in sorted({v for v in values if len(v) >= 4}, key=len, reverse=True):
        out = out.replace(v, "***")
    return out


def one_line(text: str, secrets: Iterable[str | bytes] = ()) -> str:
    """``text`` redacted, on one line, at most :data:`MAX_LINE` characters."""
    line = " ".join(redact(str(text), secrets).split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def rfc3339(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_ms(ms: int | None) -> str | None:
    """An MLflow epoch-milliseconds time as RFC 3339 (UTC), ``None`` when absent."""
    if ms is None:
        return None
    return rfc3339(dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC))


def jsonable(value: Any) -> Any:
    """``value`` with NaN/inf → ``None``, datetimes (pandas too) → RFC 3339, numpy scalars → Python."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if type(value).__name__ == "NaTType":  # pandas.NaT passes for a datetime
        return None
    if isinstance(value, dt.datetime):  # pandas.Timestamp too
        return rfc3339(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return jsonable(item())
    return str(value)
