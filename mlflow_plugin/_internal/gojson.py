"""Byte-exact re-implementation of Go's ``encoding/json.Marshal`` for the values kit serialises.

Kit configs and OCI manifests are produced by Go; their digests only match if we write the
same bytes: compact output, HTML-safe escaping (``<``, ``>``, ``&``, U+2028, U+2029), raw
UTF-8 for other non-ASCII text, map keys sorted by their UTF-8 bytes, and Go's float format.

>>> dumps({"b": 1e-7, "a": [1200.0, "<x>"]})
b'{"a":[1200,"\\\\u003cx\\\\u003e"],"b":1e-7}'

Dicts are treated as Go maps (sorted keys) unless they are :class:`Ordered`, which keeps
insertion order the way a Go struct keeps field order.
"""

from __future__ import annotations

import math
from typing import Any


class Ordered(dict):
    """A dict whose keys are emitted in insertion order (a Go struct), not sorted (a Go map)."""


_ESC = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        e = _ESC.get(ch)
        if e is not None:
            out.append(e)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # lone surrogate (invalid UTF-8): Go writes the escape \ufffd
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_float(f: float) -> str:
    """Format a float64 the way Go's encoding/json does.

    >>> [format_float(x) for x in (1200.0, 1e20, 1e21, 1e-7, 2.5e-5, -0.0)]
    ['1200', '100000000000000000000', '1e+21', '1e-7', '0.000025', '-0']
    """
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {f!r}")
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        mant, exp = repr(f).split("e")  # repr uses exponent form in this range
        e = int(exp)
        return f"{mant}e{'-' if e < 0 else '+'}{abs(e)}"
    # fixed notation with the shortest round-trip digits
    s = repr(f)
    if "e" in s or "E" in s:
        mant, exp = s.lower().split("e")
        e = int(exp)
        neg = mant.startswith("-")
        mant = mant.lstrip("-")
        intpart, _, frac = mant.partition(".")
        digits = intpart + frac
        point = len(intpart) + e
        if point <= 0:
            s = "0." + "0" * (-point) + digits
        elif point >= len(digits):
            s = digits + "0" * (point - len(digits))
        else:
            s = digits[:point] + "." + digits[point:]
        s = ("-" if neg else "") + s
    if s.endswith(".0"):
        s = s[:-2]
    return s


def _encode(v: Any, out: list[str]) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(format_float(v))
    elif isinstance(v, str):
        out.append(_string(v))
    elif isinstance(v, dict):
        keys = list(v.keys())
        for k in keys:
            if not isinstance(k, str):
                raise TypeError(f"json: unsupported map key type {type(k).__name__} ({k!r})")
        if not isinstance(v, Ordered):
            keys.sort(key=lambda k: k.encode("utf-8", "surrogatepass"))
        out.append("{")
        for i, k in enumerate(keys):
            if i:
                out.append(",")
            out.append(_string(k))
            out.append(":")
            _encode(v[k], out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _encode(x, out)
        out.append("]")
    else:
        raise TypeError(f"json: unsupported type {type(v).__name__}")


def dumps(v: Any) -> bytes:
    """Serialise ``v`` to the exact bytes Go's ``json.Marshal`` would produce."""
    out: list[str] = []
    _encode(v, out)
    return "".join(out).encode("utf-8")
