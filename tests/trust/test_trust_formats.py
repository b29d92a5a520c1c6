"""Signing formats: keys, DSSE bundles, cosign signatures, OpenSSF model signing (with the real verifier)."""

from __future__ import annotations

import base64
import doctest
import hashlib
import importlib
import json
import logging
import os
import stat
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.storage.base import merge_referrers_index, referrer_descriptor, referrers_tag
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.layout import LayoutRepository
from mlflow_plugin.storage.mediatypes import EMPTY_DIGEST, EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST
from mlflow_plugin.trust import attach, cosign, dsse, keys, oms
from mlflow_plugin.trust.dsse import VerificationError
from mlflow_plugin.trust.signer import Signer

PASSWORD = b"correct horse battery staple 7731"
DIGEST = "sha256:" + "ab" * 32
REFERENCE = "registry.example.com/org/my-modelkit"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_priv(k, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _edit_bundle(bundle: bytes, fn) -> bytes:
    doc = json.loads(bundle)
    fn(doc)
    return json.dumps(doc).encode()


def _stmt() -> dict:
    return dsse.statement(
        [{"name": "x", "digest": {"sha256": "cd" * 32}}], "https://example.com/p/v1", {"a": 1}
    )


def _model(tmp_path: Path) -> Path:
    """A small model tree whose names exercise the component-wise order (``a/b`` sorts before ``a-b``)."""
    m = tmp_path / "model"
    (m / "sub").mkdir(parents=True)
    (m / "a").mkdir()
    (m / ".git").mkdir()
    (m / "weights.bin").write_bytes(os.urandom(4096))
    (m / "config.json").write_text('{"k": 1}\n')
    (m / "sub" / "tokenizer.txt").write_text("hello\n")
    (m / "a" / "b").write_text("ab\n")
    (m / "a-b").write_text("a-b\n")
    (m / "B").write_text("B\n")
    (m / "empty").write_bytes(b"")
    (m / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (m / ".gitignore").write_text("*.tmp\n")
    return m


def _sign_oms(files: list[tuple[str, str]], k, model_name: str = "model") -> bytes:
    """An OMS bundle as the Signer makes one (model_signing's key hint), without an OCI layout."""
    return dsse.sign_bundle(oms.oms_statement(files, model_name), k, hint="model_signing")


def _sign_dir(m: Path, k) -> Path:
    sig = m / "model.sig"
    sig.write_bytes(_sign_oms(oms.hash_model_dir(str(m)), k, model_name=m.name))
    return sig


# --------------------------------------------------------------------------- doctests


@pytest.mark.parametrize("name", ["keys", "dsse", "cosign", "oms", "signer"])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"mlflow_plugin.trust.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.failed == 0 and result.attempted > 0


# --------------------------------------------------------------------------- keys


def test_generate_keypair_modes_and_formats(tmp_path: Path) -> None:
    old = os.umask(0)  # a permissive umask must not make the private key readable by others
    try:
        priv, pub = keys.generate_keypair(str(tmp_path / "keys"), PASSWORD)
    finally:
        os.umask(old)
    assert Path(priv).name == "cosign.key" and Path(pub).name == "cosign.pub"
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pub).st_mode) == 0o644
    data = Path(priv).read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    k = keys.load_private_key(priv, PASSWORD)
    p = keys.load_public_key(pub)
    assert keys.key_id(p) == keys.key_id(k.public_key())
    der = p.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert keys.key_id(p) == hashlib.sha256(der).hexdigest()


def test_generate_keypair_strict_umask_keeps_public_0644(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        priv, pub = keys.generate_keypair(str(tmp_path), PASSWORD)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pub).st_mode) == 0o644


def test_private_key_created_0600_exclusively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):
        calls.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    keys.generate_keypair(str(tmp_path), PASSWORD)
    (_path, flags, mode) = next(c for c in calls if c[0].endswith("cosign.key"))
    assert mode == 0o600 and flags & os.O_CREAT and flags & os.O_EXCL


def test_generate_keypair_refuses_to_overwrite(tmp_path: Path) -> None:
    priv, _pub = keys.generate_keypair(str(tmp_path), PASSWORD)
    before = Path(priv).read_bytes()
    with pytest.raises(ModelKitError) as ei:
        keys.generate_keypair(str(tmp_path), PASSWORD)
    assert "already exists" in str(ei.value) and "\n" not in str(ei.value)
    assert Path(priv).read_bytes() == before
    # only the public key exists: still refused, and no private key left behind
    other = tmp_path / "other"
    other.mkdir()
    (other / "cosign.pub").write_text("x")
    with pytest.raises(ModelKitError, match=r"cosign\.pub already exists"):
        keys.generate_keypair(str(other), PASSWORD)
    assert not (other / "cosign.key").exists()


