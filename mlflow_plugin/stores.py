"""Open a :class:`~mlflow_plugin.oci.base.Repository` from what a user typed.

>>> repo, ref = open_location("oci:./kits/fraud:v1", create=True)     # doctest: +SKIP
>>> repo, ref = open_location("localhost:5000/team/fraud:v1")         # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .oci.base import Repository
from .oci.layout import LayoutRepository
from .oci.reference import LayoutLocation, Location, RegistryLocation, parse_location


def open_repository(loc: Location, create: bool = False, **registry_options: Any) -> Repository:
    """The repository a parsed location names (a layout directory or a registry repository)."""
    if isinstance(loc, LayoutLocation):
        return LayoutRepository(loc.path, create=create)
    assert isinstance(loc, RegistryLocation)
    from .oci.registry import RegistryRepository

    if "insecure" not in registry_options and loc.ref.registry in insecure_registries():
        registry_options = {**registry_options, "insecure": True}
    if "ca_bundle" not in registry_options:
        ca = _config().ca_bundle
        if ca:
            registry_options = {**registry_options, "ca_bundle": ca}
    return RegistryRepository(loc.ref.registry, loc.ref.repository, **registry_options)


def insecure_registries() -> set[str]:
    """Hosts the admin allows over plain HTTP (``[registries] insecure`` or
    ``MLFLOW_MODELKIT_INSECURE_REGISTRIES=a:5000,b``).

    Loopback registries never need listing: they use HTTP unless they answer with TLS.
    """
    return set(_config().insecure_registries)


def _config() -> Any:
    """The admin config (``[registries]`` of MLFLOW_MODELKIT_CONFIG, MLFLOW_MODELKIT_* env)."""
    from .config import load_config

    return load_config()


def open_location(
    text: str, create: bool = False, default_tag: str | None = None, **registry_options: Any
) -> tuple[Repository, Location]:
    """Parse ``text`` and open its repository; returns ``(repository, location)``."""
    loc = parse_location(text, default_tag=default_tag)
    return open_repository(loc, create=create, **registry_options), loc
