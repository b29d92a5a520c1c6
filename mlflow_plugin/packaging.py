"""The operations behind the CLI: pack, push, pull, unpack, inspect, list.

>>> import pathlib, tempfile
>>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
>>> _ = (ctx / "model.bin").write_bytes(b"weights")
>>> kitfile = "manifestVersion: 1.0.0\\npackage: {name: fraud}\\nmodel: {path: model.bin}\\n"
>>> _ = (ctx / "Kitfile").write_text(kitfile)
>>> r = pack(str(ctx), f"oci:{kits}/fraud:v1")
>>> r.digest
'sha256:...'
>>> push(f"oci:{kits}/fraud:v1", "localhost:5000/team/fraud:v1")   # doctest: +SKIP
'sha256:...'

Every long call takes ``progress(stage, done, total)`` (:mod:`mlflow_plugin.progress`; the CLI
passes tqdm bars, the default is silent). Registry references read the admin's storage settings
(insecure registries, CA bundle) unless ``settings=`` is given.
"""

from __future__ import annotations

import functools
import hashlib
import inspect as _inspect
import io
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, cast

from mlflow_plugin.errors import KitfileError, ModelKitError, NotFoundError, UnsafeArchiveError, disk_errors
from mlflow_plugin.kit.decompress import Budget
from mlflow_plugin.kit.fileindex import parse_file_index
from mlflow_plugin.kit.kitfile import KITFILE_NAMES, Kitfile, is_modelkit_reference
from mlflow_plugin.kit.layers import LayerIgnore, LayerStream, plan_layers, walk_layer
from mlflow_plugin.kit.limits import DEFAULT_LIMITS, UnpackLimits
from mlflow_plugin.kit.manifest import build_manifest, created_timestamp
from mlflow_plugin.kit.mediatypes import KIT_CONFIG, parse_layer_media_type
from mlflow_plugin.kit.unpack import Staging, extract_layer
from mlflow_plugin.progress import Progress, bytes_callback
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.storage.mediatypes import OCI_INDEX, OCI_MANIFEST
from mlflow_plugin.storage.reference import LayoutLocation, Location, check_tag

log = logging.getLogger(__name__)


