"""One Signer, one Verifier: every attestation kind written into a real ``oci:`` layout and read back.

The formats themselves are pinned in ``test_trust_formats.py`` (and by the real ``model_signing``
CLI there); here: that :class:`Signer` writes exactly those formats, that :class:`Verifier` accepts
them with the right key only, that tampering and mix-ups fail, and that ``harden.verify`` turns the
verifier's findings into its checks.
"""

from __future__ import annotations

import ast
import base64
import copy
import doctest
import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.verify import TrustPolicy, VerifyResult, verify_attachments
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.layout import LayoutRepository
from mlflow_plugin.storage.mediatypes import EMPTY_DIGEST, EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST
from mlflow_plugin.trust import attach, cosign, dsse, keys, oms, signer
from mlflow_plugin.trust.signer import KINDS, LEGACY, PREDICATE_BY_KIND, Signer, Verifier

SLSA = "https://slsa.dev/provenance/v1"
FILES = [("MLmodel", "11" * 32), ("model/model.skops", "22" * 32), ("Kitfile", "33" * 32)]


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _kit(repo: LayoutRepository, note: str = "kit") -> Descriptor:
    """A small manifest in ``repo`` (config = the empty blob, no layers) to attach things to."""
    repo.push_bytes(EMPTY_JSON, OCI_EMPTY)
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [],
        "annotations": {"note": note},
    }
    data = json.dumps(m).encode()
    return Descriptor(OCI_MANIFEST, repo.put_manifest(data, OCI_MANIFEST, tag="v1"), len(data))


@pytest.fixture
def repo(tmp_path: Path) -> LayoutRepository:
    return LayoutRepository(str(tmp_path / "layout"), create=True)


@pytest.fixture
def kit(repo: LayoutRepository) -> Descriptor:
    return _kit(repo)


def _provenance(digest: str, name: str = "oci:kit") -> dict[str, Any]:
    subject = [{"name": name, "digest": {"sha256": digest.split(":", 1)[1]}}]
    return dsse.statement(subject, SLSA, {"buildDefinition": {"buildType": "x"}, "runDetails": {}})


SCAN = {"summary": {"max_severity": None, "findings": 0}, "findings": []}
BOM = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}


def _evidence(digest: str) -> dict[str, tuple[Any, str | None]]:
    return {
        "provenance": (_provenance(digest), None),
        "scan": (SCAN, "oci:kit"),
        "sbom": (BOM, "oci:kit"),
        "model_signing": (FILES, "fraud"),
        "signature": (None, None),
    }


def _attest_all(s: Signer, repo: LayoutRepository, kit: Descriptor) -> dict[str, str]:
    out = {}
    for kind, (doc, name) in _evidence(kit.digest).items():
        out[kind] = s.attest(repo, kit, kind, doc, name=name)
    return out


def _bundle_of(repo: LayoutRepository, referrer: str) -> tuple[dict[str, Any], bytes]:
    m = json.loads(repo.get_manifest(referrer)[0])
    layer = m["layers"][0]
    return m, repo.read_blob(layer["digest"], layer["size"])


def _payload(bundle: bytes) -> bytes:
    return base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])


def _forge(bundle: bytes, edit) -> bytes:
    """The bundle with its statement edited and the signature kept."""
    doc = json.loads(bundle)
    st = json.loads(_payload(bundle))
    edit(st)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    return json.dumps(doc).encode()


