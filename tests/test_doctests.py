"""The docstring examples of the format engine are real and must pass (``+SKIP`` ones are skipped)."""

from __future__ import annotations

import doctest
import importlib
import os

import pytest

MODULES = [
    "mlflow_plugin._internal.gojson",
    "mlflow_plugin.kit.yamlv3",
    "mlflow_plugin.kit.kitfile",
    "mlflow_plugin.kit.ignore",
    "mlflow_plugin.kit.tarwriter",
    "mlflow_plugin.kit.layers",
    "mlflow_plugin.kit.manifest",
    "mlflow_plugin.kit.mediatypes",
    "mlflow_plugin.kit.unpack",
    "mlflow_plugin.kit.safepath",
    "mlflow_plugin.kit.fileindex",
    "mlflow_plugin.kit.limits",
    "mlflow_plugin.kit.decompress",
    "mlflow_plugin.storage.reference",
    "mlflow_plugin.storage.descriptor",
    "mlflow_plugin.storage.layout",
    "mlflow_plugin.storage.base",
    "mlflow_plugin.errors",
    "mlflow_plugin.drafts.uri",
    "mlflow_plugin._internal.envinfo",
    "mlflow_plugin._internal.pipeline",
    "mlflow_plugin._internal.hashing",
    "mlflow_plugin._internal.statcache",
    "mlflow_plugin.scanner.report",
    "mlflow_plugin.scanner.detect",
    "mlflow_plugin.scanner.containers",
    "mlflow_plugin.scanner.streams",
    "mlflow_plugin.scanner.keras_scan",
    "mlflow_plugin.scanner.protobuf_scan",
    "mlflow_plugin.scanner.tensor_formats",
    "mlflow_plugin.scanner.secrets",
    "mlflow_plugin.scanner.pickle_vm",
    "mlflow_plugin.scanner.pickle_scan",
    "mlflow_plugin.scanner.numpy_scan",
    "mlflow_plugin.scanner.allowlist",
    "mlflow_plugin.config",
    "mlflow_plugin.trust.dsse",
    "mlflow_plugin.trust.oms",
]
# modules whose examples are all marked +SKIP (they need files, a registry or a layout)
ONLY_SKIPPED = {"mlflow_plugin.kit.unpack", "mlflow_plugin.storage.layout"}


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    env_before = dict(os.environ)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.failed == 0
    if name not in ONLY_SKIPPED:
        assert result.attempted > 0, f"{name} has no runnable examples"
    assert dict(os.environ) == env_before, "a doctest leaked an environment change"
