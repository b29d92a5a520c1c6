"""The wheel is one distribution with both packages, the prebuilt labextension and the server
config that enables jupyter_ext (docs/jupyter.md, "Front end").

A real build: ``pip wheel --no-deps`` of the checkout into a temporary folder. The hatch hook reuses
an already built ``jupyter_ext/labextension`` (``skip-if-exists``; ``pip install -e .`` built it),
else it runs ``jlpm install`` + ``jlpm build:prod`` in frontend/ (node >= 20 and the npm registry).
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABEXT = "share/jupyter/labextensions/mlflow-modelkit"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/jupyter_ext.json"

pytestmark = [pytest.mark.build, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    built = (ROOT / "jupyter_ext" / "labextension" / "static" / "style.js").is_file()
    if not built and shutil.which("node") is None:
        pytest.fail("no built labextension and no node to build it: install node >= 20 (make frontend)")
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=840,
    )
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    (whl,) = out.glob("mlflow_modelkit-*.whl")
    z = zipfile.ZipFile(whl)
    yield z
    z.close()


def _names(z: zipfile.ZipFile) -> list[str]:
    return z.namelist()


def _data_prefix(z: zipfile.ZipFile) -> str:
    (data,) = {n.split("/", 1)[0] for n in _names(z) if n.split("/", 1)[0].endswith(".data")}
    assert fnmatch.fnmatch(data, "mlflow_modelkit-*.data")
    return f"{data}/data"


def test_packages(wheel: zipfile.ZipFile) -> None:
    names = _names(wheel)
    assert "mlflow_plugin/__init__.py" in names
    assert "mlflow_plugin/cli.py" in names
    assert "mlflow_plugin/py.typed" in names
    # every tracked module of mlflow_plugin ships
    missing = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "mlflow_plugin").rglob("*.py")
        if "__pycache__" not in p.parts and str(p.relative_to(ROOT)) not in names
    ]
    assert not missing, missing
    # nothing of the front end's sources or node_modules, no build output as package data
    assert not [n for n in names if n.startswith(("frontend/", "node_modules/", "jupyter_ext/labextension/"))]


def test_jupyter_ext_package(wheel: zipfile.ZipFile) -> None:
    names = _names(wheel)
    for module in ("__init__.py", "handlers.py", "widgets.py", "seed.py"):
        assert f"jupyter_ext/{module}" in names, module


def test_labextension(wheel: zipfile.ZipFile) -> None:
    base = f"{_data_prefix(wheel)}/{LABEXT}"
    names = _names(wheel)
    for f in ("package.json", "install.json", "static/style.js"):
        assert f"{base}/{f}" in names, f"{base}/{f} missing"
    remote = [n for n in names if fnmatch.fnmatch(n, f"{base}/static/remoteEntry.*.js")]
    assert len(remote) == 1, remote
    pkg = json.loads(wheel.read(f"{base}/package.json"))
    assert pkg["name"] == "mlflow-modelkit"
    assert pkg["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert f"{base}/{pkg['jupyterlab']['_build']['load']}" in names
    install = json.loads(wheel.read(f"{base}/install.json"))
    assert install["packageName"] == "mlflow-modelkit"
    # the settings schema (schema/plugin.json) is in the labextension
    assert f"{base}/schemas/mlflow-modelkit/plugin.json" in names


def test_server_config(wheel: zipfile.ZipFile) -> None:
    cfg = json.loads(wheel.read(f"{_data_prefix(wheel)}/{SERVER_CONFIG}"))
    assert cfg == {"ServerApp": {"jpserver_extensions": {"jupyter_ext": True}}}


def test_entry_points(wheel: zipfile.ZipFile) -> None:
    (ep_name,) = [
        n for n in _names(wheel) if fnmatch.fnmatch(n, "mlflow_modelkit-*.dist-info/entry_points.txt")
    ]
    ep = configparser.ConfigParser()
    ep.read_string(wheel.read(ep_name).decode())
    assert ep["console_scripts"]["mlflow-modelkit"] == "mlflow_plugin.cli:main"
    assert (
        ep["mlflow.artifact_repository"]["modelkit"]
        == "mlflow_plugin.tracking.entrypoints:artifact_repository"
    )
    assert (
        ep["mlflow.run_context_provider"]["modelkit"]
        == "mlflow_plugin.tracking.entrypoints:run_context_provider"
    )


def test_metadata(wheel: zipfile.ZipFile) -> None:
    (meta_name,) = [n for n in _names(wheel) if fnmatch.fnmatch(n, "mlflow_modelkit-*.dist-info/METADATA")]
    meta = wheel.read(meta_name).decode()
    assert "Name: mlflow-modelkit" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    assert any("jupyter-server" in r or "jupyter_server" in r for r in runtime)
    assert any("ipywidgets" in r for r in runtime)
    assert any(r.startswith("Requires-Dist: mlflow") for r in runtime)
