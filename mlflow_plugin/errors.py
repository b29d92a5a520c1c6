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
