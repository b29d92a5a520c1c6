"""Kitfile parsing (yaml.v3 semantics, strict), Go JSON config bytes and kit's validation rules."""

from __future__ import annotations

import textwrap

import pytest
from _kithelpers import CASE0_KITFILE

from mlflow_plugin.errors import KitfileError
from mlflow_plugin.kit.kitfile import Kitfile, LayerInfo, is_modelkit_reference, path_type
from mlflow_plugin.kit.yamlv3 import load_value, resolve_plain


def parse(text: str) -> Kitfile:
    return Kitfile.parse(textwrap.dedent(text))


def params_json(yaml_params: str) -> bytes:
    """Config JSON of a Kitfile whose model.parameters is ``yaml_params`` (indented block)."""
    body = textwrap.indent(textwrap.dedent(yaml_params), "    ")
    kf = Kitfile.parse(f"manifestVersion: 1.0.0\nmodel:\n  parameters:\n{body}")
    return kf.to_json()


# ---- kit's own fixtures: pkg/artifact/testdata/parameters/*.yaml (kitfileYaml -> kitfileJson) ----

KIT_PARAMETER_FIXTURES = [
    (
        "test-basic-parameters",
        """\
        manifestVersion: 1.0.0
        package:
          name: test-kitfile
        model:
          name: test-model
          path: /tmp/path/to/model
          parameters:
            test-a: a
            test-b: b
            test-c: c
        """,
        '{"manifestVersion":"1.0.0","package":{"name":"test-kitfile"},"model":{"name":"test-model",'
        '"path":"/tmp/path/to/model","parameters":{"test-a":"a","test-b":"b","test-c":"c"}}}',
    ),
    (
        "test-data-types",
        """\
        manifestVersion: 1.0.0
        package:
          name: test-kitfile
        model:
          name: test-model
          path: /tmp/path/to/model
          parameters:
            test-bool: true
            test-bool-str: "true"
            test-float: 12.3
            test-negative: -123
            test-number: 123
            test-string: string
        """,
        '{"manifestVersion":"1.0.0","package":{"name":"test-kitfile"},"model":{"name":"test-model",'
        '"path":"/tmp/path/to/model","parameters":{"test-bool":true,"test-bool-str":"true","test-float":12.3,'
        '"test-negative":-123,"test-number":123,"test-string":"string"}}}',
    ),
    (
        "test-list-parameters",
        """\
        manifestVersion: 1.0.0
        package:
          name: test-kitfile
        model:
          name: test-model
          path: /tmp/path/to/model
          parameters:
            - item-a
            - item-b
            - item-c
        """,
        '{"manifestVersion":"1.0.0","package":{"name":"test-kitfile"},"model":{"name":"test-model",'
        '"path":"/tmp/path/to/model","parameters":["item-a","item-b","item-c"]}}',
    ),
    (
        "test-nested-parameters",
        """\
        manifestVersion: 1.0.0
        package:
          name: test-kitfile
        model:
          name: test-model
          path: /tmp/path/to/model
          parameters:
            test-list-of-lists:
              - - a-1
                - a-2
              - - b-1
                - b-2
            test-maps:
              a:
                b:
                  c:
                    d:
                      e: f
            test-nested-list:
              - item-a
              - item-b
              - item-object:
                  - subfield-1: 1
                  - subfield-2: 2
            test-nested-map:
              test-a: a
              test-b: b
              test-c: c
        """,
        '{"manifestVersion":"1.0.0","package":{"name":"test-kitfile"},"model":{"name":"test-model",'
        '"path":"/tmp/path/to/model","parameters":{"test-list-of-lists":[["a-1","a-2"],["b-1","b-2"]],'
        '"test-maps":{"a":{"b":{"c":{"d":{"e":"f"}}}}},"test-nested-list":["item-a","item-b",'
        '{"item-object":[{"subfield-1":1},{"subfield-2":2}]}],"test-nested-map":{"test-a":"a","test-b":"b",'
        '"test-c":"c"}}}}',
    ),
    (
        "test-single-value",
        """\
        manifestVersion: 1.0.0
        package:
          name: test-kitfile
        model:
          name: test-model
          path: /tmp/path/to/model
          parameters: |
            test-string
        """,
        '{"manifestVersion":"1.0.0","package":{"name":"test-kitfile"},"model":{"name":"test-model",'
        '"path":"/tmp/path/to/model","parameters":"test-string\\n"}}',
    ),
]


