"""Build kit layers from a context directory: which files, in which order, as which tar bytes.

>>> import hashlib, os, pathlib, shutil, tempfile
>>> ctx = pathlib.Path(tempfile.mkdtemp())
>>> _ = (ctx / "data.csv").write_text("a,b\\n1,2\\n"); os.chmod(ctx / "data.csv", 0o644)
>>> kf = Kitfile.parse("manifestVersion: 1.0.0\\ndatasets:\\n  - path: data.csv\\n")
>>> ignore = LayerIgnore.from_context(str(ctx), kf)
>>> for spec in plan_layers(kf):
...     tar = b"".join(LayerStream(walk_layer(str(ctx), spec.path, ignore)))
...     print(spec.kind, spec.media_type(), len(tar), hashlib.sha256(tar).hexdigest()[:16])
dataset application/vnd.kitops.modelkit.dataset.v1.tar 2048 ad4e6fc877eb1944
>>> shutil.rmtree(ctx)

Selection follows ``kit pack``: walk the whole context from ``.`` in byte-lexical pre-order,
keep entries in the same directory tree as the layer path (so ancestor directories are
emitted), drop other layers' subtrees and ``.kitignore`` matches, skip symlinks and other
non-regular files with a warning. The tar is generated lazily in ~1 MiB chunks: a layer is
never staged in memory or on disk.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugin.errors import KitfileError, ModelKitError
from mlflow_plugin.kit import tarwriter
from mlflow_plugin.kit.ignore import IgnoreMatcher, read_ignore_file
from mlflow_plugin.kit.kitfile import IGNORE_FILE, Kitfile, LayerInfo, is_modelkit_reference
from mlflow_plugin.kit.mediatypes import ANN_FILEPATH, ANN_LAYER_SUBTYPE, layer_media_type

log = logging.getLogger(__name__)
CHUNK = 1 << 20


@dataclass
class LayerSpec:
    """One layer to pack: its kind (model, modelpart, code, dataset, docs, prompt) and path."""

    kind: str
    path: str
    entry: object
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def clean_path(self) -> str:
        return posixpath.normpath(self.path or ".")

    def media_type(self, compression: str = "none") -> str:
        base = "code" if self.kind == "prompt" else self.kind
        return layer_media_type(base, compression)

    def set_layer_info(self, digest: str, diff_id: str) -> None:
        self.entry.layer = LayerInfo(digest, diff_id)  # type: ignore[attr-defined]


def plan_layers(kf: Kitfile) -> list[LayerSpec]:
    """Layers in kit's fixed order: model, parts, code, datasets, docs, prompts."""
    if kf.mcp_servers:
        raise KitfileError("mcpServers are not supported by mlflow-modelkit pack yet; remove them or use kit")
    out: list[LayerSpec] = []
    if kf.model is not None:
        if kf.model.path and not is_modelkit_reference(kf.model.path):
            out.append(LayerSpec("model", kf.model.path, kf.model))
        elif kf.model.path:
            raise KitfileError(
                f"model path {kf.model.path!r} references another ModelKit; packing on top of a parent kit "
                "is not supported yet: unpack the parent into the context instead"
            )
        out += [LayerSpec("modelpart", p.path, p) for p in kf.model.parts]
    out += [LayerSpec("code", c.path, c) for c in kf.code]
    out += [LayerSpec("dataset", d.path, d) for d in kf.datasets if not d.remote_path]
    out += [LayerSpec("docs", d.path, d) for d in kf.docs]
    out += [LayerSpec("prompt", p.path, p, {ANN_LAYER_SUBTYPE: "prompt"}) for p in kf.prompts]
    for spec in out:
        spec.annotations[ANN_FILEPATH] = spec.clean_path
    return out


def _within(path: str, parent: str) -> bool:
    return parent == "." or path == parent or path.startswith(parent + "/")


class LayerIgnore:
    """kit's ``ignore.Matches(path, layerPath)``: .kitignore plus the other layers' paths."""

    def __init__(self, matcher: IgnoreMatcher, layer_paths: list[str]) -> None:
        self.matcher = matcher
        self.layers = [posixpath.normpath(p.strip() or ".") for p in layer_paths]

    @classmethod
    def from_context(cls, ctx: str, kf: Kitfile) -> LayerIgnore:
        p = os.path.join(ctx, IGNORE_FILE)
        patterns: list[str] = []
        if os.path.isfile(p):
            with open(p, encoding="utf-8", errors="surrogateescape") as f:
                patterns = read_ignore_file(f.read())
        return cls(IgnoreMatcher(patterns), kf.layer_paths())

    def matches(self, path: str, layer_path: str) -> bool:
        path = posixpath.normpath(path.strip())
        layer_path = posixpath.normpath(layer_path.strip())
        if self.matcher.matches(path):
            return True
        for layer in self.layers:
            if _within(layer_path, layer):
                continue  # another layer that contains this one: do not exclude
            if _within(path, layer):
                return True
        return False


def _same_dir_tree(a: str, b: str) -> bool:
    """kit's ``sameDirTree``: false only if both relative paths contain ``..``."""
    a_to_b = posixpath.relpath(b, a)
    b_to_a = posixpath.relpath(a, b)
    return not (".." in a_to_b and ".." in b_to_a)


