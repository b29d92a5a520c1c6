"""Containers: zip (incl. PyTorch and Keras v3 archives), tar, gzip/bz2/xz/zstd and 7z.

Nothing is extracted to disk under its own name and nothing is loaded: members are streamed
through :meth:`ScanContext.scan_member` (``outer!inner`` paths). Stored zip members are read in
place through a bounded window of the archive; compressed members are decompressed
incrementally under a byte budget (member size, ratio, total), so a bomb is a ``scan.bomb``
finding raised while decompressing, not after. Small members are spooled in memory, large ones
in an anonymous temporary file.

Zip archives are read the way the loaders that matter read them (PyTorch's miniz uses the
central directory and ignores most flag bits) and checked for the tricks that blind other
scanners: local-header / central-directory mismatches, fake encryption or "patched data" flag
bits, overlapping entries (42.zip-style bombs), local entries that no central entry names,
duplicate names, path traversal and symlinks.

>>> import io, zipfile
>>> from mlflow_plugin.scanner.api import _new_context
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as z:
...     z.writestr("../evil.txt", "hello")
>>> _ = buf.seek(0)
>>> ctx = _new_context("a.zip", None, None)
>>> scan_zip(ctx, "a.zip", buf, len(buf.getvalue()))
>>> [f.rule for f in ctx.report_obj.findings]
['zip.path-traversal']
"""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import re
import stat
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.detect import HEAD, detect
from mlflow_plugin.scanner.report import Severity
from mlflow_plugin.scanner.streams import ensure_seekable

SPOOL_MEM = 32 << 20  # members up to this size are held in memory, larger ones in a temp file
RATIO_FLOOR = 64 << 20  # the ratio limit applies once a member decompresses past this many bytes
CHUNK = 1 << 20  # decompression output per step
OVERLAP_BUDGET = 256 << 20  # bytes decompressed from overlapping zip entries, all together
KERAS_CONFIG_MAX = 64 << 20

_ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz"}
_LFH = struct.Struct("<4sHHHHHIIIHH")  # local file header
_TORCH_STORAGE = re.compile(r"^(?:[^/]+/)?data/\d+$")


class BudgetExceeded(Exception):
    """Decompression produced more than its budget allows."""

    def __init__(self, limit: int, reason: str) -> None:
        super().__init__(f"more than {limit} bytes ({reason})")
        self.limit, self.reason = limit, reason


# --------------------------------------------------------------------------- stream helpers


class Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of ``base`` starting at ``offset``.

    >>> w = Window(io.BytesIO(b"0123456789"), 2, 5)
    >>> w.read(), w.seek(1), w.read(2)
    (b'23456', 1, b'34')
    """

    def __init__(self, base: IO[bytes], offset: int, length: int) -> None:
        super().__init__()
        self.base, self.offset, self.length, self.pos = base, offset, max(length, 0), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 1:
            pos += self.pos
        elif whence == 2:
            pos += self.length
        self.pos = min(max(pos, 0), self.length)
        return self.pos

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.length - self.pos)
        if n <= 0:
            return 0
        self.base.seek(self.offset + self.pos)
        data = self.base.read(n)
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.length - self.pos
        n = min(n, self.length - self.pos)
        if n <= 0:
            return b""
        self.base.seek(self.offset + self.pos)
        data = self.base.read(n)
        self.pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)


class _Sequential(io.RawIOBase):
    """A non-seekable reader over a chunk iterator (decompressed output)."""

    def __init__(self, chunks: Iterator[bytes], limit: int | None = None) -> None:
        super().__init__()
        self.chunks, self.buf, self.left = chunks, b"", limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self.buf]
            self.buf = b""
            while True:
                b = self._next()
                if not b:
                    break
                parts.append(b)
            return b"".join(parts)
        while len(self.buf) < n:
            b = self._next()
            if not b:
                break
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _next(self) -> bytes:
        if self.left is not None and self.left <= 0:
            return b""
        try:
            b = next(self.chunks)
        except StopIteration:
            return b""
        if self.left is not None:
            b = b[: self.left]
            self.left -= len(b)
        return b


# --------------------------------------------------------------------------- decompression


class _Trailer:
    """What a decompressor noticed besides its output."""

    def __init__(self) -> None:
        self.trailing = 0  # bytes after the last compressed stream that are not padding
        self.streams = 0


def _decompressor(kind: str) -> Any:
    if kind in ("gzip", "deflate", "zlib"):
        return _ZlibD({"gzip": 31, "deflate": -15, "zlib": 15}[kind])
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_AUTO)
    if kind == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    raise ValueError(f"no decompressor for {kind}")


class _ZlibD:
    """zlib.decompressobj with the bz2/lzma decompressor interface."""

    def __init__(self, wbits: int) -> None:
        self.d = zlib.decompressobj(wbits)
        self.needs_input = True

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self.d.unconsumed_tail:
            data = self.d.unconsumed_tail + data
        out = self.d.decompress(data, max_length)
        self.needs_input = not self.d.unconsumed_tail and len(out) < max_length
        return out

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused_data(self) -> bytes:
        return self.d.unused_data


_MAGIC = {"gzip": (b"\x1f\x8b",), "bz2": (b"BZh",), "xz": (b"\xfd7zXZ\x00",)}


def decompress_chunks(
    kind: str, read: Callable[[int], bytes], info: _Trailer | None = None, multi: bool = True
) -> Iterator[bytes]:
    """Yield the decompressed output of ``read`` in chunks of at most 1 MiB.

    ``kind`` is ``gzip``, ``bz2``, ``xz``, ``zstd``, ``zlib``, ``lzma`` (.lzma "alone"),
    ``deflate`` (raw, as in zip) or ``zip-lzma``. Concatenated streams are followed when
    ``multi`` (as gzip/bzip2/xz tools do). A truncated stream raises ``EOFError`` after
    yielding what it decoded.

    >>> b"".join(decompress_chunks("gzip", io.BytesIO(__import__("gzip").compress(b"hi")).read))
    b'hi'
    """
    info = info or _Trailer()
    if kind == "zstd":
        yield from _zstd_chunks(read)
        info.streams = 1
        return
    if kind == "zip-lzma":
        hdr = read(4)
        if len(hdr) < 4:
            raise EOFError("truncated zip lzma header")
        psize = int.from_bytes(hdr[2:4], "little")
        props = read(psize)
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        d: Any = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        multi = False
    else:
        d = _decompressor(kind)
    pending = b""
    while True:
        if d.eof:
            info.streams += 1
            rest = d.unused_data + pending
            pending = b""
            if not multi:
                return
            if not rest:
                rest = read(CHUNK)
            while rest and len(rest) < 6:
                more = read(CHUNK)
                if not more:
                    break
                rest += more
            if not rest:
                return
            if any(rest.startswith(m) for m in _MAGIC.get(kind, ())):
                d = _decompressor(kind)
                pending = rest
                continue
            # padding of zero bytes is tolerated by the tools; anything else is trailing data
            n = len(rest.strip(b"\x00"))
            while True:
                more = read(CHUNK)
                if not more:
                    break
                n += len(more.strip(b"\x00"))
            info.trailing = n
            return
        if d.needs_input:
            data = pending or read(CHUNK)
            pending = b""
            if not data:
                raise EOFError(f"{kind} stream ends before its end marker (truncated)")
        else:
            data = b""
        out = d.decompress(data, CHUNK)
        if out:
            yield out


def _zstd_chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    import zstandard

    class _R:
        def read(self, n: int = -1) -> bytes:
            return read(CHUNK if n is None or n < 0 else n)

    reader = zstandard.ZstdDecompressor().stream_reader(_R(), read_across_frames=True)  # type: ignore[arg-type]
    while True:
        try:
            out = reader.read(CHUNK)
        except zstandard.ZstdError as e:
            raise EOFError(f"zstd: {e}") from e
        if not out:
            return
        yield out


def budget_for(ctx: ScanContext, compressed: int) -> tuple[int, str]:
    """The most bytes one member may decompress to, and which limit that is.

    >>> from mlflow_plugin.scanner.api import _new_context
    >>> budget_for(_new_context("x", None, None), 1 << 20)
    (262144000, 'ratio')
    """
    lim = ctx.limits
    cands = [
        (lim.max_member_size, "size"),
        (max(lim.max_total_bytes - ctx.total_bytes, 0), "total"),
        (max(int(lim.max_ratio * max(compressed, 1)), RATIO_FLOOR), "ratio"),
    ]
    return min(cands, key=lambda c: c[0])


def _bomb(ctx: ScanContext, path: str, limit: int, reason: str, compressed: int) -> None:
    if reason == "total":
        ctx.report(
            path,
            Severity.MEDIUM,
            "scan.limit.total",
            f"more than {ctx.limits.max_total_bytes} bytes decompressed in one scan; member not scanned",
        )
        return
    what = (
        f"decompresses to more than {limit} bytes from {compressed} (ratio > {ctx.limits.max_ratio:g})"
        if reason == "ratio"
        else f"decompresses to more than the {ctx.limits.max_member_size}-byte member limit"
    )
    ctx.report(
        path,
        Severity.HIGH,
        "scan.bomb",
        f"decompression bomb: {what}; not scanned",
        f"compressed={compressed}",
    )


def spool_chunks(
    chunks: Iterator[bytes], limit: int, reason: str = "size", crc: list[int] | None = None
) -> tuple[IO[bytes], int]:
    """Copy ``chunks`` into a spooled temp file; raise :class:`BudgetExceeded` past ``limit``.

    >>> f, n = spool_chunks(iter([b"ab", b"c"]), 10)
    >>> f.read(), n
    (b'abc', 3)
    """
    f: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEM, prefix="modelkit-scan-")  # noqa: SIM115
    n = 0
    c = 0
    try:
        for b in chunks:
            n += len(b)
            if n > limit:
                raise BudgetExceeded(limit, reason)
            if crc is not None:
                c = zlib.crc32(b, c)
            f.write(b)
    except BaseException:
        f.close()
        raise
    if crc is not None:
        crc.append(c)
    f.seek(0)
    return f, n


def _unsafe_name(name: str) -> str | None:
    """Why an archive member name would escape an extraction directory, or None."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        return "absolute path"
    if ".." in n.split("/"):
        return "parent-directory component"
    if "\x00" in n:
        return "NUL byte in name"
    return None


def _member_head(stream: IO[bytes]) -> bytes:
    pos = stream.tell()
    head = stream.read(HEAD)
    stream.seek(pos)
    return head


# --------------------------------------------------------------------------- zip


