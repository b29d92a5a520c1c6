"""MLmodel files: real models saved with MLflow, then rewritten the way an attacker would."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mlflow_plugin._internal.mlmodel import read_mlmodel
from mlflow_plugin.scanner.api import scan
from mlflow_plugin.scanner.report import ScanReport, Severity

pytest.importorskip("mlflow")


def mlmodel_findings(r: ScanReport) -> list[tuple[str, str, str, str]]:
    return sorted(
        (f.severity.name, f.rule, f.evidence, f.message) for f in r.findings if f.rule.startswith("mlmodel.")
    )


def serious(r: ScanReport) -> list[tuple[str, str, str]]:
    return [
        (f.rule, f.severity.name, f.message)
        for f in r.findings
        if f.rule.startswith("mlmodel.") and f.severity >= Severity.HIGH
    ]


def rewrite(model_dir: Path, edit) -> None:
    """Load the MLmodel safely, change it, write it back as YAML."""
    from ruamel.yaml import YAML

    p = model_dir / "MLmodel"
    doc = read_mlmodel(p.read_bytes())
    edit(doc)
    yaml = YAML(typ="safe", pure=True)
    with p.open("w") as f:
        yaml.dump(doc, f)


@pytest.fixture(scope="module")
def skops_model(tmp_path_factory) -> Path:
    pytest.importorskip("skops")
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    d = tmp_path_factory.mktemp("skops") / "model"
    m = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(m, str(d), serialization_format="skops", pip_requirements=["scikit-learn"])
    return d


@pytest.fixture(scope="module")
def code_model(tmp_path_factory) -> Path:
    import mlflow.pyfunc

    base = tmp_path_factory.mktemp("code")
    src = base / "model.py"
    src.write_text(
        "import mlflow\nfrom mlflow.pyfunc import PythonModel\n\n\n"
        "class M(PythonModel):\n    def predict(self, context, model_input):\n"
        "        return model_input\n\n\n"
        "mlflow.models.set_model(M())\n"
    )
    d = base / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(str(d), python_model=str(src), pip_requirements=[])
    return d


def copy_model(src: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def test_real_skops_model_is_clean(skops_model):
    r = scan(str(skops_model))
    assert {f.path: f.format for f in r.files}["MLmodel"] == "mlmodel"
    assert serious(r) == []
    assert [f for f in r.findings if f.rule.startswith("mlmodel.")] == []


def test_real_model_from_code_names_the_file_that_runs(code_model):
    r = scan(str(code_model))
    assert serious(r) == []
    found = mlmodel_findings(r)
    assert [(s, rule, ev) for s, rule, ev, _ in found] == [("INFO", "mlmodel.model-code", "model.py")]
    assert "python_function.model_code_path" in found[0][3]
    # MLflow records the saving machine's absolute path there: not a path escape
    assert read_mlmodel((code_model / "MLmodel").read_bytes())["flavors"]["python_function"][
        "model_code_path"
    ].startswith("/")


@pytest.mark.parametrize(
    ("module", "severity"),
    [
        ("os", "CRITICAL"),
        ("posix", "CRITICAL"),
        ("subprocess", "CRITICAL"),
        ("builtins", "CRITICAL"),
        ("payload", "HIGH"),
    ],
)
def test_loader_module_that_is_not_a_flavor(skops_model, tmp_path, module, severity):
    d = copy_model(skops_model, tmp_path)
    rewrite(d, lambda doc: doc["flavors"]["python_function"].__setitem__("loader_module", module))
    found = [f for f in scan(str(d)).findings if f.rule == "mlmodel.loader-module"]
    assert [(f.severity.name, f.evidence) for f in found] == [(severity, module)]
    assert "`flavors.python_function.loader_module`" in found[0].message
    assert f"`{module}`" in found[0].message and "\n" not in found[0].message
    if severity == "HIGH":
        assert "code_paths" in found[0].message


def test_loader_module_shipped_in_code_paths_is_medium(code_model, tmp_path):
    d = copy_model(code_model, tmp_path)
    (d / "code").mkdir()
    (d / "code" / "my_loader.py").write_text("def _load_pyfunc(path):\n    return None\n")

    def edit(doc):
        fl = doc["flavors"]["python_function"]
        fl["loader_module"] = "my_loader"
        fl["code"] = "code"
        doc["code_paths"] = ["code/my_loader.py"]

    rewrite(d, edit)
    r = scan(str(d))
    found = [f for f in r.findings if f.rule == "mlmodel.loader-module"]
    assert [(f.severity.name, f.evidence) for f in found] == [("MEDIUM", "my_loader")]
    assert "model's own code" in found[0].message
    assert "(code/my_loader.py)" in found[0].message  # the file the code.* rules analysed
    assert not [f for f in r.findings if f.rule == "mlmodel.missing-code"]


def test_mlflow_modules_are_fine_anywhere(skops_model, tmp_path):
    d = copy_model(skops_model, tmp_path)
    rewrite(
        d, lambda doc: doc["flavors"]["python_function"].__setitem__("loader_module", "mlflow.pyfunc.model")
    )
    assert serious(scan(str(d))) == []


def test_skops_trusted_types(skops_model, tmp_path):
    d = copy_model(skops_model, tmp_path)
    rewrite(
        d,
        lambda doc: doc["flavors"]["sklearn"].__setitem__(
            "skops_trusted_types",
            ["posix.system", "payload.Evil", "sklearn.linear_model._logistic.LogisticRegression"],
        ),
    )
    found = sorted(
        (f.severity.name, f.evidence, f.message)
        for f in scan(str(d)).findings
        if f.rule == "mlmodel.skops-trusted-type"
    )
    assert [(s, e) for s, e, _ in found] == [("CRITICAL", "posix.system"), ("HIGH", "payload.Evil")]
    assert all("`flavors.sklearn.skops_trusted_types`" in m for _, _, m in found)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("python_function.model_path", "/etc/passwd"),
        ("python_function.model_path", "../../secrets/model.skops"),
        ("sklearn.pickled_model", "model\\..\\x.skops"),
        ("python_function.data", "C:/Users/x/model.pkl"),
        ("python_function.data", "model\x01.pkl"),
        ("python_function.python_model", "/tmp/python_model.pkl"),
    ],
)
def test_paths_outside_the_model(skops_model, tmp_path, key, value):
    d = copy_model(skops_model, tmp_path)
    flavor, k = key.split(".")
    rewrite(d, lambda doc: doc["flavors"][flavor].__setitem__(k, value))
    found = [f for f in scan(str(d)).findings if f.rule == "mlmodel.path"]
    assert [(f.severity.name, f.evidence) for f in found] == [("HIGH", value)]
    assert f"`flavors.{key}`" in found[0].message


def test_top_level_code_paths_escape(code_model, tmp_path):
    d = copy_model(code_model, tmp_path)
    rewrite(d, lambda doc: doc.__setitem__("code_paths", ["/opt/evil/loader.py"]))
    found = [f for f in scan(str(d)).findings if f.rule == "mlmodel.path"]
    assert [(f.severity.name, f.evidence) for f in found] == [("HIGH", "/opt/evil/loader.py")]
    assert "`code_paths`" in found[0].message


TRANSFORMERS_MLMODEL = """\
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.transformers
    python_version: 3.11.7
  transformers:
    code: null
    components:
    - tokenizer
    framework: pt
    instance_type: TextClassificationPipeline
    model_binary: model
    pipeline_model_type: BertForSequenceClassification
    source_model_name: someone/model
    task: text-classification
    tokenizer_type: BertTokenizerFast
    torch_dtype: torch.float32
    transformers_version: 4.44.0
