"""Hostile encrypted kits through every entry point: CLI, Python API, MLflow ``modelkit://``, Jupyter.

One kit is published with ``--encrypt-for`` (an EC and an RSA recipient) into its own real
``docker-registry``; every hostile variant is made from it by pushing new blobs and rewritten
manifests into that registry (by digest, no tag), or into a local ``oci:`` layout when the registry
itself would refuse it (a manifest over its 4 MiB limit), or by rewriting a blob in the registry's
storage. No mocks: the registry, MLflow (SQLite tracking) and jupyter_server are real.

Every refusal must be one line (no traceback), name the cause, and leave nothing behind: the
destination missing or empty, no ``.modelkit-*`` staging or decrypt directory next to it.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from _envhelpers import clean_env, end_runs, use_tracking
from _kithelpers import hostile_tar, listdir_all, log_files_run, tinfo
from _registries import RegistryServer, own_registry
from click.testing import CliRunner, Result
from mlflow.exceptions import MlflowException

import mlflow_plugin
from mlflow_plugin.cli import main
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST
from mlflow_plugin.trust import ocicrypt
from mlflow_plugin.trust.ocicrypt import ANN_JWE, ANN_PUBOPTS, ANN_SEALED_KITFILE

pytestmark = pytest.mark.registry

PASSPHRASE = "hostile-enc-signing-pass 4b2d"
MODEL_MT = "application/vnd.kitops.modelkit.model.v1.tar+encrypted"


@dataclass
class Kit:
    store: str  # HOST/REPO
    ref: str  # HOST/REPO:v1
    digest: str
    manifest: dict[str, Any]
    kitfile: dict[str, Any]  # the sealed (real) Kitfile, opened
    files: dict[str, bytes]
    target: RegistryServer
    signing_pub: str
    ec: tuple[str, str]
    rsa: tuple[str, str]
    stranger: str  # a recipient private key that is not one of the kit's
    home: Path

    def repo(self) -> Any:
        return open_location(self.store)[0]

    def recipients(self) -> list[Any]:
        return [ocicrypt.load_recipient(self.ec[0]), ocicrypt.load_recipient(self.rsa[0])]


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def target_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with own_registry(tmp_path_factory, "registry-hostile") as server:
        yield server


@pytest.fixture(scope="module")
def kit(
    registry: RegistryServer, target_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kit]:
    home = tmp_path_factory.mktemp("enc-hostile")
    ec = ocicrypt.generate_recipient_keypair(str(home / "ec"), "ec")
    rsa = ocicrypt.generate_recipient_keypair(str(home / "rsa"), "rsa")
    _pub, stranger = ocicrypt.generate_recipient_keypair(str(home / "stranger"), "ec")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
        use_tracking(f"sqlite:///{home}/mlflow.db")
        r = cli("keygen", "-o", str(home / "signing"))
        assert r.exit_code == 0, r.output
        files = {"weights/model.bin": os.urandom(50_000), "notes/README.md": b"confidential notes " * 30}
        run_id = log_files_run(registry.host, home, files, "hostile")
        end_runs()
        store = f"{target_registry.host}/enc/hostile"
        r = cli(
            "publish", f"runs:/{run_id}", "--tag", "v1",
            "--key", str(home / "signing" / "cosign.key"), "--repository", store,
            "--encrypt-for", ec[0], "--encrypt-for", rsa[0], "--json",
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        digest = json.loads(r.output)["digest"]
        repo, _ = open_location(store)
        manifest = json.loads(repo.get_manifest(digest)[0])
        sealed = manifest["annotations"][ANN_SEALED_KITFILE]
        kitfile = json.loads(ocicrypt.unseal(sealed, [ocicrypt.load_decryption_key(ec[1])], "kitfile"))
        yield Kit(
            store, f"{store}:v1", digest, manifest, kitfile, files, target_registry,
            str(home / "signing" / "cosign.pub"), ec, rsa, stranger, home,
        )  # fmt: skip
        end_runs()


@pytest.fixture(autouse=True)
def _env(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """No admin settings leak in; no decrypt keys unless a test sets them; drafts not involved."""
    clean_env(monkeypatch)
    monkeypatch.delenv("MLFLOW_MODELKIT_KEY_PASSWORD", raising=False)


# ---- building hostile variants --------------------------------------------------------------------
def put_variant(kit: Kit, m: dict[str, Any]) -> tuple[str, str]:
    """Store manifest ``m`` in the kit's repository by digest; returns ``(ref, digest)``."""
    repo = kit.repo()
    digest = repo.put_manifest(json.dumps(m).encode(), OCI_MANIFEST)
    return f"{kit.store}@{digest}", digest


