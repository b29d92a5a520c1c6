"""Safe, verified extraction of kit layer tars.

>>> with Staging("./out", overwrite=False) as st:                     # doctest: +SKIP
...     with repo.open_blob(layer.digest, layer.size) as blob:
...         extract_layer(blob, layer.media_type, st)
...     st.commit()                          # moves files into ./out only if every layer verified

Only regular files and directories are accepted; absolute paths, ``..``, links, devices and
FIFOs are refused (:class:`UnsafeArchiveError`). Files are extracted into a staging directory
inside the target and moved into place only after every layer's digest has been verified, so a
failure leaves nothing behind. Existing files are never overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from typing import IO, Any

from mlflow_plugin.errors import ExistsError, LimitExceededError, ModelKitError, UnsafeArchiveError
from mlflow_plugin.kit.decompress import Budget, DecompressingReader
from mlflow_plugin.kit.fileindex import check_index_matches
from mlflow_plugin.kit.limits import DEFAULT_LIMITS, UnpackLimits
from mlflow_plugin.kit.mediatypes import parse_layer_media_type
from mlflow_plugin.kit.safepath import clean_path, inside

CHUNK = 1 << 20
# Writes of 128 KiB: on this kind of VM, 1 MiB writes cost 5-8x more kernel time (dirty-page
# throttling); zstd -dc writes 128 KiB too (bench/unpack.py measures both).
WRITE_CHUNK = 128 << 10


def safe_member_path(name: str) -> str:
    """Normalise a tar member name or raise if it could escape the target (the one safe-path rule)."""
    return clean_path(name)


class Staging:
    """A staging directory inside ``target``; :meth:`commit` moves its tree into ``target``."""

    def __init__(self, target: str, overwrite: bool = False, ignore_existing: bool = False) -> None:
        self.target = os.path.abspath(target)
        self.overwrite = overwrite
        self.ignore_existing = ignore_existing
        self.created_target = False
        self.dir = ""
        self.files: list[str] = []
        self.sizes: dict[str, int] = {}
        self._parents_ok: set[str] = set()
        self.dirs: dict[str, int] = {}

    def __enter__(self) -> Staging:
        if not os.path.isdir(self.target):
            if os.path.exists(self.target):
                raise ExistsError(f"{self.target} exists and is not a directory")
            os.makedirs(self.target)
            self.created_target = True
        self.dir = tempfile.mkdtemp(prefix=".modelkit-unpack-", dir=self.target)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        if exc_type is not None and self.created_target:
            with contextlib.suppress(OSError):
                os.rmdir(self.target)

    def check_conflict(self, rel: str) -> bool:
        """True if ``rel`` may be written; raises if it exists and overwriting was not asked."""
        dest = os.path.join(self.target, rel)
        if os.path.lexists(dest):
            if os.path.islink(dest) or not os.path.isfile(dest):
                raise ExistsError(f"path '{rel}' already exists in {self.target} and is not a regular file")
            if self.ignore_existing:
                return False
            if not self.overwrite:
                raise ExistsError(
                    f"path '{rel}' already exists in {self.target}; use --overwrite to replace it"
                )
        return True

    def reserve(self, rel: str, size: int) -> str | None:
        """Check ``rel`` and return the staging path the caller writes it to (``None``: keep the
        existing file). The file moves to ``target/rel`` on :meth:`commit`."""
        rel = clean_path(rel)
        if rel in self.sizes:
            raise UnsafeArchiveError(f"layer contains '{rel}' twice")
        if rel in self.dirs:
            raise UnsafeArchiveError(f"layer entry '{rel}' is both a file and a directory")
        self._check_parents(rel)
        self.sizes[rel] = size
        if not self.check_conflict(rel):
            return None
        path = os.path.join(self.dir, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.files.append(rel)
        return path

    def add_file(self, rel: str, src: IO[bytes], size: int, mode: int) -> None:
        path = self.reserve(rel, size)
        if path is None:
            _drain(src, size)
            return
        left = size
        with open(path, "wb") as out:
            while left > 0:
                b = src.read(min(WRITE_CHUNK, left))
                if not b:
                    raise UnsafeArchiveError(f"layer ends inside '{rel}' (truncated)")
                out.write(b)
                left -= len(b)
        os.chmod(path, (mode & 0o777) or 0o644)

    def add_dir(self, rel: str, mode: int) -> None:
        rel = clean_path(rel)
        if rel in self.sizes:
            raise UnsafeArchiveError(f"layer entry '{rel}' is both a file and a directory")
        self._check_parents(rel)
        dest = os.path.join(self.target, rel)
        if os.path.lexists(dest) and (os.path.islink(dest) or not os.path.isdir(dest)):
            raise ExistsError(f"path '{rel}' already exists in {self.target} and is not a directory")
        os.makedirs(os.path.join(self.dir, rel), exist_ok=True)
        self.dirs[rel] = (mode & 0o777) or 0o755

    def _check_parents(self, rel: str) -> None:
        """No ancestor of ``rel`` may be a file, in the layer or on disk (``a`` then ``a/b``)."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.dirs or parent in self._parents_ok:
                continue
            if parent in self.sizes:
                raise UnsafeArchiveError(f"layer entry '{parent}' is both a file and a directory")
            dest = os.path.join(self.target, parent)
            if os.path.lexists(dest) and not os.path.isdir(dest):
                raise ExistsError(
                    f"path '{parent}' already exists in {self.target} and is not a directory; "
                    "remove it or unpack into an empty directory"
                )
            self._parents_ok.add(parent)

    def commit(self) -> list[str]:
        """Move staged files into place (after every layer verified). Returns written paths.

        Every destination is checked (inside the target after resolving existing symlinks, no
        new conflicts) before the first file moves, so a refused commit writes nothing.
        """
        for rel in [*sorted(self.dirs), *self.files]:
            inside(self.target, rel)
            self._check_parents(rel)
        if not self.overwrite:
            for rel in self.files:
                if os.path.lexists(os.path.join(self.target, rel)):
                    raise ExistsError(
                        f"path '{rel}' appeared in {self.target} during unpack; use --overwrite"
                    )
        for rel in sorted(self.dirs):
            dest = os.path.join(self.target, rel)
            if not os.path.isdir(dest):
                os.makedirs(dest, exist_ok=True)
                os.chmod(dest, self.dirs[rel] | 0o700)
        for rel in self.files:
            dest = os.path.join(self.target, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(os.path.join(self.dir, rel), dest)
        return list(self.files)


def _drain(src: IO[bytes], size: int) -> None:
    left = size
    while left > 0:
        b = src.read(min(CHUNK, left))
        if not b:
            break
        left -= len(b)


_ALLOWED = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE)


