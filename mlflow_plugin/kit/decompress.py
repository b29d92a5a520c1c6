"""Bounded, streaming decompression of kit layers (gzip, zstd or none).

>>> import gzip, io
>>> blob = gzip.compress(b"hello " * 1000)
>>> with DecompressingReader(io.BytesIO(blob), "gzip", layer="sha256:abc") as r:
...     r.read(6), len(r.read())
(b'hello ', 5994)

Time is linear: output is inflated in chunks of at most :data:`OUT_CHUNK` bytes (zlib's
``max_length``, zstd's bounded stream reader) and handed out by offset, never re-copied. Memory
is bounded: a helper thread reads, hashes and decompresses at most :data:`PREFETCH` chunks ahead
of the consumer (the codecs release the GIL, so this overlaps with tar parsing and file writes).
Every chunk is charged to a :class:`Budget` (total output of one unpack, shared by all its
layers) and checked against the layer's decompressed/compressed ratio, so a bomb is refused
after a few MiB of work instead of filling the disk:

>>> bomb = gzip.compress(bytes(64 << 20))
>>> r = DecompressingReader(io.BytesIO(bomb), "gzip", UnpackLimits(max_ratio=100), layer="sha256:abc")
>>> r.read()
Traceback (most recent call last):
...
mlflow_plugin.errors.LimitExceededError: layer sha256:abc decompresses to more than 100 times ... = 100); ...

Close the reader (or use it as a context manager) before reading ``raw`` yourself: closing stops
the helper thread, which may have read ahead.

Most of the remaining per-byte cost is outside this module: tarfile's stream mode copies every
member twice into fresh ~1 MiB buffers. glibc returns such buffers to the kernel as soon as more
than twice its (adaptive) mmap threshold is free, so every MiB unpacked page-faulted ~3 MiB of
fresh memory (a third of the CPU time of a zstd layer). The first reader in a process therefore
frees one :data:`ALLOCATOR_WARMUP`-byte buffer, which raises that adaptive threshold exactly as
any program that once freed such a buffer does: big transient buffers are then reused.
"""

from __future__ import annotations

import io
import queue
import threading
import zlib
from typing import Any

from mlflow_plugin.errors import LimitExceededError, ModelKitError, UnsafeArchiveError
from mlflow_plugin.kit.limits import DEFAULT_LIMITS, UnpackLimits

OUT_CHUNK = 1 << 20  # decompressed bytes produced per step
IN_CHUNK = 1 << 16  # compressed bytes read per step (small: zlib copies its unconsumed tail)
PREFETCH = 4  # output chunks decompressed ahead of the consumer (0: decompress on the caller's thread)
ALLOCATOR_WARMUP = 8 << 20  # see the module docstring

_warmed = False


def _warm_allocator() -> None:
    """Free one big buffer so glibc's adaptive mmap/trim thresholds cover unpack's ~1 MiB buffers."""
    global _warmed
    if not _warmed:
        _warmed = True
        buf = bytes(ALLOCATOR_WARMUP)  # above the initial threshold: mmap'ed, then freed
        del buf


_ADVICE = "raise it in the admin config if this kit is trusted"


def human_size(n: int) -> str:
    """``1073741824`` → ``'1.0 GiB'``."""
    f = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if f < 1024:
            return f"{n} B" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return f"{f:.1f} TiB"


