"""Publishing hardened kits, end to end against a real registry (issue 5, requirement 5).

* publish a logged MLflow run (params, metrics, a dataset, text, a 5 MB artifact, an sklearn model):
  result fields, run tags, the tag appears only once everything is signed, nothing big is re-uploaded,
  a second publish is idempotent; ``--register`` and ``models:/NAME/1`` with verify-on-load;
* independent verification of the unpacked tree with the real OpenSSF ``model_signing`` CLI;
* tampering of each kind -- layer blob, config blob, manifest, tag, signature, attestation, ``model.sig``,
  one unpacked file -- makes ``verify`` fail (naming the check) and a verified load fail with nothing
  written;
* a malicious pickle logged in a run blocks publishing under the default policy;
* key passphrases and registry passwords never show up in output, errors, provenance or scan reports;
* the same flow through the session's real ``mlflow server``.

Storage tampering rewrites blob *content* in place (``RegistryServer.blob_path``), like an attacker
with access to the registry's disk; this module runs its own registry and restores every blob it
corrupts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from _envhelpers import clean_env, end_runs, use_tracking
from _mlflow_server import MlflowServer
from _registries import RegistryServer, registry_binary
from click.testing import CliRunner, Result
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.errors import ModelKitError, NotFoundError
from mlflow_plugin.harden.publish import PublishBlocked, PublishResult, publish_run
from mlflow_plugin.harden.verify import TrustPolicy, verify, verify_kit
from mlflow_plugin.storage.base import referrers_tag
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.storage.mediatypes import OCI_INDEX, OCI_MANIFEST
from mlflow_plugin.trust import attach, cosign, oms

pytestmark = pytest.mark.registry

PASSPHRASE = "correct horse battery staple 7f3a"
MODEL_SIGNING = Path(sys.executable).with_name("model_signing")
# GLOBAL os.system, MARK, STRING 'true', TUPLE, REDUCE, STOP: runs ``os.system('true')`` when unpickled.
# These bytes are only ever written to disk and scanned, never unpickled.
EVIL_PICKLE = b"cos\nsystem\n(S'true'\ntR."


# ---- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _start_server_early(request: pytest.FixtureRequest) -> None:
    """Launch the session's mlflow server now if a selected test needs it: it starts while we work."""
    if any("mlflow_server" in getattr(item, "fixturenames", ()) for item in request.session.items):
        with contextlib.suppress(pytest.skip.Exception):
            request.getfixturevalue("mlflow_server_started")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module state: environment without admin settings, a SQLite tracking store, keys."""
    root = tmp_path_factory.mktemp("publish")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))
        for name in ("keys", "attacker"):
            r = cli("keygen", "-o", str(root / name))
            assert r.exit_code == 0, r.output
        yield root


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """This module's own registry: tests rewrite its storage (and restore it)."""
    server = RegistryServer(
        registry_binary(), tmp_path_factory.mktemp("registry-publish"), "registry-publish"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch, PASSPHRASE)
    use_tracking(f"sqlite:///{home}/mlflow.db")
    yield
    end_runs()


@dataclass
class Keys:
    private: str
    public: str
    other_private: str
    other_public: str


@pytest.fixture
def keys(home: Path) -> Keys:
    return Keys(
        str(home / "keys" / "cosign.key"),
        str(home / "keys" / "cosign.pub"),
        str(home / "attacker" / "cosign.key"),
        str(home / "attacker" / "cosign.pub"),
    )


# ---- helpers ------------------------------------------------------------------------------------------
def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@dataclass
class Logged:
    """A run logged into ``modelkit://<store>``."""

    run_id: str
    store: str  # HOST/REPO
    model_id: str
    model: Any
    X: pd.DataFrame
    dataset_sha256: str