def mutate(kit: Kit, fn: Callable[[dict[str, Any]], None]) -> tuple[str, str]:
    m = copy.deepcopy(kit.manifest)
    fn(m)
    return put_variant(kit, m)


def biggest_layer(m: dict[str, Any]) -> dict[str, Any]:
    return max(m["layers"], key=lambda d: d["size"])


def b64json(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def kit_with_layer(kit: Kit, plaintext: bytes, kitfile_path: str = "model") -> tuple[str, str]:
    """A new encrypted kit (for the same recipients) of one model layer whose plaintext tar is
    ``plaintext``, with a matching sealed Kitfile and redacted config."""
    repo = kit.repo()
    out = io.BytesIO()
    enc = ocicrypt.encrypt_layer(io.BytesIO(plaintext), out, kit.recipients())
    repo.push_bytes(out.getvalue(), MODEL_MT)
    real = {
        "manifestVersion": "1.0.0",
        "package": {"name": "hostile"},
        "model": {"path": kitfile_path, "digest": enc.digest, "diffId": enc.plaintext_digest},
    }
    redacted = {
        "manifestVersion": "1.0.0",
        "package": {},
        "model": {"path": "sealed/model-0", "digest": enc.digest},
    }
    cdesc = repo.push_bytes(json.dumps(redacted).encode(), kit.manifest["config"]["mediaType"])
    m = copy.deepcopy(kit.manifest)
    m["config"] = cdesc.to_json()
    m["layers"] = [
        {"mediaType": MODEL_MT, "digest": enc.digest, "size": enc.size, "annotations": enc.annotations}
    ]
    m["annotations"][ANN_SEALED_KITFILE] = ocicrypt.seal(json.dumps(real).encode(), kit.recipients())
    return put_variant(kit, m)


def kitfile_entries(kf: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in ("model", "code", "datasets", "docs", "prompts"):
        v = kf.get(key)
        out += [v] if isinstance(v, dict) else list(v or [])
    return out


def replace_layer(kit: Kit, old: str, fields: dict[str, Any]) -> tuple[str, str]:
    """The kit with the layer ``old`` changed to ``fields`` (digest, size, annotations …) in the
    manifest, and its digest renamed in the sealed Kitfile too."""
    kf = copy.deepcopy(kit.kitfile)
    for e in kitfile_entries(kf):
        if e.get("digest") == old and "digest" in fields:
            e["digest"] = fields["digest"]
    sealed = ocicrypt.seal(json.dumps(kf).encode(), kit.recipients())

    def fn(m: dict[str, Any]) -> None:
        for d in m["layers"]:
            if d["digest"] == old:
                d.update(fields)
        m["annotations"][ANN_SEALED_KITFILE] = sealed

    return mutate(kit, fn)


def sealed_kitfile_variant(kit: Kit, fn: Callable[[dict[str, Any]], None]) -> tuple[str, str]:
    """The kit with its real Kitfile rewritten by ``fn`` and sealed again for its recipients."""
    kf = copy.deepcopy(kit.kitfile)
    fn(kf)
    sealed = ocicrypt.seal(json.dumps(kf).encode(), kit.recipients())
    return mutate(kit, lambda m: m["annotations"].__setitem__(ANN_SEALED_KITFILE, sealed))


# ---- the entry points -----------------------------------------------------------------------------
def assert_nothing_written(out: Path) -> None:
    assert listdir_all(out) == [], listdir_all(out)
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".modelkit-")]
    assert leftovers == [], leftovers


