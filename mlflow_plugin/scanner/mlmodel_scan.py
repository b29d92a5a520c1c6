"""The ``MLmodel`` file: what MLflow imports and runs when it loads the model.

``mlflow.<flavor>.load_model`` / ``mlflow.pyfunc.load_model`` read ``MLmodel`` first and then
import and call what it names. Nothing here is executed: the YAML is parsed with
:func:`~mlflow_plugin._internal.mlmodel.read_mlmodel` (safe loader) and its keys are judged:

- ``mlmodel.loader-module``: each flavor's ``loader_module`` (imported at load). An MLflow
  module is fine; a denied module (``os``, ``subprocess``, ``builtins``, ...) is critical; any
  other module is high, medium when the model ships it in ``code``/``code_paths``;
- ``mlmodel.unknown-flavor`` (info): a flavor MLflow does not know;
- ``mlmodel.model-code`` (info): models from code — the file that runs at load;
- ``mlmodel.path`` (high): ``data``/``model_path``/``code_paths``/... entries and pyfunc
  ``artifacts`` paths that are absolute, contain ``..``, backslashes or control characters;
- ``mlmodel.remote-artifact`` (medium): a pyfunc ``artifacts`` path that is a URI (``s3://``,
  ``https://``, ``runs:/``): the model's code gets the URI at load and fetches it unscanned (the
  ``uri`` MLflow records beside ``path`` is provenance only, never fetched at load);
- ``mlmodel.skops-trusted-type``: any flavor's ``skops_trusted_types`` judged like pickle globals;
- ``mlmodel.remote-code``: transformers ``trust_remote_code``/``auto_map``/custom code (high), a
  ``model_type`` transformers does not ship (medium); :func:`check_hf_config` applies the same to
  ``config.json``/``tokenizer_config.json`` files;
- ``mlmodel.custom-objects`` (medium): keras/tensorflow custom objects (their pickle is scanned
  separately);
- ``mlmodel.malformed`` (low): not a YAML mapping.

Secrets in the file are found by :func:`~mlflow_plugin.scanner.secrets.scan_text`. What the MLmodel
references (loader modules, code directories, ``code_paths``, model code) is recorded for the
whole-kit pass (:mod:`~mlflow_plugin.scanner.kitwide`), which checks those files are present
(``mlmodel.missing-code``).
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
_REMOTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
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
    checker = _Checker(ctx, path, doc)
    checker.run()
    from mlflow_plugin.scanner import kitwide

    kitwide.record(ctx, path, "mlmodel", **checker.facts)


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
        # what the whole-kit pass checks against the files present (see kitwide.py)
        self.facts: dict[str, list[list[str]]] = {
            "loaders": [],
            "code_dirs": [],
            "code_paths": [],
            "model_code": [],
        }

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
                if key in ("code", "code_paths"):
                    self._code_facts(f"flavors.{name}.{key}", val)
            if name == "python_function" and fl.get("artifacts") is not None:
                self._artifacts(fl.get("artifacts"))
            if fl.get("skops_trusted_types") is not None:  # sklearn, and lightgbm/xgboost sklearn classes
                self._skops(name, fl)
            if name in ("transformers", "sentence_transformers"):
                self._transformers(name, fl)
            if name in ("keras", "tensorflow", "tensorflow.keras", "keras_core"):
                self._custom_objects(name, fl)
        self._models_from_code()
        for key in ("code_paths", "data"):
            if key in self.doc:
                self._paths(key, self.doc.get(key))
        if "code_paths" in self.doc:
            self._code_facts("code_paths", self.doc.get("code_paths"))

    def _code_facts(self, key: str, val: Any) -> None:
        for p in _strings(val):
            p = p.strip()
            if not p or _bad_path(p) or (key.endswith(".code") and p.endswith(".py")):
                continue  # bad paths are mlmodel.path findings; a .py `code` is model code
            kind = "code_paths" if key.endswith("code_paths") else "code_dirs"
            self.facts[kind].append([key, p.rstrip("/")])

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
        self.facts["loaders"].append([key, mod])
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

    # --- pyfunc artifacts
    def _artifacts(self, arts: Any) -> None:
        """``artifacts: {name: {path: artifacts/x, uri: <source>}}``: MLflow hands the python model
        ``<model dir>/<path>`` at load; ``uri`` only records where the file was copied from."""
        if not isinstance(arts, Mapping):
            return
        for name, entry in arts.items():
            key = f"flavors.python_function.artifacts.{_s(name)}"
            if isinstance(entry, Mapping):
                path, uri = entry.get("path"), entry.get("uri")
            else:
                path, uri = entry, None
            if path is not None:
                self._artifact_path(f"{key}.path", _s(path))
            elif uri is not None and _REMOTE_URI.match(_s(uri)) and not _s(uri).lower().startswith("file:"):
                self._remote_artifact(f"{key}.uri", _s(uri))

    def _artifact_path(self, key: str, p: str) -> None:
        if _REMOTE_URI.match(p) and not re.match(r"^[A-Za-z]:", p) and not p.lower().startswith("file:"):
            self._remote_artifact(key, p)
            return
        bad = _bad_path(p) or ("a file URL" if p.lower().startswith("file:") else None)
        if bad:
            self.report(
                Severity.HIGH,
                "mlmodel.path",
                f"MLmodel `{key}` is {p[:120]!r} ({bad}): MLflow would hand the model code a file outside "
                "the model directory at load; keep every artifact inside the model (artifacts/...)",
                p,
            )

    def _remote_artifact(self, key: str, uri: str) -> None:
        self.report(
            Severity.MEDIUM,
            "mlmodel.remote-artifact",
            f"MLmodel `{key}` is the URI {uri[:120]!r}, not a file in the model: the model's code gets "
            "that URI at load and would fetch whatever it names then, unscanned; save the model with "
            "the artifact copied in (mlflow copies `artifacts` at save time)",
            uri,
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
                if runs and not _bad_path(runs):
                    self.facts["model_code"].append([key, runs])
                self.report(
                    Severity.INFO,
                    "mlmodel.model-code",
                    f"MLmodel `{key}`: `{runs}` in the model directory runs as Python when MLflow loads "
                    "this model (models from code); review that file (the code.* rules analyse it)",
                    runs,
                )

    # --- skops
    def _skops(self, flavor: str, fl: Mapping[str, Any]) -> None:
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
                f"MLmodel `flavors.{flavor}.skops_trusted_types` trusts `{t}`: skops would create or call "
                f"it while loading the model ({v.reason}); remove it, re-save with scikit-learn types only",
                t,
            )

    # --- transformers
    def _transformers(self, name: str, fl: Mapping[str, Any]) -> None:
        hints: list[str] = []
        unknown_type: list[str] = []
        for key, val in fl.items():
            key = _s(key)
            low = key.lower()
            if low == "trust_remote_code" and _truthy(val):
                hints.append(f"{key}: true")
            elif low in ("auto_map", "custom_code", "custom_pipelines", "code_revision") and val:
                hints.append(key)
            elif low == "model_type" and val and _s(val).strip() not in HF_MODEL_TYPES:
                unknown_type.append(f"{key}: {_s(val)[:60]}")
            elif low == "source_model_name" and isinstance(val, str) and _REMOTE_HINT.search(val):
                hints.append(f"{key}: {val[:60]}")
            elif isinstance(val, (Mapping, list)):  # nested configs (model_config, pipeline kwargs)
                hints += [f"{k}: true" for k in _trust_remote_keys(_plain(val), key, 0)]
        for h in hints:
            k = h.split(":")[0]
            self.report(
                Severity.HIGH,
                "mlmodel.remote-code",
                f"MLmodel `flavors.{name}.{k}` ({h}): MLflow runs code downloaded from the hub (or shipped "
                "with the model) at load; save the model without trust_remote_code or review that code",
                h,
            )
        for h in unknown_type:
            self.report(
                Severity.MEDIUM,
                "mlmodel.remote-code",
                f"MLmodel `flavors.{name}.{h.split(':')[0]}` ({h}) is not a model type transformers ships: "
                "loading it needs custom model code (trust_remote_code); review where that code comes from",
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


# model types transformers ships (``CONFIG_MAPPING``): a config naming another one needs custom code
_HF_WORDS = """albert align altclip audio-spectrogram-transformer autoformer bark bart beit bert
    bert-generation big_bird bigbird_pegasus biogpt bit blenderbot blenderbot-small blip blip-2
    bloom bridgetower bros camembert canine chameleon chinese_clip clap clip clipseg clvp codegen
    cohere cohere2 conditional_detr convbert convnext convnextv2 cpmant ctrl cvt dab-detr dac
    data2vec-audio data2vec-text data2vec-vision dbrx deberta deberta-v2 decision_transformer
    deepseek_v2 deepseek_v3 deformable_detr deit depth_anything detr dinat dinov2 distilbert
    donut-swin dpr dpt efficientnet electra encodec encoder-decoder ernie esm falcon falcon_mamba
    fastspeech2_conformer flaubert flava fnet focalnet fsmt funnel fuyu gemma gemma2 gemma3
    gemma3_text git glm glm4 glpn gpt2 gpt_bigcode gpt_neo gpt_neox gpt_neox_japanese gptj gptsan-japanese
    granite granitemoe graphormer groupvit hubert ibert idefics idefics2 idefics3 imagegpt informer
    instructblip jamba jetmoe kosmos-2 layoutlm layoutlmv2 layoutlmv3 led levit lilt llama llama4
    llava llava_next llava_onevision longformer longt5 luke lxmert m2m_100 mamba mamba2 marian
    markuplm mask2former maskformer mbart megatron-bert mgp-str mimi mistral mistral3 mixtral
    mllama mobilebert mobilenet_v1 mobilenet_v2 mobilevit mobilevitv2 moshi mpnet mpt mra mt5
    musicgen mvp nemotron nllb-moe nougat nystromformer olmo olmo2 olmoe oneformer openai-gpt opt
    owlv2 owlvit paligemma patchtst pegasus pegasus_x perceiver persimmon phi phi3 phimoe
    pix2struct plbart poolformer pop2piano prophetnet pvt qwen2 qwen2_5_vl qwen2_audio qwen2_moe
    qwen2_vl qwen3 qwen3_moe rag recurrent_gemma reformer regnet rembert resnet roberta
    roberta-prelayernorm roc_bert roformer rt_detr rwkv sam seamless_m4t segformer seggpt sew
    sew-d siglip siglip2 smolvlm speech-encoder-decoder speech_to_text speecht5 splinter
    squeezebert stablelm starcoder2 superpoint swiftformer swin swin2sr swinv2 switch_transformers
    t5 table-transformer tapas time_series_transformer timesformer trocr tvp udop umt5 unispeech
    unispeech-sat univnet upernet video_llava videomae vilt vipllava vision-encoder-decoder
    vision-text-dual-encoder visual_bert vit vit_mae vit_msn vitdet vitmatte vits vivit wav2vec2
    wav2vec2-bert wav2vec2-conformer wavlm whisper x_clip xglm xlm xlm-roberta xlm-roberta-xl
    xlnet xmod yolos yoso zamba zamba2 zoedepth"""
HF_MODEL_TYPES = frozenset(_HF_WORDS.split())
HF_CONFIG_NAMES = frozenset({"config.json", "tokenizer_config.json"})
MAX_HF_CONFIG = 4 << 20


def check_hf_config(ctx: ScanContext, path: str, data: bytes) -> None:
    """A transformers ``config.json``/``tokenizer_config.json``: custom code that loading would run.

    ``auto_map`` (high: transformers imports the Python files it names, shipped beside the config
    or fetched from the hub), ``trust_remote_code: true`` anywhere (high), and — in a model config
    (one with ``architectures`` or ``transformers_version``) — a ``model_type`` transformers does not
    ship (medium: it cannot load without custom code). Never executed; JSON is parsed only.

    >>> from mlflow_plugin.scanner.report import ScanReport
    >>> ctx = ScanContext(ScanReport("x"))
    >>> check_hf_config(ctx, "m/config.json", b'{"model_type": "bert", "auto_map": {"AutoModel": "x.M"}}')
    >>> [(f.severity.name, f.rule, f.evidence) for f in ctx.report_obj.findings]
    [('HIGH', 'mlmodel.remote-code', 'auto_map')]
    """
    import json

    try:
        doc = json.loads(data[:MAX_HF_CONFIG])
    except (ValueError, RecursionError):
        return
    if not isinstance(doc, dict):
        return
    fname = path.rsplit("/", 1)[-1]
    amap = doc.get("auto_map")
    if amap:
        names = ", ".join(sorted({_s(v)[:60] for v in _strings(amap)}))[:150]
        ctx.report(
            path,
            Severity.HIGH,
            "mlmodel.remote-code",
            f"{fname} `auto_map` names custom classes ({names}): transformers loads them from Python "
            "files shipped beside the config or fetched from the hub, and runs them "
            "(trust_remote_code); review that code or re-save the model with a built-in architecture",
            "auto_map",
        )
    for key in _trust_remote_keys(doc, "", 0):
        ctx.report(
            path,
            Severity.HIGH,
            "mlmodel.remote-code",
            f"{fname} `{key}` is true: transformers runs model code from the hub or beside the config "
            "when loading it; remove it and re-save the model with a built-in architecture",
            key,
        )
    mtype = doc.get("model_type")
    looks_hf = "architectures" in doc or "transformers_version" in doc
    if looks_hf and isinstance(mtype, str) and mtype.strip() and mtype.strip() not in HF_MODEL_TYPES:
        ctx.report(
            path,
            Severity.MEDIUM,
            "mlmodel.remote-code",
            f"{fname} `model_type` is {mtype[:60]!r}, not a model type transformers ships: loading it "
            "needs custom model code (trust_remote_code); review where that code comes from",
            f"model_type: {mtype[:60]}",
        )


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {_s(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _trust_remote_keys(v: Any, where: str, depth: int) -> list[str]:
    if depth > 20:
        return []
    out: list[str] = []
    if isinstance(v, dict):
        for k, x in v.items():
            key = f"{where}.{k}" if where else str(k)
            if str(k) == "trust_remote_code" and _truthy(x):
                out.append(key)
            else:
                out += _trust_remote_keys(x, key, depth + 1)
    elif isinstance(v, list):
        for i, x in enumerate(v[:1000]):
            out += _trust_remote_keys(x, f"{where}[{i}]", depth + 1)
    return out