@pytest.mark.parametrize(
    ("name", "yaml_text", "expected"), KIT_PARAMETER_FIXTURES, ids=[f[0] for f in KIT_PARAMETER_FIXTURES]
)
def test_kit_parameter_fixtures(name: str, yaml_text: str, expected: str) -> None:
    assert parse(yaml_text).to_json() == expected.encode()


# ---- the reference vector (§3.4 / §10.2) ---------------------------------------------------------

D_MODEL = "sha256:4111230d7e281850ae2d1989e72f9235a725337db99a49fdb0c91cd6ea8627e6"
D_CODE = "sha256:1357b9f87b2acd97811273659ccae844e8a04907d870a905defa8ee75c4eff62"
D_DATA = "sha256:ad4e6fc877eb1944df8aaa52be2dd4cbd258870ddfc67869eef1a7058c4fe3c2"
CASE0_CONFIG = (
    '{"manifestVersion":"1.0.0","package":{"name":"golden","version":"1.0","authors":["Alice","Bob"]},'
    '"model":{"name":"m","path":"./model/","framework":"pytorch","parameters":{"alpha":[1,2.5,true,null],'
    f'"hex":255,"lr":1200,"nested":{{"a":1,"b":2}},"small":1e-7,"zeta":"z"}},"digest":"{D_MODEL}",'
    f'"diffId":"{D_MODEL}"}},"code":[{{"path":"code","digest":"{D_CODE}","diffId":"{D_CODE}"}}],'
    f'"datasets":[{{"name":"d","path":"data.csv","digest":"{D_DATA}","diffId":"{D_DATA}"}}]}}'
)


def test_reference_config_bytes_and_digest() -> None:
    import hashlib

    kf = Kitfile.parse(CASE0_KITFILE)
    kf.model.layer = LayerInfo(D_MODEL, D_MODEL)
    kf.code[0].layer = LayerInfo(D_CODE, D_CODE)
    kf.datasets[0].layer = LayerInfo(D_DATA, D_DATA)
    data = kf.to_json()
    assert data == CASE0_CONFIG.encode()
    assert len(data) == 833
    assert (
        hashlib.sha256(data).hexdigest() == "7162426e7495841b35a54fffec6773d55a902c371191176183718a74eec2fe11"
    )


def test_config_without_digests_omits_layer_info() -> None:
    data = Kitfile.parse(CASE0_KITFILE).to_json()
    assert b"digest" not in data and b"diffId" not in data
    assert data.startswith(b'{"manifestVersion":"1.0.0","package":{"name":"golden","version":"1.0"')


def test_from_json_round_trip_keeps_layer_info() -> None:
    kf = Kitfile.from_json(CASE0_CONFIG)
    assert kf.model.layer == LayerInfo(D_MODEL, D_MODEL)
    assert kf.datasets[0].layer.digest == D_DATA
    assert kf.to_json() == CASE0_CONFIG.encode()


# ---- yaml.v3 scalar resolution (§3.5 table) ------------------------------------------------------