def log_run(
    host: str,
    tmp: Path,
    name: str,
    *,
    big: int = 0,
    files: dict[str, bytes] | None = None,
    params: dict[str, str] | None = None,
    with_model: bool = True,
) -> Logged:
    """Params, metrics, a dataset from a CSV file, a text, optional big/extra files, an sklearn model."""
    from sklearn.linear_model import LogisticRegression

    repo = f"pub/{name}-{uuid.uuid4().hex[:8]}"
    exp = mlflow.create_experiment(
        f"{name}-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{host}/{repo}"
    )
    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["amount", "age", "score"])
    y = (X["amount"] + X["score"] > 0).astype(int)
    work = tmp / f"src-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    csv = work / "train.csv"
    X.assign(label=y).to_csv(csv, index=False)
    model = LogisticRegression(max_iter=200).fit(X, y)
    model_id = ""
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_params({"C": "1.0", "max_iter": "200", **(params or {})})
        mlflow.log_metric("accuracy", 0.91)
        mlflow.log_input(
            mlflow.data.from_pandas(X.assign(label=y), source=str(csv), name="train"), context="training"
        )
        mlflow.log_text("# fraud model\n", "notes/README.md")
        if big:
            blob = work / "embeddings.bin"
            blob.write_bytes(os.urandom(big))
            mlflow.log_artifact(str(blob), "extra")
        for rel, data in (files or {}).items():
            p = work / "files" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            mlflow.log_artifact(str(p), os.path.dirname(rel) or None)
        if with_model:
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
            model_id = info.model_id
    return Logged(
        run.info.run_id, f"{host}/{repo}", model_id, model, X, hashlib.sha256(csv.read_bytes()).hexdigest()
    )


class UploadLog:
    """Every request our registry client sends, with the bytes of its body."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str, int]] = []
        orig = requests.Session.send

        def send(session: requests.Session, req: requests.PreparedRequest, **kw: Any) -> requests.Response:
            body = req.body  # bytes, or a stream whose length the client always sends
            n = len(body) if isinstance(body, bytes | str) else int(req.headers.get("Content-Length") or 0)
            self.calls.append((req.method or "", req.path_url, n))
            return orig(session, req, **kw)

        mp.setattr(requests.Session, "send", send)

    def blob_uploads(self) -> list[tuple[str, str, int]]:
        return [c for c in self.calls if "/blobs/uploads" in c[1] and c[0] in ("PUT", "PATCH", "POST")]

    def uploaded_digests(self) -> set[str]:
        """Digests of the blobs whose upload was completed (``PUT …?digest=``)."""
        out = set()
        for m, p, _n in self.blob_uploads():
            q = parse_qs(urlsplit(p).query)
            if m in ("PUT", "POST") and q.get("digest"):
                out.add(q["digest"][0])
        return out

    def uploaded_bytes(self) -> int:
        return sum(n for m, _p, n in self.calls if m in ("PUT", "PATCH", "POST"))


def tag_exists(store: str, tag: str) -> bool:
    repo, _ = open_location(store)
    try:
        repo.resolve(tag)
        return True
    except NotFoundError:
        return False


def failed_checks(result: Any) -> dict[str, str]:
    return {c.name: c.detail for c in result.failures()}


def layer_file(store: str, digest: str, path: str) -> tuple[str, int, int]:
    """``(layer digest, offset, size)`` of ``path`` in the kit ``store@digest``."""
    from mlflow_plugin.drafts.draft import DraftKit

    repo, _ = open_location(store)
    f = DraftKit(repo, digest, read_only=True).files()[path]
    return f.layer.digest, f.offset, f.size


@contextlib.contextmanager
def rewritten(reg: RegistryServer, digest: str, offset: int | None = None) -> Iterator[Path]:
    """Flip one byte of blob ``digest`` in the registry's storage (same size), restore it afterwards."""
    path = reg.blob_path(digest)
    original = path.read_bytes()
    data = bytearray(original)
    i = len(data) // 2 if offset is None else offset
    data[i] = (
        ord("1") if data[i] == ord("0") else ord("0") if chr(data[i]) in "123456789abcdef" else data[i] ^ 1
    )
    path.write_bytes(bytes(data))
    try:
        yield path
    finally:
        path.write_bytes(original)


def refused_load(uri: str, dst: Path, keys: Keys, mp: pytest.MonkeyPatch, trusted: str | None = None) -> str:
    """Load ``uri`` with verify-on-load on: must fail and write nothing; returns the error."""
    mp.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    mp.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", trusted or keys.public)
    dst.mkdir(parents=True, exist_ok=True)
    with pytest.raises(MlflowException) as ei:
        mlflow.pyfunc.load_model(uri, dst_path=str(dst))
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == []
    return str(ei.value)


