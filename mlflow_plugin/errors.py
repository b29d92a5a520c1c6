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
    """Base class of every error this package raises on bad input or a failed operation.

    >>> from mlflow_plugin import inspect
    >>> try:
    ...     inspect("oci:/nonexistent/kits:v1")
    ... except ModelKitError as e:                    # catches every subclass
    ...     print(type(e).__name__, "-", e)
    NotFoundError - oci:/nonexistent/kits is not an OCI image layout (no oci-layout file); check the path
    """


class KitfileError(ModelKitError):
    """The Kitfile is malformed or fails kit's validation rules.

    >>> from mlflow_plugin.kit.kitfile import Kitfile
    >>> Kitfile.parse("manifestVersion: 1.0.0\\nmodle: {path: model.bin}\\n")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.KitfileError: Kitfile line 2: unknown key 'modle' ... (did you mean 'model'?)
    """


class ReferenceFormatError(ModelKitError, ValueError):
    """A reference (``host/repo:tag``, ``oci:DIR:TAG``, ``modelkit://…``) cannot be parsed.

    >>> from mlflow_plugin import inspect
    >>> inspect("Not A Ref!!")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ReferenceFormatError: invalid reference 'Not A Ref!!': expected HOST[:PORT]/...
    """


class NotFoundError(ModelKitError):
    """A manifest, tag or blob does not exist in the store.

    >>> import tempfile
    >>> from mlflow_plugin import inspect
    >>> from mlflow_plugin.storage.layout import LayoutRepository
    >>> layout = tempfile.mkdtemp()
    >>> _ = LayoutRepository(layout, create=True)       # an empty OCI layout
    >>> inspect(f"oci:{layout}:v9")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.NotFoundError: tag 'v9' not found in oci:...; run 'mlflow-modelkit list oci:...' ...
    """


class DigestMismatchError(ModelKitError):
    """Content read from a store does not hash to the digest that names it.

    Raised while streaming (unpack, pull, verify, scan): whatever was read is discarded.

    >>> issubclass(DigestMismatchError, ModelKitError)
    True
    """


class UnsafeArchiveError(ModelKitError):
    """A layer tar contains an entry that would escape the target or is not a file or directory.

    >>> from mlflow_plugin.kit.safepath import clean_path
    >>> clean_path("../etc/passwd", "path")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.UnsafeArchiveError: illegal path '../etc/passwd': '..' leaves the target directory
    """


class RegistryError(ModelKitError):
    """The registry answered with an error or could not be reached.

    >>> from mlflow_plugin import inspect
    >>> inspect("localhost:1/team/fraud:v1")                       # doctest: +SKIP
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.RegistryError: cannot reach localhost:1: ...
    >>> issubclass(AuthError, RegistryError)
    True
    """


class AuthError(RegistryError):
    """The registry refused the credentials (or none were given).

    Credentials come from ``MLFLOW_MODELKIT_REGISTRY_USERNAME``/``_PASSWORD`` or the Docker config;
    the message never contains them.

    >>> isinstance(AuthError("localhost:5000: unauthorized"), RegistryError)
    True
    """


class ExistsError(ModelKitError):
    """A file that unpack would write already exists and overwriting was not asked for.

    ``unpack(..., overwrite=True)`` replaces it, ``ignore_existing=True`` keeps it.

    >>> issubclass(ExistsError, ModelKitError)
    True
    """


class LimitExceededError(UnsafeArchiveError):
    """Unpacking would exceed an admin limit (``[limits]``: output bytes, ratio, entries).

    >>> issubclass(LimitExceededError, UnsafeArchiveError)    # a decompression bomb is unsafe
    True
    """


class DiskError(ModelKitError):
    """Writing to the local file system failed (full disk, read-only, no permission).

    >>> from mlflow_plugin import unpack
    >>> unpack("oci:/nonexistent/kits:v1", "/proc/version/out")      # doctest: +SKIP
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.DiskError: unpack: Not a directory (/proc/version/out): ...
    >>> str(DiskError("unpack: No space left on device (./out): free some space"))
    'unpack: No space left on device (./out): free some space'
    """


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
