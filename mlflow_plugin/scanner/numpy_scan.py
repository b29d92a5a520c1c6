"""Scan ``.npy`` files without numpy's loader: header checks, and object arrays' pickles.

An ``.npy`` file is ``\\x93NUMPY``, a version (1.0, 2.0, 3.0), a header length (2 or 4 bytes) and a
Python dict literal ``{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}``; then the raw data.
An object dtype (``|O``, also inside a structured dtype) means the data is a **pickle** — which
``numpy.load(allow_pickle=True)`` runs — so it goes through the pickle VM.

The header is parsed with :func:`ast.literal_eval` only after checking it is at most 64 KiB and
nested at most 32 levels deep. ``.npz`` files are zip archives of ``.npy`` members: the zip scanner
hands each member back and it lands here by content.

Rules: ``numpy.malformed`` (bad header: MEDIUM), ``numpy.truncated`` (less data than the header
announces: MEDIUM), ``numpy.trailing-data`` (more: LOW, and the excess is searched for hidden
pickles), ``numpy.object-array`` (LOW: loading needs ``allow_pickle=True``; its pickle was clean),
plus the ``pickle.*`` rules for the object array's pickle.

>>> import io
>>> from mlflow_plugin.scanner.context import ScanContext
>>> from mlflow_plugin.scanner.report import ScanReport
>>> hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
>>> hdr += b" " * (63 - len(hdr) % 64 - 10) + b"\\n"
>>> data = b"\\x93NUMPY\\x01\\x00" + len(hdr).to_bytes(2, "little") + hdr + bytes(16)
>>> ctx = ScanContext(ScanReport("x"))
>>> scan_npy(ctx, "a.npy", io.BytesIO(data), len(data))
>>> ctx.report_obj.findings
[]
"""

from __future__ import annotations

import ast
import re
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.pickle_scan import scan_pickle_stream
from mlflow_plugin.scanner.pickle_vm import Reader, Truncated, find_hidden_pickles
from mlflow_plugin.scanner.report import Severity

__all__ = ["MAX_HEADER", "NpyHeader", "parse_header", "scan_npy"]

MAGIC = b"\x93NUMPY"
MAX_HEADER = 64 << 10
MAX_NESTING = 32
_SIMPLE = re.compile(r"^[<>|=]?([bifucmMOSUVa?])(\d*)(?:\[[A-Za-z0-9]+\])?$")


class NpyError(ValueError):
    """The ``.npy`` header is malformed."""


class NpyHeader:
    """A parsed header: ``descr``, ``fortran_order``, ``shape``, ``itemsize`` (None for object
    dtypes), ``has_object``, ``data_offset`` (where the data starts)."""

    def __init__(self, descr: Any, fortran_order: bool, shape: tuple[int, ...], data_offset: int) -> None:
        self.descr, self.fortran_order, self.shape, self.data_offset = (
            descr,
            fortran_order,
            shape,
            data_offset,
        )
        self.has_object = _has_object(descr)
        self.itemsize = None if self.has_object else _itemsize(descr, 0)

    @property
    def nbytes(self) -> int | None:
        if self.itemsize is None:
            return None
        n = self.itemsize
        for d in self.shape:
            n *= d
        return n


def parse_header(read: Any) -> NpyHeader:
    """Parse a ``.npy`` header with ``read(n) -> bytes``; raises ``NpyError``.

    >>> import io
    >>> h = b"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }\\n"
    >>> hd = parse_header(io.BytesIO(b"\\x93NUMPY\\x01\\x00" + len(h).to_bytes(2, "little") + h).read)
    >>> hd.has_object, hd.shape
    (True, (3,))
    """
    pre = read(10)
    if len(pre) < 10 or pre[:6] != MAGIC:
        raise NpyError("not an .npy file (bad magic or truncated preamble)")
    major, minor = pre[6], pre[7]
    if major == 1:
        hlen = int.from_bytes(pre[8:10], "little")
        start = 10
    elif major in (2, 3):
        more = read(2)
        if len(more) < 2:
            raise NpyError("truncated preamble")
        hlen = int.from_bytes(pre[8:10] + more, "little")
        start = 12
    else:
        raise NpyError(f"unknown .npy format version {major}.{minor}")
    if minor != 0:
        raise NpyError(f"unknown .npy format version {major}.{minor}")
    if hlen > MAX_HEADER:
        raise NpyError(
            f"header of {hlen} bytes (at most {MAX_HEADER} accepted; numpy refuses more than 10000)"
        )
    raw = read(hlen)
    if len(raw) < hlen:
        raise NpyError("truncated header")
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
    except UnicodeDecodeError as e:
        raise NpyError("header is not valid UTF-8") from e
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise NpyError(f"header nested {deepest} levels deep")
    try:
        d = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as e:
        raise NpyError(f"header is not a Python literal: {type(e).__name__}") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise NpyError("header must be a dict with exactly descr, fortran_order and shape")
    shape = d["shape"]
    if not isinstance(shape, tuple) or not all(type(x) is int and x >= 0 for x in shape) or len(shape) > 64:
        raise NpyError(f"bad shape {str(shape)[:60]}")
    if not isinstance(d["fortran_order"], bool):
        raise NpyError("fortran_order must be a bool")
    _check_descr(d["descr"], 0)
    return NpyHeader(d["descr"], d["fortran_order"], shape, start + hlen)


