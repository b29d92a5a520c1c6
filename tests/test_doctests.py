"""Every docstring example of the package is real and passes (``+SKIP`` ones are skipped).

The modules are discovered (``pkgutil``), never listed by hand: a new module's examples run as
soon as it exists. Each module runs isolated: in its own temporary working directory, without
the admin's ``MLFLOW_MODELKIT_*`` settings or an ambient tracking URI, and must leave the
environment, the working directory and MLflow's tracking URI as it found them, so the examples
pass in any order and alone (``pytest tests/test_doctests.py -k <module>``).
"""

from __future__ import annotations

import doctest
import importlib
import io
import os
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

import mlflow_plugin

PKG = Path(mlflow_plugin.__file__).resolve().parent
# the admin's settings and an ambient tracking store would change what the examples print
AMBIENT = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")
# MLflow's own bookkeeping: its telemetry client sets and unsets this whenever it likes
MLFLOW_INTERNAL = ("_MLFLOW_TELEMETRY_SESSION_ID",)


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in MLFLOW_INTERNAL}


def _walk(path: Path, prefix: str) -> Iterator[str]:
    """Module names under ``path``: ``pkgutil``'s, plus namespace packages (a directory of modules
    without ``__init__.py``, like ``kit/``), which ``pkgutil.walk_packages`` does not enter."""
    for info in pkgutil.iter_modules([str(path)], prefix):
        yield info.name
        if info.ispkg:
            yield from _walk(path / info.name.rsplit(".", 1)[1], info.name + ".")
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        if not (sub / "__init__.py").exists() and any(sub.glob("*.py")):
            yield from _walk(sub, f"{prefix}{sub.name}.")


MODULES = ["mlflow_plugin", *sorted(_walk(PKG, "mlflow_plugin."))]


def test_discovery_finds_every_module() -> None:
    """Every ``.py`` file of the package is discovered (a new directory cannot hide from the examples)."""
    on_disk = set()
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        on_disk.add(".".join(parts))
    assert set(MODULES) == on_disk
    assert "mlflow_plugin.kit.kitfile" in MODULES and "mlflow_plugin.harden.catalog" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [*AMBIENT, *(v for v in os.environ if v.startswith("MLFLOW_MODELKIT_"))]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    env_before = _environ()
    tracking_before = mlflow.get_tracking_uri()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.write)
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples failed:\n{out.getvalue()}"
    assert _environ() == env_before, "an example leaked an environment change"
    assert Path.cwd() == tmp_path, "an example changed the working directory"
    assert mlflow.get_tracking_uri() == tracking_before, "an example changed MLflow's tracking URI"
