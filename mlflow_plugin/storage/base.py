"""The one interface every OCI store implements (local image layout, remote registry).

Code above this layer (pack, push/pull, the MLflow artifact repository, publish) talks only to
:class:`Repository`, so a kit moves between a layout and a registry with the same calls::

    src = open_repository("oci:./kits/fraud")             # see mlflow_plugin.storage.open_repository
    dst = open_repository("localhost:5000/team/fraud")
    data, media_type, digest = src.get_manifest("v1")

Contract shared by all implementations:

* every blob or manifest read is verified against its digest (streams verify at EOF);
* ``push_blob`` is a no-op when the blob already exists (HEAD dedupe);
* ``put_manifest`` refuses a manifest whose config/layers are missing, and a tag is only
  written after the manifest's blobs exist; a manifest with ``subject`` is also recorded in
  the referrers list of its subject (referrers API, or the ``sha256-<hex>`` tag-schema index);
* errors are :class:`~mlflow_plugin.errors.ModelKitError` subclasses with one-line messages.
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import IO, Any

from mlflow_plugin._internal.gojson import Ordered, dumps
from mlflow_plugin.storage.descriptor import Descriptor, sha256_digest
from mlflow_plugin.storage.mediatypes import OCI_INDEX, OCI_MANIFEST

Progress = Callable[[int], None]
"""Called with the number of bytes just transferred."""


def referrers_tag(digest: str) -> str:
    """The tag-schema fallback tag for ``digest``: ``sha256:abc…`` → ``sha256-abc…``.

    >>> referrers_tag("sha256:" + "ab" * 32)[:11]
    'sha256-abab'
    """
    alg, _, enc = digest.partition(":")
    return f"{alg[:32]}-{enc[:64]}"


def referrer_descriptor(manifest_bytes: bytes, media_type: str) -> Descriptor:
    """The descriptor of a referrer manifest as it appears in a referrers index.

    ``artifactType`` is the manifest's ``artifactType`` or else its ``config.mediaType``, and
    all of the manifest's annotations are copied (distribution-spec "Referrers Tag Schema").
    """
    m = json.loads(manifest_bytes)
    at = m.get("artifactType") or (m.get("config") or {}).get("mediaType")
    return Descriptor(
        media_type=media_type,
        digest=sha256_digest(manifest_bytes),
        size=len(manifest_bytes),
        annotations=dict(m["annotations"]) if m.get("annotations") else None,
        artifact_type=at,
    )


class Repository(abc.ABC):
    """One OCI repository: blobs, manifests, tags and referrers."""

    #: Human-readable name used in messages, e.g. ``localhost:5000/team/fraud`` or ``oci:/srv/kits/x``.
    display: str
    #: ``"layout"`` (a local OCI image layout) or ``"registry"``.
    kind: str = "registry"
    #: The registry host[:port]; ``None`` for a layout.
    host: str | None = None
    #: The repository's name within its registry (for a layout: its directory).
    name: str = ""

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """A lock that makes a read-merge-write of this repository atomic among the writers that can
        be coordinated: a layout's file lock; registries have no compare-and-swap, so nothing here
        (callers merge, re-read and retry)."""
        return contextlib.nullcontext()

    def can_mount_from(self, other: Repository) -> bool:
        """True if ``other``'s blobs can be cross-repository mounted into this repository."""
        return self.kind == other.kind == "registry" and self.host == other.host and self.name != other.name

    # ---- blobs -------------------------------------------------------------------------------
    @abc.abstractmethod
    def blob_exists(self, digest: str) -> bool:
        """True if the blob is present (HEAD)."""

    @abc.abstractmethod
    def open_blob(self, digest: str, size: int | None = None) -> AbstractContextManager[IO[bytes]]:
        """Open a blob for streaming; reading it to EOF verifies digest (and size when given).

        Raises :class:`~mlflow_plugin.errors.NotFoundError` if absent and
        :class:`~mlflow_plugin.errors.DigestMismatchError` at EOF if the bytes are wrong.
        """

    @abc.abstractmethod
    def read_range(self, digest: str, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` of a blob (HTTP range request on a registry).

        Range reads cannot be verified against the blob digest; callers verify the piece
        against a digest they know for it (e.g. the file index's per-file SHA-256).
        """

    def iter_range(self, digest: str, offset: int, length: int, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Stream ``length`` bytes at ``offset`` in chunks (one request on a registry; not verified)."""
        pos, left = offset, length
        while left > 0:
            b = self.read_range(digest, pos, min(chunk, left))
            if not b:
                return
            pos += len(b)
            left -= len(b)
            yield b

    @abc.abstractmethod
    def push_blob(
        self,
        src: IO[bytes],
        digest: str,
        size: int,
        progress: Progress | None = None,
    ) -> bool:
        """Upload ``size`` bytes read from ``src`` as blob ``digest``; streaming, bounded memory.

        Returns False (and reads nothing) if the blob already exists. The store verifies the
        digest before the blob becomes visible.
        """

    @abc.abstractmethod
    def push_blob_chunks(
        self, chunks: Iterable[bytes], progress: Progress | None = None, size: int | None = None
    ) -> tuple[str, int]:
        """Upload a stream of unknown digest, hashing while sending; returns ``(digest, size)``.

        Used by ``pack`` straight to a registry: the tar is generated, hashed and uploaded in
        one pass, never staged on disk or in memory. ``size``, when known in advance, lets a
        registry upload go out with ``Content-Length`` instead of chunked encoding (faster);
        a stream of another length then fails.
        """

    def mount_blob(self, digest: str, from_repository: str) -> bool:
        """Try a cross-repository mount (same registry); True if the blob is now present."""
        return False

    def push_bytes(self, data: bytes, media_type: str) -> Descriptor:
        """Upload a small in-memory blob (configs, signatures); returns its descriptor."""
        import io

        d = Descriptor.for_bytes(media_type, data)
        self.push_blob(io.BytesIO(data), d.digest, d.size)
        return d

    def read_blob(self, digest: str, size: int | None = None, limit: int = 64 << 20) -> bytes:
        """Read a small blob fully (verified). Refuses blobs larger than ``limit``."""
        chunks: list[bytes] = []
        n = 0
        with self.open_blob(digest, size) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                n += len(b)
                if n > limit:
                    from mlflow_plugin.errors import ModelKitError

                    raise ModelKitError(f"blob {digest} in {self.display} is larger than {limit} bytes")
                chunks.append(b)
        return b"".join(chunks)

    # ---- manifests and tags -------------------------------------------------------------------
    @abc.abstractmethod
    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """Fetch a manifest or index by tag or digest: ``(raw bytes, media type, digest)``.

        The digest is computed from the raw bytes and, when ``reference`` is a digest, must
        equal it (else :class:`~mlflow_plugin.errors.DigestMismatchError`).
        """

    def resolve(self, reference: str) -> Descriptor:
        """Descriptor of the manifest a tag or digest names."""
        data, mt, digest = self.get_manifest(reference)
        return Descriptor(mt, digest, len(data))

    @abc.abstractmethod
    def put_manifest(self, data: bytes, media_type: str = OCI_MANIFEST, tag: str | None = None) -> str:
        """Store a manifest/index (optionally under ``tag``) and return its digest.

        Refuses if a referenced config/layer/child manifest is missing. When the manifest has a
        ``subject``, it is added to the subject's referrers (index at ``sha256-<hex>`` on stores
        without a referrers API).
        """

    @abc.abstractmethod
    def tag(self, digest: str, tag: str) -> None:
        """Point ``tag`` at an existing manifest ``digest``."""

    @abc.abstractmethod
    def list_tags(self) -> list[str]:
        """All tags, sorted."""

    @abc.abstractmethod
    def delete_tag(self, tag: str) -> None:
        """Remove a tag (not the manifest it points to, where the store allows that)."""

    # ---- referrers ----------------------------------------------------------------------------
    @abc.abstractmethod
    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``digest`` (filtered by ``artifact_type`` if given)."""

    def iter_blobs_of(self, manifest: dict[str, Any]) -> Iterator[Descriptor]:
        """Config then layers of a parsed image manifest."""
        if manifest.get("config"):
            yield Descriptor.from_json(manifest["config"])
        for layer in manifest.get("layers") or []:
            yield Descriptor.from_json(layer)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or locks."""


def empty_index() -> dict[str, Any]:
    """A fresh, empty OCI image index."""
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


_DESC_ORDER = ("mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType")
_INDEX_ORDER = ("schemaVersion", "mediaType", "artifactType", "manifests", "subject", "annotations")


def _go_ordered(d: dict[str, Any], order: tuple[str, ...]) -> Ordered:
    """Copy ``d`` with keys in Go struct field order (unknown keys kept, after the known ones)."""
    out = Ordered()
    for k in order:
        if k in d:
            out[k] = d[k]
    for k, v in d.items():
        if k not in out:
            out[k] = v
    return out


def merge_referrers_index(index: dict[str, Any], desc: Descriptor) -> bytes:
    """The tag-schema referrers ``index`` (parsed; ``{}`` if none) plus ``desc``, deduplicated,
    sorted by digest and serialised like go-containerregistry writes it. Shared by every store."""
    entries = [
        m for m in index.get("manifests") or [] if isinstance(m, dict) and m.get("digest") != desc.digest
    ]
    entries.append(desc.to_json())
    entries.sort(key=lambda m: str(m.get("digest")))
    merged = {
        **index,
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [_go_ordered(m, _DESC_ORDER) for m in entries],
    }
    return dumps(_go_ordered(merged, _INDEX_ORDER))
