"""Accepted risks and continuous scanning (issue 10, requirements 5 and 6), end to end.

* ``publish --accept RULE[:PATH] --reason`` publishes a kit whose finding would block, records who,
  when and why in the signed scan attestation, and ``verify`` shows it; the admin's ceiling
  (``[accept] max_severity``) refuses acceptances above it — at publish *and* at verify; an
  acceptance that matches nothing is an error (a typo never passes as an acceptance);
* ``rescan REPOSITORY`` re-scans published kits with today's policy, attaches a new signed scan
  attestation only where the findings changed (the old one stays), ``verify`` judges by the newest
  and says when it was made; unsigned kits are skipped; ``--dry-run`` attaches nothing;
* hostile scan attestations: a newer scan signed by an untrusted key is ignored, malformed
  acceptances signed by a trusted key fail the verdict in one line.

The runs are logged to a real registry (the session's ``docker-registry``) and a SQLite tracking store.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from _envhelpers import clean_env, end_runs, use_tracking
from _registries import RegistryServer
from click.testing import CliRunner, Result

from mlflow_plugin import rescan
from mlflow_plugin.cli import main
from mlflow_plugin.config import Config
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.publish import PublishBlocked, publish_run
from mlflow_plugin.harden.verify import TrustPolicy, verify_kit
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST
from mlflow_plugin.trust.attach import list_attachments
from mlflow_plugin.trust.signer import Signer

pytestmark = pytest.mark.registry

PASSPHRASE = "accept-rescan passphrase 51c9"
# an index override in the model's requirements: a HIGH env.index-override finding
REQS = b"--extra-index-url https://mirror.internal/simple\nscikit-learn==1.5.0\n"
# GLOBAL mypkg.models Model, EMPTY_TUPLE, REDUCE, STOP: a class from a module the kit does not ship
# (HIGH pickle.unknown-global unless the admin allows it). Never unpickled.
USER_PICKLE = b"cmypkg.models\nModel\n)R."
EVIL_PICKLE = b"cos\nsystem\n(S'true'\ntR."  # critical; never unpickled


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("accept")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        for name in ("keys", "attacker"):
            r = cli("keygen", "-o", str(root / name))
            assert r.exit_code == 0, r.output
        yield root


@pytest.fixture(autouse=True)
def _env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch, PASSPHRASE)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    use_tracking(f"sqlite:///{home}/mlflow.db")
    yield
    end_runs()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def log_run(host: str, files: dict[str, bytes]) -> tuple[str, str]:
    """A run whose artifacts are ``files``; returns (run id, HOST/REPO)."""
    repo = f"accept/r-{uuid.uuid4().hex[:8]}"
    exp = mlflow.create_experiment(
        f"acc-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{host}/{repo}"
    )
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("C", "1.0")
        for rel, data in files.items():
            mlflow.log_text(data.decode("latin-1"), rel) if rel.endswith(".txt") else _log_bytes(rel, data)
    return run.info.run_id, f"{host}/{repo}"


def _log_bytes(rel: str, data: bytes) -> None:
    import tempfile

    d = Path(tempfile.mkdtemp())
    p = d / os.path.basename(rel)
    p.write_bytes(data)
    mlflow.log_artifact(str(p), os.path.dirname(rel) or None)


def keyfiles(home: Path, who: str = "keys") -> tuple[str, str]:
    return str(home / who / "cosign.key"), str(home / who / "cosign.pub")


def scan_check(result: object) -> str:
    return next(c.detail for c in result.checks if c.name == "scan verdict")  # type: ignore[attr-defined]


# ---- accept ---------------------------------------------------------------------------------------
def test_accept_publishes_and_verify_shows_who_when_why(home: Path, registry: RegistryServer) -> None:
    key, pub = keyfiles(home)
    run_id, store = log_run(registry.host, {"model/requirements.txt": REQS})
    with pytest.raises(PublishBlocked) as ei:
        publish_run(run_id, "v1", key=key)
    # the block names the finding and how to accept it
    assert "env.index-override" in str(ei.value) and "--accept env.index-override:" in str(ei.value)

    out = cli(
        "publish", run_id, "--tag", "v1", "--key", key,
        "--accept", "env.index-override:*/requirements.txt", "--reason", "our internal mirror",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "clean (1 accepted)" in out.stdout
    assert "accepted:     high env.index-override" in out.stdout and "our internal mirror" in out.stdout
    assert mlflow.MlflowClient().get_run(run_id).data.tags["modelkit.scan"] == "clean (1 accepted)"

    result = verify_kit(f"{store}:v1", TrustPolicy(trusted_keys=[pub]))
    assert result.ok, result.to_json()
    assert "1 accepted by the publisher" in scan_check(result)
    (acc,) = result.acceptances
    assert (acc.rule, acc.path, acc.reason, acc.by) == (
        "env.index-override",
        "*/requirements.txt",
        "our internal mirror",
        "alice",
    )
    assert acc.at.startswith("20") and acc.at.endswith("Z")
    # the signed predicate marks the finding and keeps the original severity
    (finding,) = [f for f in result.scan["findings"] if f["rule"] == "env.index-override"]  # type: ignore[index]
    assert finding["severity"] == "high" and finding["accepted"] == 0
    assert result.scan["summary"]["max_severity"] == "high"  # type: ignore[index]
    assert result.scan["summary"]["max_open_severity"] in (None, "info")  # type: ignore[index]

    v = cli("verify", f"{store}:v1", "--key", pub)
    assert v.exit_code == 0, v.output
    assert "ACCEPTED env.index-override:*/requirements.txt by alice at " in v.stdout
    assert "'our internal mirror'" in v.stdout

    # an admin whose ceiling is lower than what was accepted does not trust the kit
    strict = TrustPolicy(trusted_keys=[pub], accept_max_severity="medium")
    result = verify_kit(f"{store}:v1", strict, deep=False)
    assert not result.ok
    assert "an accepted high finding is above what may be accepted (medium)" in scan_check(result)


def test_accept_ceiling_and_typos_are_refused_in_one_line(home: Path, registry: RegistryServer) -> None:
    key, _pub = keyfiles(home)
    run_id, store = log_run(registry.host, {"model/requirements.txt": REQS, "model/model.pkl": EVIL_PICKLE})
    cases = [
        (["pickle.*"], "reviewed", "above the highest severity the admin lets publishers accept (high"),
        (["env.index-overide"], "typo", "matches no finding of this scan"),
        (["Bad Rule!"], "x", "RULE must be a rule id or glob"),
        (["env.index-override"], "", "--accept needs a reason"),
    ]
    for accept, reason, expected in cases:
        args = ["publish", run_id, "--tag", "v1", "--key", key]
        for a in accept:
            args += ["--accept", a]
        if reason:
            args += ["--reason", reason]
        out = cli(*args)
        assert out.exit_code in (1, 2), out.output
        err = out.stderr.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (accept, out.stderr)
        assert "Traceback" not in out.output
    repo, _ = open_location(store)
    assert "v1" not in repo.list_tags()


def test_admin_may_allow_accepting_critical(home: Path, registry: RegistryServer) -> None:
    key, pub = keyfiles(home)
    run_id, store = log_run(registry.host, {"model/model.pkl": EVIL_PICKLE})
    cfg = Config(accept_max_severity="critical", max_severity="medium")
    r = publish_run(
        run_id, "v1", key=key, config=cfg, accept=["pickle.*:*model.pkl"], reason="red-team sample"
    )
    assert r.verdict.endswith("accepted)") and r.accepted
    assert all(f.path.endswith("model.pkl") for f, _a in r.accepted)
    # the default verifier's ceiling is high: a critical acceptance does not verify there
    assert not verify_kit(f"{store}:v1", TrustPolicy(trusted_keys=[pub]), deep=False).ok
    ok = verify_kit(
        f"{store}:v1", TrustPolicy(trusted_keys=[pub], accept_max_severity="critical"), deep=False
    )
    assert ok.ok, ok.to_json()


# ---- rescan ---------------------------------------------------------------------------------------
def test_rescan_attests_only_changes_and_verify_uses_the_newest(home: Path, registry: RegistryServer) -> None:
    key, pub = keyfiles(home)
    run_id, store = log_run(registry.host, {"model/model.pkl": USER_PICKLE})
    lenient = Config(allow_globals=["mypkg.models.Model"], trusted_keys=[pub])
    published = publish_run(run_id, "v1", key=key, config=lenient)
    assert published.verdict == "clean"
    repo, _ = open_location(store)
    try:
        scans_before = [a for a in list_attachments(repo, published.digest) if a.kind == "scan"]
    finally:
        repo.close()
    assert len(scans_before) == 1
    policy = TrustPolicy(trusted_keys=[pub])
    assert verify_kit(f"{store}:v1", policy, deep=False).ok

    # same scanner and policy: nothing changes, nothing is attached
    (same,) = rescan(store, key=key, config=lenient)
    assert (same.action, same.previous, same.current, same.added) == ("unchanged", "clean", "clean", [])

    # the admin withdraws the allowance: the class is unknown again
    strict = Config(trusted_keys=[pub])
    (dry,) = rescan(store, config=strict, dry_run=True)
    assert dry.action == "would attest" and dry.fails_policy
    out = cli("rescan", store, "--key", key, "--json")
    assert out.exit_code == 1, out.output  # a kit no longer passes the policy
    (doc,) = json.loads(out.stdout)
    assert doc["action"] == "attested" and doc["previous"] == "clean"
    assert doc["current"].startswith("high") and doc["fails_policy"]
    assert any("pickle.unknown-global" in a for a in doc["added"]), doc
    assert "no longer pass the trust policy" in out.stderr

    repo, _ = open_location(store)
    try:
        scans_after = [a for a in list_attachments(repo, published.digest) if a.kind == "scan"]
    finally:
        repo.close()
    assert len(scans_after) == 2  # the old attestation stays
    result = verify_kit(f"{store}:v1", policy, deep=False)
    assert not result.ok
    detail = scan_check(result)
    assert "highest open finding: high" in detail and "newest of 2" in detail and "scan of 20" in detail
    assert result.scan["rescan_of"]  # type: ignore[index]

    # a second rescan with the same policy: unchanged, no third attestation
    (again,) = rescan(store, key=key, config=strict)
    assert again.action == "unchanged", again
    # the admin allows it again: a new, clean attestation wins
    (back,) = rescan(store, key=key, config=lenient)
    assert back.action == "attested" and back.current == "clean" and back.resolved
    assert verify_kit(f"{store}:v1", policy, deep=False).ok


def test_rescan_skips_unsigned_kits_and_keeps_acceptances(home: Path, registry: RegistryServer) -> None:
    key, pub = keyfiles(home)
    run_id, store = log_run(registry.host, {"model/requirements.txt": REQS})
    publish_run(run_id, "v1", key=key, accept=["env.index-override"], reason="internal mirror")
    # a draft and an unsigned copy under another tag of the same repository
    repo, _ = open_location(store)
    try:
        draft = next(t for t in repo.list_tags() if t.startswith("run-"))
        data, mt, _d = repo.get_manifest(draft)
        repo.put_manifest(data, mt, tag="unsigned")
    finally:
        repo.close()
    results = {",".join(r.tags): r for r in rescan(store, key=key, config=Config(trusted_keys=[pub]))}
    assert results["unsigned"].action == "skipped" and "not published" in results["unsigned"].reason
    assert not any(t.startswith("run-") for t in results)
    assert results["v1"].action == "unchanged" and results["v1"].current == "clean (1 accepted)"


def test_rescan_refuses_a_tag_or_missing_key_in_one_line(home: Path, registry: RegistryServer) -> None:
    out = cli("rescan", f"{registry.host}/accept/x:v1", "--dry-run")
    assert out.exit_code == 2 and "takes a repository, not a tag" in out.stderr
    out = cli("rescan", f"{registry.host}/accept/x")
    assert out.exit_code == 2 and "no signing key for new scan attestations" in out.stderr
    assert "Traceback" not in out.output


# ---- hostile attestations ---------------------------------------------------------------------------
def test_a_newer_scan_by_an_untrusted_key_is_ignored(home: Path, registry: RegistryServer) -> None:
    key, pub = keyfiles(home)
    bad_key, _ = keyfiles(home, "attacker")
    run_id, store = log_run(registry.host, {"model/model.pkl": EVIL_PICKLE})
    cfg = Config(accept_max_severity="critical")
    r = publish_run(run_id, "v1", key=key, config=cfg, accept=["pickle.*"], reason="sample")
    policy = TrustPolicy(trusted_keys=[pub])
    assert not verify_kit(f"{store}:v1", policy, deep=False).ok  # critical acceptance over ceiling
    # an attacker with registry write access attaches a newer, "clean" scan signed by their key
    repo, _ = open_location(store)
    try:
        data, _mt, digest = repo.get_manifest("v1")
        forged = {
            "findings": [],
            "summary": {"max_severity": None, "max_open_severity": None},
            "scanned_at": "2999-01-01T00:00:00Z",
        }
        Signer.from_key_file(bad_key, PASSPHRASE.encode()).attest(
            repo, Descriptor(OCI_MANIFEST, digest, len(data)), "scan", forged
        )
    finally:
        repo.close()
    result = verify_kit(f"{store}:v1", policy, deep=False)
    assert not result.ok and "2999" not in scan_check(result)
    assert r.digest == digest


def test_malformed_acceptances_signed_by_a_trusted_key_fail_in_one_line(
    home: Path, registry: RegistryServer
) -> None:
    key, pub = keyfiles(home)
    run_id, store = log_run(registry.host, {"notes/a.txt": b"hello"})
    publish_run(run_id, "v1", key=key)
    repo, _ = open_location(store)
    try:
        data, _mt, digest = repo.get_manifest("v1")
        bad = {
            "findings": [],
            "summary": {"max_severity": None},
            "acceptances": [{"rule": 7}],
            "scanned_at": "2999-01-01T00:00:00Z",
        }
        Signer.from_key_file(key, PASSPHRASE.encode()).attest(
            repo, Descriptor(OCI_MANIFEST, digest, len(data)), "scan", bad
        )
    finally:
        repo.close()
    result = verify_kit(f"{store}:v1", TrustPolicy(trusted_keys=[pub]), deep=False)
    assert not result.ok
    assert scan_check(result) == "an acceptance in the scan attestation is malformed"


def test_acceptance_parsing_is_strict() -> None:
    from mlflow_plugin.scanner.accept import Acceptance, parse_all

    with pytest.raises(ModelKitError, match="--reason without --accept"):
        parse_all([], "why", "bob", "")
    with pytest.raises(ModelKitError, match="PATH after ':'"):
        Acceptance.parse("secret.*:notes/\x1b[31mx", "ok", "bob", "")  # terminal escapes in a path
    with pytest.raises(ModelKitError, match="PATH after ':'"):
        Acceptance.parse("secret.*:", "ok", "bob", "")
    with pytest.raises(ModelKitError, match="longer than 500"):
        Acceptance.parse("secret.*", "x" * 501, "bob", "")
    assert Acceptance.parse("env.*", "  one\nline  ", "bob\x07", "").reason == "one line"