def unpacked_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def model_signing_verify(directory: Path, keys: Keys) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(MODEL_SIGNING),
            "verify",
            "key",
            str(directory),
            "--signature",
            str(directory / "model.sig"),
            "--public_key",
            keys.public,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---- the published kit the read-only tests share -----------------------------------------------------
@dataclass
class Published:
    logged: Logged
    result: PublishResult
    log: UploadLog
    tag_before: bool
    tag_when_signed: bool | None
    stages: list[tuple[str, int, int]] = field(default_factory=list)


@pytest.fixture(scope="module")
def kit(home: Path, reg: RegistryServer) -> Iterator[Published]:
    """A run with a 5 MB artifact, published as ``v1`` (uploads recorded)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)
        uri = f"sqlite:///{home}/mlflow.db"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        logged = log_run(reg.host, home, "fraud", big=5 << 20)
        before = tag_exists(logged.store, "v1")
        stages: list[tuple[str, int, int]] = []
        when_signed: list[bool] = []

        def progress(stage: str, done: int, total: int) -> None:
            stages.append((stage, done, total))
            if stage == "sign" and done == total:
                when_signed.append(tag_exists(logged.store, "v1"))

        log = UploadLog(mp)
        result = publish_run(logged.run_id, "v1", key=str(home / "keys" / "cosign.key"), progress=progress)
        mp.undo()
        yield Published(logged, result, log, before, when_signed[0] if when_signed else None, stages)


@pytest.fixture(scope="module")
def small(home: Path, reg: RegistryServer) -> Logged:
    """A small run (no big artifact), published into a fresh repository by each tamper test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)
        uri = f"sqlite:///{home}/mlflow.db"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return log_run(reg.host, home, "small")


@pytest.fixture
def fresh(small: Logged, reg: RegistryServer, keys: Keys) -> PublishResult:
    """``small`` published as ``v1`` into a repository of its own (blobs mounted, not re-uploaded)."""
    return publish_run(
        small.run_id, "v1", key=keys.private, repository=f"{reg.host}/tamper/{uuid.uuid4().hex[:10]}"
    )


