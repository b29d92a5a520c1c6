"""Every input of the server routes, checked as hostile before it reaches MLflow or a registry.

Each check returns the clean value or raises :class:`BadInput` (HTTP 400) with one line that says
what is wrong and never repeats a value that could be a secret.

>>> run_id("0123456789abcdef0123456789abcdef")
'0123456789abcdef0123456789abcdef'
>>> try:
...     run_id("../../etc/passwd")
... except BadInput as e:
...     print(e.status, e.message)
400 invalid run id: expected 32 lowercase hex characters
>>> columns("auc, f1", "metrics")
['auc', 'f1']
>>> page_size("1000")
Traceback (most recent call last):
...
jupyter_ext.validate.BadInput: max_results must be an integer from 1 to 500
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

MAX_BODY_BYTES = 64 * 1024
MAX_NAME = 256
MAX_COLUMNS = 50
MAX_COLUMN_NAME = 250
MAX_FILTER = 2000
MAX_ORDER_BY = 10
MAX_PAGE_TOKEN = 4096
MAX_PATH = 4096
MAX_SECRET = 1024
MAX_ACCEPT = 20
MAX_REASON = 1000
PAGE_MAX = 500
TRACKING_SCHEMES = ("http", "https", "sqlite", "file", "databricks")

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_JOB_ID = _RUN_ID
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# MLflow's own rule for metric and param names, plus a length bound
_COLUMN = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_EXPERIMENT_ID = re.compile(r"^[0-9]{1,32}$")
_PAGE_TOKEN = re.compile(r"^[A-Za-z0-9+/=_\-.:]+$")
_ORDER_BY = re.compile(r"^[A-Za-z0-9_\-. /:`]+(?: (?:ASC|DESC|asc|desc))?$")


class BadInput(Exception):
    """A request input failed validation: HTTP ``status`` with a one-line ``message``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _text(value: Any, what: str, max_len: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string")
    if not value and not allow_empty:
        raise BadInput(f"{what} must not be empty")
    if len(value) > max_len:
        raise BadInput(f"{what} is too long (at most {max_len} characters)")
    if _CONTROL.search(value):
        raise BadInput(f"{what} contains control characters")
    return value


def run_id(value: Any) -> str:
    if not isinstance(value, str) or not _RUN_ID.match(value):
        raise BadInput("invalid run id: expected 32 lowercase hex characters")
    return value


def job_id(value: Any) -> str:
    if not isinstance(value, str) or not _JOB_ID.match(value):
        raise BadInput("invalid job id: expected 32 lowercase hex characters")
    return value


def experiment(value: Any) -> str:
    """An experiment name or id (MLflow allows most characters in names; not control characters)."""
    v = _text(value, "experiment", MAX_NAME)
    if v != v.strip():
        raise BadInput("experiment must not start or end with spaces")
    return v


def name(value: Any, what: str) -> str:
    """A model name, registered-model name or similar: bounded, printable, no path traversal."""
    v = _text(value, what, MAX_NAME)
    if ".." in v or v.startswith("/") or "\\" in v:
        raise BadInput(f"{what} must not contain '..', '\\' or start with '/'")
    return v


def tag(value: Any) -> str:
    from mlflow_plugin import ModelKitError, check_tag

    v = _text(value, "tag", 128)
    try:
        return check_tag(v)
    except ModelKitError:
        raise BadInput(
            "invalid tag: use letters, digits, '_', '.', '-' (max 128, not starting with '.' or '-')"
        ) from None


def _no_traversal(path: str, what: str) -> None:
    parts = re.split(r"[/\\]", path)
    if any(p == ".." for p in parts):
        raise BadInput(f"{what} must not contain '..' path segments")


def _location(value: Any, what: str, expected: str) -> tuple[str, bool]:
    """``value`` checked by the public reference parser; returns it and whether it names a tag/digest."""
    from mlflow_plugin import ModelKitError, parse_reference

    v = _text(value, what, MAX_PATH)
    _no_traversal(v, what)
    try:
        loc = parse_reference(v)
    except ModelKitError:
        raise BadInput(f"invalid {what}: expected {expected}") from None
    return v, bool(loc.tag or loc.digest)


def repository(value: Any) -> str:
    """``HOST/REPO`` or ``oci:DIR`` (no tag, no digest): checked with the reference parser."""
    expected = "HOST[:PORT]/REPO or oci:DIR"
    v, pinned = _location(value, "repository", expected)
    if pinned:
        raise BadInput(f"repository must not carry a tag or digest: expected {expected}")
    return v


def reference(value: Any) -> str:
    """A kit reference ``HOST/REPO:TAG``, ``HOST/REPO@sha256:…``, ``oci:DIR:TAG`` or ``oci:DIR@sha256:…``."""
    v, pinned = _location(value, "reference", "HOST[:PORT]/REPO:TAG, …@sha256:… or oci:DIR:TAG")
    if not pinned:
        raise BadInput("reference needs a tag or a digest: HOST/REPO:TAG or oci:DIR:TAG")
    return v


def key_path(value: Any) -> str:
    v = _text(value, "key", MAX_PATH)
    _no_traversal(v, "key")
    return v


def passphrase(value: Any) -> bytes:
    """The key's passphrase as bytes (never echoed: the messages do not carry it)."""
    if not isinstance(value, str):
        raise BadInput("passphrase must be a string")
    if len(value) > MAX_SECRET:
        raise BadInput(f"passphrase is too long (at most {MAX_SECRET} characters)")
    if "\x00" in value:
        raise BadInput("passphrase contains a NUL character")
    return value.encode("utf-8")


def columns(value: Any, what: str) -> list[str]:
    """A comma-separated list of metric or param names (at most 50, MLflow's character set)."""
    if value is None or value == "":
        return []
    v = _text(value, what, MAX_COLUMNS * (MAX_COLUMN_NAME + 1))
    out = [c.strip() for c in v.split(",") if c.strip()]
    if len(out) > MAX_COLUMNS:
        raise BadInput(f"too many {what} columns (at most {MAX_COLUMNS})")
    for c in out:
        if len(c) > MAX_COLUMN_NAME:
            raise BadInput(f"a {what} name is too long (at most {MAX_COLUMN_NAME} characters)")
        if not _COLUMN.match(c):
            raise BadInput(f"invalid {what} name: use letters, digits, '_', '-', '.', ' ', '/', ':'")
    return out


def filter_string(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _text(value, "filter", MAX_FILTER)


def order_by(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    v = _text(value, "order_by", MAX_ORDER_BY * (MAX_COLUMN_NAME + 6))
    out = [c.strip() for c in v.split(",") if c.strip()]
    if len(out) > MAX_ORDER_BY:
        raise BadInput(f"too many order_by clauses (at most {MAX_ORDER_BY})")
    for c in out:
        if not _ORDER_BY.match(c):
            raise BadInput("invalid order_by: expected e.g. 'metrics.auc DESC, start_time'")
    return out


def page_size(value: Any) -> int:
    if value is None or value == "":
        return 100
    try:
        n = int(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else 0
    except ValueError:
        n = 0
    if not 1 <= n <= PAGE_MAX:
        raise BadInput(f"max_results must be an integer from 1 to {PAGE_MAX}")
    return n


def page_token(value: Any) -> str | None:
    if value is None or value == "":
        return None
    v = _text(value, "page_token", MAX_PAGE_TOKEN)
    if not _PAGE_TOKEN.match(v):
        raise BadInput("invalid page_token: pass back the next_page_token of the previous page")
    return v


def tracking_uri(value: Any) -> str:
    """A tracking URI sent by the panel: a known scheme, no credentials (they would travel in URLs)."""
    v = _text(value, "tracking_uri", MAX_PATH)
    scheme = v.split(":", 1)[0].lower() if ":" in v else ""
    if scheme not in TRACKING_SCHEMES:
        raise BadInput(f"tracking_uri: unsupported scheme; use one of {', '.join(TRACKING_SCHEMES)}")
    if scheme in ("http", "https"):
        parts = urlsplit(v)
        if parts.username is not None or parts.password is not None:
            raise BadInput(
                "tracking_uri must not carry credentials: set MLFLOW_TRACKING_USERNAME/"
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the server's environment"
            )
        if not parts.hostname:
            raise BadInput("tracking_uri: an http(s) URI needs a host")
    return v


def boolean(value: Any, what: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadInput(f"{what} must be true or false")
    return value


def accept_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ACCEPT:
        raise BadInput(f"accept must be a list of at most {MAX_ACCEPT} 'RULE[:PATH]' strings")
    return [_text(v, "accept", 512) for v in value]


def reason(value: Any) -> str | None:
    if value is None:
        return None
    return _text(value, "reason", MAX_REASON, allow_empty=True) or None


def body_object(raw: bytes) -> dict[str, Any]:
    """The JSON object of a POST body (at most 64 KiB)."""
    import json

    if len(raw) > MAX_BODY_BYTES:
        raise BadInput(f"request body is too large (at most {MAX_BODY_BYTES // 1024} KiB)")
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise BadInput("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("request body must be a JSON object")
    return data


def only_keys(data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        shown = unknown[0][:40] if not _CONTROL.search(unknown[0]) else "(unprintable)"
        raise BadInput(f"unknown field {shown!r}; expected {', '.join(sorted(allowed))}")


def experiment_id_or_name(value: Any) -> tuple[str, bool]:
    """``(value, is_id)``."""
    v = experiment(value)
    return v, bool(_EXPERIMENT_ID.match(v))
