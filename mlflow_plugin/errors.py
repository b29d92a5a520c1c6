"""Exceptions raised by mlflow-modelkit.

Every error carries a one-line message that names the thing that failed and how to fix it, e.g.::

    >>> try:
    ...     raise KitfileError("Kitfile line 3: unknown key 'modle' (did you mean 'model'?)")
    ... except ModelKitError as e:
    ...     print(f"error: {e}")
    error: Kitfile line 3: unknown key 'modle' (did you mean 'model'?)

Callers catch :class:`ModelKitError` to handle all of them; the CLI turns them into exit status 2.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator


class ModelKitError(Exception):
    """Base class of every error this package raises on bad input or a failed operation."""


class KitfileError(ModelKitError):
    """The Kitfile is malformed or fails kit's validation rules."""


class ReferenceFormatError(ModelKitError, ValueError):
    """A reference (``host/repo:tag``, ``oci:DIR:TAG``, ``modelkit://…``) cannot be parsed."""


class NotFoundError(ModelKitError):
    """A manifest, tag or blob does not exist in the store."""


class DigestMismatchError(ModelKitError):
    """Content read from a store does not hash to the digest that names it."""


class UnsafeArchiveError(ModelKitError):
    """A layer tar contains an entry that would escape the target or is not a file or directory."""


class RegistryError(ModelKitError):
    """The registry answered with an error or could not be reached."""


class AuthError(RegistryError):
    """The registry refused the credentials (or none were given)."""


class ExistsError(ModelKitError):
    """A file that unpack would write already exists and overwriting was not asked for."""


class LimitExceededError(UnsafeArchiveError):
    """Unpacking would exceed an admin limit (``[limits]``: output bytes, ratio, entries)."""


class DiskError(ModelKitError):
    """Writing to the local file system failed (full disk, read-only, no permission)."""


_DISK_FIXES = {
    errno.ENOSPC: "free some space or choose another directory",
    errno.EDQUOT: "free some space or choose another directory",
    errno.EROFS: "the file system is read-only: choose a writable directory",
    errno.EACCES: "no permission: choose a writable directory",
    errno.EPERM: "no permission: choose a writable directory",
}


@contextlib.contextmanager
def disk_errors(op: str, where: str) -> Iterator[None]:
    """Turn a file system ``OSError`` raised inside the block into one-line :class:`DiskError`.

    The message names the operation, the user's path (never an internal staging path) and the fix:

    >>> import errno
    >>> try:
    ...     with disk_errors("unpack", "./out"):
    ...         raise OSError(errno.ENOSPC, "No space left on device", "./out/.modelkit-unpack-x/y")
    ... except DiskError as e:
    ...     print(e)
    unpack: No space left on device (./out): free some space or choose another directory
    """
    try:
        yield
    except ModelKitError:
        raise
    except OSError as e:
        if type(e).__module__.split(".")[0] in ("requests", "urllib3", "ssl", "socket"):
            raise  # network errors belong to the registry client, not here
        fix = _DISK_FIXES.get(e.errno or 0, "check the path and its permissions")
        raise DiskError(f"{op}: {e.strerror or type(e).__name__} ({where}): {fix}") from None