# ---- publish end to end -------------------------------------------------------------------------------
def test_publish_end_to_end(kit: Published, keys: Keys) -> None:
    r, logged = kit.result, kit.logged
    assert r.store == logged.store
    assert r.tag == "v1"
    assert r.reference == f"{logged.store}:v1"
    assert r.digest.startswith("sha256:") and len(r.digest) == 71
    assert r.pinned == f"{logged.store}@{r.digest}"
    assert r.model_uri == f"modelkit://{logged.store}@{r.digest}"
    # clean: nothing at low or above; MLflow writes `scikit-learn` unpinned, an informational note
    assert not r.scan.failed("low") and {f.rule for f in r.scan.findings} <= {"env.unpinned"}
    assert {"extra/embeddings.bin", "MLmodel", "notes/README.md"} <= {f.path for f in r.scan.files}
    assert set(r.attachments) == {"provenance", "scan", "sbom", "model_signing", "signature"}
    assert r.reused_signatures is False and r.model_version is None
    assert r.provenance is not None
    assert r.provenance["subject"][0]["digest"]["sha256"] == r.digest.split(":", 1)[1]
    # the stages in order; the tag appeared only after everything was signed
    assert [s for s, d, t in kit.stages if d == t] == ["compose", "scan", "attest", "sign", "tag", "record"]
    assert kit.tag_before is False and kit.tag_when_signed is False
    assert tag_exists(logged.store, "v1")
    repo, _ = open_location(logged.store)
    assert repo.resolve("v1").digest == r.digest
    # run tags
    tags = MlflowClient().get_run(logged.run_id).data.tags
    assert tags["modelkit.ref"] == r.reference
    assert tags["modelkit.digest"] == r.digest
    assert tags["modelkit.signed"] == "true"
    assert tags["modelkit.scan"] == "clean"
    # the kit holds the run's files (the 5 MB one too) and the logged model's
    manifest = json.loads(repo.get_manifest(r.digest)[0])
    layer_digests = {d["digest"] for d in manifest["layers"]}
    assert sum(d["size"] for d in manifest["layers"]) > 5 << 20
    # nothing big was uploaded: no layer, only the config, the bundles and the .sig image's blobs
    small_blobs = {manifest["config"]["digest"]}
    sig_manifests = [*r.attachments.values(), repo.resolve(cosign.sig_tag(r.digest)).digest]
    for d in sig_manifests:
        m = json.loads(repo.get_manifest(d)[0])
        small_blobs |= {m["config"]["digest"], *(x["digest"] for x in m["layers"])}
    uploaded = kit.log.uploaded_digests()
    assert uploaded and uploaded <= small_blobs, uploaded - small_blobs
    assert not uploaded & layer_digests
    assert 0 < kit.log.uploaded_bytes() < 1 << 20, kit.log.uploaded_bytes()
    # it verifies, deeply, with the public key alone
    result = verify(r.reference, keys=[keys.public])
    assert result.ok, failed_checks(result)
    assert [c.name for c in result.checks] == [
        "manifest",
        "signature",
        "legacy .sig",
        "attestation:provenance",
        "attestation:scan",
        "scan verdict",
        "model_signing bundle",
        "blob digests",
    ]
    out = cli("verify", r.reference, "--key", keys.public, "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["verified"] is True and doc["digest"] == r.digest
    # by digest too, and the attachments are listed as referrers of that digest
    assert verify(r.pinned, keys=[keys.public], deep=False).ok
    kinds = sorted(a.kind for a in attach.list_attachments(repo, r.digest))
    assert kinds == ["model_signing", "provenance", "sbom", "scan", "signature"]


def test_republish_is_idempotent(kit: Published, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    logged, first = kit.logged, kit.result
    repo, _ = open_location(logged.store)
    referrers_before = repo.resolve(referrers_tag(first.digest)).digest
    log = UploadLog(monkeypatch)
    again = publish_run(logged.run_id, "v1", key=keys.private)
    assert again.digest == first.digest and again.reference == first.reference
    assert again.reused_signatures is True
    assert again.attachments == {}
    assert log.blob_uploads() == [], log.blob_uploads()
    assert repo.resolve(referrers_tag(first.digest)).digest == referrers_before
    assert len(attach.list_attachments(repo, first.digest)) == 5
    assert repo.resolve("v1").digest == first.digest


def test_register_and_load_with_verify_on_load(
    kit: Published, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged, r = kit.logged, kit.result
    name = f"fraud-{uuid.uuid4().hex[:6]}"
    out = cli(
        "publish",
        f"runs:/{logged.run_id}",
        "--tag",
        "v1",
        "--key",
        keys.private,
        "--register",
        name,
        "--json",
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["published"] is True and doc["digest"] == r.digest and doc["model_version"] == "1"
    assert doc["reused_signatures"] is True
    mv = MlflowClient().get_model_version(name, "1")
    assert mv.source == r.model_uri  # pinned by digest, not the movable tag
    assert mv.run_id == logged.run_id
    monkeypatch.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    monkeypatch.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", keys.public)
    for uri in (f"models:/{name}/1", r.model_uri, f"modelkit://{r.reference}"):
        dst = tmp_path / uuid.uuid4().hex[:6]
        dst.mkdir()
        loaded = mlflow.pyfunc.load_model(uri, dst_path=str(dst))
        np.testing.assert_array_equal(np.asarray(loaded.predict(logged.X)), logged.model.predict(logged.X))
    # the run's unsigned draft (and the logged model's) are refused under the same policy
    for draft in (
        f"modelkit://{logged.store}:run-{logged.run_id}",
        f"modelkit://{logged.store}:{logged.model_id}",
    ):
        why = refused_load(draft, tmp_path / uuid.uuid4().hex[:6], keys, monkeypatch)
        assert "signature" in why, why
    # a key nobody trusts: refused too
    monkeypatch.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", keys.other_public)
    why = refused_load(r.model_uri, tmp_path / "untrusted", keys, monkeypatch, trusted=keys.other_public)
    assert "signature" in why, why


def test_model_signing_verifies_unpacked_tree(kit: Published, keys: Keys, tmp_path: Path) -> None:
    r = kit.result
    out_dir = tmp_path / "out"
    out = cli("unpack", r.reference, "-d", str(out_dir))
    assert out.exit_code == 0, out.output
    assert (out_dir / "model.sig").is_file() and (out_dir / "Kitfile").is_file()
    tree = unpacked_tree(out_dir)
    assert {"MLmodel", "extra/embeddings.bin", "notes/README.md", "requirements.txt"} <= set(tree)
    p = model_signing_verify(out_dir, keys)
    assert p.returncode == 0, p.stdout + p.stderr
    oms.verify_oms((out_dir / "model.sig").read_bytes(), str(out_dir), [keys.public])
    # the bundle model_signing checked is the one attached to the signed kit
    repo, _ = open_location(r.store)
    (att,) = [a for a in attach.list_attachments(repo, r.digest) if a.kind == "model_signing"]
    assert att.bundle == (out_dir / "model.sig").read_bytes()


@pytest.mark.parametrize("what", ["model.sig", "file"])
def test_tamper_unpacked_tree(kit: Published, keys: Keys, tmp_path: Path, what: str) -> None:
    """(7) ``model.sig`` altered after unpack, (8) one unpacked file modified: both verifiers refuse."""
    out_dir = tmp_path / "out"
    assert cli("unpack", kit.result.reference, "-d", str(out_dir)).exit_code == 0
    if what == "model.sig":
        sig = json.loads((out_dir / "model.sig").read_bytes())
        envelope = sig["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["resources"][0]["digest"] = "0" * 64  # claim another file content
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        (out_dir / "model.sig").write_text(json.dumps(sig))
    else:
        with open(out_dir / "requirements.txt", "a") as f:
            f.write("evil-package==6.6.6\n")
    p = model_signing_verify(out_dir, keys)
    assert p.returncode == 1, p.stdout + p.stderr
    with pytest.raises(ModelKitError) as ei:
        oms.verify_oms((out_dir / "model.sig").read_bytes(), str(out_dir), [keys.public])
    if what == "file":
        assert "requirements.txt" in str(ei.value)
    else:
        assert "signature" in str(ei.value).lower()


# ---- registry tampering -------------------------------------------------------------------------------
def _verify_fails(ref: str, keys: Keys, check: str) -> str:
    result = verify(ref, keys=[keys.public])
    failed = failed_checks(result)
    assert not result.ok and check in failed, failed
    out = cli("verify", ref, "--key", keys.public)
    assert out.exit_code == 1 and f"FAIL  {check}" in out.output, out.output
    return failed[check]


def test_tamper_layer_blob(
    fresh: PublishResult, reg: RegistryServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(1) A byte of the model file inside its layer, rewritten in registry storage."""
    layer, offset, size = layer_file(fresh.store, fresh.digest, "model.skops")
    with rewritten(reg, layer, offset + size // 2):
        detail = _verify_fails(fresh.reference, keys, "blob digests")
        assert layer in detail or "digest" in detail, detail
        # the signatures are intact; the download's per-file SHA-256 catches it
        assert verify(fresh.reference, keys=[keys.public], deep=False).ok
        why = refused_load(fresh.model_uri, tmp_path / "dst", keys, monkeypatch)
        assert "model.skops" in why and "sha256" in why, why
    assert verify(fresh.reference, keys=[keys.public]).ok  # restored


def test_tamper_config_blob(
    fresh: PublishResult, reg: RegistryServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(2) The Kitfile config blob rewritten in storage."""
    repo, _ = open_location(fresh.store)
    config = json.loads(repo.get_manifest(fresh.digest)[0])["config"]["digest"]
    with rewritten(reg, config, 2):
        _verify_fails(fresh.reference, keys, "blob digests")
        why = refused_load(fresh.model_uri, tmp_path / "dst", keys, monkeypatch)
        assert config[:19] in why or "config" in why, why
        with pytest.raises(ModelKitError):
            ops.unpack(fresh.reference, str(tmp_path / "unpacked"))


def test_tamper_manifest(
    fresh: PublishResult,
    small: Logged,
    reg: RegistryServer,
    keys: Keys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(3) A modified copy of the manifest pushed under the tag; and the stored manifest rewritten."""
    repo, _ = open_location(fresh.store)
    m = json.loads(repo.get_manifest(fresh.digest)[0])
    m["annotations"]["dev.mlflow-modelkit.run-id"] = "0" * 32
    forged = repo.put_manifest(json.dumps(m).encode(), OCI_MANIFEST, tag="v1")
    assert forged != fresh.digest
    detail = _verify_fails(fresh.reference, keys, "signature")
    assert "no signature" in detail, detail
    why = refused_load(f"modelkit://{fresh.reference}", tmp_path / "by-tag", keys, monkeypatch)
    assert "signature" in why and forged[:19] in why, why
    # the original, pinned by digest, is intact
    assert verify(fresh.pinned, keys=[keys.public]).ok
    # a storage-level rewrite of the signed manifest itself: its digest no longer matches
    stored = reg.blob_path(fresh.digest).read_bytes()
    with rewritten(reg, fresh.digest, stored.index(small.run_id.encode()) + 3):  # still valid JSON
        with pytest.raises(ModelKitError):
            verify(fresh.pinned, keys=[keys.public])
        why = refused_load(fresh.model_uri, tmp_path / "by-digest", keys, monkeypatch)
        assert "corrupt or tampered" in why, why


def test_tamper_tag_moved(
    fresh: PublishResult, small: Logged, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(4) The tag moved to another, unsigned manifest (the run's draft kit)."""
    draft = ops.copy(f"{small.store}:{small.model_id}", f"{fresh.store}:v1")
    assert draft != fresh.digest
    detail = _verify_fails(fresh.reference, keys, "signature")
    assert "no signature" in detail, detail
    assert "attestation:provenance" in failed_checks(verify(fresh.reference, keys=[keys.public]))
    why = refused_load(f"modelkit://{fresh.reference}", tmp_path / "dst", keys, monkeypatch)
    assert "signature" in why, why


def test_tamper_signature_bundle(
    fresh: PublishResult, reg: RegistryServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(5) The signature referrer's bundle rewritten in storage."""
    repo, _ = open_location(fresh.store)
    sig_manifest = json.loads(repo.get_manifest(fresh.attachments["signature"])[0])
    bundle = sig_manifest["layers"][0]["digest"]
    with rewritten(reg, bundle):
        _verify_fails(fresh.reference, keys, "signature")
        why = refused_load(fresh.model_uri, tmp_path / "dst", keys, monkeypatch)
        assert "signature" in why, why
    assert verify(fresh.reference, keys=[keys.public], deep=False).ok


def test_tamper_signed_by_another_key(
    small: Logged, reg: RegistryServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(5) A kit whose only signatures are by a key the policy does not trust."""
    monkeypatch.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)
    r = publish_run(
        small.run_id, "v1", key=keys.other_private, repository=f"{reg.host}/tamper/{uuid.uuid4().hex[:10]}"
    )
    assert verify(r.reference, keys=[keys.other_public]).ok
    failed = failed_checks(verify(r.reference, keys=[keys.public]))
    assert {"signature", "legacy .sig", "attestation:provenance", "attestation:scan"} <= set(failed), failed
    out = cli("verify", r.reference, "--key", keys.public)
    assert out.exit_code == 1 and "FAIL  signature" in out.output
    why = refused_load(r.model_uri, tmp_path / "dst", keys, monkeypatch)
    assert "signature" in why, why


def test_tamper_attestation(
    fresh: PublishResult, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(6) The provenance attestation replaced by a forged one (payload edited, signature kept)."""
    repo, _ = open_location(fresh.store)
    (prov,) = [a for a in attach.list_attachments(repo, fresh.digest) if a.kind == "provenance"]
    bundle = json.loads(prov.bundle)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["forged"] = "hidden training data"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    forged_bundle = json.dumps(bundle).encode()
    subject = repo.resolve(fresh.digest)
    forged = attach.attach_bundle(repo, subject, forged_bundle, attach.PRED_PROVENANCE)
    # drop the genuine provenance referrer from the tag-schema referrers index
    index_tag = referrers_tag(fresh.digest)
    index = json.loads(repo.get_manifest(index_tag)[0])
    index["manifests"] = [d for d in index["manifests"] if d["digest"] != prov.manifest_digest]
    assert forged in {d["digest"] for d in index["manifests"]}
    repo.put_manifest(json.dumps(index).encode(), OCI_INDEX, tag=index_tag)
    detail = _verify_fails(fresh.reference, keys, "attestation:provenance")
    assert "signature" in detail.lower(), detail
    why = refused_load(fresh.model_uri, tmp_path / "dst", keys, monkeypatch)
    assert "provenance" in why, why
    # the provenance command refuses it as well
    out = CliRunner().invoke(main, ["provenance", fresh.reference, "--key", keys.public])
    assert out.exit_code == 2 and "no verified provenance" in out.output, out.output


# ---- the scan blocks a malicious pickle ---------------------------------------------------------------
def test_malicious_pickle_blocks_publish(home: Path, reg: RegistryServer, keys: Keys) -> None:
    logged = log_run(reg.host, home, "evil", files={"model/model.pkl": EVIL_PICKLE}, with_model=False)
    with pytest.raises(PublishBlocked) as ei:
        publish_run(logged.run_id, "v1", key=keys.private)
    report = ei.value.report
    assert str(report.max_severity) in ("high", "critical")
    assert any(f.path.endswith("model/model.pkl") for f in report.findings), report.findings
    assert "os.system" in json.dumps(report.to_json())
    assert not tag_exists(logged.store, "v1")
    assert MlflowClient().get_run(logged.run_id).data.tags["modelkit.scan"].startswith("blocked:")
    # the CLI: exit 1, the report on stdout, still no tag
    out = cli("publish", f"runs:/{logged.run_id}", "--tag", "v2", "--key", keys.private, "--json")
    assert out.exit_code == 1, out.output
    doc = json.loads(out.stdout)
    assert doc["published"] is False and doc["scan"]["findings"], doc
    assert "blocked" in out.stderr
    repo, _ = open_location(logged.store)
    assert not {"v1", "v2"} & set(repo.list_tags())


# ---- secrets ------------------------------------------------------------------------------------------
def test_wrong_passphrase_is_one_line_without_it(
    kit: Published, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Tr0ub4dor&3-not-the-passphrase"
    monkeypatch.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", wrong)
    with pytest.raises(ModelKitError) as ei:
        publish_run(kit.logged.run_id, "v9", key=keys.private)
    assert wrong not in str(ei.value) and PASSPHRASE not in str(ei.value)
    out = CliRunner().invoke(
        main, ["publish", f"runs:/{kit.logged.run_id}", "--tag", "v9", "--key", keys.private]
    )
    assert out.exit_code == 2
    assert out.stdout == ""
    assert out.stderr.startswith("error: wrong passphrase") and out.stderr.count("\n") == 1, out.stderr
    assert wrong not in out.output and PASSPHRASE not in out.output
    assert not tag_exists(kit.logged.store, "v9")


def test_secrets_never_printed(
    home: Path, auth_registry: RegistryServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publish through a TLS + htpasswd registry: neither the password nor the passphrase leaks."""
    assert auth_registry.ca is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", auth_registry.ca)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", auth_registry.password)
    # a careless user even logs the password as a param: provenance must redact it
    logged = log_run(auth_registry.host, home, "secret", params={"registry_password": auth_registry.password})
    secrets = (auth_registry.password, PASSPHRASE)
    texts: list[str] = []
    out = cli("publish", f"runs:/{logged.run_id}", "--tag", "v1", "--key", keys.private, "--json")
    assert out.exit_code == 0, out.output
    texts.append(out.output)
    doc = json.loads(out.stdout)
    for args in (
        ("verify", f"{logged.store}:v1", "--key", keys.public),
        ("verify", f"{logged.store}:v1", "--key", keys.public, "--json"),
        ("provenance", f"{logged.store}:v1", "--key", keys.public),
        ("provenance", f"{logged.store}:v1", "--key", keys.public, "--json"),
        ("config", "show"),
        ("config", "show", "--json"),
    ):
        r = cli(*args)
        assert r.exit_code == 0, (args, r.output)
        texts.append(r.output)
    repo, _ = open_location(logged.store)
    for a in attach.list_attachments(repo, doc["digest"]):
        texts.append(a.bundle.decode())
        texts.append(base64.b64decode(json.loads(a.bundle)["dsseEnvelope"]["payload"]).decode())
    result = verify(f"{logged.store}:v1", keys=[keys.public])
    assert result.ok, failed_checks(result)
    texts += [json.dumps(result.provenance), json.dumps(result.scan)]
    texts.append(json.dumps(MlflowClient().get_run(logged.run_id).data.tags))
    # errors: a wrong registry password, a wrong passphrase
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", "wrong-" + auth_registry.password)
    from mlflow_plugin.storage.transport import reset_connections

    reset_connections()
    r = CliRunner().invoke(main, ["verify", f"{logged.store}:v1", "--key", keys.public])
    assert r.exit_code == 2 and "401" in r.output, r.output
    texts.append(r.output)
    with pytest.raises(ModelKitError) as ei:
        publish_run(logged.run_id, "v3", key=keys.private)
    texts.append(str(ei.value))
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", auth_registry.password)
    monkeypatch.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", "wrong-" + PASSPHRASE)
    r = CliRunner().invoke(main, ["publish", f"runs:/{logged.run_id}", "--tag", "v2", "--key", keys.private])
    assert r.exit_code == 2
    texts.append(r.output)
    blob = "\n".join(texts)
    for s in secrets:
        assert s not in blob
        assert base64.b64encode(s.encode()).decode() not in blob
    assert "********" in blob  # config show masks them


# ---- provenance ---------------------------------------------------------------------------------------
def test_provenance_cli(kit: Published, keys: Keys) -> None:
    r, logged = kit.result, kit.logged
    out = cli("provenance", r.reference, "--key", keys.public)
    assert out.exit_code == 0, out.output
    assert logged.run_id in out.stdout
    assert logged.dataset_sha256[:12] in out.stdout
    out = cli("provenance", r.reference, "--key", keys.public, "--json")
    assert out.exit_code == 0, out.output
    st = json.loads(out.stdout)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert [s["digest"]["sha256"] for s in st["subject"]] == [r.digest.split(":", 1)[1]]
    assert logged.run_id in out.stdout and logged.dataset_sha256 in out.stdout
    # without a trusted key there is nothing to show
    out = CliRunner().invoke(main, ["provenance", r.reference, "--key", keys.other_public])
    assert out.exit_code == 2 and "no verified provenance" in out.output


# ---- through the real mlflow server -------------------------------------------------------------------
def test_publish_through_mlflow_server(
    mlflow_server: MlflowServer,
    reg: RegistryServer,
    keys: Keys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tracking and model registry on ``mlflow server``; the client-side plugin writes the kits."""
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    logged = log_run(reg.host, tmp_path, "server")
    name = f"served-{uuid.uuid4().hex[:6]}"
    r = publish_run(logged.run_id, "v1", key=keys.private, register_as=name, tracking_uri=mlflow_server.url)
    assert r.model_version == "1"
    client = MlflowClient(mlflow_server.url)
    assert client.get_run(logged.run_id).data.tags["modelkit.digest"] == r.digest
    assert client.get_model_version(name, "1").source == r.model_uri
    monkeypatch.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    monkeypatch.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", keys.public)
    (tmp_path / "dst").mkdir()
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1", dst_path=str(tmp_path / "dst"))
    np.testing.assert_array_equal(np.asarray(loaded.predict(logged.X)), logged.model.predict(logged.X))
    assert verify_kit(r.reference, TrustPolicy(trusted_keys=[keys.public])).ok


def test_publish_a_proxied_run(
    mlflow_server: MlflowServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxy mode: only the server has the destination; the client publishes via the admin setting."""
    mlflow.set_tracking_uri(mlflow_server.url)
    exp = mlflow.create_experiment(f"proxied-{uuid.uuid4().hex[:6]}")  # mlflow-artifacts:/<id>
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_text("print('train')\n", "code/train.py")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    with pytest.raises(ModelKitError, match="artifacts_destination"):
        publish_run(run.info.run_id, "v1", key=keys.private, tracking_uri=mlflow_server.url)
    monkeypatch.setenv("MLFLOW_MODELKIT_ARTIFACTS_DESTINATION", mlflow_server.destination)
    r = publish_run(run.info.run_id, "v1", key=keys.private, tracking_uri=mlflow_server.url)
    assert r.store == f"{mlflow_server.registry.host}/{mlflow_server.destination_repository}/{exp}"
    assert verify_kit(r.reference, TrustPolicy(trusted_keys=[keys.public])).ok