def _disk(op: str, where_arg: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run ``fn`` so that file system failures become one-line :class:`DiskError` naming the
    user's path (the argument ``where_arg``) and the fix."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = _inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            where = sig.bind_partial(*args, **kw).arguments.get(where_arg, "")
            with disk_errors(op, str(where)):
                return fn(*args, **kw)

        return wrapper

    return deco


def _opts(registry_options: dict[str, Any]) -> dict[str, Any]:
    """``registry_options`` with the admin's storage settings unless the caller gave some: the
    functions of this module are entry points of the Python API, so they read the config."""
    if "settings" in registry_options:
        return registry_options
    from mlflow_plugin.config import load_config

    return {**registry_options, "settings": load_config().storage_settings()}


@dataclass
class PackResult:
    """What ``pack`` produced: manifest digest and bytes, config, layers, where it went.

    >>> import json
    >>> r = PackResult("sha256:" + "ab" * 32, b"{}", b'{"manifestVersion": "1.0.0"}', [], "oci:kits/fraud:v1")
    >>> f"{r.target}@{r.digest[:15]}", json.loads(r.config)["manifestVersion"], r.warnings
    ('oci:kits/fraud:v1@sha256:abababab', '1.0.0', [])
    """

    digest: str
    manifest: bytes
    config: bytes
    layers: list[Descriptor]
    target: str
    warnings: list[str] = field(default_factory=list)


class _IterReader(io.RawIOBase):
    """Present an iterator of byte chunks as a readable file object."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _compress(chunks: Iterable[bytes], compression: str) -> Iterator[bytes]:
    if compression == "gzip":
        # Go's gzip writer: mtime 0, no name, OS byte 0xff
        yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        crc, size = 0, 0
        for ch in chunks:
            crc = zlib.crc32(ch, crc)
            size += len(ch)
            out = c.compress(ch)
            if out:
                yield out
        yield c.flush()
        yield crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")
    elif compression == "zstd":
        import zstandard

        z = zstandard.ZstdCompressor().compressobj()
        for ch in chunks:
            out = z.compress(ch)
            if out:
                yield out
        yield z.flush()
    else:
        yield from chunks


class _Tee:
    """Hash uncompressed bytes (diffId) while passing them through."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.h = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for c in self.chunks:
            self.h.update(c)
            yield c


def find_kitfile(context: str, kitfile: str | None = None) -> tuple[str, str]:
    """Locate and read the Kitfile: ``-f`` path, ``-`` for stdin, or Kitfile/kitfile/.kitfile."""
    import sys

    if kitfile == "-":
        return "<stdin>", sys.stdin.read()
    if kitfile:
        path = kitfile
    else:
        for n in KITFILE_NAMES:
            if os.path.isfile(os.path.join(context, n)):
                path = os.path.join(context, n)
                break
        else:
            raise KitfileError(f"no Kitfile in {context}: create one (see 'kit init') or pass -f PATH")
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as e:
        raise KitfileError(f"cannot read Kitfile {path}: {e.strerror}") from None
    return path, data.decode("utf-8", errors="strict") if data else ""


@_disk("pack", "target")
def pack(
    context: str,
    target: str,
    kitfile: str | None = None,
    compression: str = "none",
    progress: Progress | None = None,
    **registry_options: Any,
) -> PackResult:
    """Pack a directory with a Kitfile into a ModelKit at ``target`` (``oci:DIR:TAG`` or registry ref).

    Layers stream straight into the target: an OCI layout writes each blob once; a registry
    receives them after a hashing pass that lets it skip layers it already has. ``kitfile`` is
    another Kitfile path (``-`` for stdin); ``compression`` is ``none`` (kit-identical digests),
    ``gzip`` or ``zstd``; ``progress`` gets one stage per layer (``"pack model model.bin"``, bytes).

    >>> import pathlib, tempfile
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> kitfile = "manifestVersion: 1.0.0\\npackage: {name: fraud}\\nmodel: {path: model.bin}\\n"
    >>> _ = (ctx / "Kitfile").write_text(kitfile)
    >>> def show(stage: str, done: int, total: int) -> None:
    ...     print(stage, done, total)
    >>> r = pack(str(ctx), f"oci:{kits}/fraud:v1", progress=show)
    pack model model.bin 0 7
    pack model model.bin 7 7
    >>> r.target.endswith("/fraud:v1"), [d.size for d in r.layers], r.warnings
    (True, [2048], [])
    """
    if not os.path.isdir(context):
        raise ModelKitError(f"context directory {context} does not exist")
    kpath, text = find_kitfile(context, kitfile)
    kf = Kitfile.parse(text, source=kpath)
    warnings = kf.validate()
    created = created_timestamp()  # fail on a bad SOURCE_DATE_EPOCH before writing anything
    repo, loc = open_location(target, create=True, default_tag="latest", **_opts(registry_options))
    if loc.reference and loc.reference.startswith("sha256:"):
        raise ModelKitError(f"cannot pack to a digest ({target}); give a tag, e.g. {target.split('@')[0]}:v1")
    tag = loc.reference or "latest"
    check_tag(tag)
    ignore = LayerIgnore.from_context(context, kf)
    layers: list[Descriptor] = []
    is_layout = repo.kind == "layout"
    try:
        for spec in plan_layers(kf):
            total = _layer_size(context, spec.path, ignore)
            cb = bytes_callback(progress, f"pack {spec.kind} {spec.clean_path}", total)
            media_type = spec.media_type(compression)
            if is_layout:  # one pass: generate, hash and write the blob
                tee, body = _layer_body(context, spec.path, ignore, compression, cb)
                digest, size = repo.push_blob_chunks(body)
            else:  # hash first so the registry can skip a layer it already has, then stream it
                tee, body = _layer_body(context, spec.path, ignore, compression, None)
                h, size = hashlib.sha256(), 0
                for c in body:
                    h.update(c)
                    size += len(c)
                digest = "sha256:" + h.hexdigest()
                if not repo.blob_exists(digest):
                    _, body = _layer_body(context, spec.path, ignore, compression, cb)
                    repo.push_blob(_IterReader(body), digest, size)  # type: ignore[arg-type]
                else:
                    cb(total)
            diff_id = "sha256:" + tee.h.hexdigest()
            spec.set_layer_info(digest, diff_id)
            layers.append(Descriptor(media_type, digest, size, annotations=dict(spec.annotations)))
        config = kf.to_json()
        cdesc = repo.push_bytes(config, KIT_CONFIG)
        manifest = build_manifest(cdesc, layers, created=created)
        digest = repo.put_manifest(manifest, OCI_MANIFEST, tag=tag)
    finally:
        repo.close()
    return PackResult(digest, manifest, config, layers, str(loc), warnings)


def _layer_body(
    context: str, path: str, ignore: LayerIgnore, compression: str, cb: Callable[[int], None] | None
) -> tuple[_Tee, Iterable[bytes]]:
    """The (compressed) tar bytes of one layer, generated lazily; ``tee.h`` gives its diffId."""
    tee = _Tee(LayerStream(walk_layer(context, path, ignore), progress=cb))
    return tee, _compress(tee, compression)


def _layer_size(context: str, path: str, ignore: LayerIgnore) -> int:
    return sum(e.st.st_size for e in walk_layer(context, path, ignore) if not e.is_dir)


def _copy_blob(
    src: Repository, dst: Repository, d: Descriptor, cb: Callable[[int], None], mount_from: str | None
) -> bool:
    if dst.blob_exists(d.digest):
        cb(d.size)
        return False
    if mount_from and dst.mount_blob(d.digest, mount_from):
        cb(d.size)
        return False
    with src.open_blob(d.digest, d.size) as f:
        dst.push_blob(f, d.digest, d.size, progress=cb)
        verify = getattr(f, "verify", None)
        if verify:
            verify()
    return True


@_disk("copy", "dest")
def copy(
    source: str,
    dest: str,
    progress: Progress | None = None,
    **registry_options: Any,
) -> str:
    """Copy a kit (manifest, config, layers; indexes recursively) between any two stores.

    Blobs the destination already has are skipped; within one registry they are mounted.
    The tag is written only after every blob exists. Returns the manifest digest. ``push`` and
    ``pull`` are this function; ``progress`` gets the stage ``"copy"`` in bytes of all blobs.

    >>> import pathlib, tempfile
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> kitfile = "manifestVersion: 1.0.0\\npackage: {name: fraud}\\nmodel: {path: model.bin}\\n"
    >>> _ = (ctx / "Kitfile").write_text(kitfile)
    >>> digest = pack(str(ctx), f"oci:{kits}/fraud:v1").digest
    >>> copy(f"oci:{kits}/fraud:v1", f"oci:{kits}/mirror:v1") == digest
    True
    >>> push(f"oci:{kits}/fraud:v1", "localhost:5000/team/fraud:v1")      # doctest: +SKIP
    'sha256:...'
    """
    registry_options = _opts(registry_options)
    src, sloc = open_location(source, default_tag="latest", **registry_options)
    dst, dloc = open_location(
        dest, create=True, default_tag=sloc.reference if not _is_digest(sloc) else None, **registry_options
    )
    try:
        ref = sloc.reference or "latest"
        data, mt, digest = src.get_manifest(ref)
        mount_from = _mount_source(sloc, dloc)
        blobs: dict[str, Descriptor] = {}
        children: list[tuple[bytes, str]] = []
        _copy_plan(src, data, mt, blobs, children)
        cb = bytes_callback(progress, "copy", sum(d.size for d in blobs.values()))
        for d in blobs.values():
            _copy_blob(src, dst, d, cb, mount_from)
        for cdata, cmt in children:  # an index's manifests once their blobs exist, innermost first
            dst.put_manifest(cdata, cmt)
        tag = dloc.reference if dloc.reference and not dloc.reference.startswith("sha256:") else None
        got = dst.put_manifest(data, mt, tag=tag)
        if got != digest:
            raise ModelKitError(f"copy changed the manifest digest ({digest} → {got}); please report this")
        return digest
    finally:
        src.close()
        dst.close()


def _is_digest(loc: Location) -> bool:
    return bool(loc.reference and loc.reference.startswith("sha256:"))


def _mount_source(sloc: Location, dloc: Location) -> str | None:
    if isinstance(sloc, LayoutLocation) or isinstance(dloc, LayoutLocation):
        return None
    if sloc.ref.registry == dloc.ref.registry and sloc.ref.repository != dloc.ref.repository:
        return sloc.ref.repository
    return None


def _copy_plan(
    src: Repository,
    data: bytes,
    mt: str,
    blobs: dict[str, Descriptor],
    children: list[tuple[bytes, str]],
    depth: int = 0,
) -> None:
    """Collect the blobs of the manifest ``data`` (indexes recursively) and the child manifests
    to store before it (innermost first)."""
    if depth > 4:
        raise ModelKitError("index nesting deeper than 4 levels; refusing to copy")
    m = json.loads(data)
    if mt == OCI_INDEX or m.get("mediaType") == OCI_INDEX:
        for child in m.get("manifests") or []:
            d = Descriptor.from_json(child)
            cdata, cmt, _ = src.get_manifest(d.digest)
            _copy_plan(src, cdata, cmt, blobs, children, depth + 1)
            children.append((cdata, cmt))
        return
    for d in src.iter_blobs_of(m):
        blobs.setdefault(d.digest, d)


push = copy
pull = copy


@dataclass
class KitInfo:
    """A manifest, its digest and (for ModelKits) the parsed config: what ``inspect`` returns.

    >>> manifest_type = "application/vnd.oci.image.manifest.v1+json"
    >>> info = KitInfo("oci:kits/fraud:v1", "sha256:" + "ab" * 32, manifest_type,
    ...                {"layers": []}, b"{}", {"package": {"name": "fraud"}})
    >>> info.config["package"]["name"], len(info.manifest["layers"])
    ('fraud', 0)
    """

    reference: str
    digest: str
    media_type: str
    manifest: dict[str, Any]
    manifest_bytes: bytes
    config: dict[str, Any] | None
    encrypted: bool = False
    """The kit is encrypted for recipients (``publish --encrypt-for``)."""
    sealed: bool = False
    """``config`` is the redacted Kitfile everyone sees: the real one is sealed for the recipients
    (pass one of their keys to :func:`inspect`)."""

    def layers(self) -> list[dict[str, Any]]:
        """Each layer with the files its (validated) file index lists:
        ``{media_type, digest, size, path, files: [{path, size, sha256}], error}``. Drafts and
        published kits carry a file index; a kit made by ``pack`` (as by ``kit pack``) does not,
        so its ``files`` are empty.

        The index is hostile until checked: a layer whose index is malformed or lies about paths
        gets ``files = []`` and a one-line ``error`` instead of anything from it.

        >>> import pathlib, tempfile
        >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
        >>> _ = (ctx / "model.bin").write_bytes(b"weights")
        >>> _ = (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\\nmodel: {path: model.bin}\\n")
        >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
        >>> layers = inspect(f"oci:{kits}/fraud:v1").layers()
        >>> [(layer["path"], layer["files"], layer["error"]) for layer in layers]
        [('model.bin', [], None)]
        """
        from mlflow_plugin.kit.fileindex import layer_path, parse_file_index

        out: list[dict[str, Any]] = []
        for d in self.manifest.get("layers") or []:
            if not isinstance(d, dict):
                continue
            size = d.get("size")
            layer: dict[str, Any] = {
                "media_type": str(d.get("mediaType", "")),
                "digest": str(d.get("digest", "")),
                "size": size if type(size) is int else None,
                "path": None,
                "files": [],
                "error": None,
            }
            try:
                layer["path"] = layer_path(d)
                index = parse_file_index(d)
            except ModelKitError as e:
                layer["error"] = " ".join(str(e).split())
            else:
                layer["files"] = [
                    {"path": p, "size": n, "sha256": sha} for p, n, sha, _off in index if not p.endswith("/")
                ]
            out.append(layer)
        return out


def inspect(ref: str, decrypt_keys: Sequence[str] | None = None, **registry_options: Any) -> KitInfo:
    """Fetch a kit's manifest and config (Kitfile JSON), both digest-verified.

    An encrypted kit's config is a redacted Kitfile; with one of its recipients' private keys
    (``decrypt_keys``, default: the admin's ``[encryption] decrypt_keys``) ``config`` is the real,
    sealed one; without, or as a non-recipient, ``sealed`` says ``config`` is the redacted one.

    >>> import pathlib, tempfile
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> kitfile = "manifestVersion: 1.0.0\\npackage: {name: fraud}\\nmodel: {path: model.bin}\\n"
    >>> _ = (ctx / "Kitfile").write_text(kitfile)
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
    >>> info = inspect(f"oci:{kits}/fraud:v1")
    >>> info.digest.startswith("sha256:"), info.config["package"], info.config["model"]["path"]
    (True, {'name': 'fraud'}, 'model.bin')
    """
    repo, loc = open_location(ref, default_tag="latest", **_opts(registry_options))
    try:
        data, mt, digest = repo.get_manifest(loc.reference or "latest")
        m = json.loads(data)
        from mlflow_plugin.trust.ocicrypt import ANN_SEALED_KITFILE
        from mlflow_plugin.trust.sealed import is_encrypted_manifest

        config = None
        c = m.get("config") or {}
        encrypted = is_encrypted_manifest(m)
        sealed = False
        if c.get("mediaType") == KIT_CONFIG:
            raw = repo.read_blob(c["digest"], c.get("size"))
            if encrypted and ANN_SEALED_KITFILE in (m.get("annotations") or {}):
                sealed = True
                dec = _decryptor(decrypt_keys)
                if dec.paths:
                    try:
                        raw, sealed = dec.kitfile(m, raw, str(loc)), False
                    except ModelKitError:
                        if decrypt_keys:  # keys given explicitly: say why they do not open it
                            raise
            config = json.loads(raw)
        return KitInfo(str(loc), digest, mt, m, data, config, encrypted, sealed)
    finally:
        repo.close()


def list_tags(repository: str, **registry_options: Any) -> list[dict[str, Any]]:
    """Tags of a repository with manifest digest, total size (manifest + config + layers) and type.

    :func:`mlflow_plugin.list_kits` gives the same as a DataFrame with draft/published and
    signed columns.

    >>> import pathlib, tempfile
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> kitfile = "manifestVersion: 1.0.0\\npackage: {name: fraud}\\nmodel: {path: model.bin}\\n"
    >>> _ = (ctx / "Kitfile").write_text(kitfile)
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
    >>> [(t["tag"], t["type"]) for t in list_tags(f"oci:{kits}/fraud")]
    [('v1', 'modelkit')]
    """
    repo, _ = open_location(repository, **_opts(registry_options))
    out = []
    try:
        for tag in repo.list_tags():
            try:
                data, mt, digest = repo.get_manifest(tag)
            except NotFoundError:
                continue
            m = json.loads(data)
            size = len(data) + sum(d.size for d in repo.iter_blobs_of(m)) if mt != OCI_INDEX else len(data)
            kind = (
                "modelkit"
                if (m.get("config") or {}).get("mediaType") == KIT_CONFIG
                else (m.get("artifactType") or m.get("mediaType") or mt)
            )
            out.append({"tag": tag, "digest": digest, "size": size, "type": kind})
    finally:
        repo.close()
    return out


_FILTER_KINDS = {
    "model": ("model", "modelpart"),
    "datasets": ("dataset",),
    "code": ("code",),
    "docs": ("docs",),
    "prompts": ("prompt",),
    "kitfile": (),
}


@_disk("unpack", "directory")
def unpack(
    ref: str,
    directory: str,
    filters: list[str] | None = None,
    overwrite: bool = False,
    ignore_existing: bool = False,
    progress: Progress | None = None,
    limits: UnpackLimits | None = None,
    decrypt_keys: Sequence[str] | None = None,
    **registry_options: Any,
) -> list[str]:
    """Extract a kit into ``directory`` (verified, safe; nothing written if any check fails).

    ``filters`` select parts like kit's ``--filter``: ``model``, ``datasets``, ``code``, ``docs``,
    ``prompts``, ``kitfile``; ``datasets:NAME`` or ``code:PATH`` narrow further. ``limits``
    (default :data:`~mlflow_plugin.kit.limits.DEFAULT_LIMITS`; the CLI uses the admin's
    ``[limits]``) bound the decompressed output of the whole unpack, each layer's ratio and entries;
    exceeding one raises :class:`~mlflow_plugin.errors.LimitExceededError`.
    Returns the written paths (relative to ``directory``); ``progress`` gets the stage
    ``"unpack"`` in bytes of the selected layers. Encrypted layers (ocicrypt's ``+encrypted``) are
    opened with ``decrypt_keys`` (recipient private key paths; default: the admin's ``[encryption]
    decrypt_keys`` or ``$MLFLOW_MODELKIT_DECRYPT_KEYS``), the sealed Kitfile too,
    decrypted into the staging area and released only after their HMAC and plaintext digest verify.

    >>> import pathlib, tempfile
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> kitfile = "manifestVersion: 1.0.0\\npackage: {name: fraud}\\nmodel: {path: model.bin}\\n"
    >>> _ = (ctx / "Kitfile").write_text(kitfile)
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
    >>> out = tempfile.mkdtemp()
    >>> unpack(f"oci:{kits}/fraud:v1", out)
    ['model.bin', 'Kitfile']
    >>> unpack(f"oci:{kits}/fraud:v1", tempfile.mkdtemp(), filters=["kitfile"])
    ['Kitfile']
    """
    budget = Budget(limits or DEFAULT_LIMITS)  # one per unpack: every layer's output adds up
    wanted = _parse_filters(filters)
    repo, loc = open_location(ref, default_tag="latest", **_opts(registry_options))
    try:
        data, _mt, _digest = repo.get_manifest(loc.reference or "latest")
        m = json.loads(data)
        cdesc = m.get("config") or {}
        if cdesc.get("mediaType") != KIT_CONFIG:
            raise ModelKitError(
                f"{ref} exists but is not a ModelKit (config type {cdesc.get('mediaType')!r})"
            )
        config = repo.read_blob(cdesc["digest"], cdesc.get("size"))
        dec = _decryptor(decrypt_keys)
        kf = Kitfile.from_json(dec.kitfile(m, config, ref))  # an encrypted kit's is sealed in the manifest
        _check_kitfile_paths(kf, ref)
        by_raw = {d["digest"]: d for d in m.get("layers") or []}
        by_digest = {k: Descriptor.from_json(d) for k, d in by_raw.items()}
        plan = _unpack_plan(kf, by_digest, m)
        selected = [(kind, entry, d) for kind, entry, d in plan if _selected(wanted, kind, entry)]
        total = sum(d.size for _, _, d in selected)
        cb = bytes_callback(progress, "unpack", total)
        written: list[str] = []
        with Staging(directory, overwrite=overwrite, ignore_existing=ignore_existing) as st:
            for _kind, _entry, d in selected:
                # a file index (drafts, published runs) must agree with the tar it describes
                index = parse_file_index(by_raw[d.digest])
                with repo.open_blob(d.digest, d.size) as blob:
                    counted = cast("IO[bytes]", _Counting(blob, cb))  # read() is all extract_layer uses
                    if d.media_type.endswith("+encrypted"):  # ocicrypt (trust/ocicrypt.py)
                        written += _extract_encrypted(counted, by_raw[d.digest], st, budget, dec)
                        continue
                    written += extract_layer(
                        counted, d.media_type, st, budget=budget, layer=d.digest, index=index
                    )
            if wanted is None or "kitfile" in wanted:
                _stage_kitfile(st, kf)
                written.append("Kitfile")
            st.commit()
        return written
    finally:
        repo.close()


def _decryptor(decrypt_keys: Sequence[str] | None) -> Any:
    """Recipient keys: the given paths, else the admin's (``[encryption] decrypt_keys`` /
    ``$MLFLOW_MODELKIT_DECRYPT_KEYS``); loaded only if the kit turns out to be encrypted."""
    from mlflow_plugin.trust.sealed import Decryptor

    if decrypt_keys is None:
        from mlflow_plugin.config import load_config

        decrypt_keys = load_config().decrypt_keys
    return Decryptor(list(decrypt_keys))


def _extract_encrypted(
    blob: IO[bytes], raw: dict[str, Any], st: Staging, budget: Budget, dec: Any
) -> list[str]:
    """Decrypt one ocicrypt layer into an unnamed file in the staging area, verify its ciphertext
    digest, HMAC and plaintext digest, and only then untar it into the staging area."""
    from mlflow_plugin.trust import ocicrypt

    desc = Descriptor.from_json(raw)
    with dec.decrypt_to_temp(raw, blob, dir=st.dir) as plain:
        media_type = ocicrypt.plain_media_type(desc.media_type)
        return extract_layer(plain, media_type, st, budget=budget, layer=desc.digest)


class _Counting:
    def __init__(self, raw: Any, cb: Callable[[int], None]) -> None:
        self.raw, self.cb = raw, cb

    def read(self, n: int = -1) -> bytes:
        b = self.raw.read(n)
        if b:
            self.cb(len(b))
        return b

    def verify(self) -> None:
        v = getattr(self.raw, "verify", None)
        if v:
            v()


def _parse_filters(filters: list[str] | None) -> dict[str, list[str]] | None:
    if not filters:
        return None
    out: dict[str, list[str]] = {}
    for f in filters:
        for part in f.split(","):
            part = part.strip()
            if not part:
                continue
            kind, _, name = part.partition(":")
            if kind not in _FILTER_KINDS:
                raise ModelKitError(
                    f"invalid filter {part!r}: use model, datasets, code, docs, prompts or kitfile "
                    "(optionally TYPE:NAME)"
                )
            out.setdefault(kind, [])
            if name:
                out[kind].append(name)
    return out


def _selected(wanted: dict[str, list[str]] | None, kind: str, entry: Any) -> bool:
    if wanted is None:
        return True
    for fk, names in wanted.items():
        if kind in _FILTER_KINDS[fk]:
            if not names:
                return True
            ids = {
                getattr(entry, "name", ""),
                getattr(entry, "path", ""),
                os.path.normpath(getattr(entry, "path", "") or "."),
            }
            if ids & set(names):
                return True
    return False


def _check_kitfile_paths(kf: Kitfile, ref: str) -> None:
    """Every path the kit's Kitfile names (it is written into the target, and ``kit pack`` run
    there later would pack what it points at) is relative and stays inside: ``.`` or a clean
    relative path after normalising; one line naming the entry otherwise."""
    import posixpath

    from mlflow_plugin.kit.safepath import clean_path

    model: list[tuple[str, Any]] = []
    if kf.model is not None:
        model = [("model", kf.model), *(("model part", p) for p in kf.model.parts)]
    entries: list[tuple[str, Any]] = [
        *model,
        *(("dataset", d) for d in kf.datasets),
        *(("code", c) for c in kf.code),
        *(("docs", d) for d in kf.docs),
        *(("prompt", p) for p in kf.prompts),
        *(("mcpServer", x) for x in kf.mcp_servers),
    ]
    for kind, e in entries:
        path = e.path
        if not path or (kind == "model" and is_modelkit_reference(path)):
            continue
        if not isinstance(path, str) or "\\" in path or path.startswith("/"):
            norm = path
        else:
            norm = posixpath.normpath(path)
            if norm == ".":
                continue
        try:
            clean_path(norm, f"{kind} path")
        except UnsafeArchiveError as e:
            raise UnsafeArchiveError(f"{ref}: its Kitfile names an {e}; refusing to unpack it") from None


def _unpack_plan(
    kf: Kitfile, by_digest: dict[str, Descriptor], m: dict[str, Any]
) -> list[tuple[str, Any, Descriptor]]:
    """Layers in kit's unpack order, matched by digest (config entries must name manifest layers)."""
    entries: list[tuple[str, Any]] = []
    if kf.model is not None:
        if kf.model.layer or (kf.model.path and not is_modelkit_reference(kf.model.path)):
            entries.append(("model", kf.model))
        entries += [("modelpart", p) for p in kf.model.parts]
    entries += [("dataset", d) for d in kf.datasets if not d.remote_path]
    entries += [("code", c) for c in kf.code]
    entries += [("docs", d) for d in kf.docs]
    entries += [("prompt", p) for p in kf.prompts]
    has = [e.layer is not None and bool(e.layer.digest) for _, e in entries]
    if entries and not all(has):
        if any(has):
            raise ModelKitError(
                "invalid digests in layerinfo in Kitfile: some entries have digests, some do not"
            )
        return _legacy_plan(entries, m)
    plan = []
    for kind, e in entries:
        d = by_digest.get(e.layer.digest)
        if d is None:
            raise ModelKitError(f"digest {e.layer.digest} not found in manifest ({kind} {e.path!r})")
        plan.append((kind, e, d))
    return plan


def _legacy_plan(entries: list[tuple[str, Any]], m: dict[str, Any]) -> list[tuple[str, Any, Descriptor]]:
    """kit < 0.5 ModelKits (no digests in the config): match layers to entries by order."""
    queues: dict[str, list[Any]] = {}
    for kind, e in entries:
        queues.setdefault("code" if kind == "prompt" else kind, []).append((kind, e))
    plan = []
    for layer in m.get("layers") or []:
        d = Descriptor.from_json(layer)
        parsed = parse_layer_media_type(d.media_type)
        if not parsed or not queues.get(parsed[0]):
            continue
        kind, e = queues[parsed[0]].pop(0)
        plan.append((kind, e, d))
    return plan


def _stage_kitfile(st: Staging, kf: Kitfile) -> None:
    """Write the Kitfile (YAML, without digests) like ``kit unpack`` does."""
    from ruamel.yaml import YAML

    obj = json.loads(kf.to_json())
    _strip_digests(obj)
    buf = io.StringIO()
    y = YAML()
    y.default_flow_style = False
    y.indent(mapping=2, sequence=4, offset=2)
    y.dump(obj, buf)
    data = buf.getvalue().encode()
    dest = os.path.join(st.target, "Kitfile")
    if os.path.exists(dest) and not st.overwrite:
        with open(dest, "rb") as f:
            if f.read() == data:
                return
        raise ModelKitError(f"{dest} already exists with different content; use --overwrite")
    st.add_file("Kitfile", io.BytesIO(data), len(data), 0o644) if not os.path.exists(
        dest
    ) or st.overwrite else None


def _strip_digests(o: Any) -> None:
    """Drop the LayerInfo fields (``digest``, ``diffId``) of every Kitfile entry, like kit's YAML.

    Only entry-level keys go: model, model parts, code, datasets, docs, prompts and mcpServers.
    ``parameters`` are user data and keep any ``digest`` keys they contain.
    """
    if not isinstance(o, dict):
        return
    entries: list[Any] = []
    model = o.get("model")
    if isinstance(model, dict):
        entries.append(model)
        entries += model.get("parts") or []
    for section in ("code", "datasets", "docs", "prompts", "mcpServers"):
        entries += o.get(section) or []
    for e in entries:
        if isinstance(e, dict):
            e.pop("digest", None)
            e.pop("diffId", None)