def test_generate_keypair_into_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ModelKitError, match="cannot create key directory"):
        keys.generate_keypair(str(tmp_path / "f"), PASSWORD)


def test_wrong_passphrase_is_one_line_and_never_leaks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    priv, _ = keys.generate_keypair(str(tmp_path), PASSWORD)
    wrong = b"not-the-passphrase-9931"
    with pytest.raises(ModelKitError) as ei:
        keys.load_private_key(priv, wrong)
    msg = str(ei.value)
    assert msg == f"wrong passphrase for {priv}: set MLFLOW_MODELKIT_KEY_PASSWORD"
    full = "".join(traceback.format_exception(ei.value)) + repr(ei.value)
    out = capsys.readouterr()
    for secret in (wrong, PASSWORD):
        for text in (full, caplog.text, out.out, out.err):
            assert secret.decode() not in text


def test_load_private_key_errors(tmp_path: Path) -> None:
    priv, _ = keys.generate_keypair(str(tmp_path), PASSWORD)
    with pytest.raises(ModelKitError, match=r"^private key .*missing.key not found"):
        keys.load_private_key(str(tmp_path / "missing.key"), PASSWORD)
    with pytest.raises(
        ModelKitError, match="is encrypted and no passphrase was given: set MLFLOW_MODELKIT_KEY"
    ):
        keys.load_private_key(priv, None)
    p384 = tmp_path / "p384.key"
    p384.write_bytes(_pem_priv(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(ModelKitError, match="secp384r1 key; only ECDSA P-256"):
        keys.load_private_key(str(p384), None)
    rsa_key = tmp_path / "rsa.key"
    rsa_key.write_bytes(_pem_priv(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    with pytest.raises(ModelKitError, match="is not an ECDSA P-256 key"):
        keys.load_private_key(str(rsa_key), None)
    junk = tmp_path / "junk.key"
    junk.write_text("hello\n")
    with pytest.raises(ModelKitError, match="is not a PEM private key"):
        keys.load_private_key(str(junk), None)
    cosign_native = tmp_path / "native.key"
    cosign_native.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n")
    with pytest.raises(ModelKitError, match="cosign's own encrypted format"):
        keys.load_private_key(str(cosign_native), PASSWORD)


def test_unencrypted_key_loads_even_with_a_passphrase_set(tmp_path: Path) -> None:
    priv, pub = keys.generate_keypair(str(tmp_path), None)
    assert Path(priv).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    k = keys.load_private_key(priv, PASSWORD)
    assert keys.key_id(k.public_key()) == keys.key_id(keys.load_public_key(pub))


def test_load_public_key_inputs(tmp_path: Path, key) -> None:
    pem = keys.public_key_pem(key.public_key())
    path = tmp_path / "k.pub"
    path.write_bytes(pem)
    ids = {keys.key_id(keys.load_public_key(x)) for x in (str(path), pem, pem.decode())}
    assert ids == {keys.key_id(key.public_key())}
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(ModelKitError, match="only ECDSA P-256"):
        keys.load_public_key(keys.public_key_pem(p384))
    with pytest.raises(ModelKitError, match="is a private key"):
        keys.load_public_key(_pem_priv(key))
    with pytest.raises(ModelKitError, match="not a PEM public key"):
        keys.load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_hints(key) -> None:
    pub = key.public_key()
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert keys.cosign_hint(pub) == base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert keys.model_signing_hint(pub) == hashlib.sha256(keys.public_key_pem(pub)).hexdigest()


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.PASSWORD_ENV, "pässword")
    assert keys.passphrase_from_env() == "pässword".encode()
    monkeypatch.setenv(keys.PASSWORD_ENV, "")
    assert keys.passphrase_from_env() is None
    monkeypatch.delenv(keys.PASSWORD_ENV)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    assert keys.passphrase_from_env() is None
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    assert keys.passphrase_from_env(prompt=False) is None
    answers = iter(["one", "two"])
    monkeypatch.setattr(keys.getpass, "getpass", lambda prompt="": next(answers))
    with pytest.raises(ModelKitError, match=r"^passphrases do not match$"):
        keys.passphrase_from_env(confirm=True)
    monkeypatch.setattr(keys.getpass, "getpass", lambda prompt="": "same")
    assert keys.passphrase_from_env(confirm=True) == b"same"


# --------------------------------------------------------------------------- DSSE / bundles


def test_pae_vector() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # lengths are byte lengths, not character counts
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


@pytest.mark.parametrize("style", ["none", "model_signing", "cosign"])
def test_bundle_round_trip(key, style: str) -> None:
    st = _stmt()
    bundle = dsse.sign_bundle(st, key, hint=style)
    doc = json.loads(bundle)
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert doc["verificationMaterial"]["tlogEntries"] == []
    env = doc["dsseEnvelope"]
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert env["signatures"] == [{"sig": env["signatures"][0]["sig"], "keyid": ""}]
    assert base64.b64decode(env["payload"]) == json.dumps(st, separators=(",", ":")).encode()
    hint = doc["verificationMaterial"]["publicKey"].get("hint")
    expected = {"none": None, "model_signing": keys.model_signing_hint, "cosign": keys.cosign_hint}[style]
    assert hint == (expected(key.public_key()) if expected else None)
    # the signature is DER (what model_signing and sigstore-go require), not raw r||s
    decode_dss_signature(base64.b64decode(env["signatures"][0]["sig"]))
    got, by = dsse.verify_bundle(bundle, [key.public_key()])
    assert got == st and keys.key_id(by) == keys.key_id(key.public_key())


def test_bundle_any_trusted_key_and_pem_inputs(key, other_key) -> None:
    bundle = dsse.sign_bundle(_stmt(), key)
    pem = keys.public_key_pem(key.public_key())
    _, by = dsse.verify_bundle(bundle, [other_key.public_key(), pem])
    assert keys.key_id(by) == keys.key_id(key.public_key())


def test_bundle_urlsafe_base64_accepted(key) -> None:
    def urlsafe(doc):
        env = doc["dsseEnvelope"]
        for obj, field in ((env, "payload"), (env["signatures"][0], "sig")):
            raw = base64.b64decode(obj[field])
            obj[field] = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    bundle = _edit_bundle(dsse.sign_bundle(_stmt(), key), urlsafe)
    assert dsse.verify_bundle(bundle, [key.public_key()])[0] == _stmt()


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    ],
)
def test_bundle_media_type_spellings(key, media_type: str) -> None:
    bundle = _edit_bundle(dsse.sign_bundle(_stmt(), key), lambda d: d.update(mediaType=media_type))
    dsse.verify_bundle(bundle, [key.public_key()])


def _flip_payload_byte(doc: dict) -> None:
    raw = bytearray(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    raw[raw.index(b"cd")] = ord("e")
    doc["dsseEnvelope"]["payload"] = base64.b64encode(bytes(raw)).decode()


def _flip_sig(doc: dict) -> None:
    raw = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()


def _raw_rs(doc: dict) -> None:
    r, s = decode_dss_signature(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(
        r.to_bytes(32, "big") + s.to_bytes(32, "big")
    ).decode()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_flip_payload_byte, "DSSE signature does not verify with any of the 1 trusted key"),
        (_flip_sig, "DSSE signature does not verify"),
        (_raw_rs, "DSSE signature does not verify"),
        (lambda d: d.update(mediaType="application/vnd.dev.sigstore.bundle.v0.4+json"), "mediaType"),
        (lambda d: d.update(mediaType="application/json"), "not a Sigstore bundle"),
        (
            lambda d: d["dsseEnvelope"].update(payloadType="application/json"),
            "DSSE payloadType is 'application/json'",
        ),
        (
            lambda d: d["dsseEnvelope"]["signatures"].append(d["dsseEnvelope"]["signatures"][0]),
            "exactly one signature",
        ),
        (lambda d: d["dsseEnvelope"].update(signatures=[]), "exactly one signature (has 0)"),
        (lambda d: d.update(messageSignature=d.pop("dsseEnvelope")), "messageSignature, not a DSSE envelope"),
        (lambda d: d["dsseEnvelope"].update(payload="!!!"), "DSSE payload is not valid base64"),
    ],
)
def test_bundle_tamper_fails(key, edit, message: str) -> None:
    bundle = _edit_bundle(dsse.sign_bundle(_stmt(), key), edit)
    with pytest.raises(VerificationError) as ei:
        dsse.verify_bundle(bundle, [key.public_key()])
    assert message in str(ei.value) and "\n" not in str(ei.value)


