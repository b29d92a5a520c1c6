"""`mlflow-modelkit scan`: exit codes, table, JSON, SARIF, allowlist extension, kit references.

Malicious samples are raw pickle opcode bytes written by the test; nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.errors import NotFoundError
from mlflow_plugin.scanner.api import scan_kit

# GLOBAL os.system, then a harmless argument, TUPLE1, REDUCE, STOP (protocol 2 header)
EVIL = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85q\x01Rq\x02."
# a class the allowlist does not know, instantiated with no arguments
CUSTOM = b"\x80\x02cmypkg.models\nMyEstimator\nq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00aK\x01sb."


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_clean_directory_exits_0(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hello')\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    code, out = run("scan", str(tmp_path))
    assert code == 0, out
    assert "No findings." in out and "2 files" in out


def test_malicious_pickle_exits_1_with_a_table(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(EVIL)  # named like weights: found by content
    code, out = run("scan", str(tmp_path))
    assert code == 1, out
    assert "CRITICAL" in out and "weights.bin" in out and "os.system" in out


def test_json_report_shape(tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(EVIL)
    code, out = run("scan", str(f), "--json")
    assert code == 1
    rep = json.loads(out)
    assert rep["files"][0]["format"] == "pickle"
    finding = rep["findings"][0]
    assert set(finding) == {"path", "severity", "rule", "message", "evidence", "explanation"}
    assert set(finding["explanation"]) == {"what", "when", "fix"}
    assert finding["severity"] == "critical" and "os.system" in finding["evidence"]
    assert rep["summary"]["max_severity"] == "critical"


def test_sarif_export(tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(EVIL)
    sarif = tmp_path / "out.sarif"
    code, _ = run("scan", str(f), "--sarif", str(sarif))
    assert code == 1
    doc = json.loads(sarif.read_text())
    assert doc["version"] == "2.1.0"
    res = doc["runs"][0]["results"]
    assert res and res[0]["level"] == "error"
    rule_ids = {r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert res[0]["ruleId"] in rule_ids


def test_fail_on_threshold_and_allow_global(tmp_path: Path) -> None:
    f = tmp_path / "est.pkl"
    f.write_bytes(CUSTOM)
    code, out = run("scan", str(f), "--json")
    rep = json.loads(out)
    assert rep["findings"], "an unknown global must be reported"
    top = rep["summary"]["max_severity"]
    assert code == (1 if top in ("high", "critical") else 0)
    code, out = run("scan", str(f), "--fail-on", "critical")
    assert code == (1 if top == "critical" else 0)
    code, out = run("scan", str(f), "--allow-global", "mypkg.models.MyEstimator", "--json")
    assert code == 0 and json.loads(out)["summary"]["max_severity"] in (None, "info", "low"), out


def test_missing_target_exits_2(tmp_path: Path) -> None:
    code, out = run("scan", str(tmp_path / "nope"))
    assert code == 2 and out.startswith("error: ") and len(out.strip().splitlines()) == 1


def test_kit_reference_is_scanned_from_the_store(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "model").mkdir(parents=True)
    (ctx / "model" / "model.pt").write_bytes(EVIL)
    (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel: {path: model}\n")
    ops.pack(str(ctx), f"oci:{tmp_path}/kits/m:v1")
    code, out = run("scan", f"oci:{tmp_path}/kits/m:v1", "--json")
    assert code == 1, out
    rep = json.loads(out)
    assert any(f["path"] == "model/model.pt" and f["severity"] == "critical" for f in rep["findings"])
    assert rep["target"].startswith(f"oci:{tmp_path}/kits/m")


def test_kit_scan_results_are_cached_by_layer_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ctx = tmp_path / "ctx"
    (ctx / "model").mkdir(parents=True)
    (ctx / "model" / "model.pt").write_bytes(EVIL)
    (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel: {path: model}\n")
    ops.pack(str(ctx), f"oci:{tmp_path}/kits/m:v1")
    first = scan_kit(f"oci:{tmp_path}/kits/m:v1")
    # the cached result is replayed without reading the layer: delete the blob to prove it
    manifest = ops.inspect(f"oci:{tmp_path}/kits/m:v1").manifest
    (tmp_path / "kits/m/blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]).unlink()
    again = scan_kit(f"oci:{tmp_path}/kits/m:v1")
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in first.findings]
    assert [f.path for f in again.files] == [f.path for f in first.files]
    monkeypatch.setenv("MLFLOW_MODELKIT_SCAN_CACHE", "0")
    with pytest.raises(NotFoundError):
        scan_kit(f"oci:{tmp_path}/kits/m:v1")
