"""The Jupyter extension and the widgets build only on ``mlflow_plugin``'s public API (``__all__``):
no module of ``jupyter_ext`` imports an ``mlflow_plugin`` submodule or a name the package does not export.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlflow_plugin

ROOT = Path(__file__).resolve().parents[2] / "jupyter_ext"


def _imports() -> list[tuple[str, int, str, list[str]]]:
    out = []
    for path in sorted(ROOT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlflow_plugin"):
                out.append((path.name, node.lineno, node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("mlflow_plugin"):
                        out.append((path.name, node.lineno, a.name, []))
    return out


def test_jupyter_ext_imports_only_the_public_api() -> None:
    found = _imports()
    assert found, "jupyter_ext uses mlflow_plugin: the scan must find its imports"
    private = [f"{f}:{line} {mod}" for f, line, mod, _ in found if mod != "mlflow_plugin"]
    assert private == [], "import from mlflow_plugin itself (its __all__), not its submodules"
    unknown = [
        f"{f}:{line} {name}"
        for f, line, _mod, names in found
        for name in names
        if name not in mlflow_plugin.__all__
    ]
    assert unknown == [], "names jupyter_ext uses must be in mlflow_plugin.__all__"