def one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def via_cli_unpack(ref: str, keys: list[str], out: Path) -> str:
    r = CliRunner().invoke(main, ["unpack", ref, "-d", str(out), *[f"--decrypt-key={k}" for k in keys]])
    assert r.exit_code == 2, (r.exit_code, r.output)
    line = one_line(r.output)
    assert line.startswith("error: ")
    return line


def via_api_unpack(ref: str, keys: list[str], out: Path) -> str:
    with pytest.raises(ModelKitError) as e:
        mlflow_plugin.unpack(ref, str(out), decrypt_keys=keys)
    return one_line(str(e.value))


def via_mlflow(ref: str, keys: list[str], out: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    store, digest = ref.split("@")
    if keys:
        monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", ",".join(keys))
    else:
        monkeypatch.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
    try:
        with pytest.raises(MlflowException) as e:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"modelkit://{store}@{digest}", dst_path=str(out)
            )
    finally:
        monkeypatch.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
    return one_line(e.value.message)


def via_cli_scan(ref: str, keys: list[str]) -> Result:
    return CliRunner().invoke(main, ["scan", ref, "--json", *[f"--decrypt-key={k}" for k in keys]])


def refused_everywhere(
    ref: str, keys: list[str], expect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """unpack (CLI, API) and the MLflow download refuse ``ref`` with one line containing ``expect``
    (a case-insensitive substring) and write nothing. Returns the lines by entry point."""
    lines = {}
    for name, run in (
        ("cli", lambda out: via_cli_unpack(ref, keys, out)),
        ("api", lambda out: via_api_unpack(ref, keys, out)),
        ("mlflow", lambda out: via_mlflow(ref, keys, out, monkeypatch)),
    ):
        parent = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}"
        parent.mkdir()
        out = parent / "dest"
        line = run(out)
        assert expect.lower() in line.lower(), (name, line)
        assert_nothing_written(out)
        lines[name] = line
    return lines


def scan_refused(ref: str, keys: list[str], expect: str) -> str:
    """``scan`` (CLI: exit 2, one line; API: ModelKitError) refuses to pass a kit it cannot read."""
    r = via_cli_scan(ref, keys)
    assert r.exit_code == 2, (r.exit_code, r.output)
    line = one_line(r.output)
    assert expect.lower() in line.lower(), line
    with pytest.raises(ModelKitError) as e:
        mlflow_plugin.scan(ref, decrypt_keys=keys)
    assert expect.lower() in one_line(str(e.value)).lower()
    return line


def plaintext_check(ref: str, kit: Kit, keys: list[str]) -> Any:
    result = mlflow_plugin.verify(ref, keys=[kit.signing_pub], decrypt_keys=keys)
    assert not result.ok
    checks = {c.name: c for c in result.checks}
    one_line(checks["plaintext digests"].detail)
    return checks["plaintext digests"]


