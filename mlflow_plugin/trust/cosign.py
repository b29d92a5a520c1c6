"""cosign's registry formats: legacy ``sha256-<hex>.sig`` simple signing, and bundle referrers.

Legacy (cosign <= v2.5, and the KitOps init container): an OCI image tagged
``sha256-<hex>.sig`` whose single layer is the simple-signing payload and whose layer
annotation ``dev.cosignproject.cosign/signature`` holds the base64 DER signature.
New (cosign v3 default): a Sigstore bundle v0.3 over the statement
``https://sigstore.dev/cosign/sign/v1`` pushed as an OCI 1.1 referrer of the kit manifest.

>>> sig_tag("sha256:" + "ab" * 32)
'sha256-abababababababababababababababababababababababababababababababab.sig'
>>> simple_signing_payload("registry.example.com/org/kit", "sha256:" + "ab" * 32)[:60]
b'{"critical":{"identity":{"docker-reference":"registry.exampl'
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mlflow_plugin._internal.gojson import Ordered, dumps
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.storage.descriptor import check_digest, sha256_digest
from mlflow_plugin.storage.mediatypes import EMPTY_DIGEST, EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST
from mlflow_plugin.trust import dsse
from mlflow_plugin.trust.dsse import VerificationError

SIMPLE_SIGNING_TYPE = "cosign container image signature"
SIMPLE_SIGNING_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
ANN_BUNDLE_CONTENT = "dev.sigstore.bundle.content"
ANN_BUNDLE_PREDICATE = "dev.sigstore.bundle.predicateType"
ANN_CREATED = "org.opencontainers.image.created"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
MAX_SIGNATURE_LAYERS = 1000


def _hex(manifest_digest: str) -> str:
    if not manifest_digest.startswith("sha256:"):
        raise ModelKitError(f"cosign signs sha256 manifest digests only, got {manifest_digest!r}")
    return check_digest(manifest_digest).split(":", 1)[1]


def sig_tag(manifest_digest: str) -> str:
    """The legacy signature tag of a manifest: ``sha256-<hex>.sig``.

    >>> sig_tag("sha512:00")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: cosign signs sha256 manifest digests only, got 'sha512:00'
    """
    return f"sha256-{_hex(manifest_digest)}.sig"


def att_tag(manifest_digest: str) -> str:
    """The legacy attestation tag of a manifest: ``sha256-<hex>.att``.

    >>> att_tag("sha256:" + "0" * 64)[-12:]
    '00000000.att'
    """
    return f"sha256-{_hex(manifest_digest)}.att"


def simple_signing_payload(docker_reference: str, manifest_digest: str) -> bytes:
    """The simple-signing payload exactly as cosign's Go ``json.Marshal`` writes it.

    >>> p = simple_signing_payload("registry.example.com/org/my-modelkit", "sha256:" + "ab" * 32)
    >>> len(p), sha256_digest(p)[:19]
    (252, 'sha256:c6d83cea129f')
    """
    check_digest(manifest_digest)
    return dumps(
        Ordered(
            critical=Ordered(
                identity=Ordered({"docker-reference": docker_reference}),
                image=Ordered({"docker-manifest-digest": manifest_digest}),
                type=SIMPLE_SIGNING_TYPE,
            ),
            optional=None,
        )
    )


def _descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> Ordered:
    """A descriptor in go-containerregistry's field order (mediaType, size, digest, annotations)."""
    d = Ordered(mediaType=media_type, size=len(data), digest=sha256_digest(data))
    if annotations:
        d["annotations"] = dict(annotations)
    return d


def signature_layers(manifest_bytes: bytes) -> list[dict[str, Any]]:
    """The layers of a ``.sig`` manifest as ``{"digest", "size", "signature"}`` dicts.

    >>> m, _ = signature_image(b"{}", "c2ln")
    >>> [x["signature"] for x in signature_layers(m)]
    ['c2ln']
    """
    m = dsse.strict_json(manifest_bytes, "signature manifest")
    layers = m.get("layers") if isinstance(m, dict) else None
    if not isinstance(layers, list):
        raise VerificationError("signature manifest has no layers")
    out = []
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING_LAYER:
            continue
        ann = layer.get("annotations") or {}
        out.append(
            {
                "digest": check_digest(layer.get("digest", "")),
                "size": layer.get("size"),
                "signature": ann.get(SIGNATURE_ANNOTATION, ""),
                "annotations": dict(ann),
            }
        )
    return out


def signature_image(
    payload: bytes, signature_b64: str, previous_manifest: bytes | None = None
) -> tuple[bytes, bytes]:
    """The ``.sig`` image for one signature: ``(manifest_bytes, config_bytes)``, as cosign writes them.

    One layer per signature (the payload blob, signature in the layer annotation); the config is
    go-containerregistry's dummy image config whose ``rootfs.diff_ids`` are the layer digests.
    With ``previous_manifest`` (the existing ``.sig`` manifest) the new layer is appended, as
    cosign does; a layer with the same payload and signature is not added twice.

    >>> m, c = signature_image(simple_signing_payload("r.example/k", "sha256:" + "ab" * 32), "c2ln")
    >>> c[:40]
    b'{"architecture":"","created":"0001-01-01'
    """
    new = _descriptor(SIMPLE_SIGNING_LAYER, payload, {SIGNATURE_ANNOTATION: signature_b64})
    layers: list[Ordered] = []
    if previous_manifest is not None:
        for old in signature_layers(previous_manifest):
            d = Ordered(mediaType=SIMPLE_SIGNING_LAYER, size=old["size"], digest=old["digest"])
            if old["annotations"]:
                d["annotations"] = old["annotations"]
            layers.append(d)
    if not any(d["digest"] == new["digest"] and d.get("annotations") == new["annotations"] for d in layers):
        layers.append(new)
    if len(layers) > MAX_SIGNATURE_LAYERS:
        raise ModelKitError(f"a .sig manifest holds at most {MAX_SIGNATURE_LAYERS} signatures")
    config = dumps(
        Ordered(
            architecture="",
            created=GO_ZERO_TIME,
            history=[Ordered(created=GO_ZERO_TIME) for _ in layers],
            os="",
            rootfs=Ordered(type="layers", diff_ids=[d["digest"] for d in layers]),
            config=Ordered(),
        )
    )
    manifest = dumps(
        Ordered(
            schemaVersion=2,
            mediaType=OCI_MANIFEST,
            config=_descriptor(OCI_CONFIG, config),
            layers=layers,
        )
    )
    return manifest, config