def test_bundle_wrong_key_and_no_key(key, other_key) -> None:
    bundle = dsse.sign_bundle(_stmt(), key)
    with pytest.raises(VerificationError, match="does not verify with any of the 1 trusted key"):
        dsse.verify_bundle(bundle, [other_key.public_key()])
    with pytest.raises(VerificationError, match="no trusted public keys configured"):
        dsse.verify_bundle(bundle, [])


def _sign_raw_payload(key, body: bytes) -> bytes:
    sig = key.sign(dsse.pae(dsse.PAYLOAD_TYPE, body), ec.ECDSA(hashes.SHA256()))
    env = {"payload": base64.b64encode(body).decode(), "payloadType": dsse.PAYLOAD_TYPE}
    env["signatures"] = [{"sig": base64.b64encode(sig).decode()}]
    return json.dumps({"mediaType": dsse.BUNDLE_MEDIA_TYPE, "dsseEnvelope": env}).encode()


def test_validly_signed_but_ambiguous_or_wrong_payloads_rejected(key) -> None:
    pk = [key.public_key()]
    # duplicate keys: parsers disagree on which one wins, so reject outright
    dup = b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"00"}}],'
    dup += b'"predicateType":"a","predicateType":"b","predicate":{}}'
    with pytest.raises(VerificationError, match="duplicate key 'predicateType'"):
        dsse.verify_bundle(_sign_raw_payload(key, dup), pk)
    with pytest.raises(VerificationError, match="not an in-toto Statement v1"):
        dsse.verify_bundle(_sign_raw_payload(key, b'{"_type":"x"}'), pk)
    no_digest = b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x"}],"predicateType":"p"}'
    with pytest.raises(VerificationError, match="subject 0 has no digest"):
        dsse.verify_bundle(_sign_raw_payload(key, no_digest), pk)
    with pytest.raises(VerificationError, match="signed payload is not valid JSON"):
        dsse.verify_bundle(_sign_raw_payload(key, b"not json"), pk)


