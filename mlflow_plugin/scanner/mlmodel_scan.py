"""The ``MLmodel`` file: what MLflow imports and runs when it loads the model.

``mlflow.<flavor>.load_model`` / ``mlflow.pyfunc.load_model`` read ``MLmodel`` first and then
import and call what it names. Nothing here is executed: the YAML is parsed with
:func:`~mlflow_plugin._internal.mlmodel.read_mlmodel` (safe loader) and its keys are judged:

- ``mlmodel.loader-module``: each flavor's ``loader_module`` (imported at load). An MLflow
  module is fine; a denied module (``os``, ``subprocess``, ``builtins``, ...) is critical; any
  other module is high, medium when the model ships it in ``code``/``code_paths``;
- ``mlmodel.unknown-flavor`` (info): a flavor MLflow does not know;
- ``mlmodel.model-code`` (info): models from code — the file that runs at load;
- ``mlmodel.path`` (high): ``data``/``model_path``/``code_paths``/... entries that are absolute,
  contain ``..``, backslashes or control characters;
- ``mlmodel.skops-trusted-type``: sklearn ``skops_trusted_types`` judged like pickle globals;
- ``mlmodel.remote-code`` (high): transformers ``trust_remote_code``/``auto_map``/custom code;
- ``mlmodel.custom-objects`` (medium): keras/tensorflow custom objects (their pickle is scanned
  separately);
- ``mlmodel.malformed`` (low): not a YAML mapping.

Secrets in the file are found by :func:`~mlflow_plugin.scanner.secrets.scan_text`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

MAX_MLMODEL = 1 << 20  # bytes of an MLmodel that are parsed

# flavors MLflow ships (mlflow.<name>); their loader_module is mlflow.<name>
_FLAVOR_WORDS = """python_function sklearn pytorch tensorflow keras transformers sentence_transformers
    xgboost lightgbm catboost onnx spark h2o statsmodels prophet pmdarima diviner spacy fastai
    mleap paddle johnsnowlabs langchain llama_index openai dspy pyfunc gluon shap promptflow
    crate mxnet mxnet_gluon tensorflow.keras pytorch_lightning keras_core"""
KNOWN_FLAVORS = frozenset(_FLAVOR_WORDS.split())
_MLFLOW_MODULE = re.compile(r"^mlflow(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_LOADER_KEYS = ("loader_module",)
# model_code_path is not here: MLflow records the saving machine's absolute path and loads
# os.path.basename(model_code_path) from the model directory
_PATH_KEYS = (
    "data",
    "model_path",
    "code",
    "code_paths",
    "pickled_model",
    "path",
    "python_model",
    "model_binary",
    "model_data",
)
_REMOTE_HINT = re.compile(r"remote|custom", re.I)
_CTRL = re.compile(r"[\x00-\x1f\x7f]")


def scan_mlmodel(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Judge one ``MLmodel`` file (read up to 1 MiB; never executed)."""
    from mlflow_plugin._internal.mlmodel import read_mlmodel
    from mlflow_plugin.scanner import secrets

    data = stream.read(MAX_MLMODEL + 1)
    secrets.scan_text(ctx, path, io.BytesIO(data[:MAX_MLMODEL]), min(len(data), MAX_MLMODEL))
    if len(data) > MAX_MLMODEL:
        ctx.report(
            path,
            Severity.MEDIUM,
            "mlmodel.malformed",
            "MLmodel is larger than 1 MiB: it was not analysed; a real MLmodel is a few KiB",
        )
        return
    doc = read_mlmodel(data)
    if not doc:
        ctx.report(
            path,
            Severity.LOW,
            "mlmodel.malformed",
            "MLmodel is not a YAML mapping: MLflow cannot load it, and what it would import was not checked",
        )
        return
    _Checker(ctx, path, doc).run()


