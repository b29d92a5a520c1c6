"""OCI content descriptors and digest helpers.

>>> d = Descriptor.for_bytes(OCI_EMPTY, b"{}")
>>> d.digest
'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
>>> d.to_json()["size"]
2
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugin._internal.gojson import Ordered
from mlflow_plugin.errors import DigestMismatchError, ReferenceFormatError
from mlflow_plugin.storage.mediatypes import OCI_EMPTY  # noqa: F401  (re-exported for the doctest above)

_DIGEST_RE = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256/sha512 digest, else raise.

    >>> check_digest("sha256:" + "0" * 64)[:10]
    'sha256:000'
    """
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ReferenceFormatError(
            f"invalid digest {digest!r}: expected 'sha256:' followed by 64 lowercase hex digits"
        )
    return digest


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class DigestingReader:
    """Wrap a binary stream; hash everything read and verify it at EOF.

    Reading to the end raises :class:`DigestMismatchError` if the bytes do not match
    ``digest`` (and ``size`` when given). Nothing is buffered beyond the caller's reads.
    """

    def __init__(self, raw: Any, digest: str, size: int | None = None, what: str = "blob") -> None:
        check_digest(digest)
        self._raw = raw
        self._digest = digest
        self._size = size
        self._what = what
        self._h = hashlib.new(digest.split(":", 1)[0])
        self._n = 0
        self._checked = False

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._h.update(data)
            self._n += len(data)
            if self._size is not None and self._n > self._size:
                raise DigestMismatchError(
                    f"{self._what} {self._digest}: more than the expected {self._size} bytes; "
                    "the stored content is corrupt"
                )
        if not data or (n is None or n < 0):
            self.verify()
        return data

    def readinto(self, b: Any) -> int:  # pragma: no cover - convenience for shutil.copyfileobj
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def copy_to(self, out: Any, progress: Any = None, chunk: int = 1 << 20) -> int:
        """Copy the rest of the stream to ``out`` and verify, reading/hashing/writing concurrently."""
        from mlflow_plugin._internal.pipeline import fan_out

        def chunks() -> Any:
            while True:
                b = self._raw.read(chunk)
                if not b:
                    return
                yield b

        def account(b: bytes) -> None:
            self._h.update(b)
            self._n += len(b)
            if progress:
                progress(len(b))

        fan_out(chunks(), [account, out.write])
        self.verify()
        return self._n

    def verify(self) -> None:
        """Check the digest now (idempotent); call at EOF."""
        if self._checked:
            return
        self._checked = True
        got = self._digest.split(":", 1)[0] + ":" + self._h.hexdigest()
        if self._size is not None and self._n != self._size:
            raise DigestMismatchError(
                f"{self._what} {self._digest}: got {self._n} bytes, expected {self._size}; "
                "the stored content is truncated or corrupt"
            )
        if got != self._digest:
            raise DigestMismatchError(
                f"{self._what} {self._digest}: content hashes to {got}; the stored copy is corrupt "
                "or was tampered with"
            )

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close:
            close()

    def __enter__(self) -> DigestingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (mediaType, digest, size, annotations, artifactType)."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = field(default=None, compare=False)
    artifact_type: str | None = field(default=None, compare=False)

    @classmethod
    def for_bytes(cls, media_type: str, data: bytes, **kw: Any) -> Descriptor:
        """Descriptor of an in-memory blob."""
        return cls(media_type, sha256_digest(data), len(data), **kw)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Descriptor:
        """Build from a parsed descriptor object; raises on a malformed digest or size."""
        size = d.get("size")
        if not isinstance(size, int) or size < 0:
            raise ReferenceFormatError(f"descriptor {d.get('digest')!r} has an invalid size {size!r}")
        return cls(
            media_type=d.get("mediaType", ""),
            digest=check_digest(d.get("digest", "")),
            size=size,
            annotations=dict(d["annotations"]) if d.get("annotations") else None,
            artifact_type=d.get("artifactType") or None,
        )

    def to_json(self) -> dict[str, Any]:
        """Go field order: mediaType, digest, size, annotations, artifactType."""
        out: dict[str, Any] = Ordered(mediaType=self.media_type, digest=self.digest, size=self.size)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out