# --------------------------------------------------------------------------- cosign formats


def test_simple_signing_payload_exact_bytes() -> None:
    payload = cosign.simple_signing_payload(REFERENCE, DIGEST)
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"registry.example.com/org/my-modelkit"},'
        b'"image":{"docker-manifest-digest":"sha256:' + b"ab" * 32 + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    # the reference's layer descriptor for this payload: size 252, digest c6d83cea…
    assert len(payload) == 252
    assert (
        hashlib.sha256(payload).hexdigest()
        == "c6d83cea129fd504725e5e2c30fbdd667bedf64efb66ce696964f0a53707adda"
    )


def test_signature_image_matches_reference() -> None:
    payload = cosign.simple_signing_payload(REFERENCE, DIGEST)
    sig = "MEYCIQCqqOtcnzMeX5XPZzjxBT3f1eTccTRGXloyidovUDr5ywIhAKBrHkMALo/6Mz0XaqtnqS2/U3grp4MQtspXcXYrYuh0"
    manifest, config = cosign.signature_image(payload, sig)
    assert len(config) == 233
    assert (
        hashlib.sha256(config).hexdigest()
        == "9214934d9bc7fd6fb368eac64c65cfc452a70830db488e8dc51948eaf26751ed"
    )
    m = json.loads(manifest)
    assert list(m) == ["schemaVersion", "mediaType", "config", "layers"]
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": 233,
        "digest": "sha256:9214934d9bc7fd6fb368eac64c65cfc452a70830db488e8dc51948eaf26751ed",
    }
    assert m["layers"] == [
        {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "size": 252,
            "digest": "sha256:c6d83cea129fd504725e5e2c30fbdd667bedf64efb66ce696964f0a53707adda",
            "annotations": {"dev.cosignproject.cosign/signature": sig},
        }
    ]
    assert b" " not in manifest and b" " not in config


def test_signature_image_appends_like_cosign(key, other_key) -> None:
    payload = cosign.simple_signing_payload(REFERENCE, DIGEST)
    s1, s2 = cosign.sign_simple(payload, key), cosign.sign_simple(payload, other_key)
    m1, _ = cosign.signature_image(payload, s1)
    m2, c2 = cosign.signature_image(payload, s2, previous_manifest=m1)
    assert [x["signature"] for x in cosign.signature_layers(m2)] == [s1, s2]
    assert len(json.loads(c2)["rootfs"]["diff_ids"]) == 2 == len(json.loads(c2)["history"])
    assert cosign.signature_image(payload, s2, previous_manifest=m2)[0] == m2  # idempotent


