"""One clean environment for tests that run the product end to end (no fixtures: conftest.py
holds the real services)."""

from __future__ import annotations

from typing import Any

import mlflow

# every setting a developer's shell could leak into a test: admin config, credentials, CA bundles
ADMIN_ENV_VARS = (
    "MLFLOW_MODELKIT_CONFIG",
    "MLFLOW_MODELKIT_REQUIRE_SIGNATURE",
    "MLFLOW_MODELKIT_TRUSTED_KEYS",
    "MLFLOW_MODELKIT_SCAN_FAIL_ON",
    "MLFLOW_MODELKIT_ALLOW_GLOBALS",
    "MLFLOW_MODELKIT_ALLOW_MODULES",
    "MLFLOW_MODELKIT_CODE_IN_FUNCTIONS",
    "MLFLOW_MODELKIT_SCAN_EMBEDDED_CODE",
    "MLFLOW_MODELKIT_SCAN_PII",
    "MLFLOW_MODELKIT_ACCEPT_MAX_SEVERITY",
    "MLFLOW_MODELKIT_SIGNING_KEY",
    "MLFLOW_MODELKIT_REGISTER_MODEL",
    "MLFLOW_MODELKIT_MAX_SEVERITY",
    "MLFLOW_MODELKIT_REQUIRED_ATTESTATIONS",
    "MLFLOW_MODELKIT_REGISTRY_USERNAME",
    "MLFLOW_MODELKIT_REGISTRY_PASSWORD",
    "MLFLOW_MODELKIT_CA_BUNDLE",
    "MLFLOW_MODELKIT_INSECURE_REGISTRIES",
    "MLFLOW_MODELKIT_ALLOWED_REGISTRIES",
    "MLFLOW_MODELKIT_ALLOWED_LAYOUT_ROOTS",
    "MLFLOW_MODELKIT_ARTIFACTS_DESTINATION",
    "MLFLOW_MODELKIT_PUBLISH_INCLUDE",
    "MLFLOW_MODELKIT_DECRYPT_KEYS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "DOCKER_CONFIG",
)


def clean_env(mp: Any, passphrase: str | None = None) -> None:
    """Drop every admin setting, silence progress bars, and set the key passphrase if given."""
    for var in ADMIN_ENV_VARS:
        mp.delenv(var, raising=False)
    mp.setenv("MLFLOW_MODELKIT_NO_PROGRESS", "1")
    if passphrase is not None:
        mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", passphrase)


def use_tracking(uri: str) -> None:
    """Point MLflow's tracking and model registry at ``uri``."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def end_runs() -> None:
    """End any run a test left active."""
    while mlflow.active_run():
        mlflow.end_run()
