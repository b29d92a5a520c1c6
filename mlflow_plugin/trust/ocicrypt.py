"""Layer encryption for recipients in containers/ocicrypt's format (``AES_256_CTR_HMAC_SHA256`` + JWE).

What ocicrypt (v1.3.x: ``blockcipher/blockcipher_aes_ctr.go``, ``encryption.go``,
``keywrap/jwe/keywrapper_jwe.go``) writes, and what this module writes and reads:

- per layer a random 32-byte key and a random 16-byte nonce (the whole AES-CTR counter block);
  AES-256-CTR; HMAC-SHA256 over the **ciphertext**, keyed with the same 32 bytes;
- the layer descriptor gets the ciphertext's digest and size, its media type the ``+encrypted``
  suffix (for kit layer types this is our extension of ocicrypt's image-layer rule) and two
  annotations: ``org.opencontainers.image.enc.pubopts`` (standard base64 of
  ``{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"<b64>","cipheroptions":{}}`` — ocicrypt's finalizer
  puts the HMAC in the *public* options) and ``org.opencontainers.image.enc.keys.jwe`` (standard
  base64 of one JWE in JSON serialization, A256GCM, one recipient per public key: ``ECDH-ES+A256KW``
  for EC keys, ``RSA-OAEP`` for RSA; several JWEs are joined with ``,``). The JWE protects the
  private options ``{"symkey":"<b64>","digest":"sha256:<plaintext>","cipheroptions":{"nonce":"<b64>"}}``.

Decryption streams into a file the caller provides (a staging file, never the destination): the
HMAC is computed over the ciphertext while decrypting and checked, with the plaintext digest from the
JWE, before :func:`decrypt_layer` returns; only then may the caller release the plaintext (untar it
into the target). ocicrypt itself releases bytes as it goes and fails at EOF; keeping the plaintext in
staging until both checks pass is how "refused before any plaintext is written" holds here.

Key material and symmetric keys never appear in errors, logs or reprs.

>>> import tempfile, io
>>> d = tempfile.mkdtemp()
>>> pub, key = generate_recipient_keypair(d)
>>> ct = io.BytesIO()
>>> enc = encrypt_layer(io.BytesIO(b"weights"), ct, [load_recipient(pub)])
>>> opened = open_layer(enc.annotations, [load_decryption_key(key)], layer=enc.digest)
>>> out = io.BytesIO()
>>> _ = ct.seek(0)
>>> decrypt_layer(ct, out, opened, layer=enc.digest) == enc.plaintext_digest, out.getvalue()
(True, b'weights')
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mlflow_plugin._internal.atomic import create_exclusive
from mlflow_plugin.errors import ModelKitError

CIPHER = "AES_256_CTR_HMAC_SHA256"
ENC_SUFFIX = "+encrypted"
ANN_JWE = "org.opencontainers.image.enc.keys.jwe"
ANN_PUBOPTS = "org.opencontainers.image.enc.pubopts"
ANN_ENC_PREFIX = "org.opencontainers.image.enc."
ANN_SEALED_KITFILE = "dev.mlflow-modelkit.enc.kitfile"
"""Manifest annotation of an encrypted kit: its real Kitfile, as a JWE for the layers' recipients
(the config blob holds a redacted Kitfile; see :func:`seal`)."""
PUBLIC_NAME = "enc.pub"
PRIVATE_NAME = "enc.key"
DECRYPT_KEYS_ENV = "MLFLOW_MODELKIT_DECRYPT_KEYS"
KEY_SIZE = 32
NONCE_SIZE = 16
CHUNK = 1 << 20
# what ocicrypt's JWE key unwrapper accepts
_ALLOWED_ALGS = [
    "RSA-OAEP",
    "RSA-OAEP-256",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "A128GCM",
    "A192GCM",
    "A256GCM",
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
]

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def is_encrypted(media_type: str) -> bool:
    """True for ``…+encrypted`` media types."""
    return media_type.endswith(ENC_SUFFIX)


def plain_media_type(media_type: str) -> str:
    """``…tar+gzip+encrypted`` → ``…tar+gzip`` (unchanged when not encrypted)."""
    return media_type[: -len(ENC_SUFFIX)] if is_encrypted(media_type) else media_type


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")  # Go's json: []byte is padded standard base64


def _unb64(s: Any, what: str, layer: str) -> bytes:
    if not isinstance(s, str):
        raise ModelKitError(f"encrypted layer {layer}: {what} is missing or not base64")
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise ModelKitError(f"encrypted layer {layer}: {what} is not valid base64") from None


# ---- keys -----------------------------------------------------------------------------------------


def generate_recipient_keypair(
    directory: str, kind: str = "ec", password: bytes | None = None
) -> tuple[str, str]:
    """Write a recipient key pair ``directory/enc.pub`` (SPKI PEM) and ``directory/enc.key``
    (PKCS#8 PEM, mode 0600, encrypted with ``password`` when given): EC P-256 (``kind="ec"``) or
    RSA-3072 (``kind="rsa"``). Existing files are never overwritten. Returns ``(public, private)``."""
    if kind not in ("ec", "rsa"):
        raise ModelKitError(f"unknown encryption key kind {kind!r}: use 'ec' (P-256) or 'rsa' (RSA-3072)")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise ModelKitError(f"cannot create key directory {directory}: {e.strerror}") from None
    pub_path = os.path.join(directory, PUBLIC_NAME)
    priv_path = os.path.join(directory, PRIVATE_NAME)
    for p in (pub_path, priv_path):
        if os.path.lexists(p):
            raise ModelKitError(f"{p} already exists: refusing to overwrite a key; use another directory")
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=3072)
    )
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    priv_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        create_exclusive(priv_path, priv_pem, 0o600)
        try:
            create_exclusive(pub_path, pub_pem, 0o644)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(priv_path)
            raise
    except OSError as e:
        raise ModelKitError(f"cannot write the key pair into {directory}: {e.strerror}") from None
    return pub_path, priv_path


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ModelKitError(
            f"{what} {path} not found: create one with 'mlflow-modelkit keygen --encryption'"
        ) from None
    except OSError as e:
        raise ModelKitError(f"cannot read {what} {path}: {e.strerror}") from None


def load_recipient(path: str) -> PublicKey:
    """A recipient public key (PEM SPKI or a certificate): EC P-256/384/521 or RSA ≥ 2048 bits."""
    data = _read(path, "recipient public key")
    key: Any
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            from cryptography import x509

            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except Exception:
        raise ModelKitError(
            f"{path} is not a PEM public key (use the enc.pub of 'keygen --encryption')"
        ) from None
    return _check_key(key, path)


def load_decryption_key(path: str, password: bytes | None = None) -> PrivateKey:
    """A recipient private key (PEM PKCS#8/SEC1/PKCS#1); ``password`` or
    ``$MLFLOW_MODELKIT_KEY_PASSWORD`` unlocks an encrypted one. Errors never show the passphrase."""
    from mlflow_plugin.trust.keys import PASSWORD_ENV, passphrase_from_env

    data = _read(path, "decryption key")
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data
    secret = (password or passphrase_from_env()) if encrypted else None
    if encrypted and not secret:
        raise ModelKitError(
            f"decryption key {path} is encrypted and no passphrase was given: set {PASSWORD_ENV}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError):
        hint = (
            f"wrong passphrase for {path}: set {PASSWORD_ENV}"
            if secret
            else f"{path} is not a valid PEM private key"
        )
        raise ModelKitError(hint) from None
    except Exception:
        raise ModelKitError(f"{path} is not a PEM private key") from None
    return _check_key(key, path)


def _check_key(key: Any, path: str) -> Any:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise ModelKitError(f"{path}: EC curve {key.curve.name} is not supported (use P-256)")
        return key
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < 2048:
            raise ModelKitError(f"{path}: RSA key of {key.key_size} bits is too small (use ≥ 2048)")
        return key
    raise ModelKitError(f"{path}: {type(key).__name__.lstrip('_')} keys cannot be encryption recipients")


def recipient_id(key: PublicKey) -> str:
    """A recipient's id: SHA-256 (hex) of its public key's DER SubjectPublicKeyInfo, as
    ``sha256sum`` of the DER form would print it (what publish reports it encrypted for)."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def decrypt_keys_from_env() -> list[str]:
    """Key paths from ``$MLFLOW_MODELKIT_DECRYPT_KEYS`` (comma-separated)."""
    return [p.strip() for p in os.environ.get(DECRYPT_KEYS_ENV, "").split(",") if p.strip()]


# ---- encryption -----------------------------------------------------------------------------------


@dataclass
class EncryptedLayer:
    """The ciphertext's digest and size, the plaintext's digest, and the two ``enc`` annotations."""

    digest: str
    size: int
    plaintext_digest: str
    annotations: dict[str, str] = field(default_factory=dict)


def _jwe(private_opts: bytes, recipients: Sequence[PublicKey]) -> str:
    from jwcrypto import jwe, jwk

    token = jwe.JWE(private_opts, protected=json.dumps({"enc": "A256GCM"}))
    for pub in recipients:
        alg = "RSA-OAEP" if isinstance(pub, rsa.RSAPublicKey) else "ECDH-ES+A256KW"
        pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        token.add_recipient(jwk.JWK.from_pem(pem), header=json.dumps({"alg": alg}))
    return str(token.serialize(compact=False))


def encrypt_layer(
    src: IO[bytes],
    out: IO[bytes],
    recipients: Sequence[PublicKey],
    expected_digest: str | None = None,
) -> EncryptedLayer:
    """Stream ``src`` (a plaintext layer) through AES-256-CTR into ``out``; HMAC the ciphertext.

    ``expected_digest`` (the plaintext layer's digest) is checked at the end. Returns the
    ciphertext's digest and size and the annotations of the encrypted descriptor.
    """
    if not recipients:
        raise ModelKitError("no recipients to encrypt for")
    symkey = secrets.token_bytes(KEY_SIZE)
    nonce = secrets.token_bytes(NONCE_SIZE)
    enc = Cipher(algorithms.AES(symkey), modes.CTR(nonce)).encryptor()
    mac = hmac.new(symkey, digestmod=hashlib.sha256)
    plain_h, cipher_h = hashlib.sha256(), hashlib.sha256()
    size = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        plain_h.update(chunk)
        ct = enc.update(chunk)
        mac.update(ct)
        cipher_h.update(ct)
        out.write(ct)
        size += len(ct)
    tail = enc.finalize()  # CTR: empty
    if tail:
        mac.update(tail)
        cipher_h.update(tail)
        out.write(tail)
        size += len(tail)
    plain_digest = "sha256:" + plain_h.hexdigest()
    if expected_digest and plain_digest != expected_digest:
        raise ModelKitError(f"layer {expected_digest} read back as {plain_digest}: refusing to encrypt it")
    # ocicrypt's json.Marshal order: PrivateLayerBlockCipherOptions{symkey, digest, cipheroptions}
    private_opts = json.dumps(
        {"symkey": _b64(symkey), "digest": plain_digest, "cipheroptions": {"nonce": _b64(nonce)}},
        separators=(",", ":"),
    ).encode()
    public_opts = json.dumps(
        {"cipher": CIPHER, "hmac": _b64(mac.digest()), "cipheroptions": {}}, separators=(",", ":")
    ).encode()
    annotations = {
        ANN_JWE: _b64(_jwe(private_opts, recipients).encode()),
        ANN_PUBOPTS: _b64(public_opts),
    }
    return EncryptedLayer("sha256:" + cipher_h.hexdigest(), size, plain_digest, annotations)


# ---- decryption -----------------------------------------------------------------------------------


@dataclass
class LayerKey:
    """What opens one layer: the symmetric key and nonce, the expected HMAC and plaintext digest."""

    symkey: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    hmac: bytes = field(repr=False)
    digest: str = ""


def _try_unwrap(blob: bytes, keys: Iterable[PrivateKey]) -> bytes | None:
    from jwcrypto import jwe, jwk
    from jwcrypto.common import JWException

    for key in keys:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        token = jwe.JWE()
        token.allowed_algs = list(_ALLOWED_ALGS)
        try:
            token.deserialize(blob.decode("utf-8"), key=jwk.JWK.from_pem(pem))
        except (JWException, ValueError, UnicodeDecodeError, KeyError, TypeError):
            continue
        return bytes(token.payload)
    return None


def open_layer(annotations: dict[str, str], keys: Sequence[PrivateKey], layer: str) -> LayerKey:
    """Unwrap the layer key with the first of ``keys`` that is a recipient; one-line errors."""
    if ANN_PUBOPTS not in annotations or ANN_JWE not in annotations:
        schemes = sorted(k for k in annotations if k.startswith(ANN_ENC_PREFIX + "keys."))
        if schemes and ANN_JWE not in annotations:
            raise ModelKitError(
                f"encrypted layer {layer} uses key wrapping {', '.join(schemes)}: only JWE is supported"
            )
        raise ModelKitError(f"encrypted layer {layer} has no {ANN_JWE} / {ANN_PUBOPTS} annotations")
    try:
        pub = json.loads(_unb64(annotations[ANN_PUBOPTS], "pubopts", layer))
    except ValueError:
        raise ModelKitError(f"encrypted layer {layer}: pubopts is not JSON") from None
    if not isinstance(pub, dict):
        raise ModelKitError(f"encrypted layer {layer}: pubopts is not a JSON object")
    cipher = pub.get("cipher")
    if cipher != CIPHER:
        raise ModelKitError(f"encrypted layer {layer} uses cipher {cipher!r}: only {CIPHER} is supported")
    mac = _unb64(pub.get("hmac"), "the HMAC", layer)
    if not keys:
        raise ModelKitError(f"layer {layer} is encrypted: pass --decrypt-key (or set {DECRYPT_KEYS_ENV})")
    payload = None
    for b64 in annotations[ANN_JWE].split(","):
        payload = _try_unwrap(_unb64(b64.strip(), "a wrapped key", layer), keys)
        if payload is not None:
            break
    if payload is None:
        raise ModelKitError(f"not a recipient of this kit: none of the decryption keys opens layer {layer}")
    try:
        priv = json.loads(payload)
        symkey = _unb64(priv.get("symkey"), "the layer key", layer)
        nonce = _unb64((priv.get("cipheroptions") or {}).get("nonce"), "the nonce", layer)
        digest = priv.get("digest")
    except (ValueError, AttributeError):
        raise ModelKitError(f"encrypted layer {layer}: the private options are not valid") from None
    if len(symkey) != KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise ModelKitError(f"encrypted layer {layer}: key or nonce has the wrong length")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise ModelKitError(f"encrypted layer {layer}: the private options carry no sha256 plaintext digest")
    return LayerKey(symkey, nonce, mac, digest)


def decrypt_layer(src: IO[bytes], out: IO[bytes], key: LayerKey, layer: str) -> str:
    """Decrypt ``src`` into ``out`` (a staging file); check the HMAC over the ciphertext and the
    plaintext digest before returning it. On failure ``out`` holds unverified bytes: the caller
    discards it and releases nothing."""
    dec = Cipher(algorithms.AES(key.symkey), modes.CTR(key.nonce)).decryptor()
    mac = hmac.new(key.symkey, digestmod=hashlib.sha256)
    plain_h = hashlib.sha256()
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        mac.update(chunk)
        pt = dec.update(chunk)
        plain_h.update(pt)
        out.write(pt)
    pt = dec.finalize()
    if pt:
        plain_h.update(pt)
        out.write(pt)
    if not hmac.compare_digest(mac.digest(), key.hmac):
        raise ModelKitError(f"encrypted layer {layer} failed its HMAC check: the ciphertext was modified")
    got = "sha256:" + plain_h.hexdigest()
    if got != key.digest:
        raise ModelKitError(f"encrypted layer {layer} decrypted to {got}, expected {key.digest}")
    return got


def seal(data: bytes, recipients: Sequence[PublicKey]) -> str:
    """``data`` as one JWE for ``recipients`` (A256GCM; the key wrapping of :func:`encrypt_layer`),
    standard base64 of its JSON serialization: small documents that must travel with an encrypted
    kit (its Kitfile) without a layer of their own."""
    if not recipients:
        raise ModelKitError("no recipients to encrypt for")
    return _b64(_jwe(data, recipients).encode())


def unseal(value: Any, keys: Sequence[PrivateKey], what: str) -> bytes:
    """Open what :func:`seal` wrote with the first of ``keys`` that is a recipient; one-line errors."""
    if not isinstance(value, str) or len(value) > 4 << 20:
        raise ModelKitError(f"{what} is not a sealed document")
    if not keys:
        raise ModelKitError(f"{what} is encrypted: pass --decrypt-key (or set {DECRYPT_KEYS_ENV})")
    opened = _try_unwrap(_unb64(value, "the sealed document", what), keys)
    if opened is None:
        raise ModelKitError(f"not a recipient of this kit: none of the decryption keys opens {what}")
    return opened


def encrypt_bytes(data: bytes, recipients: Sequence[PublicKey]) -> tuple[bytes, EncryptedLayer]:
    """:func:`encrypt_layer` for a small blob held in memory (an attestation bundle)."""
    import io

    out = io.BytesIO()
    enc = encrypt_layer(io.BytesIO(data), out, recipients)
    return out.getvalue(), enc


def decrypt_bytes(data: bytes, annotations: dict[str, str], keys: Sequence[PrivateKey], what: str) -> bytes:
    """Open and decrypt a small encrypted blob held in memory; HMAC and plaintext digest checked."""
    import io

    opened = open_layer(annotations, keys, layer=what)
    out = io.BytesIO()
    decrypt_layer(io.BytesIO(data), out, opened, layer=what)
    return out.getvalue()


def load_decryption_keys(paths: Sequence[str], password: bytes | None = None) -> list[PrivateKey]:
    """:func:`load_decryption_key` for each of ``paths`` (in order; duplicates read once)."""
    return [load_decryption_key(p, password) for p in dict.fromkeys(paths)]


def plaintext_annotations(annotations: dict[str, str]) -> dict[str, str]:
    """The annotations without ``org.opencontainers.image.enc.*`` (as ocicrypt does on decrypt)."""
    return {k: v for k, v in annotations.items() if not k.startswith(ANN_ENC_PREFIX)}