def test_simple_signature_round_trip_and_tamper(key, other_key) -> None:
    payload = cosign.simple_signing_payload(REFERENCE, DIGEST)
    sig = cosign.sign_simple(payload, key)
    decode_dss_signature(base64.b64decode(sig))  # DER
    cosign.verify_simple(payload, sig, [other_key.public_key(), key.public_key()], DIGEST)
    other_digest = "sha256:" + "cd" * 32
    with pytest.raises(
        VerificationError, match=f"cosign signature is for 'sha256:abab.*not for manifest {other_digest}"
    ):
        cosign.verify_simple(payload, sig, [key.public_key()], other_digest)
    with pytest.raises(VerificationError, match="does not verify with any of the 1 trusted key"):
        cosign.verify_simple(payload, sig, [other_key.public_key()], DIGEST)
    tampered = payload.replace(b"abab", b"abac", 1)
    with pytest.raises(VerificationError, match="does not verify"):
        cosign.verify_simple(tampered, sig, [key.public_key()], DIGEST)
    bad_type = payload.replace(b"cosign container image signature", b"something else")
    with pytest.raises(VerificationError, match="payload type is 'something else'"):
        cosign.verify_simple(bad_type, cosign.sign_simple(bad_type, key), [key.public_key()], DIGEST)


def test_tags() -> None:
    hexd = "ab" * 32
    assert cosign.sig_tag(DIGEST) == f"sha256-{hexd}.sig"
    assert cosign.att_tag(DIGEST) == f"sha256-{hexd}.att"
    assert referrers_tag(DIGEST) == f"sha256-{hexd}"  # the store layer's tag-schema tag
    with pytest.raises(ModelKitError):
        cosign.sig_tag("sha256:xyz")


def test_bundle_referrer_manifest_and_cosign_statement(key) -> None:
    st = cosign.cosign_sign_statement(DIGEST)
    assert st == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    bundle = dsse.sign_bundle(st, key)
    created = "2026-11-25T23:46:06Z"
    manifest = cosign.bundle_referrer_manifest(
        bundle,
        "application/vnd.oci.image.manifest.v1+json",
        DIGEST,
        1234,
        cosign.COSIGN_SIGN_PREDICATE,
        created,
    )
    m = json.loads(manifest)
    assert m["schemaVersion"] == 2 and m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert m["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "size": 2,
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    }
    assert m["layers"] == [
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "size": len(bundle),
            "digest": "sha256:" + hashlib.sha256(bundle).hexdigest(),
        }
    ]
    assert m["subject"] == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 1234,
        "digest": DIGEST,
    }
    assert m["annotations"] == {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
        "org.opencontainers.image.created": created,
    }
    verified, _ = dsse.verify_bundle(bundle, [key.public_key()])
    assert dsse.subject_digests(verified) == [DIGEST.split(":")[1]]


def test_fallback_index_copies_annotations_and_dedupes(key) -> None:
    def ref(created: str) -> bytes:
        b = dsse.sign_bundle(cosign.cosign_sign_statement(DIGEST), key)
        mt = "application/vnd.oci.image.manifest.v1+json"
        return cosign.bundle_referrer_manifest(b, mt, DIGEST, 10, cosign.COSIGN_SIGN_PREDICATE, created)

    def add(index: bytes | None, manifest: bytes) -> bytes:  # what every store does on a referrer PUT
        mt = "application/vnd.oci.image.manifest.v1+json"
        return merge_referrers_index(json.loads(index) if index else {}, referrer_descriptor(manifest, mt))

    m1, m2 = ref("2026-01-01T00:00:00Z"), ref("2026-01-02T00:00:00Z")
    idx = add(add(None, m1), m2)
    assert add(idx, m1) == idx
    doc = json.loads(idx)
    assert doc["mediaType"] == "application/vnd.oci.image.index.v1+json"
    digests = [d["digest"] for d in doc["manifests"]]
    assert digests == sorted(digests) and len(digests) == 2
    for d in doc["manifests"]:
        assert d["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        assert set(d["annotations"]) == {
            "dev.sigstore.bundle.content",
            "dev.sigstore.bundle.predicateType",
            "org.opencontainers.image.created",
        }


# --------------------------------------------------------------------------- OMS


def test_oms_statement_shape_and_order() -> None:
    names = ["a.txt", "a-b", "B", "a/b"]
    files = [(n, hashlib.sha256(n.encode()).hexdigest()) for n in names]
    st = oms.oms_statement(files, "mymodel", ignore_paths=["logs"])
    res = st["predicate"]["resources"]
    assert [r["name"] for r in res] == ["B", "a/b", "a-b", "a.txt"]  # component-wise, like model_signing
    assert all(r["algorithm"] == "sha256" for r in res)
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in res)).hexdigest()
    assert st["subject"] == [{"name": "mymodel", "digest": {"sha256": root}}]
    assert st["predicateType"] == "https://model_signing/signature/v1.0"
    assert st["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore", "model.sig", "logs"],
    }


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([("../x", "00" * 32)], "invalid model file path '../x'"),
        ([("/abs", "00" * 32)], "invalid model file path '/abs'"),
        ([("a//b", "00" * 32)], "invalid model file path"),
        ([("x", "00" * 32), ("x", "11" * 32)], "listed twice"),
        ([("x", "XYZ")], "invalid sha256 digest"),
        ([(".github/workflows/ci.yml", "00" * 32)], "under an ignored path"),
        ([], "at least one file"),
    ],
)
def test_oms_statement_rejects(files, message: str) -> None:
    with pytest.raises(ModelKitError, match=message.replace("(", r"\(")):
        oms.oms_statement(files, "m")


