"""Go ``encoding/json.Marshal`` byte compatibility (reference §3.4, §4.7)."""

from __future__ import annotations

import math

import pytest

from mlflow_plugin._internal.gojson import Ordered, dumps, format_float


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # examples stated in modelkit-format.md §4.7
        (1200.0, "1200"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (2.5e-5, "0.000025"),
        # the 'e' / 'f' switch points: abs < 1e-6 or abs >= 1e21
        (1e-6, "0.000001"),
        (9.99e-7, "9.99e-7"),
        (-1e-7, "-1e-7"),
        (1.5e300, "1.5e+300"),
        (-1.5e300, "-1.5e+300"),
        (123456789.125, "123456789.125"),
        (1e16, "10000000000000000"),
        (1.2345678901234568e17, "123456789012345680"),
        (0.1, "0.1"),
        (2.5, "2.5"),
        (12.3, "12.3"),
        (1.0, "1"),
        (-0.0, "-0"),
        (0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_go_float_format(value: float, expected: str) -> None:
    assert format_float(value) == expected
    assert dumps(value) == expected.encode()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_errors(bad: float) -> None:
    with pytest.raises(ValueError, match="unsupported value"):
        dumps({"x": [bad]})


def test_integers_and_literals() -> None:
    assert dumps([0, -123, 2**63 - 1, 2**64 - 1, True, False, None]) == (
        b"[0,-123,9223372036854775807,18446744073709551615,true,false,null]"
    )


def test_html_escaping_and_unicode() -> None:
    # §3.4: < > & escaped as \u003c \u003e \u0026, U+2028/U+2029 escaped, other non-ASCII raw
    assert dumps("<a href='x'>&</a>") == b"\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\""
    assert dumps("\u2028\u2029") == b'"\\u2028\\u2029"'
    assert dumps("ünïcode ✓ 😀") == '"ünïcode ✓ 😀"'.encode()


def test_control_characters() -> None:
    # Go (as used for the reference vectors) writes \n \r \t short and \u00XX (lowercase hex) otherwise
    assert dumps("a\nb\rc\td") == b'"a\\nb\\rc\\td"'
    assert dumps("\x00\x01\x08\x0c\x1f\x7f") == b'"\\u0000\\u0001\\u0008\\u000c\\u001f\x7f"'
    assert dumps('q"b\\') == b'"q\\"b\\\\"'


def test_invalid_utf8_becomes_escaped_replacement_char() -> None:
    # Go writes the six characters \ufffd for each invalid byte; a real U+FFFD stays raw UTF-8
    assert dumps("a\udcffb") == b'"a\\ufffdb"'
    assert dumps("\ufffd") == '"\ufffd"'.encode()


def test_maps_sorted_by_utf8_bytes_structs_keep_order() -> None:
    assert dumps({"b": 1, "a": 2, "B": 3, "é": 4, "z": 5}) == '{"B":3,"a":2,"b":1,"z":5,"é":4}'.encode()
    assert dumps(Ordered(b=1, a=2)) == b'{"b":1,"a":2}'
    nested = {"outer": Ordered(z=1, y={"d": 1, "c": 2})}
    assert dumps(nested) == b'{"outer":{"z":1,"y":{"c":2,"d":1}}}'


def test_compact_no_whitespace_and_empty_containers() -> None:
    assert dumps({"a": [], "b": {}, "c": [{}]}) == b'{"a":[],"b":{},"c":[{}]}'


def test_non_string_map_key_is_an_error() -> None:
    with pytest.raises(TypeError, match="unsupported map key"):
        dumps({1: "x"})
    with pytest.raises(TypeError):
        dumps({"a": object()})


def test_reference_config_bytes() -> None:
    """The §3.4 reference config re-encoded from its parsed form gives the same 833 bytes."""
    import json

    ref = (
        '{"manifestVersion":"1.0.0","package":{"name":"golden","version":"1.0","authors":["Alice","Bob"]},'
        '"model":{"name":"m","path":"./model/","framework":"pytorch","parameters":{"alpha":[1,2.5,true,null],'
        '"hex":255,"lr":1200,"nested":{"a":1,"b":2},"small":1e-7,"zeta":"z"},'
        '"digest":"sha256:4111230d7e281850ae2d1989e72f9235a725337db99a49fdb0c91cd6ea8627e6",'
        '"diffId":"sha256:4111230d7e281850ae2d1989e72f9235a725337db99a49fdb0c91cd6ea8627e6"},'
        '"code":[{"path":"code","digest":"sha256:1357b9f87b2acd97811273659ccae844e8a04907d870a905defa8ee75c4eff62",'
        '"diffId":"sha256:1357b9f87b2acd97811273659ccae844e8a04907d870a905defa8ee75c4eff62"}],'
        '"datasets":[{"name":"d","path":"data.csv",'
        '"digest":"sha256:ad4e6fc877eb1944df8aaa52be2dd4cbd258870ddfc67869eef1a7058c4fe3c2",'
        '"diffId":"sha256:ad4e6fc877eb1944df8aaa52be2dd4cbd258870ddfc67869eef1a7058c4fe3c2"}]}'
    )

    def ordered(o):  # struct order for everything but parameters (a Go map)
        if isinstance(o, dict):
            return Ordered((k, v if k == "parameters" else ordered(v)) for k, v in o.items())
        if isinstance(o, list):
            return [ordered(x) for x in o]
        return o

    obj = json.loads(ref)
    obj["model"]["parameters"]["lr"] = 1200.0  # YAML 1.2e+3 decodes to float64
    obj["model"]["parameters"]["small"] = 1e-7
    assert dumps(ordered(obj)) == ref.encode()
    assert len(ref) == 833
