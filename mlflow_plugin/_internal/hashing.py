"""Hash on a background thread so hashing overlaps with reading and sending.

>>> import hashlib
>>> w = HashWorker()
>>> h = hashlib.sha256()
>>> w.update(h, b"a" * 300_000); w.update(h, b"bc")
>>> w.join(); h.hexdigest() == hashlib.sha256(b"a" * 300_000 + b"bc").hexdigest()
True

``hashlib`` releases the GIL for large buffers, so on a multi-core machine an upload that hashes
inline runs at the speed of the network or the registry instead of network + hash. Updates are
applied in submission order; small buffers are hashed inline (queueing them costs more).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any

INLINE_BELOW = 256 << 10


class HashWorker:
    """One background thread applying ``hasher.update(data)`` calls in order; bounded queue."""

    def __init__(self, depth: int = 16) -> None:
        self._q: queue.Queue[tuple[Any, bytes] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._pending = False

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    item[0].update(item[1])
            except BaseException as e:
                self._error = e
            finally:
                self._q.task_done()

    def update(self, hasher: Any, data: bytes) -> None:
        """Queue ``hasher.update(data)`` (or run it now for small data when nothing is queued)."""
        if len(data) < INLINE_BELOW and not self._pending:
            hasher.update(data)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelkit-hash", daemon=True)
            self._thread.start()
        self._pending = True
        self._q.put((hasher, bytes(data)))

    def join(self) -> None:
        """Wait until every queued update ran (re-raises a failure). The worker stays usable."""
        if self._thread is not None:
            self._q.join()
        self._pending = False
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the thread (after the queued updates)."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
            self._thread = None


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces (the one file hasher of the package).

    >>> import os, tempfile
    >>> fd, p = tempfile.mkstemp(); os.write(fd, b"abc"); os.close(fd)
    3
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    >>> os.unlink(p)
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()