def extract_layer(
    blob: IO[bytes],
    media_type: str,
    staging: Staging,
    only: str | None = None,
    *,
    limits: UnpackLimits | None = None,
    budget: Budget | None = None,
    layer: str | None = None,
    index: list[list[Any]] | None = None,
) -> list[str]:
    """Stream one layer into ``staging``; reads ``blob`` to EOF so its digest is verified.

    ``only`` limits extraction to one path (file or directory subtree) inside the layer.
    ``limits`` (default: ``budget``'s, else :data:`DEFAULT_LIMITS`) bound its output, ratio and
    entry count; ``budget`` is shared by the layers of one unpack so their output adds up.
    ``layer`` (its digest) names the layer in errors. ``index`` (the layer's parsed file index,
    :func:`~mlflow_plugin.kit.fileindex.parse_file_index`) must agree with the tar: same files, sizes
    and offsets, else :class:`UnsafeArchiveError` (MLflow downloads trust the index).
    """
    parsed = parse_layer_media_type(media_type)
    if parsed is None:
        raise ModelKitError(f"not a ModelKit tar layer: {media_type}")
    _base, fmt, compression = parsed
    if fmt != "tar":
        raise ModelKitError(f"layer format {fmt!r} ({media_type}) is not supported yet")
    if limits is None:
        limits = budget.limits if budget is not None else DEFAULT_LIMITS
    name = layer or "(unnamed)"
    names: list[str] = []
    listing: dict[str, tuple[int, int]] | None = {} if index else None
    try:
        # closing the reader stops its read-ahead thread before _verify_rest reads the blob here
        with DecompressingReader(blob, compression, limits, layer=name, budget=budget) as stream:
            _extract(stream, staging, only, names, limits.max_entries, name, listing)  # type: ignore[arg-type]
        if index and listing is not None:
            check_index_matches(index, listing, name)
    except LimitExceededError:
        raise  # refused before reading the rest: a bomb's or a huge layer's tail is not worth reading
    except (UnsafeArchiveError, ExistsError):
        # A tampered blob usually breaks the tar too: report the digest mismatch, not the symptom.
        _verify_rest(blob)
        raise
    _verify_rest(blob)
    return names


def _verify_rest(blob: IO[bytes]) -> None:
    """Read ``blob`` to EOF so a digesting reader checks its digest (raises on mismatch)."""
    _drain(blob, 1 << 62)
    verify = getattr(blob, "verify", None)
    if verify:
        verify()


def _extract(
    stream: IO[bytes],
    staging: Staging,
    only: str | None,
    names: list[str],
    max_entries: int,
    layer: str,
    listing: dict[str, tuple[int, int]] | None = None,
) -> None:
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for count, m in enumerate(tf, 1):
                tf.members.clear()  # streaming: keep no list of past headers (memory stays flat)
                if count > max_entries:
                    raise LimitExceededError(
                        f"layer {layer} has more than {max_entries} entries (limit [limits] "
                        f"max_unpack_entries = {max_entries}); raise it in the admin config if this "
                        "kit is trusted"
                    )
                if m.type not in _ALLOWED:
                    kind = {
                        tarfile.SYMTYPE: "symlink",
                        tarfile.LNKTYPE: "hard link",
                        tarfile.CHRTYPE: "device",
                        tarfile.BLKTYPE: "device",
                        tarfile.FIFOTYPE: "FIFO",
                    }.get(m.type, f"type {m.type!r}")
                    raise UnsafeArchiveError(
                        f"unrecognized type in archive: '{m.name}' is a {kind}; "
                        "ModelKit layers may only hold files and directories"
                    )
                rel = safe_member_path(m.name)
                if listing is not None and not m.isdir():
                    listing[rel] = (m.size, m.offset_data)
                if only and not (rel == only or rel.startswith(only + "/") or only.startswith(rel + "/")):
                    continue
                if m.isdir():
                    staging.add_dir(rel, m.mode)
                else:
                    f = tf.extractfile(m)
                    assert f is not None
                    staging.add_file(rel, f, m.size, m.mode)
                    names.append(rel)
    except tarfile.TarError as e:
        raise UnsafeArchiveError(f"layer is not a valid tar archive: {e}") from None
