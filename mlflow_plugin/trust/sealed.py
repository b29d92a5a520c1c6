"""Reading an encrypted kit as one of its recipients: :class:`Decryptor`.

A kit published with ``--encrypt-for`` keeps nothing readable but what a registry needs: its layers
are ocicrypt-encrypted (:mod:`~mlflow_plugin.trust.ocicrypt`), its config blob holds a redacted
Kitfile (placeholder paths, no names, descriptions or parameters), the real Kitfile travels sealed
in the manifest annotation :data:`~mlflow_plugin.trust.ocicrypt.ANN_SEALED_KITFILE`, and the
attestations that describe its contents (provenance, scan report, ML-BOM, model_signing bundle)
are attached as encrypted bundle layers. The manifest-level signature (cosign's ``sign/v1``
statement and the legacy ``.sig``) stays readable: anyone can check *who* signed the ciphertext,
only recipients can read *what* it holds.

A :class:`Decryptor` holds the recipient private key paths and loads them on first use (a kit
that is not encrypted never touches them), so callers can build one from ``--decrypt-key`` or the
admin config unconditionally.

>>> import tempfile
>>> from mlflow_plugin.trust import ocicrypt
>>> pub, key = ocicrypt.generate_recipient_keypair(tempfile.mkdtemp())
>>> sealed = ocicrypt.seal(b'{"manifestVersion":"1.0.0"}', [ocicrypt.load_recipient(pub)])
>>> manifest = {"annotations": {ocicrypt.ANN_SEALED_KITFILE: sealed}}
>>> Decryptor([key]).kitfile(manifest, b'{"redacted":true}', "example")
b'{"manifestVersion":"1.0.0"}'
>>> Decryptor([]).kitfile({}, b'{"plain":true}', "example")
b'{"plain":true}'
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import IO, Any

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.trust import ocicrypt
from mlflow_plugin.trust.attach import Attachment


def is_encrypted_manifest(manifest: dict[str, Any]) -> bool:
    """Whether any layer of ``manifest`` is encrypted or its Kitfile is sealed."""
    ann = manifest.get("annotations")
    if isinstance(ann, dict) and ocicrypt.ANN_SEALED_KITFILE in ann:
        return True
    layers = manifest.get("layers")
    return isinstance(layers, list) and any(
        isinstance(d, dict) and ocicrypt.is_encrypted(str(d.get("mediaType", ""))) for d in layers
    )


class Decryptor:
    """Recipient private keys (paths; unlocked with ``password`` or ``$MLFLOW_MODELKIT_KEY_PASSWORD``),
    loaded once, on first use. Key material never appears in its ``repr`` or errors."""

    def __init__(self, paths: Sequence[str] | None = None, password: bytes | None = None) -> None:
        self.paths = [p for p in (paths or []) if p]
        self._password = password
        self._keys: list[Any] | None = None

    def __repr__(self) -> str:
        return f"Decryptor({len(self.paths)} key path(s))"

    @property
    def keys(self) -> list[Any]:
        if self._keys is None:
            self._keys = ocicrypt.load_decryption_keys(self.paths, self._password)
        return self._keys

    def kitfile(self, manifest: dict[str, Any], config: bytes, what: str) -> bytes:
        """The kit's real Kitfile JSON: the sealed one of an encrypted kit, else ``config``."""
        ann = manifest.get("annotations")
        sealed = ann.get(ocicrypt.ANN_SEALED_KITFILE) if isinstance(ann, dict) else None
        if sealed is None:
            return config
        return ocicrypt.unseal(sealed, self.keys, f"the Kitfile of {what}")

    def open(self, descriptor: dict[str, Any]) -> ocicrypt.LayerKey:
        """Unwrap the key of one encrypted layer (``descriptor`` as in the manifest)."""
        ann = descriptor.get("annotations")
        return ocicrypt.open_layer(
            ann if isinstance(ann, dict) else {}, self.keys, layer=str(descriptor.get("digest"))
        )

    def decrypt_to_temp(
        self, descriptor: dict[str, Any], blob: IO[bytes], dir: str | None = None
    ) -> IO[bytes]:
        """Decrypt one encrypted layer read from ``blob`` into an unnamed temp file (in ``dir``),
        verified (HMAC over the ciphertext, plaintext digest) before it is returned at offset 0;
        the ciphertext digest is checked too when ``blob`` verifies itself (registry/layout streams).
        Nothing of a layer that fails is released: the temp file is closed and gone."""
        key = self.open(descriptor)
        plain = tempfile.TemporaryFile(dir=dir)  # noqa: SIM115 - returned open to the caller
        try:
            ocicrypt.decrypt_layer(blob, plain, key, layer=str(descriptor.get("digest")))
            while blob.read(1 << 20):
                pass
            verify = getattr(blob, "verify", None)
            if verify:
                verify()
            plain.seek(0)
        except BaseException:
            plain.close()
            raise
        return plain

    def attachment(self, a: Attachment) -> bytes:
        """The bundle of an attachment, decrypted when it is an encrypted kit's."""
        if a.encryption is None:
            return a.bundle
        return self.bundle(a.bundle, a.encryption, f"the {a.kind} attestation")

    def bundle(self, data: bytes, annotations: dict[str, str], what: str) -> bytes:
        """An encrypted attestation bundle, decrypted and checked."""
        if not self.paths:
            raise ModelKitError(
                f"{what} is encrypted for the kit's recipients: pass --decrypt-key "
                f"(or set {ocicrypt.DECRYPT_KEYS_ENV})"
            )
        return ocicrypt.decrypt_bytes(data, annotations, self.keys, what)


__all__ = ["Decryptor", "is_encrypted_manifest"]