class Budget:
    """Decompressed bytes one unpack may produce, shared by all its layers (``max_unpack_bytes``).

    >>> b = Budget(UnpackLimits(max_bytes=10))
    >>> b.charge(6, "sha256:a"); b.charge(4, "sha256:b"); b.used
    10
    >>> b.charge(1, "sha256:b")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.LimitExceededError: layer sha256:b brings the kit past 10 B decompressed ...
    """

    def __init__(self, limits: UnpackLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.used = 0
        self._first: str | None = None

    def charge(self, n: int, layer: str) -> None:
        """Account ``n`` more output bytes of ``layer``; raises once the total passes the limit."""
        if self._first is None:
            self._first = layer
        self.used += n
        limit = self.limits.max_bytes
        if self.used > limit:
            what = (
                f"decompresses to more than {human_size(limit)}"
                if layer == self._first
                else f"brings the kit past {human_size(limit)} decompressed"
            )
            raise LimitExceededError(
                f"layer {layer} {what} (limit [limits] max_unpack_bytes = {limit}); {_ADVICE}"
            )


class _CountingSource:
    """What zstd's stream reader reads from: counts compressed bytes for the ratio check."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.n = 0

    def read(self, n: int = -1) -> bytes:
        b = self.raw.read(n)
        self.n += len(b)
        return b


class _Inflater:
    """Produces a layer's output chunk by chunk (≤ :data:`OUT_CHUNK` each), limits enforced."""

    def __init__(self, raw: Any, compression: str, limits: UnpackLimits, layer: str, budget: Budget) -> None:
        self.raw = raw
        self.compression = compression
        self.limits = limits
        self.layer = layer
        self.budget = budget
        self.bytes_out = 0
        self.bytes_in = 0  # compressed bytes read (gzip / none)
        self.z: Any = None
        self.zsrc: _CountingSource | None = None
        self.zr: Any = None
        if compression == "gzip":
            self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif compression == "zstd":
            import zstandard

            self.zerror: Any = zstandard.ZstdError
            self.zsrc = _CountingSource(raw)
            self.zr = zstandard.ZstdDecompressor().stream_reader(
                self.zsrc, read_size=IN_CHUNK, read_across_frames=True, closefd=False
            )
        elif compression != "none":
            raise ModelKitError(f"unsupported layer compression {compression!r}")

    @property
    def held(self) -> int:
        """Compressed input held back by zlib."""
        z = self.z
        return len(z.unconsumed_tail) + len(z.unused_data) if z is not None else 0

    def next_chunk(self) -> bytes:
        """The next output chunk, ``b""`` at the end of the stream."""
        if self.z is not None:
            out = self._inflate()
        elif self.zr is not None:
            try:
                out = self.zr.read(OUT_CHUNK)
            except self.zerror as e:
                raise UnsafeArchiveError(f"layer {self.layer} is not valid zstd data: {e}") from None
        else:
            out = self.raw.read(OUT_CHUNK)
            self.bytes_in += len(out)
        if out:
            self._account(len(out))
        return out

    def _inflate(self) -> bytes:
        """Next non-empty gzip output chunk (multi-member streams like ``gzip -dc``), or b""."""
        while True:
            z = self.z
            if z.eof:
                data = z.unused_data or self._read_raw()
                if not data:
                    return b""
                if len(data) < 2:
                    data += self._read_raw()
                if data[:2] != b"\x1f\x8b":
                    raise UnsafeArchiveError(
                        f"layer {self.layer} is not valid gzip data: trailing garbage after the stream"
                    )
                z = self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                # b"" at the end of the input still flushes output zlib held back (max_length)
                data = z.unconsumed_tail or self._read_raw()
            try:
                out = z.decompress(data, OUT_CHUNK)
            except zlib.error as e:
                raise UnsafeArchiveError(f"layer {self.layer} is not valid gzip data: {e}") from None
            if out:
                return out
            if not data and not z.eof:
                raise UnsafeArchiveError(f"layer {self.layer} is truncated (gzip data ends early)")

    def _read_raw(self) -> bytes:
        b = self.raw.read(IN_CHUNK)
        self.bytes_in += len(b)
        return b

    def _account(self, n: int) -> None:
        self.bytes_out += n
        self.budget.charge(n, self.layer)
        lim = self.limits
        if self.bytes_out <= lim.ratio_grace or self.compression == "none":
            return
        consumed = self.zsrc.n if self.zsrc is not None else self.bytes_in - self.held
        if self.bytes_out > lim.max_ratio * max(consumed, 1):
            raise LimitExceededError(
                f"layer {self.layer} decompresses to more than {lim.max_ratio} times its compressed "
                f"size: {human_size(self.bytes_out)} from {human_size(consumed)} so far "
                f"(limit [limits] max_unpack_ratio = {lim.max_ratio}); {_ADVICE}"
            )


def _pump(inf: _Inflater, q: queue.Queue[Any], stop: threading.Event) -> None:
    """Helper thread: put output chunks, then ``b""`` or the exception; quit when ``stop`` is set."""
    try:
        while True:
            out = inf.next_chunk()
            q.put(out)  # blocks while PREFETCH chunks wait; close() drains the queue
            if not out or stop.is_set():
                return
    except BaseException as e:  # delivered to the consumer, raised there
        q.put(e)


class DecompressingReader(io.RawIOBase):
    """Read-only file object over a layer blob that decompresses ``gzip``/``zstd`` (or passes
    ``none`` through) with bounded memory, linear time and the :class:`UnpackLimits` enforced.

    ``layer`` names the layer in errors (its digest). ``budget`` is shared by the layers of one
    unpack (one is made from ``limits`` if not given). ``read(n)`` returns ``n`` bytes unless the
    stream ends, like a buffered file. ``prefetch`` output chunks are decompressed ahead on a
    helper thread (``0``: none, all work on the caller's thread). :meth:`close` stops the helper;
    it does not close ``raw``. Invalid data raises :class:`UnsafeArchiveError`; a limit,
    :class:`LimitExceededError`.
    """

    def __init__(
        self,
        raw: Any,
        compression: str,
        limits: UnpackLimits | None = None,
        layer: str = "(unnamed)",
        budget: Budget | None = None,
        prefetch: int = PREFETCH,
    ) -> None:
        super().__init__()
        _warm_allocator()
        if limits is None:
            limits = budget.limits if budget is not None else DEFAULT_LIMITS
        self.limits = limits
        self.budget = budget if budget is not None else Budget(limits)
        self.layer = layer
        self.compression = compression
        self._inf = _Inflater(raw, compression, limits, layer, self.budget)
        self._prefetch = prefetch
        self._q: queue.Queue[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buf = b""  # current output chunk, handed out from self._pos
        self._pos = 0
        self._eof = False

    @property
    def bytes_out(self) -> int:
        """Decompressed bytes produced so far (including prefetched ones)."""
        return self._inf.bytes_out

    @property
    def buffered(self) -> int:
        """Upper bound of the bytes held right now (pending and prefetched output, zlib's input)."""
        queued = self._q.qsize() * OUT_CHUNK if self._q is not None else 0
        helper = OUT_CHUNK if self._thread is not None and self._thread.is_alive() else 0
        return len(self._buf) - self._pos + queued + helper + self._inf.held

    # ---- io protocol ------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail >= n:  # the hot path (tarfile reads 10 KiB at a time): one slice, no re-copy
            if pos == 0 and avail == n:
                self._buf = b""
                return buf
            self._pos = pos + n
            return buf[pos : pos + n]
        parts = [buf[pos:] if pos else buf] if avail else []
        got = avail
        self._buf, self._pos = b"", 0
        while got < n and self._fill():
            take = min(n - got, len(self._buf))
            if take == len(self._buf):
                parts.append(self._buf)
                self._buf = b""
            else:
                parts.append(self._buf[:take])
                self._pos = take
            got += take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read1(self, n: int = -1) -> bytes:
        """At most ``n`` bytes (all of the current chunk if ``n < 0``), one chunk at most."""
        if self._pos >= len(self._buf) and not self._fill():
            return b""
        buf, pos = self._buf, self._pos
        if n is None or n < 0:
            n = len(buf) - pos
        out = buf if pos == 0 and n >= len(buf) else buf[pos : pos + n]
        self._pos = pos + len(out)
        return out

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        data = self.read1(len(mv))
        mv[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        parts = []
        while True:
            b = self.read1()
            if not b:
                return b"".join(parts)
            parts.append(b)

    def close(self) -> None:
        """Stop the helper thread (it finishes at most one chunk) and drop buffered output."""
        self._shutdown()
        self._buf = b""
        super().close()

    # ---- chunks -----------------------------------------------------------------------------
    def _fill(self) -> bool:
        """Replace the (consumed) buffer with the next output chunk; False at end of stream."""
        if self._eof:
            return False
        try:
            out = self._next_prefetched() if self._prefetch > 0 else self._inf.next_chunk()
        except BaseException:
            self._eof = True
            self._shutdown()
            raise
        if not out:
            self._eof = True
            self._shutdown()
        self._buf, self._pos = out, 0
        return bool(out)

    def _next_prefetched(self) -> bytes:
        if self._thread is None:
            self._q = queue.Queue(maxsize=self._prefetch)
            self._thread = threading.Thread(
                target=_pump, args=(self._inf, self._q, self._stop), name="modelkit-inflate", daemon=True
            )
            self._thread.start()
        assert self._q is not None
        item = self._q.get()
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[no-any-return]

    def _shutdown(self) -> None:
        t = self._thread
        if t is None:
            return
        self._stop.set()
        q = self._q
        assert q is not None
        while t.is_alive():
            try:
                while True:
                    q.get_nowait()  # unblock a helper waiting to put
            except queue.Empty:
                pass
            t.join(0.05)
        self._thread = None