@pytest.mark.parametrize(
    ("scalar", "json_value"),
    [
        ("yes", '"yes"'),
        ("on", '"on"'),
        ("off", '"off"'),
        ("no", '"no"'),
        ("y", '"y"'),
        ("Yes", '"Yes"'),
        ("0o17", "15"),
        ("017", "15"),
        ("-0o17", "-15"),
        ("0O17", "15"),
        ("1e3", "1000"),
        ("1.0", "1"),
        ("0xFF", "255"),
        ("0X1f", "31"),
        ("0b101", "5"),
        ("-0b11", "-3"),
        ("2024-01-01", '"2024-01-01T00:00:00Z"'),
        ("2024-1-2", '"2024-01-02T00:00:00Z"'),
        ("2024-01-01T10:20:30Z", '"2024-01-01T10:20:30Z"'),
        ("2024-01-01t10:20:30.500+02:00", '"2024-01-01T10:20:30.5+02:00"'),
        ("2024-01-01T10:20:30+00:00", '"2024-01-01T10:20:30Z"'),
        ("2024-01-01 10:20:30", '"2024-01-01T10:20:30Z"'),
        ("2024-01-01T10:20:30", '"2024-01-01T10:20:30"'),  # the T form needs a zone: stays a string
        ("2024-02-30", '"2024-02-30"'),  # not a date: stays a string
        ("~", "null"),
        ("null", "null"),
        ("Null", "null"),
        ("NULL", "null"),
        ("nULL", '"nULL"'),
        ("", "null"),
        ("true", "true"),
        ("True", "true"),
        ("TRUE", "true"),
        ("tRUE", '"tRUE"'),
        ("false", "false"),
        ('"1.0"', '"1.0"'),
        ("'0xFF'", '"0xFF"'),
        ('"true"', '"true"'),
        ("!!str 12", '"12"'),
        ("!!float 1", "1"),
        ("!!int 0x10", "16"),
        ("1_000", "1000"),
        ("+12", "12"),
        ("-0", "0"),
        ("-0.0", "-0"),
        ("08", "8"),
        ("09.5", "9.5"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("+.5e2", "50"),
        ("0.", "0"),
        ("1e21", "1e+21"),
        ("1.2e+3", "1200"),
        ("1e-7", "1e-7"),
        ("2.5e-5", "0.000025"),
        ("12:30", '"12:30"'),
        ("1:20:30", '"1:20:30"'),
        ("0x", '"0x"'),
        ("0o8", '"0o8"'),
        ("1e", '"1e"'),
        ("9223372036854775807", "9223372036854775807"),
        ("9223372036854775808", "9223372036854775808"),  # uint64
        ("18446744073709551616", "18446744073709552000"),  # beyond uint64: float64
        ("-9223372036854775809", "-9223372036854776000"),
        ("1e400", '"1e400"'),  # ParseFloat overflow: not a float
        ("1e-400", "0"),
        ("٣", '"٣"'),
        ("1٣", '"1٣"'),  # only ASCII digits are numbers
        ("<b>&", '"\\u003cb\\u003e\\u0026"'),
    ],
)
def test_yaml_v3_scalars_in_parameters(scalar: str, json_value: str) -> None:
    assert (
        params_json(f"v: {scalar}\n")
        == (
            '{"manifestVersion":"1.0.0","package":{},"model":{"parameters":{"v":' + json_value + "}}}"
        ).encode()
    )


@pytest.mark.parametrize("scalar", [".inf", "-.inf", ".NaN", "+.INF"])
def test_non_finite_parameters_are_rejected(scalar: str) -> None:
    with pytest.raises(KitfileError, match="line 4"):
        params_json(f"v: {scalar}\n")


@pytest.mark.parametrize("key", ["1", "true", "~", "1.5", "2024-01-01"])
def test_non_string_parameter_keys_are_rejected(key: str) -> None:
    # yaml.v3 builds map[interface{}]interface{} for these and Go's JSON refuses it
    with pytest.raises(KitfileError, match="non-string key"):
        params_json(f"{key}: x\n")


def test_quoted_keys_are_strings() -> None:
    assert params_json('"1": a\n"2024-01-01": b\n') == (
        b'{"manifestVersion":"1.0.0","package":{},"model":{"parameters":{"1":"a","2024-01-01":"b"}}}'
    )


def test_parameters_anchors_aliases_merge_keys_and_block_scalars() -> None:
    out = params_json("""\
        base: &b {x: 1, y: 2}
        copy: *b
        merged:
          <<: *b
          y: 3
        folded: >
          a
          b
        literal: |-
          l1
          l2
        """)
    assert out == (
        b'{"manifestVersion":"1.0.0","package":{},"model":{"parameters":{"base":{"x":1,"y":2},'
        b'"copy":{"x":1,"y":2},"folded":"a b\\n","literal":"l1\\nl2","merged":{"x":1,"y":3}}}}'
    )


def test_folded_and_binary_scalars() -> None:
    kf = parse("""\
        manifestVersion: 1.0.0
        package:
          description: >
            folded
            text

            para
          name: !!binary aGVsbG8=
        model:
          parameters:
            f: >-
              a
              b
            bin: !!binary |
              aGVs
              bG8=
        """)
    assert kf.package.description == "folded text\npara\n"
    assert kf.to_json() == (
        b'{"manifestVersion":"1.0.0","package":{"name":"hello","description":"folded text\\npara'
        b'\\n"},"model":{"parameters":{"bin":"hello","f":"a b"}}}'
    )
    with pytest.raises(KitfileError, match="base64"):
        parse("manifestVersion: 1.0.0\npackage:\n  name: !!binary '***'\n")


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ('""', b',"parameters":""'),
        ("[]", b',"parameters":[]'),
        ("{}", b',"parameters":{}'),
        ("0", b',"parameters":0'),
        ("false", b',"parameters":false'),
        ("~", b""),
        ("", b""),
        ("null", b""),
    ],
)
def test_parameters_omitted_only_when_null(yaml_value: str, expected: bytes) -> None:
    # Go: Parameters is `any` with omitempty, so only a nil interface is omitted
    kf = Kitfile.parse(f"manifestVersion: 1.0.0\nmodel:\n  path: m\n  parameters: {yaml_value}\n")
    assert kf.to_json() == b'{"manifestVersion":"1.0.0","package":{},"model":{"path":"m"' + expected + b"}}"