class _Entry:
    """One zip entry as the central directory (or, failing that, its local header) describes it."""

    def __init__(
        self,
        name: str,
        method: int,
        flags: int,
        csize: int,
        usize: int,
        crc: int,
        header_offset: int,
        data_start: int,
        external_attr: int = 0,
        hidden: bool = False,
    ) -> None:
        self.name, self.method, self.flags = name, method, flags
        self.csize, self.usize, self.crc = csize, usize, crc
        self.header_offset, self.data_start = header_offset, data_start
        self.external_attr, self.hidden = external_attr, hidden
        self.raw_name = name.encode("utf-8", "replace")
        self.version_needed = 20

    @property
    def data_end(self) -> int:
        return self.data_start + self.csize


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8", "replace") if flags & 0x800 else raw.decode("cp437")


def _read_local(stream: IO[bytes], offset: int, archive_size: int) -> tuple | None:
    """Parse the local file header at ``offset``: (fields, name_bytes, extra, data_start)."""
    if offset < 0 or offset + 30 > archive_size:
        return None
    stream.seek(offset)
    raw = stream.read(30)
    if len(raw) < 30:
        return None
    fields = _LFH.unpack(raw)
    if fields[0] != b"PK\x03\x04":
        return None
    nlen, elen = fields[9], fields[10]
    name = stream.read(nlen)
    extra = stream.read(elen)
    return fields, name, extra, offset + 30 + nlen + elen


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + ln]
        if tag == 1:
            j = 0
            if usize == 0xFFFFFFFF and len(body) >= j + 8:
                usize = int.from_bytes(body[j : j + 8], "little")
                j += 8
            if csize == 0xFFFFFFFF and len(body) >= j + 8:
                csize = int.from_bytes(body[j : j + 8], "little")
        i += 4 + ln
    return usize, csize


_CDH = struct.Struct("<4sHHHHHHIIIHHHHHII")  # central directory file header


def _central_directory(stream: IO[bytes], size: int, max_entries: int) -> tuple[list[_Entry], int]:
    """Parse the end-of-central-directory record(s) and the central directory ourselves.

    Python's zipfile refuses archives for reasons loaders ignore (e.g. a high "version needed"),
    which is exactly what evasion relies on; this reader only needs the structure to be sane.
    Returns at most ``max_entries`` entries and the number the archive declares.
    """
    tail_len = min(size, 65535 + 22 + 20)
    stream.seek(size - tail_len)
    tail = stream.read(tail_len)
    i = tail.rfind(b"PK\x05\x06")
    while i >= 0 and i + 22 > len(tail):
        i = tail.rfind(b"PK\x05\x06", 0, i)
    if i < 0:
        raise ValueError("no end-of-central-directory record")
    eocd_pos = size - tail_len + i
    _sig, _d, _cd, _nd, n_total, cd_size, cd_off, _cl = struct.unpack("<4sHHHHIIH", tail[i : i + 22])
    zip64 = False
    if i >= 20 and tail[i - 20 : i - 16] == b"PK\x06\x07":
        loc_off = int.from_bytes(tail[i - 12 : i - 4], "little")
        if 0 <= loc_off <= size - 56:
            stream.seek(loc_off)
            rec = stream.read(56)
            if rec[:4] == b"PK\x06\x06":
                n_total = int.from_bytes(rec[32:40], "little")
                cd_size = int.from_bytes(rec[40:48], "little")
                cd_off = int.from_bytes(rec[48:56], "little")
                zip64 = True
    end_of_cd = (eocd_pos - 20 - 56) if zip64 else eocd_pos
    concat = end_of_cd - cd_size - cd_off if not zip64 else 0
    if concat < 0 or cd_off + concat < 0 or cd_off + concat + cd_size > size:
        raise ValueError("central directory lies outside the file")
    start = cd_off + concat
    stream.seek(start)
    out: list[_Entry] = []
    pos = 0
    view = Window(stream, start, cd_size)
    while pos + 46 <= cd_size and len(out) < max_entries:
        view.seek(pos)
        raw = view.read(46)
        f = _CDH.unpack(raw)
        if f[0] != b"PK\x01\x02":
            if not out:
                raise ValueError("bad central directory signature")
            break
        nlen, elen, clen = f[10], f[11], f[12]
        name_raw = view.read(nlen)
        extra = view.read(elen)
        usize, csize, offset = f[9], f[8], f[16]
        if 0xFFFFFFFF in (usize, csize, offset):
            usize, csize, offset = _zip64_central(extra, usize, csize, offset)
        e = _Entry(_decode_name(name_raw, f[3]), f[4], f[3], csize, usize, f[7], offset + concat, -1, f[15])
        e.raw_name = name_raw
        e.version_needed = f[2] & 0xFF
        out.append(e)
        pos += 46 + nlen + elen + clen
    return out, max(n_total, len(out))


def _zip64_central(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + ln]
        if tag == 1:
            j = 0
            vals = []
            for v in (usize, csize, offset):
                if v == 0xFFFFFFFF and len(body) >= j + 8:
                    vals.append(int.from_bytes(body[j : j + 8], "little"))
                    j += 8
                else:
                    vals.append(v)
            return vals[0], vals[1], vals[2]
        i += 4 + ln
    return usize, csize, offset


