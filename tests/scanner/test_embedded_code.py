"""Code pickled by value (cloudpickle) is decoded statically and reported as ``pickle.embedded-code``.

Every sample is REAL: ``cloudpickle.dumps`` / ``mlflow.pyfunc.save_model`` of notebook-style code
(classes with ``__module__ = "__main__"``, functions and lambdas defined in local scopes, which
cloudpickle writes by value). Nothing here ever unpickles a sample; the malicious look-alikes are
never called either (their payloads would be harmless: ``id``, ``print(1)``).
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import warnings

import cloudpickle
import pytest

from mlflow_plugin.scanner import pickle_vm
from mlflow_plugin.scanner.api import scan_directory, scan_file
from mlflow_plugin.scanner.context import Policy, ScanContext
from mlflow_plugin.scanner.pickle_scan import scan_pickle
from mlflow_plugin.scanner.report import ScanReport, Severity


def findings(data: bytes, policy: Policy | None = None) -> list:
    ctx = ScanContext(ScanReport("x"), policy=policy or Policy())
    scan_pickle(ctx, "m.pkl", io.BytesIO(data), len(data))
    return ctx.report_obj.findings


def summary(fs: list) -> list[tuple[str, str]]:
    return sorted((f.severity.name, f.rule) for f in fs)


# ---------------------------------------------------------------------------------------------
# notebook-style code (defined in local scopes / __main__, so cloudpickle writes it by value)


def _notebook_python_model() -> type:
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd

    class MyModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.scale = 2.0

        def predict(self, context, model_input, params=None):
            return pd.DataFrame({"y": np.mean(model_input.values, axis=1) * self.scale})

    MyModel.__module__ = "__main__"
    MyModel.__qualname__ = "MyModel"
    return MyModel


def _notebook_transformer_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(FunctionTransformer(lambda x: x + 1), StandardScaler())


def _evil_os_system():
    def f(x):
        os.system("id")
        return x

    f.__module__ = "__main__"
    return f


def _evil_subprocess_class():
    class Transformer:
        def transform(self, x):
            subprocess.run(["id"], check=False)
            return x

    Transformer.__module__ = "__main__"
    Transformer.__qualname__ = "Transformer"
    return Transformer()


def _evil_exec_lambda():
    return lambda x: exec(base64.b64decode(b"cHJpbnQoMSk="))


def _evil_sys_modules():
    import sys

    def g(x):
        return sys.modules["o" + "s"].system("id")

    return g


def _evil_import_inside():
    def fetch(url):
        import socket

        return socket.create_connection((url, 80))

    return fetch


# ---------------------------------------------------------------------------------------------
# benign: visible, not blocking


def test_notebook_python_model_saved_by_mlflow_is_one_medium_finding(tmp_path):
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    model_cls = _notebook_python_model()
    sig = infer_signature(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"y": [1.0]}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=model_cls(), signature=sig)
    pkl = tmp_path / "m" / "python_model.pkl"
    report = scan_file(str(pkl))
    assert summary(report.findings) == [("MEDIUM", "pickle.embedded-code")], report.findings
    f = report.findings[0]
    assert f.evidence == "__main__.MyModel"
    assert "embedded class `__main__.MyModel` (pickled by value from a notebook" in f.message
    assert "subclass of mlflow.pyfunc.model.PythonModel" in f.message
    assert "load_context" in f.message and "predict" in f.message
    assert "runs when the model predicts" in f.message
    assert "numpy.mean" in f.message and "pandas.DataFrame" in f.message
    assert "log the model from code" in f.message
    assert not report.failed("high")
    # the whole model directory: no pickle finding blocks it (MLflow's own types are allowlisted)
    whole = scan_directory(str(tmp_path / "m"))
    pickle_findings = [x for x in whole.findings if x.rule.startswith("pickle.")]
    assert summary(pickle_findings) == [("MEDIUM", "pickle.embedded-code")]


def test_function_transformer_lambda_pipeline_is_medium():
    fs = findings(cloudpickle.dumps(_notebook_transformer_pipeline()))
    assert summary(fs) == [("MEDIUM", "pickle.embedded-code")], fs
    assert "embedded lambda" in fs[0].message and "<lambda>" in fs[0].evidence


def test_nn_module_defined_in_main_is_medium():
    torch = pytest.importorskip("torch")

    # no parameters: plain pickling of tensors goes through torch.storage._load_from_bytes (a
    # nested torch.load, rightly critical); MLflow's pytorch flavor uses torch.save's zip format
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return torch.relu(self.act(x))

    Net.__module__ = "__main__"
    Net.__qualname__ = "Net"
    fs = findings(cloudpickle.dumps(Net()))
    assert [f.rule for f in fs if f.severity >= Severity.HIGH] == [], fs
    emb = [f for f in fs if f.rule == "pickle.embedded-code"]
    assert len(emb) == 1 and emb[0].evidence == "__main__.Net"
    assert "torch.relu" in emb[0].message and "runs when the model predicts" in emb[0].message


def test_local_function_with_closure_and_module_globals():
    import numpy as np

    k = 3

    def f(x):
        return np.mean(x) + k

    fs = findings(cloudpickle.dumps(f))
    assert summary(fs) == [("MEDIUM", "pickle.embedded-code")], fs
    assert "numpy.mean" in fs[0].message
    assert ".test_local_function_with_closure_and_module_globals.<locals>.f" in fs[0].evidence


def test_embedded_code_severity_comes_from_the_policy():
    data = cloudpickle.dumps(_notebook_transformer_pipeline())
    assert summary(findings(data, Policy(embedded_code="low"))) == [("LOW", "pickle.embedded-code")]
    high = findings(data, Policy(embedded_code="high"))
    assert summary(high) == [("HIGH", "pickle.embedded-code")]


# ---------------------------------------------------------------------------------------------
# malicious look-alikes: critical


@pytest.mark.parametrize(
    ("make", "evidence"),
    [
        (_evil_os_system, "os.system"),
        (_evil_subprocess_class, "subprocess.run"),
        (_evil_exec_lambda, "exec"),
        (_evil_import_inside, "socket"),
        (_evil_sys_modules, "sys.modules"),
    ],
)
def test_malicious_embedded_code_is_critical(make, evidence):
    fs = findings(cloudpickle.dumps(make()))
    emb = [f for f in fs if f.rule == "pickle.embedded-code"]
    assert emb and all(f.severity == Severity.CRITICAL for f in emb), fs
    assert evidence in emb[0].evidence
    assert "do not load this model" in emb[0].message


def test_malicious_code_is_critical_without_the_bytecode_walk(monkeypatch):
    """Another Python wrote it (no bytecode walk): co_names resolved through the globals still tell."""
    monkeypatch.setattr(pickle_vm, "_running_layout", lambda: -1)
    for make in (
        _evil_os_system,
        _evil_subprocess_class,
        _evil_exec_lambda,
        _evil_import_inside,
        _evil_sys_modules,
    ):
        fs = findings(cloudpickle.dumps(make()))
        emb = [f for f in fs if f.rule == "pickle.embedded-code"]
        assert emb and emb[0].severity == Severity.CRITICAL, (make.__name__, fs)
    benign = findings(cloudpickle.dumps(_notebook_transformer_pipeline()))
    assert summary(benign) == [("MEDIUM", "pickle.embedded-code")]


class _CallsAtLoad:
    """An object whose reduction calls a by-value function while unpickling."""

    def __init__(self, fn):
        self.fn = fn

    def __reduce__(self):
        return (self.fn, ("x",))


def test_calling_embedded_function_while_loading_stays_critical():
    def harmless(x):
        return x

    fs = findings(cloudpickle.dumps(_CallsAtLoad(harmless)))
    assert any(f.rule == "pickle.indirect-call" and f.severity == Severity.CRITICAL for f in fs), fs


def test_module_pickled_by_value_reference_is_judged():
    fs = findings(cloudpickle.dumps(subprocess))
    assert [(f.severity.name, f.evidence) for f in fs] == [("CRITICAL", "subimport('subprocess')")]


def test_cloudpickle_helpers_outside_their_shape_are_still_unsafe():
    # _make_function called with a string instead of a code object: not cloudpickle's shape
    data = b"\x80\x04\x8c\x17cloudpickle.cloudpickle\x8c\x0e_make_function\x93\x8c\x02hi\x85R."
    fs = findings(data)
    assert ("CRITICAL", "pickle.unsafe-global") in summary(fs), fs
    # _builtin_type imported but used to reach something else
    data = b"\x80\x04\x8c\x17cloudpickle.cloudpickle\x8c\r_builtin_type\x93\x8c\nModuleType\x85R."
    assert ("CRITICAL", "pickle.unsafe-global") in summary(findings(data))


def test_mlflow_types_are_allowlisted_exactly():
    from mlflow_plugin.scanner.allowlist import judge

    for mod, name in [
        ("mlflow.pyfunc.model", "PythonModel"),
        ("mlflow.pyfunc.model", "PythonModelContext"),
        ("mlflow.models.signature", "ModelSignature"),
        ("mlflow.types.schema", "Schema"),
        ("mlflow.types.schema", "ColSpec"),
        ("mlflow.types.schema", "TensorSpec"),
        ("mlflow.models.model", "Model"),
    ]:
        assert judge(mod, name).allowed, (mod, name)
    for mod, name in [
        ("mlflow.pyfunc", "load_model"),
        ("mlflow.artifacts", "download_artifacts"),
        ("mlflow.pyfunc.model", "PythonModel.predict"),
        ("mlflow.pyfunc.model", "_load_pyfunc"),
    ]:
        assert not judge(mod, name).allowed, (mod, name)


def test_signature_pickle_is_clean():
    import pickle

    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    sig = infer_signature(pd.DataFrame({"a": [1.0], "b": ["x"]}), np.array([1.0]), params={"k": 1})
    assert findings(pickle.dumps(sig, protocol=4)) == []


def test_decorated_methods_of_a_notebook_class_are_structure():
    class Scaler:
        @staticmethod
        def clip(x):
            return max(0, x)

        @classmethod
        def create(cls):
            return cls()

        @property
        def factor(self):
            return 2

        def transform(self, x):
            return self.clip(x) * self.factor

    Scaler.__module__ = "__main__"
    Scaler.__qualname__ = "Scaler"
    fs = findings(cloudpickle.dumps(Scaler()))
    assert summary(fs) == [("MEDIUM", "pickle.embedded-code")], fs
    assert "methods clip, create, factor, transform" in fs[0].message


def test_code_that_runs_while_loading_is_at_least_high():
    class Stateful:
        def __setstate__(self, state):
            self.__dict__.update(state)

    Stateful.__module__ = "__main__"
    Stateful.__qualname__ = "Stateful"
    obj = Stateful()
    obj.a = 1
    fs = findings(cloudpickle.dumps(obj))
    assert summary(fs) == [("HIGH", "pickle.embedded-code")], fs
    assert "runs while the model loads" in fs[0].message


class _PassesToRebuild:
    """Hands a by-value function to torch's rebuild helper, which calls it while loading."""

    def __init__(self, fn):
        self.fn = fn

    def __reduce__(self):
        import torch

        return (torch._tensor._rebuild_from_type_v2, (self.fn, torch.Tensor, (), None))


