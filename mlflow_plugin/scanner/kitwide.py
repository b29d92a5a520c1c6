"""The pass over the whole scanned set (a directory or a kit), after every file was scanned alone.

Format scanners judge one file each; some questions need the others:

- ``pickle.kit-code`` (info): a ``pickle.unknown-global`` whose module is code shipped with the
  model (``<model dir>/code/…``, which MLflow puts on ``sys.path`` at load, or a kit code layer)
  and whose file defines the name. That file is analysed by the ``code.*`` rules, so the global is
  the kit's own code, not unknown. Denied globals (``os.system``) are never reclassified, nor
  globals of a module the kit shadows;
- ``code.shadows-module``: a shipped ``.py`` file that provides a module of the standard library or
  of a library the allowlist trusts (``code/os.py``, ``code/numpy/__init__.py``): once the code
  directory is on ``sys.path``, every import of that name runs the kit's file. High in a model's
  code directory (MLflow puts it on ``sys.path``) and for denied modules or ML libraries anywhere;
  medium for other standard-library names in a kit's code layers;
- ``mlmodel.missing-code``: an MLmodel ``loader_module`` (not an MLflow module) or
  ``model_code_path`` whose file is not in the model directory (high: MLflow would import whatever
  is installed under that name), or a ``code``/``code_paths`` entry that is absent (medium). When
  the loader module's file is present, the ``mlmodel.loader-module`` finding names it.

The per-file scanners leave *facts* (not findings) for this pass with :func:`record`: Python files
record their top-level names, MLmodel files what they reference. Facts are JSON values, so the kit
layer cache stores and replays them with the findings; the pass then works on the final report and
the facts alone, never on file contents.

>>> from mlflow_plugin.scanner.report import FileRecord, Finding, ScanReport, Severity
>>> r = ScanReport("model", files=[FileRecord("code/mypkg/models.py", "python", 90)])
>>> r.add(Finding("model.pkl", Severity.HIGH, "pickle.unknown-global", "imports …", "mypkg.models.M"))
>>> apply_pass(r, [{"kind": "py", "path": "code/mypkg/models.py", "names": ["M"], "star": False}])
>>> [(f.severity.name, f.rule, f.message) for f in r.findings]  # doctest: +NORMALIZE_WHITESPACE
[('INFO', 'pickle.kit-code', 'M from code/mypkg/models.py (shipped with the model; its code is analysed
  by the code.* rules)')]
"""

from __future__ import annotations

import posixpath
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Finding, ScanReport, Severity

