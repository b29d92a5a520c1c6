"""Scan pickle streams: plain pickles, joblib files, legacy PyTorch files — without unpickling.

:func:`scan_pickle` runs the :class:`~.pickle_vm.PickleVM` over every pickle of the stream and turns
what it finds into findings:

============================  ===============================================================
rule                          meaning
============================  ===============================================================
``pickle.unsafe-global``      imports a denied global (evidence ``module.qualname``)
``pickle.unknown-global``     imports a global outside the allowlist
``pickle.unsafe-call``        ``getattr`` used to reach something not allowlisted
``pickle.indirect-call``      calls a computed callable (evidence: the resolved call chain)
``pickle.dynamic-global``     ``STACK_GLOBAL`` whose operands are not plain strings
``pickle.mutate-global``      ``BUILD``/``SETITEM``/``APPEND`` on an imported object
``pickle.ext-code``           ``EXT1/2/4`` (copyreg extension registry)
``pickle.persistent-id``      a persistent id other than a torch storage
``pickle.hidden-pickle``      pickle opcodes hidden in data a loader skips (trailing data, arrays)
``pickle.embedded-code``      a function/class pickled by value (cloudpickle): what it references,
                              CRITICAL when it reaches os.system/subprocess/exec/…, else the
                              policy's ``embedded_code`` severity
``pickle.malformed``          not a valid pickle / truncated
``pickle.limit``              a limit (opcodes, memo, stack) stopped the analysis
============================  ===============================================================

Formats recognised inside the stream:

* several pickles one after another (legacy ``torch.save`` writes five, then raw storages:
  their sizes are read from the storage keys, so the raw bytes are skipped exactly);
* joblib: raw array bytes after each ``NumpyArrayWrapper`` (with the alignment padding of joblib
  ≥ 1.2), object arrays as nested pickles, and the legacy ``ZF`` zlib container;
* numpy pickled arrays; anything after the last pickle is searched for hidden pickles.

>>> import io
>>> from mlflow_plugin.scanner.context import ScanContext
>>> from mlflow_plugin.scanner.report import ScanReport
>>> ctx = ScanContext(ScanReport("x"))
>>> data = b"\\x80\\x04\\x95\\x11\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x8c\\x05posix\\x8c\\x06system\\x93."
>>> scan_pickle(ctx, "m.pkl", io.BytesIO(data), len(data))
>>> [(f.severity.name, f.rule, f.evidence) for f in ctx.report_obj.findings]
[('CRITICAL', 'pickle.unsafe-global', 'os.system')]
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zlib
from functools import partial
from typing import IO, Any

from mlflow_plugin.scanner.allowlist import is_identifier_path, judge
from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.pickle_vm import (
    OPCODES,
    Issue,
    LimitExceeded,
    PickleError,
    PickleVM,
    PList,
    Reader,
    Truncated,
    find_hidden_pickles,
)
from mlflow_plugin.scanner.report import Severity

__all__ = ["TORCH_MAGIC", "scan_joblib_zf", "scan_pickle", "scan_pickle_stream"]

TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy (non-zip) torch.save file
_TORCH_ELEMENT_SIZE = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "BFloat16Storage": 2,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}
_ZF_PREFIX = b"ZF"
_ZF_MAX_LEN = len(f"{2**64:#x}")  # joblib's header: "ZF" + hex length padded to this width


def scan_pickle(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Scan a pickle-format stream (plain, joblib, legacy torch) and report findings to ``ctx``.

    >>> import io
    >>> from mlflow_plugin.scanner.context import ScanContext
    >>> from mlflow_plugin.scanner.report import ScanReport
    >>> ctx = ScanContext(ScanReport("x"))
    >>> scan_pickle(ctx, "ok.pkl", io.BytesIO(b"\\x80\\x02]q\\x00K\\x01a."), 9)
    >>> ctx.report_obj.findings
    []
    """
    reader = Reader(stream, size)
    head = _peek_head(reader, 2 + _ZF_MAX_LEN)
    if head.startswith(_ZF_PREFIX) and head[2:4] == b"0x":
        scan_joblib_zf(ctx, path, reader, size)
        return
    for issue in scan_pickle_stream(reader, ctx):
        ctx.report(path, issue.severity, issue.rule, issue.message, issue.evidence)


