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
class StorageSettings:
    """How to reach registries: hosts allowed over plain HTTP (loopback always is) and a CA bundle."""

    insecure_registries: frozenset[str] = frozenset()
    ca_bundle: str | None = None

    def options_for(self, registry: str) -> dict[str, Any]:
        """Keyword options for :class:`~mlflow_plugin.storage.registry.RegistryRepository`."""
        out: dict[str, Any] = {}
        if registry in self.insecure_registries:
            out["insecure"] = True
        if self.ca_bundle:
            out["ca_bundle"] = self.ca_bundle
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

    options = {**(settings or DEFAULT_SETTINGS).options_for(loc.ref.registry), **registry_options}
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
