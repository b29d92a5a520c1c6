"""A repository stored as a local OCI image layout directory (readable by skopeo, oras, crane).

>>> repo = LayoutRepository("/tmp/kits/fraud", create=True)    # doctest: +SKIP
>>> repo.put_manifest(manifest_bytes, tag="v1")                 # doctest: +SKIP

Layout: ``oci-layout``, ``index.json`` (tags as ``org.opencontainers.image.ref.name``),
``blobs/sha256/<hex>``. Blobs are written to a temp file while hashing, verified, fsynced and
renamed into place, so a blob path only ever holds the right bytes. ``index.json`` is rewritten
atomically (temp file + rename) under an exclusive ``flock`` on ``index.json.lock``, so
concurrent writers (several processes logging to one run) never lose a tag. Referrers use the
same ``sha256-<hex>`` tag-schema index as registries without a referrers API.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any

from mlflow_plugin._internal.atomic import temp_beside
from mlflow_plugin.errors import DigestMismatchError, ModelKitError, NotFoundError
from mlflow_plugin.storage.base import (
    Progress,
    Repository,
    empty_index,
    merge_referrers_index,
    referrer_descriptor,
    referrers_tag,
)
from mlflow_plugin.storage.descriptor import Descriptor, DigestingReader, check_digest
from mlflow_plugin.storage.mediatypes import ANN_REF_NAME, OCI_INDEX, OCI_LAYOUT_VERSION, OCI_MANIFEST
from mlflow_plugin.storage.reference import check_tag

CHUNK = 1 << 20


class LayoutRepository(Repository):
    """One OCI image layout directory = one repository."""

    def __init__(self, path: str, create: bool = False) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.display = f"oci:{path}"
        self.name = path
        self._tlock = threading.RLock()
        self._depth = 0
        layout_file = os.path.join(self.path, "oci-layout")
        if not os.path.isfile(layout_file):
            if not create:
                raise NotFoundError(
                    f"{self.display} is not an OCI image layout (no oci-layout file); check the path"
                )
            self._init_layout()
        else:
            self._check_layout(layout_file)

    # ---- setup -----------------------------------------------------------------------------
    def _init_layout(self) -> None:
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ModelKitError(f"{self.display}: path exists and is not a directory")
        os.makedirs(os.path.join(self.path, "blobs", "sha256"), exist_ok=True)
        with self.exclusive():
            if not os.path.isfile(os.path.join(self.path, "index.json")):
                self._write_index(empty_index_no_mt())
            lf = os.path.join(self.path, "oci-layout")
            if not os.path.isfile(lf):
                self._atomic_write(lf, json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode())

    def _check_layout(self, layout_file: str) -> None:
        try:
            with open(layout_file, "rb") as f:
                v = json.loads(f.read(4096)).get("imageLayoutVersion")
        except (OSError, ValueError, AttributeError):
            v = None
        if v != OCI_LAYOUT_VERSION:
            raise ModelKitError(f"{self.display}: unsupported or corrupt oci-layout file (version {v!r})")

    # ---- low-level files -------------------------------------------------------------------
    def _blob_path(self, digest: str) -> str:
        alg, enc = check_digest(digest).split(":", 1)
        return os.path.join(self.path, "blobs", alg, enc)

    kind = "layout"

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:  # type: ignore[override]
        """Exclusive lock on the layout: re-entrant within a thread, ``flock`` across processes."""
        with self._tlock:
            self._depth += 1
            try:
                if self._depth == 1:
                    fd = os.open(os.path.join(self.path, "index.json.lock"), os.O_RDWR | os.O_CREAT, 0o644)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX)
                        yield
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                        os.close(fd)
                else:
                    yield
            finally:
                self._depth -= 1

    def _atomic_write(self, dest: str, data: bytes) -> None:
        with temp_beside(os.path.dirname(dest), ".tmp-") as t:
            t.file.write(data)
            t.commit(dest, fsync=True)

    def _read_index(self) -> dict[str, Any]:
        p = os.path.join(self.path, "index.json")
        try:
            with open(p, "rb") as f:
                idx = json.load(f)
        except FileNotFoundError:
            return empty_index_no_mt()
        except ValueError as e:
            raise ModelKitError(
                f"{self.display}: index.json is corrupt ({e}); restore it from a backup"
            ) from None
        if not isinstance(idx, dict) or not isinstance(idx.get("manifests", []), list):
            raise ModelKitError(f"{self.display}: index.json is not an OCI image index")
        idx.setdefault("manifests", [])
        return idx

    def _write_index(self, idx: dict[str, Any]) -> None:
        self._atomic_write(os.path.join(self.path, "index.json"), json.dumps(idx, indent=None).encode())

    # ---- blobs -----------------------------------------------------------------------------
    def blob_exists(self, digest: str) -> bool:
        return os.path.isfile(self._blob_path(digest))

    def open_blob(self, digest: str, size: int | None = None) -> DigestingReader:
        p = self._blob_path(digest)
        try:
            f = open(p, "rb")  # noqa: SIM115 - returned to the caller
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} not found in {self.display}") from None
        return DigestingReader(f, digest, size, what=f"blob in {self.display}")

    def read_range(self, digest: str, offset: int, length: int) -> bytes:
        p = self._blob_path(digest)
        try:
            with open(p, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} not found in {self.display}") from None

    def iter_range(self, digest: str, offset: int, length: int, chunk: int = 1 << 20) -> Iterator[bytes]:
        try:
            f = open(self._blob_path(digest), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} not found in {self.display}") from None
        with f:
            f.seek(offset)
            left = length
            while left > 0:
                b = f.read(min(chunk, left))
                if not b:
                    return
                left -= len(b)
                yield b

    def push_blob(self, src: IO[bytes], digest: str, size: int, progress: Progress | None = None) -> bool:
        check_digest(digest)
        if self.blob_exists(digest):
            return False
        self._ingest(_read_chunks(src, size), progress, expect=(digest, size))
        return True

    def push_blob_chunks(
        self, chunks: Iterable[bytes], progress: Progress | None = None, size: int | None = None
    ) -> tuple[str, int]:
        digest, n = self._ingest(chunks, progress, expect=None)
        if size is not None and n != size:
            raise DigestMismatchError(f"upload to {self.display}: stream had {n} bytes, expected {size}")
        return digest, n

    def _ingest(
        self, chunks: Iterable[bytes], progress: Progress | None, expect: tuple[str, int] | None
    ) -> tuple[str, int]:
        d = os.path.join(self.path, "blobs", "sha256")
        os.makedirs(d, exist_ok=True)
        h = hashlib.sha256()
        n = 0
        with temp_beside(d, ".ingest-") as t:
            for chunk in chunks:
                h.update(chunk)
                t.file.write(chunk)
                n += len(chunk)
                if progress:
                    progress(len(chunk))
            digest = "sha256:" + h.hexdigest()
            if expect is not None and (digest, n) != expect:
                raise DigestMismatchError(
                    f"upload to {self.display}: content hashes to {digest} ({n} bytes), expected "
                    f"{expect[0]} ({expect[1]} bytes); the source changed or is corrupt"
                )
            t.commit(self._blob_path(digest), fsync=True)
            return digest, n

    # ---- manifests ---------------------------------------------------------------------------
    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        if reference.startswith("sha256:"):
            desc = None
            with self._lock_shared():
                for d in self._read_index()["manifests"]:
                    if d.get("digest") == reference:
                        desc = d
                        break
            digest = reference
            mt = desc.get("mediaType") if desc else None
        else:
            check_tag(reference)
            desc = self._find_tag(reference)
            if desc is None:
                raise NotFoundError(
                    f"tag {reference!r} not found in {self.display}; run 'mlflow-modelkit list "
                    f"{self.display}' to see the tags"
                )
            digest, mt = desc["digest"], desc.get("mediaType")
        try:
            data = self.read_blob(digest, desc.get("size") if desc else None, limit=4 << 20)
        except NotFoundError:
            raise NotFoundError(f"manifest {reference} not found in {self.display}") from None
        if not mt:
            try:
                mt = json.loads(data).get("mediaType") or OCI_MANIFEST
            except ValueError:
                mt = OCI_MANIFEST
        return data, mt, digest

    @contextlib.contextmanager
    def _lock_shared(self) -> Iterator[None]:
        yield  # index.json is replaced atomically; readers need no lock

    def _find_tag(self, tag: str) -> dict[str, Any] | None:
        for d in self._read_index()["manifests"]:
            if (d.get("annotations") or {}).get(ANN_REF_NAME) == tag:
                return d
        return None

    def put_manifest(self, data: bytes, media_type: str = OCI_MANIFEST, tag: str | None = None) -> str:
        if tag is not None:
            check_tag(tag)
        try:
            m = json.loads(data)
        except ValueError:
            raise ModelKitError("refusing to store a manifest that is not JSON") from None
        self._check_children(m, media_type)
        desc = Descriptor.for_bytes(media_type, data)
        if not self.blob_exists(desc.digest):
            self._ingest([data], None, expect=(desc.digest, desc.size))
        entry: dict[str, Any] = {"mediaType": media_type, "digest": desc.digest, "size": desc.size}
        if m.get("artifactType"):
            entry["artifactType"] = m["artifactType"]
        with self.exclusive():
            idx = self._read_index()
            mans = idx["manifests"]
            if tag is not None:
                mans[:] = [d for d in mans if (d.get("annotations") or {}).get(ANN_REF_NAME) != tag]
                mans.append({**entry, "annotations": {ANN_REF_NAME: tag}})
            elif not any(d.get("digest") == desc.digest for d in mans):
                mans.append(entry)
            self._write_index(idx)
        subject = m.get("subject")
        if isinstance(subject, dict) and subject.get("digest"):
            self._add_referrer(check_digest(subject["digest"]), referrer_descriptor(data, media_type))
        return desc.digest

    def _check_children(self, m: dict[str, Any], media_type: str) -> None:
        missing: list[str] = []
        if media_type == OCI_INDEX:
            for d in m.get("manifests") or []:
                if not self.blob_exists(d.get("digest", "")):
                    missing.append(d.get("digest", "?"))
        else:
            for d in self.iter_blobs_of(m):
                if not self.blob_exists(d.digest):
                    missing.append(d.digest)
        if missing:
            raise ModelKitError(
                f"refusing to write a manifest to {self.display}: {len(missing)} blob(s) missing, "
                f"e.g. {missing[0]}; push the blobs first"
            )

    def _add_referrer(self, subject: str, desc: Descriptor) -> None:
        tag = referrers_tag(subject)
        with self.exclusive():
            found = self._find_tag(tag)
            idx = json.loads(self.read_blob(found["digest"])) if found else empty_index()
            data = merge_referrers_index(idx, desc)
            d = Descriptor.for_bytes(OCI_INDEX, data)
            if not self.blob_exists(d.digest):
                self._ingest([data], None, expect=(d.digest, d.size))
            index = self._read_index()
            index["manifests"] = [
                x for x in index["manifests"] if (x.get("annotations") or {}).get(ANN_REF_NAME) != tag
            ]
            index["manifests"].append(
                {
                    "mediaType": OCI_INDEX,
                    "digest": d.digest,
                    "size": d.size,
                    "annotations": {ANN_REF_NAME: tag},
                }
            )
            self._write_index(index)

    def tag(self, digest: str, tag: str) -> None:
        check_tag(tag)
        data, mt, _ = self.get_manifest(digest)
        self.put_manifest(data, mt, tag=tag)

    def list_tags(self) -> list[str]:
        tags = {(d.get("annotations") or {}).get(ANN_REF_NAME) for d in self._read_index()["manifests"]}
        return sorted(t for t in tags if t)

    def list_manifests(self) -> list[dict[str, Any]]:
        """The raw ``index.json`` descriptors (tagged and untagged)."""
        return list(self._read_index()["manifests"])

    def delete_tag(self, tag: str) -> None:
        with self.exclusive():
            idx = self._read_index()
            before = len(idx["manifests"])
            idx["manifests"] = [
                d for d in idx["manifests"] if (d.get("annotations") or {}).get(ANN_REF_NAME) != tag
            ]
            if len(idx["manifests"]) == before:
                raise NotFoundError(f"tag {tag!r} not found in {self.display}")
            self._write_index(idx)

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        found = self._find_tag(referrers_tag(check_digest(digest)))
        if not found:
            return []
        idx = json.loads(self.read_blob(found["digest"], found.get("size")))
        out = [Descriptor.from_json(d) for d in idx.get("manifests", [])]
        return [d for d in out if artifact_type is None or d.artifact_type == artifact_type]


def empty_index_no_mt() -> dict[str, Any]:
    """index.json as skopeo/oras write it."""
    return {"schemaVersion": 2, "manifests": []}


def _read_chunks(src: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        b = src.read(min(CHUNK, left))
        if not b:
            raise DigestMismatchError(f"source ended {left} bytes early (expected {size} bytes)")
        left -= len(b)
        yield b