def _peek_head(reader: Reader, n: int) -> bytes:
    if len(reader.buf) - reader.pos < n:
        reader._fill(n)
    return reader.buf[reader.pos : reader.pos + n]


def judge_for(ctx: ScanContext | None) -> Any:
    if ctx is None or (not ctx.policy.allow_globals and not ctx.policy.allow_modules):
        return judge
    return partial(
        judge,
        allow_globals=frozenset(ctx.policy.allow_globals),
        allow_modules=frozenset(ctx.policy.allow_modules),
    )


def _embedded_severity(ctx: ScanContext | None) -> Severity:
    """The admin's severity for benign code pickled by value (``[scan] embedded_code``)."""
    if ctx is None:
        return Severity.MEDIUM
    return Severity.parse(getattr(ctx.policy, "embedded_code", "medium"))


def scan_pickle_stream(reader: Reader, ctx: ScanContext | None = None) -> list[Issue]:
    """Run the VM over every pickle in ``reader`` and return the issues (no reporting).

    Used by :func:`scan_pickle` and by the ``.npy`` scanner for object arrays.

    >>> import io
    >>> data = b"cbuiltins\\neval\\n(Vprint(1)\\ntR."
    >>> [(i.rule, i.evidence) for i in scan_pickle_stream(Reader(io.BytesIO(data)))]
    [('pickle.unsafe-global', 'builtins.eval')]
    """
    lim = ctx.limits if ctx is not None else None
    vm = PickleVM(
        reader,
        judge_for(ctx),
        max_ops=lim.max_pickle_ops if lim else 50_000_000,
        max_memo=lim.max_memo if lim else 10_000_000,
        max_stack=lim.max_stack if lim else 1_000_000,
        embedded_severity=_embedded_severity(ctx),
    )
    extra: list[Issue] = []
    torch_legacy = False
    try:
        while True:
            b = reader.peek()
            if b < 0:
                break
            index = vm.pickles
            if index > 0 and b not in OPCODES:
                extra += _trailing(reader, vm, lim)
                break
            if index == 0:
                vm.run_one(tolerant=True)
            elif not _run_next(vm, reader, extra):
                extra += _trailing(reader, vm, lim)
                break
            if index == 0 and vm.results and vm.results[0] == TORCH_MAGIC and vm.errors == 0:
                torch_legacy = True
            if torch_legacy and index == 4:
                if not _skip_torch_storages(vm, reader, extra):
                    break
                torch_legacy = False
    except LimitExceeded as e:
        sev = Severity.MEDIUM if e.kind == "ops" else Severity.HIGH
        extra.append(
            Issue(
                sev,
                "pickle.limit",
                f"analysis stopped: {e}; the rest of the stream was not scanned (raise the limit to scan it)",
                e.kind,
                vm.op_offset,
            )
        )
    except Truncated as e:
        extra.append(_malformed(vm, f"truncated: {e}", e.offset))
    except PickleError as e:
        extra.append(_malformed(vm, str(e), e.offset))
    except RecursionError:  # pragma: no cover - the VM is iterative; belt and braces
        extra.append(Issue(Severity.HIGH, "pickle.malformed", "structure nested too deeply", "", -1))
    if vm.first_error is not None and not any(i.rule == "pickle.malformed" for i in extra):
        extra.append(
            _malformed(vm, f"{vm.first_error} ({vm.errors} structural error(s))", vm.first_error.offset)
        )
    seen: set[tuple[str, str]] = set()
    issues = []
    for i in vm.finish() + extra:
        if (i.rule, i.evidence) not in seen:
            seen.add((i.rule, i.evidence))
            issues.append(i)
    return issues


