"""The one safe-path rule for every path a kit controls: tar headers, the file index, Kitfile paths,
layer annotations. Every way bytes reach a disk (unpack, MLflow downloads and loads, verify-on-load
and publish staging) goes through :func:`clean_path` and :func:`inside`.

>>> clean_path("./model/MLmodel")
'model/MLmodel'
>>> clean_path("model/")
'model'
>>> try:
...     clean_path("model/../../etc/passwd")
... except UnsafeArchiveError as e:
...     print(e)
illegal file path 'model/../../etc/passwd': '..' leaves the target directory

Refused: empty names, absolute paths, Windows drive letters and backslashes, ``..`` anywhere, empty
segments (``a//b``), NUL and other control characters, names longer than a file system allows,
the target directory itself, and ``.`` segments inside a path. A leading ``./`` and one trailing
``/`` (tar's directory marker) are normalised away.
"""

from __future__ import annotations

import os
import re

from mlflow_plugin.errors import UnsafeArchiveError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255


def _show(name: str) -> str:
    """The name as a quoted, single-line, bounded string (control characters escaped)."""
    r = repr(name)
    return r if len(r) <= 160 else r[:150] + "…'"


def clean_path(name: object, what: str = "file path") -> str:
    """Normalise a kit-controlled relative path, or raise :class:`UnsafeArchiveError`.

    ``what`` names the kind of path in the message (``file path``, ``file index path`` …).
    """
    if not isinstance(name, str) or not name:
        raise UnsafeArchiveError(f"illegal {what} {_show(str(name))}: empty or not a string")
    if _CONTROL.search(name):
        raise UnsafeArchiveError(f"illegal {what} {_show(name)}: contains a NUL or control character")
    if "\\" in name:
        raise UnsafeArchiveError(f"illegal {what} {_show(name)}: backslashes are not path separators here")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchiveError(f"illegal {what} {_show(name)}: absolute paths are not allowed")
    body = name[:-1] if name.endswith("/") else name
    while body.startswith("./"):  # tar's "./dir/file" spelling
        body = body[2:]
    out: list[str] = []
    for seg in body.split("/"):
        if seg == "..":
            raise UnsafeArchiveError(f"illegal {what} {_show(name)}: '..' leaves the target directory")
        if seg == "":
            raise UnsafeArchiveError(f"illegal {what} {_show(name)}: empty path segment")
        if seg == ".":
            raise UnsafeArchiveError(f"illegal {what} {_show(name)}: '.' segment; write the path normalised")
        if len(seg.encode("utf-8", "surrogateescape")) > MAX_SEGMENT_BYTES:
            raise UnsafeArchiveError(f"illegal {what} {_show(name)}: a name is longer than 255 bytes")
        out.append(seg)
    if not out:
        raise UnsafeArchiveError(f"illegal {what} {_show(name)}: names the target directory itself")
    clean = "/".join(out)
    if len(clean.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise UnsafeArchiveError(f"illegal {what} {_show(name)}: longer than {MAX_PATH_BYTES} bytes")
    return clean


def inside(target: str, rel: str) -> str:
    """``target/rel`` as a host path, refused if it resolves outside ``target`` through symlinks
    already on disk (``rel`` must come from :func:`clean_path`)."""
    real_target = os.path.realpath(target)
    path = os.path.join(target, *rel.split("/"))
    real = os.path.realpath(path)
    if real != real_target and not real.startswith(real_target.rstrip(os.sep) + os.sep):
        raise UnsafeArchiveError(
            f"illegal file path {_show(rel)}: resolves outside {real_target} through a symlink on disk"
        )
    return path
