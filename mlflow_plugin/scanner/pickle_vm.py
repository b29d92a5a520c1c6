"""A pickle virtual machine that *simulates* unpickling: it never imports or calls anything.

:class:`PickleVM` reads the opcodes of protocols 0–5 from a stream and keeps what the real
unpickler would keep — the stack, the marks, the memo (``PUT``/``BINPUT``/``LONG_BINPUT``/
``MEMOIZE``/``GET``/…), the protocol — but its values are symbols: a :class:`Global` for an
import (``GLOBAL``, ``INST``, ``STACK_GLOBAL`` even when its strings come from the memo), a
:class:`Call` for what ``REDUCE``/``NEWOBJ``/``NEWOBJ_EX``/``OBJ``/``INST`` would call, a
:class:`Ref` for ``PERSID``/``BINPERSID``, an :class:`Ext` for ``EXT1/2/4``. Each import is judged by
a ``judge(module, name)`` function (see :mod:`.allowlist`); calls of computed callables are
resolved to what they reach (``builtins.getattr(builtins.__import__('os'), 'system')`` → ``os.system``).

Code pickled by value (cloudpickle's ``_make_function``/``_make_skeleton_class``/``_class_setstate``/
``_builtin_type('CodeType')``/``subimport``… — notebook classes, lambdas, local functions) is
recognised as *structure* only in that exact shape: the code objects' fields (``co_names``,
``co_consts`` with nested code, ``co_qualname``, and, when the layout matches the running Python,
an opcode walk of ``LOAD_GLOBAL``/``LOAD_ATTR``/``IMPORT_NAME``) are read from the simulated
arguments, resolved through the function's globals and closure, and reported as one
``pickle.embedded-code`` issue per function/class — CRITICAL when it reaches ``os.system``,
``subprocess``, ``exec``, ``socket``…; else the caller's ``embedded_severity``.

Large payloads (``BINBYTES``, ``BINUNICODE8``, ``BYTEARRAY8``, ``LONG4``…) are skipped with ``seek``
(or bounded reads on non-seekable streams), so a 1 GiB pickle of array data is scanned in
milliseconds with a few MiB of memory. Limits (opcodes, memo slots, stack depth) end the scan with
an issue, never with a crash; malformed input is an issue too.

>>> import io
>>> from mlflow_plugin.scanner.allowlist import judge
>>> data = b"cos\\nsystem\\n(S'true'\\ntR."          # os.system('true'), written by hand
>>> vm = PickleVM(Reader(io.BytesIO(data), len(data)), judge)
>>> vm.run_all()
>>> [(i.severity.name, i.rule, i.evidence) for i in vm.finish()]
[('CRITICAL', 'pickle.unsafe-global', 'os.system')]
"""

from __future__ import annotations

import codecs
import dis
import io
import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from mlflow_plugin.scanner.allowlist import Verdict, is_identifier_path
from mlflow_plugin.scanner.report import Severity

__all__ = [
    "OPCODES",
    "Call",
    "Ext",
    "Global",
    "Issue",
    "PickleError",
    "PickleVM",
    "Reader",
    "Ref",
    "Truncated",
    "describe",
    "find_hidden_pickles",
    "resolve",
    "sniff",
]

Judge = Callable[[str, str], Verdict]

CHUNK = 1 << 20  # read size
KEEP_STR = 8192  # strings/bytes longer than this are skipped, kept as a Blob
MAX_LINE = 1 << 16  # text-opcode arguments longer than this are skipped
CONTAINER_CAP = 1 << 16  # items kept per container (the rest are only counted)
RETAIN_BUDGET = 4_000_000  # items kept across all containers of one stream
MAX_ISSUES = 500
MAX_IMPORTS = 100_000  # distinct globals in one stream
MAX_IMPORT_ISSUES = 1000  # findings for individual globals (then one summary)
MAX_NESTED = 16  # joblib object arrays nested in object arrays
PROBE_BUDGET = 2_000_000  # opcodes spent on hidden-pickle probes per stream

_U1 = struct.Struct("<B").unpack_from
_U2 = struct.Struct("<H").unpack_from
_I4 = struct.Struct("<i").unpack_from
_U4 = struct.Struct("<I").unpack_from
_U8 = struct.Struct("<Q").unpack_from
_F8 = struct.Struct(">d").unpack_from

# every opcode byte of protocols 0–5
OPCODES = frozenset(b"(.0125FIJKLMNPQRSTUVXabcdeghijlopqrstu}])GBC" + bytes(range(0x80, 0x99)))


class PickleError(Exception):
    """The stream is not a valid pickle at ``offset``."""

    def __init__(self, msg: str, offset: int = -1) -> None:
        super().__init__(msg)
        self.offset = offset


class Truncated(PickleError):
    """The stream ended in the middle of a pickle."""


class LimitExceeded(Exception):
    """A resource limit was reached (``kind`` is ``ops``, ``memo``, ``stack`` or ``issues``)."""

    def __init__(self, kind: str, msg: str) -> None:
        super().__init__(msg)
        self.kind = kind


# ---------------------------------------------------------------------------------------------
# Reading


class Reader:
    """Buffered reader over a binary stream that can skip payloads without reading them.

    ``size`` bounds what is read (``None``: until EOF). Seekable streams skip with ``seek``;
    others read and discard in 1 MiB chunks.

    >>> r = Reader(io.BytesIO(b"abc\\ndef"), 7)
    >>> r.readline(), r.peek(), r.offset
    (b'abc', 100, 4)
    """

    __slots__ = ("buf", "consumed", "origin", "pos", "remaining", "seekable", "size", "stream")

    def __init__(self, stream: IO[bytes], size: int | None = None) -> None:
        self.stream = stream
        self.buf = b""
        self.pos = 0
        self.consumed = 0  # content offset of buf[0]
        self.remaining = size if size is not None and size >= 0 else None  # bytes not yet pulled in
        self.size = self.remaining
        try:
            self.seekable = bool(stream.seekable())
            self.origin = stream.tell() if self.seekable else 0
        except (AttributeError, ValueError, OSError):
            self.seekable, self.origin = False, 0

    def rewind(self, offset: int) -> bool:
        """Go back to content ``offset`` (seekable streams, or within the buffer); False if impossible."""
        if self.consumed <= offset <= self.consumed + len(self.buf):
            self.pos = offset - self.consumed
            return True
        if not self.seekable:
            return False
        try:
            self.stream.seek(self.origin + offset)
        except (OSError, ValueError):
            return False
        self.buf, self.pos, self.consumed = b"", 0, offset
        if self.size is not None:
            self.remaining = max(0, self.size - offset)
        return True

    @property
    def offset(self) -> int:
        """Position in the content (bytes from its start)."""
        return self.consumed + self.pos

    def _fill(self, need: int) -> None:
        keep = self.buf[self.pos :]
        self.consumed += self.pos
        want = max(need - len(keep), CHUNK)
        if self.remaining is not None:
            want = min(want, self.remaining)
        parts = [keep]
        got = 0
        while got < want:
            data = self.stream.read(want - got)
            if not data:
                self.remaining = 0
                break
            parts.append(data)
            got += len(data)
            if got >= need - len(keep):
                break
        if self.remaining is not None:
            self.remaining = max(0, self.remaining - got)
        self.buf = b"".join(parts) if len(parts) > 1 else keep
        self.pos = 0

    def peek(self) -> int:
        """Next byte without consuming it; -1 at the end."""
        if self.pos >= len(self.buf):
            self._fill(1)
            if not self.buf:
                return -1
        return self.buf[self.pos]

    def take(self, n: int) -> int:
        """Make ``n`` bytes available and consume them; returns their index in ``self.buf``."""
        pos = self.pos
        if pos + n > len(self.buf):
            self._fill(n)
            pos = self.pos
            if pos + n > len(self.buf):
                self.pos = len(self.buf)
                raise Truncated(f"stream ends inside an opcode argument ({n} bytes needed)", self.offset)
        self.pos = pos + n
        return pos

    def read(self, n: int) -> bytes:
        p = self.take(n)
        return self.buf[p : p + n]

    def readline(self, maxlen: int = MAX_LINE) -> bytes:
        """Bytes up to (not including) the next newline, consumed with it. A line longer than
        ``maxlen`` is skipped without being kept and raises ``_LineTooLong``."""
        start = self.pos
        nl = self.buf.find(b"\n", start)
        if nl >= 0:
            self.pos = nl + 1
            if nl - start > maxlen:
                raise _LineTooLong(nl - start)
            return self.buf[start:nl]
        while len(self.buf) - self.pos <= maxlen:  # grow the buffer until a newline shows up
            have = len(self.buf) - self.pos
            self._fill(have + CHUNK)
            if len(self.buf) - self.pos == have:
                self.pos = len(self.buf)
                raise Truncated("stream ends inside a text argument", self.offset)
            nl = self.buf.find(b"\n", self.pos + have)
            if nl >= 0:
                start, self.pos = self.pos, nl + 1
                if nl - start > maxlen:
                    raise _LineTooLong(nl - start)
                return self.buf[start:nl]
        length = len(self.buf) - self.pos  # too long: discard up to the newline
        self.pos = len(self.buf)
        while True:
            self._fill(1)
            if not self.buf:
                raise Truncated("stream ends inside a text argument", self.offset)
            nl = self.buf.find(b"\n")
            if nl >= 0:
                self.pos = nl + 1
                raise _LineTooLong(length + nl)
            length += len(self.buf)
            self.pos = len(self.buf)

    def skip(self, n: int) -> None:
        """Skip ``n`` bytes (``seek`` when possible). Raises :class:`Truncated` past the end."""
        if n < 0:
            raise PickleError("negative length", self.offset)
        avail = len(self.buf) - self.pos
        if n <= avail:
            self.pos += n
            return
        n -= avail
        self.consumed += len(self.buf)
        self.buf, self.pos = b"", 0
        if self.remaining is not None and n > self.remaining:
            self.consumed += self.remaining
            self._discard(self.remaining)
            self.remaining = 0
            raise Truncated(f"payload of {n + avail} bytes runs past the end of the stream", self.offset)
        if n > (1 << 62):  # no stream is this long; seek() would overflow
            raise Truncated(f"payload of {n + avail} bytes runs past the end of the stream", self.offset)
        if self.seekable:
            try:
                self.stream.seek(n, io.SEEK_CUR)
                if self.remaining is not None:
                    self.remaining -= n
                self.consumed += n
                return
            except (OSError, ValueError):
                self.seekable = False
        done = self._discard(n)
        self.consumed += done
        if self.remaining is not None:
            self.remaining -= done
        if done < n:
            self.remaining = 0
            raise Truncated(f"payload of {n + avail} bytes runs past the end of the stream", self.offset)

    def _discard(self, n: int) -> int:
        done = 0
        while done < n:
            data = self.stream.read(min(CHUNK, n - done))
            if not data:
                break
            done += len(data)
        return done

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end), consumed."""
        if len(self.buf) - self.pos < n:
            self._fill(n)
        end = min(len(self.buf), self.pos + n)
        out = self.buf[self.pos : end]
        self.pos = end
        return out


class _LineTooLong(Exception):
    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length


# ---------------------------------------------------------------------------------------------
# Symbolic values


class Global:
    """An imported object (``module.name``) as the unpickler's ``find_class`` would return it."""

    __slots__ = ("module", "name", "offset", "verdict")

    def __init__(self, module: str, name: str, offset: int, verdict: Verdict) -> None:
        self.module, self.name, self.offset, self.verdict = module, name, offset, verdict

    def __repr__(self) -> str:
        return f"Global({self.module}.{self.name})"