def test_resolve_plain_direct() -> None:
    assert resolve_plain("yes") == "yes"
    assert resolve_plain("0o17") == 15
    assert resolve_plain("1e3") == 1000.0 and isinstance(resolve_plain("1e3"), float)
    assert load_value("a: [1, '2', 3.0]") == {"a": [1, "2", 3.0]}


# ---- string fields keep their source text --------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_value", "json_value"),
    [
        ("1.0", "1.0"),
        ("1.10", "1.10"),
        ("0xFF", "0xFF"),
        ("017", "017"),
        ("true", "true"),
        ("yes", "yes"),
        ("2024-01-01", "2024-01-01"),
        ("1e3", "1e3"),
        ('"quoted"', "quoted"),
        ("'single'", "single"),
        ("3", "3"),
        ("<v&1>", "\\u003cv\\u00261\\u003e"),
    ],
)
def test_string_fields_keep_source_text(yaml_value: str, json_value: str) -> None:
    kf = Kitfile.parse(f"manifestVersion: 1.0.0\npackage:\n  version: {yaml_value}\n")
    assert kf.to_json() == ('{"manifestVersion":"1.0.0","package":{"version":"' + json_value + '"}}').encode()


def test_manifest_version_keeps_text_and_null_string_fields_are_empty() -> None:
    kf = parse("""\
        manifestVersion: 1.0
        package:
          name: ~
          description:
          authors: [1, true, ~, b]
        """)
    assert kf.manifest_version == "1.0"
    # yaml.v3 drops null items of []string; other scalars keep their text
    assert kf.to_json() == b'{"manifestVersion":"1.0","package":{"authors":["1","true","b"]}}'


# ---- JSON shape: field order, always-present fields, empty Kitfile -------------------------------


def test_package_always_present_and_empty_kitfile() -> None:
    assert parse("manifestVersion: 1.0.0\n").to_json() == b'{"manifestVersion":"1.0.0","package":{}}'
    assert parse("manifestVersion: 1.0.0\npackage: {}\ncode: []\n").to_json() == (
        b'{"manifestVersion":"1.0.0","package":{}}'
    )
    assert parse("manifestVersion: 1.0.0\nmodel: {}\n").to_json() == (
        b'{"manifestVersion":"1.0.0","package":{},"model":{}}'
    )


def test_docs_path_always_present() -> None:
    kf = parse("""\
        manifestVersion: 1.0.0
        docs:
          - description: no path
          - path: README.md
        """)
    assert kf.to_json() == (
        b'{"manifestVersion":"1.0.0","package":{},"docs":[{"path":"","description":"no path"},'
        b'{"path":"README.md"}]}'
    )