# ---- 1, 2: who may open the kit ---------------------------------------------------------------------
def test_non_recipient_everywhere(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = f"{kit.store}@{kit.digest}"
    lines = refused_everywhere(ref, [kit.stranger], "not a recipient of this kit", tmp_path, monkeypatch)
    assert all(kit.stranger not in line for line in lines.values())
    scan_refused(ref, [kit.stranger], "not a recipient of this kit")
    check = plaintext_check(ref, kit, [kit.stranger])
    assert "not a recipient of this kit" in check.detail
    out = tmp_path / "serve"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    r = CliRunner().invoke(
        main, ["serve", ref, "--check-only", "--key", kit.signing_pub, "--decrypt-key", kit.stranger]
    )
    assert r.exit_code == 1, r.output
    assert "not a recipient of this kit" in one_line(r.output)
    assert listdir_all(tmp_path / "tmp") == [] and not out.exists()


def test_no_key_everywhere(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = f"{kit.store}@{kit.digest}"
    lines = refused_everywhere(ref, [], "pass --decrypt-key", tmp_path, monkeypatch)
    assert all("MLFLOW_MODELKIT_DECRYPT_KEYS" in line for line in lines.values()), lines
    scan_refused(ref, [], "pass --decrypt-key")
    assert "--decrypt-key" in plaintext_check(ref, kit, []).detail


# ---- 3, 4: the ciphertext --------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_flipped_ciphertext_byte_in_storage(
    kit: Kit, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = biggest_layer(kit.manifest)
    path = kit.target.blob_path(layer["digest"])
    original = path.read_bytes()
    bad = bytearray(original)
    bad[{"start": 0, "middle": len(bad) // 2, "end": len(bad) - 1}[where]] ^= 0x01
    ref = f"{kit.store}@{kit.digest}"
    try:
        path.write_bytes(bytes(bad))
        # the registry stream re-hashes the ciphertext: refused as tampered before any untar
        refused_everywhere(ref, [kit.ec[1]], "tampered with", tmp_path, monkeypatch)
        assert "tampered with" in plaintext_check(ref, kit, [kit.rsa[1]]).detail
        scan_refused(ref, [kit.ec[1]], "tampered with")
    finally:
        path.write_bytes(original)


def test_rehashed_tampered_ciphertext_fails_the_hmac(
    kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flipped ciphertext stored as a blob of its own (a digest that matches): only the HMAC
    of the pubopts catches it, before the plaintext leaves the staging file."""
    layer = biggest_layer(kit.manifest)
    bad = bytearray(kit.repo().read_blob(layer["digest"], layer["size"]))
    bad[len(bad) // 3] ^= 0x80
    d = kit.repo().push_bytes(bytes(bad), layer["mediaType"])
    ref, _ = replace_layer(kit, layer["digest"], {"digest": d.digest, "size": d.size})
    refused_everywhere(ref, [kit.ec[1]], "failed its HMAC check", tmp_path, monkeypatch)
    scan_refused(ref, [kit.rsa[1]], "failed its HMAC check")
    assert "failed its HMAC check" in plaintext_check(ref, kit, [kit.ec[1]]).detail


def test_truncated_ciphertext_blob(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = biggest_layer(kit.manifest)
    data = kit.repo().read_blob(layer["digest"], layer["size"])
    d = kit.repo().push_bytes(data[: len(data) // 2], layer["mediaType"])
    ref, _ = replace_layer(kit, layer["digest"], {"digest": d.digest, "size": d.size})
    refused_everywhere(ref, [kit.ec[1]], "failed its HMAC check", tmp_path, monkeypatch)
    scan_refused(ref, [kit.ec[1]], "failed its HMAC check")
    assert "failed its HMAC check" in plaintext_check(ref, kit, [kit.ec[1]]).detail


@pytest.mark.parametrize("delta", [-1, 1, 1 << 40])
def test_wrong_size_in_the_descriptor(
    kit: Kit, delta: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = biggest_layer(kit.manifest)
    ref, _ = replace_layer(kit, layer["digest"], {"size": layer["size"] + delta})
    expect = f"registry reports {layer['size']} bytes, expected {layer['size'] + delta}"
    refused_everywhere(ref, [kit.ec[1]], expect, tmp_path, monkeypatch)
    scan_refused(ref, [kit.ec[1]], expect)
    assert expect in plaintext_check(ref, kit, [kit.ec[1]]).detail


# ---- 5: the key wrapping and the public options -----------------------------------------------------
def _jwe_with_alg(kit: Kit, alg: str) -> str:
    """The layer's JWE (JSON serialization) with every recipient's ``alg`` rewritten."""
    jwe = json.loads(base64.b64decode(biggest_layer(kit.manifest)["annotations"][ANN_JWE]))
    for r in jwe.get("recipients") or [jwe]:
        r.setdefault("header", {})["alg"] = alg
    return b64json(jwe)


ANNOTATION_CASES: dict[str, Callable[[Kit], dict[str, str]]] = {
    "jwe-garbage-base64": lambda kit: {ANN_JWE: "!!not base64!!"},
    "jwe-base64-of-garbage": lambda kit: {ANN_JWE: base64.b64encode(os.urandom(300)).decode()},
    "jwe-2mb-of-garbage": lambda kit: {ANN_JWE: base64.b64encode(b"{" + b"A" * (2 << 20)).decode()},
    "jwe-alg-dir": lambda kit: {ANN_JWE: _jwe_with_alg(kit, "dir")},
    "jwe-alg-none": lambda kit: {ANN_JWE: _jwe_with_alg(kit, "none")},
    "jwe-alg-unknown": lambda kit: {ANN_JWE: _jwe_with_alg(kit, "X-MADE-UP")},
    "pubopts-aes-128-cbc": lambda kit: {
        ANN_PUBOPTS: b64json({"cipher": "AES_128_CBC", "hmac": base64.b64encode(b"0" * 32).decode()})
    },
    "pubopts-no-hmac": lambda kit: {ANN_PUBOPTS: b64json({"cipher": ocicrypt.CIPHER, "cipheroptions": {}})},
    "pubopts-short-hmac": lambda kit: {
        ANN_PUBOPTS: b64json({"cipher": ocicrypt.CIPHER, "hmac": base64.b64encode(b"x" * 7).decode()})
    },
    "pubopts-not-json": lambda kit: {ANN_PUBOPTS: base64.b64encode(b"{nope").decode()},
}
EXPECT = {
    "jwe-garbage-base64": "not valid base64",
    "jwe-base64-of-garbage": "not a recipient of this kit",
    "jwe-2mb-of-garbage": "not a recipient of this kit",
    "jwe-alg-dir": "not a recipient of this kit",
    "jwe-alg-none": "not a recipient of this kit",
    "jwe-alg-unknown": "not a recipient of this kit",
    "pubopts-aes-128-cbc": "uses cipher 'AES_128_CBC'",
    "pubopts-no-hmac": "the HMAC is missing",
    "pubopts-short-hmac": "failed its HMAC check",
    "pubopts-not-json": "pubopts is not JSON",
}


@pytest.mark.parametrize("case", sorted(ANNOTATION_CASES))
def test_tampered_layer_annotations(
    kit: Kit, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = biggest_layer(kit.manifest)
    ann = {**layer["annotations"], **ANNOTATION_CASES[case](kit)}
    ref, _ = replace_layer(kit, layer["digest"], {"annotations": ann})
    refused_everywhere(ref, [kit.ec[1], kit.rsa[1]], EXPECT[case], tmp_path, monkeypatch)
    scan_refused(ref, [kit.ec[1]], EXPECT[case])
    assert EXPECT[case] in plaintext_check(ref, kit, [kit.rsa[1]]).detail


def test_huge_jwe_annotation_in_a_layout(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~5 MB key annotation: over the registry's manifest limit, so it comes from an ``oci:``
    layout (the kit copied there, its manifest rewritten)."""
    layout = tmp_path / "layout"
    mlflow_plugin.pull(f"{kit.store}@{kit.digest}", f"oci:{layout}/kit:v1")
    repo, _ = open_location(f"oci:{layout}/kit")
    m = copy.deepcopy(kit.manifest)
    biggest_layer(m)["annotations"][ANN_JWE] = base64.b64encode(b"{" + b"A" * (3 * (5 << 20) // 4)).decode()
    digest = repo.put_manifest(json.dumps(m).encode(), OCI_MANIFEST, tag="huge")
    ref = f"oci:{layout}/kit@{digest}"
    for name, run in (
        ("cli", lambda out: via_cli_unpack(ref, [kit.ec[1]], out)),
        ("api", lambda out: via_api_unpack(ref, [kit.ec[1]], out)),
    ):
        out = tmp_path / name / "dest"
        out.parent.mkdir()
        line = run(out)
        assert "larger than 4194304 bytes" in line and len(line) < 1000, line
        assert_nothing_written(out)


# ---- 6: the sealed Kitfile -------------------------------------------------------------------------
def test_sealed_kitfile_garbage(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expect in (
        ("%%%garbage%%%", "not valid base64"),
        (b64json({"not": "a jwe"}), "not a recipient of this kit"),
        (ocicrypt.seal(b"\xff not json", kit.recipients()), "not valid JSON"),
    ):
        ref, _ = mutate(kit, lambda m, v=value: m["annotations"].__setitem__(ANN_SEALED_KITFILE, v))
        refused_everywhere(ref, [kit.ec[1]], expect, tmp_path, monkeypatch)
        assert expect in plaintext_check(ref, kit, [kit.ec[1]]).detail


def test_sealed_kitfile_names_layers_not_in_the_manifest(
    kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ghost = "sha256:" + "ab" * 32

    def fn(kf: dict[str, Any]) -> None:
        kitfile_entries(kf)[0]["digest"] = ghost

    ref, _ = sealed_kitfile_variant(kit, fn)
    refused_everywhere(ref, [kit.ec[1]], f"digest {ghost} not found in manifest", tmp_path, monkeypatch)
    assert "does not name the manifest's layers" in plaintext_check(ref, kit, [kit.ec[1]]).detail


@pytest.mark.parametrize("path", ["../../etc/x", "/etc/x", "a/../../x"])
def test_sealed_kitfile_hostile_entry_path(
    kit: Kit, path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fn(kf: dict[str, Any]) -> None:
        kitfile_entries(kf)[0]["path"] = path

    ref, _ = sealed_kitfile_variant(kit, fn)
    # the Kitfile is written into the target: a path out of it would be packed by a later `kit pack`
    refused_everywhere(ref, [kit.ec[1]], "its Kitfile names an illegal", tmp_path, monkeypatch)
    assert not (tmp_path.parent / "etc").exists() and not (tmp_path / "x").exists()


# ---- 7: hostile members inside an encrypted layer ---------------------------------------------------
HOSTILE_MEMBERS = {
    "dotdot": [(tinfo("../escape"), b"out")],
    "absolute": [(tinfo("/tmp/modelkit-hostile-abs"), b"abs")],
    "symlink-out": [(tinfo("model/passwd", tarfile.SYMTYPE, linkname="/etc/passwd"), None)],
    "hardlink-out": [(tinfo("model/passwd", tarfile.LNKTYPE, linkname="../../../../etc/passwd"), None)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_MEMBERS))
def test_hostile_members_in_an_encrypted_layer(
    kit: Kit, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tar = hostile_tar([(tinfo("model/ok.bin"), b"fine"), *HOSTILE_MEMBERS[case]])
    ref, _ = kit_with_layer(kit, tar)
    refused_everywhere(ref, [kit.ec[1]], "", tmp_path, monkeypatch)
    assert not Path("/tmp/modelkit-hostile-abs").exists() and not (tmp_path / "escape").exists()
    r = via_cli_scan(ref, [kit.rsa[1]])
    report = json.loads(r.output)  # a report, not a crash
    rules = {f["rule"] for f in report["findings"]}
    expected = "kit.unsafe-path" if case in ("dotdot", "absolute") else "kit.unsafe-link"
    assert r.exit_code == 1 and expected in rules, (r.exit_code, rules)


# ---- 9: either recipient opens the kit through MLflow --------------------------------------------------
def test_two_recipients_each_open_through_mlflow(
    kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"modelkit://{kit.store}@{kit.digest}"
    for which in (kit.ec, kit.rsa, (None, f"{kit.stranger},{kit.rsa[1]}")):
        monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", which[1])
        out = tmp_path / uuid.uuid4().hex[:8]
        out.mkdir()
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(out)))
        files = {p.relative_to(got).as_posix(): p.read_bytes() for p in got.rglob("*") if p.is_file()}
        assert files == kit.files
        assert [p.name for p in out.parent.iterdir() if p.name.startswith(".modelkit-")] == []


# ---- 8: encrypted attestations that are garbage ----------------------------------------------------------
@pytest.mark.parametrize("how", ["garbage plaintext", "modified ciphertext", "not encrypted for us"])
def test_garbage_encrypted_attestation_is_a_failed_check(
    kit: Kit, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed copy of the kit whose provenance attestation is garbage once decrypted, has a
    modified ciphertext, or is encrypted for someone else: verify (API and CLI) reports a failed
    ``attestation:provenance`` check in one line; nothing crashes."""
    from mlflow_plugin.storage.descriptor import Descriptor
    from mlflow_plugin.trust.attach import PRED_PROVENANCE
    from mlflow_plugin.trust.signer import Signer

    m = copy.deepcopy(kit.manifest)
    m["annotations"]["test.variant"] = f"{how} {uuid.uuid4().hex}"
    ref, digest = put_variant(kit, m)
    repo = kit.repo()
    subject = Descriptor(OCI_MANIFEST, digest, len(json.dumps(m).encode()))
    signer = Signer.from_key_file(str(kit.home / "signing" / "cosign.key"), PASSPHRASE.encode())
    signer.attest(repo, subject, "signature")
    signer.attest(repo, subject, "scan", {"summary": {"max_severity": None}}, recipients=kit.recipients())
    if how == "garbage plaintext":
        # a referrer whose encrypted layer opens (HMAC, digest fine) to bytes that are no bundle
        from mlflow_plugin.storage.mediatypes import EMPTY_JSON, OCI_EMPTY
        from mlflow_plugin.trust.cosign import bundle_referrer_manifest
        from mlflow_plugin.trust.dsse import BUNDLE_MEDIA_TYPE

        blob, enc = ocicrypt.encrypt_bytes(b"\x00not a bundle" * 10, kit.recipients())
        media_type = BUNDLE_MEDIA_TYPE + ocicrypt.ENC_SUFFIX
        repo.push_bytes(blob, media_type)
        repo.push_bytes(EMPTY_JSON, OCI_EMPTY)
        layer = {
            "mediaType": media_type,
            "size": enc.size,
            "digest": enc.digest,
            "annotations": enc.annotations,
        }
        shape = signer._bundle(subject, "provenance", {"buildDefinition": {}}, None)  # for the content kind
        referrer = bundle_referrer_manifest(
            shape, OCI_MANIFEST, digest, subject.size, PRED_PROVENANCE, "2026-12-07T00:00:00Z", layer=layer
        )
        repo.put_manifest(referrer, OCI_MANIFEST)
    elif how == "not encrypted for us":
        other = ocicrypt.load_recipient(str(Path(kit.stranger).with_name("enc.pub")))
        signer.attest(repo, subject, "provenance", {"buildDefinition": {}}, recipients=[other])
    else:
        signer.attest(repo, subject, "provenance", {"buildDefinition": {}}, recipients=kit.recipients())
        # flip one byte of the encrypted provenance bundle blob in the registry's storage
        from mlflow_plugin.trust.attach import list_attachments

        (prov,) = [a for a in list_attachments(repo, digest) if a.kind == "provenance"]
        rm = json.loads(repo.get_manifest(prov.manifest_digest)[0])
        path = kit.target.blob_path(rm["layers"][0]["digest"])
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
    result = mlflow_plugin.verify(ref, keys=[kit.signing_pub], decrypt_keys=[kit.ec[1]], deep=False)
    checks = {c.name: c for c in result.checks}
    assert not result.ok and checks["signature"].ok
    detail = checks["attestation:provenance"].detail
    assert not checks["attestation:provenance"].ok and "\n" not in detail, detail
    r = cli("verify", ref, "--key", kit.signing_pub, "--decrypt-key", kit.ec[1], "--no-deep")
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 1 and len(errors) == 1 and "Traceback" not in r.output, r.output