def _archive_kind(names: list[str]) -> str | None:
    s = set(names)
    if "config.json" in s and ({"model.weights.h5", "metadata.json", "model.weights.npz"} & s):
        return "keras"
    for n in names:
        parts = n.split("/")
        if parts[-1] == "data.pkl" and len(parts) <= 2:
            root = parts[0] + "/" if len(parts) == 2 else ""
            if any(x in s for x in (root + "byteorder", root + "version", root + ".data/version")) or any(
                m.startswith(root + "data/") for m in names
            ):
                return "pytorch"
        if parts[-1] == "constants.pkl" and any(m.endswith(".py") and "/code/" in "/" + m for m in names):
            return "torchscript"
    return None


def scan_zip(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Scan a zip archive: check every entry, then scan each member by content.

    >>> import io, zipfile
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("notes.txt", "fine")
    >>> _ = buf.seek(0)
    >>> ctx = _new_context("a.zip", None, None)
    >>> scan_zip(ctx, "a.zip", buf, len(buf.getvalue())); ctx.report_obj.findings
    []
    """
    stream = ensure_seekable(stream, size)
    base = stream.tell()
    if base:
        stream = Window(stream, base, size)
    try:
        central, n_declared = _central_directory(stream, size, ctx.limits.max_members)
    except (ValueError, OSError, EOFError, struct.error) as e:
        entries = _walk_local(stream, size, {}, ctx.limits.max_members)
        ctx.report(
            path,
            Severity.MEDIUM,
            "zip.malformed",
            f"zip central directory unreadable ({e}); scanned {len(entries)} entries found by their "
            "local headers",
        )
        for ent in entries:
            _scan_entry(ctx, path, stream, size, ent, None, {})
        return
    if n_declared > ctx.limits.max_members:
        ctx.report(
            path,
            Severity.MEDIUM,
            "scan.limit.members",
            f"zip has {n_declared} entries, more than {ctx.limits.max_members}; only the first scanned",
        )

    entries: list[_Entry] = []
    mismatches = 0
    for ent in central:
        if ent.version_needed > 63:
            ctx.report(
                f"{path}!{ent.name}",
                Severity.HIGH,
                "zip.version-trick",
                "entry claims a 'version needed to extract' no zip tool has: zipfile-based scanners refuse "
                "the archive while loaders ignore the field",
                f"version={ent.version_needed / 10:.1f}",
            )
        loc = _read_local(stream, ent.header_offset, size)
        if loc is None:
            ctx.report(
                f"{path}!{ent.name}",
                Severity.HIGH,
                "zip.header-mismatch",
                "central directory entry points at no local file header; loaders disagree on this entry",
                f"offset={ent.header_offset}",
            )
            entries.append(ent)
            continue
        fields, lname_raw, _extra, ent.data_start = loc
        lname = _decode_name(lname_raw, fields[2])
        diffs = []
        if lname_raw != ent.raw_name:
            diffs.append(f"name {lname[:60]!r} vs {ent.name[:60]!r}")
        if fields[3] != ent.method:
            diffs.append(f"method {fields[3]} vs {ent.method}")
        if (fields[2] ^ ent.flags) & 0x61:
            diffs.append(f"flags {fields[2]:#x} vs {ent.flags:#x}")
        if not fields[2] & 0x08:
            lus, lcs = _zip64_sizes(_extra, fields[8], fields[7])
            if (lcs, lus) != (ent.csize, ent.usize) and (lcs, lus) != (0, 0):
                diffs.append(f"sizes {lcs}/{lus} vs {ent.csize}/{ent.usize}")
        if diffs:
            mismatches += 1
            if mismatches <= 20:
                ctx.report(
                    f"{path}!{ent.name}",
                    Severity.HIGH,
                    "zip.header-mismatch",
                    "local file header disagrees with the central directory (a trick that makes "
                    "scanners skip or misread an entry that loaders use)",
                    "; ".join(diffs),
                )
            if lname != ent.name and _unsafe_name(lname):
                ctx.report(
                    f"{path}!{ent.name}",
                    Severity.HIGH,
                    "zip.path-traversal",
                    f"local header name would escape the extraction directory ({_unsafe_name(lname)})",
                    lname[:120],
                )
        entries.append(ent)

    names = [e.name for e in entries]
    kind = _archive_kind(names)
    seen_names: dict[str, int] = {}
    for e in entries:
        seen_names[e.name] = seen_names.get(e.name, 0) + 1
    for n, c in seen_names.items():
        if c > 1:
            ctx.report(
                f"{path}!{n}",
                Severity.MEDIUM,
                "zip.duplicate-name",
                f"{c} entries share this name: loaders and scanners may pick different ones; all "
                "were scanned",
            )

    overlapping = _overlaps(entries)
    if overlapping:
        ctx.report(
            path,
            Severity.HIGH,
            "zip.overlap",
            f"{len(overlapping)} entries overlap other entries' data (the construction of "
            "non-recursive zip bombs and of entries hidden inside others)",
            ", ".join(sorted(e.name for e in overlapping)[:5]),
        )

    known = {e.header_offset: e for e in entries}
    hidden = _walk_local(stream, size, known, ctx.limits.max_members)
    for h in hidden:
        ctx.report(
            f"{path}!{h.name}",
            Severity.MEDIUM,
            "zip.hidden-entry",
            "a local file entry that the central directory does not list: stream readers see it, "
            "most loaders do not; scanned anyway",
            f"offset={h.header_offset}",
        )

    state: dict[str, Any] = {"kind": kind, "overlap_left": OVERLAP_BUDGET, "scanned": set()}
    overlap_ids = {id(e) for e in overlapping}
    for e in entries + hidden:
        _scan_entry(ctx, path, stream, size, e, kind, state, overlap=id(e) in overlap_ids)


def _overlaps(entries: list[_Entry]) -> list[_Entry]:
    """Entries whose [local header, data end) range intersects an earlier entry's range."""
    spans = sorted((e for e in entries if e.data_start >= 0), key=lambda e: (e.header_offset, e.data_end))
    out: list[_Entry] = []
    end = -1
    for e in spans:
        if e.header_offset < end:
            out.append(e)
        end = max(end, e.data_end)
    return out


def _walk_local(stream: IO[bytes], size: int, known: dict[int, _Entry], max_entries: int) -> list[_Entry]:
    """Local entries found by walking headers from the start that ``known`` does not list."""
    out: list[_Entry] = []
    pos = 0
    steps = 0
    while pos + 30 <= size and steps < max_entries:
        steps += 1
        loc = _read_local(stream, pos, size)
        if loc is None:
            break
        fields, name_raw, extra, data_start = loc
        flags, method = fields[2], fields[3]
        usize, csize = _zip64_sizes(extra, fields[8], fields[7])
        if pos in known:
            k = known[pos]
            csize = k.csize
        elif flags & 0x08 and csize == 0:
            if method != 8:
                break  # size only in a trailing data descriptor; the stream cannot be followed
            csize = _deflate_length(stream, data_start, size)
            if csize < 0:
                break
            e = _Entry(
                _decode_name(name_raw, flags), method, flags, csize, -1, -1, pos, data_start, hidden=True
            )
            out.append(e)
        else:
            out.append(
                _Entry(
                    _decode_name(name_raw, flags),
                    method,
                    flags,
                    csize,
                    usize,
                    fields[6],
                    pos,
                    data_start,
                    hidden=True,
                )
            )
        nxt = data_start + csize
        if flags & 0x08:
            stream.seek(nxt)
            dd = stream.read(4)
            nxt += 16 if dd == b"PK\x07\x08" else 12
        if nxt <= pos:
            break
        pos = nxt
    return out


def _deflate_length(stream: IO[bytes], start: int, size: int) -> int:
    """Compressed length of a raw deflate stream starting at ``start`` (decoding is bounded)."""
    stream.seek(start)
    d = zlib.decompressobj(-15)
    consumed = 0
    produced = 0
    while not d.eof:
        data = d.unconsumed_tail or stream.read(1 << 16)
        if not data:
            return -1
        before = len(data)
        try:
            out = d.decompress(data, CHUNK)
        except zlib.error:
            return -1
        produced += len(out)
        if produced > (1 << 30):
            return -1
        consumed += before - len(d.unconsumed_tail) if not d.eof else before - len(d.unused_data)
        if d.eof:
            break
    return consumed


def _scan_entry(
    ctx: ScanContext,
    path: str,
    stream: IO[bytes],
    size: int,
    e: _Entry,
    kind: str | None,
    state: dict[str, Any],
    overlap: bool = False,
) -> None:
    mpath = f"{path}!{e.name}"
    why = _unsafe_name(e.name)
    if why:
        ctx.report(
            mpath,
            Severity.HIGH,
            "zip.path-traversal",
            f"member name would escape the extraction directory ({why})",
            e.name[:120],
        )
    if e.name.endswith("/") and e.csize == 0:
        return
    if e.data_start < 0:
        return
    if e.data_end > size:
        ctx.report(
            mpath,
            Severity.MEDIUM,
            "zip.truncated",
            "member data runs past the end of the archive; not scanned",
            f"end={e.data_end} size={size}",
        )
        return
    mode = (e.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        target = Window(stream, e.data_start, min(e.csize, 4096)).read() if e.method == 0 else b""
        t = target.decode("utf-8", "replace")
        sev = Severity.HIGH if t and _unsafe_name(t) else Severity.LOW
        ctx.report(
            mpath,
            sev,
            "zip.symlink",
            "member is a symbolic link" + (" pointing outside the archive" if sev == Severity.HIGH else ""),
            t[:120],
        )
        return
    key = (e.data_start, e.method, e.csize)
    if key in state.get("scanned", set()):
        return  # several entries share the same data: scanned once
    state.setdefault("scanned", set()).add(key)
    if kind in ("pytorch",) and _TORCH_STORAGE.match(e.name) and not (e.flags & 0x61):
        ctx.record_file(mpath, "tensor-data", e.usize if e.usize >= 0 else e.csize)
        return
    if kind == "torchscript" and e.name.endswith(".py") and "/code/" in "/" + e.name:
        state.setdefault("ts_noted", False)
        if not state["ts_noted"]:
            state["ts_noted"] = True
            ctx.report(
                path,
                Severity.INFO,
                "torch.torchscript",
                "TorchScript archive: its code/ is compiled and run by torch.jit.load",
            )

    # declared sizes first: a bomb is refused before a byte is inflated
    if e.method != 0 and e.usize >= 0:
        if e.usize > ctx.limits.max_member_size:
            _bomb(ctx, mpath, ctx.limits.max_member_size, "size", e.csize)
            return
        if e.usize > RATIO_FLOOR and e.usize > ctx.limits.max_ratio * max(e.csize, 1):
            _bomb(ctx, mpath, int(ctx.limits.max_ratio * max(e.csize, 1)), "ratio", e.csize)
            return

    flagged = bool(e.flags & 0x41) or bool(e.flags & 0x20)
    raw = Window(stream, e.data_start, e.csize)
    if e.method == 0:
        if e.usize >= 0 and e.usize != e.csize:
            ctx.report(
                mpath,
                Severity.MEDIUM,
                "zip.size-mismatch",
                "stored member: declared size differs from the stored size",
                f"{e.usize} vs {e.csize}",
            )
        if flagged:
            head = raw.read(HEAD)
            raw.seek(0)
            if detect(head, e.name) in ("unknown", "empty"):
                ctx.report(
                    mpath,
                    Severity.MEDIUM,
                    "zip.encrypted",
                    "encrypted member: its content cannot be scanned",
                    f"flags={e.flags:#x}",
                )
                return
            ctx.report(
                mpath,
                Severity.HIGH,
                "zip.flag-mismatch",
                "member is flagged encrypted/patched but its content is plain: a flag-bit trick that "
                "makes scanners skip what loaders read",
                f"flags={e.flags:#x}",
            )
        _dispatch_member(ctx, mpath, raw, e.csize, e.name, kind)
        return

    codec = {8: "deflate", 12: "bz2", 14: "zip-lzma", 93: "zstd", 95: "xz"}.get(e.method)
    if codec is None:
        ctx.report(
            mpath,
            Severity.MEDIUM,
            "zip.unsupported-method",
            f"compression method {e.method} is not supported; member not scanned",
        )
        return
    limit, reason = budget_for(ctx, e.csize)
    if e.usize >= 0 and e.usize < limit:
        limit, reason = e.usize, "declared"
    if overlap:
        left = state.get("overlap_left", OVERLAP_BUDGET)
        if left <= 0:
            return
        if limit > left:
            limit, reason = left, "overlap"
    crc: list[int] = []
    try:
        f, n = spool_chunks(decompress_chunks(codec, raw.read, multi=False), limit, reason, crc)
    except BudgetExceeded as b:
        if b.reason == "declared":
            ctx.report(
                mpath,
                Severity.HIGH,
                "zip.size-mismatch",
                "member decompresses to more than its declared size (a bomb or a parser-confusion "
                "trick); not scanned",
                f"declared={e.usize}",
            )
        elif b.reason == "overlap":
            ctx.report(
                mpath,
                Severity.HIGH,
                "scan.bomb",
                "overlapping entries decompress to more than the overlap budget; rest not scanned",
            )
            state["overlap_left"] = 0
        else:
            _bomb(ctx, mpath, b.limit, b.reason, e.csize)
        return
    except (EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as ex:
        if flagged:
            ctx.report(
                mpath,
                Severity.MEDIUM,
                "zip.encrypted",
                "encrypted member: its content cannot be scanned",
                f"flags={e.flags:#x}",
            )
        else:
            ctx.report(
                mpath, Severity.MEDIUM, "zip.corrupt-member", f"member could not be decompressed: {ex}"
            )
        return
    if overlap:
        state["overlap_left"] = state.get("overlap_left", OVERLAP_BUDGET) - n
    with f:
        if flagged:
            ctx.report(
                mpath,
                Severity.HIGH,
                "zip.flag-mismatch",
                "member is flagged encrypted/patched but decompresses as plain data: a flag-bit trick "
                "that makes scanners skip what loaders read",
                f"flags={e.flags:#x}",
            )
        if e.crc >= 0 and crc and crc[0] != e.crc:
            ctx.report(
                mpath,
                Severity.MEDIUM,
                "zip.crc-mismatch",
                "member's CRC-32 does not match its data",
                f"{crc[0]:08x} vs {e.crc:08x}",
            )
        if e.usize >= 0 and n != e.usize:
            ctx.report(
                mpath,
                Severity.MEDIUM,
                "zip.size-mismatch",
                "member decompresses to fewer bytes than declared",
                f"{n} vs {e.usize}",
            )
        _dispatch_member(ctx, mpath, f, n, e.name, kind)


def _dispatch_member(ctx: ScanContext, mpath: str, f: IO[bytes], n: int, name: str, kind: str | None) -> None:
    if kind == "keras" and name == "config.json":
        from mlflow_plugin.scanner.keras_scan import check_keras_config_bytes

        data = f.read(KERAS_CONFIG_MAX + 1)
        f.seek(0)
        if len(data) > KERAS_CONFIG_MAX:
            ctx.report(mpath, Severity.MEDIUM, "keras.config", "Keras config.json too large to check")
        else:
            check_keras_config_bytes(ctx, mpath, data, "keras")
    ctx.scan_member(mpath, f, n)


# --------------------------------------------------------------------------- tar


class _NoSeek(io.RawIOBase):
    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self.f = f

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def readinto(self, b: Any) -> int:
        data = self.f.read(len(b))
        b[: len(data)] = data
        return len(data)


def scan_tar(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Scan a tar archive as a stream: unsafe names, links, special files, then every member.

    >>> import io, tarfile
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> buf = io.BytesIO()
    >>> with tarfile.open(fileobj=buf, mode="w") as t:
    ...     ti = tarfile.TarInfo("link"); ti.type = tarfile.SYMTYPE; ti.linkname = "/etc/passwd"
    ...     t.addfile(ti)
    >>> _ = buf.seek(0); ctx = _new_context("a.tar", None, None)
    >>> scan_tar(ctx, "a.tar", buf, len(buf.getvalue())); [f.rule for f in ctx.report_obj.findings]
    ['tar.link-escape']
    """
    try:
        tf = tarfile.open(fileobj=stream, mode="r|")  # type: ignore[call-overload]  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError) as e:
        ctx.report(path, Severity.MEDIUM, "tar.malformed", f"tar archive could not be read: {e}")
        return
    count = 0
    try:
        for m in tf:
            tf.members = []  # streaming: do not keep every header in memory
            count += 1
            if count > ctx.limits.max_members:
                ctx.report(
                    path,
                    Severity.MEDIUM,
                    "scan.limit.members",
                    f"tar has more than {ctx.limits.max_members} entries; the rest not scanned",
                )
                break
            mpath = f"{path}!{m.name}"
            why = _unsafe_name(m.name)
            if why:
                ctx.report(
                    mpath,
                    Severity.HIGH,
                    "tar.path-traversal",
                    f"member name would escape the extraction directory ({why})",
                    m.name[:120],
                )
            if m.issym() or m.islnk():
                target = m.linkname
                if m.issym():
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), target))
                else:
                    resolved = posixpath.normpath(target)
                if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                    ctx.report(
                        mpath,
                        Severity.HIGH,
                        "tar.link-escape",
                        f"{'symbolic' if m.issym() else 'hard'} link points outside the archive",
                        target[:120],
                    )
                continue
            if m.ischr() or m.isblk() or m.isfifo():
                ctx.report(
                    mpath,
                    Severity.MEDIUM,
                    "tar.special-file",
                    "device or FIFO entry (never part of a model)",
                    f"type={m.type!r}",
                )
                continue
            if not m.isfile():
                continue
            if m.mode & (stat.S_ISUID | stat.S_ISGID):
                ctx.report(
                    mpath, Severity.LOW, "tar.setuid", "file has the setuid/setgid bit", f"mode={m.mode:o}"
                )
            if m.size > ctx.limits.max_member_size:
                ctx.report(
                    mpath,
                    Severity.MEDIUM,
                    "scan.limit.size",
                    f"member is larger than {ctx.limits.max_member_size} bytes; not scanned",
                )
                continue
            f = tf.extractfile(m)
            if f is None:
                continue
            if m.size <= SPOOL_MEM:
                data = f.read(m.size)
                if len(data) < m.size:
                    ctx.report(mpath, Severity.MEDIUM, "tar.truncated", "member data is truncated")
                ctx.scan_member(mpath, io.BytesIO(data), len(data))
            else:
                ctx.scan_member(mpath, _NoSeek(f), m.size)  # type: ignore[arg-type]
    except (tarfile.TarError, OSError, EOFError) as e:
        ctx.report(path, Severity.MEDIUM, "tar.malformed", f"tar archive is truncated or corrupt: {e}")


# --------------------------------------------------------------------------- gzip / bz2 / xz / zstd

_SUFFIXES = {
    ".gz": "",
    ".tgz": ".tar",
    ".bz2": "",
    ".tbz2": ".tar",
    ".tbz": ".tar",
    ".xz": "",
    ".txz": ".tar",
    ".zst": "",
    ".zstd": "",
    ".tzst": ".tar",
    ".lzma": "",
}


def _inner_name(path: str) -> str:
    last = path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    low = last.lower()
    for suf, repl in _SUFFIXES.items():
        if low.endswith(suf) and len(last) > len(suf):
            return last[: -len(suf)] + repl
    return "<decompressed>"


_STREAM_KINDS = frozenset({"gzip", "bz2", "xz", "zstd", "zlib", "lzma"})


def _kind_of(head: bytes) -> str | None:
    """The single-stream compression of ``head`` (the one detector in detect.py decides)."""
    from mlflow_plugin.scanner.detect import detect

    kind = detect(head)
    return kind if kind in _STREAM_KINDS else None


def scan_compressed(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Decompress a gzip/bz2/xz/zstd/zlib/lzma stream under a byte budget and scan what it holds.

    The member is named after the file without its suffix (``data.csv.gz!data.csv``), or
    ``<decompressed>`` when there is no known suffix.

    >>> import gzip, io
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> blob = gzip.compress(b"a,b\\n1,2\\n")
    >>> ctx = _new_context("d.csv.gz", None, None)
    >>> scan_compressed(ctx, "d.csv.gz", io.BytesIO(blob), len(blob))
    >>> [(r.path, r.format) for r in ctx.report_obj.files]
    [('d.csv.gz!d.csv', 'text')]
    """
    stream = ensure_seekable(stream, size)
    start = stream.tell()
    kind = _kind_of(stream.read(64))
    stream.seek(start)
    if kind is None:
        ctx.report(path, Severity.MEDIUM, "compressed.malformed", "not a gzip/bz2/xz/zstd/zlib/lzma stream")
        return
    mpath = f"{path}!{_inner_name(path)}"
    limit, reason = budget_for(ctx, size)
    info = _Trailer()
    n = 0
    mem: list[bytes] | None = []
    error: str | None = None
    try:
        for b in decompress_chunks(kind, stream.read, info):
            n += len(b)
            if n > limit:
                raise BudgetExceeded(limit, reason)
            if mem is not None:
                if n <= SPOOL_MEM:
                    mem.append(b)
                else:
                    mem = None
    except BudgetExceeded as b:
        _bomb(ctx, mpath, b.limit, b.reason, size)
        return
    except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as e:
        error = str(e)
    if error:
        ctx.report(
            mpath,
            Severity.MEDIUM,
            "compressed.truncated",
            f"{kind} stream is truncated or corrupt ({error[:120]}); the {n} bytes decoded were scanned",
        )
    if info.trailing:
        ctx.report(
            path,
            Severity.LOW,
            "compressed.trailing-data",
            f"{info.trailing} bytes follow the compressed data (ignored by decompressors)",
        )
    if mem is not None:
        ctx.scan_member(mpath, io.BytesIO(b"".join(mem)), n)
        return
    stream.seek(start)
    reader = _Sequential(_quiet(decompress_chunks(kind, stream.read)), limit=n)
    ctx.scan_member(mpath, reader, n)  # type: ignore[arg-type]


def _quiet(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError):
        return


# --------------------------------------------------------------------------- 7z


def scan_7z(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Scan a 7z archive with py7zr, each member decompressed under a byte budget.

    Without py7zr this is a MEDIUM ``scan.unsupported`` finding.
    """
    try:
        import py7zr
        from py7zr.io import Py7zIO, WriterFactory
    except ImportError:
        ctx.report(
            path,
            Severity.MEDIUM,
            "scan.unsupported",
            "7z archive: py7zr is not installed, its members were not scanned",
            "py7zr missing",
        )
        return
    stream = ensure_seekable(stream, size)
    try:
        szf = py7zr.SevenZipFile(stream, mode="r")  # type: ignore[arg-type]
    except py7zr.exceptions.PasswordRequired:
        ctx.report(path, Severity.MEDIUM, "7z.encrypted", "encrypted 7z archive: members cannot be scanned")
        return
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # py7zr raises a variety of errors on hostile headers
        ctx.report(
            path, Severity.MEDIUM, "7z.malformed", f"7z archive could not be read: {type(e).__name__}: {e}"
        )
        return
    with szf:
        if szf.needs_password():
            ctx.report(
                path, Severity.MEDIUM, "7z.encrypted", "encrypted 7z archive: members cannot be scanned"
            )
            return
        infos = szf.list()
        if len(infos) > ctx.limits.max_members:
            ctx.report(
                path,
                Severity.MEDIUM,
                "scan.limit.members",
                f"7z has {len(infos)} entries, more than {ctx.limits.max_members}; not scanned",
            )
            return
        targets = []
        declared = 0
        for fi in infos:
            why = _unsafe_name(fi.filename)
            if why:
                ctx.report(
                    f"{path}!{fi.filename}",
                    Severity.HIGH,
                    "7z.path-traversal",
                    f"member name would escape the extraction directory ({why}); not scanned",
                    fi.filename[:120],
                )
                continue
            if fi.is_symlink:
                ctx.report(f"{path}!{fi.filename}", Severity.LOW, "7z.symlink", "member is a symbolic link")
                continue
            if fi.is_directory:
                continue
            if fi.uncompressed > ctx.limits.max_member_size:
                _bomb(ctx, f"{path}!{fi.filename}", ctx.limits.max_member_size, "size", fi.compressed or 0)
                continue
            declared += fi.uncompressed
            targets.append(fi.filename)
        if declared > RATIO_FLOOR and declared > ctx.limits.max_ratio * max(size, 1):
            _bomb(ctx, path, int(ctx.limits.max_ratio * max(size, 1)), "ratio", size)
            return
        if not targets:
            return
        limit, reason = budget_for(ctx, size)

        class _Sink(Py7zIO):
            def __init__(self, name: str, state: dict[str, Any]) -> None:
                self.name, self.state = name, state
                self.f: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEM)  # noqa: SIM115
                self.n = 0

            def write(self, s: bytes | bytearray) -> int:
                self.n += len(s)
                self.state["total"] += len(s)
                if self.state["total"] > limit:
                    raise BudgetExceeded(limit, reason)
                return self.f.write(s)

            def read(self, size: int | None = None) -> bytes:
                return self.f.read(-1 if size is None else size)

            def seek(self, offset: int, whence: int = 0) -> int:
                return self.f.seek(offset, whence)

            def flush(self) -> None:
                self.f.flush()

            def size(self) -> int:
                return self.n

            def close(self) -> None:
                if self.f.closed:
                    return
                self.f.seek(0)
                try:
                    ctx.scan_member(f"{path}!{self.name}", self.f, self.n)
                finally:
                    self.f.close()

        class _Factory(WriterFactory):
            def __init__(self) -> None:
                self.state: dict[str, Any] = {"total": 0}
                self.sinks: list[_Sink] = []

            def create(self, filename: str) -> Py7zIO:
                s = _Sink(filename, self.state)
                self.sinks.append(s)
                return s

        fac = _Factory()
        try:
            szf.extract(targets=targets, factory=fac)
        except BudgetExceeded as b:
            _bomb(ctx, path, b.limit, b.reason, size)
        except (MemoryError, RecursionError):
            raise
        except Exception as e:
            ctx.report(
                path,
                Severity.MEDIUM,
                "7z.malformed",
                f"7z members could not be decompressed: {type(e).__name__}: {e}",
            )
        finally:
            for s in fac.sinks:
                if not s.f.closed:
                    s.f.close()