def test_go_struct_field_order_for_every_section() -> None:
    kf = parse("""\
        mcpServers:
          - description: d
            path: s.mcpb
            name: srv
        prompts:
          - description: d
            path: p.md
            name: p
        docs:
          - description: d
            path: docs
        datasets:
          - parameters: {k: v}
            license: L
            description: d
            remoteHash: h
            remotePath: s3://b/k
            path: data
            name: ds
        code:
          - license: L
            description: d
            path: src
        model:
          parameters: {a: 1}
          parts:
            - type: gguf
              license: L
              path: p1
              name: part
          description: d
          version: v
          format: f
          framework: fw
          license: L
          path: m
          name: n
        package:
          authors: [a]
          license: L
          description: d
          version: v
          name: n
        manifestVersion: 1.0.0
        """)
    assert kf.to_json() == (
        b'{"manifestVersion":"1.0.0","package":{"name":"n","version":"v","description":"d","license":"L",'
        b'"authors":["a"]},"model":{"name":"n","path":"m","license":"L","framework":"fw","format":"f",'
        b'"version":"v","description":"d","parts":[{"name":"part","path":"p1","license":"L","type":"gguf"}],'
        b'"parameters":{"a":1}},"code":[{"path":"src","description":"d","license":"L"}],'
        b'"datasets":[{"name":"ds","path":"data","remotePath":"s3://b/k","remoteHash":"h","description":"d",'
        b'"license":"L","parameters":{"k":"v"}}],"docs":[{"path":"docs","description":"d"}],'
        b'"prompts":[{"name":"p","path":"p.md","description":"d"}],'
        b'"mcpServers":[{"name":"srv","path":"s.mcpb","description":"d"}]}'
    )


def test_paths_are_copied_verbatim() -> None:
    kf = parse("manifestVersion: 1.0.0\nmodel:\n  path: ./model/\ncode:\n  - path: ./src//x/../\n")
    assert b'"path":"./model/"' in kf.to_json() and b'"path":"./src//x/../"' in kf.to_json()


def test_null_list_items_are_dropped() -> None:
    # yaml.v3 cannot set a struct from null, so the item is skipped (it does not become path "")
    kf = parse("manifestVersion: 1.0.0\ncode:\n  - ~\n  - path: src\n  -\ndocs: [~]\n")
    assert [c.path for c in kf.code] == ["src"]
    assert kf.docs == []


def test_null_sections() -> None:
    kf = parse("manifestVersion: 1.0.0\npackage: ~\nmodel: ~\ncode: ~\ndatasets:\n")
    assert kf.model is None and kf.code == [] and kf.datasets == []
    assert kf.to_json() == b'{"manifestVersion":"1.0.0","package":{}}'


# ---- strictness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("manifestVersion: 1.0.0\nmodle:\n  path: m\n", 2, "modle"),
        ("manifestVersion: 1.0.0\nmodel:\n  path: m\n  paht: x\n", 4, "paht"),
        ("manifestVersion: 1.0.0\ncode:\n  - path: a\n  - path: b\n    descripton: x\n", 5, "descripton"),
        ("manifestVersion: 1.0.0\nmodel:\n  path: m\n  digest: sha256:abc\n", 4, "digest"),  # yaml:"-"
        ("manifestVersion: 1.0.0\nmodel:\n  parts:\n    - path: p\n      kind: x\n", 5, "kind"),
        ("manifestVersion: 1.0.0\npackage:\n  Name: x\n", 3, "Name"),  # case-sensitive
        ("ManifestVersion: 1.0.0\n", 1, "ManifestVersion"),
    ],
)
def test_unknown_keys_are_errors_with_line_numbers(text: str, line: int, key: str) -> None:
    with pytest.raises(KitfileError) as ei:
        Kitfile.parse(text)
    msg = str(ei.value)
    assert f"line {line}" in msg and repr(key) in msg


