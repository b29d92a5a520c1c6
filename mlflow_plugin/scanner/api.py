"""Scan files, directories and kits without executing anything.

>>> from mlflow_plugin.scanner import scan                                  # doctest: +SKIP
>>> report = scan("./model_dir")                                          # doctest: +SKIP
>>> report.failed("high"), [f.rule for f in report.findings]              # doctest: +SKIP
(True, ['pickle.unsafe-global'])

Targets: a file, a directory (walked, symlinks not followed), or a kit reference
(``oci:DIR:TAG`` or ``HOST/REPO:TAG``) whose layers are streamed from the store: every layer
is verified against its digest while its tar members are scanned, and nothing is unpacked to
disk (members that need random access, like zip archives, are spooled to a temporary file).
Files are scanned in parallel threads where it helps.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.kit.limits import DEFAULT_LIMITS, UnpackLimits
from mlflow_plugin.scanner import kitwide
from mlflow_plugin.scanner.context import Limits, Policy, ScanContext
from mlflow_plugin.scanner.detect import HEAD, detect
from mlflow_plugin.scanner.report import ScanReport, Severity
from mlflow_plugin.scanner.streams import ensure_seekable, is_seekable
from mlflow_plugin.storage.locations import StorageSettings

_ENCRYPTED = "+encrypted"  # ocicrypt's media type suffix
Decrypt = Callable[[dict[str, Any], IO[bytes]], IO[bytes]]
"""An encrypted layer's descriptor and ciphertext stream → its verified plaintext (a closable file)."""

log = logging.getLogger(__name__)
Scanner = Callable[[ScanContext, str, IO[bytes], int], None]
SPOOL_LIMIT = 32 << 20  # members up to this size are spooled in memory, larger ones to disk


def _registry() -> dict[str, Scanner]:
    """Format → scanner. Imported lazily so a missing optional library only disables one format."""
    out: dict[str, Scanner] = {}
    try:
        from mlflow_plugin.scanner import pickle_scan

        out["pickle"] = pickle_scan.scan_pickle
    except ImportError as e:  # pragma: no cover - a broken install
        log.warning("pickle scanner unavailable: %s", e)
    for fmt, mod, fn in (
        ("npy", "numpy_scan", "scan_npy"),
        ("zip", "containers", "scan_zip"),
        ("tar", "containers", "scan_tar"),
        ("gzip", "containers", "scan_compressed"),
        ("bz2", "containers", "scan_compressed"),
        ("xz", "containers", "scan_compressed"),
        ("zstd", "containers", "scan_compressed"),
        ("zlib", "containers", "scan_compressed"),
        ("lzma", "containers", "scan_compressed"),
        ("7z", "containers", "scan_7z"),
        ("hdf5", "keras_scan", "scan_hdf5"),
        ("safetensors", "tensor_formats", "scan_safetensors"),
        ("gguf", "tensor_formats", "scan_gguf"),
        ("protobuf", "protobuf_scan", "scan_protobuf"),
        ("text", "secrets", "scan_text"),
        ("python", "pycode", "scan_python"),
        ("requirements", "environment", "scan_requirements"),
        ("mlmodel", "mlmodel_scan", "scan_mlmodel"),
        ("dataset", "datasets", "scan_dataset"),
    ):
        try:
            module = __import__(f"{__package__}.{mod}", fromlist=[fn])
            out[fmt] = getattr(module, fn)
        except (ImportError, AttributeError) as e:
            log.debug("scanner for %s unavailable: %s", fmt, e)
    out["json"] = scan_json_document
    return out


KERAS_JSON_LIMIT = 16 << 20


