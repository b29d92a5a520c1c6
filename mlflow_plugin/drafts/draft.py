"""Draft kits: an MLflow run (or logged model, or trace) stored as a ModelKit that grows.

>>> import os, tempfile
>>> from mlflow_plugin.storage.locations import open_location
>>> d = tempfile.mkdtemp()
>>> with open(os.path.join(d, "report.html"), "w") as f:
...     _ = f.write("<h1>auc 0.91</h1>")
>>> kit = DraftKit(open_location(f"oci:{d}/kits/fraud", create=True)[0], "run-" + "0" * 32)
>>> kit.add(os.path.join(d, "report.html"), "reports")           # one deterministic kit tar layer
>>> [f.path for f in kit.listdir("reports")]
['reports/report.html']

Each logged file or directory is one uncompressed kit tar layer (the bytes ``kit pack`` would
write for it). Every layer descriptor carries the layer's file index in the annotation
``dev.mlflow-modelkit.files`` (path, size, SHA-256, offset of each file's bytes in the tar), so
listing costs one manifest read and a single file is one verified HTTP range request.

The manifest is kept a valid ModelKit: its config is a Kitfile whose entries (model, parts,
code, datasets, docs) are derived from the layers, with kit's digests, and layers appear in
kit's fixed order. Writes are race-safe: on a local layout the read-merge-write runs under the
layout's file lock; on a registry the writer re-reads after writing and merges again until its
layer is present (distribution has no compare-and-swap).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import posixpath
import random
import stat as statmod
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlflow_plugin._internal import statcache
from mlflow_plugin._version import __version__
from mlflow_plugin.drafts.download import IndexedFile, download_file
from mlflow_plugin.errors import ModelKitError, NotFoundError, UnsafeArchiveError
from mlflow_plugin.kit.compose import KIND_ORDER, LayerRecord, base_kind, compose
from mlflow_plugin.kit.compose import classify as classify_names
from mlflow_plugin.kit.fileindex import (
    check_tree,
    layer_path,
    parse_file_index,
)
from mlflow_plugin.kit.kitfile import Kitfile, Package
from mlflow_plugin.kit.layers import Entry, LayerStream, tar_size
from mlflow_plugin.kit.manifest import build_manifest
from mlflow_plugin.kit.mediatypes import ANN_FILEPATH, KIT_CONFIG, layer_media_type, parse_layer_media_type
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST

log = logging.getLogger(__name__)

ANN_DRAFT = "dev.mlflow-modelkit.draft"
_WRITE_RETRIES = 12
_STALE_RETRIES = 400  # lost races before merging (cheap: nothing was written); backoff capped at 0.5 s


class _StaleBase(Exception):
    """The tag moved while we merged: our manifest would drop another writer's change."""


