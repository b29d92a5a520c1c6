"""Reading an MLflow ``MLmodel`` file: one safe YAML parse for publish, provenance and the scanner.

>>> doc = read_mlmodel(b"flavors:\\n  sklearn: {sklearn_version: 1.9.1, serialization_format: skops}\\n")
>>> doc["flavors"]["sklearn"]["serialization_format"]
'skops'
>>> read_mlmodel(b"flavors: [unclosed"), read_mlmodel(b"- a list")
({}, {})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_MLMODEL_BYTES = 1 << 20  # an MLmodel is a few hundred bytes; anything huge is not one


def read_mlmodel(data: str | bytes | Mapping[str, Any] | None) -> dict[str, Any]:
    """The MLmodel document as a dict (``{}`` when it is missing, too large or not a YAML mapping).

    Safe loading only (no Python tags), pure-Python parser, never raises on bad input.
    """
    if data is None:
        return {}
    if isinstance(data, Mapping):
        return dict(data)
    if len(data) > MAX_MLMODEL_BYTES:
        return {}
    from ruamel.yaml import YAML

    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        doc = YAML(typ="safe", pure=True).load(text)
    except Exception:  # any YAML error: not an MLmodel we can read
        return {}
    return dict(doc) if isinstance(doc, Mapping) else {}
