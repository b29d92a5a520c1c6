"""Open a :class:`~mlflow_plugin.storage.base.Repository` from what a user typed.

>>> repo, loc = open_location("oci:./kits/fraud:v1", create=True)     # doctest: +SKIP
>>> settings = StorageSettings(insecure_registries=frozenset({"registry.internal:5000"}))
>>> settings.options_for("registry.internal:5000")
{'insecure': True}
>>> settings.options_for("registry.example.com")
{}

Storage never reads the admin configuration: the edges (CLI, the MLflow plugin, the public API)
build :class:`StorageSettings` from it (``Config.storage_settings()``) and pass them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.layout import LayoutRepository
from mlflow_plugin.storage.reference import LayoutLocation, Location, RegistryLocation, parse_location


@dataclass(frozen=True)
class RegistryTLS:
    """TLS settings for one registry: its CA bundle and a client certificate and key (mTLS)."""

    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


@dataclass(frozen=True)
class StorageSettings:
    """How to reach registries: hosts allowed over plain HTTP (loopback always is), a CA bundle,
    per-registry TLS (``tls``: ``(host, RegistryTLS)`` pairs) and per-registry credential helpers
    (``credential_helpers``: ``(host, helper name)`` pairs, run as ``docker-credential-<name>``).

    >>> s = StorageSettings(tls=(("r:5443", RegistryTLS("/ca.pem", "/c.pem", "/c.key")),))
    >>> s.options_for("r:5443")
    {'ca_bundle': '/ca.pem', 'client_cert': ('/c.pem', '/c.key')}
    """

    insecure_registries: frozenset[str] = frozenset()
    ca_bundle: str | None = None
    tls: tuple[tuple[str, RegistryTLS], ...] = ()
    credential_helpers: tuple[tuple[str, str], ...] = ()

    def tls_for(self, registry: str) -> RegistryTLS | None:
        want = registry.lower()
        return next((t for h, t in self.tls if h.lower() == want), None)

    def helper_map(self) -> dict[str, str]:
        return dict(self.credential_helpers)

    def options_for(self, registry: str) -> dict[str, Any]:
        """Keyword options for :class:`~mlflow_plugin.storage.registry.RegistryRepository`."""
        out: dict[str, Any] = {}
        if registry in self.insecure_registries:
            out["insecure"] = True
        tls = self.tls_for(registry)
        ca = (tls.ca_bundle if tls else None) or self.ca_bundle
        if ca:
            out["ca_bundle"] = ca
        if tls and (tls.client_cert or tls.client_key):
            out["client_cert"] = (tls.client_cert or "", tls.client_key or tls.client_cert or "")
        return out


DEFAULT_SETTINGS = StorageSettings()


def open_repository(
    loc: Location, create: bool = False, settings: StorageSettings | None = None, **registry_options: Any
) -> Repository:
    """The repository a parsed location names (a layout directory or a registry repository).

    Explicit ``registry_options`` win over ``settings``.
    """
    if isinstance(loc, LayoutLocation):
        return LayoutRepository(loc.path, create=create)
    assert isinstance(loc, RegistryLocation)
    from mlflow_plugin.storage.registry import RegistryRepository

    settings = settings or DEFAULT_SETTINGS
    options = {**settings.options_for(loc.ref.registry), **registry_options}
    if settings.credential_helpers and options.get("credentials") is None:
        from mlflow_plugin.storage.auth import resolve_credentials

        creds = resolve_credentials(loc.ref.registry, helpers=settings.helper_map())
        if creds is not None:
            options["credentials"] = creds
    return RegistryRepository(loc.ref.registry, loc.ref.repository, **options)


def open_location(
    text: str,
    create: bool = False,
    default_tag: str | None = None,
    settings: StorageSettings | None = None,
    **registry_options: Any,
) -> tuple[Repository, Location]:
    """Parse ``text`` and open its repository; returns ``(repository, location)``."""
    loc = parse_location(text, default_tag=default_tag)
    return open_repository(loc, create=create, settings=settings, **registry_options), loc