class Call:
    """What calling ``func`` with ``args`` would return (``kind``: REDUCE, NEWOBJ, OBJ, INST…)."""

    __slots__ = ("args", "func", "kind", "kwargs", "meta", "offset", "state")

    def __init__(self, func: Any, args: Any, kind: str, offset: int, kwargs: Any = None) -> None:
        self.func, self.args, self.kind, self.offset, self.kwargs = func, args, kind, offset, kwargs
        self.state: Any = None
        self.meta: Any = None  # an _Embedded record when the call is cloudpickle structure

    def __repr__(self) -> str:
        return f"Call({describe(self)})"


class Ref:
    """A persistent reference (``PERSID``/``BINPERSID``): resolved by the loader's ``persistent_load``."""

    __slots__ = ("offset", "pid")

    def __init__(self, pid: Any, offset: int) -> None:
        self.pid, self.offset = pid, offset


class Ext:
    """An ``EXT1/2/4`` code: resolved through the ``copyreg`` extension registry of the loader."""

    __slots__ = ("code", "offset")

    def __init__(self, code: int, offset: int) -> None:
        self.code, self.offset = code, offset


class Blob:
    """A large string/bytes/int that was skipped (``kind``, ``size`` in bytes)."""

    __slots__ = ("kind", "size")

    def __init__(self, kind: str, size: int) -> None:
        self.kind, self.size = kind, size


class Dynamic:
    """The result of a ``STACK_GLOBAL`` whose operands are not plain strings."""

    __slots__ = ("module", "name", "offset")

    def __init__(self, module: Any, name: Any, offset: int) -> None:
        self.module, self.name, self.offset = module, name, offset


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<?>"


UNKNOWN = _Unknown()


class PList:
    """A list being built (``EMPTY_LIST`` + ``APPEND(S)``); keeps the first items, counts all."""

    __slots__ = ("count", "items")
    kind = "list"

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.count = 0


class PDict:
    """A dict being built; ``items`` holds ``(key, value)`` pairs."""

    __slots__ = ("count", "items")
    kind = "dict"

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any]] = []
        self.count = 0

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.items:
            if k == key:
                return v
        return default

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.items)


class PSet:
    __slots__ = ("count", "items", "kind")

    def __init__(self, kind: str) -> None:
        self.items: list[Any] = []
        self.count = 0
        self.kind = kind


@dataclass
class Issue:
    """Something the scan found. ``rule`` is a finding rule (``pickle.unsafe-global``…)."""

    severity: Severity
    rule: str
    message: str
    evidence: str
    offset: int = -1


@dataclass
class _ImportRecord:
    verdict: Verdict
    module: str
    name: str
    offset: int
    count: int = 0
    calls: list[str] = field(default_factory=list)
    benign_calls: int = 0
    bad_calls: int = 0
    escaped: bool = False
    hidden: bool = False
    structural: int = 0  # uses in cloudpickle's by-value reconstruction shape


# ---------------------------------------------------------------------------------------------
# Describing and resolving values

_SENSITIVE = frozenset({"builtins.getattr"})
_GETATTR = frozenset({"builtins.getattr", "operator.attrgetter"})
_IMPORTERS = frozenset(
    {
        "builtins.__import__",
        "importlib.import_module",
        "importlib.__import__",
        "importlib._bootstrap._gcd_import",
        "importlib._bootstrap.__import__",
        "importlib._bootstrap._find_and_load",
        "importlib.util.find_spec",
        "importlib.reload",
        "pydoc.locate",
        "pkgutil.resolve_name",
        "sys.modules.get",
        "sys.modules.__getitem__",
    }
)
_RETURNS_EXISTING = _GETATTR | _IMPORTERS | frozenset({"operator.getitem", "operator.itemgetter"})


def describe(v: Any, depth: int = 0) -> str:
    """A short, bounded text form of a symbolic value (used as evidence).

    >>> describe(("a", 1, b"x"))
    "('a', 1, b'x')"
    """
    if depth > 3:
        return "…"
    t = type(v)
    if t is str:
        return repr(v if len(v) <= 60 else v[:57] + "...")
    if t is bytes or t is bytearray:
        return repr(bytes(v[:24])) + ("..." if len(v) > 24 else "")
    if t is Global:
        return f"{v.module}.{v.name}"
    if t is Call:
        args = v.args
        inner = (
            ", ".join(describe(a, depth + 1) for a in args[:4])
            if type(args) is tuple
            else "*" + describe(args, depth + 1)
        )
        if type(args) is tuple and len(args) > 4:
            inner += ", ..."
        if v.kwargs is not None:
            inner += (", " if inner else "") + "**" + describe(v.kwargs, depth + 1)
        return f"{describe(v.func, depth + 1)}({inner})"
    if t is tuple:
        inner = ", ".join(describe(a, depth + 1) for a in v[:4])
        return "(" + inner + (", ...)" if len(v) > 4 else ",)" if len(v) == 1 else ")")
    if t is PList or t is PSet:
        inner = ", ".join(describe(a, depth + 1) for a in v.items[:4])
        return "[" + inner + (", ...]" if v.count > 4 else "]")
    if t is PDict:
        inner = ", ".join(f"{describe(k, depth + 1)}: {describe(x, depth + 1)}" for k, x in v.items[:3])
        return "{" + inner + (", ...}" if v.count > 3 else "}")
    if t is Ref:
        return f"<persistent {describe(v.pid, depth + 1)}>"
    if t is Ext:
        return f"<extension code {v.code}>"
    if t is Blob:
        return f"<{v.kind} of {v.size} bytes>"
    if t is Dynamic:
        return f"<STACK_GLOBAL {describe(v.module, depth + 1)} {describe(v.name, depth + 1)}>"
    if v is UNKNOWN:
        return "<?>"
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _qual(g: Global) -> str:
    return g.verdict.qualified


def resolve(v: Any, depth: int = 0) -> tuple[str, str] | None:
    """What a value refers to as ``(module, qualname)`` when it can be known statically.

    ``Global`` → itself; ``getattr(X, 'a')`` → X + ``.a``; ``__import__('os')`` /
    ``importlib.import_module('os')`` → ``('os', '')``; ``attrgetter('a')(X)`` → X + ``.a``;
    ``functools.partial(f, …)`` → f; ``pkgutil.resolve_name('os:system')`` → ``('os', 'system')``.
    """
    if depth > 8:
        return None
    t = type(v)
    if t is Global:
        return v.verdict.module, v.verdict.name
    if t is not Call:
        return None
    f = v.func
    args = v.args if type(v.args) is tuple else ()
    fq = ".".join(p for p in resolve(f, depth + 1) or () if p) if type(f) is not Call else None
    if fq == "builtins.getattr" and len(args) >= 2 and type(args[1]) is str:
        base = resolve(args[0], depth + 1)
        if base is None:
            return None
        return base[0], f"{base[1]}.{args[1]}" if base[1] else args[1]
    if fq in _IMPORTERS and args and type(args[0]) is str:
        target = args[0]
        if fq == "pkgutil.resolve_name" and ":" in target:
            mod, _, attr = target.partition(":")
            return mod, attr
        if fq in ("pydoc.locate", "pkgutil.resolve_name") and "." in target:
            mod, _, attr = target.rpartition(".")
            return mod, attr
        return target, ""
    if fq == "functools.partial" and args:
        return resolve(args[0], depth + 1)
    if type(f) is Call:  # attrgetter('a.b')(obj), methodcaller('m')(obj), partial(...)(...)
        inner = f.func
        iq = ".".join(p for p in resolve(inner, depth + 1) or () if p) if type(inner) is Global else None
        fargs = f.args if type(f.args) is tuple else ()
        if iq == "operator.attrgetter" and fargs and type(fargs[0]) is str and args:
            base = resolve(args[0], depth + 1)
            if base is None:
                return None
            return base[0], f"{base[1]}.{fargs[0]}" if base[1] else fargs[0]
        if iq == "functools.partial" and fargs:
            return resolve(fargs[0], depth + 1)
    return None


def _resolved_text(r: tuple[str, str] | None) -> str:
    if r is None:
        return "<unresolved>"
    return f"{r[0]}.{r[1]}" if r[1] else f"<module {r[0]}>"


# ---------------------------------------------------------------------------------------------
# The VM