@dataclass
class Entry:
    """One tar member: context-relative name, lstat result and absolute path."""

    name: str
    st: os.stat_result
    abspath: str

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def walk_layer(ctx: str, layer_path: str, ignore: LayerIgnore) -> Iterator[Entry]:
    """Yield the entries kit would put in the layer for ``layer_path``, in tar order."""
    base = posixpath.normpath(layer_path or ".")
    if base == ".." or base.startswith("../") or posixpath.isabs(base):
        raise KitfileError(f"layer path {layer_path!r} is outside the context directory")
    if not os.path.exists(os.path.join(ctx, base)):
        raise KitfileError(f"layer path {layer_path!r} does not exist in {ctx}; fix the path in the Kitfile")
    if ignore.matches(base, base):
        log.warning("%s layer path %s is ignored by .kitignore", layer_path, base)
    yield from _walk(ctx, ".", base, ignore)


def _walk(ctx: str, rel: str, base: str, ignore: LayerIgnore) -> Iterator[Entry]:
    full = os.path.join(ctx, rel)
    try:
        names = sorted(os.listdir(full), key=lambda n: os.fsencode(n))
    except OSError as e:
        raise ModelKitError(f"cannot read directory {full}: {e.strerror}") from None
    for name in names:
        child = name if rel == "." else f"{rel}/{name}"
        abspath = os.path.join(ctx, child)
        st = os.lstat(abspath)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            if stat.S_ISLNK(st.st_mode) and _same_dir_tree(base, child):
                log.warning("skipping symlink %s (symlinks are not supported in ModelKits)", child)
            continue
        if not _same_dir_tree(base, child):
            continue
        if ignore.matches(child, base):
            if stat.S_ISDIR(st.st_mode) and ignore.matcher.has_exclusions:
                yield from _walk(ctx, child, base, ignore)
            continue
        yield Entry(child, st, abspath)
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(ctx, child, base, ignore)


@dataclass
class FileRecord:
    """Where a file's bytes sit inside a layer tar (for indexes and range reads)."""

    path: str
    size: int
    offset: int
    mode: int
    sha256: str | None = None


def tar_size(entries: list[Entry]) -> int:
    """Exact byte size of the tar :class:`LayerStream` will produce for ``entries`` (no reading)."""
    total = 0
    for e in entries:
        mode = tarwriter.tar_mode(e.st.st_mode)
        if e.is_dir:
            total += sum(len(b) for b in tarwriter.dir_header(e.name, mode))
        else:
            size = e.st.st_size
            total += (
                sum(len(b) for b in tarwriter.file_header(e.name, mode, size))
                + size
                + len(tarwriter.pad(size))
            )
    return total + len(tarwriter.END_OF_ARCHIVE)


class LayerStream:
    """Iterate the tar bytes of a layer in ~1 MiB chunks; records each file's offset.

    ``progress`` is called with the number of file bytes read. ``hash_files=True`` also
    computes each file's SHA-256 in the same pass (for file indexes).
    """

    def __init__(
        self,
        entries: Iterator[Entry] | list[Entry],
        progress: object = None,
        hash_files: bool = False,
    ) -> None:
        self._entries = entries
        self.progress = progress
        self.hash_files = hash_files
        self.files: list[FileRecord] = []
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        import hashlib

        from mlflow_plugin._internal.hashing import HashWorker

        worker = HashWorker()  # per-file SHA-256 on another core, overlapping the tar consumer
        hashers: list[tuple[FileRecord, Any]] = []
        try:
            yield from self._generate(worker, hashers, hashlib)
            worker.join()
        finally:
            worker.close()
        for rec, h in hashers:
            rec.sha256 = h.hexdigest()

    def _generate(self, worker: Any, hashers: list[tuple[FileRecord, Any]], hashlib: Any) -> Iterator[bytes]:
        buf = bytearray()
        for e in self._entries:
            mode = tarwriter.tar_mode(e.st.st_mode)
            if e.is_dir:
                for b in tarwriter.dir_header(e.name, mode):
                    buf += b
                continue
            size = e.st.st_size
            for b in tarwriter.file_header(e.name, mode, size):
                buf += b
            rec = FileRecord(e.name, size, self.size + len(buf), mode)
            h = hashlib.sha256() if self.hash_files else None
            left = size
            try:
                f = open(e.abspath, "rb")  # noqa: SIM115
            except OSError as err:
                raise ModelKitError(f"cannot read {e.name}: {err.strerror}") from None
            with f:
                while left > 0:
                    want = min(CHUNK, left)
                    chunk = f.read(want)
                    if not chunk:
                        raise ModelKitError(f"{e.name} shrank while packing (expected {size} bytes); retry")
                    left -= len(chunk)
                    if h is not None:
                        worker.update(h, chunk)
                    if self.progress:
                        self.progress(len(chunk))  # type: ignore[operator]
                    if buf:
                        buf += chunk
                        if len(buf) >= CHUNK:
                            self.size += len(buf)
                            yield bytes(buf)
                            buf.clear()
                    else:
                        self.size += len(chunk)
                        yield chunk
                if f.read(1):
                    raise ModelKitError(f"{e.name} grew while packing (expected {size} bytes); retry")
            if h is not None:
                hashers.append((rec, h))
            self.files.append(rec)
            buf += tarwriter.pad(size)
        buf += tarwriter.END_OF_ARCHIVE
        self.size += len(buf)
        yield bytes(buf)
