"""Entry-point factories MLflow loads; they import the plugin classes only when called.

MLflow registers plugins while ``mlflow`` itself is being imported. If a program imports one
of our modules first, that module imports mlflow, mlflow loads the entry point, and a direct
reference to the class would hit a half-initialised module ("Failure attempting to register
artifact repository"). These factories break that cycle.
"""

from __future__ import annotations

from typing import Any


def artifact_repository(
    artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> Any:
    """Build a :class:`~mlflow_plugin.tracking.artifact_repo.ModelKitArtifactRepository` (``modelkit://``)."""
    from mlflow_plugin.tracking.artifact_repo import ModelKitArtifactRepository

    return ModelKitArtifactRepository(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)


def run_context_provider() -> Any:
    """Build the :class:`~mlflow_plugin.tracking.run_context.ModelKitRunContext`."""
    from mlflow_plugin.tracking.run_context import ModelKitRunContext

    return ModelKitRunContext()
