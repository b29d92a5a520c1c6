"""``examples/publish_from_notebook.ipynb`` runs top to bottom in a real kernel (nbclient): trains,
logs to ``modelkit://``, publishes with the widget, verifies, and loads under verify-on-load.

The kernel is this interpreter (a kernelspec written into a temporary ``JUPYTER_PATH`` whose argv
is ``sys.executable``), so it runs in the same virtualenv whatever kernelspecs the machine has.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from _envhelpers import ADMIN_ENV_VARS
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "publish_from_notebook.ipynb"
KERNEL = "mlflow-modelkit-test"


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_publishes_verifies_and_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "mlflow-modelkit test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for var in (*ADMIN_ENV_VARS, "MLFLOW_TRACKING_URI", "MLFLOW_MODELKIT_KEY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("MODELKIT_EXAMPLE_REPOSITORY", raising=False)
    monkeypatch.setenv("MLFLOW_MODELKIT_NO_PROGRESS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's temporary store, cleaned with tmp_path
    # jupyter_ext from this checkout even where the editable install predates it
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    )

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream") for c in code]
    last = text[-1].splitlines()
    assert last[0].startswith("prediction: [") and len(json.loads(last[0].split(": ", 1)[1])) == 5
    assert last[1] == "verified: True"
    assert "scan: clean" in text[2] and "@sha256:" in text[2]
    assert "FAIL" not in text[3] and text[3].count("PASS") >= 5
    widgets = [
        o for c in code for o in c.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widgets) == 2  # the PublishWidget and the VerifyWidget were displayed