def scan_json_document(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """JSON: secrets; a transformers ``config.json``/``tokenizer_config.json``: custom code it would
    run (``auto_map``, ``trust_remote_code``); a skops ``schema.json``: the types it builds; a Keras
    model config (``model.to_json()``): Lambda layers."""
    from mlflow_plugin.scanner import secrets

    start = stream.tell() if is_seekable(stream) else None
    secrets.scan_json(ctx, path, stream, size)
    if start is None or size > KERAS_JSON_LIMIT:
        return
    stream.seek(start)
    data = stream.read(KERAS_JSON_LIMIT + 1)
    if path.rsplit("/", 1)[-1] in ("config.json", "tokenizer_config.json"):
        from mlflow_plugin.scanner.mlmodel_scan import check_hf_config

        check_hf_config(ctx, path, data)
    from mlflow_plugin.scanner.skops_scan import check_skops_schema, looks_like_skops_schema

    if looks_like_skops_schema(path, data):
        check_skops_schema(ctx, path, data)
    if b'"class_name"' in data and b'"config"' in data:
        from mlflow_plugin.scanner.keras_scan import check_keras_config_bytes

        check_keras_config_bytes(ctx, path, data, "json")


_SCANNERS: dict[str, Scanner] | None = None


def scanners() -> dict[str, Scanner]:
    global _SCANNERS
    if _SCANNERS is None:
        _SCANNERS = _registry()
    return _SCANNERS


def dispatch(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Detect the format of ``stream`` and run its scanner; errors become findings."""
    seekable = is_seekable(stream)
    if seekable:
        start = stream.tell()
        head = stream.read(HEAD)
        stream.seek(start)
    else:
        stream, head = _Peek.wrap(stream)
    fmt = detect(head, path)
    if fmt == "unknown" and seekable and size >= 22 and _zip_by_tail(stream, size):
        fmt = "zip"  # junk before the first entry, or a corrupt first header: the directory is at the end
    ctx.record_file(path, fmt, size)
    if fmt == "unknown" and size <= HIDDEN_PICKLE_LIMIT:
        try:
            _hidden_pickles(ctx, path, stream, size)
        except Exception as e:  # a probe that trips over random data is not a finding about the file
            log.debug("hidden-pickle probe of %s failed: %s", path, e)
        return
    fn = scanners().get(fmt)
    if fn is None:
        if fmt == "7z":
            ctx.report(
                path,
                Severity.MEDIUM,
                "scan.unsupported",
                "7z archive: no 7z library is installed, its members were not scanned",
                "py7zr missing",
            )
        return
    try:
        fn(ctx, path, stream, size)
    except ModelKitError:
        raise
    except RecursionError:
        ctx.report(path, Severity.HIGH, "scan.malformed", f"{fmt} structure nested too deeply to analyse")
    except MemoryError:
        ctx.report(
            path, Severity.HIGH, "scan.limit.memory", f"{fmt} content needs too much memory to analyse"
        )
    except Exception as e:  # a malformed file is a finding, never a crash
        ctx.report(
            path,
            Severity.MEDIUM,
            "scan.malformed",
            f"{fmt} content could not be parsed: {type(e).__name__}: {str(e)[:160]}",
        )


HIDDEN_PICKLE_LIMIT = 64 << 20  # unknown binaries up to this size are searched for embedded pickles


def _zip_by_tail(stream: IO[bytes], size: int) -> bool:
    start = stream.tell()
    try:
        stream.seek(start + max(0, size - 65_557))
        tail = stream.read(65_557)
    finally:
        stream.seek(start)
    return b"PK\x05\x06" in tail


def _hidden_pickles(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """An unrecognised file may still hide a pickle behind a junk header: probe it (bounded)."""
    try:
        from mlflow_plugin.scanner.allowlist import judge
        from mlflow_plugin.scanner.pickle_vm import Reader, find_hidden_pickles
    except ImportError:  # pragma: no cover
        return
    policy = ctx.policy

    def judge_fn(module: str, name: str) -> Any:
        return judge(module, name, allow_globals=policy.allow_globals, allow_modules=policy.allow_modules)

    for issue in find_hidden_pickles(Reader(stream, size), judge_fn, size):
        ctx.report(path, issue.severity, issue.rule, issue.message, issue.evidence)


class _Peek:
    """Non-seekable stream with its first bytes buffered for detection."""

    def __init__(self, raw: IO[bytes], head: bytes) -> None:
        self.raw, self.buf = raw, head

    @classmethod
    def wrap(cls, raw: IO[bytes]) -> tuple[Any, bytes]:
        head = b""
        while len(head) < HEAD:
            b = raw.read(HEAD - len(head))
            if not b:
                break
            head += b
        return cls(raw, head), head

    def read(self, n: int = -1) -> bytes:
        if self.buf:
            if n < 0:
                out, self.buf = self.buf + self.raw.read(), b""
                return out
            out, self.buf = self.buf[:n], self.buf[n:]
            if len(out) < n:
                out += self.raw.read(n - len(out))
            return out
        return self.raw.read(n)

    def seekable(self) -> bool:
        return False


def _new_context(target: str, limits: Limits | None, policy: Policy | None) -> ScanContext:
    from mlflow_plugin._version import __version__

    return ScanContext(
        ScanReport(target=target, version=__version__),
        limits or Limits(),
        policy or Policy(),
        dispatch=dispatch,
    )


def scan_file(
    path: str, limits: Limits | None = None, policy: Policy | None = None, name: str | None = None
) -> ScanReport:
    """Scan one local file."""
    ctx = _new_context(path, limits, policy)
    _scan_one(ctx, path, name or os.path.basename(path))
    return ctx.report_obj


def _scan_one(ctx: ScanContext, full: str, rel: str) -> None:
    try:
        f = open(full, "rb")  # noqa: SIM115
    except OSError as e:
        ctx.report(rel, Severity.MEDIUM, "scan.unreadable", f"cannot read: {e.strerror}")
        return
    with f:
        size = os.fstat(f.fileno()).st_size
        dispatch(ctx, rel, f, size)


def scan_directory(
    root: str, limits: Limits | None = None, policy: Policy | None = None, workers: int | None = None
) -> ScanReport:
    """Scan every regular file under ``root`` (symlinks reported, not followed), in parallel."""
    files: list[tuple[str, str]] = []
    report = ScanReport(target=root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if os.path.islink(full):
                ctx = _new_context(root, limits, policy)
                ctx.report(
                    rel, Severity.LOW, "scan.symlink", f"symlink to {os.readlink(full)!r} not followed"
                )
                report.findings += ctx.report_obj.findings
                continue
            files.append((full, rel))
    workers = workers or min(4, (os.cpu_count() or 2))

    def one(item: tuple[str, str]) -> tuple[ScanReport, list[dict[str, Any]]]:
        ctx = _new_context(root, limits, policy)
        _scan_one(ctx, item[0], item[1])
        return ctx.report_obj, kitwide.facts_of(ctx)

    # big files first so the pool stays busy
    files.sort(key=lambda it: -os.path.getsize(it[0]))
    facts: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for r, fs in pool.map(one, files):
            report.files += r.files
            report.findings += r.findings
            facts += fs
    from mlflow_plugin._version import __version__

    report.version = __version__
    report.files.sort(key=lambda f: f.path)
    kitwide.apply_pass(report, facts)  # what needs the whole model: kit code, missing code
    return report


def scan_kit(
    ref: str,
    limits: Limits | None = None,
    policy: Policy | None = None,
    unpack_limits: UnpackLimits | None = None,
    settings: StorageSettings | None = None,
    decrypt: Decrypt | None = None,
    **registry_options: Any,
) -> ScanReport:
    """Scan every layer of a kit, streamed from its store and verified while read.

    ``unpack_limits`` (default :data:`~mlflow_plugin.kit.limits.DEFAULT_LIMITS`; callers pass the
    admin's ``[limits]``) bound decompression as in ``unpack``; a layer past them is a finding.
    Encrypted layers (``…+encrypted``) are scanned as plaintext through ``decrypt`` (the layer's
    descriptor and its ciphertext stream → a verified plaintext file; see
    :meth:`mlflow_plugin.trust.sealed.Decryptor.decrypt_to_temp`), never cached; without it they
    cannot be scanned and the scan fails (an unread layer is never a pass).
    """

    from mlflow_plugin.kit.decompress import Budget
    from mlflow_plugin.storage.locations import open_location

    repo, loc = open_location(ref, default_tag="latest", settings=settings, **registry_options)
    ctx = _new_context(str(loc), limits, policy)
    try:
        data, _mt, digest = repo.get_manifest(loc.reference or "latest")
        m = json.loads(data)
        ctx.report_obj.target = f"{loc}@{digest}" if "@" not in str(loc) else str(loc)
        ulimits = unpack_limits or DEFAULT_LIMITS
        cache = _LayerCache(ctx, ulimits)
        budget = Budget(ulimits)
        for layer in m.get("layers") or []:
            media_type = str(layer.get("mediaType", ""))
            ld = layer["digest"]
            if media_type.endswith(_ENCRYPTED):
                if decrypt is None:
                    raise ModelKitError(
                        f"layer {ld} of {loc} is encrypted: pass --decrypt-key "
                        "(or set MLFLOW_MODELKIT_DECRYPT_KEYS) to scan it"
                    )
                with repo.open_blob(ld, layer.get("size")) as blob, decrypt(layer, blob) as plain:
                    plain_type = media_type[: -len(_ENCRYPTED)]
                    _scan_layer(ctx, ld, plain_type, plain, layer.get("size", 0), budget, {})
                continue
            listing = cache.replay(ld)
            if listing is not None:  # this exact blob was scanned before with the same scanner and policy
                _check_index(ctx, layer, listing)
                continue
            listing = {}
            mark = cache.mark()
            with repo.open_blob(ld, layer.get("size")) as blob:
                _scan_layer(ctx, ld, media_type, blob, layer.get("size", 0), budget, listing)
                # read to EOF: the digest check runs at the end of the blob
                while blob.read(1 << 20):
                    pass
                verify = getattr(blob, "verify", None)
                if verify:
                    verify()
            cache.store(ld, mark, listing)
            _check_index(ctx, layer, listing)
    finally:
        repo.close()
    kitwide.apply_pass(ctx.report_obj, kitwide.facts_of(ctx))  # cached layers replayed their facts
    return ctx.report_obj


def _scan_layer(
    ctx: ScanContext,
    ld: str,
    media_type: str,
    blob: IO[bytes],
    size: int,
    budget: Any,
    listing: dict[str, tuple[int, int]],
) -> None:
    """Scan one (plaintext) layer: a tar's members, each as a file, or the blob as one file;
    ``listing`` gets the members' sizes and offsets (for the file-index check)."""
    import tarfile

    from mlflow_plugin.errors import LimitExceededError
    from mlflow_plugin.kit.decompress import DecompressingReader
    from mlflow_plugin.kit.mediatypes import parse_layer_media_type
    from mlflow_plugin.kit.unpack import safe_member_path

    parsed = parse_layer_media_type(media_type)
    if parsed is None or parsed[1] != "tar":
        dispatch(ctx, f"{ld}", blob, size)
        return
    stream = DecompressingReader(blob, parsed[2], layer=ld, budget=budget)
    try:
        with stream, tarfile.open(fileobj=stream, mode="r|") as tf:
            for member in tf:
                if member.issym() or member.islnk():
                    _check_link(ctx, member)
                    continue
                if not member.isfile():
                    continue
                try:
                    rel = safe_member_path(member.name)
                except ModelKitError as e:
                    ctx.report(member.name, Severity.HIGH, "kit.unsafe-path", str(e))
                    continue
                listing[rel] = (member.size, member.offset_data)
                f = tf.extractfile(member)
                assert f is not None
                _scan_member_stream(ctx, rel, f, member.size)
    except LimitExceededError as e:  # a bomb is a finding, as every scan limit
        ctx.report(ld, Severity.HIGH, "scan.limit.unpack", str(e))


def _check_link(ctx: ScanContext, member: Any) -> None:
    """A symlink or hardlink whose target leaves the kit (absolute, or ``..`` past its root) is a
    finding: unpack refuses it, and a tool that follows it reads or overwrites a host file."""
    import posixpath

    target = str(member.linkname or "")
    base = posixpath.dirname(member.name) if member.issym() else ""  # hardlinks: from the root
    joined = posixpath.normpath(posixpath.join(base, target)) if target else ""
    if target.startswith("/") or joined == ".." or joined.startswith("../") or not target:
        kind = "symlink" if member.issym() else "hardlink"
        ctx.report(
            str(member.name)[:200],
            Severity.HIGH,
            "kit.unsafe-link",
            f"{kind} to {target[:200]!r} points outside the kit",
        )


@functools.cache
def scanner_fingerprint() -> str:
    """SHA-256 over the scanner's own source files: a cached layer result is valid only for the
    exact scanner that produced it (a new rule or allowlist entry invalidates the cache even
    when the package version did not change, as in a development install).

    >>> len(scanner_fingerprint())
    64
    """
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            h.update(name.encode() + b"\0")
            with open(os.path.join(here, name), "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


class _LayerCache:
    """Scan results per layer digest (content-addressed, so a result is valid for exactly those bytes).

    Keyed by digest, scanner version and source fingerprint, policy and limits;
    ``MLFLOW_MODELKIT_SCAN_CACHE=0`` disables it.
    Publishing a run whose layers were scanned before (re-publish, another tag) skips re-reading them.
    """

    def __init__(self, ctx: ScanContext, unpack_limits: UnpackLimits) -> None:
        import dataclasses

        from mlflow_plugin._internal import statcache
        from mlflow_plugin._version import __version__

        self.ctx = ctx
        self.db = None
        if os.environ.get("MLFLOW_MODELKIT_SCAN_CACHE", "1").lower() not in ("0", "false", "no", "off"):
            path = os.path.join(os.path.dirname(statcache.default_path()), "scancache.sqlite")
            self.db = statcache.StatCache(path)
        p = ctx.policy
        self.salt = json.dumps(
            [
                __version__,
                scanner_fingerprint(),
                sorted(p.allow_globals),
                sorted(p.allow_modules),
                p.code_in_functions,
                p.embedded_code,
                p.pii,
                dataclasses.asdict(ctx.limits),
                dataclasses.asdict(unpack_limits),
            ],
            sort_keys=True,
        )

    def _key(self, digest: str) -> str:
        return hashlib.sha256(f"{digest}|{self.salt}".encode()).hexdigest()

    def mark(self) -> tuple[int, int, int]:
        r = self.ctx.report_obj
        return len(r.files), len(r.findings), len(kitwide.facts_of(self.ctx))

    def replay(self, digest: str) -> dict[str, tuple[int, int]] | None:
        """Replay a cached result; returns the layer's tar listing (path -> size, offset) or None."""
        if self.db is None:
            return None
        hit = self.db.get(self._key(digest))
        if hit is None or "listing" not in hit or "facts" not in hit:
            return None  # "facts": entries written before the whole-kit pass existed are rescanned
        from mlflow_plugin.scanner.report import FileRecord, Finding

        self.ctx.report_obj.files += [FileRecord(**f) for f in hit["files"]]
        self.ctx.report_obj.findings += [
            Finding(f["path"], Severity.parse(f["severity"]), f["rule"], f["message"], f["evidence"])
            for f in hit["findings"]
        ]
        kitwide.facts_of(self.ctx).extend(hit["facts"])
        return {p: (int(v[0]), int(v[1])) for p, v in hit["listing"].items()}

    def store(self, digest: str, mark: tuple[int, int, int], listing: dict[str, tuple[int, int]]) -> None:
        """Store what scanning this layer added: files, findings, and the facts the whole-kit pass
        needs (module names, MLmodel references) — the pass runs after every layer, cached or not."""
        if self.db is None:
            return
        import dataclasses

        files = [dataclasses.asdict(f) for f in self.ctx.report_obj.files[mark[0] :]]
        findings = [f.to_json() for f in self.ctx.report_obj.findings[mark[1] :]]
        facts = kitwide.facts_of(self.ctx)[mark[2] :]
        self.db.put(
            self._key(digest), {"files": files, "findings": findings, "listing": listing, "facts": facts}
        )


def _check_index(ctx: ScanContext, layer: dict[str, Any], listing: dict[str, tuple[int, int]]) -> None:
    """A layer's file index (what MLflow downloads read) must describe the tar the scan read.

    The index lives in the manifest, not the blob, so this runs on every scan, cached or not; a
    lie is critical: MLflow would load bytes the scan never judged as that file.
    """
    from mlflow_plugin.kit.fileindex import check_index_matches, parse_file_index

    ld = layer.get("digest", "")
    try:
        index = parse_file_index(layer)
        if index:
            check_index_matches(index, listing, ld)
    except ModelKitError as e:
        ctx.report(ld, Severity.CRITICAL, "kit.index-mismatch", str(e))


# formats whose scanners need random access (central directories, B-trees); others stream
NEEDS_SEEK = frozenset({"zip", "hdf5", "7z", "tar", "safetensors", "gguf", "protobuf"})


def _scan_member_stream(ctx: ScanContext, rel: str, f: IO[bytes], size: int) -> None:
    """Scan one tar member of a streamed layer: spool it only if its format needs seeking.

    A 2 GiB weights file of an unknown or streaming format (pickle, text, compressed) is read
    once, straight from the layer stream; zip archives and HDF5 files are spooled (memory up
    to 32 MiB, then a temporary file).
    """
    peek, head = _Peek.wrap(f)
    fmt = detect(head, rel)
    if size <= SPOOL_LIMIT or fmt in NEEDS_SEEK:
        with ensure_seekable(peek, size) as member_stream:
            dispatch(ctx, rel, member_stream, size)
        return
    dispatch(ctx, rel, peek, size)


def scan(
    target: str,
    limits: Limits | None = None,
    policy: Policy | None = None,
    unpack_limits: UnpackLimits | None = None,
    settings: StorageSettings | None = None,
    decrypt: Decrypt | None = None,
    **registry_options: Any,
) -> ScanReport:
    """Scan a file, a directory or a kit reference; see the module docstring (``decrypt``: as in
    :func:`scan_kit`).

    >>> scan("model.pkl").failed("high")                                   # doctest: +SKIP
    """
    if os.path.isdir(target):
        return scan_directory(target, limits, policy)
    if os.path.isfile(target):
        return scan_file(target, limits, policy)
    if target.startswith("oci:") or ("/" in target and (":" in target or "@" in target)):
        return scan_kit(target, limits, policy, unpack_limits, settings, decrypt, **registry_options)
    raise ModelKitError(
        f"nothing to scan at {target!r}: give a file, a directory or a kit reference "
        "(oci:DIR:TAG or HOST/REPO:TAG)"
    )


def sha256_of(stream: IO[bytes]) -> str:
    h = hashlib.sha256()
    for b in iter(lambda: stream.read(1 << 20), b""):
        h.update(b)
    return h.hexdigest()