def test_docstring_example_runs() -> None:
    result = doctest.testmod(signer, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.failed == 0 and result.attempted >= 15


# --------------------------------------------------------------------------- the Signer


def test_attest_every_kind_and_verify(repo: LayoutRepository, kit: Descriptor, key) -> None:
    s = Signer(key)
    referrers = _attest_all(s, repo, kit)
    s.legacy_signature(repo, "registry.example.com/team/kit", kit.digest)
    assert set(referrers) == set(KINDS)
    found = Verifier([key.public_key()]).check(repo, kit.digest)
    assert sorted(found.verified) == sorted([*KINDS, LEGACY])
    assert found.failures == {} and found.notes == []
    assert found.has(*KINDS, LEGACY) and not found.has("nonsense")
    hexd = kit.digest.split(":", 1)[1]
    assert found.verified["scan"]["subject"] == [{"name": "oci:kit", "digest": {"sha256": hexd}}]
    assert found.verified["scan"]["predicate"] == SCAN
    assert found.verified["sbom"]["predicate"] == BOM
    assert found.verified["provenance"] == _provenance(kit.digest)
    assert found.verified["signature"] == cosign.cosign_sign_statement(kit.digest)
    oms_st = found.verified["model_signing"]
    assert oms_st["subject"][0]["name"] == "fraud"
    assert [r["name"] for r in oms_st["predicate"]["resources"]] == ["MLmodel", "model/model.skops"]
    assert oms_st["predicate"]["serialization"]["ignore_paths"][-1] == "Kitfile"
    assert found.verified[LEGACY]["critical"]["image"]["docker-manifest-digest"] == kit.digest
    # the referrers are what list_attachments (and cosign, model_signing) find
    listed = {a.kind: a.manifest_digest for a in attach.list_attachments(repo, kit.digest)}
    assert listed == referrers


def test_formats_are_the_documented_ones(repo: LayoutRepository, kit: Descriptor, key) -> None:
    """Byte for byte what the format functions build (the signatures aside, which are randomised)."""
    s = Signer(key)
    referrers = _attest_all(s, repo, kit)
    pub = key.public_key()
    hexd = kit.digest.split(":", 1)[1]
    subject = [{"name": "oci:kit", "digest": {"sha256": hexd}}]
    expected = {
        "provenance": _provenance(kit.digest),
        "scan": dsse.statement(subject, attach.PRED_SCAN, SCAN),
        "sbom": dsse.statement(subject, attach.PRED_SBOM, BOM),
        "signature": cosign.cosign_sign_statement(kit.digest),
        "model_signing": oms.oms_statement(
            oms.signable_files([(p, d) for p, d in FILES], ["Kitfile"]), "fraud", ignore_paths=["Kitfile"]
        ),
    }
    for kind, referrer in referrers.items():
        manifest, bundle = _bundle_of(repo, referrer)
        body = json.dumps(expected[kind], separators=(",", ":"), ensure_ascii=False).encode()
        assert _payload(bundle) == body, kind
        doc = json.loads(bundle)
        hint = keys.model_signing_hint(pub) if kind == "model_signing" else keys.cosign_hint(pub)
        assert doc["verificationMaterial"] == {"publicKey": {"hint": hint}, "tlogEntries": []}, kind
        assert list(doc) == ["mediaType", "verificationMaterial", "dsseEnvelope"]
        assert doc["dsseEnvelope"]["signatures"][0]["keyid"] == ""
        # the whole bundle is what sign_bundle writes around that signature
        resigned = json.loads(dsse.sign_bundle(expected[kind], key, hint=_hint_style(kind)))
        resigned["dsseEnvelope"]["signatures"] = doc["dsseEnvelope"]["signatures"]
        assert json.dumps(resigned, separators=(",", ":")).encode() == bundle, kind
        created = manifest["annotations"]["org.opencontainers.image.created"]
        again = cosign.bundle_referrer_manifest(
            bundle, OCI_MANIFEST, kit.digest, kit.size, PREDICATE_BY_KIND[kind], created
        )
        assert repo.get_manifest(referrer)[0] == again, kind


def _hint_style(kind: str) -> str:
    return "model_signing" if kind == "model_signing" else "cosign"


def test_legacy_signature_image(repo: LayoutRepository, kit: Descriptor, key, other_key) -> None:
    ref = "registry.example.com/team/kit"
    sig_digest = Signer(key).legacy_signature(repo, ref, kit.digest)
    data, _mt, digest = repo.get_manifest(cosign.sig_tag(kit.digest))
    assert digest == sig_digest
    payload = cosign.simple_signing_payload(ref, kit.digest)
    (layer,) = cosign.signature_layers(data)
    assert data == cosign.signature_image(payload, layer["signature"])[0]  # cosign's exact bytes
    assert repo.read_blob(layer["digest"], layer["size"]) == payload
    cosign.verify_simple(payload, layer["signature"], [key.public_key()], kit.digest)
    # a second signer appends (as cosign does) instead of erasing the first signature
    Signer(other_key).legacy_signature(repo, ref, kit.digest)
    data = repo.get_manifest(cosign.sig_tag(kit.digest))[0]
    assert [x["signature"] for x in cosign.signature_layers(data)][:1] == [layer["signature"]]
    assert len(cosign.signature_layers(data)) == 2
    for k in (key, other_key):
        assert Verifier([k.public_key()]).check(repo, kit.digest).has(LEGACY)
    stranger = Verifier([ec.generate_private_key(ec.SECP256R1()).public_key()]).check(repo, kit.digest)
    assert "does not verify" in stranger.failures[LEGACY]


def test_legacy_signature_replaces_an_unreadable_sig_image(
    repo: LayoutRepository, kit: Descriptor, key
) -> None:
    repo.put_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
                "layers": [],
            }
        ).encode(),
        OCI_MANIFEST,
        tag=cosign.sig_tag(kit.digest),
    )
    found = Verifier([key.public_key()]).check(repo, kit.digest)
    assert "no simple-signing signature" in found.failures[LEGACY]
    Signer(key).legacy_signature(repo, "r.example/k", kit.digest)
    assert Verifier([key.public_key()]).check(repo, kit.digest).has(LEGACY)


