"""Load YAML the way Go's ``gopkg.in/yaml.v3`` decodes it into ``interface{}``.

kit decodes Kitfiles with yaml.v3; PyYAML (YAML 1.1) and even ruamel's YAML 1.2 resolver
disagree with it on plain scalars. We let ruamel build the node tree (anchors, aliases, merge
keys, duplicate-key errors) and resolve plain scalars ourselves with yaml.v3's rules:

>>> load_value("a: yes\\nb: 0o17\\nc: 1e3\\nd: 017\\ne: 2024-01-01\\nf: 0xFF")
{'a': 'yes', 'b': 15, 'c': 1000.0, 'd': 15, 'e': '2024-01-01T00:00:00Z', 'f': 255}

Timestamps become the string Go's JSON encoder would write for a ``time.Time``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from mlflow_plugin.errors import KitfileError

_TAG = "tag:yaml.org,2002:"
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_MAP = {
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
    ".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
    "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf,
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
}  # fmt: skip
_INT64 = (-(1 << 63), (1 << 63) - 1)
_DIGITS = "0123456789"


class GoTime(str):
    """A timestamp yaml.v3 resolved to ``time.Time``, held as the RFC 3339 text Go's JSON writes.

    It behaves as a string, but it is *not* a string key for Go: a mapping with a timestamp key
    decodes to ``map[interface{}]interface{}``, which ``encoding/json`` refuses.
    """


@dataclass
class Where:
    """Source position of a node, for error messages."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}"


def where(node: Node) -> Where:
    m = node.start_mark
    return Where(m.line + 1, m.column + 1)


def _go_parse_int(s: str) -> int | None:
    """strconv.ParseInt/ParseUint(s, 0, 64): sign, 0x/0o/0b prefixes, leading-0 octal."""
    t = s
    neg = False
    if t[:1] in "+-":
        neg = t[0] == "-"
        t = t[1:]
    if not t:
        return None
    try:
        low = t.lower()
        if low.startswith("0x"):
            v = int(t[2:], 16) if t[2:] else None
        elif low.startswith("0o"):
            v = int(t[2:], 8) if t[2:] else None
        elif low.startswith("0b"):
            v = int(t[2:], 2) if t[2:] else None
        elif len(t) > 1 and t[0] == "0":
            v = int(t[1:], 8)
        else:
            if not (t.isascii() and t.isdigit()):
                return None
            v = int(t, 10)
    except ValueError:
        return None
    if v is None or not all(c.isascii() and c.isalnum() for c in t):
        return None
    v = -v if neg else v
    if _INT64[0] <= v <= _INT64[1] or (not neg and 0 <= v < (1 << 64)):
        return v
    return None


_TS_RE = re.compile(  # ASCII digits only (re.ASCII below), like Go's time.Parse
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt]|[ ])(\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,](\d+))?"
    r"(Z|[+-]\d{2}:\d{2})?)?\Z",
    re.ASCII,
)


def _parse_timestamp(s: str) -> GoTime | None:
    """yaml.v3 parseTimestamp; returns Go's JSON (RFC 3339 nano) form of the time.

    >>> _parse_timestamp("2024-1-2"), _parse_timestamp("0999-01-01 10:00:00,5")
    ('2024-01-02T00:00:00Z', '0999-01-01T10:00:00.5Z')
    """
    m = _TS_RE.match(s)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    if hh is not None:
        sep = s[len(m.group(1)) + len(mo) + len(d) + 2]
        if sep == " " and tz is not None:
            return None  # "2006-1-2 15:4:5.999999999" has no zone
        if sep in "Tt" and tz is None:
            return None  # the T forms require a zone
    try:
        base = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError:
        return None
    out = f"{base.year:04d}-{base.month:02d}-{base.day:02d}T{base:%H:%M:%S}"
    if frac:
        f = frac[:9].rstrip("0")  # Go keeps nanoseconds (truncating), RFC3339Nano drops trailing zeros
        if f:
            out += "." + f
    if tz is None or tz == "Z":
        return GoTime(out + "Z")
    sign = 1 if tz[0] == "+" else -1
    off = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])) * sign
    if abs(off) >= timedelta(hours=24):
        return None  # Go: "time zone offset hour out of range"
    return GoTime(out + ("Z" if off == timedelta(0) else tz))


def resolve_plain(s: str) -> Any:
    """Resolve an untagged plain scalar like yaml.v3 ``resolve()``.

    >>> [resolve_plain(x) for x in ("yes", "on", "1.0", "1_000", "09", ".5", "null", "-0b11")]
    ['yes', 'on', 1.0, 1000, 9.0, 0.5, None, -3]
    """
    if s in _MAP:
        return _MAP[s]
    c = s[:1]
    if c == ".":
        f = _go_parse_float(s) if _FLOAT_RE.match(s) else None
        return s if f is None else f
    if c and c in _DIGITS + "+-":
        ts = _parse_timestamp(s) if c in _DIGITS else None
        if ts is not None:
            return ts
        plain = s.replace("_", "")
        v = _go_parse_int(plain)
        if v is not None and not plain.lower().lstrip("+-").startswith(("0o", "0b")):
            return v
        if _FLOAT_RE.match(plain):
            f = _go_parse_float(plain)
            if f is not None:
                return f
        body = plain.lstrip("+-")
        sign = -1 if plain.startswith("-") else 1
        for prefix, base in (("0b", 2), ("0o", 8)):
            if body.startswith(prefix):
                try:
                    return sign * int(body[2:], base)
                except ValueError:
                    return s
        if v is not None:
            return v
    return s