def test_oms_round_trip_and_ignores(tmp_path: Path, key) -> None:
    m = _model(tmp_path)
    sig = _sign_dir(m, key)
    pub = [key.public_key()]
    oms.verify_oms(sig.read_bytes(), str(m), pub)
    names = [n for n, _ in oms.hash_model_dir(str(m))]
    assert ".git/HEAD" not in names and ".gitignore" not in names and "model.sig" not in names
    assert "empty" in names  # empty files are items in the files method
    # changes under ignored paths do not matter
    (m / ".git" / "HEAD").write_text("changed\n")
    (m / ".gitignore").write_text("changed\n")
    oms.verify_oms(sig.read_bytes(), str(m), pub)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda m: (m / "sub" / "tokenizer.txt").write_text("evil\n"), "file 'sub/tokenizer.txt' in "),
        (lambda m: (m / "extra.pkl").write_bytes(b"x"), "extra file 'extra.pkl' in "),
        (lambda m: (m / "a" / "b").unlink(), "file 'a/b' is missing from "),
        (lambda m: (m / "empty").write_bytes(b"\0"), "file 'empty' in "),
    ],
)
def test_oms_tamper_names_the_file(tmp_path: Path, key, tamper, message: str) -> None:
    m = _model(tmp_path)
    sig = _sign_dir(m, key)
    tamper(m)
    with pytest.raises(VerificationError) as ei:
        oms.verify_oms(sig.read_bytes(), str(m), [key.public_key()])
    assert message in str(ei.value) and "\n" not in str(ei.value)


def test_oms_reports_first_of_many(tmp_path: Path, key) -> None:
    m = _model(tmp_path)
    sig = _sign_dir(m, key)
    (m / "B").write_text("changed")
    (m / "zzz").write_text("new")
    with pytest.raises(
        VerificationError, match=r"file 'B' in .* changed: sha256 \w+…, signed \w+… \(and 1 more\)"
    ):
        oms.verify_oms(sig.read_bytes(), str(m), [key.public_key()])


def test_oms_wrong_key_and_tampered_statement(tmp_path: Path, key, other_key) -> None:
    m = _model(tmp_path)
    sig = _sign_dir(m, key)
    with pytest.raises(VerificationError, match="does not verify"):
        oms.verify_oms(sig.read_bytes(), str(m), [other_key.public_key()])

    def drop_resource(doc):
        st = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        st["predicate"]["resources"].pop()
        doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()

    with pytest.raises(VerificationError, match="does not verify"):
        oms.verify_oms(_edit_bundle(sig.read_bytes(), drop_resource), str(m), [key.public_key()])


def test_oms_inconsistent_root_digest_rejected(tmp_path: Path, key) -> None:
    m = _model(tmp_path)
    st = oms.oms_statement(oms.hash_model_dir(str(m)), "model")
    st["subject"][0]["digest"]["sha256"] = "00" * 32
    bundle = dsse.sign_bundle(st, key, hint="model_signing")  # validly signed, inconsistent
    with pytest.raises(VerificationError, match="OMS manifest is inconsistent"):
        oms.verify_oms(bundle, str(m), [key.public_key()])


def test_oms_rejects_other_predicates(tmp_path: Path, key) -> None:
    m = _model(tmp_path)
    bundle = dsse.sign_bundle(cosign.cosign_sign_statement(DIGEST), key)
    with pytest.raises(VerificationError, match=r"not an OMS v1\.0 signature"):
        oms.verify_oms(bundle, str(m), [key.public_key()])


def test_oms_refuses_symlinks(tmp_path: Path, key) -> None:
    m = _model(tmp_path)
    sig = _sign_dir(m, key)
    (m / "link").symlink_to(m / "config.json")
    with pytest.raises(ModelKitError, match="'link' is a symbolic link"):
        oms.hash_model_dir(str(m))
    with pytest.raises(VerificationError, match="'link' is a symbolic link"):
        oms.verify_oms(sig.read_bytes(), str(m), [key.public_key()])


