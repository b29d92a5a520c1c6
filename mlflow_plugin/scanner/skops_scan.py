"""skops files: the types a ``.skops`` archive's ``schema.json`` asks the loader to build.

A ``.skops`` file is a zip whose ``schema.json`` is a tree of nodes (``ObjectNode``,
``TypeNode``, ``FunctionNode``, ``MethodNode`` …), each naming the ``__module__`` and
``__class__`` (or, for functions, the module and function) skops imports to rebuild it. skops
refuses types that are not trusted, but MLflow passes the MLmodel's ``skops_trusted_types`` as
trusted, so the schema is judged here on its own, with the pickle allowlist:

- ``skops.unsafe-type``: a denied type or function (``posix.system``, ``builtins.eval`` …), at the
  allowlist's severity (critical for process, shell and code execution);
- ``skops.unknown-type``: a type outside the allowlist, medium (loading it needs it trusted:
  see ``mlmodel.skops-trusted-type``).

>>> import json
>>> from mlflow_plugin.scanner.context import ScanContext
>>> from mlflow_plugin.scanner.report import ScanReport
>>> ctx = ScanContext(ScanReport("m.skops"))
>>> node = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {
...     "hook": {"__class__": "system", "__module__": "posix", "__loader__": "ObjectNode", "content": {}}}}
>>> check_skops_schema(ctx, "m.skops!schema.json", json.dumps(node).encode())
>>> [(str(f.severity), f.rule, f.evidence) for f in ctx.report_obj.findings]
[('critical', 'skops.unsafe-type', 'os.system')]
"""

from __future__ import annotations

import json
from typing import Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

MAX_NODES = 1_000_000
MAX_REPORTED = 20


def looks_like_skops_schema(path: str, data: bytes) -> bool:
    """A ``schema.json`` (inside a ``.skops`` zip or alone) with skops node markers."""
    return path.rsplit("/", 1)[-1].rsplit("!", 1)[-1] == "schema.json" and b'"__loader__"' in data


def check_skops_schema(ctx: ScanContext, path: str, data: bytes) -> None:
    """Judge every type and function a skops schema names (iterative walk, bounded)."""
    from mlflow_plugin.scanner.allowlist import judge

    try:
        root = json.loads(data)
    except ValueError as e:
        ctx.report(path, Severity.MEDIUM, "scan.malformed", f"skops schema is not JSON: {str(e)[:120]}")
        return
    policy = ctx.policy
    seen: set[tuple[str, str]] = set()
    stack: list[Any] = [root]
    nodes = reported = 0
    while stack:
        node = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            ctx.report(path, Severity.MEDIUM, "scan.limit.members", f"skops schema over {MAX_NODES} nodes")
            return
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        for module, name in _named(node):
            if (module, name) in seen:
                continue
            seen.add((module, name))
            v = judge(module, name, allow_globals=policy.allow_globals, allow_modules=policy.allow_modules)
            if v.allowed:
                continue
            reported += 1
            if reported > MAX_REPORTED:
                continue
            if v.rule == "unsafe-global" or v.severity == Severity.CRITICAL:
                ctx.report(
                    path,
                    v.severity or Severity.CRITICAL,
                    "skops.unsafe-type",
                    f"skops schema builds `{v.qualified}` while loading ({v.reason})",
                    v.qualified,
                )
            else:
                ctx.report(
                    path,
                    Severity.MEDIUM,
                    "skops.unknown-type",
                    f"skops schema needs `{v.qualified}`, which is not allowlisted ({v.reason}); skops "
                    "loads it only if it is trusted",
                    v.qualified,
                )
    if reported > MAX_REPORTED:
        ctx.report(
            path,
            Severity.MEDIUM,
            "skops.unknown-type",
            f"and {reported - MAX_REPORTED} more types outside the allowlist",
        )


def _named(node: dict[str, Any]) -> list[tuple[str, str]]:
    """The (module, name) pairs a node makes skops import."""
    out = []
    mod, cls = node.get("__module__"), node.get("__class__")
    if isinstance(mod, str) and isinstance(cls, str) and "__loader__" in node:
        out.append((mod[:200], cls[:200]))
    content = node.get("content")
    if node.get("__loader__") in ("FunctionNode", "TypeNode", "MethodNode") and isinstance(content, dict):
        m = content.get("module_path") or content.get("__module__") or content.get("module")
        n = content.get("function") or content.get("__class__") or content.get("name")
        if isinstance(m, str) and isinstance(n, str):
            out.append((m[:200], n[:200]))
    return out
