"""Write a file beside its destination, then rename it into place: readers never see half a file,
and a failure leaves nothing behind.

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> with temp_beside(d, ".part-") as t:
...     _ = t.file.write(b"hello")
...     t.commit(os.path.join(d, "greeting"))
>>> open(os.path.join(d, "greeting"), "rb").read(), sorted(os.listdir(d))
(b'hello', ['greeting'])
>>> try:
...     with temp_beside(d, ".part-") as t:
...         _ = t.file.write(b"half")
...         raise ValueError("stopped")
... except ValueError:
...     pass
>>> sorted(os.listdir(d))
['greeting']
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO


class TempFile:
    """An open temporary file (``file``, ``path``) that :meth:`commit` renames to its destination."""

    def __init__(self, file: IO[bytes], path: str) -> None:
        self.file = file
        self.path = path
        self.committed = False

    def commit(self, dest: str, mode: int = 0o644, fsync: bool = False) -> None:
        """Flush (and ``fsync`` if asked), close, set ``mode``, rename onto ``dest`` atomically."""
        self.file.flush()
        if fsync:
            os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.path, mode)
        os.replace(self.path, dest)
        self.committed = True


@contextlib.contextmanager
def temp_beside(directory: str, prefix: str) -> Iterator[TempFile]:
    """A :class:`TempFile` in ``directory`` (same file system as the destination); removed unless
    committed, whatever happens in the block."""
    fd, path = tempfile.mkstemp(prefix=prefix, dir=directory)
    t = TempFile(os.fdopen(fd, "wb"), path)
    try:
        yield t
    finally:
        if not t.committed:
            t.file.close()
            with contextlib.suppress(OSError):
                os.unlink(path)


def create_exclusive(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file created with ``mode`` (O_EXCL: never follows or replaces
    anything; key files)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have removed bits; make the mode exact
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    finally:
        os.close(fd)