def _go_parse_float(s: str) -> float | None:
    """strconv.ParseFloat for the decimal forms yaml.v3 tries: overflow is an error, not ±Inf."""
    try:
        f = float(s)
    except ValueError:
        return None
    return None if math.isinf(f) else f


_PLAIN = "tag:mlflow-modelkit,2026:plain"


class _PlainResolver(VersionedResolver):
    """Tag untagged plain scalars as ``_PLAIN`` so we resolve them with yaml.v3's rules."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return Tag(suffix=_PLAIN)
        return super().resolve(kind, value, implicit)


def scalar_text(node: ScalarNode) -> str:
    """The scalar's text. ruamel's round-trip composer marks line folds of ``>`` scalars with
    ``\\a`` (for re-dumping); YAML forbids a literal BEL, so every one of them is a marker.
    """
    value = node.value
    if node.style == ">" and isinstance(value, str):
        return value.replace("\a", "")
    return value


def _scalar(node: ScalarNode) -> Any:
    tag = str(node.tag)
    value = scalar_text(node)
    if tag == _PLAIN:
        return resolve_plain(value)
    if tag in (_TAG + "str", "!"):
        return value
    short = tag[len(_TAG) :] if tag.startswith(_TAG) else None
    if short == "int":
        v = _go_parse_int(value.replace("_", ""))
        if v is None:
            raise KitfileError(f"line {where(node).line}: cannot decode {value!r} as !!int")
        return v
    if short == "float":
        r = resolve_plain(value)
        if isinstance(r, (int, float)) and not isinstance(r, bool):
            return float(r)
        raise KitfileError(f"line {where(node).line}: cannot decode {value!r} as !!float")
    if short == "bool":
        r = resolve_plain(value)
        if isinstance(r, bool):
            return r
        raise KitfileError(f"line {where(node).line}: cannot decode {value!r} as !!bool")
    if short == "null":
        return None
    if short == "timestamp":
        ts = _parse_timestamp(value)
        return ts if ts is not None else value
    if short == "binary":
        return decode_binary(node)
    return value


def decode_binary(node: ScalarNode) -> str:
    """A ``!!binary`` scalar decoded like yaml.v3 (base64, CR/LF ignored), as a Go string."""
    import base64
    import binascii

    text = scalar_text(node).replace("\r", "").replace("\n", "")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KitfileError(f"line {where(node).line}: !!binary value contains invalid base64 data") from None
    return data.decode("utf-8", "surrogateescape")


class _Composer:
    def __init__(self) -> None:
        self.yaml = YAML(typ="rt")
        self.yaml.allow_duplicate_keys = False
        self.yaml.Resolver = _PlainResolver

    def compose(self, text: str) -> Node | None:
        try:
            # like yaml.v3's Decoder.Decode: the first document only; later ones are not read
            return next(iter(self.yaml.compose_all(text)), None)
        except MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = f"line {mark.line + 1}: " if mark else ""
            raise KitfileError(f"invalid YAML: {line}{e.problem or e.context}") from None
        except YAMLError as e:
            raise KitfileError(f"invalid YAML: {str(e).splitlines()[0]}") from None


def compose(text: str) -> Node | None:
    """Parse YAML text into a node tree (raises :class:`KitfileError` on syntax errors)."""
    return _Composer().compose(text)


def to_value(node: Node | None, depth: int = 0) -> Any:
    """Convert a node to Python values with yaml.v3 semantics (maps keep source order)."""
    if node is None:
        return None
    if depth > 200:
        raise KitfileError(f"line {where(node).line}: YAML nested too deeply")
    if isinstance(node, ScalarNode):
        return _scalar(node)
    if isinstance(node, SequenceNode):
        return [to_value(n, depth + 1) for n in node.value]
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        explicit = len([1 for k, _ in node.value if not (isinstance(k, ScalarNode) and k.value == "<<")])
        for i, (k, v) in enumerate(merged_pairs(node)):
            key = to_value(k, depth + 1)
            if isinstance(key, (list, dict)):
                raise KitfileError(f"line {where(k).line}: a mapping key must be a scalar")
            if key in out:
                if i < explicit:
                    raise KitfileError(f"line {where(k).line}: mapping key {key!r} is defined twice")
                continue
            out[key] = to_value(v, depth + 1)
        return out
    raise KitfileError(f"line {where(node).line}: unsupported YAML node")


def merged_pairs(node: MappingNode) -> list[tuple[Node, Node]]:
    """Mapping pairs with ``<<`` merge keys applied (explicit keys win)."""
    pairs: list[tuple[Node, Node]] = []
    merges: list[tuple[Node, Node]] = []
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == "<<" and k.style is None:
            srcs = v.value if isinstance(v, SequenceNode) else [v]
            for src in srcs:
                if isinstance(src, MappingNode):
                    merges.extend(merged_pairs(src))
        else:
            pairs.append((k, v))
    seen = {k.value for k, _ in pairs if isinstance(k, ScalarNode)}
    return pairs + [(k, v) for k, v in merges if not (isinstance(k, ScalarNode) and k.value in seen)]


def load_value(text: str) -> Any:
    """Parse YAML text into plain Python values with yaml.v3 semantics."""
    return to_value(compose(text))
