"""Open a :class:`~mlflow_plugin.oci.base.Repository` from what a user typed.

>>> repo, ref = open_location("oci:./kits/fraud:v1", create=True)     # doctest: +SKIP
>>> repo, ref = open_location("localhost:5000/team/fraud:v1")         # doctest: +SKIP
"""

from __future__ import annotations

import os
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
    return RegistryRepository(loc.ref.registry, loc.ref.repository, **registry_options)


def insecure_registries() -> set[str]:
    """Hosts the admin allows over plain HTTP (``MLFLOW_MODELKIT_INSECURE_REGISTRIES=a:5000,b``).

    Loopback registries never need listing: they use HTTP unless they answer with TLS.
    """
    raw = os.environ.get("MLFLOW_MODELKIT_INSECURE_REGISTRIES", "")
    return {h.strip() for h in raw.split(",") if h.strip()}


def open_location(
    text: str, create: bool = False, default_tag: str | None = None, **registry_options: Any
) -> tuple[Repository, Location]:
    """Parse ``text`` and open its repository; returns ``(repository, location)``."""
    loc = parse_location(text, default_tag=default_tag)
    return open_repository(loc, create=create, **registry_options), loc