def test_unknown_key_suggests_a_fix() -> None:
    with pytest.raises(KitfileError, match="did you mean 'model'"):
        Kitfile.parse("manifestVersion: 1.0.0\nmodle: {}\n")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("manifestVersion: 1.0.0\nmodel: [a]\n", 2),
        ("manifestVersion: 1.0.0\ncode:\n  path: x\n", 3),
        ("manifestVersion: 1.0.0\npackage:\n  authors: Alice\n", 3),
        ("manifestVersion: 1.0.0\npackage:\n  name: [a]\n", 3),
        ("manifestVersion: 1.0.0\npackage:\n  authors: [[a]]\n", 3),
        ("manifestVersion: [1]\n", 1),
        ("manifestVersion: 1.0.0\npackage: text\n", 2),
        ("manifestVersion: 1.0.0\ndatasets:\n  - name: {a: b}\n", 3),
        ("- just\n- a list\n", 1),
    ],
)
def test_wrong_types_are_errors(text: str, line: int) -> None:
    with pytest.raises(KitfileError, match=f"line {line}"):
        Kitfile.parse(text)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("manifestVersion: 1.0.0\nmodel:\n  path: a\nmodel:\n  path: b\n", 4),
        ("manifestVersion: 1.0.0\nmodel:\n  path: a\n  path: b\n", 4),
        ("manifestVersion: 1.0.0\nmodel:\n  parameters:\n    k: 1\n    k: 2\n", 5),
        ("manifestVersion: 1.0.0\nmodel:\n  parameters:\n    k: 1\n    'k': 2\n", 5),
    ],
)
def test_duplicate_keys_are_errors(text: str, line: int) -> None:
    with pytest.raises(KitfileError, match=f"line {line}"):
        Kitfile.parse(text)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_kitfile_is_an_error(text: str) -> None:
    with pytest.raises(KitfileError, match="empty"):
        Kitfile.parse(text)


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(KitfileError, match="invalid YAML: line 3"):
        Kitfile.parse("manifestVersion: 1.0.0\nmodel:\n\tpath: m\n")
    with pytest.raises(KitfileError, match="not valid UTF-8"):
        Kitfile.parse(b"manifestVersion: \xff\n")


def test_bytes_input_and_source_name_in_errors() -> None:
    assert Kitfile.parse(b"manifestVersion: 1.0.0\n").manifest_version == "1.0.0"
    with pytest.raises(KitfileError, match=r"^ctx/Kitfile"):
        Kitfile.parse("manifestVersion: 1.0.0\nbogus: 1\n", source="ctx/Kitfile")


# ---- validation ----------------------------------------------------------------------------------


def invalid(text: str, pattern: str) -> None:
    kf = parse(text)
    with pytest.raises(KitfileError, match=pattern):
        kf.validate()


def valid(text: str) -> list[str]:
    return parse(text).validate()


@pytest.mark.parametrize(
    "text",
    [
        # kit's duplicate-path-in-kitfile_3: paths are cleaned before comparison
        "manifestVersion: 1.0.0\nmodel:\n  path: test-path/\ndatasets:\n  - path: test-path\n",
        "manifestVersion: 1.0.0\nmodel:\n  path: ./model\ncode:\n  - path: model\n",
        "manifestVersion: 1.0.0\ncode:\n  - path: a/b/../c\ndocs:\n  - path: a/c/\n",
        "manifestVersion: 1.0.0\ncode:\n  - path: .\ndocs:\n  - description: empty path counts as .\n",
        "manifestVersion: 1.0.0\ncode:\n  - path: src\n  - path: ./src/\n",
        "manifestVersion: 1.0.0\nmodel:\n  path: m\n  parts:\n    - path: m\n",
        "manifestVersion: 1.0.0\nprompts:\n  - path: p.md\ndatasets:\n  - path: ./p.md\n",
    ],
)
def test_duplicate_paths_after_cleaning(text: str) -> None:
    invalid(text, "duplicate path")


@pytest.mark.parametrize("section", ["model", "part", "code", "datasets", "docs", "prompts"])
def test_absolute_paths_are_errors(section: str) -> None:
    snippets = {
        "model": "model:\n  path: /abs/model\n",
        "part": "model:\n  parts:\n    - path: /abs/part\n",
        "code": "code:\n  - path: /abs/code\n",
        "datasets": "datasets:\n  - path: /abs/data\n",
        "docs": "docs:\n  - path: /abs/docs\n",
        "prompts": "prompts:\n  - path: /abs/prompt.md\n",
    }
    invalid("manifestVersion: 1.0.0\n" + snippets[section], "absolute")


@pytest.mark.parametrize("path", ["..", "../data", "a/../../data", "./../x", "a/b/../../../c"])
def test_paths_escaping_the_context_are_errors(path: str) -> None:
    invalid(f"manifestVersion: 1.0.0\ndatasets:\n  - path: {path}\n", "outside the context")
    invalid(f"manifestVersion: 1.0.0\nprompts:\n  - path: {path}\n", "outside the context")


def test_relative_path_within_context_allowed() -> None:
    # kit's relative-path-within-context-allowed.yaml
    assert (
        valid("manifestVersion: 1.0.0\ncode:\n  - path: src/../lib\nprompts:\n  - path: ./skills/personal/\n")
        == []
    )


