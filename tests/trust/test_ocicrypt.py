"""ocicrypt-format layer encryption: key pairs, round trips, recipients, tampering (no mocks)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from _envhelpers import clean_env, end_runs, use_tracking
from _kithelpers import log_files_run
from _registries import RegistryServer, own_registry
from click.testing import CliRunner, Result

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.verify import verify
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.trust import ocicrypt
from mlflow_plugin.trust.ocicrypt import (
    ANN_JWE,
    ANN_PUBOPTS,
    decrypt_layer,
    encrypt_layer,
    generate_recipient_keypair,
    load_decryption_key,
    load_recipient,
    open_layer,
)

DATA = os.urandom(3 * (1 << 20) + 12345)  # spans several read chunks and ends mid-block


@pytest.fixture(scope="module")
def ec_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return generate_recipient_keypair(str(tmp_path_factory.mktemp("ec")), "ec")


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return generate_recipient_keypair(str(tmp_path_factory.mktemp("rsa")), "rsa")


def _encrypt(pubs: list[str], data: bytes = DATA) -> tuple[bytes, ocicrypt.EncryptedLayer]:
    out = io.BytesIO()
    enc = encrypt_layer(io.BytesIO(data), out, [load_recipient(p) for p in pubs])
    return out.getvalue(), enc


def _decrypt(ct: bytes, enc: ocicrypt.EncryptedLayer, keys: list[str]) -> bytes:
    opened = open_layer(enc.annotations, [load_decryption_key(k) for k in keys], layer=enc.digest)
    out = io.BytesIO()
    assert decrypt_layer(io.BytesIO(ct), out, opened, layer=enc.digest) == enc.plaintext_digest
    return out.getvalue()


def test_keypair_files(ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    for pub, key in (ec_keys, rsa_keys):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert Path(pub).read_text().startswith("-----BEGIN PUBLIC KEY-----")
        assert Path(key).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert load_recipient(rsa_keys[0]).key_size == 3072
    assert load_recipient(ec_keys[0]).curve.name == "secp256r1"  # type: ignore[union-attr]
    with pytest.raises(ModelKitError, match="refusing to overwrite"):
        generate_recipient_keypair(str(Path(ec_keys[0]).parent))


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_round_trip_and_format(kind: str, ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    pub, key = ec_keys if kind == "ec" else rsa_keys
    ct, enc = _encrypt([pub])
    assert len(ct) == len(DATA) == enc.size and ct != DATA
    assert DATA[:64] not in ct
    assert _decrypt(ct, enc, [key]) == DATA
    # the format, field by field, as ocicrypt writes it
    pubopts = json.loads(base64.b64decode(enc.annotations[ANN_PUBOPTS], validate=True))
    assert list(pubopts) == ["cipher", "hmac", "cipheroptions"]
    assert pubopts["cipher"] == "AES_256_CTR_HMAC_SHA256" and pubopts["cipheroptions"] == {}
    assert len(base64.b64decode(pubopts["hmac"])) == 32
    jwe = json.loads(base64.b64decode(enc.annotations[ANN_JWE], validate=True))
    protected = json.loads(base64.urlsafe_b64decode(jwe["protected"] + "=="))
    assert protected["enc"] == "A256GCM"
    header = jwe.get("header") or jwe["recipients"][0]["header"]
    assert header["alg"] == ("ECDH-ES+A256KW" if kind == "ec" else "RSA-OAEP")
    opened = open_layer(enc.annotations, [load_decryption_key(key)], layer="l")
    assert opened.digest == enc.plaintext_digest and len(opened.symkey) == 32 and len(opened.nonce) == 16
    assert "symkey" not in repr(opened) and base64.b64encode(opened.symkey).decode() not in repr(opened)


def test_two_recipients_each_opens(ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    ct, enc = _encrypt([ec_keys[0], rsa_keys[0]])
    assert "," not in enc.annotations[ANN_JWE]  # one JWE for the recipient set, as ocicrypt
    assert len(json.loads(base64.b64decode(enc.annotations[ANN_JWE]))["recipients"]) == 2
    assert _decrypt(ct, enc, [ec_keys[1]]) == DATA
    assert _decrypt(ct, enc, [rsa_keys[1]]) == DATA


def test_comma_joined_jwes_are_tried(ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    ct, enc = _encrypt([ec_keys[0]])
    _ct2, other = _encrypt([rsa_keys[0]])
    ann = dict(enc.annotations)
    ann[ANN_JWE] = other.annotations[ANN_JWE] + "," + enc.annotations[ANN_JWE]
    opened = open_layer(ann, [load_decryption_key(ec_keys[1])], layer="l")
    out = io.BytesIO()
    decrypt_layer(io.BytesIO(ct), out, opened, layer="l")
    assert out.getvalue() == DATA


def test_non_recipient_one_line(ec_keys: tuple[str, str], tmp_path: Path) -> None:
    _ct, enc = _encrypt([ec_keys[0]], b"secret")
    _pub, stranger = generate_recipient_keypair(str(tmp_path), "ec")
    with pytest.raises(ModelKitError) as e:
        open_layer(enc.annotations, [load_decryption_key(stranger)], layer="sha256:abc")
    assert str(e.value) == "not a recipient of this kit: none of the decryption keys opens layer sha256:abc"
    with pytest.raises(ModelKitError, match="is encrypted: pass --decrypt-key"):
        open_layer(enc.annotations, [], layer="sha256:abc")


def test_flipped_ciphertext_byte_refused(ec_keys: tuple[str, str]) -> None:
    ct, enc = _encrypt([ec_keys[0]])
    for where in (0, len(ct) // 2, len(ct) - 1):
        bad = bytearray(ct)
        bad[where] ^= 0x01
        opened = open_layer(enc.annotations, [load_decryption_key(ec_keys[1])], layer="l")
        with pytest.raises(ModelKitError, match="failed its HMAC check") as e:
            decrypt_layer(io.BytesIO(bytes(bad)), io.BytesIO(), opened, layer="l")
        assert "\n" not in str(e.value)


def test_tampered_pubopts_and_wrong_digest(ec_keys: tuple[str, str]) -> None:
    _ct, enc = _encrypt([ec_keys[0]], b"hello")
    ann = dict(enc.annotations)
    ann[ANN_PUBOPTS] = base64.b64encode(b'{"cipher":"AES_128_GCM","hmac":"","cipheroptions":{}}').decode()
    with pytest.raises(ModelKitError, match="only AES_256_CTR_HMAC_SHA256"):
        open_layer(ann, [load_decryption_key(ec_keys[1])], layer="l")
    with pytest.raises(ModelKitError, match="read back as"):
        encrypt_layer(io.BytesIO(b"x"), io.BytesIO(), [load_recipient(ec_keys[0])], "sha256:" + "0" * 64)


def test_encrypted_private_key_needs_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_MODELKIT_KEY_PASSWORD", raising=False)
    pub, key = generate_recipient_keypair(str(tmp_path), "ec", password=b"pa55-enc-key")
    assert Path(key).read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(ModelKitError, match="no passphrase") as e:
        load_decryption_key(key)
    assert "pa55" not in str(e.value)
    with pytest.raises(ModelKitError, match="wrong passphrase") as e:
        load_decryption_key(key, b"not-it")
    assert "not-it" not in str(e.value)
    ct, enc = _encrypt([pub], b"abc")
    opened = open_layer(enc.annotations, [load_decryption_key(key, b"pa55-enc-key")], layer="l")
    out = io.BytesIO()
    decrypt_layer(io.BytesIO(ct), out, opened, layer="l")
    assert out.getvalue() == b"abc"


# ---- publish --encrypt-for into a separate real registry, then unpack ---------------------------------
PASSPHRASE = "ocicrypt-signing-pass 9c1e"


@dataclass
class EncPublished:
    store: str
    ref: str
    digest: str
    files: dict[str, bytes]
    target: RegistryServer
    signing_pub: str
    ec: tuple[str, str]
    rsa: tuple[str, str]
    home: Path


@pytest.fixture(scope="module")
def target_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """The publish target: its own process and storage dir (the drafts live in ``registry``)."""
    with own_registry(tmp_path_factory, "registry-enc") as server:
        yield server


@pytest.fixture(scope="module")
def published(
    registry: RegistryServer,
    target_registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
    ec_keys: tuple[str, str],
    rsa_keys: tuple[str, str],
) -> Iterator[EncPublished]:
    home = tmp_path_factory.mktemp("enc-publish")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
        mp.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
        use_tracking(f"sqlite:///{home}/mlflow.db")
        r = cli("keygen", "-o", str(home / "signing"))
        assert r.exit_code == 0, r.output
        files = {
            "weights/model.bin": os.urandom(300_000),
            "notes/README.md": (b"confidential fraud model notes, do not share. " * 40),
        }
        run_id = log_files_run(registry.host, home, files, "enc")
        end_runs()
        store = f"{target_registry.host}/enc/fraud"
        r = cli(
            "publish",
            f"runs:/{run_id}",
            "--tag",
            "v1",
            "--key",
            str(home / "signing" / "cosign.key"),
            "--repository",
            store,
            "--encrypt-for",
            ec_keys[0],
            "--encrypt-for",
            rsa_keys[0],
            "--json",
        )
        assert r.exit_code == 0, r.output
        digest = json.loads(r.output)["digest"]
        yield EncPublished(
            store,
            f"{store}:v1",
            digest,
            files,
            target_registry,
            str(home / "signing" / "cosign.pub"),
            ec_keys,
            rsa_keys,
            home,
        )
        end_runs()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.registry
def test_no_plaintext_window_in_target_storage(published: EncPublished) -> None:
    chunk = 32  # every 64-byte window of a file contains a whole aligned 32-byte chunk
    needles = {
        data[i : i + chunk]
        for data in published.files.values()
        for i in range(0, len(data) - chunk + 1, chunk)
    }
    needles = {n for n in needles if len(set(n)) > 4}  # skip degenerate chunks (none in random data)
    assert len(needles) > 9000
    scanned = 0
    for path in published.target.root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        scanned += len(data)
        for off in range(0, max(len(data) - chunk + 1, 0)):
            if data[off : off + chunk] in needles:
                pytest.fail(f"plaintext bytes found in {path} at {off}")
    assert scanned > 300_000  # the ciphertext is there


def _forms(needle: bytes) -> set[bytes]:
    """``needle`` raw and inside standard / URL-safe base64 at each of the three alignments."""
    out = {needle}
    for k in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(bytes(k) + needle)
            out.add(text[4 if k else 0 : -4])  # the characters that encode needle bytes only
    return out


@pytest.mark.registry
def test_no_path_name_or_file_digest_in_target_storage(published: EncPublished) -> None:
    """What the kit holds stays with its recipients: no file path or name, no plaintext file or
    layer digest, no Kitfile field of the run appears in the target registry's storage, raw or
    base64-encoded (the redacted config and the sealed Kitfile, the encrypted attestations)."""
    needles: dict[bytes, str] = {}
    for rel, data in published.files.items():
        for text in (rel, rel.rsplit("/", 1)[-1]):
            for form in _forms(text.encode()):
                needles[form] = f"path {text!r}"
        hexd = hashlib.sha256(data).hexdigest()
        for form in _forms(hexd.encode()) | _forms(bytes.fromhex(hexd)):
            needles[form] = f"sha256 of {rel}"
    repo, _ = open_location(published.store)
    src = ocicrypt.load_decryption_key(published.ec[1])
    m = json.loads(repo.get_manifest(published.digest)[0])
    sealed = ocicrypt.unseal(m["annotations"][ocicrypt.ANN_SEALED_KITFILE], [src], "test")
    kitfile = json.loads(sealed)  # the real Kitfile: paths, the run's name, plaintext tar digests
    entries = [kitfile.get("model"), *(e for k in ("code", "datasets", "docs") for e in kitfile.get(k, []))]
    assert {e["path"] for e in entries if e} == set(published.files)
    plain_digests = [e["diffId"] for e in entries if e and "diffId" in e]
    assert len(plain_digests) == len(published.files)
    for d in plain_digests:
        for form in _forms(d.encode()) | _forms(d.split(":", 1)[1].encode()):
            needles[form] = f"plaintext layer digest {d}"
    name = kitfile["package"]["name"]  # the MLflow run name
    for form in _forms(name.encode()):
        needles[form] = f"run name {name!r}"
    config = repo.read_blob(m["config"]["digest"], m["config"]["size"])
    assert json.loads(config)["package"] == {} and b"weights" not in config and b"notes" not in config
    hits = []
    scanned = 0
    for path in published.target.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            hits += [f"{why} in {path.name}" for needle, why in needles.items() if needle in data]
    assert scanned > 10 and hits == []


@pytest.mark.registry
def test_manifest_layers_encrypted_and_verify(published: EncPublished) -> None:
    repo, _ = open_location(published.store)
    data, _mt, digest = repo.get_manifest("v1")
    assert digest == published.digest
    m = json.loads(data)
    assert m["layers"]
    for d in m["layers"]:
        assert d["mediaType"].endswith("+encrypted")
        ann = d.get("annotations") or {}
        assert ANN_JWE in ann and ANN_PUBOPTS in ann
        assert "dev.mlflow-modelkit.files" not in ann and "org.cncf.model.filepath" not in ann
    assert b"weights/model.bin" not in data and b"README.md" not in data
    # a non-recipient sees who signed the ciphertext, not what the attestations say
    stranger = verify(published.ref, keys=[published.signing_pub])
    assert not stranger.ok
    checks = {c.name: c for c in stranger.checks}
    assert checks["signature"].ok, stranger
    assert (
        not checks["attestation:provenance"].ok and "--decrypt-key" in checks["attestation:provenance"].detail
    )
    assert not checks["plaintext digests"].ok and "--decrypt-key" in checks["plaintext digests"].detail
    for which in (published.ec, published.rsa):
        result = verify(published.ref, keys=[published.signing_pub], decrypt_keys=[which[1]])
        assert result.ok, result
        assert {c.name: c.ok for c in result.checks}["plaintext digests"]
        assert result.scan is not None and result.provenance is not None


@pytest.mark.registry
@pytest.mark.parametrize("which", ["ec", "rsa"])
def test_unpack_with_each_key(published: EncPublished, which: str, tmp_path: Path) -> None:
    key = (published.ec if which == "ec" else published.rsa)[1]
    out = tmp_path / "out"
    r = cli("unpack", published.ref, "-d", str(out), "--decrypt-key", key)
    assert r.exit_code == 0, r.output
    for rel, data in published.files.items():
        assert (out / rel).read_bytes() == data


@pytest.mark.registry
def test_unpack_env_keys(published: EncPublished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", f"{published.rsa[1]}")
    files = ops.unpack(published.ref, str(tmp_path / "o"))
    assert "weights/model.bin" in files


@pytest.mark.registry
def test_unpack_without_or_with_wrong_key(
    published: EncPublished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
    out = tmp_path / "none"
    with pytest.raises(ModelKitError, match=r"is encrypted: pass --decrypt-key") as e:
        ops.unpack(published.ref, str(out))
    assert "\n" not in str(e.value) and not out.exists()
    _pub, stranger = generate_recipient_keypair(str(tmp_path / "stranger"))
    r = CliRunner().invoke(main, ["unpack", published.ref, "-d", str(out), "--decrypt-key", stranger])
    assert r.exit_code == 2
    assert r.output.startswith("error: not a recipient of this kit: none of the decryption keys opens")
    assert r.output.count("\n") == 1
    assert not out.exists()


@pytest.mark.registry
def test_flipped_byte_in_registry_refused_nothing_written(published: EncPublished, tmp_path: Path) -> None:
    repo, _ = open_location(published.store)
    data, _mt, _d = repo.get_manifest("v1")
    layer = max(json.loads(data)["layers"], key=lambda d: d["size"])
    path = published.target.blob_path(layer["digest"])
    original = path.read_bytes()
    try:
        bad = bytearray(original)
        bad[len(bad) // 2] ^= 0x01
        path.write_bytes(bytes(bad))
        out = tmp_path / "target"
        out.mkdir()
        with pytest.raises(ModelKitError) as e:
            ops.unpack(published.ref, str(out), decrypt_keys=[published.ec[1]])
        assert "\n" not in str(e.value)
        assert list(out.iterdir()) == []
    finally:
        path.write_bytes(original)


@pytest.mark.registry
@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
@pytest.mark.parametrize("which", ["ec", "rsa"])
def test_skopeo_decrypts(published: EncPublished, which: str, tmp_path: Path) -> None:
    """Interop: containers/image + ocicrypt (skopeo --decryption-key) open what we wrote."""
    key = (published.ec if which == "ec" else published.rsa)[1]
    out = tmp_path / "dir"
    p = subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            "--decryption-key",
            key,
            f"docker://{published.ref}",
            f"dir:{out}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print("skopeo:", p.returncode, p.stderr.strip()[-2000:])
    assert p.returncode == 0, p.stderr
    repo, _ = open_location(published.store)
    enc = json.loads(repo.get_manifest("v1")[0])
    plain = json.loads((out / "manifest.json").read_text())
    for e, d in zip(enc["layers"], plain["layers"], strict=True):
        opened = open_layer(e["annotations"], [load_decryption_key(key)], layer=e["digest"])
        assert d["digest"] == opened.digest  # skopeo's decrypted layer is our plaintext tar
        assert not d["mediaType"].endswith("+encrypted")
        blob = (out / d["digest"].split(":", 1)[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == opened.digest


@pytest.mark.registry
def test_mlflow_download_decrypts_with_the_admins_key(
    published: EncPublished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``modelkit://`` reads of an encrypted kit: the configured recipient key opens it, under the
    verify-on-load policy; nobody else gets a byte or a file name."""
    from mlflow.exceptions import MlflowException

    uri = f"modelkit://{published.store}@{published.digest}"
    monkeypatch.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    monkeypatch.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", published.signing_pub)
    monkeypatch.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
    with pytest.raises(MlflowException, match="encrypted") as e:
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "none"))
    assert "\n" not in e.value.message
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").rglob("*"))
    _pub, stranger = generate_recipient_keypair(str(tmp_path / "stranger"))
    monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", stranger)
    with pytest.raises(MlflowException, match="not a recipient of this kit"):
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "none"))
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").rglob("*"))
    for which in (published.ec, published.rsa):
        monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", which[1])
        out = tmp_path / Path(which[1]).parent.name
        out.mkdir()
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(out)))
        files = {p.relative_to(got).as_posix(): p.read_bytes() for p in got.rglob("*") if p.is_file()}
        assert files == published.files
        # one file, and a listing (from the decrypted model_signing statement)
        one = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{uri}/notes/README.md", dst_path=str(out / "one")
        )
        assert Path(one).read_bytes() == published.files["notes/README.md"]
        listed = mlflow.artifacts.list_artifacts(artifact_uri=uri)
        assert sorted((f.path.rsplit("/", 1)[-1], f.is_dir) for f in listed) == [
            ("notes", True),
            ("weights", True),
        ]
    leftovers = [p for p in tmp_path.rglob(".modelkit-decrypt-*")]
    assert leftovers == []