@pytest.mark.parametrize(
    ("kind", "given", "name", "message"),
    [
        ("attestation", {}, None, "unknown attestation kind 'attestation'"),
        ("signature", {"x": 1}, None, "covers the manifest digest only"),
        ("signature", None, "kit", "covers the manifest digest only"),
        ("scan", "report", None, "needs a predicate"),
        ("scan", None, None, "needs a predicate"),
        ("model_signing", {"files": []}, None, "needs the kit's"),
        ("model_signing", [("a", 1, "00" * 32)], None, r"\(path, sha256 hex\) pairs"),
        ("model_signing", [("../x", "00" * 32)], None, "invalid model file path"),
        ("model_signing", [("Kitfile", "00" * 32)], None, "at least one file"),
    ],
)
def test_attest_refuses_bad_input(
    repo: LayoutRepository, kit: Descriptor, key, kind: str, given: Any, name: str | None, message: str
) -> None:
    with pytest.raises(ModelKitError, match=message):
        Signer(key).attest(repo, kit, kind, given, name=name)
    assert attach.list_attachments(repo, kit.digest) == []  # nothing half-written


def test_attest_refuses_statements_it_should_not_sign(repo: LayoutRepository, kit: Descriptor, key) -> None:
    s = Signer(key)
    other = "sha256:" + "cd" * 32
    with pytest.raises(ModelKitError, match="about another artifact"):
        s.attest(repo, kit, "provenance", _provenance(other))
    with pytest.raises(ModelKitError, match=r"predicateType 'https://slsa\.dev/provenance/v1', not"):
        s.attest(repo, kit, "provenance", dsse.statement(_provenance(kit.digest)["subject"], "x:y", {}))
    with pytest.raises(ModelKitError, match="pass no name"):
        s.attest(repo, kit, "provenance", _provenance(kit.digest), name="kit")
    with pytest.raises(ModelKitError, match="in-toto Statement v1"):
        v01 = {**_provenance(kit.digest), "_type": "https://in-toto.io/Statement/v0.1"}
        s.attest(repo, kit, "provenance", v01)
    with pytest.raises(ModelKitError, match="subject 0 has no digest"):
        s.attest(repo, kit, "provenance", {**_provenance(kit.digest), "subject": [{"name": "x"}]})
    inconsistent = oms.oms_statement([("w.bin", "00" * 32)], "m")
    inconsistent["subject"][0]["digest"]["sha256"] = "11" * 32
    with pytest.raises(ModelKitError, match="OMS manifest is inconsistent"):
        s.attest(repo, kit, "model_signing", inconsistent)
    with pytest.raises(ModelKitError, match="sha256 manifest digests only"):
        s.attest(repo, Descriptor(OCI_MANIFEST, "sha512:" + "ab" * 64, 10), "scan", SCAN)
    assert attach.list_attachments(repo, kit.digest) == []
    # a whole statement of the right kind is signed as given (model_signing: any OMS statement)
    st = oms.oms_statement([("w.bin", "00" * 32)], "m")
    ref = s.attest(repo, kit, "model_signing", st)
    assert json.loads(_payload(_bundle_of(repo, ref)[1])) == st


