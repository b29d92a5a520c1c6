"""Admin configuration: TOML file + MLFLOW_MODELKIT_* overrides, with sources; secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlflow_plugin.cli import main
from mlflow_plugin.config import load_config
from mlflow_plugin.errors import ModelKitError

TOML = """
[registries]
insecure = ["registry.internal:5000"]
allowed = ["registry.internal:5000", "ghcr.io"]

[signing]
key = "/etc/modelkit/cosign.key"
trusted_keys = ["/etc/modelkit/a.pub", "/etc/modelkit/b.pub"]

[scan]
fail_on = "medium"
allow_globals = ["mypkg.models.MyEstimator"]

[policy]
require_signature = true
required_attestations = ["provenance"]
max_severity = "low"
"""


def test_file_then_env_overrides(tmp_path: Path) -> None:
    f = tmp_path / "modelkit.toml"
    f.write_text(TOML)
    env = {
        "MLFLOW_MODELKIT_CONFIG": str(f),
        "MLFLOW_MODELKIT_SCAN_FAIL_ON": "critical",
        "MLFLOW_MODELKIT_TRUSTED_KEYS": "/k1.pub, /k2.pub",
    }
    cfg = load_config(env)
    assert cfg.insecure_registries == ["registry.internal:5000"]
    assert cfg.signing_key == "/etc/modelkit/cosign.key"
    assert cfg.require_signature is True and cfg.required_attestations == ["provenance"]
    assert cfg.scan_fail_on == "critical" and cfg.source("scan_fail_on") == "env MLFLOW_MODELKIT_SCAN_FAIL_ON"
    assert cfg.trusted_keys == ["/k1.pub", "/k2.pub"]
    assert cfg.max_severity == "low" and cfg.source("max_severity") == f"file {f}"
    assert cfg.source("ca_bundle") == "default"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scan]\nfail_on = 'severe'\n", "scan_fail_on"),
        ("[scan]\nfailon = 'high'\n", "unknown setting scan.failon"),
        ("[policy]\nrequire_signature = 'maybe'\n", "expected true or false"),
        ("[policy]\nrequired_attestations = ['vibes']\n", "unknown 'vibes'"),
        ("[scan\n", "invalid TOML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ModelKitError, match=message) as e:
        load_config({"MLFLOW_MODELKIT_CONFIG": str(f)})
    assert "\n" not in str(e.value)


def test_missing_config_file() -> None:
    with pytest.raises(ModelKitError, match="file not found"):
        load_config({"MLFLOW_MODELKIT_CONFIG": "/nonexistent/modelkit.toml"})


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "modelkit.toml"
    f.write_text(TOML)
    monkeypatch.setenv("MLFLOW_MODELKIT_CONFIG", str(f))
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", "ci-bot")
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", "hunter2-registry-secret")
    monkeypatch.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", "key-passphrase-secret")
    r = CliRunner().invoke(main, ["config", "show"])
    assert r.exit_code == 0, r.output
    assert "hunter2-registry-secret" not in r.output and "key-passphrase-secret" not in r.output
    assert "registry_password" in r.output and "********" in r.output
    assert "ci-bot" in r.output
    assert "scan_fail_on" in r.output and f"file {f}" in r.output
