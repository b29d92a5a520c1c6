"""The per-layer file index (annotation ``dev.mlflow-modelkit.files``), parsed as hostile input.

Every record is ``[path, size, sha256, offset]`` (a directory with nothing below it is
``["dir/", 0, "", 0]``). Whoever writes a kit writes its index, so nothing in it is trusted:

>>> desc = {"mediaType": "application/vnd.kitops.modelkit.model.v1.tar", "size": 2048,
...         "annotations": {ANN_FILES: '[["model/MLmodel",3,"' + "ab" * 32 + '",512]]'}}
>>> parse_file_index(desc)
[['model/MLmodel', 3, 'abababababababababababababababababababababababababababababababab', 512]]
>>> desc["annotations"][ANN_FILES] = '[["../../x/evil.txt",3,"' + "ab" * 32 + '",512]]'
>>> try:
...     parse_file_index(desc)
... except UnsafeArchiveError as e:
...     print(e)
illegal file index path '../../x/evil.txt': '..' leaves the target directory

:func:`check_header` ties an index record to the tar header in front of its bytes, so a download
by range request gets the same file (name, size, type) that ``unpack`` would write.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from typing import Any

from mlflow_plugin.errors import UnsafeArchiveError
from mlflow_plugin.kit.safepath import clean_path

ANN_FILES = "dev.mlflow-modelkit.files"
MAX_INDEX_BYTES = 64 << 20
BLOCK = 512
_SHA = re.compile(r"^[0-9a-f]{64}$")


def _short(digest: str) -> str:
    return digest[:19] if digest else "(unknown)"


def parse_file_index(desc: dict[str, Any]) -> list[list[Any]]:
    """The validated index of one layer descriptor (``[]`` if it has none).

    Paths are normalised with the safe-path rule; sizes and offsets must be non-negative integers
    that fit in the layer, offsets block-aligned; SHA-256 values hex; no path twice, no path both a
    file and a directory. Raises :class:`UnsafeArchiveError` naming the layer otherwise.
    """
    raw = (desc.get("annotations") or {}).get(ANN_FILES)
    if not raw:
        return []
    layer = _short(str(desc.get("digest", "")))
    if not isinstance(raw, str) or len(raw) > MAX_INDEX_BYTES:
        raise UnsafeArchiveError(f"layer {layer}: file index is not a string of at most 64 MiB")
    mt = str(desc.get("mediaType", ""))
    if mt.endswith((".gzip", ".zstd", "+gzip", "+zstd")):
        raise UnsafeArchiveError(f"layer {layer}: a file index on a compressed layer ({mt}) cannot be used")
    try:
        recs = json.loads(raw)
    except ValueError:
        raise UnsafeArchiveError(f"layer {layer}: file index is not valid JSON") from None
    if not isinstance(recs, list):
        raise UnsafeArchiveError(f"layer {layer}: file index is not a list")
    layer_size = desc.get("size")
    out: list[list[Any]] = []
    seen: set[str] = set()
    for rec in recs:
        path, size, sha, off = _record(rec, layer)
        is_dir = path.endswith("/")
        clean = clean_path(path, "file index path")
        if clean in seen:
            raise UnsafeArchiveError(f"layer {layer}: file index lists {clean!r} twice")
        seen.add(clean)
        if is_dir:
            out.append([clean + "/", 0, "", 0])
            continue
        if not _SHA.match(sha):
            raise UnsafeArchiveError(f"layer {layer}: file index entry {clean!r} has no valid SHA-256")
        if off < BLOCK or off % BLOCK:
            raise UnsafeArchiveError(f"layer {layer}: file index entry {clean!r} has a bad offset {off}")
        if isinstance(layer_size, int) and off + size > layer_size:
            raise UnsafeArchiveError(f"layer {layer}: file index entry {clean!r} lies beyond the layer's end")
        out.append([clean, size, sha, off])
    check_tree([r[0].rstrip("/") for r in out if not r[0].endswith("/")], f"layer {layer}")
    return out


def _record(rec: Any, layer: str) -> tuple[str, int, str, int]:
    ok = (
        isinstance(rec, list)
        and len(rec) == 4
        and isinstance(rec[0], str)
        and isinstance(rec[2], str)
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (rec[1], rec[3]))
    )
    if not ok:
        raise UnsafeArchiveError(f"layer {layer}: malformed file index record {str(rec)[:80]!r}")
    return rec[0], rec[1], rec[2], rec[3]


def check_tree(files: list[str], where: str) -> None:
    """Refuse a set of file paths where one path is also the directory of another (``a`` and ``a/b``)."""
    paths = set(files)
    for p in files:
        parts = p.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in paths:
                raise UnsafeArchiveError(f"{where}: {parent!r} is both a file and a directory")


def check_header(block: bytes, path: str, size: int, layer: str) -> None:
    """The 512-byte tar header before a file's bytes must name a regular file of ``size`` bytes at
    ``path`` (USTAR name, or a truncated name when a PAX record carries the real one: then only the
    size and type can be checked here, and :func:`pax_path` is consulted by the caller)."""
    info = _parse_header(block, path, layer)
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        raise UnsafeArchiveError(f"layer {layer}: index entry {path!r} does not point at a regular file")
    if info.size != size and not (size >= 8**11):  # sizes >= 8 GiB live in a PAX record
        raise UnsafeArchiveError(
            f"layer {layer}: index says {path!r} has {size} bytes, the tar header says {info.size}"
        )


def header_name(block: bytes, path: str, layer: str) -> str:
    """The USTAR name (prefix/name) of a header block."""
    info = _parse_header(block, path, layer)
    return info.name


def _parse_header(block: bytes, path: str, layer: str) -> tarfile.TarInfo:
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        raise UnsafeArchiveError(
            f"layer {layer}: index entry {path!r} does not start after a tar header (index and tar disagree)"
        ) from None


def pax_records(data: bytes) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of a PAX extended header's records (malformed input raises)."""
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            raise UnsafeArchiveError("malformed PAX header")
        try:
            n = int(data[pos:sp])
        except ValueError:
            raise UnsafeArchiveError("malformed PAX header") from None
        if n <= 0 or pos + n > len(data):
            raise UnsafeArchiveError("malformed PAX header")
        rec = data[sp + 1 : pos + n - 1]
        key, _, value = rec.partition(b"=")
        yield key.decode("utf-8", "replace"), value.decode("utf-8", "surrogateescape")
        pos += n