def test_signer_keeps_its_key(tmp_path: Path, key, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Signer(key)
    assert s.key_id == keys.key_id(key.public_key()) and len(s.key_id) == 64
    assert keys.key_id(s.public_key) == s.key_id
    assert repr(s) == f"Signer(key_id={s.key_id[:16]}…)"
    assert [a for a in vars(s) if not a.startswith("_")] == []  # no public attribute holds the key
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(s)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(s)
    with pytest.raises(ModelKitError, match="ECDSA P-256"):
        Signer(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ModelKitError, match="ECDSA P-256"):
        Signer(key.public_key())  # type: ignore[arg-type]


def test_from_key_file_asks_for_a_passphrase_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, _ = keys.generate_keypair(str(tmp_path / "plain"), None)
    asked: list[int] = []

    def ask() -> bytes:
        asked.append(1)
        return b"pw-1234"

    assert len(Signer.from_key_file(plain, ask).key_id) == 64
    assert asked == []  # an unencrypted key never prompts
    enc, pub = keys.generate_keypair(str(tmp_path / "enc"), b"pw-1234")
    assert Signer.from_key_file(enc, ask).key_id == keys.key_id(keys.load_public_key(pub))
    assert asked == [1]
    assert Signer.from_key_file(enc, b"pw-1234").key_id == keys.key_id(keys.load_public_key(pub))
    monkeypatch.setenv(keys.PASSWORD_ENV, "pw-1234")
    assert Signer.from_key_file(enc).key_id == keys.key_id(keys.load_public_key(pub))
    monkeypatch.setenv(keys.PASSWORD_ENV, "wrong-5678")
    with pytest.raises(ModelKitError) as ei:
        Signer.from_key_file(enc)
    assert str(ei.value) == f"wrong passphrase for {enc}: set {keys.PASSWORD_ENV}"


# --------------------------------------------------------------------------- the Verifier


def test_verifier_inputs(tmp_path: Path, key, other_key) -> None:
    path = tmp_path / "k.pub"
    path.write_bytes(keys.public_key_pem(key.public_key()))
    pem = keys.public_key_pem(other_key.public_key())
    v = Verifier([str(path), pem, key])  # paths, PEM, even a private key (its public half)
    mine, theirs = keys.key_id(key.public_key()), keys.key_id(other_key.public_key())
    assert v.key_ids == [mine, theirs, mine]
    assert "Verifier(key_ids=[" in repr(v)
    with pytest.raises(ModelKitError, match="at least one trusted public key"):
        Verifier([])
    with pytest.raises(ModelKitError, match="not found"):
        Verifier([str(tmp_path / "missing.pub")])


def test_wrong_key_verifies_nothing(repo: LayoutRepository, kit: Descriptor, key, other_key) -> None:
    s = Signer(key)
    _attest_all(s, repo, kit)
    s.legacy_signature(repo, "r.example/k", kit.digest)
    found = Verifier([other_key.public_key()]).check(repo, kit.digest)
    assert found.verified == {}
    assert set(found.failures) == {*KINDS, LEGACY}
    for kind in KINDS:
        assert "does not verify with any of the 1 trusted key" in found.failures[kind], kind
    # either key of several is enough
    both = Verifier([other_key.public_key(), key.public_key()]).check(repo, kit.digest)
    assert both.has(*KINDS, LEGACY) and both.failures == {}


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_bundle_fails(repo: LayoutRepository, kit: Descriptor, key, kind: str) -> None:
    """A bundle whose statement was edited after signing (signature kept) never counts."""
    genuine = Signer(key).attest(repo, kit, kind, *_args(kit, kind))
    _manifest, bundle = _bundle_of(repo, genuine)

    def edit(st: dict[str, Any]) -> None:
        st["predicate"]["forged"] = "hidden training data"

    attach.attach_bundle(repo, kit, _forge(bundle, edit), PREDICATE_BY_KIND[kind])
    found = Verifier([key.public_key()]).check(repo, kit.digest)
    assert kind in found.verified and "forged" not in found.verified[kind]["predicate"]
    assert "DSSE signature does not verify" in found.failures[kind]
    # the forged one alone, on another kit: nothing verifies
    lone = _kit(repo, "lone")
    attach.attach_bundle(repo, lone, _forge(bundle, edit), PREDICATE_BY_KIND[kind])
    found = Verifier([key.public_key()]).check(repo, lone.digest)
    assert found.verified == {} and "does not verify" in found.failures[kind]


def _args(kit: Descriptor, kind: str) -> tuple[Any, ...]:
    doc, _name = _evidence(kit.digest)[kind]
    return (doc,)


def test_mixups_fail(repo: LayoutRepository, kit: Descriptor, key) -> None:
    """Validly signed by the trusted key, but about another kit or announced as another kind."""
    other = _kit(repo, "other")
    about_other = dsse.sign_bundle(cosign.cosign_sign_statement(other.digest), key, hint="cosign")
    attach.attach_bundle(repo, kit, about_other, attach.PRED_SIGN)
    scan_as_sbom = dsse.sign_bundle(
        dsse.statement([{"digest": {"sha256": kit.digest.split(":")[1]}}], attach.PRED_SCAN, SCAN), key
    )
    attach.attach_bundle(repo, kit, scan_as_sbom, attach.PRED_SBOM)
    inconsistent = oms.oms_statement([("w.bin", "00" * 32)], "m")
    inconsistent["subject"][0]["digest"]["sha256"] = "11" * 32
    attach.attach_bundle(repo, kit, dsse.sign_bundle(inconsistent, key), attach.PRED_OMS)
    found = Verifier([key.public_key()]).check(repo, kit.digest)
    assert found.verified == {}
    assert found.failures["signature"] == (
        "signature statement is about another artifact (subject digest mismatch)"
    )
    assert "does not match its annotation" in found.failures["sbom"]
    assert "OMS manifest is inconsistent" in found.failures["model_signing"]


def test_unusable_referrers_are_notes(repo: LayoutRepository, kit: Descriptor, key) -> None:
    Signer(key).attest(repo, kit, "signature")
    junk = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.other+json",
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": kit.digest, "size": kit.size},
    }
    repo.put_manifest(json.dumps(junk).encode(), OCI_MANIFEST)
    found = Verifier([key.public_key()]).check(repo, kit.digest)
    assert found.has("signature") and found.failures == {}
    assert len(found.notes) == 1 and "is not a Sigstore bundle" in found.notes[0]