@pytest.mark.registry
def test_rescan_and_scan_of_an_encrypted_kit(
    published: EncPublished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scan`` and ``rescan`` read an encrypted kit only as its recipient; the re-scan of the
    plaintext agrees with the (decrypted) scan attestation made at publish time."""
    from mlflow_plugin.harden.rescan import rescan

    monkeypatch.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
    monkeypatch.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", published.signing_pub)
    r = cli("scan", published.ref)
    assert r.exit_code == 2 and "is encrypted: pass --decrypt-key" in r.output and r.output.count("\n") == 1
    r = cli("scan", published.ref, "--decrypt-key", published.rsa[1], "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    scanned = {f["path"] if isinstance(f, dict) else f for f in report["files"]}
    assert set(published.files) <= scanned, scanned  # the plaintext files, by their real paths
    assert not any(f["severity"] in ("high", "critical") for f in report["findings"])
    skipped = rescan(published.store, dry_run=True)
    assert [(x.action, x.reason) for x in skipped] == [
        ("skipped", "encrypted for recipients: pass --decrypt-key to re-scan it")
    ]
    again = rescan(published.store, dry_run=True, decrypt_keys=[published.ec[1]])
    assert [x.action for x in again] == ["unchanged"], again
    key = str(published.home / "signing" / "cosign.key")
    no_recipients = rescan(published.store, key=key, decrypt_keys=[published.ec[1]])
    assert "pass --encrypt-for" in (no_recipients[0].reason or "")


@pytest.mark.registry
def test_recipient_gets_a_model_signing_bundle_the_real_cli_accepts(
    published: EncPublished, tmp_path: Path
) -> None:
    """``unpack --decrypt-key`` writes the decrypted model_signing bundle as ``model.sig``; the
    OpenSSF ``model_signing`` CLI verifies the unpacked tree with it and the signing public key."""
    import sys

    out = tmp_path / "out"
    r = cli("unpack", published.ref, "-d", str(out), "--decrypt-key", published.ec[1])
    assert r.exit_code == 0, r.output
    assert (out / "model.sig").is_file() and "model_signing verify" in r.output
    tool = Path(sys.executable).with_name("model_signing")
    assert tool.exists(), "the model_signing CLI is part of the test extras"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_MODELKIT_")}
    argv = [str(tool), "verify", "key", str(out), "--signature", str(out / "model.sig")]
    p = subprocess.run(
        [*argv, "--public_key", published.signing_pub], capture_output=True, text=True, env=env, timeout=180
    )
    assert p.returncode == 0, p.stdout + p.stderr
    (out / "weights" / "model.bin").write_bytes(b"tampered")
    p = subprocess.run(
        [*argv, "--public_key", published.signing_pub], capture_output=True, text=True, env=env, timeout=180
    )
    assert p.returncode != 0


@pytest.mark.registry
def test_inspect_shows_the_redacted_or_the_sealed_kitfile(published: EncPublished, tmp_path: Path) -> None:
    """``inspect`` says a kit is encrypted; everyone sees the redacted Kitfile, a recipient (with
    ``--decrypt-key``) the real one; a stranger's key given explicitly is one line."""
    plain = ops.inspect(published.ref, decrypt_keys=[])
    assert plain.encrypted and plain.sealed
    assert {e["path"] for e in plain.config.get("docs", [])} <= {f"sealed/docs-{i}" for i in range(5)}
    opened = ops.inspect(published.ref, decrypt_keys=[published.rsa[1]])
    assert opened.encrypted and not opened.sealed
    assert {e["path"] for e in opened.config["docs"]} == set(published.files)
    r = cli("inspect", published.ref)
    assert r.exit_code == 0 and "the real one is sealed (pass --decrypt-key)" in r.output
    assert "weights/model.bin" not in r.output
    r = cli("inspect", published.ref, "--decrypt-key", published.ec[1], "--json")
    assert r.exit_code == 0 and "weights/model.bin" in r.output and json.loads(r.output)["sealed"] is False
    _pub, stranger = generate_recipient_keypair(str(tmp_path / "stranger"))
    r = cli("inspect", published.ref, "--decrypt-key", stranger)
    assert (
        r.exit_code == 2
        and r.output.startswith("error: not a recipient of this kit")
        and r.output.count("\n") == 1
    )


@pytest.mark.registry
def test_mlflow_download_never_writes_through_a_link_in_the_destination(
    published: EncPublished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symlink already in the destination (``weights`` → elsewhere) is not followed by the
    decrypted download: one-line MlflowException, nothing written where it points."""
    from mlflow.exceptions import MlflowException

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dst = tmp_path / "dst"
    kit_dir = dst / f"{published.store.rsplit('/', 1)[1]}@{published.digest}"  # where MLflow puts it
    kit_dir.mkdir(parents=True)
    (kit_dir / "weights").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", published.ec[1])
    with pytest.raises(MlflowException, match="symbolic link") as e:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"modelkit://{published.store}@{published.digest}", dst_path=str(dst)
        )
    assert "\n" not in e.value.message
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in kit_dir.iterdir()) == ["weights"]  # nothing moved: notes/ is not there
