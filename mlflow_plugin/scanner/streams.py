"""Stream helpers shared by the scanners: random access on demand, bounded spooling.

>>> import io
>>> ensure_seekable(io.BytesIO(b"abc"), 3).read()
b'abc'
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

SPOOL_MEM = 32 << 20  # spooled copies up to this size stay in memory, larger ones go to a temp file
CHUNK = 1 << 20


def is_seekable(stream: Any) -> bool:
    """True if ``stream`` supports random access (never raises)."""
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def ensure_seekable(stream: IO[bytes], size: int) -> IO[bytes]:
    """``stream`` itself if seekable, else a spooled copy of at most ``size`` bytes."""
    if is_seekable(stream):
        return stream
    f: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEM, prefix="modelkit-scan-")  # noqa: SIM115
    left = max(size, 0)
    while left > 0:
        b = stream.read(min(CHUNK, left))
        if not b:
            break
        f.write(b)
        left -= len(b)
    f.seek(0)
    return f