@pytest.mark.parametrize("section", ["model", "part", "code", "datasets", "docs", "prompts"])
@pytest.mark.parametrize("url", ["http://example.com/m.bin", "https://example.com/m.bin"])
def test_http_paths_are_errors(section: str, url: str) -> None:
    snippets = {
        "model": f"model:\n  path: {url}\n",
        "part": f"model:\n  parts:\n    - path: {url}\n",
        "code": f"code:\n  - path: {url}\n",
        "datasets": f"datasets:\n  - path: {url}\n",
        "docs": f"docs:\n  - path: {url}\n",
        "prompts": f"prompts:\n  - path: {url}\n",
    }
    invalid("manifestVersion: 1.0.0\n" + snippets[section], "HTTP urls are not supported")


@pytest.mark.parametrize("section", ["model", "part", "code", "datasets", "docs", "prompts", "mcp"])
def test_s3_paths_are_errors(section: str) -> None:
    snippets = {
        "model": "model:\n  path: s3://bucket/model\n",
        "part": "model:\n  parts:\n    - path: s3://bucket/p\n",
        "code": "code:\n  - path: s3://bucket/code\n",
        "datasets": "datasets:\n  - path: s3://bucket/data\n",
        "docs": "docs:\n  - path: s3://bucket/docs\n",
        "prompts": "prompts:\n  - path: s3://bucket/p.md\n",
        "mcp": "mcpServers:\n  - name: s\n    path: s3://bucket/s.mcpb\n",
    }
    invalid("manifestVersion: 1.0.0\n" + snippets[section], "s3")


def test_modelkit_reference_only_for_model() -> None:
    assert valid("manifestVersion: 1.0.0\nmodel:\n  path: jozu.ml/org/base:v1\n") == []
    assert (
        valid(
            "manifestVersion: 1.0.0\nmodel:\n  path: registry.example.com/org/base@sha256:" + "a" * 64 + "\n"
        )
        == []
    )
    for snippet in (
        "code:\n  - path: jozu.ml/org/code:v1\n",
        "datasets:\n  - path: jozu.ml/org/d:v1\n",
        "docs:\n  - path: jozu.ml/org/docs:v1\n",
        "prompts:\n  - path: jozu.ml/org/p:v1\n",
        "model:\n  parts:\n    - path: jozu.ml/org/part:v1\n",
    ):
        invalid("manifestVersion: 1.0.0\n" + snippet, "references are only allowed for the model")


def test_path_type_classification() -> None:
    assert path_type("http://x/y") == "http" and path_type("HTTPS://x") == "http"
    assert path_type("s3://b/k") == "s3"
    assert path_type("jozu.ml/org/repo:tag") == "ref"
    assert path_type("org/repo:tag") == "ref"  # localhost/org/repo:tag
    assert path_type("model/weights.bin") == "local"
    assert path_type("Model:v1") == "local"  # uppercase repository does not parse
    assert is_modelkit_reference("sha256:" + "0" * 64)
    assert not is_modelkit_reference("data")


@pytest.mark.parametrize("ptype", ["gguf", "lora-adapter", "a.b_c", "_x", "9", "x" * 64, "weights.v1-final"])
def test_valid_part_types(ptype: str) -> None:
    assert valid(f"manifestVersion: 1.0.0\nmodel:\n  parts:\n    - path: p\n      type: '{ptype}'\n") == []


@pytest.mark.parametrize("ptype", ["-x", ".x", "a b", "x/y", "modèle", "x" * 65, "a+b", "abc\\n"])
def test_invalid_part_types(ptype: str) -> None:
    invalid(f'manifestVersion: 1.0.0\nmodel:\n  parts:\n    - path: p\n      type: "{ptype}"\n', "type")