@contextlib.contextmanager
def _host_lock(key: str) -> Iterator[None]:
    """Serialise read-merge-write of one registry tag among the processes (and threads) of this host.

    A registry has no compare-and-swap, so writers on one machine (notebook kernels, training
    workers, the uvicorn workers of ``mlflow server``) queue on a ``flock`` instead of racing;
    writers on other machines are still covered by the base check and the convergence check.
    If the lock file cannot be created, writing goes on unlocked.
    """
    d = os.path.join(tempfile.gettempdir(), "mlflow-modelkit-locks")
    name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
    fd = -1
    try:
        if not os.path.isdir(d):
            os.makedirs(d, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(d, 0o1777)  # shared by every user, like /tmp
        fd = os.open(os.path.join(d, name), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        log.debug("no host lock for %s: %s", key, e)
    if fd < 0:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


@dataclass(frozen=True)
class Listing:
    """A direct child in a listing: MLflow's FileInfo fields."""

    path: str
    is_dir: bool
    size: int | None


class _Stat:
    """Normalised stat for tar headers: 0644/0755 files, 0755 dirs (reproducible across machines)."""

    def __init__(self, st_mode: int, st_size: int, raw: os.stat_result | None = None) -> None:
        self.st_mode = st_mode
        self.st_size = st_size
        self.raw = raw  # the file's real stat, for the quick "unchanged?" check


def _norm_stat(st: os.stat_result) -> _Stat:
    if statmod.S_ISDIR(st.st_mode):
        return _Stat(statmod.S_IFDIR | 0o755, 0)
    mode = 0o755 if st.st_mode & 0o111 else 0o644
    return _Stat(statmod.S_IFREG | mode, st.st_size, st)


def local_entries(local_path: str, dest: str) -> list[Entry]:
    """Tar entries for ``local_path`` stored at artifact path ``dest`` (kit order, ancestors first).

    Directories are walked in byte-lexical pre-order; symlinks to files are followed like
    MLflow's local store does; symlinked directories and special files are skipped with a warning.
    """
    out: list[Entry] = []
    parts = dest.split("/") if dest else []
    st = os.stat(local_path)
    is_dir = statmod.S_ISDIR(st.st_mode)
    ancestors = parts if is_dir else parts[:-1]
    for i in range(len(ancestors)):
        out.append(Entry("/".join(ancestors[: i + 1]), _Stat(statmod.S_IFDIR | 0o755, 0), ""))  # type: ignore[arg-type]
    if not is_dir:
        out.append(Entry(dest, _norm_stat(st), local_path))  # type: ignore[arg-type]
        return out

    def walk(d: str, rel: str) -> None:
        for name in sorted(os.listdir(d), key=os.fsencode):
            full = os.path.join(d, name)
            child = f"{rel}/{name}" if rel else name
            lst = os.lstat(full)
            if statmod.S_ISLNK(lst.st_mode):
                try:
                    tst = os.stat(full)
                except OSError:
                    log.warning("skipping broken symlink %s", full)
                    continue
                if not statmod.S_ISREG(tst.st_mode):
                    log.warning("skipping symlink to a directory %s", full)
                    continue
                lst = tst
            if statmod.S_ISDIR(lst.st_mode):
                out.append(Entry(child, _norm_stat(lst), full))  # type: ignore[arg-type]
                walk(full, child)
            elif statmod.S_ISREG(lst.st_mode):
                out.append(Entry(child, _norm_stat(lst), full))  # type: ignore[arg-type]
            else:
                log.warning("skipping %s: not a regular file or directory", full)

    walk(local_path, dest)
    return out


def classify(entries: list[Entry], dataset_paths: frozenset[str] = frozenset()) -> str:
    """Layer kind by content (:func:`mlflow_plugin.kit.compose.classify`) of tar entries."""
    return classify_names([e.name for e in entries if not e.is_dir], dataset_paths)


class DraftKit:
    """A draft ModelKit (tag ``run-<id>``, ``<model_id>`` or ``<trace_id>``) in a repository.

    ``reference`` may instead be a published tag or digest: the kit is then read-only.
    Instances cache the last manifest they read; writes refresh it.
    """

    def __init__(
        self,
        repo: Repository,
        reference: str,
        read_only: bool = False,
        verify_manifest: Callable[[bytes, str], None] | None = None,
    ) -> None:
        self.repo = repo
        self.reference = reference
        self.read_only = read_only
        self._verify_manifest = verify_manifest
        self._cache: tuple[dict[str, Any] | None, str | None] | None = None
        self._put_span = 0.0  # seconds from the last base check to its manifest PUT
        self._lock = threading.Lock()

    # ---- reading ---------------------------------------------------------------------------
    def manifest(self, refresh: bool = False) -> tuple[dict[str, Any] | None, str | None]:
        """The current manifest (parsed) and its digest, or ``(None, None)`` if the draft is empty."""
        with self._lock:
            if self._cache is not None and not refresh:
                return self._cache
            try:
                data, _mt, digest = self.repo.get_manifest(self.reference)
            except NotFoundError:
                if self.read_only:
                    raise NotFoundError(f"kit {self.reference} not found in {self.repo.display}") from None
                self._cache = (None, None)
                return self._cache
            if self._verify_manifest is not None:
                self._verify_manifest(data, digest)
            m = json.loads(data)
            self._cache = (m, digest)
            return self._cache

    def files(self, refresh: bool = False) -> dict[str, IndexedFile]:
        """Every file in the draft by path (later layers win, as kit's unpack would)."""
        m, _ = self.manifest(refresh)
        out: dict[str, IndexedFile] = {}
        for d in (m or {}).get("layers") or []:
            desc = Descriptor.from_json(d)
            for path, size, sha, off in parse_file_index(d):
                if path.endswith("/"):
                    continue
                if path in out:  # a draft never holds one path twice: the writer merges
                    raise UnsafeArchiveError(
                        f"kit {self.reference} in {self.repo.display} lists {path!r} in two layers; "
                        "it was not written by mlflow-modelkit and is refused"
                    )
                out[path] = IndexedFile(path, size, sha, off, desc)
        check_tree(list(out), f"kit {self.reference} in {self.repo.display}")
        return out

    def empty_dirs(self) -> list[str]:
        """Directories logged with nothing in them (``log_artifacts(empty_dir, "x")``).

        MLflow's local store keeps and lists them; so does a draft (the tar has the entry).
        """
        m, _ = self.manifest()
        layers = (m or {}).get("layers") or []
        return sorted({r[0].rstrip("/") for d in layers for r in parse_file_index(d) if r[0].endswith("/")})

    def listdir(self, path: str = "") -> list[Listing]:
        """Direct children of ``path`` (MLflow semantics: a file path lists as ``[]``)."""
        path = path.strip("/")
        files = self.files()
        if path in files:
            return []
        prefix = f"{path}/" if path else ""
        children: dict[str, Listing] = {}
        for d in self.empty_dirs():
            if d.startswith(prefix) and d != path:
                head = d[len(prefix) :].partition("/")[0]
                children[prefix + head] = Listing(prefix + head, True, None)
        for p, f in files.items():
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix) :]
            head, sep, _ = rest.partition("/")
            full = prefix + head
            if sep:
                children.setdefault(full, Listing(full, True, None))
            else:
                children[full] = Listing(full, False, f.size)
        return [children[k] for k in sorted(children)]

    def read_file(self, path: str, dest: str) -> None:
        """Download one file with a range request, verify its SHA-256, write ``dest`` atomically."""
        f = self.files().get(path.strip("/"))
        if f is None:
            raise NotFoundError(f"artifact {path!r} not found in {self.repo.display}:{self.reference}")
        download_file(self.repo, f, dest)

    # ---- writing ---------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise ModelKitError(f"{self.repo.display}:{self.reference} is a published kit; it is read-only")

    def add(
        self,
        local_path: str,
        artifact_path: str | None = None,
        progress: Callable[[int], None] | None = None,
        dataset_paths: frozenset[str] = frozenset(),
    ) -> None:
        """Log a file or directory at ``artifact_path`` (MLflow semantics) as new layer(s)."""
        self._check_writable()
        if not os.path.exists(local_path):
            raise ModelKitError(f"{local_path} does not exist")
        artifact_path = (artifact_path or "").strip("/")
        is_dir = os.path.isdir(local_path)
        groups: list[tuple[str, list[Entry]]] = []
        if not is_dir:
            dest = (
                posixpath.join(artifact_path, os.path.basename(local_path))
                if artifact_path
                else os.path.basename(local_path)
            )
            groups.append((dest, local_entries(local_path, dest)))
        elif artifact_path or os.path.exists(os.path.join(local_path, "MLmodel")):
            groups.append((artifact_path or ".", local_entries(local_path, artifact_path)))
        else:
            # a plain directory logged at the root: one layer per top-level entry
            for name in sorted(os.listdir(local_path), key=os.fsencode):
                full = os.path.join(local_path, name)
                if os.path.islink(full) and not os.path.isfile(full):
                    continue
                groups.append((name, local_entries(full, name)))
        new_layers = [self._build_layer(dest, entries, progress, dataset_paths) for dest, entries in groups]
        new_layers = [x for x in new_layers if x is not None]
        if new_layers:
            self._commit(new_layers, removed=None)

    def _build_layer(
        self,
        dest: str,
        entries: list[Entry],
        progress: Callable[[int], None] | None,
        dataset_paths: frozenset[str],
    ) -> dict[str, Any] | None:
        if not entries:
            return None
        kind = classify(entries, dataset_paths)
        path = posixpath.normpath(dest or ".")

        def record(digest: str, size: int, files: list[list[Any]]) -> dict[str, Any]:
            return {
                "kind": kind,
                "path": path,
                "digest": digest,
                "size": size,
                "media_type": layer_media_type(base_kind(kind)),
                "files": files,
            }

        # 1. quick check: the same local files (path, size, inode, mtime, ctime) were logged before
        cache = statcache.default()
        # "v2": the cached index also lists empty directories
        sig = statcache.signature(
            [(e.name, e.abspath, getattr(e.st, "raw", None)) for e in entries], f"v2:{path}"
        )
        hit = cache.get(sig) if cache else None
        if hit and self.repo.blob_exists(hit["digest"]):
            if progress:
                progress(sum(e.st.st_size for e in entries if not e.is_dir))
            return record(hit["digest"], hit["size"], hit["files"])
        # 2. same names and sizes as a layer of this draft: hash the tar only; equal → no upload
        previous = self._previous_layer(path, entries)
        if previous is not None:
            h, size = hashlib.sha256(), 0
            for chunk in LayerStream(entries):
                h.update(chunk)
                size += len(chunk)
            digest = "sha256:" + h.hexdigest()
            if digest == previous["digest"] and self.repo.blob_exists(digest):
                if progress:
                    progress(size)
                if cache:
                    cache.put(sig, {"digest": digest, "size": size, "files": previous["files"]})
                return record(digest, size, previous["files"])
        # 3. new content: one pass that tars, hashes (tar + each file) and uploads
        stream = LayerStream(entries, hash_files=True, progress=progress)
        digest, size = self.repo.push_blob_chunks(stream, size=tar_size(entries))
        files = _index(stream, entries)
        if cache:
            cache.put(sig, {"digest": digest, "size": size, "files": files})
        return record(digest, size, files)

    def _previous_layer(self, path: str, entries: list[Entry]) -> dict[str, Any] | None:
        """The draft's layer at ``path`` if it has the same file names and sizes."""
        m, _ = self.manifest()
        want = sorted((e.name, e.st.st_size) for e in entries if not e.is_dir)
        for d in (m or {}).get("layers") or []:
            if (d.get("annotations") or {}).get(ANN_FILEPATH) != path:
                continue
            files = parse_file_index(d)
            if sorted((r[0], int(r[1])) for r in files if not r[0].endswith("/")) == want:
                return {"digest": d["digest"], "files": files}
        return None

    def delete(self, path: str | None = None) -> None:
        """Remove ``path`` (file or directory) or, with no path, the whole draft."""
        self._check_writable()
        if not path:
            m, _ = self.manifest(refresh=True)
            if m is None:
                return
            with contextlib.suppress(NotFoundError):
                self.repo.delete_tag(self.reference)
            self._cache = None
            return
        self._commit([], removed=path.strip("/"))

    def _commit(self, new_layers: list[dict[str, Any]], removed: str | None) -> None:
        if self.repo.kind == "layout":
            with self.repo.exclusive():  # the layout's own lock makes read-merge-write atomic
                self._merge_and_put(new_layers, removed)
            return
        stale = 0
        for attempt in range(_WRITE_RETRIES):
            try:
                with _host_lock(f"{self.repo.display}:{self.reference}"):
                    gone = self._merge_and_put(new_layers, removed, check_base=True)
            except _StaleBase:  # someone wrote while we merged: merge again on top of theirs
                stale += 1
                if stale >= _STALE_RETRIES:
                    break
                time.sleep(random.uniform(0.0, min(0.5, 0.005 * 2 ** min(stale, 7))))
                continue
            # A writer that passed its base check before our PUT landed may still overwrite us,
            # but only within its own check-to-PUT span (about ours): wait that out, with margin.
            window = min(max(4 * self._put_span, 0.05), 2.0)
            if self._converged(new_layers, gone, window):
                return
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise ModelKitError(
            f"could not update {self.repo.display}:{self.reference} after {_WRITE_RETRIES} "
            "attempts (too many concurrent writers); retry"
        )

    def _converged(self, new_layers: list[dict[str, Any]], gone: set[tuple[str, str]], window: float) -> bool:
        """Re-read now and after ``window`` seconds: our files are listed, the removed ones are not.

        A file we logged that now has other content was overwritten by a later writer (last
        writer wins, as in MLflow's own stores) -- that is convergence, not a lost update.
        """
        ours = {f[0] for nl in new_layers for f in nl["files"]}
        for pause in (0.0, window):
            if pause:
                time.sleep(pause)
            m, _ = self.manifest(refresh=True)
            present = {(r[0], r[2]) for d in (m or {}).get("layers") or [] for r in parse_file_index(d)}
            paths = {p for p, _ in present}
            if not ours <= paths or present & gone:
                return False
        return True

    @staticmethod
    def _under(path: str, prefix: str) -> bool:
        return path == prefix or path.startswith(prefix + "/")

    def _merge_and_put(
        self, new_layers: list[dict[str, Any]], removed: str | None, check_base: bool = False
    ) -> set[tuple[str, str]]:
        """Read, merge our change, write. Returns the (path, sha256) pairs ``removed`` deleted.

        ``check_base`` (registries): just before writing, make sure the tag still names the
        manifest we merged into, else raise :class:`_StaleBase`. Merging can take long (folding
        and rebuilding layers download and upload files); without this check a slow writer
        silently overwrites everything other writers committed meanwhile, and the post-write
        check in :meth:`_converged` only covers the short race between this check and the PUT.
        """
        m, base = self.manifest(refresh=True)
        current = [_layer_record(d) for d in (m or {}).get("layers") or []]
        gone = {
            (f[0], f[2])
            for rec in current
            for f in rec["files"]
            if removed is not None and self._under(f[0], removed)
        }
        new_paths = {f[0] for nl in new_layers for f in nl["files"]}
        new_layer_paths = {nl["path"] for nl in new_layers}
        survivors: list[dict[str, Any]] = []
        for rec in current:
            keep = [
                f
                for f in rec["files"]
                if f[0] not in new_paths
                and not _shadowed_by_file(f[0], new_paths)
                and not (removed is not None and self._under(f[0], removed))
            ]
            if len(keep) == len(rec["files"]) and rec["path"] not in new_layer_paths:
                survivors.append(rec)
            elif not keep:
                continue
            else:
                survivors.append(self._rebuild(rec, keep))
        merged: dict[str, dict[str, Any]] = {}
        for rec in [*survivors, *new_layers]:
            if rec["path"] in merged:  # two layers at one path: fold into one (kit forbids duplicates)
                rec = self._fold(merged[rec["path"]], rec)
            merged[rec["path"]] = rec
        layers = sorted(merged.values(), key=lambda r: (KIND_ORDER[base_kind(r["kind"])], r["path"]))
        self._put(layers, expect_base=base if check_base else False)
        return gone

    def _rebuild(self, rec: dict[str, Any], keep: list[list[Any]]) -> dict[str, Any]:
        """A layer without the files a newer layer replaced: re-tar the kept files."""
        with tempfile.TemporaryDirectory(prefix="modelkit-rebuild-") as tmp:
            self._materialize(rec, keep, tmp)
            return self._layer_from_tree(tmp, rec["path"], rec["kind"])

    def _fold(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="modelkit-fold-") as tmp:
            bpaths = {f[0] for f in b["files"]}
            self._materialize(a, [f for f in a["files"] if f[0] not in bpaths], tmp)
            self._materialize(b, b["files"], tmp)
            kind = b["kind"] if b["kind"] == "model" or a["kind"] != "model" else a["kind"]
            return self._layer_from_tree(tmp, b["path"], kind)

    def _materialize(self, rec: dict[str, Any], files: list[list[Any]], root: str) -> None:
        desc = Descriptor(rec["media_type"], rec["digest"], rec["size"])
        for path, size, sha, off in files:
            dest = os.path.join(root, path)
            if path.endswith("/"):  # an empty directory
                os.makedirs(dest, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            download_file(self.repo, IndexedFile(path, int(size), sha, int(off), desc), dest)

    def _layer_from_tree(self, root: str, path: str, kind: str) -> dict[str, Any]:
        if path == ".":
            entries: list[Entry] = []
            for name in sorted(os.listdir(root), key=os.fsencode):
                entries += local_entries(os.path.join(root, name), name)
        else:
            entries = local_entries(os.path.join(root, path), path)
        stream = LayerStream(entries, hash_files=True)
        digest, size = self.repo.push_blob_chunks(stream)
        return {
            "kind": kind,
            "path": path,
            "digest": digest,
            "size": size,
            "media_type": layer_media_type(base_kind(kind)),
            "files": _index(stream, entries),
        }

    def _put(self, layers: list[dict[str, Any]], expect_base: str | bool | None = False) -> None:
        kf = Kitfile(
            manifest_version="1.0.0",
            package=Package(name=self.reference, description=f"MLflow draft {self.reference}"),
        )
        records = [
            LayerRecord(
                rec["kind"],
                rec["path"],
                rec["digest"],
                rec["size"],
                json.dumps(rec["files"], separators=(",", ":"), ensure_ascii=False),
            )
            for rec in layers
        ]
        descs = compose(kf, records)
        config = kf.to_json()
        cdesc = self.repo.push_bytes(config, KIT_CONFIG)
        manifest = build_manifest(
            cdesc,
            descs,
            cli_version=f"mlflow-modelkit-{__version__}",
            extra_annotations={ANN_DRAFT: self.reference},
        )
        t0 = time.monotonic()
        if expect_base is not False and self._current_digest() != expect_base:
            raise _StaleBase()
        self.repo.put_manifest(manifest, OCI_MANIFEST, tag=self.reference)
        self._put_span = time.monotonic() - t0
        with self._lock:
            self._cache = None

    def _current_digest(self) -> str | None:
        """The digest the draft's tag names now, or None if it does not exist."""
        try:
            return self.repo.resolve(self.reference).digest
        except NotFoundError:
            return None


def _index(stream: LayerStream, entries: list[Entry]) -> list[list[Any]]:
    """A layer's file index: ``[path, size, sha256, offset]`` per file, then ``[dir + "/", 0, "", 0]``
    for each directory with nothing below it (so an empty directory lists, as in MLflow's stores)."""
    files: list[list[Any]] = [[f.path, f.size, f.sha256, f.offset] for f in stream.files]
    parents = {e.name.rsplit("/", 1)[0] for e in entries if "/" in e.name}
    files += [[e.name + "/", 0, "", 0] for e in entries if e.is_dir and e.name not in parents]
    return files


def _shadowed_by_file(path: str, new_paths: set[str]) -> bool:
    """A new file at ``a`` replaces an old directory ``a/…``; a new ``a/b`` replaces an old file ``a``."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in new_paths:
            return True
    return any(p.startswith(path + "/") for p in new_paths)


def _layer_record(d: dict[str, Any]) -> dict[str, Any]:
    parsed = parse_layer_media_type(d.get("mediaType", ""))
    kind = parsed[0] if parsed else "docs"
    return {
        "kind": kind,
        "path": layer_path(d),
        "digest": d["digest"],
        "size": d["size"],
        "media_type": d.get("mediaType", ""),
        "files": parse_file_index(d),
    }