class PickleVM:
    """Simulate unpickling of a stream (see the module docstring).

    ``judge(module, name)`` decides about each import; ``max_ops``/``max_memo``/``max_stack``
    bound the work. Call :meth:`run_all` (several pickles, one after another) or :meth:`run_one`,
    then :meth:`finish` for the issues.

    >>> import io
    >>> from mlflow_plugin.scanner.allowlist import judge
    >>> data = bytes.fromhex("80048c0a636f6c6c656374696f6e73948c0b4f726465726564446963749493942952942e")
    >>> vm = PickleVM(Reader(io.BytesIO(data)), judge)
    >>> vm.run_all(); vm.finish()
    []
    """

    def __init__(
        self,
        reader: Reader,
        judge: Judge,
        *,
        max_ops: int = 50_000_000,
        max_memo: int = 10_000_000,
        max_stack: int = 1_000_000,
        joblib: bool = True,
        probe: bool = False,
        embedded_severity: Severity = Severity.MEDIUM,
    ) -> None:
        self.r = reader
        self.embedded_severity = embedded_severity
        self.embedded: list[_Embedded] = []  # functions/classes/code pickled by value
        self.code_objects: list[
            _Embedded
        ] = []  # every code object built (cloudpickle wraps each in a function)
        self.cp_live = False
        self.judge_fn = judge
        self.max_ops, self.max_memo, self.max_stack = max_ops, max_memo, max_stack
        self.joblib = joblib
        self.probe = probe  # searching data for hidden pickles: no limits issues, imports only
        self.ops = 0
        self.imports: dict[tuple[str, str], _ImportRecord] = {}
        self.issues: list[Issue] = []
        self._issue_keys: set[tuple[str, str]] = set()
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self.retained = 0
        self.pickles = 0  # pickles completed
        self.results: list[Any] = []  # the value each completed pickle returned (bounded)
        self.torch_storages: dict[str, tuple[str, int]] = {}  # key -> (storage type, numel)
        self.errors = 0
        self.first_error: PickleError | None = None
        self.sensitive_live = False
        self.joblib_arrays = 0
        self.nested = 0
        self.probe_budget = PROBE_BUDGET
        self._reset()
        self._handlers: list[Callable[[], bool | None] | None] = [None] * 256
        for code, fn in self._table().items():
            self._handlers[code] = fn

    # -- state ----------------------------------------------------------------------------
    def _reset(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        self.tolerant = False
        self.start = self.r.offset
        self.op_offset = self.start

    # -- issues ---------------------------------------------------------------------------
    def issue(
        self, severity: Severity, rule: str, message: str, evidence: str = "", offset: int = -1
    ) -> None:
        key = (rule, evidence or message)
        if key in self._issue_keys:
            return
        if len(self.issues) >= MAX_ISSUES:
            return
        self._issue_keys.add(key)
        self.issues.append(Issue(severity, rule, message, evidence, self.op_offset if offset < 0 else offset))

    def _err(self, msg: str) -> None:
        """A structural error: strict mode stops the pickle; tolerant mode records it and goes on."""
        err = PickleError(msg, self.op_offset)
        self.errors += 1
        if self.first_error is None:
            self.first_error = err
        if not self.tolerant:
            raise err

    # -- stack helpers --------------------------------------------------------------------
    def pop(self) -> Any:
        stack = self.stack
        fence = self.marks[-1] if self.marks else 0
        if len(stack) <= fence:
            self._err("stack underflow")
            return UNKNOWN
        return stack.pop()

    def top(self) -> Any:
        stack = self.stack
        fence = self.marks[-1] if self.marks else 0
        if len(stack) <= fence:
            self._err("stack underflow")
            return UNKNOWN
        return stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            self._err("MARK not found")
            items = self.stack[:]
            self.stack.clear()
            return items
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    def _retain(self, container: PList | PDict | PSet, items: list[Any]) -> None:
        n = len(items)
        container.count += n
        room = min(CONTAINER_CAP - len(container.items), RETAIN_BUDGET - self.retained)
        if room > 0:
            part = items if n <= room else items[:room]
            container.items.extend(part)
            self.retained += len(part)

    def _tuple(self, items: list[Any]) -> tuple[Any, ...]:
        if self.sensitive_live:
            self._escape_check(items)
        if len(items) > CONTAINER_CAP:
            items = items[:CONTAINER_CAP]
        return tuple(items)

    def _escape_check(self, items: Any) -> None:
        for it in items:
            if type(it) is Global and (_qual(it) in _SENSITIVE or _qual(it) in _STRUCTURAL_GLOBALS):
                rec = self.imports.get((it.module, it.name))
                if rec is not None:
                    rec.escaped = True

    # -- imports and calls ------------------------------------------------------------------
    def _global(self, module: str, name: str, opcode: str) -> Global:
        key = (module, name)
        v = self._verdicts.get(key)
        if v is None:
            v = self.judge_fn(module, name)
            self._verdicts[key] = v
        rec = self.imports.get(key)
        if rec is None:
            if len(self.imports) >= MAX_IMPORTS:
                raise LimitExceeded("imports", f"more than {MAX_IMPORTS} distinct globals")
            rec = self.imports[key] = _ImportRecord(v, module, name, self.op_offset)
            rec.hidden = self.probe
        rec.count += 1
        g = Global(module, name, self.op_offset, v)
        if v.qualified in _SENSITIVE:
            self.sensitive_live = True
        if v.qualified in _STRUCTURAL_GLOBALS:
            self.sensitive_live = self.cp_live = True
        return g

    def _call(self, func: Any, args: Any, kind: str, kwargs: Any = None) -> Any:
        tf = type(func)
        if tf is Global and kind == "REDUCE" and _is_latin1_bytes(func, args):
            # protocol 2 writes bytes as _codecs.encode(str, 'latin1'): fold it to the bytes it
            # makes, so structures built from bytes (cloudpickle code objects) read as in protocol 3+
            return args[0].encode("latin-1")
        c = Call(func, args, kind, self.op_offset, kwargs)
        if self.cp_live:
            if self._structural(c):
                return c
            if self.embedded:
                self._passed_functions(c)
        if self.sensitive_live:
            self._escape_check(args if type(args) is tuple else (args,))
            self._check_method_args(func, args, kwargs)
        if tf is Global:
            v = func.verdict
            if v.allowed:
                return c
            rec = self.imports.get((func.module, func.name))
            if v.qualified in _SENSITIVE:
                target = resolve(c)
                tv = self._judge_resolved(target)
                if (tv is not None and tv.allowed) or _benign_getattr(args):
                    if rec:
                        rec.benign_calls += 1
                    return c
                if rec:
                    rec.bad_calls += 1
                sev = tv.severity if tv is not None and tv.severity is not None else Severity.CRITICAL
                self.issue(
                    max(sev, Severity.HIGH),
                    "pickle.unsafe-call",
                    f"calls {describe(func)} to reach {_resolved_text(target)}"
                    + (f" ({tv.reason})" if tv is not None else ""),
                    describe(c),
                )
                return c
            if rec is not None and len(rec.calls) < 3:
                d = describe(c)
                if d not in rec.calls:
                    rec.calls.append(d)
            return c
        if func is UNKNOWN and self.errors:
            return c  # a consequence of an earlier structural error, already reported
        # a computed callable: what does it reach?
        target = resolve(func)
        tv = self._judge_resolved(target)
        if tv is not None and tv.allowed:
            return c
        if tf is Ref:
            msg = "calls an object returned by the loader's persistent_load"
        elif tf is Ext:
            msg = f"calls the object registered under extension code {func.code}"
        elif tf is Dynamic:
            msg = "calls an object imported through a STACK_GLOBAL built from computed values"
        elif target is not None:
            msg = f"calls {_resolved_text(target)} through {describe(func)}"
            if tv is not None:
                msg += f" ({tv.reason})"
        else:
            kind = type(func).__name__.lower()
            msg = f"calls a computed callable ({kind}); pickles written by Python never do"
        sev = tv.severity if tv is not None and tv.severity is not None else Severity.CRITICAL
        self.issue(max(sev, Severity.HIGH), "pickle.indirect-call", msg, describe(c))
        return c

    # -- cloudpickle's by-value functions and classes --------------------------------------
    def _use(self, g: Global) -> None:
        rec = self.imports.get((g.module, g.name))
        if rec is not None:
            rec.structural += 1

    def _structural(self, c: Call) -> bool:
        """Recognise cloudpickle's reconstruction of code pickled by value (functions, lambdas,
        classes defined in a notebook) as structure: record what the code is, call nothing. True
        when ``c`` has that shape (then it is not judged as a call)."""
        func, args = c.func, c.args
        tf = type(func)
        if tf is Call and func.meta is not None:
            m = func.meta
            if m.kind == "builtin:CodeType":
                code = _code_from_args(args)
                if code is None:
                    return False
                c.meta = self._new_code(code)
                return True
            if m.kind == "builtin:FunctionType":
                return self._new_function(c, args)
            if m.kind == "builtin:CellType" and type(args) is tuple and len(args) <= 1:
                c.meta = _Embedded("cell", value=args[0] if args else None)
                return True
            # an instance: cls.__new__, no __init__ (its methods are reported)
            return m.kind == "class" and c.kind in ("NEWOBJ", "NEWOBJ_EX")
        if tf is not Global:
            return False
        q = _qual(func)
        if q in _DESCRIPTORS:
            # staticmethod/classmethod/property around methods of a class pickled by value
            fns = args if type(args) is tuple else ()
            if (
                1 <= len(fns) <= 4
                and _is_embedded_function(fns[0])
                and all(a is None or type(a) is str or _is_embedded_function(a) for a in fns[1:])
            ):
                self._use(func)
                return True
            return False
        if q not in _STRUCTURAL_GLOBALS:
            return False
        helper = q.rpartition(".")[2]
        if type(args) is not tuple:
            return False
        ok = False
        if helper == "_builtin_type":
            if len(args) == 1 and args[0] in ("CodeType", "FunctionType", "CellType"):
                c.meta = _Embedded("builtin:" + args[0])
                ok = True
        elif helper == "CodeType":
            code = _code_from_args(args)
            if code is not None:
                c.meta = self._new_code(code)
                ok = True
        elif helper in ("_make_function", "FunctionType"):
            ok = self._new_function(c, args)
        elif helper == "_make_empty_cell":
            ok = not args
            c.meta = _Embedded("cell")
        elif helper == "_make_cell":
            ok = len(args) == 1
            c.meta = _Embedded("cell", value=args[0] if args else None)
        elif helper in ("subimport", "dynamic_subimport"):
            if args and type(args[0]) is str and is_identifier_path(args[0]) and len(args) <= 2:
                c.meta = _Embedded("module", name=args[0])
                self.embedded.append(c.meta)
                ok = True
        elif helper == "_make_skeleton_class":
            if len(args) == 6 and type(args[1]) is str and type(args[2]) is tuple:
                tc = args[0]
                if type(tc) is Global and _qual(tc) in _METACLASSES:
                    self._use(tc)
                c.meta = _Embedded("class", name=args[1], bases=args[2])
                self.embedded.append(c.meta)
                ok = True
        elif helper == "_make_skeleton_enum":
            if len(args) == 7 and type(args[1]) is str:
                c.meta = _Embedded("class", name=args[1], bases=args[0] if type(args[0]) is tuple else ())
                if type(args[2]) is str:
                    c.meta.qualname = args[2]
                if type(args[4]) is str:
                    c.meta.module = args[4]
                self.embedded.append(c.meta)
                ok = True
        elif helper in ("_function_setstate", "_class_setstate"):
            want = "function" if helper == "_function_setstate" else "class"
            if (
                len(args) == 2
                and type(args[0]) is Call
                and args[0].meta is not None
                and args[0].meta.kind == want
            ):
                args[0].meta.set_state(args[1])
                c.meta = args[0].meta
                ok = True
        if ok:
            self._use(func)
        return ok

    def _passed_functions(self, c: Call) -> None:
        """A function pickled by value handed to a call (other than cloudpickle's own structure):
        the callee may call it while the model loads (``_rebuild_from_type_v2(func, …)`` does)."""
        items = list(c.args) if type(c.args) is tuple else []
        if type(c.kwargs) is PDict:
            items += [v for _, v in c.kwargs.items]
        if type(c.func) is Global and _qual(c.func) in _STORES_CALLABLES:
            return
        for it in items[:64]:
            if _is_embedded_function(it):
                self.issue(
                    Severity.HIGH,
                    "pickle.embedded-code",
                    f"embedded function `{it.meta.full_name()}` is passed to {describe(c.func)} while "
                    "the model loads, which may call it then: its code would run at load",
                    f"{describe(c.func)}({it.meta.full_name()})",
                )

    def _new_code(self, code: _Embedded) -> _Embedded:
        """Record a code object; code objects among its constants (inner functions) are its own."""
        for const in code.consts:
            if type(const) is Call and const.meta is not None and const.meta.kind == "code":
                const.meta.used = True
        self.code_objects.append(code)
        return code

    def _new_function(self, c: Call, args: Any) -> bool:
        if type(args) is not tuple or not 2 <= len(args) <= 6:
            return False
        code = args[0]
        if type(code) is not Call or code.meta is None or code.meta.kind != "code":
            return False
        code.meta.used = True
        e = _Embedded("function", code=code.meta)
        e.bind(args[1])
        if len(args) > 4:
            e.closure = args[4]
        c.meta = e
        self.embedded.append(e)
        return True

    def _check_method_args(self, func: Any, args: Any, kwargs: Any) -> None:
        """A method fetched with getattr and handed to a call (``_rebuild_from_type_v2``,
        ``__generator_ctor``… call what they receive): judge what it resolves to."""
        items = list(args) if type(args) is tuple else [args]
        if type(kwargs) is PDict:
            items += [v for _, v in kwargs.items]
        for it in items:
            if type(it) is not Call or type(it.func) is not Global or _qual(it.func) not in _SENSITIVE:
                continue
            target = resolve(it)
            tv = self._judge_resolved(target)
            if tv is not None and tv.allowed:
                continue
            sev = tv.severity if tv is not None and tv.severity is not None else Severity.CRITICAL
            self.issue(
                max(sev, Severity.HIGH),
                "pickle.unsafe-call",
                f"passes {_resolved_text(target)} (from getattr) to {describe(func)}, which may call it"
                + (f" ({tv.reason})" if tv is not None else ""),
                describe(it),
            )

    def _judge_resolved(self, target: tuple[str, str] | None) -> Verdict | None:
        if target is None:
            return None
        mod, name = target
        if not name:  # a module object itself (the result of __import__)
            return self.judge_fn(mod, "__module__")
        key = (mod, name)
        v = self._verdicts.get(key)
        if v is None:
            v = self._verdicts[key] = self.judge_fn(mod, name)
        return v

    # -- running --------------------------------------------------------------------------
    def run_one(self, *, tolerant: bool | None = None) -> Any:
        """Run one pickle up to its ``STOP``; returns the value it builds.

        Raises :class:`PickleError`/:class:`Truncated` on malformed input (in tolerant mode only
        for what cannot be skipped: invalid opcodes, truncation) and :class:`LimitExceeded`.
        """
        self._reset()
        self.tolerant = (self.pickles == 0) if tolerant is None else tolerant
        r = self.r
        handlers = self._handlers
        stack = self.stack
        marks = self.marks
        max_depth = self.max_stack
        max_ops = self.max_ops
        ops = self.ops
        try:
            while True:
                buf = r.buf
                pos = r.pos
                if pos >= len(buf):
                    r._fill(1)
                    buf = r.buf
                    pos = r.pos
                    if not buf:
                        raise Truncated("stream ends before the pickle's STOP opcode", r.offset)
                op = buf[pos]
                r.pos = pos + 1
                self.op_offset = r.consumed + pos
                h = handlers[op]
                if h is None:
                    raise PickleError(f"invalid opcode 0x{op:02x}", self.op_offset)
                ops += 1
                if ops > max_ops:
                    raise LimitExceeded("ops", f"more than {max_ops} opcodes")
                if h():
                    break
                if len(stack) > max_depth or len(marks) > max_depth:
                    raise LimitExceeded("stack", f"stack deeper than {max_depth} items or marks")
        finally:
            self.ops = ops
        self.pickles += 1
        result = self.stack.pop() if self.stack else UNKNOWN
        if len(self.results) < 16:
            self.results.append(result)
        if self.sensitive_live and type(result) is Global:
            self._escape_check((result,))
        return result

    def run_all(self) -> None:
        """Run every pickle of the stream; stop quietly at trailing non-pickle data."""
        while True:
            b = self.r.peek()
            if b < 0:
                return
            if self.pickles > 0 and b not in OPCODES:
                return
            self.run_one()

    def run_nested(self) -> Any:
        """Run a pickle embedded in the current one (joblib object arrays), then resume."""
        saved = (self.stack, self.marks, self.memo, self.proto, self.tolerant, self.start)
        try:
            self.stack, self.marks, self.memo = [], [], {}
            self.proto, self.start = 0, self.r.offset
            return self._run_nested_body()
        finally:
            (self.stack, self.marks, self.memo, self.proto, self.tolerant, self.start) = saved

    def _run_nested_body(self) -> Any:
        r = self.r
        handlers = self._handlers
        while True:
            b = r.peek()
            if b < 0:
                raise Truncated("stream ends inside a nested pickle", r.offset)
            r.pos += 1
            self.op_offset = r.offset - 1
            h = handlers[b]
            if h is None:
                raise PickleError(f"invalid opcode 0x{b:02x} in a nested pickle", self.op_offset)
            self.ops += 1
            if self.ops > self.max_ops:
                raise LimitExceeded("ops", f"more than {self.max_ops} opcodes")
            if h():
                return self.stack.pop() if self.stack else UNKNOWN
            if len(self.stack) + len(self.marks) > self.max_stack:
                raise LimitExceeded("stack", f"stack deeper than {self.max_stack} items/marks")

    # -- results ----------------------------------------------------------------------------
    def finish(self) -> list[Issue]:
        """All issues, with one per non-allowlisted import (sorted by offset)."""
        out = list(self.issues) + _embedded_issues(self)
        shown = 0
        bad = [rec for rec in self.imports.values() if not rec.verdict.allowed]
        for rec in bad:
            v = rec.verdict
            if shown >= MAX_IMPORT_ISSUES:
                worst = max(r.verdict.severity or Severity.HIGH for r in bad)
                out.append(
                    Issue(
                        worst,
                        "pickle.unknown-global",
                        f"{len(bad) - shown} more non-allowlisted globals (not listed one by one)",
                        "...",
                        rec.offset,
                    )
                )
                break
            shown += 1
            if v.qualified in _SENSITIVE and rec.benign_calls and not rec.bad_calls and not rec.escaped:
                continue  # getattr(<allowlisted class>, '<allowlisted method>') only (zoneinfo, …)
            if rec.structural and not rec.bad_calls and not rec.escaped and not rec.calls:
                continue  # cloudpickle's reconstruction helpers, used only in their own shape

            sev = v.severity or Severity.HIGH
            alias = (
                ""
                if (rec.module, rec.name) == (v.module, v.name)
                else f" (imported as {rec.module}.{rec.name})"
            )
            called = f"; called as {rec.calls[0]}" if rec.calls else ""
            msg = f"imports {v.qualified}{alias}: {v.reason}{called}"
            rule = "pickle.unsafe-global" if v.rule == "unsafe-global" else "pickle.unknown-global"
            if rec.hidden:
                msg = "in data after the last pickle, a pickle " + msg
            out.append(Issue(sev, rule, msg, v.qualified, rec.offset))
        out.sort(key=lambda i: (i.offset, -int(i.severity)))
        return out

    # -- opcode table ---------------------------------------------------------------------
    def _table(self) -> dict[int, Callable[[], bool | None]]:
        r = self.r

        def memo_put(idx: int) -> None:
            if idx < 0:
                self._err("negative memo index")
                return
            stack = self.stack
            fence = self.marks[-1] if self.marks else 0
            if len(stack) <= fence:
                self._err("memo PUT on an empty stack")
                return
            memo = self.memo
            if idx not in memo and len(memo) >= self.max_memo:
                raise LimitExceeded("memo", f"more than {self.max_memo} memo slots")
            memo[idx] = stack[-1]

        def memo_get(idx: int) -> None:
            try:
                self.stack.append(self.memo[idx])
            except KeyError:
                self._err(f"memo slot {idx} was never set")
                self.stack.append(UNKNOWN)

        def text_int(line: bytes) -> int:
            try:
                return int(line.strip() or b"x")
            except ValueError:
                self._err("bad integer argument")
                return -1

        def line() -> bytes:
            try:
                return r.readline()
            except _LineTooLong as e:
                raise PickleError(f"text argument of {e.length} bytes", self.op_offset) from None

        def long_line(kind: str) -> Any:
            """A text argument that may be large (strings): keep small ones, count big ones."""
            try:
                return r.readline(KEEP_STR)
            except _LineTooLong as e:
                return Blob(kind, e.length)

        # -- structure
        def MARK() -> None:
            self.marks.append(len(self.stack))

        def STOP() -> bool:
            return True

        def POP() -> None:
            stack = self.stack
            fence = self.marks[-1] if self.marks else 0
            if len(stack) > fence:
                stack.pop()
            elif self.marks:
                self.marks.pop()
            else:
                self._err("POP on an empty stack")

        def POP_MARK() -> None:
            self.pop_mark()

        def DUP() -> None:
            self.stack.append(self.top())

        def PROTO() -> None:
            p = r.take(1)
            self.proto = r.buf[p]
            if self.proto > 5:
                self._err(f"unsupported pickle protocol {self.proto}")

        def FRAME() -> None:
            p = r.take(8)
            n = _U8(r.buf, p)[0]
            if r.remaining is not None and n > r.remaining + len(r.buf) - r.pos:
                self._err(f"FRAME of {n} bytes runs past the end of the stream")

        # -- scalars
        def NONE() -> None:
            self.stack.append(None)

        def NEWTRUE() -> None:
            self.stack.append(True)

        def NEWFALSE() -> None:
            self.stack.append(False)

        def INT() -> None:
            s = line()
            if s in (b"00", b"01"):
                self.stack.append(s == b"01")
            else:
                self.stack.append(text_int(s))

        def BININT() -> None:
            p = r.take(4)
            self.stack.append(_I4(r.buf, p)[0])

        def BININT1() -> None:
            p = r.take(1)
            self.stack.append(r.buf[p])

        def BININT2() -> None:
            p = r.take(2)
            self.stack.append(_U2(r.buf, p)[0])

        def LONG() -> None:
            s = long_line("long")
            if type(s) is Blob:
                self.stack.append(s)
                return
            s = s.rstrip(b"L")
            try:
                self.stack.append(int(s) if len(s) < 4000 else Blob("long", len(s)))
            except ValueError:
                self._err("bad LONG argument")
                self.stack.append(UNKNOWN)

        def LONG1() -> None:
            p = r.take(1)
            n = r.buf[p]
            p = r.take(n)
            self.stack.append(int.from_bytes(r.buf[p : p + n], "little", signed=True))

        def LONG4() -> None:
            p = r.take(4)
            n = _I4(r.buf, p)[0]
            if n < 0:
                self._err("negative LONG4 length")
                self.stack.append(UNKNOWN)
                return
            if n > 1024:
                r.skip(n)
                self.stack.append(Blob("long", n))
                return
            p = r.take(n)
            self.stack.append(int.from_bytes(r.buf[p : p + n], "little", signed=True))

        def FLOAT() -> None:
            s = line()
            try:
                self.stack.append(float(s))
            except ValueError:
                self._err("bad FLOAT argument")
                self.stack.append(UNKNOWN)

        def BINFLOAT() -> None:
            p = r.take(8)
            self.stack.append(_F8(r.buf, p)[0])

        # -- strings and bytes
        def sized(n: int, kind: str) -> Any:
            if n > KEEP_STR:
                r.skip(n)
                return Blob(kind, n)
            p = r.take(n)
            data = r.buf[p : p + n]
            if kind == "str":
                try:
                    return data.decode("utf-8", "surrogatepass")
                except UnicodeDecodeError:
                    self._err("string is not valid UTF-8")
                    return UNKNOWN
            if kind == "bytestring":
                return data.decode("latin-1")
            return data

        def STRING() -> None:
            s = long_line("bytestring")
            if type(s) is Blob:
                self.stack.append(s)
                return
            s = s.rstrip()
            if len(s) >= 2 and s[:1] == s[-1:] and s[:1] in (b"'", b'"'):
                try:
                    self.stack.append(codecs.escape_decode(s[1:-1])[0].decode("latin-1"))
                    return
                except (ValueError, UnicodeDecodeError):
                    pass
            self._err("STRING argument is not a quoted string")
            self.stack.append(UNKNOWN)

        def BINSTRING() -> None:
            p = r.take(4)
            n = _I4(r.buf, p)[0]
            if n < 0:
                self._err("negative BINSTRING length")
                self.stack.append(UNKNOWN)
                return
            self.stack.append(sized(n, "bytestring"))

        def SHORT_BINSTRING() -> None:
            p = r.take(1)
            self.stack.append(sized(r.buf[p], "bytestring"))

        def UNICODE() -> None:
            s = long_line("str")
            if type(s) is Blob:
                self.stack.append(s)
                return
            try:
                self.stack.append(s.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                self._err("bad UNICODE argument")
                self.stack.append(UNKNOWN)

        def BINUNICODE() -> None:
            p = r.take(4)
            self.stack.append(sized(_U4(r.buf, p)[0], "str"))

        def SHORT_BINUNICODE() -> None:
            p = r.take(1)
            self.stack.append(sized(r.buf[p], "str"))

        def BINUNICODE8() -> None:
            p = r.take(8)
            self.stack.append(sized(_U8(r.buf, p)[0], "str"))

        def BINBYTES() -> None:
            p = r.take(4)
            self.stack.append(sized(_U4(r.buf, p)[0], "bytes"))

        def SHORT_BINBYTES() -> None:
            p = r.take(1)
            self.stack.append(sized(r.buf[p], "bytes"))

        def BINBYTES8() -> None:
            p = r.take(8)
            self.stack.append(sized(_U8(r.buf, p)[0], "bytes"))

        def BYTEARRAY8() -> None:
            p = r.take(8)
            self.stack.append(sized(_U8(r.buf, p)[0], "bytearray"))

        def NEXT_BUFFER() -> None:
            self.stack.append(Blob("out-of-band buffer", -1))

        def READONLY_BUFFER() -> None:
            self.top()

        # -- containers
        def EMPTY_LIST() -> None:
            self.stack.append(PList())

        def LIST() -> None:
            lst = PList()
            items = self.pop_mark()
            if self.sensitive_live:
                self._escape_check(items)
            self._retain(lst, items)
            self.stack.append(lst)

        def _mutate_target(target: Any, what: str) -> None:
            if type(target) is Global or (type(target) is Call and _returns_existing(target)):
                self.issue(
                    Severity.CRITICAL,
                    "pickle.mutate-global",
                    f"{what} modifies an imported object (monkey-patching the loading process)",
                    describe(target),
                )

        def APPEND() -> None:
            v = self.pop()
            lst = self.top()
            if type(lst) is PList:
                if self.sensitive_live:
                    self._escape_check((v,))
                self._retain(lst, [v])
            else:
                if self.sensitive_live:
                    self._escape_check((v,))
                _mutate_target(lst, "APPEND")

        def APPENDS() -> None:
            items = self.pop_mark()
            lst = self.top()
            if type(lst) is PList:
                if self.sensitive_live:
                    self._escape_check(items)
                self._retain(lst, items)
            else:
                if self.sensitive_live:
                    self._escape_check(items)
                _mutate_target(lst, "APPENDS")

        def EMPTY_DICT() -> None:
            self.stack.append(PDict())

        def DICT() -> None:
            items = self.pop_mark()
            d = PDict()
            if self.sensitive_live:
                self._escape_check(items)
            if len(items) % 2:
                self._err("DICT with an odd number of items")
            self._retain(d, list(zip(items[::2], items[1::2], strict=False)))
            self.stack.append(d)

        def SETITEM() -> None:
            v = self.pop()
            k = self.pop()
            d = self.top()
            if type(d) is PDict:
                if self.sensitive_live:
                    self._escape_check((k, v))
                self._retain(d, [(k, v)])
            else:
                if self.sensitive_live:
                    self._escape_check((k, v))
                _mutate_target(d, "SETITEM")

        def SETITEMS() -> None:
            items = self.pop_mark()
            d = self.top()
            if len(items) % 2:
                self._err("SETITEMS with an odd number of items")
            if type(d) is PDict:
                if self.sensitive_live:
                    self._escape_check(items)
                self._retain(d, list(zip(items[::2], items[1::2], strict=False)))
            else:
                if self.sensitive_live:
                    self._escape_check(items)
                _mutate_target(d, "SETITEMS")

        def EMPTY_TUPLE() -> None:
            self.stack.append(())

        def TUPLE() -> None:
            self.stack.append(self._tuple(self.pop_mark()))

        def TUPLE1() -> None:
            self.stack.append(self._tuple([self.pop()]))

        def TUPLE2() -> None:
            b = self.pop()
            a = self.pop()
            self.stack.append(self._tuple([a, b]))

        def TUPLE3() -> None:
            c = self.pop()
            b = self.pop()
            a = self.pop()
            self.stack.append(self._tuple([a, b, c]))

        def EMPTY_SET() -> None:
            self.stack.append(PSet("set"))

        def ADDITEMS() -> None:
            items = self.pop_mark()
            s = self.top()
            if type(s) is PSet:
                if self.sensitive_live:
                    self._escape_check(items)
                self._retain(s, items)
            else:
                if self.sensitive_live:
                    self._escape_check(items)
                _mutate_target(s, "ADDITEMS")

        def FROZENSET() -> None:
            s = PSet("frozenset")
            items = self.pop_mark()
            if self.sensitive_live:
                self._escape_check(items)
            self._retain(s, items)
            self.stack.append(s)

        # -- memo
        def PUT() -> None:
            memo_put(text_int(line()))

        def BINPUT() -> None:
            p = r.take(1)
            memo_put(r.buf[p])

        def LONG_BINPUT() -> None:
            p = r.take(4)
            memo_put(_U4(r.buf, p)[0])

        def MEMOIZE() -> None:
            memo_put(len(self.memo))

        def GET() -> None:
            memo_get(text_int(line()))

        def BINGET() -> None:
            p = r.take(1)
            memo_get(r.buf[p])

        def LONG_BINGET() -> None:
            p = r.take(4)
            memo_get(_U4(r.buf, p)[0])

        # -- imports
        def decode_name(raw: bytes) -> str | None:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                self._err("module or name is not valid UTF-8")  # the unpickler fails: no import
                return None

        def GLOBAL() -> None:
            module = decode_name(line())
            name = decode_name(line())
            if module is None or name is None:
                self.stack.append(UNKNOWN)
                return
            self.stack.append(self._global(module, name, "GLOBAL"))

        def STACK_GLOBAL() -> None:
            name = self.pop()
            module = self.pop()
            if type(module) is str and type(name) is str:
                self.stack.append(self._global(module, name, "STACK_GLOBAL"))
                return
            if (module is UNKNOWN or name is UNKNOWN) and self.errors:
                self.stack.append(UNKNOWN)
                return
            d = Dynamic(module, name, self.op_offset)
            self.issue(
                Severity.CRITICAL,
                "pickle.dynamic-global",
                "STACK_GLOBAL imports a name built from computed values, not plain strings "
                "(a scanner-evasion technique)",
                f"{describe(module)} . {describe(name)}",
            )
            self.stack.append(d)

        def INST() -> None:
            module = decode_name(line())
            name = decode_name(line())
            if module is None or name is None:
                self.pop_mark()
                self.stack.append(UNKNOWN)
                return
            g = self._global(module, name, "INST")
            args = self._tuple(self.pop_mark())
            self.stack.append(self._call(g, args, "INST"))

        def OBJ() -> None:
            items = self.pop_mark()
            if not items:
                self._err("OBJ without a class")
                self.stack.append(UNKNOWN)
                return
            self.stack.append(self._call(items[0], self._tuple(items[1:]), "OBJ"))

        def REDUCE() -> None:
            args = self.pop()
            func = self.pop()
            self.stack.append(self._call(func, args, "REDUCE"))

        def NEWOBJ() -> None:
            args = self.pop()
            cls = self.pop()
            self.stack.append(self._call(cls, args, "NEWOBJ"))

        def NEWOBJ_EX() -> None:
            kwargs = self.pop()
            args = self.pop()
            cls = self.pop()
            self.stack.append(self._call(cls, args, "NEWOBJ_EX", kwargs))

        def BUILD() -> None:
            state = self.pop()
            target = self.top()
            if self.sensitive_live:
                self._escape_check((state,))
            tt = type(target)
            if tt is Call:
                target.state = state
                if _returns_existing(target):
                    self.issue(
                        Severity.CRITICAL,
                        "pickle.mutate-global",
                        "BUILD sets attributes on an existing object reached through "
                        f"{describe(target.func)} (monkey-patching)",
                        describe(target),
                    )
                elif (
                    self.joblib
                    and type(target.func) is Global
                    and _qual(target.func) == "joblib.numpy_pickle.NumpyArrayWrapper"
                ):
                    self._joblib_array(target)
            elif tt is Global or tt is Dynamic or tt is Ext:
                self.issue(
                    Severity.CRITICAL,
                    "pickle.mutate-global",
                    "BUILD sets attributes on an imported object (monkey-patching the loading process)",
                    f"{describe(target)} <- {describe(state)}",
                )

        # -- persistent ids, extensions
        def PERSID() -> None:
            pid = line().decode("latin-1", "replace")
            self._persistent(pid)

        def BINPERSID() -> None:
            self._persistent(self.pop())

        def ext(n: int, fmt: Callable[..., tuple[int]]) -> None:
            p = r.take(n)
            code = fmt(r.buf, p)[0]
            if code <= 0:
                self._err("EXT code must be positive")
            self.issue(
                Severity.HIGH,
                "pickle.ext-code",
                f"uses copyreg extension code {code}: it resolves to whatever the loading process "
                "registered, which no default Python registers",
                f"EXT code {code}",
            )
            self.stack.append(Ext(code, self.op_offset))

        def EXT1() -> None:
            ext(1, _U1)

        def EXT2() -> None:
            ext(2, _U2)

        def EXT4() -> None:
            ext(4, _I4)

        names = {
            b"(": MARK,
            b".": STOP,
            b"0": POP,
            b"1": POP_MARK,
            b"2": DUP,
            b"F": FLOAT,
            b"I": INT,
            b"J": BININT,
            b"K": BININT1,
            b"L": LONG,
            b"M": BININT2,
            b"N": NONE,
            b"P": PERSID,
            b"Q": BINPERSID,
            b"R": REDUCE,
            b"S": STRING,
            b"T": BINSTRING,
            b"U": SHORT_BINSTRING,
            b"V": UNICODE,
            b"X": BINUNICODE,
            b"a": APPEND,
            b"b": BUILD,
            b"c": GLOBAL,
            b"d": DICT,
            b"}": EMPTY_DICT,
            b"e": APPENDS,
            b"g": GET,
            b"h": BINGET,
            b"i": INST,
            b"j": LONG_BINGET,
            b"l": LIST,
            b"]": EMPTY_LIST,
            b"o": OBJ,
            b"p": PUT,
            b"q": BINPUT,
            b"r": LONG_BINPUT,
            b"s": SETITEM,
            b"t": TUPLE,
            b")": EMPTY_TUPLE,
            b"u": SETITEMS,
            b"G": BINFLOAT,
            b"\x80": PROTO,
            b"\x81": NEWOBJ,
            b"\x82": EXT1,
            b"\x83": EXT2,
            b"\x84": EXT4,
            b"\x85": TUPLE1,
            b"\x86": TUPLE2,
            b"\x87": TUPLE3,
            b"\x88": NEWTRUE,
            b"\x89": NEWFALSE,
            b"\x8a": LONG1,
            b"\x8b": LONG4,
            b"B": BINBYTES,
            b"C": SHORT_BINBYTES,
            b"\x8c": SHORT_BINUNICODE,
            b"\x8d": BINUNICODE8,
            b"\x8e": BINBYTES8,
            b"\x8f": EMPTY_SET,
            b"\x90": ADDITEMS,
            b"\x91": FROZENSET,
            b"\x92": NEWOBJ_EX,
            b"\x93": STACK_GLOBAL,
            b"\x94": MEMOIZE,
            b"\x95": FRAME,
            b"\x96": BYTEARRAY8,
            b"\x97": NEXT_BUFFER,
            b"\x98": READONLY_BUFFER,
        }
        return {k[0]: v for k, v in names.items()}

    # -- persistent references ---------------------------------------------------------------
    def _persistent(self, pid: Any) -> None:
        ref = Ref(pid, self.op_offset)
        if type(pid) is tuple and pid and pid[0] == "storage" and len(pid) >= 5:
            st = pid[1]
            if type(st) is Global and (st.name.endswith("Storage") or st.name == "UntypedStorage"):
                key = pid[2]
                if type(key) is str and len(self.torch_storages) < 1_000_000:
                    numel = pid[4] if type(pid[4]) is int else -1
                    self.torch_storages[key] = (st.name, numel)
                self.stack.append(ref)
                return
        if type(pid) is tuple and len(pid) >= 2 and pid[0] == "module" and type(pid[1]) is Global:
            # legacy torch: ('module', cls, source_file, source); persistent_load returns cls (the
            # source is only compared, never run)
            self.stack.append(pid[1])
            return
        self.issue(
            Severity.LOW,
            "pickle.persistent-id",
            "uses a persistent id: the loader's persistent_load decides what it becomes",
            describe(pid),
        )
        self.stack.append(ref)

    # -- joblib arrays ---------------------------------------------------------------------
    def _joblib_array(self, wrapper: Call) -> None:
        """Skip the raw array bytes joblib writes right after a NumpyArrayWrapper's BUILD."""
        state = wrapper.state
        if type(state) is not PDict:
            self.issue(
                Severity.MEDIUM,
                "pickle.malformed",
                "joblib array wrapper without its metadata",
                describe(state),
            )
            return
        shape = state.get("shape")
        dtype = state.get("dtype")
        size = _dtype_size(dtype)
        self.joblib_arrays += 1
        if size == "object":
            if self.nested >= MAX_NESTED:
                raise PickleError(f"joblib object arrays nested more than {MAX_NESTED} deep", self.op_offset)
            self.nested += 1
            try:
                self.run_nested()
            finally:
                self.nested -= 1
            return
        count = 1
        if type(shape) is not tuple or not all(type(x) is int and x >= 0 for x in shape) or size is None:
            raise PickleError(
                "joblib array metadata not understood (shape/dtype); the rest of the file "
                f"cannot be located: {describe(shape)} {describe(dtype)}",
                self.op_offset,
            )
        for x in shape:
            count *= x
        align = state.get("numpy_array_alignment_bytes")
        nbytes = count * size
        if state.has("numpy_array_alignment_bytes") and align is not None:
            p = self.r.take(1)
            pad = self.r.buf[p]
            if pad > 64:
                raise PickleError(f"joblib alignment padding of {pad} bytes", self.r.offset)
            self.r.skip(pad)
        elif nbytes and self.r.peek() in OPCODES:
            # no padding (joblib <= 1.1): with plain pickle.load these bytes would be opcodes — probe
            self._probe_here()
        self.r.skip(nbytes)

    def _probe_here(self) -> None:
        """Parse the next bytes as a pickle on the side (plain ``pickle.load`` would)."""
        r = self.r
        if len(r.buf) - r.pos < (1 << 16):
            r._fill(1 << 16)
        window = r.buf[r.pos : r.pos + (1 << 16)]
        if self.probe_budget <= 0:
            return
        found, used = _probe_window(window, 0, self.judge_fn, r.offset)
        self.probe_budget -= used
        for iss in found:
            self.issue(iss.severity, iss.rule, iss.message, iss.evidence, iss.offset)


# ---------------------------------------------------------------------------------------------
# Code pickled by value (cloudpickle): decoded statically, never executed

_CP_HELPERS = [
    "_make_function",
    "_make_skeleton_class",
    "_make_skeleton_enum",
    "_class_setstate",
    "_function_setstate",
    "_make_cell",
    "_make_empty_cell",
    "_builtin_type",
    "subimport",
    "dynamic_subimport",
]
_STRUCTURAL_GLOBALS = frozenset(
    {
        f"{m}.{h}"
        for m in ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast", "cloudpickle")
        for h in _CP_HELPERS
    }
    | {"types.CodeType", "types.FunctionType"}
)
# calls that only store a callable they receive (cloudpickle writes defaultdict(factory) this way)
_STORES_CALLABLES = frozenset(
    {"collections.defaultdict", "copyreg._reconstructor", "copyreg.__newobj__", "numpy.vectorize"}
)
_DESCRIPTORS = frozenset({"builtins.staticmethod", "builtins.classmethod", "builtins.property"})
_METACLASSES = frozenset({"builtins.type", "abc.ABCMeta", "enum.EnumMeta", "enum.EnumType"})

# what makes embedded code dangerous: modules it uses, attribute chains, builtins it names
_DANGER_MODULES = frozenset(
    [
        "antigravity",
        "subprocess",
        "socket",
        "ctypes",
        "cffi",
        "pickle",
        "_pickle",
        "marshal",
        "dill",
        "cloudpickle",
        "importlib",
        "runpy",
        "pty",
        "shutil",
        "urllib",
        "urllib3",
        "requests",
        "httpx",
        "http",
        "aiohttp",
        "ftplib",
        "smtplib",
        "telnetlib",
        "paramiko",
        "webbrowser",
        "code",
        "codeop",
        "multiprocessing",
        "shelve",
    ]
)
_DANGER_OS = re.compile(
    r"^(?:system|popen|exec\w*|spawn\w*|fork\w*|posix_spawn\w*|kill\w*|remove\w*|unlink|rmdir|"
    r"removedirs|putenv|setuid|chmod|chown|dup2)$"
)
_DANGER_NAMES = frozenset(
    [
        "globals",
        "vars",
        "locals",
        "system",
        "popen",
        "__bases__",
        "__base__",
        "__mro__",
        "_getframe",
        "f_back",
        "settrace",
        "setprofile",
        "exec",
        "eval",
        "compile",
        "__import__",
        "execfile",
        "breakpoint",
        "__builtins__",
        "__subclasses__",
        "__globals__",
        "__code__",
        "f_globals",
        "f_locals",
        "__loader__",
        "import_module",
        "urlopen",
        "urlretrieve",
        "Popen",
        "check_output",
        "check_call",
        "getoutput",
        "getstatusoutput",
        "dlopen",
        "CDLL",
        "PyDLL",
    ]
)
_LOAD_TIME_METHODS = frozenset(
    [
        "__setstate__",
        "__new__",
        "__init_subclass__",
        "__set_name__",
        "__del__",
        "__getattr__",
        "__getattribute__",
    ]
)
_PREDICT_METHODS = frozenset(
    ["predict", "predict_proba", "predict_stream", "forward", "__call__", "transform"]
)
_MAX_NESTED_CODE = 64


class _Embedded:
    """A code object, function, class, cell or module reference rebuilt by cloudpickle."""

    def __init__(self, kind: str, **kw: Any) -> None:
        self.kind = kind
        self.name: str = kw.get("name", "")
        self.qualname: str = ""
        self.module: str = ""
        self.value: Any = kw.get("value")
        self.bases: Any = kw.get("bases", ())
        self.code: _Embedded | None = kw.get("code")
        self.closure: Any = None
        self.bindings: dict[str, Any] = {}  # global/closure name -> pickled value
        self.members: dict[str, Any] = {}  # class attributes
        # code objects
        self.names: tuple[str, ...] = ()
        self.consts: tuple[Any, ...] = ()
        self.varnames: tuple[str, ...] = ()
        self.freevars: tuple[str, ...] = ()
        self.cellvars: tuple[str, ...] = ()
        self.filename = ""
        self.bytecode: bytes | None = None
        self.layout = 0  # number of CodeType arguments (18: Python 3.11+, 16: 3.8–3.10)
        self.submodules: list[Any] = []  # modules cloudpickle imports so attribute chains resolve
        self.used = False  # a code object that became a function (or a constant of another code)

    def bind(self, globals_: Any) -> None:
        if type(globals_) is PDict:
            for k, v in globals_.items:
                if type(k) is str:
                    self.bindings[k] = v
                    if k == "__name__" and type(v) is str and not self.module:
                        self.module = v

    def set_state(self, state: Any) -> None:
        parts = state if type(state) is tuple else (state,)
        for part in parts:
            if type(part) is not PDict:
                continue
            for k, v in part.items:
                if type(k) is not str:
                    continue
                if self.kind == "class":
                    self.members[k] = v
                    if k == "__module__" and type(v) is str:
                        self.module = v
                    if k == "__qualname__" and type(v) is str:
                        self.qualname = v
                elif k == "__globals__":
                    self.bind(v)
                elif k == "__closure__":
                    self.closure = v
                elif k == "_cloudpickle_submodules" and type(v) is PList:
                    self.submodules = list(v.items)
                elif k == "__module__" and type(v) is str:
                    self.module = v
                elif k == "__qualname__" and type(v) is str:
                    self.qualname = v
                elif k == "__name__" and type(v) is str:
                    self.name = v

    def full_name(self) -> str:
        q = self.qualname or self.name
        if not q and self.code is not None:
            q = self.code.qualname or self.code.name
        return f"{self.module or '?'}.{q or '?'}"


def _is_latin1_bytes(func: Global, args: Any) -> bool:
    """``_codecs.encode(<str>, 'latin1')`` with a string that encodes (how protocol 2 stores bytes)."""
    if func.module not in ("_codecs", "codecs") or func.name != "encode" or not func.verdict.allowed:
        return False
    if type(args) is not tuple or len(args) != 2 or type(args[0]) is not str:
        return False
    if args[1] not in ("latin1", "latin-1", "iso-8859-1"):
        return False
    return len(args[0]) <= 64 << 20 and max(args[0], default="\0") <= "\xff"


def _code_from_args(args: Any) -> _Embedded | None:
    """Read a code object's fields from the arguments of ``CodeType(...)`` (any Python 3 layout)."""
    if type(args) is not tuple or len(args) < 14:
        return None
    i = next((k for k, a in enumerate(args[:8]) if type(a) is bytes or type(a) is Blob), -1)
    if i < 4 or not all(type(a) is int for a in args[:i]):
        return None
    consts, names, varnames = args[i + 1], args[i + 2], args[i + 3]
    if type(consts) is not tuple or type(names) is not tuple or type(varnames) is not tuple:
        return None
    e = _Embedded("code")
    e.layout = len(args)
    e.bytecode = args[i] if type(args[i]) is bytes else None
    e.consts = consts
    e.names = tuple(n for n in names if type(n) is str)
    e.varnames = tuple(n for n in varnames if type(n) is str)
    e.filename = args[i + 4] if type(args[i + 4]) is str else ""
    e.name = args[i + 5] if type(args[i + 5]) is str else ""
    has_qualname = type(args[i + 6]) is str
    if has_qualname:
        e.qualname = args[i + 6]
    tail = [a for a in args[-2:]]
    if len(tail) == 2 and all(type(t) is tuple for t in tail):
        e.freevars = tuple(n for n in tail[0] if type(n) is str)
        e.cellvars = tuple(n for n in tail[1] if type(n) is str)
    return e


def _running_layout() -> int:
    return 18 if sys.version_info >= (3, 11) else 16


def _walk_bytecode(code: _Embedded) -> list[tuple[str, ...]] | None:
    """Attribute chains (``('np', 'mean')``) and imports (``('import', 'os')``) of ``code``'s bytecode,
    read with the opcode tables of the running Python. ``None`` when the code was not written by a
    Python with the same layout, or the walk meets an opcode or index that does not fit."""
    bc = code.bytecode
    if bc is None or code.layout != _running_layout() or sys.version_info < (3, 11) or len(bc) % 2:
        return None
    opname = dis.opname
    names = code.names
    localsplus = code.varnames + tuple(c for c in code.cellvars if c not in code.varnames) + code.freevars
    new_attr = sys.version_info >= (3, 12)
    out: list[tuple[str, ...]] = []
    chain: list[str] | None = None
    imported: dict[str, str] = {}  # local name -> module it was imported as (import os / from a import b)
    pending = base = ""  # the module an IMPORT_NAME/IMPORT_FROM just pushed, until it is stored
    from_import = False
    ext = 0
    try:
        for i in range(0, len(bc), 2):
            op, arg = bc[i], bc[i + 1] | ext
            name = opname[op]
            if name == "EXTENDED_ARG":
                ext = arg << 8
                continue
            ext = 0
            if name.startswith("<"):
                return None
            if name == "CACHE":
                continue
            if name == "LOAD_GLOBAL":
                if chain:
                    out.append(tuple(chain))
                chain = [names[arg >> 1]]
            elif name == "LOAD_NAME":
                if chain:
                    out.append(tuple(chain))
                chain = [names[arg]]
            elif name in ("LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF"):
                if chain:
                    out.append(tuple(chain))
                chain = [localsplus[arg]]
            elif name in ("LOAD_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR"):
                idx = (
                    arg >> 1
                    if (new_attr and name == "LOAD_ATTR")
                    else arg >> 2
                    if name == "LOAD_SUPER_ATTR"
                    else arg
                )
                attr = names[idx]
                if chain is not None:
                    chain.append(attr)
                else:
                    out.append(("", attr))
            elif name == "IMPORT_NAME":
                if chain:
                    out.append(tuple(chain))
                chain = None
                base = pending = names[arg]
                from_import = False
                out.append(("import", base))
            elif name == "IMPORT_FROM":
                out.append(("from", names[arg]))
                pending = f"{base}.{names[arg]}" if base else names[arg]
                from_import = True
            elif name in ("STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF") and pending:
                local = localsplus[arg] if name in ("STORE_FAST", "STORE_DEREF") else names[arg]
                # `import a.b` binds a; `from a import b` binds a.b
                imported[local] = pending if from_import else pending.partition(".")[0]
                pending = base if from_import else ""  # `from` keeps the module on the stack
                if chain is not None:
                    out.append(tuple(chain))
                    chain = None
            elif name in ("LOAD_FAST", "LOAD_FAST_CHECK") and localsplus[arg] in imported:
                if chain:
                    out.append(tuple(chain))
                chain = [imported[localsplus[arg]]]
            elif name == "POP_TOP" and pending:
                pending = base = ""
                if chain is not None:
                    out.append(tuple(chain))
                    chain = None
            elif chain is not None:
                out.append(tuple(chain))
                chain = None
    except IndexError:
        return None
    if chain:
        out.append(tuple(chain))
    return out


def _value_text(v: Any) -> str | None:
    """What a global/closure value refers to, as a dotted name (modules, imported globals, cells)."""
    for _ in range(4):
        if type(v) is Call and v.meta is not None and v.meta.kind == "cell":
            v = v.meta.value
            continue
        break
    if type(v) is Call and v.meta is not None:
        m = v.meta
        if m.kind == "module":
            return m.name
        if m.kind in ("function", "class"):
            return m.full_name()
        return None
    if type(v) is Global:
        return _qual(v)
    return None


def _is_embedded_function(v: Any) -> bool:
    if type(v) is Call and v.meta is not None and v.meta.kind == "cell":
        v = v.meta.value
    return type(v) is Call and v.meta is not None and v.meta.kind == "function"


def _closure_bindings(fn: _Embedded) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cl = fn.closure
    code = fn.code
    if code is not None and type(cl) is tuple and len(cl) == len(code.freevars):
        out.update(zip(code.freevars, cl, strict=False))
    return out


class _Refs:
    """What one embedded function or class references, and whether any of it is dangerous."""

    def __init__(self) -> None:
        self.refs: list[str] = []
        self.danger: list[str] = []
        self._seen: set[str] = set()

    def add(self, text: str, dangerous: bool = False) -> None:
        if dangerous and text not in self.danger:
            self.danger.append(text)
        if text not in self._seen and len(self.refs) < 200:
            self._seen.add(text)
            self.refs.append(text)


def _is_dangerous_ref(dotted: str) -> bool:
    """``os.system``, ``subprocess.run``, ``exec``, ``socket.socket``, ``pickle.loads``…"""
    parts = dotted.split(".")
    if parts[0] in _DANGER_MODULES or any(p in _DANGER_NAMES for p in parts):
        return True
    if parts[0] in ("os", "posix", "nt") and any(_DANGER_OS.match(p) for p in parts[1:]):
        return True
    if parts[:2] == ["sys", "modules"]:
        return True
    return parts[0] == "builtins" and len(parts) > 1 and parts[1] in ("exec", "eval", "compile", "open")


def _analyse_code(code: _Embedded, bindings: dict[str, Any], refs: _Refs, depth: int = 0) -> None:
    if depth > 8:
        return
    chains = _walk_bytecode(code)
    if chains is None:  # another Python wrote it: the names it uses, resolved through its globals
        for n in code.names:
            target = _value_text(bindings.get(n))
            dotted = f"{target} (as {n})" if target and target.rpartition(".")[2] != n else (target or n)
            refs.add(dotted, _is_dangerous_ref(target or n) or n in _DANGER_NAMES)
        modules = {_value_text(bindings.get(n)) for n in code.names} - {None}
        if modules & {"os", "posix", "nt"} and any(_DANGER_OS.match(n) for n in code.names):
            refs.add("os." + next(n for n in code.names if _DANGER_OS.match(n)), True)
        if "sys" in modules and "modules" in code.names:
            refs.add("sys.modules", True)
    else:
        pending_import = ""
        for ch in chains:
            if ch[0] == "import":
                pending_import = ch[1]
                refs.add(f"import {ch[1]}", _is_dangerous_ref(ch[1]))
                continue
            if ch[0] == "from":
                d = f"{pending_import}.{ch[1]}" if pending_import else ch[1]
                refs.add(d, _is_dangerous_ref(d))
                continue
            if ch[0] == "":
                refs.add("." + ch[1], ch[1] in _DANGER_NAMES)
                continue
            head, rest = ch[0], list(ch[1:])
            if head in ("self", "cls") and head not in bindings:
                continue
            if _is_embedded_function(bindings.get(head)):
                continue  # a helper pickled by value: its own references are followed
            target = _value_text(bindings.get(head))
            base = target or head
            dotted = ".".join([base, *rest])
            refs.add(dotted, _is_dangerous_ref(dotted))
    for k in code.consts[:_MAX_NESTED_CODE] if type(code.consts) is tuple else ():
        if type(k) is Call and k.meta is not None and k.meta.kind == "code":
            _analyse_code(k.meta, bindings, refs, depth + 1)
    for v in bindings.values():  # globals pickled by reference are judged on their own as well
        t = _value_text(v)
        if t and type(v) is Global and not v.verdict.allowed and v.verdict.severity == Severity.CRITICAL:
            refs.add(t, True)


def _when(names: list[str]) -> str:
    if any(n in _LOAD_TIME_METHODS for n in names):
        return "runs while the model loads (during unpickling)"
    if any(n in _PREDICT_METHODS for n in names):
        return "runs when the model predicts"
    if "load_context" in names:
        return "runs when the model loads"
    return "runs when the model calls it (predict or load)"


def _embedded_issues(vm: PickleVM) -> list[Issue]:
    """One ``pickle.embedded-code`` issue per function/class pickled by value; the helpers a
    function or method reaches through its globals and closure are folded into it."""
    out: list[Issue] = []
    claimed: set[int] = set()  # ids of _Embedded already reported as part of another
    entities = [e for e in vm.embedded if e.kind == "class"] + [
        e for e in vm.embedded if e.kind == "function"
    ]
    for e in entities:
        if id(e) in claimed:
            continue
        claimed.add(id(e))
        refs = _Refs()
        if e.kind == "function":
            _function_refs(e, refs, claimed)
            name = e.full_name()
            what = "lambda" if "<lambda>" in name else "function"
            out.append(_embedded_issue(vm, what, name, [e.name or name.rpartition(".")[2]], refs))
            continue
        methods = []
        for k, fn in _class_methods(e):
            methods.append(k)
            if id(fn) not in claimed:
                claimed.add(id(fn))
                _function_refs(fn, refs, claimed)
        name = f"{e.module or '?'}.{e.qualname or e.name}"
        bases = ", ".join(t for t in (_value_text(b) for b in e.bases) if t and t != "builtins.object")
        out.append(_embedded_issue(vm, "class", name, methods, refs, bases))
    for code in vm.code_objects:
        if not code.used:  # cloudpickle never leaves one bare: a code object alone is an exec gadget
            out.append(
                Issue(
                    Severity.HIGH,
                    "pickle.embedded-code",
                    f"a bare code object `{code.name or '?'}` (types.CodeType) is built outside any "
                    "function; a loader or later code can exec it (cloudpickle never writes this)",
                    "types.CodeType",
                )
            )
    for e in vm.embedded:
        if e.kind == "module" and id(e) not in claimed:
            dangerous = _is_dangerous_ref(e.name)
            out.append(
                Issue(
                    Severity.CRITICAL if dangerous else vm.embedded_severity,
                    "pickle.embedded-code",
                    f"module `{e.name}` is imported while the model loads (cloudpickle subimport)"
                    + (
                        "; it reaches the system, processes, the network or code loading" if dangerous else ""
                    ),
                    f"subimport('{e.name}')",
                )
            )
    return out


def _as_function(v: Any) -> _Embedded | None:
    if type(v) is Call and v.meta is not None and v.meta.kind == "function":
        return v.meta
    if type(v) is Call and type(v.args) is tuple and v.args:  # staticmethod(fn), classmethod(fn)
        a = v.args[0]
        if type(a) is Call and a.meta is not None and a.meta.kind == "function":
            return a.meta
    return None


def _class_methods(cls: _Embedded) -> list[tuple[str, _Embedded]]:
    out = []
    for k, v in cls.members.items():
        fn = _as_function(v)
        if fn is not None:
            out.append((k, fn))
    return out


def _function_refs(fn: _Embedded, refs: _Refs, claimed: set[int], depth: int = 0) -> None:
    """Add what ``fn`` references to ``refs``, following the by-value functions it reaches."""
    bindings = dict(fn.bindings)
    bindings.update(_closure_bindings(fn))
    inner: list[_Embedded] = []
    for v in [*bindings.values(), *fn.submodules]:
        x = v
        if type(x) is Call and x.meta is not None and x.meta.kind == "cell":
            x = x.meta.value
        if type(x) is Call and x.meta is not None:
            if x.meta.kind == "module":
                claimed.add(id(x.meta))
            elif x.meta.kind == "function" and id(x.meta) not in claimed:
                claimed.add(id(x.meta))
                inner.append(x.meta)
    if fn.code is not None:
        _analyse_code(fn.code, bindings, refs)
    if depth < 16:
        for sub in inner:
            _function_refs(sub, refs, claimed, depth + 1)


def _embedded_issue(
    vm: PickleVM, what: str, name: str, members: list[str], refs: _Refs, bases: str = ""
) -> Issue:
    """One line a data scientist understands: what would run, when, what it uses, how to fix."""
    where = (
        "pickled by value from a notebook"
        if name.startswith("__main__.")
        else "pickled by value: defined inside a function or in a module the loader cannot import"
    )
    shown = [r for r in refs.refs if not r.startswith(".")][:8]
    more = ", …" if len(shown) < len([r for r in refs.refs if not r.startswith(".")]) else ""
    ref_text = ", ".join(shown) + more if shown else "nothing outside itself"
    when = _when(members)
    if refs.danger:
        sev = Severity.CRITICAL
        tail = (
            f"; it uses {', '.join(refs.danger[:5])}, which can run commands, reach the network or "
            "load code — do not load this model unless you wrote and reviewed this code"
        )
    else:
        sev = vm.embedded_severity
        if any(m in _LOAD_TIME_METHODS for m in members):
            sev = max(sev, Severity.HIGH)  # runs during unpickling, before anyone can review it
        tail = (
            " — review it, or log the model from code (python_model='model.py') so the code is a "
            "file the scan reads"
        )
    extra = ""
    if what == "class":
        parts = ([f"subclass of {bases}"] if bases else []) + (
            [f"methods {', '.join(members[:6])}" + (", …" if len(members) > 6 else "")] if members else []
        )
        extra = f", {'; '.join(parts)}" if parts else ""
    msg = f"embedded {what} `{name}` ({where}{extra}) {when}; it references {ref_text}{tail}"
    evidence = name + (": " + ", ".join(refs.danger[:4]) if refs.danger else "")
    return Issue(sev, "pickle.embedded-code", msg, evidence, -1)


_DANGEROUS_ATTRS = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "builtins",
        "importlib",
        "shutil",
        "socket",
        "ctypes",
        "pickle",
        "marshal",
        "system",
        "popen",
        "exec",
        "eval",
        "compile",
        "open",
        "load",
        "loads",
        "tofile",
        "dump",
        "dumps",
        "to_pickle",
        "read_pickle",
        "save",
        "modules",
        "f_globals",
        "f_locals",
        "func_globals",
    }
)


