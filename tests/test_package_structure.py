"""The package's imports point one way: no cycles, nothing reaching up, no private names borrowed.

Read from the source with ``ast`` (nothing is imported), every ``import`` counts: module level,
inside functions and under ``TYPE_CHECKING`` alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mlflow_plugin"

# Bottom first: a module may import modules of its own layer and of the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("mlflow_plugin._version", "mlflow_plugin.errors", "mlflow_plugin._internal")),
    ("progress", ("mlflow_plugin.progress",)),
    ("storage (OCI layout | registry)", ("mlflow_plugin.storage",)),
    ("the ModelKit format", ("mlflow_plugin.kit",)),
    ("the scanner", ("mlflow_plugin.scanner",)),
    ("trust formats", ("mlflow_plugin.trust",)),
    (
        "config, packaging, drafts",
        ("mlflow_plugin.config", "mlflow_plugin.packaging", "mlflow_plugin.drafts"),
    ),
    ("hardening", ("mlflow_plugin.harden",)),
    ("the MLflow plugin", ("mlflow_plugin.tracking",)),
    ("edges", ("mlflow_plugin.cli", "mlflow_plugin.api", "mlflow_plugin")),
]
# Below the line nobody reads the admin config, MLflow, or anything of the layers above.
NEVER_IMPORT_CONFIG = (
    "mlflow_plugin.storage",
    "mlflow_plugin.kit",
    "mlflow_plugin.scanner",
    "mlflow_plugin.trust",
)


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


MODULES = package_modules()


def imports_of(name: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import of the package."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("mlflow_plugin")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("mlflow_plugin"):
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                # "from pkg import module" imports the module
                out.append((sub, None, node.lineno) if sub in MODULES else (mod, a.name, node.lineno))
    return out


def layer_of(name: str) -> int:
    best, best_len = -1, -1
    for i, (_label, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best >= 0, f"{name} belongs to no layer: add it to LAYERS"
    return best


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer_of(name)


def test_imports_never_reach_up() -> None:
    bad = []
    for name in MODULES:
        for target, _n, line in imports_of(name):
            if layer_of(target) > layer_of(name):
                bad.append(
                    f"{name}:{line} imports {target} ({LAYERS[layer_of(target)][0]} is above "
                    f"{LAYERS[layer_of(name)][0]})"
                )
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("low", NEVER_IMPORT_CONFIG)
def test_lower_layers_never_read_config_or_mlflow(low: str) -> None:
    bad = []
    for name, path in MODULES.items():
        if not (name == low or name.startswith(low + ".")):
            continue
        for target, _n, line in imports_of(name):
            if target == "mlflow_plugin.config" or target.startswith("mlflow_plugin.config."):
                bad.append(f"{name}:{line} reads the admin config; take the values as parameters")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            bad += [
                f"{name}:{node.lineno} imports {m}" for m in mods if m == "mlflow" or m.startswith("mlflow.")
            ]
    assert bad == [], "\n".join(bad)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {n: set() for n in MODULES}
    for name in MODULES:
        for target, _n, _line in imports_of(name):
            mod = target
            while mod not in MODULES and "." in mod:
                mod = mod.rsplit(".", 1)[0]
            if mod in MODULES and mod != name:
                graph[name].add(mod)
    # a package's __init__ importing its own submodules is how re-exports work, not a cycle
    cycles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def test_no_private_names_cross_modules() -> None:
    bad = []
    for name in MODULES:
        for target, imported, line in imports_of(name):
            if imported and imported.startswith("_") and not imported.startswith("__") and target != name:
                bad.append(f"{name}:{line} takes {target}.{imported}")
    assert bad == [], "\n".join(bad)


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                out.append(comp)
    return out