def _check_descr(descr: Any, depth: int) -> None:
    if depth > 16:
        raise NpyError("dtype nested too deeply")
    if isinstance(descr, str):
        if not _SIMPLE.match(descr):
            raise NpyError(f"unknown dtype {descr[:40]!r}")
        return
    if not isinstance(descr, list) or not descr:
        raise NpyError("descr must be a dtype string or a list of fields")
    for f in descr:
        if not isinstance(f, tuple) or len(f) not in (2, 3):
            raise NpyError("bad structured dtype field")
        name = f[0]
        if not isinstance(name, (str, tuple)):
            raise NpyError("bad field name")
        _check_descr(f[1], depth + 1)
        if len(f) == 3 and not (isinstance(f[2], tuple) and all(type(x) is int and x >= 0 for x in f[2])):
            raise NpyError("bad sub-array shape")


def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        m = _SIMPLE.match(descr)
        return bool(m and m.group(1) == "O")
    return any(_has_object(f[1]) for f in descr)


def _itemsize(descr: Any, depth: int) -> int | None:
    if isinstance(descr, str):
        m = _SIMPLE.match(descr)
        if not m:
            return None
        kind, num = m.group(1), m.group(2)
        n = int(num) if num else 0
        if kind == "?":
            return 1
        if kind in "mM":
            return 8
        if kind == "U":
            return 4 * n
        if kind == "b" and not num:
            return 1
        return n
    total = 0
    for f in descr:
        sub = _itemsize(f[1], depth + 1)
        if sub is None:
            return None
        if len(f) == 3:
            for d in f[2]:
                sub *= d
        total += sub
    return total


def scan_npy(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Scan one ``.npy`` stream; see the module docstring for the rules.

    >>> import io, pickle
    >>> from mlflow_plugin.scanner.context import ScanContext
    >>> from mlflow_plugin.scanner.report import ScanReport
    >>> h = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\\n"
    >>> body = b"\\x80\\x03cos\\nsystem\\nq\\x00."       # hand-written opcodes, never loaded
    >>> data = b"\\x93NUMPY\\x01\\x00" + len(h).to_bytes(2, "little") + h + body
    >>> ctx = ScanContext(ScanReport("x"))
    >>> scan_npy(ctx, "a.npy", io.BytesIO(data), len(data))
    >>> [(f.severity.name, f.rule, f.evidence) for f in ctx.report_obj.findings]
    [('CRITICAL', 'pickle.unsafe-global', 'os.system')]
    """
    reader = Reader(stream, size)
    try:
        hdr = parse_header(lambda n: reader.read_some(n))
    except NpyError as e:
        ctx.report(path, Severity.MEDIUM, "numpy.malformed", f".npy header: {e}")
        return
    if hdr.has_object:
        issues = scan_pickle_stream(reader, ctx)
        for i in issues:
            ctx.report(path, i.severity, i.rule, f"object array's pickle: {i.message}", i.evidence)
        if not any(i.severity >= Severity.MEDIUM for i in issues):
            ctx.report(
                path,
                Severity.LOW,
                "numpy.object-array",
                "object array: numpy.load needs allow_pickle=True to read it (its pickle holds "
                "only allowlisted globals)",
                f"descr {str(hdr.descr)[:60]}",
            )
        return
    nbytes = hdr.nbytes
    if nbytes is None:  # pragma: no cover - _check_descr accepted it, so its size is known
        return
    have = size - hdr.data_offset if size is not None and size >= 0 else None
    try:
        reader.skip(nbytes)
    except Truncated:
        ctx.report(
            path,
            Severity.MEDIUM,
            "numpy.truncated",
            f"the header announces {nbytes} bytes of data, the file holds {have}",
            f"shape {hdr.shape} descr {str(hdr.descr)[:40]}",
        )
        return
    if reader.peek() >= 0:
        extra = (size - hdr.data_offset - nbytes) if have is not None else -1
        ctx.report(
            path,
            Severity.LOW,
            "numpy.trailing-data",
            f"{extra if extra >= 0 else 'some'} bytes after the array data (numpy.load ignores them)",
            f"offset {hdr.data_offset + nbytes}",
        )
        for i in find_hidden_pickles(reader, _judge(ctx), ctx.limits.max_member_size):
            ctx.report(path, i.severity, i.rule, i.message, i.evidence)


def _judge(ctx: ScanContext) -> Any:
    from mlflow_plugin.scanner.pickle_scan import judge_for

    return judge_for(ctx)
