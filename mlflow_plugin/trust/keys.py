"""ECDSA P-256 key files for signing kits: generate, load, fingerprint.

Private keys are encrypted PKCS#8 PEM (``cosign.key``, mode 0600), public keys PEM
SubjectPublicKeyInfo (``cosign.pub``, mode 0644). Passphrases are never put in a message,
a repr or a log line.

>>> pub = load_public_key(EXAMPLE_PUB_PEM)
>>> key_id(pub)
'58dba9e0a07b17f980f8cb7354f1145b753bfc750caa8dd37964a9a20a3ab33b'
>>> cosign_hint(pub), model_signing_hint(pub)[:16]
('WNup4KB7F/mA+MtzVPEUW3U7/HUMqo3TeWSpogo6szs=', '7e8d1d87116c7be2')
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import sys
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlflow_plugin._internal.atomic import create_exclusive
from mlflow_plugin.errors import ModelKitError

PASSWORD_ENV = "MLFLOW_MODELKIT_KEY_PASSWORD"
PRIVATE_KEY_NAME = "cosign.key"
PUBLIC_KEY_NAME = "cosign.pub"

# a throw-away P-256 public key used by the docstring examples
EXAMPLE_PUB_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGk+n5nZNcIOehkb+Jjbdlm39/mLk\n"
    "tH85gJLT9ANJtpCBjjZ/R3qrttm9JdW2SD3MO2pw+rCQmZKiU6ai/D/rfg==\n"
    "-----END PUBLIC KEY-----\n"
)


def _check_p256_private(key: object, where: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ModelKitError(f"{where} is not an ECDSA P-256 key (it is {_describe(key)})")
    if not isinstance(key.curve, ec.SECP256R1):
        raise ModelKitError(
            f"{where} is an EC {key.curve.name} key; only ECDSA P-256 (secp256r1) is supported"
        )
    return key


def _check_p256_public(key: object, where: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ModelKitError(f"{where} is not an ECDSA P-256 public key (it is {_describe(key)})")
    if not isinstance(key.curve, ec.SECP256R1):
        raise ModelKitError(
            f"{where} is an EC {key.curve.name} key; only ECDSA P-256 (secp256r1) is supported"
        )
    return key


def _describe(key: object) -> str:
    name = type(key).__name__.lstrip("_")
    size = getattr(key, "key_size", None)
    return f"{name} {size}" if size else name


def generate_keypair(out_dir: str, password: bytes | None) -> tuple[str, str]:
    """Generate an ECDSA P-256 key pair as ``out_dir/cosign.key`` and ``out_dir/cosign.pub``.

    The private key is PKCS#8 PEM encrypted with ``password`` (``BestAvailableEncryption``),
    created with mode 0600 so it is never readable by others; ``None`` or ``b""`` writes it
    unencrypted. Existing files are never overwritten. Returns ``(private_path, public_path)``.

    >>> import tempfile
    >>> priv, pub = generate_keypair(tempfile.mkdtemp(), b"s3cret")  # doctest: +SKIP
    >>> oct(os.stat(priv).st_mode & 0o777), oct(os.stat(pub).st_mode & 0o777)  # doctest: +SKIP
    ('0o600', '0o644')
    """
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ModelKitError(
            f"cannot create key directory {out_dir}: {e.strerror}: choose a writable directory"
        ) from None
    priv_path = os.path.join(out_dir, PRIVATE_KEY_NAME)
    pub_path = os.path.join(out_dir, PUBLIC_KEY_NAME)
    for p in (priv_path, pub_path):
        if os.path.lexists(p):
            raise ModelKitError(
                f"{p} already exists: refusing to overwrite a key; remove it or use another directory"
            )
    key = ec.generate_private_key(ec.SECP256R1())
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    priv_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    try:
        create_exclusive(priv_path, priv_pem, 0o600)
    except FileExistsError:
        raise ModelKitError(f"{priv_path} already exists: refusing to overwrite a key") from None
    except OSError as e:
        raise ModelKitError(f"cannot write {priv_path}: {e.strerror}: choose a writable directory") from None
    try:
        create_exclusive(pub_path, public_key_pem(key.public_key()), 0o644)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(priv_path)
        if isinstance(e, OSError):
            raise ModelKitError(
                f"cannot write {pub_path}: {e.strerror}: choose a writable directory"
            ) from None
        raise
    return priv_path, pub_path


def load_private_key(
    path: str, password: bytes | Callable[[], bytes | None] | None
) -> ec.EllipticCurvePrivateKey:
    """Load an ECDSA P-256 private key from a PEM file (PKCS#8, encrypted or not, or SEC1).

    ``password`` may be a callable (e.g. :func:`passphrase_from_env`): it is asked only when the
    key is encrypted, so an unencrypted key never prompts. Errors are one line and never contain
    the passphrase, e.g. ``wrong passphrase for keys/cosign.key: set MLFLOW_MODELKIT_KEY_PASSWORD``.

    >>> key = load_private_key("keys/cosign.key", b"s3cret")  # doctest: +SKIP
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ModelKitError(
            f"private key {path} not found: create one with 'mlflow-modelkit keygen'"
        ) from None
    except OSError as e:
        raise ModelKitError(f"cannot read private key {path}: {e.strerror}") from None
    if b"ENCRYPTED SIGSTORE PRIVATE KEY" in data or b"ENCRYPTED COSIGN PRIVATE KEY" in data:
        raise ModelKitError(
            f"{path} is in cosign's own encrypted format: convert it to PKCS#8 PEM "
            "(e.g. 'openssl pkcs8 -topk8') or create a key with 'mlflow-modelkit keygen'"
        )
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data
    secret = (password() if callable(password) else password) if encrypted else None
    if encrypted and not secret:
        raise ModelKitError(
            f"private key {path} is encrypted and no passphrase was given: set {PASSWORD_ENV} "
            "or run in a terminal to be prompted"
        )
    key = _parse_private_pem(data, secret, path)
    return _check_p256_private(key, f"private key {path}")


def _parse_private_pem(data: bytes, password: bytes | None, path: str) -> object:
    try:
        return serialization.load_pem_private_key(data, password=password)
    except ValueError:
        pass  # wrong passphrase and malformed PEM both land here; tell them apart below
    except TypeError:
        raise ModelKitError(f"private key {path} could not be decrypted: set {PASSWORD_ENV}") from None
    except Exception:
        raise ModelKitError(f"{path} is not a PEM private key") from None
    if password is not None:
        raise ModelKitError(f"wrong passphrase for {path}: set {PASSWORD_ENV}")
    if b"-----BEGIN" not in data:
        raise ModelKitError(f"{path} is not a PEM private key")
    raise ModelKitError(f"{path} is not a valid PEM private key (unsupported or corrupt)")


def load_public_key(path_or_pem: str | bytes) -> ec.EllipticCurvePublicKey:
    """Load an ECDSA P-256 public key from a PEM file path or from PEM text (SPKI).

    >>> load_public_key(EXAMPLE_PUB_PEM).curve.name
    'secp256r1'
    >>> load_public_key("/nonexistent/cosign.pub")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: public key /nonexistent/cosign.pub not found
    """
    if isinstance(path_or_pem, bytes):
        data, where = path_or_pem, "public key PEM"
    elif "-----BEGIN" in path_or_pem:
        data, where = path_or_pem.encode("ascii", "replace"), "public key PEM"
    else:
        where = f"public key {path_or_pem}"
        try:
            with open(path_or_pem, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ModelKitError(f"{where} not found") from None
        except OSError as e:
            raise ModelKitError(f"cannot read {where}: {e.strerror}") from None
    if b"PRIVATE KEY-----" in data:
        raise ModelKitError(f"{where} is a private key: give the public key (cosign.pub)")
    try:
        key = serialization.load_pem_public_key(data)
    except Exception:
        raise ModelKitError(f"{where} is not a PEM public key (SubjectPublicKeyInfo)") from None
    return _check_p256_public(key, where)


def public_key_pem(pub: ec.EllipticCurvePublicKey) -> bytes:
    """PEM SubjectPublicKeyInfo bytes of ``pub`` (what ``cosign.pub`` holds).

    >>> public_key_pem(load_public_key(EXAMPLE_PUB_PEM)) == EXAMPLE_PUB_PEM.encode()
    True
    """
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _spki_der(pub: ec.EllipticCurvePublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(pub: ec.EllipticCurvePublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: the key's fingerprint for display and config.

    >>> len(key_id(load_public_key(EXAMPLE_PUB_PEM)))
    64
    """
    return hashlib.sha256(_spki_der(pub)).hexdigest()


def cosign_hint(pub: ec.EllipticCurvePublicKey) -> str:
    """The ``publicKey.hint`` cosign and sigstore-go write: base64 of SHA-256 of the DER SPKI.

    >>> cosign_hint(load_public_key(EXAMPLE_PUB_PEM)).endswith("=")
    True
    """
    return base64.b64encode(hashlib.sha256(_spki_der(pub)).digest()).decode("ascii")


def model_signing_hint(pub: ec.EllipticCurvePublicKey) -> str:
    """The ``publicKey.hint`` OpenSSF model_signing writes and checks: hex SHA-256 of the PEM SPKI text.

    >>> len(model_signing_hint(load_public_key(EXAMPLE_PUB_PEM)))
    64
    """
    return hashlib.sha256(public_key_pem(pub)).hexdigest()


def passphrase_from_env(confirm: bool = False, prompt: bool = True) -> bytes | None:
    """The private-key passphrase: ``$MLFLOW_MODELKIT_KEY_PASSWORD``, else a getpass prompt, else None.

    The prompt is shown only when ``prompt`` is true and stdin is a terminal; ``confirm`` asks
    twice (for keygen). An empty answer or an empty variable means "no passphrase" (None).

    >>> import os
    >>> os.environ.get(PASSWORD_ENV) is None and passphrase_from_env(prompt=False) is None  # doctest: +SKIP
    True
    """
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env.encode("utf-8") or None
    if not (prompt and sys.stdin is not None and sys.stdin.isatty()):
        return None
    first = getpass.getpass("Enter passphrase for private key: ")
    if confirm and getpass.getpass("Enter passphrase again: ") != first:
        raise ModelKitError("passphrases do not match")
    return first.encode("utf-8") or None