def test_signable_files_drops_ignored_paths(key) -> None:
    files = [
        (".gitignore", "00" * 32),
        (".github/x.yml", "11" * 32),
        ("model.sig", "22" * 32),
        ("w", "33" * 32),
    ]
    kept = oms.signable_files(files, ignore_paths=["logs"]) + oms.signable_files([("logs/a", "44" * 32)])
    assert kept == [("w", "33" * 32), ("logs/a", "44" * 32)]
    assert oms.signable_files([("logs/a", "44" * 32)], ignore_paths=["logs"]) == []
    _sign_oms(oms.signable_files(files), key)


def test_verify_oms_files_before_writing(tmp_path: Path, key) -> None:
    m = _model(tmp_path)
    files = oms.hash_model_dir(str(m))
    bundle = _sign_oms(files, key)
    st = oms.verify_oms_files(bundle, files, [key.public_key()])
    assert st["predicateType"] == oms.OMS_PREDICATE
    changed = [(n, "ff" * 32 if n == "weights.bin" else d) for n, d in files]
    with pytest.raises(VerificationError, match=r"file 'weights\.bin' in the model changed"):
        oms.verify_oms_files(bundle, changed, [key.public_key()])


# --------------------------------------------------------------------------- the real OpenSSF verifier
# model-signing 1.1.1 (and pyopenssl, which it imports without declaring) are in the ``test`` extra:
# without them these cross-checks fail with the reason, never skip, so interop is never silently untested.

MODEL_SIGNING = Path(sys.executable).parent / "model_signing"


def _model_signing_missing() -> str | None:
    if not MODEL_SIGNING.exists():
        return f"{MODEL_SIGNING} not installed: pip install -e '.[test]' (model-signing==1.1.1, pyopenssl)"
    try:
        importlib.import_module("model_signing")
    except ImportError as e:  # 1.1.1 imports OpenSSL without declaring pyopenssl
        return f"model_signing cannot be imported ({e}): pip install -e '.[test]' (pyopenssl)"
    return None


@pytest.fixture(scope="module")
def model_signing_cli() -> Path:
    """The real ``model_signing`` CLI; a missing one fails the test that needs it."""
    missing = _model_signing_missing()
    if missing is not None:
        pytest.fail(f"the model_signing interop checks cannot run: {missing}", pytrace=False)
    return MODEL_SIGNING


def _ms(*args: str) -> subprocess.CompletedProcess:
    missing = _model_signing_missing()
    assert missing is None, missing
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_MODELKIT_")}
    return subprocess.run(
        [str(MODEL_SIGNING), *args], capture_output=True, text=True, timeout=180, env=env, check=False
    )


def _ms_verify(m: Path, pub: Path, sig: Path | None = None) -> subprocess.CompletedProcess:
    sig = sig or m / "model.sig"
    return _ms("verify", "key", str(m), "--signature", str(sig), "--public_key", str(pub))