def _benign_getattr(args: Any) -> bool:
    """``getattr(<allowlisted class or instance of one>, '<plain attribute>')``: fetching a method
    or attribute (scipy frozen distributions pickle bound methods this way). Calling what it returns
    is judged separately (an indirect call)."""
    if type(args) is not tuple or len(args) != 2 or type(args[1]) is not str:
        return False
    attr = args[1]
    if not attr.isidentifier() or attr.startswith("__") or attr in _DANGEROUS_ATTRS:
        return False
    base = args[0]
    if type(base) is Global:
        return base.verdict.allowed
    return type(base) is Call and type(base.func) is Global and base.func.verdict.allowed


def _returns_existing(c: Call) -> bool:
    f = c.func
    if type(f) is Global:
        return _qual(f) in _RETURNS_EXISTING
    if type(f) is Call and type(f.func) is Global:
        return _qual(f.func) in ("operator.attrgetter", "operator.itemgetter")
    return False


_DTYPE_RE = re.compile(r"^[<>|=]?([bifucmMOSUVa?])(\d*)")


def _dtype_size(dtype: Any) -> int | str | None:
    """Item size of a pickled numpy dtype (``numpy.dtype('f8', False, True)`` + state); ``"object"``."""
    if type(dtype) is not Call:
        return None
    args = dtype.args if type(dtype.args) is tuple else ()
    state = dtype.state
    if type(state) is tuple and len(state) >= 8:
        flags = state[7]
        if type(flags) is int and flags & 1:  # NPY_ITEM_HASOBJECT
            return "object"
        elsize = state[5]
        if type(elsize) is int and elsize > 0:
            return elsize
    if not args or type(args[0]) is not str:
        return None
    m = _DTYPE_RE.match(args[0])
    if not m:
        return None
    kind, num = m.group(1), m.group(2)
    if kind == "O":
        return "object"
    if kind == "?":
        return 1
    n = int(num) if num else 0
    if kind in "mM":
        return 8
    if kind == "U":
        return 4 * n if n else None
    if n <= 0:
        return None
    return n