mlflow_version: 2.16.0
"""


def test_transformers_plain_is_clean(tmp_path):
    (tmp_path / "MLmodel").write_text(TRANSFORMERS_MLMODEL)
    assert mlmodel_findings(scan(str(tmp_path))) == []


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("    trust_remote_code: true\n", "trust_remote_code"),
        ("    auto_map:\n      AutoModel: modeling_evil.EvilModel\n", "auto_map"),
        ("    model_type: evil_arch\n", "model_type"),
    ],
)
def test_transformers_remote_code(tmp_path, extra, key):
    text = TRANSFORMERS_MLMODEL.replace("  transformers:\n", "  transformers:\n" + extra)
    (tmp_path / "MLmodel").write_text(text)
    found = [f for f in scan(str(tmp_path)).findings if f.rule == "mlmodel.remote-code"]
    # an unknown model_type needs custom code but does not name it: medium
    assert [f.severity.name for f in found] == ["MEDIUM" if key == "model_type" else "HIGH"]
    assert f"`flavors.transformers.{key}`" in found[0].message


@pytest.mark.parametrize("model_type", ["bert", "llama", "xlm-roberta"])
def test_transformers_builtin_model_type_is_clean(tmp_path, model_type):
    text = TRANSFORMERS_MLMODEL.replace(
        "  transformers:\n", f"  transformers:\n    model_type: {model_type}\n"
    )
    (tmp_path / "MLmodel").write_text(text)
    assert mlmodel_findings(scan(str(tmp_path))) == []


def test_transformers_nested_trust_remote_code(tmp_path):
    extra = "    model_config:\n      trust_remote_code: true\n"
    (tmp_path / "MLmodel").write_text(
        TRANSFORMERS_MLMODEL.replace("  transformers:\n", "  transformers:\n" + extra)
    )
    found = [f for f in scan(str(tmp_path)).findings if f.rule == "mlmodel.remote-code"]
    assert [f.severity.name for f in found] == ["HIGH"]
    assert "`flavors.transformers.model_config.trust_remote_code`" in found[0].message


def test_keras_custom_objects(tmp_path):
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.tensorflow\n  tensorflow:\n"
        "    code: null\n    custom_objects: custom_objects.cloudpickle\n    model_type: keras\n"
        "    keras_version: 3.5.0\n"
    )
    found = [f for f in scan(str(tmp_path)).findings if f.rule == "mlmodel.custom-objects"]
    assert [(f.severity.name, f.evidence) for f in found] == [("MEDIUM", "custom_objects")]
    assert "`flavors.tensorflow.custom_objects`" in found[0].message


def test_unknown_flavor_and_its_loader(tmp_path):
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
        "  evilflavor:\n    loader_module: subprocess\n"
    )
    found = mlmodel_findings(scan(str(tmp_path)))
    assert [(s, r, e) for s, r, e, _ in found] == [
        ("CRITICAL", "mlmodel.loader-module", "subprocess"),
        ("INFO", "mlmodel.unknown-flavor", "evilflavor"),
    ]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "flavors: [1\n"])
def test_malformed(tmp_path, text):
    (tmp_path / "MLmodel").write_text(text)
    found = mlmodel_findings(scan(str(tmp_path)))
    assert [(s, r) for s, r, _, _ in found] == [("LOW", "mlmodel.malformed")]


def test_secrets_in_mlmodel_are_still_found(tmp_path):
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
        "metadata:\n  db: postgres://ml:S3cr3t-Pw_9@db.internal/x\n"
    )
    assert "secret.url-password" in {f.rule for f in scan(str(tmp_path)).findings}


def test_only_files_named_exactly_mlmodel(tmp_path):
    (tmp_path / "mlmodel").write_text("flavors:\n  python_function:\n    loader_module: os\n")
    r = scan(str(tmp_path))
    assert [f.format for f in r.files] == ["text"]
    assert mlmodel_findings(r) == []
