"""Downloading one file of a kit by range request, checked against the tar it came from.

>>> f = IndexedFile("model/MLmodel", 120, "ab" * 32, 1536, layer)          # doctest: +SKIP
>>> download_file(repo, f, "./MLmodel")                                    # doctest: +SKIP

The request starts one 512-byte block early, at the tar header in front of the file: it must name
a regular file of the indexed size at the indexed path (long names: the PAX record before it), so a
range download yields exactly what ``unpack`` would write; the SHA-256 is checked before the file
appears (temp file, then rename).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from mlflow_plugin._internal.atomic import temp_beside
from mlflow_plugin._internal.pipeline import fan_out
from mlflow_plugin.errors import DigestMismatchError, UnsafeArchiveError
from mlflow_plugin.kit.fileindex import check_header, header_name, pax_records
from mlflow_plugin.kit.safepath import clean_path
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.descriptor import Descriptor


@dataclass(frozen=True)
class IndexedFile:
    """One file of a draft: its path, size, SHA-256 and where its bytes are in which layer."""

    path: str
    size: int
    sha256: str
    offset: int
    layer: Descriptor


def download_file(repo: Repository, f: IndexedFile, dest: str) -> None:
    """Fetch ``f``'s bytes by range request, check them against the tar, verify SHA-256, rename to ``dest``.

    The request starts one 512-byte block early, at the tar header in front of the file: it must
    name a regular file of the indexed size at the indexed path, so a range download yields what
    ``unpack`` would (the index is written by whoever wrote the kit and proves nothing alone).
    """
    with temp_beside(os.path.dirname(os.path.abspath(dest)), ".modelkit-dl-") as t:
        h = hashlib.sha256()
        # one range request; reading, hashing and writing overlap on three threads
        chunks = _after_header(repo, f, repo.iter_range(f.layer.digest, f.offset - BLOCK, f.size + BLOCK))
        n = fan_out(chunks, [h.update, t.file.write])
        if n != f.size:
            raise DigestMismatchError(
                f"short read of {f.path} from layer {f.layer.digest} ({n} of {f.size} bytes)"
            )
        if h.hexdigest() != f.sha256:
            raise DigestMismatchError(
                f"artifact {f.path!r} hashes to sha256:{h.hexdigest()}, the kit's index says "
                f"sha256:{f.sha256}; layer {f.layer.digest} is corrupt or was tampered with"
            )
        t.commit(dest)


BLOCK = 512
_PAX_LOOKBACK = 16 << 10  # PAX records of one entry (a path up to 4096 bytes) fit easily


def _after_header(repo: Repository, f: IndexedFile, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Check the tar header block that precedes ``f``'s bytes, then yield the bytes themselves."""
    head = b""
    for chunk in chunks:
        if len(head) < BLOCK:
            need = BLOCK - len(head)
            head += chunk[:need]
            chunk = chunk[need:]
            if len(head) == BLOCK:
                _check_entry(repo, f, head)
        if chunk:
            yield chunk
    if len(head) < BLOCK:
        raise UnsafeArchiveError(f"layer {f.layer.digest[:19]}: index entry {f.path!r} lies beyond the layer")


def _check_entry(repo: Repository, f: IndexedFile, header: bytes) -> None:
    layer = f.layer.digest[:19]
    check_header(header, f.path, f.size, layer)
    name = header_name(header, f.path, layer)
    if _same_path(name, f.path):
        return
    # a long or non-ASCII name: the real one is in the PAX header just before this one
    start = max(0, f.offset - BLOCK - _PAX_LOOKBACK)
    before = b"".join(repo.iter_range(f.layer.digest, start, f.offset - BLOCK - start))
    end = len(before)
    for pos in range(end - 2 * BLOCK, -1, -BLOCK):
        try:
            info = tarfile.TarInfo.frombuf(before[pos : pos + BLOCK], "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            continue
        if info.type != tarfile.XHDTYPE or pos + BLOCK + -(-info.size // BLOCK) * BLOCK != end:
            continue
        rec = dict(pax_records(before[pos + BLOCK : pos + BLOCK + info.size]))
        if _same_path(rec.get("path", name), f.path) and int(rec.get("size", f.size)) == f.size:
            return
        break
    raise UnsafeArchiveError(
        f"layer {layer}: the file index names {f.path!r} but the tar holds {name!r} there "
        "(index and tar disagree)"
    )


def _same_path(name: str, path: str) -> bool:
    try:
        return clean_path(name) == path
    except UnsafeArchiveError:
        return False