# ---------------------------------------------------------------------------------------------
# Hidden pickles in trailing data

_CANDIDATE = re.compile(
    rb"\x80[\x02-\x05]|[ci][A-Za-z_][A-Za-z0-9_.]{0,200}\n[A-Za-z_][A-Za-z0-9_.]{0,200}\n"
)
PROBE_WINDOW = 1 << 20
MAX_PROBES = 5000


def _probe_window(data: bytes, pos: int, judge: Judge, base: int) -> tuple[list[Issue], int]:
    """Run a side VM on ``data[pos:]``; issues only if it imports something not allowed. Returns
    the issues and the opcodes spent."""
    vm = PickleVM(
        Reader(io.BytesIO(data[pos : pos + PROBE_WINDOW]), None),
        judge,
        max_ops=200_000,
        max_memo=100_000,
        max_stack=100_000,
        joblib=False,
        probe=True,
    )
    complete = False
    try:
        vm.run_one(tolerant=True)
        ended, complete = "a complete pickle", True
    except (PickleError, LimitExceeded):
        ended = "pickle opcodes"
    # Random bytes (weights, embeddings, compressed data) spell "cG\nh\n" now and then: an import
    # of an unknown name counts only inside a complete pickle; a denied one (os.system…) always does.
    bad = [
        rec
        for rec in vm.imports.values()
        if not rec.verdict.allowed
        and is_identifier_path(rec.module)
        and is_identifier_path(rec.name)
        and (complete or rec.verdict.severity == Severity.CRITICAL)
    ]
    if not bad:
        return [], vm.ops
    worst = max((rec.verdict.severity or Severity.HIGH) for rec in bad)
    names = ", ".join(sorted({rec.verdict.qualified for rec in bad}))
    return [
        Issue(
            worst,
            "pickle.hidden-pickle",
            f"{ended} hidden in data the loader skips, at offset {base + pos}, import {names} "
            "(a loader that reads them as a pickle would run them)",
            names,
            base + pos,
        )
    ], vm.ops


