"""Secrets in a run's metadata never reach the registry (publish, end to end against a real registry).

* params named like secrets (``[publish] redact_params``, defaults included) keep their name and are
  ``[redacted]`` in the Kitfile config, the provenance and the ML-BOM; the value is in no stored
  byte of the registry (blobs grepped, base64 payloads of the signed bundles decoded);
* a recognisable secret under an innocent name (a param, a tag, the run description) blocks
  publishing before anything is stored: ``PublishBlocked`` / CLI exit 1 with one line naming the
  param or tag and ``redact_params``, the value in no output, no report and no stored byte, no tag;
* naming it in ``redact_params`` (TOML file or environment) lets the same run publish, redacted.

Fixtures and helpers (the module's registry, keys, a SQLite tracking store, ``log_run``) come from
``test_publish``.
"""

from __future__ import annotations

import base64
import binascii
import doctest
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import test_publish
from _registries import RegistryServer
from mlflow import MlflowClient
from test_publish import Keys, cli, log_run, tag_exists

from mlflow_plugin.config import DEFAULT_REDACT_PARAMS, load_config
from mlflow_plugin.harden import publish as publish_module
from mlflow_plugin.harden.publish import PublishBlocked, PublishResult, publish_run
from mlflow_plugin.scanner.api import _new_context
from mlflow_plugin.scanner.secrets import scan_document
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.trust import attach, redact
from mlflow_plugin.trust.redact import REDACTED

# test_publish's fixtures, shared by name: this module gets its own registry, keys and tracking store
home = test_publish.home
reg = test_publish.reg
keys = test_publish.keys
_env = test_publish._env

