"""``python -m jupyter_ext.seed DIR`` (the ``make lab`` seed): run twice into one directory, the
second time through ``main`` as the Makefile does; the world it makes is real and idempotent."""

from __future__ import annotations

import contextlib
import io
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from mlflow_plugin import PublishBlocked, list_kits, list_runs, load_config, publish_run, verify

try:
    from jupyter_ext import seed as seed_module
except ImportError:  # a checkout whose editable install predates jupyter_ext
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from jupyter_ext import seed as seed_module

from _envhelpers import ADMIN_ENV_VARS


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    mp = pytest.MonkeyPatch()
    for var in (*ADMIN_ENV_VARS, "MLFLOW_MODELKIT_KEY_PASSWORD", "MLFLOW_TRACKING_URI"):
        mp.delenv(var, raising=False)
    before = mlflow.get_tracking_uri()
    home = tmp_path_factory.mktemp("lab") / "lab-data"
    try:
        first = seed_module.seed(home, quiet=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = seed_module.main([str(home)])
        assert mlflow.get_tracking_uri() == before, "the seed must leave MLflow's tracking URI alone"
        yield {"home": home, "first": first, "rc": rc, "stdout": out.getvalue()}
    finally:
        mlflow.set_tracking_uri(before)
        mp.undo()


def test_layout_and_config(lab: dict[str, Any]) -> None:
    home: Path = lab["home"]
    assert (home / "mlflow.db").is_file() and (home / "kits" / "fraud-detection" / "index.json").is_file()
    assert (home / "keys" / "cosign.key").is_file() and (home / "keys" / "cosign.pub").is_file()
    assert b"ENCRYPTED" not in (home / "keys" / "cosign.key").read_bytes()  # empty passphrase
    cfg = tomllib.loads((home / "modelkit.toml").read_text())
    assert cfg["signing"] == {
        "key": str(home / "keys" / "cosign.key"),
        "trusted_keys": [str(home / "keys" / "cosign.pub")],
    }
    loaded = load_config({"MLFLOW_MODELKIT_CONFIG": str(home / "modelkit.toml")})
    assert loaded.signing_key == str(home / "keys" / "cosign.key")


def test_second_run_is_idempotent_and_prints_the_exports(lab: dict[str, Any]) -> None:
    home: Path = lab["home"]
    assert lab["rc"] == 0
    assert sorted(lab["first"].created) == sorted(seed_module.RUNS)
    out = lab["stdout"]
    assert "(created)" not in out and out.count("(kept)") >= len(seed_module.RUNS) + 3
    assert f"export MLFLOW_TRACKING_URI=sqlite:///{home}/mlflow.db" in out
    assert f"export MLFLOW_MODELKIT_CONFIG={home}/modelkit.toml" in out
    client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    exps = [e.name for e in client.search_experiments()]
    assert exps.count("fraud-detection") == 1
    runs = client.search_runs([client.get_experiment_by_name("fraud-detection").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(seed_module.RUNS)  # no duplicates
    assert all(r.info.status == "FINISHED" for r in runs)
    tags = [t for t in list_kits(f"oci:{home}/kits/fraud-detection")["tag"] if not t.startswith("run-")]
    assert tags.count("v1") == 1


def test_runs_differ_and_one_is_published_and_signed(lab: dict[str, Any]) -> None:
    home: Path = lab["home"]
    uri = f"sqlite:///{home}/mlflow.db"
    frame = list_runs("fraud-detection", metrics=["auc"], params=["model", "C"], tracking_uri=uri).frame
    assert len(frame) == 5
    by_name = frame.set_index("run_name")
    assert by_name["metrics.auc"].dropna().nunique() >= 3
    assert by_name["params.model"].nunique() == 3
    assert by_name["signed"].tolist().count(True) == 1 and by_name.loc["logreg-C0.1", "signed"]
    ref = by_name.loc["logreg-C0.1", "published"]
    assert ref == f"oci:{home}/kits/fraud-detection:v1"
    result = verify(ref, keys=[str(home / "keys" / "cosign.pub")])
    assert result.ok, [(c.name, c.detail) for c in result.failures()]


def test_the_findings_runs_behave_as_documented(lab: dict[str, Any]) -> None:
    home: Path = lab["home"]
    uri = f"sqlite:///{home}/mlflow.db"
    cfg = load_config({"MLFLOW_MODELKIT_CONFIG": str(home / "modelkit.toml")})
    runs = lab["first"].runs
    with pytest.raises(PublishBlocked) as blocked:
        publish_run(runs["logreg-extra-index"], "try-extra-index", tracking_uri=uri, config=cfg)
    findings = blocked.value.report.sorted_findings()
    assert (findings[0].rule, str(findings[0].severity)) == ("env.index-override", "high")
    assert {f.path for f in findings if f.rule == "env.index-override"} >= {"requirements.txt"}
    r = publish_run(runs["notebook-model"], "try-notebook", tracking_uri=uri, config=cfg)
    assert r.verdict.startswith("medium")
    assert any(f.rule == "pickle.embedded-code" and str(f.severity) == "medium" for f in r.scan.findings)


def test_module_doctests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The docstring example of ``jupyter_ext.seed`` runs and leaves MLflow's tracking URI alone."""
    import doctest

    for var in (*ADMIN_ENV_VARS, "MLFLOW_TRACKING_URI", "MLFLOW_MODELKIT_KEY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    before = mlflow.get_tracking_uri()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in doctest.DocTestFinder().find(seed_module, seed_module.__name__):
        runner.run(test, out=out.write)
    assert runner.tries >= 3 and runner.failures == 0, out.getvalue()
    assert mlflow.get_tracking_uri() == before