FACTS_KEY = "kitwide.facts"
# libraries a model's own pickle globals resolve into (shadowing them hijacks allowlisted globals)
_LIBS = frozenset({"mlflow", "numpy", "scipy", "pandas", "sklearn", "torch", "joblib", "cloudpickle"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def record(ctx: ScanContext, path: str, kind: str, **data: Any) -> None:
    """Leave a fact about ``path`` for the whole-kit pass (container members are skipped).

    >>> from mlflow_plugin.scanner.report import ScanReport
    >>> ctx = ScanContext(ScanReport("x"))
    >>> record(ctx, "code/m.py", "py", names=["M"], star=False)
    >>> record(ctx, "a.zip!m.py", "py", names=[], star=False)
    >>> facts_of(ctx)
    [{'kind': 'py', 'path': 'code/m.py', 'names': ['M'], 'star': False}]
    """
    if "!" in path:  # inside an archive: MLflow never imports or reads it from there
        return
    ctx.extra.setdefault(FACTS_KEY, []).append({"kind": kind, "path": path, **data})


def facts_of(ctx: ScanContext) -> list[dict[str, Any]]:
    """The facts recorded in ``ctx`` so far (the list itself: slice it to mark a position).

    >>> from mlflow_plugin.scanner.report import ScanReport
    >>> facts_of(ScanContext(ScanReport("x")))
    []
    """
    facts: list[dict[str, Any]] = ctx.extra.setdefault(FACTS_KEY, [])
    return facts


@lru_cache(maxsize=1)
def shadowable() -> frozenset[str]:
    """Top-level modules a shipped file must not provide: the standard library, denied modules,
    and the packages whose globals the allowlist trusts.

    >>> {"os", "pickle", "numpy", "mlflow"} <= shadowable(), "mypkg" in shadowable()
    (True, False)
    """
    from mlflow_plugin.scanner.allowlist import ALLOWED_GLOBALS

    names = set(sys.stdlib_module_names) | {"mlflow", "builtins", "__builtin__"} | dangerous_modules()
    names |= {g.split(".")[0] for g in ALLOWED_GLOBALS}
    names.discard("test")  # CPython's own regression tests: nothing imports them
    return frozenset(n for n in names if _IDENT.match(n))


@lru_cache(maxsize=1)
def dangerous_modules() -> frozenset[str]:
    """Top-level modules the pickle allowlist denies (``os``, ``subprocess``, ``pickle``…).

    >>> "subprocess" in dangerous_modules(), "json" in dangerous_modules()
    (True, False)
    """
    from mlflow_plugin.scanner.allowlist import DENIED

    return frozenset(k.split(".")[0] for k in DENIED if _IDENT.match(k.split(".")[0]))


@dataclass
class _Module:
    name: str
    path: str  # the file that provides it
    model_dir: str | None  # the MLflow model directory whose code dir holds it; None: elsewhere
    on_path: bool  # certainly importable under this name (model code dir, a top-level source dir)


@dataclass
class _Model:
    path: str  # the MLmodel file
    dir: str
    fact: dict[str, Any]
    code_dirs: list[str] = field(default_factory=list)  # relative to the scan root


def _join(base: str, rel: str) -> str:
    p = posixpath.normpath(posixpath.join(base, rel)) if base else posixpath.normpath(rel)
    return "" if p == "." else p


def _module_of(rel: str) -> str | None:
    """``mypkg/models.py`` → ``mypkg.models``; ``mypkg/__init__.py`` → ``mypkg``; else None."""
    if not rel.endswith(".py"):
        return None
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(_IDENT.match(p) for p in parts):
        return None
    return ".".join(parts)


def _inside(path: str, d: str) -> bool:
    return d == "" or path.startswith(d + "/")


class _Kit:
    """Everything the pass knows: files present, MLflow model dirs, the modules the kit provides."""

    def __init__(self, report: ScanReport, facts: Iterable[dict[str, Any]]) -> None:
        self.report = report
        self.files = {f.path for f in report.files if "!" not in f.path}
        self.py: dict[str, dict[str, Any]] = {}
        self.models: list[_Model] = []
        for fact in facts:
            if fact.get("kind") == "py":
                self.py[fact["path"]] = fact
            elif fact.get("kind") == "mlmodel":
                d = posixpath.dirname(fact["path"])
                m = _Model(fact["path"], d, fact)
                for _key, val in fact.get("code_dirs") or []:
                    cd = _join(d, val)
                    if _inside(cd, d) and cd not in m.code_dirs:
                        m.code_dirs.append(cd)
                self.models.append(m)
        self.by_dir = {m.dir: m for m in sorted(self.models, key=lambda m: m.path, reverse=True)}
        self.dirs = {posixpath.dirname(p) for p in self.files}  # every directory holding a file
        for d in list(self.dirs):
            while d:
                d = posixpath.dirname(d)
                self.dirs.add(d)
        self.modules: dict[str, list[_Module]] = {}
        for path in sorted(self.files):
            for mod in self._provides(path):
                self.modules.setdefault(mod.name, []).append(mod)

    def model_of(self, path: str) -> _Model | None:
        """The innermost MLflow model directory holding ``path`` (walks up: O(depth))."""
        d = path
        while d:
            d = posixpath.dirname(d)
            if d in self.by_dir:
                return self.by_dir[d]
        return None

    def _provides(self, path: str) -> list[_Module]:
        if not path.endswith(".py"):
            return []
        m = self.model_of(path)
        if m is not None:  # only the model's code dirs are on sys.path when MLflow loads it
            for cd in m.code_dirs:
                if _inside(path, cd):
                    name = _module_of(path[len(cd) + 1 :] if cd else path)
                    return [_Module(name, path, m.dir, True)] if name else []
            return []
        out = []
        parts = path.split("/")
        if len(parts) > 1 and f"{parts[0]}/__init__.py" not in self.files:
            name = _module_of("/".join(parts[1:]))  # a source dir (code layer): relative to it
            if name:
                out.append(_Module(name, path, None, True))
        name = _module_of(path)  # relative to the scan root
        if name and not any(x.name == name for x in out):
            out.append(_Module(name, path, None, len(parts) == 1 or f"{parts[0]}/__init__.py" in self.files))
        return out

    def providers(self, module: str, where: str) -> list[_Module]:
        """Files that provide ``module`` to code loaded from ``where`` (a pickle's path)."""
        cands = self.modules.get(module, [])
        m = self.model_of(where)
        if m is None:
            return cands
        return [c for c in cands if c.model_dir == m.dir or c.model_dir is None]

    def defines(self, path: str, name: str) -> bool:
        fact = self.py.get(path)
        if fact is None:  # an empty __init__.py defines nothing; a file not analysed is not trusted
            return False
        names = fact.get("names")
        if names is None:
            return False
        return bool(fact.get("star")) or name.split(".")[0] in names


def apply_pass(report: ScanReport, facts: Iterable[dict[str, Any]]) -> None:
    """Run the whole-kit pass on a finished ``report`` and the facts its scan recorded (in place).

    See the module docstring; an example:

    >>> from mlflow_plugin.scanner.report import FileRecord
    >>> r = ScanReport("kit", files=[FileRecord("model/MLmodel", "mlmodel", 200)])
    >>> fact = {"kind": "mlmodel", "path": "model/MLmodel", "code_dirs": [],
    ...         "loaders": [["flavors.python_function.loader_module", "mymodel"]]}
    >>> apply_pass(r, [fact])
    >>> [(f.severity.name, f.rule, f.evidence) for f in r.findings]
    [('HIGH', 'mlmodel.missing-code', 'mymodel')]
    """
    kit = _Kit(report, facts)
    _shadows(kit)
    _kit_code_globals(kit)
    for m in kit.models:
        _model_refs(kit, m)


def _shadows(kit: _Kit) -> None:
    bad, worst = shadowable(), dangerous_modules()
    for name in sorted(kit.modules):
        if "." in name or name not in bad:
            continue
        for mod in kit.modules[name]:
            if not mod.on_path:
                continue
            if mod.model_dir is not None:  # MLflow puts it on sys.path at load: certain
                where = (
                    f"MLflow puts the model's code directory on sys.path when loading {mod.model_dir or '.'}"
                )
                sev = Severity.HIGH
            else:  # a code layer or source dir: shadows when that dir is on sys.path (python dir/x.py)
                where = "when its directory is on sys.path (running a script there puts it first)"
                sev = Severity.HIGH if name in worst or name in _LIBS else Severity.MEDIUM
            kit.report.add(
                Finding(
                    mod.path,
                    sev,
                    "code.shadows-module",
                    f"{mod.path} provides the module `{name}`, shadowing the installed `{name}`: {where}, "
                    f"and every import of `{name}` in the process then runs this file; fix: rename it",
                    name,
                )
            )


def _kit_code_globals(kit: _Kit) -> None:
    bad = shadowable()
    findings = kit.report.findings
    for i, f in enumerate(findings):
        if f.rule != "pickle.unknown-global" or f.severity >= Severity.CRITICAL:
            continue
        if f.message.startswith("in data after") or not f.evidence or f.evidence == "...":
            continue
        parts = f.evidence.split(".")
        if parts[0] in bad or not all(_IDENT.match(p) for p in parts):
            continue
        where = f.path.partition("!")[0]
        hit: tuple[str, _Module] | None = None
        for cut in range(len(parts) - 1, 0, -1):
            module, name = ".".join(parts[:cut]), ".".join(parts[cut:])
            for prov in kit.providers(module, where):
                if kit.defines(prov.path, name):
                    hit = (name, prov)
                    break
            if hit:
                break
        if hit is None:
            continue
        name, prov = hit
        findings[i] = Finding(
            f.path,
            Severity.INFO,
            "pickle.kit-code",
            f"{name} from {prov.path} (shipped with the model; its code is analysed by the code.* rules)",
            f.evidence,
        )


def _model_refs(kit: _Kit, m: _Model) -> None:
    fact = m.fact
    reported: set[str] = set()

    def missing(sev: Severity, key: str, what: str, ev: str) -> None:
        if ev in reported:
            return
        reported.add(ev)
        kit.report.add(Finding(m.path, sev, "mlmodel.missing-code", f"MLmodel `{key}` {what}", ev))

    def has_dir(d: str) -> bool:
        return d in kit.dirs

    for key, mod in fact.get("loaders") or []:
        rels = [mod.replace(".", "/") + ".py", mod.replace(".", "/") + "/__init__.py"]
        found = [_join(cd, r) for cd in m.code_dirs for r in rels if _join(cd, r) in kit.files]
        if found:
            _name_loader_file(kit, m, key, mod, found[0])
            continue
        dirs = ", ".join(f"{cd or '.'}/" for cd in m.code_dirs) or "no code directory"
        missing(
            Severity.HIGH,
            key,
            f"names `{mod}`, but the model does not ship it ({dirs}): MLflow would import whatever "
            f"is installed under that name when loading this model; ship the module in `code_paths` "
            "or save the model with a built-in flavor",
            mod,
        )
    for key, base in fact.get("model_code") or []:
        p = _join(m.dir, base)
        if p not in kit.files:
            missing(
                Severity.HIGH,
                key,
                f"runs `{base}` from the model directory (models from code), but {p} is not there: "
                "MLflow cannot load the model as scanned; re-save it",
                base,
            )
    for key, val in fact.get("code_dirs") or []:
        d = _join(m.dir, val)
        if _inside(d, m.dir) and not has_dir(d):
            missing(
                Severity.MEDIUM,
                key,
                f"is {val!r}, but {d or '.'}/ holds no file: the code the model was saved with is missing, "
                "so its imports resolve to whatever is installed; re-save the model with its code_paths",
                val,
            )
    for key, val in fact.get("code_paths") or []:
        base = posixpath.basename(val.rstrip("/"))
        cands = [_join(m.dir, val)] + [_join(cd, base) for cd in m.code_dirs] + [_join(m.dir, f"code/{base}")]
        if not any(c in kit.files or has_dir(c) for c in cands if _inside(c, m.dir)):
            missing(
                Severity.MEDIUM,
                key,
                f"lists {val!r}, but the model directory does not hold it (MLflow copies code_paths to "
                "code/): its imports resolve to whatever is installed; re-save the model with that code",
                val,
            )


def _name_loader_file(kit: _Kit, m: _Model, key: str, mod: str, path: str) -> None:
    findings = kit.report.findings
    for i, f in enumerate(findings):
        if (
            f.path == m.path
            and f.rule == "mlmodel.loader-module"
            and f.evidence == mod
            and f"`{key}`" in f.message
            and f.severity <= Severity.HIGH
        ):
            findings[i] = Finding(
                f.path,
                Severity.MEDIUM,
                f.rule,
                f"MLmodel `{key}`: MLflow imports `{mod}` from the model's own code ({path}) and calls "
                "its `_load_pyfunc` when loading it (the code.* rules analysed that file); review it, or "
                "save the model with a built-in flavor",
                mod,
            )
