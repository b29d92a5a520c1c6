"""Remember layer digests of unchanged local trees (a git-index-style quick check).

>>> cache = StatCache(":memory:")
>>> cache.put("sig", {"digest": "sha256:ab", "size": 3})
>>> cache.get("sig")["digest"]
'sha256:ab'

Re-logging a 2 GiB directory that did not change should not re-read 2 GiB. The key is a hash
of every entry's path, size, mode, inode, device, mtime and ctime (ctime cannot be set back by
ordinary tools), so any modification misses the cache and the content is hashed again. Set
``MLFLOW_MODELKIT_STAT_CACHE=0`` to disable it; the cache lives in
``$XDG_CACHE_HOME/mlflow-modelkit/statcache.sqlite`` (``~/.cache/...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from typing import Any

_LOCK = threading.Lock()
_DEFAULT: StatCache | None = None


def enabled() -> bool:
    return os.environ.get("MLFLOW_MODELKIT_STAT_CACHE", "1").lower() not in ("0", "false", "no", "off")


def default_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlflow-modelkit", "statcache.sqlite")


def signature(items: list[tuple[str, str, os.stat_result | None]], extra: str = "") -> str:
    """Key for a list of ``(tar name, absolute path, raw stat)`` entries."""
    h = hashlib.sha256(extra.encode())
    for name, path, st in items:
        if st is None:
            h.update(f"D\0{name}\n".encode())
        else:
            h.update(
                f"F\0{name}\0{path}\0{st.st_size}\0{st.st_mode}\0{st.st_ino}\0{st.st_dev}\0"
                f"{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode("utf-8", "surrogateescape")
            )
    return h.hexdigest()


class StatCache:
    """A tiny sqlite key/value store; every failure degrades to a cache miss."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None:
            try:
                if self.path != ":memory:":
                    os.makedirs(os.path.dirname(self.path), exist_ok=True)
                db = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS layers (sig TEXT PRIMARY KEY, value TEXT)")
                db.commit()
                self._db = db
            except (sqlite3.Error, OSError):
                return None
        return self._db

    def get(self, sig: str) -> dict[str, Any] | None:
        with _LOCK:
            db = self._conn()
            if db is None:
                return None
            try:
                row = db.execute("SELECT value FROM layers WHERE sig = ?", (sig,)).fetchone()
            except sqlite3.Error:
                return None
        return json.loads(row[0]) if row else None

    def put(self, sig: str, value: dict[str, Any]) -> None:
        with _LOCK:
            db = self._conn()
            if db is None:
                return
            with contextlib.suppress(sqlite3.Error):
                db.execute(
                    "INSERT OR REPLACE INTO layers (sig, value) VALUES (?, ?)", (sig, json.dumps(value))
                )
                db.commit()


def default() -> StatCache | None:
    """The per-user cache, or None when disabled."""
    global _DEFAULT
    if not enabled():
        return None
    if _DEFAULT is None or _DEFAULT.path != default_path():
        _DEFAULT = StatCache(default_path())
    return _DEFAULT
