"""Header sanity for tensor-only formats: safetensors and GGUF.

Both formats hold no code, so the risks are in the header: lengths and offsets that point
outside the file or overflow (parser memory corruption, out-of-bounds reads), header bombs
that make a loader allocate gigabytes, overlapping or hidden data, and — for GGUF — Jinja chat
templates that ``llama-cpp-python`` once rendered unsandboxed (CVE-2024-34359). Only the header
is read, never the tensor data, and no count read from the file is trusted before it has been
checked against the bytes that are left.

>>> import io, json, struct
>>> from mlflow_plugin.scanner.api import _new_context
>>> hdr = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
>>> blob = struct.pack("<Q", len(hdr)) + hdr + bytes(8)
>>> ctx = _new_context("m.safetensors", None, None)
>>> scan_safetensors(ctx, "m.safetensors", io.BytesIO(blob), len(blob)); ctx.report_obj.findings
[]
"""

from __future__ import annotations

import json
import math
import struct
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

SAFETENSORS_MAX_HEADER = 100_000_000
# dtype -> bits per element
_ST_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    parts = []
    left = n
    while left > 0:
        b = stream.read(min(left, 1 << 20))
        if not b:
            break
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


# --------------------------------------------------------------------------- safetensors


def scan_safetensors(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Check a safetensors header: length, JSON, dtypes, shapes, offsets, metadata.

    >>> import io, struct
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> blob = struct.pack("<Q", 1 << 40) + b"{}"
    >>> ctx = _new_context("x.safetensors", None, None)
    >>> scan_safetensors(ctx, "x.safetensors", io.BytesIO(blob), len(blob))
    >>> [(f.severity.name, f.rule) for f in ctx.report_obj.findings]
    [('HIGH', 'safetensors.header')]
    """
    first = _read_exact(stream, 8)
    if len(first) < 8:
        ctx.report(path, Severity.HIGH, "safetensors.header", "file too short for a safetensors header")
        return
    n = int.from_bytes(first, "little")
    if n > SAFETENSORS_MAX_HEADER or n > size - 8:
        ctx.report(
            path,
            Severity.HIGH,
            "safetensors.header",
            "header length is larger than the file or the 100 MB limit (a header bomb or a truncated file)",
            f"header_len={n} file={size}",
        )
        return
    raw = _read_exact(stream, n)
    if len(raw) < n:
        ctx.report(
            path,
            Severity.HIGH,
            "safetensors.header",
            "file ends inside the header",
            f"header_len={n} read={len(raw)}",
        )
        return
    dupes: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in items:
            if k in d:
                dupes.append(k)
            d[k] = v
        return d

    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=pairs)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        ctx.report(path, Severity.HIGH, "safetensors.json", f"header is not valid UTF-8 JSON: {str(e)[:120]}")
        return
    if not text.startswith("{"):
        ctx.report(
            path, Severity.MEDIUM, "safetensors.json", "header does not start with '{' as the spec requires"
        )
    if not isinstance(header, dict):
        ctx.report(path, Severity.HIGH, "safetensors.json", "header is not a JSON object")
        return
    if dupes:
        ctx.report(
            path,
            Severity.MEDIUM,
            "safetensors.duplicate",
            "header repeats tensor names: parsers keep different ones",
            ", ".join(dupes[:5]),
        )
    data_len = size - 8 - n
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
        ):
            ctx.report(
                path, Severity.MEDIUM, "safetensors.metadata", "__metadata__ must map strings to strings"
            )
        else:
            from mlflow_plugin.scanner.secrets import scan_params

            scan_params(ctx, path, meta)
    spans: list[tuple[int, int, str]] = []
    problems = 0

    def bad(sev: Severity, rule: str, msg: str, ev: str) -> None:
        nonlocal problems
        problems += 1
        if problems <= 50:
            ctx.report(path, sev, rule, msg, ev[:200])

    for name, info in header.items():
        if not isinstance(info, dict):
            bad(Severity.HIGH, "safetensors.tensor", "tensor entry is not an object", name)
            continue
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ST_BITS:
            bad(Severity.MEDIUM, "safetensors.dtype", "unknown dtype", f"{name}: {dtype!r}")
        if not (
            isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            bad(
                Severity.HIGH,
                "safetensors.shape",
                "shape must be a list of non-negative integers",
                f"{name}: {str(shape)[:80]}",
            )
            shape = None
        if not (
            isinstance(offs, list)
            and len(offs) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
        ):
            bad(
                Severity.HIGH, "safetensors.offsets", "data_offsets must be two integers", f"{name}: {offs!r}"
            )
            continue
        begin, end = offs
        if not (0 <= begin <= end <= data_len):
            bad(
                Severity.HIGH,
                "safetensors.offsets",
                "data_offsets point outside the data section (out-of-bounds read)",
                f"{name}: [{begin}, {end}] data={data_len}",
            )
            continue
        spans.append((begin, end, name))
        if shape is not None and dtype in _ST_BITS:
            bits = math.prod(shape) * _ST_BITS[dtype]
            if bits != (end - begin) * 8:
                bad(
                    Severity.HIGH,
                    "safetensors.shape",
                    "shape × dtype size does not match the tensor's byte span",
                    f"{name}: {dtype}{shape} needs {bits // 8 if bits % 8 == 0 else bits / 8} bytes, "
                    f"span {end - begin}",
                )
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            bad(Severity.HIGH, "safetensors.overlap", "tensor data overlaps another tensor", name)
        elif begin > pos:
            bad(
                Severity.MEDIUM,
                "safetensors.hole",
                "bytes between tensors that no tensor covers (hidden data; loaders reject it)",
                f"{pos}..{begin} before {name}",
            )
        pos = max(pos, end)
    if pos < data_len:
        bad(
            Severity.MEDIUM,
            "safetensors.hole",
            "data after the last tensor that no tensor covers (hidden data; loaders reject it)",
            f"{data_len - pos} bytes",
        )


# --------------------------------------------------------------------------- GGUF

# ggml type id -> (block size in elements, bytes per block)
_GGML = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
}
# value type -> fixed size (strings 8, arrays 9 handled apart)
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_MAX_STRING = 64 << 20
_TEMPLATE_RISK = (
    "__class__",
    "__globals__",
    "__subclasses__",
    "__builtins__",
    "__import__",
    "__mro__",
    "__base__",
    "__getattribute__",
    "popen",
    "subprocess",
    "import os",
    "self._",
)


class _GGUFError(Exception):
    def __init__(self, rule: str, msg: str, ev: str = "") -> None:
        super().__init__(msg)
        self.rule, self.ev = rule, ev


class _Reader:
    """Sequential little/big-endian reader that tracks position and never reads past ``size``."""

    def __init__(self, stream: IO[bytes], size: int, endian: str) -> None:
        self.s, self.size, self.pos, self.e = stream, size, 0, endian
        self.buf = b""
        self.bpos = 0

    @property
    def left(self) -> int:
        return self.size - self.pos

    def read(self, n: int) -> bytes:
        if n > self.left:
            raise _GGUFError(
                "gguf.truncated",
                "header runs past the end of the file",
                f"need {n} at {self.pos}, file {self.size}",
            )
        if self.bpos + n > len(self.buf):
            rest = self.buf[self.bpos :]
            more = _read_exact(self.s, max(n - len(rest), 1 << 16))
            self.buf, self.bpos = rest + more, 0
            if len(self.buf) < n:
                raise _GGUFError("gguf.truncated", "file ends inside the header", f"at {self.pos}")
        out = self.buf[self.bpos : self.bpos + n]
        self.bpos += n
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        if n > self.left:
            raise _GGUFError(
                "gguf.truncated", "header runs past the end of the file", f"skip {n} at {self.pos}"
            )
        inbuf = len(self.buf) - self.bpos
        if n <= inbuf:
            self.bpos += n
            self.pos += n
            return
        n2 = n - inbuf
        self.buf, self.bpos = b"", 0
        self.pos += inbuf
        seek = getattr(self.s, "seekable", None)
        if seek is not None and self.s.seekable():
            self.s.seek(n2, 1)
        else:
            while n2 > 0:
                b = self.s.read(min(n2, 1 << 20))
                if not b:
                    raise _GGUFError("gguf.truncated", "file ends inside the header", f"at {self.pos}")
                n2 -= len(b)
        self.pos += n - inbuf

    def u32(self) -> int:
        return struct.unpack(self.e + "I", self.read(4))[0]

    def u64(self) -> int:
        return struct.unpack(self.e + "Q", self.read(8))[0]


def scan_gguf(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Check a GGUF (v1–v3) header: counts, strings, arrays, tensor shapes, types and offsets.

    Counts are checked against the bytes left before anything is iterated, so a header that
    declares billions of entries is a finding, not an allocation.

    >>> import io, struct
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> blob = b"GGUF" + struct.pack("<IQQ", 3, 0, 10**12)
    >>> ctx = _new_context("m.gguf", None, None)
    >>> scan_gguf(ctx, "m.gguf", io.BytesIO(blob), len(blob))
    >>> [(f.severity.name, f.rule) for f in ctx.report_obj.findings]
    [('HIGH', 'gguf.header-bomb')]
    """
    try:
        _scan_gguf(ctx, path, stream, size)
    except _GGUFError as e:
        sev = Severity.MEDIUM if e.rule in ("gguf.truncated",) else Severity.HIGH
        ctx.report(path, sev, e.rule, str(e), e.ev)


def _scan_gguf(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    head = _read_exact(stream, 8)
    if len(head) < 8 or head[:4] != b"GGUF":
        raise _GGUFError("gguf.truncated", "file too short for a GGUF header")
    version = int.from_bytes(head[4:8], "little")
    endian = "<"
    if version not in (1, 2, 3) and int.from_bytes(head[4:8], "big") in (1, 2, 3):
        endian, version = ">", int.from_bytes(head[4:8], "big")
    if version not in (1, 2, 3):
        ctx.report(
            path,
            Severity.MEDIUM,
            "gguf.version",
            "unknown GGUF version; header not checked",
            f"version={version}",
        )
        return
    r = _Reader(stream, size, endian)
    r.pos = 8
    cnt = r.u32 if version == 1 else r.u64
    n_tensors = cnt()
    n_kv = cnt()
    slen = r.u32 if version == 1 else r.u64
    # fewest bytes an entry can take: kv = key length + type + 1-byte value; tensor = name length +
    # ndims + type + offset
    w = 4 if version == 1 else 8
    if n_kv * (w + 5) + n_tensors * (w + 16) > r.left:
        raise _GGUFError(
            "gguf.header-bomb",
            "header declares more entries than the file can hold",
            f"kv_count={n_kv} tensor_count={n_tensors} bytes_left={r.left}",
        )

    def string(keep: bool) -> str | None:
        n = slen()
        if n > r.left or n > _GGUF_MAX_STRING:
            raise _GGUFError(
                "gguf.string",
                "string length is larger than the file or the 64 MiB limit",
                f"len={n} at {r.pos}",
            )
        if keep:
            return r.read(n).decode("utf-8", "replace")
        r.skip(n)
        return None

    alignment = 32
    for _ in range(n_kv):
        key = string(True) or ""
        vtype = r.u32()
        if vtype == 8:
            keep = key.startswith("tokenizer.chat_template") or key == "general.alignment"
            val = string(keep)
            if val is not None and key.startswith("tokenizer.chat_template"):
                _check_template(ctx, path, key, val)
        elif vtype == 9:
            etype = r.u32()
            count = cnt()
            if etype == 9:
                raise _GGUFError("gguf.array", "nested arrays are not allowed", key[:80])
            esize = _GGUF_FIXED.get(etype, w if etype == 8 else None)
            if esize is None:
                raise _GGUFError("gguf.type", "unknown array element type", f"{key[:80]}: {etype}")
            if count * esize > r.left:
                raise _GGUFError(
                    "gguf.array", "array is larger than the file (header bomb)", f"{key[:80]}: count={count}"
                )
            if etype == 8:
                for _i in range(count):
                    string(False)
            else:
                r.skip(count * esize)
        elif vtype in _GGUF_FIXED:
            raw = r.read(_GGUF_FIXED[vtype])
            if key == "general.alignment" and vtype in (4, 5):
                alignment = struct.unpack(endian + "I", raw)[0]
        else:
            raise _GGUFError("gguf.type", "unknown metadata value type", f"{key[:80]}: {vtype}")
    if alignment == 0 or alignment & (alignment - 1) or alignment > (1 << 20):
        ctx.report(
            path,
            Severity.MEDIUM,
            "gguf.alignment",
            "general.alignment must be a small power of two",
            str(alignment),
        )
        alignment = 32
    tensors: list[tuple[int, int, str]] = []
    problems = 0

    def bad(sev: Severity, rule: str, msg: str, ev: str) -> None:
        nonlocal problems
        problems += 1
        if problems <= 50:
            ctx.report(path, sev, rule, msg, ev[:200])

    for _ in range(n_tensors):
        name = string(True) or ""
        ndims = r.u32()
        if ndims > 4:
            raise _GGUFError(
                "gguf.tensor", "tensor has more than 4 dimensions (GGML_MAX_DIMS)", f"{name[:80]}: {ndims}"
            )
        dims = [cnt() for _ in range(ndims)]
        ttype = r.u32()
        offset = r.u64()
        nel = math.prod(dims) if dims else 1
        if nel >= 1 << 63 or any(d >= 1 << 63 for d in dims):
            bad(Severity.HIGH, "gguf.tensor", "tensor element count overflows 63 bits", f"{name}: {dims}")
            continue
        if ttype not in _GGML:
            bad(Severity.LOW, "gguf.type", "unknown ggml tensor type; size not checked", f"{name}: {ttype}")
            nbytes = 0
        else:
            blk, bsz = _GGML[ttype]
            if dims and dims[0] % blk:
                bad(
                    Severity.MEDIUM,
                    "gguf.tensor",
                    "first dimension is not a multiple of the block size",
                    f"{name}: {dims} block {blk}",
                )
            nbytes = -(-nel // blk) * bsz
        if offset % alignment:
            bad(Severity.MEDIUM, "gguf.alignment", "tensor offset is not aligned", f"{name}: {offset}")
        tensors.append((offset, offset + nbytes, name))
    data_start = -(-r.pos // alignment) * alignment
    data_len = size - data_start
    if data_len < 0:
        raise _GGUFError("gguf.truncated", "file ends before the tensor data section", f"size={size}")
    end_max = 0
    for begin, end, name in sorted(tensors):
        if end > data_len:
            bad(
                Severity.HIGH,
                "gguf.offset",
                "tensor data lies outside the file (out-of-bounds read)",
                f"{name}: [{begin}, {end}] data={data_len}",
            )
        elif begin < end_max:
            bad(Severity.MEDIUM, "gguf.overlap", "tensor data overlaps another tensor", name)
        end_max = max(end_max, end)


def _check_template(ctx: ScanContext, path: str, key: str, tpl: str) -> None:
    low = tpl.lower()
    hits = [t for t in _TEMPLATE_RISK if t.lower() in low]
    if hits:
        ctx.report(
            path,
            Severity.CRITICAL,
            "gguf.chat-template",
            "chat template reaches Python internals: server-side template injection in loaders that "
            "render it unsandboxed (CVE-2024-34359)",
            f"{key}: {', '.join(hits[:5])}",
        )