_rng = random.SystemRandom()
_B64 = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def fake_aws_key_id() -> str:
    """A fresh, well-formed AWS access key id (not the documentation's ``…EXAMPLE``, which is allowed)."""
    while True:
        k = "AKIA" + "".join(_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        if "EXAMPLE" not in k and "XXXX" not in k:
            return k


def fake_aws_secret() -> str:
    """40 characters of AWS-secret-key alphabet, mixed case and digits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    while True:
        s = _rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + "".join(_rng.choice(alphabet) for _ in range(39))
        if re.search(r"[a-z]", s) and re.search(r"[0-9]", s):
            return s


# ---- where a value could hide ------------------------------------------------------------------------
def contains(data: bytes, needle: bytes, depth: int = 0) -> bool:
    """``needle`` in ``data``, or in any base64 (or base64url) run of it, two levels deep."""
    if needle in data:
        return True
    if depth >= 2:
        return False
    for m in _B64.finditer(data):
        chunk = m.group(0).rstrip(b"=")
        for alt in (None, b"-_"):
            try:
                decoded = base64.b64decode(chunk + b"=" * (-len(chunk) % 4), altchars=alt)
            except (binascii.Error, ValueError):
                continue
            if contains(decoded, needle, depth + 1):
                return True
    return False


def leaking_files(root: Path, value: str) -> list[str]:
    """Every file under ``root`` (a registry's whole storage) whose bytes hold ``value``."""
    needle = value.encode()
    return [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*"))
        if p.is_file() and contains(p.read_bytes(), needle)
    ]


def test_leak_detector_sees_base64() -> None:
    """Positive control for :func:`contains`: the signed bundles carry their statements in base64."""
    value = fake_aws_secret()
    for shift in ("", "a", "ab"):
        inner = json.dumps({"hyperparameters": {"k": shift + value}}).encode()
        bundle = json.dumps({"dsseEnvelope": {"payload": base64.b64encode(inner).decode()}}).encode()
        assert contains(bundle, value.encode())
    assert not contains(b'{"payload": "' + base64.b64encode(b"nothing here") + b'"}', value.encode())


# ---- what a published kit carries ---------------------------------------------------------------------
def kit_documents(r: PublishResult) -> dict[str, Any]:
    """The Kitfile config, the provenance statement and the ML-BOM, as stored in the registry."""
    repo, _ = open_location(r.store)
    manifest = json.loads(repo.get_manifest(r.digest)[0])
    out: dict[str, Any] = {"kitfile": json.loads(repo.read_blob(manifest["config"]["digest"]))}
    for a in attach.list_attachments(repo, r.digest):
        if a.kind in ("provenance", "sbom"):
            st = json.loads(base64.b64decode(json.loads(a.bundle)["dsseEnvelope"]["payload"]))
            out[a.kind] = st if a.kind == "provenance" else st["predicate"]
    return out


def published_params(docs: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The run's params as each document records them."""
    prefix = "mlflow-modelkit:hyperparameter:"
    return {
        "kitfile": docs["kitfile"]["model"]["parameters"]["mlflow"]["params"],
        "provenance": docs["provenance"]["predicate"]["buildDefinition"]["externalParameters"][
            "hyperparameters"
        ],
        "mlbom": {
            p["name"][len(prefix) :]: p["value"]
            for p in docs["sbom"]["metadata"]["component"]["modelCard"]["properties"]
            if p["name"].startswith(prefix)
        },
    }


def assert_blocked_cleanly(
    ei: pytest.ExceptionInfo[PublishBlocked], name: str, value: str, reg: RegistryServer, store: str, tag: str
) -> None:
    """One line naming ``name`` and ``redact_params``; the value nowhere; no tag; nothing stored."""
    msg = str(ei.value)
    assert "\n" not in msg, msg
    assert repr(name) in msg and "redact_params" in msg, msg
    assert value not in msg and value[4:] not in msg
    report = ei.value.report
    assert str(report.max_severity) in ("high", "critical"), report.to_json()
    assert value[4:12] not in json.dumps(report.to_json())
    assert not tag_exists(store, tag)
    assert leaking_files(reg.root, value) == []


# ---- (a) redacted by name, defaults ------------------------------------------------------------------
@pytest.mark.registry
def test_secret_params_redacted_by_default(home: Path, reg: RegistryServer, keys: Keys) -> None:
    key_id, secret = fake_aws_key_id(), fake_aws_secret()
    logged = log_run(reg.host, home, "leaky", params={"aws_access_key_id": key_id, "aws_secret": secret})
    r = publish_run(logged.run_id, "v1", key=keys.private)
    assert not r.scan.failed("high"), r.scan.to_json()
    docs = kit_documents(r)
    for where, params in published_params(docs).items():
        assert params["aws_secret"] == REDACTED, (where, params)
        assert params["aws_access_key_id"] == REDACTED, (where, params)
        assert params["C"] == "1.0", (where, params)  # innocent params are kept
    for v in (key_id, secret):
        assert v not in json.dumps(docs)
        assert v not in json.dumps(r.provenance) and v not in r.scan.dumps()
        assert leaking_files(reg.root, v) == [], v
    # the MLflow tracking store itself still has them (so the grep above can see what it looks for)
    assert contains((home / "mlflow.db").read_bytes(), secret.encode())
    assert MlflowClient().get_run(logged.run_id).data.tags["modelkit.signed"] == "true"


# ---- (b) an innocent name holding a key blocks ---------------------------------------------------------
@pytest.mark.registry
def test_secret_under_innocent_param_blocks(home: Path, reg: RegistryServer, keys: Keys) -> None:
    key_id = fake_aws_key_id()
    logged = log_run(reg.host, home, "note", params={"note": key_id})
    repo, _ = open_location(logged.store)
    before = sorted(p.relative_to(reg.root) for p in reg.root.rglob("*") if p.is_file())
    with pytest.raises(PublishBlocked) as ei:
        publish_run(logged.run_id, "v1", key=keys.private)
    assert_blocked_cleanly(ei, "note", key_id, reg, logged.store, "v1")
    top = ei.value.report.sorted_findings()[0]
    assert top.path == "kitfile:model.parameters.mlflow.params.note", top
    assert top.rule == "secret.aws-access-key-id" and top.evidence == key_id[:4] + "…(20 chars)", top
    # nothing was stored: no config, no manifest, no attestation
    after = sorted(p.relative_to(reg.root) for p in reg.root.rglob("*") if p.is_file())
    assert [p for p in after if p not in before and "_uploads" not in str(p)] == []
    assert MlflowClient().get_run(logged.run_id).data.tags["modelkit.scan"].startswith("blocked: high")
    # the CLI: exit 1, one line on stderr, the value in no output
    out = cli("publish", f"runs:/{logged.run_id}", "--tag", "v2", "--key", keys.private)
    assert out.exit_code == 1, out.output
    assert out.stderr.startswith("error: publishing blocked") and out.stderr.count("\n") == 1, out.stderr
    assert "'note'" in out.stderr and "redact_params" in out.stderr
    assert key_id not in out.output and key_id[4:] not in out.output
    out = cli("publish", f"runs:/{logged.run_id}", "--tag", "v2", "--key", keys.private, "--json")
    assert out.exit_code == 1 and json.loads(out.stdout)["published"] is False
    assert key_id[4:] not in out.output
    assert not {"v1", "v2"} & set(repo.list_tags())
    assert leaking_files(reg.root, key_id) == []


@pytest.mark.registry
def test_secret_param_blocks_without_a_model(home: Path, reg: RegistryServer, keys: Keys) -> None:
    """No model layer, so no ``model.parameters``: the params still reach provenance and the ML-BOM."""
    token = "ghp_" + "".join(_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456789") for _ in range(36))
    logged = log_run(reg.host, home, "nomodel", params={"comment": token}, with_model=False)
    with pytest.raises(PublishBlocked) as ei:
        publish_run(logged.run_id, "v1", key=keys.private)
    assert_blocked_cleanly(ei, "comment", token, reg, logged.store, "v1")
    assert ei.value.report.sorted_findings()[0].path == "run:params.comment"


# ---- (c) naming it in redact_params lets it publish, redacted -----------------------------------------
@pytest.mark.registry
def test_custom_redact_params_publishes_redacted(
    home: Path, reg: RegistryServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id = fake_aws_key_id()
    logged = log_run(reg.host, home, "note-ok", params={"note": key_id})
    with pytest.raises(PublishBlocked):
        publish_run(logged.run_id, "v1", key=keys.private)
    # the admin file, replacing the default list (keeping it)
    patterns = [*DEFAULT_REDACT_PARAMS, "NOTE"]
    (tmp_path / "modelkit.toml").write_text(f"[publish]\nredact_params = {json.dumps(patterns)}\n")
    monkeypatch.setenv("MLFLOW_MODELKIT_CONFIG", str(tmp_path / "modelkit.toml"))
    out = cli("publish", f"runs:/{logged.run_id}", "--tag", "v1", "--key", keys.private, "--json")
    assert out.exit_code == 0, out.output
    assert key_id not in out.output
    doc = json.loads(out.stdout)
    repo, _ = open_location(logged.store)
    r = PublishResult(doc["reference"], doc["digest"], "v1", logged.store, None)
    for where, params in published_params(kit_documents(r)).items():
        assert params["note"] == REDACTED, (where, params)
    assert repo.resolve("v1").digest == doc["digest"]
    assert leaking_files(reg.root, key_id) == []
    # the environment variable, through the API
    monkeypatch.delenv("MLFLOW_MODELKIT_CONFIG")
    cfg = load_config(environ={"MLFLOW_MODELKIT_REDACT_PARAMS": "note"})
    r2 = publish_run(logged.run_id, "v2", key=keys.private, config=cfg)
    assert published_params(kit_documents(r2))["kitfile"]["note"] == REDACTED
    assert leaking_files(reg.root, key_id) == []


# ---- (d) run tags and the description ----------------------------------------------------------------
@pytest.mark.registry
@pytest.mark.parametrize(
    ("tag_name", "template", "path"),
    [
        ("deploy_info", "deployed by ci with {}", "run:tags.deploy_info"),
        ("mlflow.note.content", "Fraud model. Data pulled with {} from s3.", "kitfile:package.description"),
        ("mlflow.runName", "run-{}", "provenance:predicate.buildDefinition.externalParameters.run.run_name"),
    ],
)
def test_secret_in_tag_or_description_blocks(
    home: Path, reg: RegistryServer, keys: Keys, tag_name: str, template: str, path: str
) -> None:
    key_id = fake_aws_key_id()
    logged = log_run(reg.host, home, "tagged")
    MlflowClient().set_tag(logged.run_id, tag_name, template.format(key_id))
    with pytest.raises(PublishBlocked) as ei:
        publish_run(logged.run_id, "v1", key=keys.private)
    assert_blocked_cleanly(ei, tag_name, key_id, reg, logged.store, "v1")
    top = ei.value.report.sorted_findings()[0]
    assert top.path == path and f"tag {tag_name!r}" in top.message, top
    out = cli("publish", f"runs:/{logged.run_id}", "--tag", "v2", "--key", keys.private)
    assert out.exit_code == 1 and out.stderr.count("\n") == 1, out.stderr
    assert repr(tag_name) in out.stderr and "redact_params" in out.stderr
    assert key_id[4:] not in out.output
    # redacting the tag by name lets it through, the value replaced everywhere
    cfg = load_config(environ={"MLFLOW_MODELKIT_REDACT_PARAMS": f"*secret*,{tag_name}"})
    r = publish_run(logged.run_id, "v1", key=keys.private, config=cfg)
    docs = kit_documents(r)
    tags = docs["provenance"]["predicate"]["buildDefinition"]["internalParameters"]["tags"]
    assert tags[tag_name] == REDACTED
    if tag_name == "mlflow.note.content":
        assert docs["kitfile"]["package"]["description"] == REDACTED
    if tag_name == "mlflow.runName":
        assert docs["provenance"]["predicate"]["buildDefinition"]["externalParameters"]["run"] == {
            "experiment": MlflowClient()
            .get_experiment(MlflowClient().get_run(logged.run_id).info.experiment_id)
            .name,
            "run_name": REDACTED,
        }
    assert leaking_files(reg.root, key_id) == []


# ---- the parts, without a registry ---------------------------------------------------------------------
def test_scan_document_masks_and_raises_severity() -> None:
    ctx = _new_context("metadata", None, None)
    secret = fake_aws_secret()
    doc = {
        "params": {"my_pwd": secret, "lr": "0.01", "run": "d41d8cd98f00b204e9800998ecf8427e"},
        "properties": [{"name": "x:hyperparameter:api_token", "value": secret}],
        "digest": {"sha256": "AKIA" + "Q" * 16},  # digests are opaque
    }
    seen: set[tuple[str, str]] = set()
    scan_document(ctx, "doc", doc, seen=seen)
    scan_document(ctx, "doc", doc, seen=seen)  # shared dedup: reported once
    got = [(f.path, str(f.severity), f.rule) for f in ctx.report_obj.findings]
    assert got == [
        ("doc:params.my_pwd", "high", "secret.assignment"),
        ("doc:properties[x:hyperparameter:api_token]", "high", "secret.assignment"),
    ], got
    text = json.dumps(ctx.report_obj.to_json())
    assert secret not in text and secret[4:] not in text


def test_scan_document_leaves_documented_examples_low() -> None:
    ctx = _new_context("metadata", None, None)
    scan_document(ctx, "doc", {"note": "AKIAIOSFODNN7EXAMPLE"})
    assert [str(f.severity) for f in ctx.report_obj.findings] == ["low"]


def test_redact_module_doctests() -> None:
    result = doctest.testmod(redact, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.attempted > 0 and result.failed == 0
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(publish_module._label, "_label", globs=vars(publish_module)):
        runner.run(test)
    assert runner.summarize(verbose=False) == (0, 2)
