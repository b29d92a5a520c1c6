"""skops models: the types a ``.skops`` schema builds and the MLmodel's ``skops_trusted_types`` of any
flavor (MLflow 3.17 saves sklearn — and LightGBM's/XGBoost's sklearn classes — with skops by default).

Every sample starts as a REAL model written by ``mlflow.sklearn.save_model``; the malicious ones edit
its ``schema.json`` or its MLmodel, as an attacker would. Nothing is ever loaded.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from mlflow_plugin.scanner.api import scan_directory
from mlflow_plugin.scanner.report import Severity


@pytest.fixture(scope="module")
def skops_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("skops") / "model"
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    mlflow.sklearn.save_model(model, str(d), pip_requirements=["scikit-learn"])
    assert (d / "model.skops").is_file(), "MLflow 3.17 saves sklearn models with skops by default"
    return d


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _rewrite_schema(model_dir: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = model_dir / "model.skops"
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def serious(model_dir: Path) -> list[tuple[str, str, str]]:
    r = scan_directory(str(model_dir))
    return [
        (str(f.severity), f.rule, f.evidence) for f in r.sorted_findings() if f.severity >= Severity.MEDIUM
    ]


def test_real_skops_model_is_clean(skops_model: Path) -> None:
    assert serious(skops_model) == []


def test_schema_that_builds_os_system_is_critical(skops_model: Path, tmp_path: Path) -> None:
    d = _copy(skops_model, tmp_path / "m")

    def add_hook(schema: dict) -> None:
        schema["content"]["content"]["hook"] = {
            "__class__": "system",
            "__module__": "posix",
            "__loader__": "ObjectNode",
            "content": {
                "__class__": "dict",
                "__module__": "builtins",
                "__loader__": "DictNode",
                "content": {},
            },
        }

    _rewrite_schema(d, add_hook)
    assert ("critical", "skops.unsafe-type", "os.system") in serious(d)


def test_function_node_reaching_eval_is_critical(skops_model: Path, tmp_path: Path) -> None:
    d = _copy(skops_model, tmp_path / "m")

    def add_function(schema: dict) -> None:
        schema["content"]["content"]["fn"] = {
            "__class__": "function",
            "__module__": "builtins",
            "__loader__": "FunctionNode",
            "content": {"module_path": "builtins", "function": "eval"},
        }

    _rewrite_schema(d, add_function)
    found = serious(d)
    assert any(rule == "skops.unsafe-type" and ev == "builtins.eval" for _s, rule, ev in found), found


def test_unknown_type_is_medium(skops_model: Path, tmp_path: Path) -> None:
    d = _copy(skops_model, tmp_path / "m")

    def add_type(schema: dict) -> None:
        schema["content"]["content"]["est"] = {
            "__class__": "Estimator",
            "__module__": "somepkg.models",
            "__loader__": "ObjectNode",
            "content": {},
        }

    _rewrite_schema(d, add_type)
    assert ("medium", "skops.unknown-type", "somepkg.models.Estimator") in serious(d)


def test_trusted_types_of_any_flavor_are_judged(skops_model: Path, tmp_path: Path) -> None:
    """MLflow writes ``skops_trusted_types`` under ``flavors.lightgbm`` for LGBMClassifier: judged too."""
    d = _copy(skops_model, tmp_path / "m")
    doc = yaml.safe_load((d / "MLmodel").read_text())
    doc["flavors"]["lightgbm"] = doc["flavors"].pop("sklearn")
    doc["flavors"]["lightgbm"]["skops_trusted_types"] = ["collections.OrderedDict", "posix.system"]
    (d / "MLmodel").write_text(yaml.safe_dump(doc))
    found = serious(d)
    assert ("critical", "mlmodel.skops-trusted-type", "posix.system") in found, found
    r = scan_directory(str(d))
    assert any("flavors.lightgbm.skops_trusted_types" in f.message for f in r.findings)