def test_remote_dataset_rules() -> None:
    ok = [
        "datasets:\n  - path: data/train\n    remotePath: s3://bucket/train\n    remoteHash: sha256:abc\n",
        # kit's remote-dataset-modelkit-ref.yaml: a ModelKit reference needs no hash
        "datasets:\n  - path: data/train\n    remotePath: docker.io/kit-org/kit-repo:latest\n",
        # kit's remote-dataset-sibling-paths-allowed.yaml: data/train-eval is not inside data/train
        "model:\n  path: models/main.bin\ndatasets:\n  - path: data/train\n    remotePath: "
        "docker.io/kit-org/kit-repo:latest\n  - path: data/train-eval\n  - path: data/eval\n"
        "code:\n  - path: code\n",
    ]
    for text in ok:
        assert valid("manifestVersion: 1.0.0\n" + text) == []
    invalid(
        "manifestVersion: 1.0.0\ndatasets:\n  - path: d\n    remotePath: s3://bucket/k\n", "needs remoteHash"
    )
    invalid(
        "manifestVersion: 1.0.0\ndatasets:\n  - path: d\n    remoteHash: sha256:abc\n", "remotePath is empty"
    )
    for rp in ("https://example.com/d", "local/dir"):
        invalid(
            f"manifestVersion: 1.0.0\ndatasets:\n  - path: d\n    remotePath: {rp}\n    remoteHash: h\n",
            "s3:// path or a ModelKit reference",
        )
    remote = "  - path: data/train\n    remotePath: s3://b/k\n    remoteHash: h\n"
    for other in (
        "datasets:\n" + remote + "code:\n  - path: data/train/code\n",
        "datasets:\n" + remote + "model:\n  path: data/train\n",
        "datasets:\n" + remote + "  - path: data/train/nested\n",
    ):
        invalid("manifestVersion: 1.0.0\n" + other, "inside remote dataset path")


def test_mcp_server_rules() -> None:
    assert (
        valid(
            "manifestVersion: 1.0.0\nmcpServers:\n  - name: a\n    path: a.mcpb\n  - name: b\n"
            "    path: tools/b.mcpb\n"
        )
        == []
    )
    invalid("manifestVersion: 1.0.0\nmcpServers:\n  - name: a\n    path: a.zip\n", "must end in .mcpb")
    invalid("manifestVersion: 1.0.0\nmcpServers:\n  - path: a.mcpb\n", "needs a name")
    invalid(
        "manifestVersion: 1.0.0\nmcpServers:\n  - name: a\n    path: a.mcpb\n  - name: a\n    path: b.mcpb\n",
        "used twice",
    )
    invalid(
        "manifestVersion: 1.0.0\ncode:\n  - path: a.mcpb\nmcpServers:\n  - name: a\n    path: ./a.mcpb\n",
        "duplicate path",
    )


def test_all_errors_are_reported_sorted() -> None:
    kf = parse(
        "manifestVersion: 1.0.0\ncode:\n  - path: /abs\ndocs:\n  - path: http://x\n"
        "model:\n  parts:\n    - path: p\n      type: -bad\n"
    )
    with pytest.raises(KitfileError) as ei:
        kf.validate()
    msg = str(ei.value)
    assert "absolute" in msg and "HTTP" in msg and "type" in msg
    parts = msg.removeprefix("invalid Kitfile: ").split("; ")
    assert parts == sorted(parts) and len(parts) == 3


def test_unrecognized_manifest_version_is_a_warning() -> None:
    assert valid("manifestVersion: 1.0.0\n") == []
    warnings = valid("manifestVersion: 2.0\n")
    assert len(warnings) == 1 and "2.0" in warnings[0] and "1.0.0" in warnings[0]


def test_yaml_text_forms_in_string_fields() -> None:
    kf = Kitfile.parse(
        "%YAML 1.2\n---\nmanifestVersion: 1.0.0   # comment\npackage:\n  description: this is\n"
        '    continued plain\n  name: "tab\\there \\u00e9 \\x41"\n'
        "  license: 'it''s'\n  version: >-\n    1.0\n"
        "...\n"
    )
    assert kf.package.description == "this is continued plain"
    assert kf.package.name == "tab\there é A" and kf.package.license == "it's" and kf.package.version == "1.0"
    assert kf.to_json() == (
        b'{"manifestVersion":"1.0.0","package":{"name":"tab\\there \xc3\xa9 A","version":"1.0",'
        b'"description":"this is continued plain","license":"it\'s"}}'
    )


def test_only_the_first_yaml_document_is_read() -> None:
    # kit decodes once with yaml.v3's Decoder: later documents are never looked at
    kf = Kitfile.parse("manifestVersion: 1.0.0\n---\nmanifestVersion: 2\nbogus: [\n")
    assert kf.to_json() == b'{"manifestVersion":"1.0.0","package":{}}'