def _run_next(vm: PickleVM, reader: Reader, extra: list[Issue]) -> bool:
    """Run a pickle after the first; ``False`` if it is not one (then it is trailing data)."""
    snapshot_issues = len(vm.issues)
    snapshot_keys = set(vm._issue_keys)
    snapshot_imports = set(vm.imports)
    start = reader.offset
    try:
        vm.run_one(tolerant=False)
        return True
    except (PickleError, Truncated):
        # not a pickle after all (raw data that starts like an opcode): forget what it produced,
        # except imports with valid names — a loader reading it as a pickle would import those
        del vm.issues[snapshot_issues:]
        vm._issue_keys = snapshot_keys
        kept = []
        for key in list(vm.imports):
            if key in snapshot_imports:
                continue
            rec = vm.imports.pop(key)
            if not rec.verdict.allowed and is_identifier_path(rec.module) and is_identifier_path(rec.name):
                kept.append(rec)
        if kept:
            worst = max(rec.verdict.severity or Severity.HIGH for rec in kept)
            names = ", ".join(sorted({rec.verdict.qualified for rec in kept}))
            extra.append(
                Issue(
                    worst,
                    "pickle.hidden-pickle",
                    f"data after pickle #{vm.pickles} at offset {start} holds pickle opcodes "
                    f"importing {names}",
                    names,
                    start,
                )
            )
        reader.rewind(start + 1)  # search what the failed parse skipped over for hidden pickles
        return False


def _trailing(reader: Reader, vm: PickleVM, lim: Any) -> list[Issue]:
    """Data after the last pickle: search it for hidden pickles."""
    return find_hidden_pickles(reader, vm.judge_fn, lim.max_member_size if lim else None)


def _skip_torch_storages(vm: PickleVM, reader: Reader, extra: list[Issue]) -> bool:
    """Legacy torch.save: after the storage-keys pickle come the raw storages, each an int64 count
    then ``count * element_size`` bytes. Skip them exactly."""
    keys = vm.results[4] if len(vm.results) > 4 else None
    if type(keys) is not PList or keys.count != len(keys.items):
        extra.append(
            Issue(
                Severity.MEDIUM,
                "pickle.malformed",
                "legacy torch file: storage key list not understood; raw storage data was not located",
                "",
                reader.offset,
            )
        )
        return False
    for key in keys.items:
        info = vm.torch_storages.get(key) if type(key) is str else None
        if info is None:
            extra.append(
                Issue(
                    Severity.MEDIUM,
                    "pickle.malformed",
                    "legacy torch file: storage key without a persistent id",
                    repr(key)[:60],
                    reader.offset,
                )
            )
            return False
        elsize = _TORCH_ELEMENT_SIZE.get(info[0], 1)
        p = reader.take(8)
        numel = int.from_bytes(reader.buf[p : p + 8], "little", signed=True)
        if numel < 0:
            extra.append(
                Issue(
                    Severity.MEDIUM,
                    "pickle.malformed",
                    "legacy torch file: negative storage size",
                    str(numel),
                    reader.offset,
                )
            )
            return False
        reader.skip(numel * elsize)
    return True


def _malformed(vm: PickleVM, msg: str, offset: int) -> Issue:
    """A malformed-pickle issue; LOW when nothing in it looked like a pickle at all."""
    early = offset >= 0 and offset - vm.start < 16 and vm.pickles == 0
    no_imports = not vm.imports
    sev = Severity.LOW if (early and no_imports) else Severity.MEDIUM
    what = "not a valid pickle" if early and no_imports else "malformed pickle"
    return Issue(sev, "pickle.malformed", f"{what}: {msg}", f"offset {offset}", offset)


# ---------------------------------------------------------------------------------------------
# joblib's legacy ZF container: b"ZF" + hex length (padded) + zlib data