@pytest.fixture()
def keypair(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    priv, pub = keys.generate_keypair(str(tmp_path / "keys"), PASSWORD)
    return keys.load_private_key(priv, PASSWORD), Path(pub)


def test_model_signing_accepts_our_oms_bundle(tmp_path: Path, keypair, model_signing_cli) -> None:
    k, pub = keypair
    m = _model(tmp_path)
    _sign_dir(m, k)
    r = _ms_verify(m, pub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verification succeeded" in r.stdout + r.stderr
    assert "WARNING" not in r.stdout + r.stderr  # our hint is model_signing's own format


@pytest.mark.parametrize(
    ("tamper", "expect"),
    [
        (lambda m: (m / "weights.bin").write_bytes(b"HELLO weights\n"), "Hash mismatch for"),
        (lambda m: (m / "extra.txt").write_text("x"), "Extra files"),
        (lambda m: (m / "sub" / "tokenizer.txt").unlink(), "Missing files"),
    ],
)
def test_model_signing_rejects_tampered_tree(
    tmp_path: Path, keypair, tamper, expect: str, model_signing_cli
) -> None:
    k, pub = keypair
    m = _model(tmp_path)
    _sign_dir(m, k)
    tamper(m)
    r = _ms_verify(m, pub)
    assert r.returncode == 1, r.stdout + r.stderr
    assert expect in r.stdout + r.stderr
    with pytest.raises(VerificationError):
        oms.verify_oms((m / "model.sig").read_bytes(), str(m), [keys.load_public_key(str(pub))])


def test_model_signing_rejects_wrong_key(tmp_path: Path, keypair, model_signing_cli) -> None:
    k, _ = keypair
    m = _model(tmp_path)
    _sign_dir(m, k)
    _, other_pub = keys.generate_keypair(str(tmp_path / "other"), None)
    r = _ms_verify(m, Path(other_pub))
    assert r.returncode == 1, r.stdout + r.stderr


def test_model_signing_accepts_hintless_bundle(tmp_path: Path, keypair, model_signing_cli) -> None:
    """A bundle with no hint (the form cosign-side verifiers also accept) passes, with a warning."""
    k, pub = keypair
    m = _model(tmp_path)
    st = oms.oms_statement(oms.hash_model_dir(str(m)), m.name)
    (m / "model.sig").write_bytes(dsse.sign_bundle(st, k, hint="none"))
    r = _ms_verify(m, pub)
    assert r.returncode == 0, r.stdout + r.stderr


def test_we_verify_model_signing_output_and_share_its_root_digest(tmp_path: Path, model_signing_cli) -> None:
    priv, pub = keys.generate_keypair(str(tmp_path / "plain"), None)  # 1.1.1's --password is broken
    m = _model(tmp_path)
    sig = tmp_path / "upstream.sig"
    r = _ms("sign", "key", str(m), "--signature", str(sig), "--private_key", priv)
    assert r.returncode == 0, r.stdout + r.stderr
    oms.verify_oms(sig.read_bytes(), str(m), [pub])
    upstream, _ = dsse.verify_bundle(sig.read_bytes(), [pub])
    ours = oms.oms_statement(oms.hash_model_dir(str(m)), m.name)
    assert upstream["subject"] == ours["subject"]
    assert [r["name"] for r in upstream["predicate"]["resources"]] == [
        r["name"] for r in ours["predicate"]["resources"]
    ]
    (m / "config.json").write_text("{}")
    with pytest.raises(VerificationError, match=r"file 'config\.json'"):
        oms.verify_oms(sig.read_bytes(), str(m), [pub])


def _signed_kit(tmp_path: Path, k) -> tuple[Path, bytes]:
    """A model tree (with the Kitfile unpack writes) signed through :class:`Signer` into an ``oci:``
    layout; returns the tree and the model_signing bundle read back from the kit's referrers."""
    m = _model(tmp_path)
    repo = LayoutRepository(str(tmp_path / "layout"), create=True)
    repo.push_bytes(EMPTY_JSON, OCI_EMPTY)
    data = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [],
        }
    ).encode()
    kit = Descriptor(OCI_MANIFEST, repo.put_manifest(data, OCI_MANIFEST, tag="v1"), len(data))
    (m / "Kitfile").write_text("manifestVersion: 1.0.0\n")  # unpack writes it; the bundle ignores it
    Signer(k).attest(repo, kit, "model_signing", oms.hash_model_dir(str(m)), name=m.name)
    (att,) = attach.list_attachments(repo, kit.digest)
    assert att.kind == "model_signing"
    return m, att.bundle


def test_model_signing_accepts_the_signers_kit_bundle(tmp_path: Path, keypair, model_signing_cli) -> None:
    """What ``Signer.attest(..., "model_signing", ...)`` attaches is what ``unpack`` writes as model.sig."""
    k, pub = keypair
    m, bundle = _signed_kit(tmp_path, k)
    (m / "model.sig").write_bytes(bundle)
    r = _ms_verify(m, pub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stdout + r.stderr
    oms.verify_oms(bundle, str(m), [pub.read_text()])
    (m / "config.json").write_text('{"k": 2}\n')
    r = _ms_verify(m, pub)
    assert r.returncode == 1 and "Hash mismatch for" in r.stdout + r.stderr, r.stdout + r.stderr


NOT_INTEROP = {
    "test_model_signing_pinned_in_test_extras",
    "test_model_signing_cross_checks_cannot_be_skipped",
}


def test_model_signing_cross_checks_cannot_be_skipped() -> None:
    """model_signing is installed, and every interop test takes the fixture that fails without it."""
    assert _model_signing_missing() is None, _model_signing_missing()
    interop = [
        (name, fn)
        for name, fn in globals().items()
        if name.startswith(("test_model_signing_", "test_we_verify_model_signing"))
        and name not in NOT_INTEROP
    ]
    assert len(interop) >= 6
    for name, fn in interop:
        assert "model_signing_cli" in fn.__code__.co_varnames[: fn.__code__.co_argcount], name
        assert not [m for m in getattr(fn, "pytestmark", []) if m.name in ("skip", "skipif")], name


def test_model_signing_pinned_in_test_extras() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("no pyproject.toml beside the tests")
    import tomllib

    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["test"]
    assert "model-signing==1.1.1" in extras
    assert any(x.lower().startswith("pyopenssl") for x in extras)