def _s(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


def _strings(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, Mapping):
        return [_s(x) for x in v.values() if x is not None]
    if isinstance(v, Iterable):
        return [_s(x) for x in v if x is not None]
    return [_s(v)]


class _Checker:
    def __init__(self, ctx: ScanContext, path: str, doc: dict[str, Any]) -> None:
        self.ctx, self.path, self.doc = ctx, path, doc
        flavors = doc.get("flavors")
        self.flavors: dict[str, Any] = dict(flavors) if isinstance(flavors, Mapping) else {}
        self.shipped = self._shipped_code()

    def report(self, sev: Severity, rule: str, message: str, evidence: str = "") -> None:
        self.ctx.report(self.path, sev, rule, message, evidence)

    def _shipped_code(self) -> set[str]:
        """Module names shipped in ``code``/``code_paths`` (``code/pkg/mod.py`` → ``pkg.mod``, ``mod``)."""
        out: set[str] = set()
        entries: list[str] = []
        for fl in self.flavors.values():
            if isinstance(fl, Mapping):
                for key in ("code", "code_paths"):
                    entries += _strings(fl.get(key))
        entries += _strings(self.doc.get("code_paths"))
        for e in entries:
            p = e.replace("\\", "/").strip("/")
            if p.endswith(".py"):
                p = p[:-3]
            parts = [x for x in p.split("/") if x and x not in (".", "code")]
            for i in range(len(parts)):
                out.add(".".join(parts[i:]))
        return out

    def run(self) -> None:
        if "flavors" in self.doc and not isinstance(self.doc.get("flavors"), Mapping):
            self.report(
                Severity.LOW, "mlmodel.malformed", "MLmodel `flavors` is not a mapping: MLflow cannot load it"
            )
        for name, fl in self.flavors.items():
            name = _s(name)
            if name not in KNOWN_FLAVORS:
                self.report(
                    Severity.INFO,
                    "mlmodel.unknown-flavor",
                    f"MLmodel `flavors.{name}` is not an MLflow flavor: only loaders that know it read it",
                    name,
                )
            if not isinstance(fl, Mapping):
                continue
            for key, val in fl.items():
                key = _s(key)
                if key in _LOADER_KEYS or key.endswith("loader_module"):
                    self._loader(f"flavors.{name}.{key}", val)
                if key in _PATH_KEYS:
                    self._paths(f"flavors.{name}.{key}", val)
            if name == "sklearn":
                self._skops(fl)
            if name in ("transformers", "sentence_transformers"):
                self._transformers(name, fl)
            if name in ("keras", "tensorflow", "tensorflow.keras", "keras_core"):
                self._custom_objects(name, fl)
        self._models_from_code()
        for key in ("code_paths", "data"):
            if key in self.doc:
                self._paths(key, self.doc.get(key))

    # --- loader_module
    def _loader(self, key: str, val: Any) -> None:
        from mlflow_plugin.scanner.allowlist import DENIED, is_identifier_path

        if val is None:
            return
        mod = _s(val).strip()
        if _MLFLOW_MODULE.match(mod) and not _deny_hit(mod, DENIED):
            return
        if not is_identifier_path(mod):
            self.report(
                Severity.HIGH,
                "mlmodel.loader-module",
                f"MLmodel `{key}` is {mod!r}, not a Python module name: MLflow would try to import it when "
                "loading this model; a real model names an MLflow flavor here",
                mod,
            )
            return
        hit = _deny_hit(mod, DENIED)
        if hit:
            self.report(
                Severity.CRITICAL,
                "mlmodel.loader-module",
                f"MLmodel `{key}` makes MLflow import `{mod}` and call its `_load_pyfunc` when loading this "
                f"model ({hit}): this is not a model loader; do not load it, re-save the model with MLflow",
                mod,
            )
            return
        if mod in self.shipped:
            self.report(
                Severity.MEDIUM,
                "mlmodel.loader-module",
                f"MLmodel `{key}`: MLflow imports `{mod}` from the model's own code when loading this model "
                "(the code.* rules analyse that code); review it, or save the model with a built-in flavor",
                mod,
            )
            return
        self.report(
            Severity.HIGH,
            "mlmodel.loader-module",
            f"MLmodel `{key}`: MLflow imports `{mod}` when loading this model: it is not an MLflow flavor; "
            "if it is your own code, ship it in `code_paths` so the scan reads it",
            mod,
        )

    # --- paths
    def _paths(self, key: str, val: Any) -> None:
        for p in _strings(val):
            bad = _bad_path(p)
            if bad:
                self.report(
                    Severity.HIGH,
                    "mlmodel.path",
                    f"MLmodel `{key}` is {p[:120]!r} ({bad}): MLflow would read it from outside the model "
                    "directory at load; keep every path relative and inside the model",
                    p,
                )

    # --- models from code
    def _models_from_code(self) -> None:
        seen: set[str] = set()
        cands: list[tuple[str, Any]] = [("model_code_path", self.doc.get("model_code_path"))]
        for name, fl in self.flavors.items():
            if isinstance(fl, Mapping):
                cands.append((f"flavors.{name}.model_code_path", fl.get("model_code_path")))
                cands.append((f"flavors.{name}.code", fl.get("code")))
        for key, val in cands:
            for p in _strings(val):
                if key.endswith(".code") and not p.endswith(".py") and "model_code_path" not in key:
                    continue
                # MLflow runs <model dir>/basename(model_code_path)
                runs = p.replace("\\", "/").rsplit("/", 1)[-1] if "model_code_path" in key else p
                if runs in seen:
                    continue
                seen.add(runs)
                self.report(
                    Severity.INFO,
                    "mlmodel.model-code",
                    f"MLmodel `{key}`: `{runs}` in the model directory runs as Python when MLflow loads "
                    "this model (models from code); review that file (the code.* rules analyse it)",
                    runs,
                )

    # --- skops
    def _skops(self, fl: Mapping[str, Any]) -> None:
        from mlflow_plugin.scanner.allowlist import judge

        types = _strings(fl.get("skops_trusted_types"))
        policy = self.ctx.policy
        for t in types:
            t = t.strip()
            module, _, name = t.rpartition(".")
            if not module:
                module, name = "builtins", t
            v = judge(module, name, allow_globals=policy.allow_globals, allow_modules=policy.allow_modules)
            if v.allowed:
                continue
            if v.rule == "unsafe-global":  # the denied set: os/posix/subprocess/builtins... → its severity
                sev = v.severity or Severity.CRITICAL
            elif v.severity == Severity.CRITICAL:  # not allowlisted, and the name is a dangerous action
                sev = Severity.CRITICAL
            else:  # not allowlisted: skops would trust an arbitrary type
                sev = Severity.HIGH
            self.report(
                sev,
                "mlmodel.skops-trusted-type",
                f"MLmodel `flavors.sklearn.skops_trusted_types` trusts `{t}`: skops would create or call "
                f"it while loading the model ({v.reason}); remove it, re-save with scikit-learn types only",
                t,
            )

    # --- transformers
    def _transformers(self, name: str, fl: Mapping[str, Any]) -> None:
        hints: list[str] = []
        for key, val in fl.items():
            key = _s(key)
            low = key.lower()
            if low == "trust_remote_code" and _truthy(val):
                hints.append(f"{key}: true")
            elif low in ("auto_map", "custom_code", "custom_pipelines", "code_revision") and val:
                hints.append(key)
            elif low == "model_type" and val:
                hints.append(f"{key}: {_s(val)[:60]}")
            elif low == "source_model_name" and isinstance(val, str) and _REMOTE_HINT.search(val):
                hints.append(f"{key}: {val[:60]}")
        for h in hints:
            k = h.split(":")[0]
            self.report(
                Severity.HIGH,
                "mlmodel.remote-code",
                f"MLmodel `flavors.{name}.{k}` ({h}): MLflow runs code downloaded from the hub (or shipped "
                "with the model) at load; save the model without trust_remote_code or review that code",
                h,
            )

    # --- keras / tensorflow
    def _custom_objects(self, name: str, fl: Mapping[str, Any]) -> None:
        keys = [_s(k) for k in fl if "custom_object" in _s(k).lower() and fl.get(k)]
        for k in keys:
            self.report(
                Severity.MEDIUM,
                "mlmodel.custom-objects",
                f"MLmodel `flavors.{name}.{k}`: MLflow unpickles custom objects ({_s(fl.get(k))[:80]}) "
                "when loading this model and they run code (their pickle is scanned separately); "
                "prefer built-in layers",
                k,
            )


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in ("true", "1", "yes", "on"))


# modules the pickle allowlist judges name by name (builtins.set is fine, builtins.eval is not):
# as a loader module they give the MLmodel the whole module
_DENIED_AS_LOADER = {
    "builtins": "Python's builtins (eval, exec, open, __import__)",
    "types": "builds functions and code objects",
}


def _deny_hit(mod: str, denied: Mapping[str, tuple[Severity, str]]) -> str | None:
    from mlflow_plugin.scanner.allowlist import canonical_module

    mod = canonical_module(mod)  # posix/nt → os, __builtin__ → builtins
    if mod.split(".")[0] in _DENIED_AS_LOADER:
        return _DENIED_AS_LOADER[mod.split(".")[0]]
    parts = mod.split(".")
    for i in range(len(parts), 0, -1):
        hit = denied.get(".".join(parts[:i]))
        if hit:
            return hit[1]
    return None


def _bad_path(p: str) -> str | None:
    if _CTRL.search(p):
        return "control characters"
    if "\\" in p:
        return "a backslash"
    if p.startswith("/") or re.match(r"^[A-Za-z]:", p) or p.startswith("~"):
        return "an absolute path"
    if re.search(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", p):
        return "a URL"
    if ".." in p.split("/"):
        return "`..`"
    return None