class _ZlibStream(io.RawIOBase):
    """Streams the inflated content of a zlib body, enforcing size and ratio limits."""

    def __init__(self, reader: Reader, expected: int, max_size: int, max_ratio: float) -> None:
        self.reader = reader
        self.d = zlib.decompressobj(15)
        self.expected = expected
        self.max_size = max_size
        self.max_ratio = max_ratio
        self.pending = b""
        self.produced = 0
        self.consumed = 0
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = len(b)
        while len(self.pending) < n and self.error is None:
            if self.d.eof:
                break
            chunk = self.d.unconsumed_tail or self.reader.read_some(1 << 16)
            if not chunk:
                if not self.d.eof:
                    self.error = "zlib stream is truncated"
                break
            if not self.d.unconsumed_tail:
                self.consumed += len(chunk)
            out = self.d.decompress(chunk, 1 << 20)
            self.produced += len(out)
            if self.produced > self.max_size:
                self.error = f"inflates to more than {self.max_size} bytes"
                break
            if self.produced > (1 << 20) and self.produced > self.max_ratio * max(1, self.consumed):
                self.error = f"compression ratio above {self.max_ratio:g}"
                break
            self.pending += out
        k = min(n, len(self.pending))
        b[:k] = self.pending[:k]
        self.pending = self.pending[k:]
        return k


def scan_joblib_zf(ctx: ScanContext, path: str, stream: IO[bytes] | Reader, size: int) -> None:
    """Scan joblib's legacy zlib container (``ZF0x…`` header, joblib < 0.10): inflate it as a
    stream (size and ratio limits enforced) and scan the content as a container member.

    >>> import io, zlib
    >>> from mlflow_plugin.scanner.context import ScanContext
    >>> from mlflow_plugin.scanner.report import ScanReport
    >>> body = b"\\x80\\x02cos\\nsystem\\nq\\x00."
    >>> data = b"ZF" + f"{len(body):#x}".ljust(19).encode() + zlib.compress(body)
    >>> ctx = ScanContext(ScanReport("x"))
    >>> scan_joblib_zf(ctx, "m.pkl", io.BytesIO(data), len(data))
    >>> [(f.path, f.evidence) for f in ctx.report_obj.findings]
    [('m.pkl!zlib', 'os.system')]
    """
    reader = stream if isinstance(stream, Reader) else Reader(stream, size)
    header = reader.read_some(2 + _ZF_MAX_LEN)
    try:
        expected = int(header[2:].decode("ascii").strip(), 16)
    except (UnicodeDecodeError, ValueError):
        ctx.report(
            path, Severity.MEDIUM, "pickle.malformed", "joblib ZF header with a bad length", header[:24].hex()
        )
        return
    if reader.peek() == 0x20:  # joblib may write one separator space
        reader.read_some(1)
    zs = _ZlibStream(reader, expected, ctx.limits.max_member_size, ctx.limits.max_ratio)
    # inflate to a spool first: joblib reads the whole zlib stream whatever the header says, so the
    # real length (not the declared one) bounds what is scanned
    with tempfile.SpooledTemporaryFile(max_size=32 << 20, prefix="modelkit-zf-") as spool:
        shutil.copyfileobj(io.BufferedReader(zs, 1 << 20), spool, 1 << 20)
        actual = spool.tell()
        spool.seek(0)
        inner = f"{path}!zlib"
        if actual != expected and not zs.error:
            ctx.report(
                path,
                Severity.LOW,
                "pickle.malformed",
                f"joblib ZF header announces {expected} bytes, the content has {actual}",
            )
        if ctx.dispatch is not None:
            ctx.scan_member(inner, spool, actual)  # type: ignore[arg-type]
        else:
            for issue in scan_pickle_stream(Reader(spool, actual), ctx):  # type: ignore[arg-type]
                ctx.report(inner, issue.severity, issue.rule, issue.message, issue.evidence)
    if zs.error:
        rule = "scan.limit.ratio" if "ratio" in zs.error or "more than" in zs.error else "pickle.malformed"
        ctx.report(path, Severity.MEDIUM, rule, f"joblib ZF container: {zs.error}")