def test_embedded_function_handed_to_a_rebuild_helper_is_high():
    pytest.importorskip("torch")

    def payload():
        return None

    fs = findings(cloudpickle.dumps(_PassesToRebuild(payload)))
    passed = [f for f in fs if f.rule == "pickle.embedded-code" and "is passed to" in f.message]
    assert passed and passed[0].severity >= Severity.HIGH, fs
    assert "torch._tensor._rebuild_from_type_v2" in passed[0].evidence


def test_defaultdict_factory_lambda_is_only_medium():
    import collections

    fs = findings(cloudpickle.dumps(collections.defaultdict(lambda: 0, {"a": 1})))
    assert summary(fs) == [("MEDIUM", "pickle.embedded-code")], fs


def test_imports_inside_the_function_are_resolved():
    def benign(x):
        import numpy as np

        return np.sum(x)

    def fetches(url):
        from urllib.request import urlopen

        return urlopen(url).read()

    fs = findings(cloudpickle.dumps(benign))
    assert summary(fs) == [("MEDIUM", "pickle.embedded-code")] and "numpy.sum" in fs[0].message
    fs = findings(cloudpickle.dumps(fetches))
    assert summary(fs) == [("CRITICAL", "pickle.embedded-code")] and "urllib.request.urlopen" in fs[0].message