def sniff(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) reads as pickle opcodes: it parses strictly to a
    ``STOP``, or for at least 8 opcodes up to the end of ``head``. Pickles need no ``PROTO`` opcode,
    so content detection can call this for files that start with any opcode byte.

    >>> sniff(b"\\x8c\\x02os\\x8c\\x06system\\x93."), sniff(b"N0cos\\nsystem\\n."), sniff(b"Hello world")
    (True, True, False)
    >>> sniff(b"import os\\nprint(1)\\n")
    False
    """
    if not head or head[0] not in OPCODES:
        return False
    from mlflow_plugin.scanner.allowlist import judge

    vm = PickleVM(
        Reader(io.BytesIO(head), len(head)),
        judge,
        max_ops=100_000,
        max_memo=100_000,
        max_stack=100_000,
        joblib=False,
        probe=True,
    )
    try:
        vm.run_one(tolerant=False)
    except Truncated:
        return vm.ops >= 8
    except (PickleError, LimitExceeded):
        return False
    return vm.ops >= 2


def find_hidden_pickles(reader: Reader, judge: Judge, max_bytes: int | None = None) -> list[Issue]:
    """Search the rest of ``reader`` for pickles (``PROTO`` markers, ``GLOBAL``/``INST`` text) that
    import non-allowlisted globals. Reads in 8 MiB blocks; bounded memory and probe count.

    >>> import io
    >>> from mlflow_plugin.scanner.allowlist import judge
    >>> data = b"\\x00" * 100 + b"\\x80\\x02cposix\\nsystem\\nq\\x00."
    >>> [i.rule for i in find_hidden_pickles(Reader(io.BytesIO(data)), judge)]
    ['pickle.hidden-pickle']
    """
    issues: list[Issue] = []
    probes = 0
    budget = PROBE_BUDGET
    block = 8 << 20
    carry = b""
    carry_base = reader.offset
    scanned = 0
    while True:
        chunk = reader.read_some(block)
        data = carry + chunk
        base = carry_base
        eof = not chunk or len(chunk) < block
        limit = len(data) if eof else max(0, len(data) - PROBE_WINDOW)
        skip_to = 0
        for m in _CANDIDATE.finditer(data, 0, limit):
            if m.start() < skip_to:
                continue
            probes += 1
            if probes > MAX_PROBES or budget <= 0:
                issues.append(
                    Issue(
                        Severity.LOW,
                        "pickle.limit",
                        f"stopped searching trailing data for hidden pickles after {probes - 1} candidates",
                        "",
                        base + m.start(),
                    )
                )
                return issues
            found, used = _probe_window(data, m.start(), judge, base)
            budget -= used
            if found:
                issues.extend(found)
                skip_to = m.start() + 64
                if len(issues) >= 50:
                    return issues
        scanned += len(chunk)
        if eof or (max_bytes is not None and scanned >= max_bytes):
            return issues
        carry = data[limit:]
        carry_base = base + limit