def test_legacy_sig_tampered(repo: LayoutRepository, kit: Descriptor, key, other_key) -> None:
    """A ``.sig`` image whose payload claims another digest, or whose signature is another key's."""
    s = Signer(key)
    s.legacy_signature(repo, "r.example/k", kit.digest)
    other = _kit(repo, "other")
    # the other kit's genuine .sig copied under this kit's tag: the signed digest is not this one
    s.legacy_signature(repo, "r.example/k", other.digest)
    data = repo.get_manifest(cosign.sig_tag(other.digest))[0]
    repo.put_manifest(data, OCI_MANIFEST, tag=cosign.sig_tag(kit.digest))
    found = Verifier([key.public_key()]).check(repo, kit.digest)
    assert f"not for manifest {kit.digest}" in found.failures[LEGACY] and LEGACY not in found.verified
    # a payload for this kit signed by an untrusted key
    Signer(other_key).legacy_signature(repo, "r.example/k", kit.digest)
    found = Verifier([key.public_key()]).check(repo, kit.digest)
    assert LEGACY not in found.verified  # neither layer: one is about `other`, one is by other_key


# --------------------------------------------------------------------------- what harden.verify makes of it


def test_verify_attachments_checks(repo: LayoutRepository, kit: Descriptor, key, other_key) -> None:
    s = Signer(key)
    _attest_all(s, repo, kit)
    s.legacy_signature(repo, "r.example/k", kit.digest)
    policy = TrustPolicy(trusted_keys=[keys.public_key_pem(key.public_key())])
    result = VerifyResult("oci:kit", kit.digest)
    verify_attachments(repo, kit.digest, policy, result)
    assert result.ok, result.checks
    assert [c.name for c in result.checks] == [
        "signature",
        "legacy .sig",
        "attestation:provenance",
        "attestation:scan",
        "scan verdict",
        "model_signing bundle",
    ]
    assert result.provenance == _provenance(kit.digest) and result.scan == SCAN
    wrong = VerifyResult("oci:kit", kit.digest)
    verify_attachments(repo, kit.digest, TrustPolicy(trusted_keys=[other_key.public_key()]), wrong)
    assert {c.name for c in wrong.failures()} == {
        "signature",
        "legacy .sig",
        "attestation:provenance",
        "attestation:scan",
        "model_signing bundle",
    }
    none = VerifyResult("oci:kit", kit.digest)
    verify_attachments(repo, kit.digest, TrustPolicy(trusted_keys=[]), none)
    assert [(c.name, c.ok) for c in none.checks] == [("trusted keys", False)]


def test_publish_and_verify_use_only_signer_and_verifier() -> None:
    """The key handling lives in trust.signer: publish and verify import no lower signing module."""
    root = Path(__file__).resolve().parents[2] / "mlflow_plugin" / "harden"
    low = {f"mlflow_plugin.trust.{m}" for m in ("dsse", "cosign", "oms", "attach", "keys")}
    for name in ("publish.py", "verify.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse((root / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        assert not imported & low, (name, imported & low)
        assert "mlflow_plugin.trust.signer" in imported, name


def test_pem_file_from_keygen_round_trip(tmp_path: Path) -> None:
    priv, pub = keys.generate_keypair(str(tmp_path), None)
    s = Signer.from_key_file(priv)
    repo = LayoutRepository(str(tmp_path / "layout"), create=True)
    kit = _kit(repo)
    s.attest(repo, kit, "signature")
    assert Verifier([pub]).check(repo, kit.digest).has("signature")
    assert hashlib.sha256(Path(pub).read_bytes()).hexdigest() == keys.model_signing_hint(s.public_key)
    assert os.path.basename(priv) == keys.PRIVATE_KEY_NAME