def check_index_matches(index: list[list[Any]], tar_files: dict[str, tuple[int, int]], layer: str) -> None:
    """The index (from :func:`parse_file_index`) must list exactly the tar's regular files, each with
    the tar's size and data offset (``tar_files``: path -> (size, offset))."""
    indexed = {r[0]: (r[1], r[3]) for r in index if not r[0].endswith("/")}
    for path, (size, off) in indexed.items():
        got = tar_files.get(path)
        if got is None:
            raise UnsafeArchiveError(
                f"layer {_short(layer)}: the file index lists {path!r}, the tar does not hold it "
                "(index and tar disagree)"
            )
        if got != (size, off):
            raise UnsafeArchiveError(
                f"layer {_short(layer)}: the file index says {path!r} is {size} bytes at offset {off}, "
                f"the tar says {got[0]} bytes at {got[1]} (index and tar disagree)"
            )
    extra = sorted(set(tar_files) - set(indexed))
    if extra:
        raise UnsafeArchiveError(
            f"layer {_short(layer)}: the tar holds {extra[0]!r}, the file index does not list it "
            "(index and tar disagree)"
        )


def layer_path(desc: dict[str, Any]) -> str:
    """A layer's ``org.cncf.model.filepath`` annotation under the safe-path rule (``.`` = the root)."""
    from mlflow_plugin.kit.mediatypes import ANN_FILEPATH

    raw = (desc.get("annotations") or {}).get(ANN_FILEPATH, ".")
    if raw in (".", "./"):
        return "."
    return clean_path(raw, f"layer path annotation of {_short(str(desc.get('digest', '')))}")