def sign_simple(payload: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """Sign a simple-signing payload: base64 of the DER ECDSA P-256/SHA-256 signature.

    >>> k = ec.generate_private_key(ec.SECP256R1())
    >>> p = simple_signing_payload("r.example/k", "sha256:" + "ab" * 32)
    >>> verify_simple(p, sign_simple(p, k), [k.public_key()], "sha256:" + "ab" * 32)
    """
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ModelKitError("signing needs an ECDSA P-256 private key")
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def verify_simple(payload: bytes, signature_b64: str, public_keys: list, manifest_digest: str) -> None:
    """Verify a legacy cosign signature and its claims, as cosign's ``SimpleClaimVerifier`` does.

    Checks the signature with any trusted key, ``critical.type`` and that
    ``critical.image.docker-manifest-digest`` equals ``manifest_digest``; raises
    :class:`VerificationError` otherwise. ``docker-reference`` is not checked (cosign ignores it).

    >>> verify_simple(b"{}", "c2ln", [], "sha256:" + "ab" * 32)
    Traceback (most recent call last):
    ...
    mlflow_plugin.trust.dsse.VerificationError: no trusted public keys configured: cannot verify the signature
    """
    sig = dsse.b64decode_any(signature_b64, "cosign signature")
    trusted = dsse.as_public_keys(public_keys)
    if not trusted:
        raise VerificationError("no trusted public keys configured: cannot verify the signature")
    if dsse.verify_der(trusted, payload, sig) is None:
        raise VerificationError(
            f"cosign signature does not verify with any of the {len(trusted)} trusted key(s)"
        )
    doc = dsse.strict_json(payload, "simple-signing payload")
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != SIMPLE_SIGNING_TYPE:
        got = critical.get("type") if isinstance(critical, dict) else None
        raise VerificationError(f"simple-signing payload type is {got!r}, expected {SIMPLE_SIGNING_TYPE!r}")
    image = critical.get("image")
    signed = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if signed != manifest_digest:
        raise VerificationError(f"cosign signature is for {signed!r}, not for manifest {manifest_digest}")


def cosign_sign_statement(manifest_digest: str) -> dict:
    """The statement ``cosign sign`` (v3) signs: subject = the manifest digest, no name, empty predicate.

    >>> cosign_sign_statement("sha256:" + "ab" * 32)["subject"] == [{"digest": {"sha256": "ab" * 32}}]
    True
    """
    return dsse.statement([{"digest": {"sha256": _hex(manifest_digest)}}], COSIGN_SIGN_PREDICATE, {})


def _bundle_content_kind(bundle: bytes) -> str:
    doc = dsse.strict_json(bundle, "bundle")
    if isinstance(doc, dict) and "dsseEnvelope" in doc:
        return "dsse-envelope"
    if isinstance(doc, dict) and "messageSignature" in doc:
        return "message-signature"
    raise ModelKitError("bundle has neither a dsseEnvelope nor a messageSignature")


def bundle_referrer_manifest(
    bundle: bytes,
    subject_media_type: str,
    subject_digest: str,
    subject_size: int,
    predicate_type: str,
    created: str,
    layer: dict[str, Any] | None = None,
) -> bytes:
    """The OCI 1.1 referrer manifest that attaches a Sigstore bundle to a subject manifest.

    ``layer`` replaces the bundle's own descriptor (an encrypted kit attaches the bundle
    encrypted: ``…bundle.v0.3+json+encrypted`` with ocicrypt's annotations).

    ``artifactType`` bundle v0.3, config = the empty descriptor (upload the 2-byte ``{}`` blob
    too), one layer = the bundle blob, ``subject``, and the ``dev.sigstore.bundle.*`` and
    ``org.opencontainers.image.created`` annotations. PUT it by digest, never by tag.

    >>> m = bundle_referrer_manifest(b'{"dsseEnvelope":{}}', OCI_MANIFEST, "sha256:" + "ab" * 32, 1234,
    ...                              COSIGN_SIGN_PREDICATE, "2026-11-25T23:46:06Z")
    >>> m[:90]
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType"'
    """
    check_digest(subject_digest)
    if not isinstance(subject_size, int) or subject_size < 0:
        raise ModelKitError(f"invalid subject size {subject_size!r}")
    empty = Ordered(mediaType=OCI_EMPTY, size=len(EMPTY_JSON), digest=EMPTY_DIGEST)
    return dumps(
        Ordered(
            schemaVersion=2,
            mediaType=OCI_MANIFEST,
            artifactType=dsse.BUNDLE_MEDIA_TYPE,
            config=empty,
            layers=[Ordered(layer) if layer is not None else _descriptor(dsse.BUNDLE_MEDIA_TYPE, bundle)],
            subject=Ordered(mediaType=subject_media_type, size=subject_size, digest=subject_digest),
            annotations={
                ANN_BUNDLE_CONTENT: _bundle_content_kind(bundle),
                ANN_BUNDLE_PREDICATE: predicate_type,
                ANN_CREATED: created,
            },
        )
    )
