"""DSSE envelopes in Sigstore bundles (v0.3) with in-toto Statement v1 payloads, signed by a key.

>>> pae("http://example.com/HelloWorld", b"hello world")
b'DSSEv1 29 http://example.com/HelloWorld 11 hello world'
>>> st = statement([{"digest": {"sha256": "ab" * 32}}], "https://example.com/p/v1", {})
>>> st["_type"], st["predicateType"]
('https://in-toto.io/Statement/v1', 'https://example.com/p/v1')
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.trust import keys

PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
# every spelling of bundle v0.1-v0.3 that the Sigstore clients accept
ACCEPTED_BUNDLE_MEDIA_TYPES = frozenset(
    [f"application/vnd.dev.sigstore.bundle+json;version=0.{n}" for n in (1, 2, 3)]
    + [f"application/vnd.dev.sigstore.bundle.v0.{n}+json" for n in (1, 2, 3)]
)
HINT_STYLES = ("none", "model_signing", "cosign")


class VerificationError(ModelKitError):
    """A signature, bundle or signed statement does not verify; the message says why in one line."""


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 <len type> <type> <len body> <body>`` (byte lengths).

    >>> pae("t", b"")
    b'DSSEv1 1 t 0 '
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def statement(subjects: list[dict], predicate_type: str, predicate: dict) -> dict:
    """An in-toto Statement v1; every subject must carry a non-empty ``digest`` map.

    >>> statement([{"name": "m", "digest": {}}], "x", {})
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: in-toto subject 0 has no digest
    """
    if not subjects:
        raise ModelKitError("an in-toto statement needs at least one subject")
    for i, s in enumerate(subjects):
        if not isinstance(s, dict) or not isinstance(s.get("digest"), dict) or not s["digest"]:
            raise ModelKitError(f"in-toto subject {i} has no digest")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise ModelKitError("an in-toto statement needs a predicateType")
    return {
        "_type": STATEMENT_V1,
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def _hint(pub: ec.EllipticCurvePublicKey, style: str) -> str | None:
    if style == "none":
        return None
    if style == "model_signing":
        return keys.model_signing_hint(pub)
    if style == "cosign":
        return keys.cosign_hint(pub)
    raise ModelKitError(f"unknown key hint style {style!r}: use one of {', '.join(HINT_STYLES)}")


def sign_bundle(statement: dict, key: ec.EllipticCurvePrivateKey, hint: str = "none") -> bytes:
    """Sign ``statement`` as a DSSE envelope inside a Sigstore bundle v0.3; return the bundle bytes.

    ``hint`` picks ``verificationMaterial.publicKey.hint``: ``"none"`` (no hint: every verifier
    accepts it, model_signing with a warning), ``"model_signing"`` (hex SHA-256 of the PEM SPKI,
    required by model_signing if present) or ``"cosign"`` (base64 SHA-256 of the DER SPKI,
    rejected by model_signing). The payload is compact JSON; ``keyid`` is ``""``; no tlog entries.

    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> k = ec.generate_private_key(ec.SECP256R1())
    >>> st = statement([{"digest": {"sha256": "ab" * 32}}], "https://example.com/p/v1", {})
    >>> verify_bundle(sign_bundle(st, k), [k.public_key()])[0] == st
    True
    """
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ModelKitError("signing needs an ECDSA P-256 private key")
    public_key: dict[str, str] = {}
    hint_value = _hint(key.public_key(), hint)
    if hint_value is not None:
        public_key["hint"] = hint_value
    body = json.dumps(statement, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    sig = key.sign(pae(PAYLOAD_TYPE, body), ec.ECDSA(hashes.SHA256()))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": public_key, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(body).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(sig).decode("ascii"), "keyid": ""}],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode("utf-8")


def b64decode_any(s: object, what: str) -> bytes:
    """Decode standard or URL-safe base64 (padding optional), strictly; raise VerificationError.

    >>> b64decode_any("-_8", "x"), b64decode_any("+/8=", "x")
    (b'\\xfb\\xff', b'\\xfb\\xff')
    """
    if not isinstance(s, str) or not s:
        raise VerificationError(f"{what} is missing or not a base64 string")
    if ("-" in s or "_" in s) and ("+" in s or "/" in s):
        raise VerificationError(f"{what} mixes standard and URL-safe base64")
    t = s.replace("-", "+").replace("_", "/")
    t += "=" * (-len(t) % 4)
    try:
        return base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64") from None


def strict_json(data: bytes, what: str) -> Any:
    """Parse JSON that has no duplicate keys and no NaN/Infinity (no parser differentials).

    >>> strict_json(b'{"a":1,"a":2}', "payload")
    Traceback (most recent call last):
    ...
    mlflow_plugin.trust.dsse.VerificationError: payload is not valid JSON: duplicate key 'a'
    """

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"non-standard constant {name}")

    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except UnicodeDecodeError:
        raise VerificationError(f"{what} is not UTF-8") from None
    except ValueError as e:
        reason = str(e) if "duplicate key" in str(e) or "non-standard" in str(e) else "malformed"
        raise VerificationError(f"{what} is not valid JSON: {reason}") from None


def as_public_keys(public_keys: list) -> list[ec.EllipticCurvePublicKey]:
    """Normalise trusted keys (key objects, PEM text or paths) to P-256 public keys.

    >>> as_public_keys([keys.EXAMPLE_PUB_PEM])[0].curve.name
    'secp256r1'
    """
    out = []
    for k in public_keys:
        if isinstance(k, ec.EllipticCurvePrivateKey):
            k = k.public_key()
        if not isinstance(k, ec.EllipticCurvePublicKey):
            k = keys.load_public_key(k)
        if not isinstance(k.curve, ec.SECP256R1):
            raise ModelKitError(f"trusted key {keys.key_id(k)[:16]} is not ECDSA P-256")
        out.append(k)
    return out


def verify_der(public_keys: list, message: bytes, signature: bytes) -> ec.EllipticCurvePublicKey | None:
    """The first key of ``public_keys`` under which ``signature`` (DER ECDSA/SHA-256) verifies, else None.

    >>> verify_der([keys.EXAMPLE_PUB_PEM], b"m", b"0\\x06\\x02\\x01\\x01\\x02\\x01\\x01") is None
    True
    """
    for k in as_public_keys(public_keys):
        try:
            k.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return k
    return None


def _envelope(bundle: Any) -> dict:
    if not isinstance(bundle, dict):
        raise VerificationError("bundle is not a JSON object")
    mt = bundle.get("mediaType")
    if mt not in ACCEPTED_BUNDLE_MEDIA_TYPES:
        raise VerificationError(f"not a Sigstore bundle v0.1-v0.3: mediaType {mt!r}")
    env = bundle.get("dsseEnvelope")
    if env is None:
        kind = "a messageSignature" if "messageSignature" in bundle else "no content"
        raise VerificationError(f"bundle holds {kind}, not a DSSE envelope")
    if not isinstance(env, dict):
        raise VerificationError("bundle dsseEnvelope is not an object")
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise VerificationError(f"DSSE payloadType is {env.get('payloadType')!r}, expected {PAYLOAD_TYPE!r}")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        n = len(sigs) if isinstance(sigs, list) else 0
        raise VerificationError(f"DSSE envelope must have exactly one signature (has {n})")
    return env


def _check_statement(st: Any) -> dict:
    if not isinstance(st, dict):
        raise VerificationError("signed payload is not a JSON object")
    if st.get("_type") != STATEMENT_V1:
        raise VerificationError(f"signed payload is not an in-toto Statement v1 (_type {st.get('_type')!r})")
    subjects = st.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("signed statement has no subject")
    for i, s in enumerate(subjects):
        if not isinstance(s, dict) or not isinstance(s.get("digest"), dict) or not s["digest"]:
            raise VerificationError(f"signed statement subject {i} has no digest")
    if not isinstance(st.get("predicateType"), str) or not st["predicateType"]:
        raise VerificationError("signed statement has no predicateType")
    return st


def verify_bundle(data: bytes, public_keys: list) -> tuple[dict, ec.EllipticCurvePublicKey]:
    """Verify a DSSE Sigstore bundle with any of the trusted keys; return ``(statement, key)``.

    Checks the bundle mediaType (v0.1-v0.3 spellings), the DSSE payloadType, that there is
    exactly one signature, the signature over the PAE of the exact payload bytes, and that those
    same bytes are an in-toto Statement v1. Any failure raises :class:`VerificationError`.

    >>> verify_bundle(b'{"mediaType": "x"}', [])
    Traceback (most recent call last):
    ...
    mlflow_plugin.trust.dsse.VerificationError: not a Sigstore bundle v0.1-v0.3: mediaType 'x'
    """
    env = _envelope(strict_json(data, "bundle"))
    payload = b64decode_any(env.get("payload"), "DSSE payload")
    sig = b64decode_any(env["signatures"][0].get("sig"), "DSSE signature")
    trusted = as_public_keys(public_keys)
    if not trusted:
        raise VerificationError("no trusted public keys configured: cannot verify the signature")
    key = verify_der(trusted, pae(PAYLOAD_TYPE, payload), sig)
    if key is None:
        raise VerificationError(
            f"DSSE signature does not verify with any of the {len(trusted)} trusted key(s) "
            f"({', '.join(keys.key_id(k)[:12] for k in trusted)})"
        )
    # parse exactly the bytes that were verified, once
    return _check_statement(strict_json(payload, "signed payload")), key


def unverified_statement(data: bytes) -> dict:
    """The statement of a DSSE bundle, parsed and shape-checked but **not** verified: for listing
    what a kit says it holds (its trust is judged elsewhere, by :func:`verify_bundle`)."""
    env = _envelope(strict_json(data, "bundle"))
    payload = b64decode_any(env.get("payload"), "DSSE payload")
    return _check_statement(strict_json(payload, "signed payload"))


def subject_digests(st: dict, algorithm: str = "sha256") -> list[str]:
    """The ``algorithm`` hex digests of the statement's subjects.

    >>> subject_digests({"subject": [{"digest": {"sha256": "AB"}}, {"digest": {"md5": "x"}}]})
    ['ab']
    """
    out = []
    for s in st.get("subject", []):
        d = s.get("digest", {}).get(algorithm) if isinstance(s, dict) else None
        if isinstance(d, str):
            out.append(d.lower())
    return out