def test_bare_code_object_is_high() -> None:
    """``types.CodeType(...)`` left bare (not wrapped in a function, not a constant of another code
    object) is a gadget for exec: cloudpickle never writes it, so it is reported HIGH."""
    data = (
        b"\x80\x02ctypes\nCodeType\n(K\x00K\x00K\x00K\x00K\x00K\x00C\x00(t(t(t"
        b"\x8c\x00\x8c\x00\x8c\x00K\x00C\x00C\x00tR."
    )
    got = [f for f in findings(data) if f.rule == "pickle.embedded-code"]
    assert [f.severity for f in got] == [Severity.HIGH] and "bare code object" in got[0].message


# ---------------------------------------------------------------------------------------------
# protocol 2 (torch.save's default): bytes are written as _codecs.encode(str, 'latin1') calls


def test_protocol_2_notebook_code_is_shown_not_feared():
    """MLflow's pytorch flavor pickles a notebook nn.Module with protocol 2; its code objects hold
    bytes as ``_codecs.encode`` calls. They must decode like protocol 3+ (one medium finding)."""
    data = cloudpickle.dumps(_notebook_transformer_pipeline(), protocol=2)
    assert b"_codecs" in data and b"encode" in data  # the sample really is protocol-2 shaped
    fs = findings(data)
    assert summary(fs) == [("MEDIUM", "pickle.embedded-code")], fs


@pytest.mark.parametrize(("make", "evidence"), [(_evil_os_system, "os.system"), (_evil_exec_lambda, "exec")])
def test_protocol_2_malicious_code_is_still_critical(make, evidence):
    fs = findings(cloudpickle.dumps(make(), protocol=2))
    emb = [f for f in fs if f.rule == "pickle.embedded-code"]
    assert emb and all(f.severity == Severity.CRITICAL for f in emb), fs
    assert evidence in emb[0].evidence
