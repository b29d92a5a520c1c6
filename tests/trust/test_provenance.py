"""Provenance from a real MLflow run (sqlite tracking store): facts, SLSA statement, ML-BOM."""

from __future__ import annotations

import base64
import dataclasses
import doctest
import hashlib
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelInput  # noqa: E402

from mlflow_plugin._version import __version__  # noqa: E402
from mlflow_plugin.harden import run_facts  # noqa: E402
from mlflow_plugin.harden.run_facts import collect_run_facts, hash_path  # noqa: E402
from mlflow_plugin.trust import mlbom, provenance  # noqa: E402
from mlflow_plugin.trust.mlbom import build_mlbom, validate_mlbom  # noqa: E402
from mlflow_plugin.trust.provenance import (  # noqa: E402
    BUILD_TYPE,
    REDACTED,
    ProvenanceError,
    RunFacts,
    build_statement,
    redact_text,
    redact_uri,
    redact_value,
    summarize,
    validate_statement,
)

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PLANTED = {
    "tracking": "TrackPlantedPw9",
    "git": "GitPlantedPw9",
    "param": "Hunter2-ParamPlanted",
    "dataset": "DsPlantedPw9",
    "query": "QueryPlantedTok9",
    "token": "ghp_" + "Zx9" * 12,
}
TRACKING_WITH_CREDS = f"https://alice:{PLANTED['tracking']}@mlflow.example.com:5000"
KIT_DIGEST = "sha256:" + "ab" * 32
BASE_KIT_DIGEST = "cd" * 32
COMMIT = "c27d339e" * 5


class CredClient(MlflowClient):
    """A client whose tracking URI carries a password (as users do put it there)."""

    @property
    def tracking_uri(self) -> str:
        return TRACKING_WITH_CREDS


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """One parent run with a child training run that has everything provenance records."""
    from mlflow.tracking import fluent

    tmp = tmp_path_factory.mktemp("prov")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp / "xdg"))
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID"):
        mp.setenv(var, "")  # recorded, so undo() restores what was there (set_experiment sets the 2nd)
        mp.delenv(var)
    old_uri, old_exp = mlflow.get_tracking_uri(), fluent._active_experiment_id
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/m.db")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            world = _make_world(tmp)
        yield world
    finally:
        mlflow.set_tracking_uri(old_uri)
        fluent._active_experiment_id = old_exp
        fluent._reset_last_logged_model_id()
        mp.undo()


def _make_world(tmp: Path) -> dict:
    from sklearn.linear_model import LogisticRegression

    df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    train = tmp / "train.csv"
    df.to_csv(train, index=False)
    nbdir = tmp / "nb"
    (nbdir / "data").mkdir(parents=True)
    valid = nbdir / "data" / "valid.csv"
    df.head(2).to_csv(valid, index=False)
    notebook = nbdir / "train.ipynb"
    notebook.write_text('{"cells": [], "nbformat": 4}')
    images = tmp / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.bin").write_bytes(b"a" * 100)
    (images / "sub" / "b.bin").write_bytes(b"b" * 3000)
    remote_copy = b"x,y\n9,1\n"

    client = MlflowClient()
    # artifacts in the tmp dir too (the sqlite store's default root is ./mlruns of the cwd)
    exp_id = mlflow.create_experiment("prov-exp", artifact_location=(tmp / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run(run_name="pretrain") as pre:
        base = client.create_logged_model(exp_id, name="base", source_run_id=pre.info.run_id)
        mlflow.set_tags({"modelkit.digest": f"sha256:{BASE_KIT_DIGEST}", "modelkit.ref": "reg/team/base:v1"})
    with (
        mlflow.start_run(run_name="parent") as parent,
        mlflow.start_run(run_name="train", nested=True) as run,
    ):
        mlflow.log_params(
            {
                "lr": 0.1,
                "epochs": 3,
                "db_password": PLANTED["param"],
                "tokenizer": "bert-base-uncased",
                "max_tokens": 512,
            }
        )
        for step, v in enumerate([0.5, 0.8, 0.9]):
            mlflow.log_metric("acc", v, step=step)
        mlflow.log_metric("loss", 0.25)
        mlflow.log_metric("weird", float("nan"))
        mlflow.set_tags(
            {
                "mlflow.source.git.repoURL": f"https://bob:{PLANTED['git']}@github.com/org/repo.git",
                "mlflow.source.git.commit": COMMIT,
                "mlflow.source.git.branch": "main",
                "mlflow.source.git.dirty": "true",
                "modelkit.source.notebook": str(notebook),
                "modelkit.source.notebook_sha256": sha256_file(notebook),
                "api_token": PLANTED["token"],
                "team": "fraud",
                "mlflow.log-model.history": "[" + '{"big": 1},' * 50 + "{}]",
            }
        )
        ds = mlflow.data
        mlflow.log_input(ds.from_pandas(df, source=str(train), name="train"), context="training")
        mlflow.log_input(ds.from_pandas(df.head(2), source="data/valid.csv", name="valid"), context="eval")
        mlflow.log_input(ds.from_pandas(df.head(3), source=str(images), name="images"), context="training")
        mlflow.log_input(
            ds.from_pandas(df.head(1), source=str(tmp / "gone.csv"), name="gone"), context="test"
        )
        url = f"https://carol:{PLANTED['dataset']}@data.example.com/d/remote.csv?token={PLANTED['query']}"
        mlflow.log_input(ds.from_pandas(df.tail(2), source=url, name="remote"), context="training")
        mlflow.log_input(ds.from_pandas(df.tail(1), source="s3://bucket/far.parquet", name="far"))
        mlflow.log_input(model=LoggedModelInput(base.model_id))
        model = LogisticRegression().fit(df[["x"]], df["y"])
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    lm = client.get_logged_model(info.model_id)
    mdir = Path(lm.artifact_location.removeprefix("file://"))
    kit_files = [
        (f"model/{p.relative_to(mdir).as_posix()}", p.stat().st_size, sha256_file(p))
        for p in sorted(mdir.rglob("*"))
        if p.is_file()
    ]
    kit_files.append(("datasets/remote.csv", len(remote_copy), hashlib.sha256(remote_copy).hexdigest()))
    artifact_sha256 = {path: sha for path, _, sha in kit_files}
    kwargs = dict(
        base_dirs=[str(tmp / "elsewhere"), str(nbdir)],
        artifact_sha256=artifact_sha256,
        mlmodels={"model": (mdir / "MLmodel").read_text()},
        requirements={"model": (mdir / "requirements.txt").read_text()},
    )
    facts = collect_run_facts(run.info.run_id, CredClient(), **kwargs)
    return {
        "tmp": tmp,
        "run_id": run.info.run_id,
        "parent_id": parent.info.run_id,
        "exp_id": exp_id,
        "base_id": base.model_id,
        "model_id": info.model_id,
        "train": train,
        "valid": valid,
        "images": images,
        "notebook": notebook,
        "remote_copy": remote_copy,
        "kit_files": kit_files,
        "kwargs": kwargs,
        "facts": facts,
        "statement": build_statement(
            facts, "localhost:5000/team/fraud", KIT_DIGEST, kit_ref="localhost:5000/team/fraud:v1"
        ),
    }


def _ds(facts: RunFacts, name: str) -> provenance.DatasetFact:
    return next(d for d in facts.datasets if d.name == name)


def _dep(statement: dict, name: str) -> dict:
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    return next(d for d in deps if d.get("name") == name)


# ----------------------------------------------------------------------------- facts


def test_run_facts_basics(world: dict) -> None:
    f: RunFacts = world["facts"]
    assert f.run_id == world["run_id"] and f.run_name == "train"
    assert f.experiment_id == world["exp_id"] and f.experiment_name == "prov-exp"
    assert f.status == "FINISHED" and f.user
    assert RFC3339.match(f.start_time) and RFC3339.match(f.end_time) and f.start_time <= f.end_time
    assert f.tracking_uri == "https://mlflow.example.com:5000"
    assert f.params["lr"] == "0.1" and f.params["epochs"] == "3" and f.params["max_tokens"] == "512"
    assert f.params["tokenizer"] == "bert-base-uncased"  # "token" inside a word is not a secret
    assert f.params["db_password"] == REDACTED
    assert f.metrics["acc"] == 0.9 and f.metrics["loss"] == 0.25
    assert f.metric_history_len == {"acc": 3, "loss": 1, "weird": 1}
    assert f.parent_run_id == world["parent_id"]
    assert "mlflow.log-model.history" not in f.tags
    assert f.tags["team"] == "fraud" and f.tags["api_token"] == REDACTED
    assert f.tags["mlflow.source.git.repoURL"] == "https://github.com/org/repo.git"


def test_run_facts_source_env_models(world: dict) -> None:
    f: RunFacts = world["facts"]
    g = f.git
    assert (g.repo_url, g.commit, g.branch, g.dirty) == (
        "https://github.com/org/repo.git",
        COMMIT,
        "main",
        True,
    )
    assert g.notebook == str(world["notebook"]) and g.notebook_sha256 == sha256_file(world["notebook"])
    # the run-context provider of this package recorded the environment
    e = f.environment
    assert e.python and e.platform and re.fullmatch(r"[0-9a-f]{64}", e.packages_sha256)
    assert e.packages_count > 10
    assert "scikit-learn" in e.model_requirements and any(
        r.startswith("mlflow==") for r in e.model_requirements
    )
    [m] = f.logged_models
    assert m.model_id == world["model_id"] and m.name == "model"
    assert set(m.flavors) == {"python_function", "sklearn"} and m.flavors["sklearn"]
    assert m.mlflow_version == mlflow.__version__
    [b] = f.base_models
    assert (b.model_id, b.name) == (world["base_id"], "base")
    assert (b.kit_digest, b.kit_ref) == (BASE_KIT_DIGEST, "reg/team/base:v1")


def test_dataset_rehash(world: dict) -> None:
    f: RunFacts = world["facts"]
    assert sorted(d.name for d in f.datasets) == ["far", "gone", "images", "remote", "train", "valid"]
    train = _ds(f, "train")
    assert train.sha256 == hashlib.sha256(world["train"].read_bytes()).hexdigest()
    assert train.reachable and train.rehashed_from == f"file:{world['train']}" and train.kind == "file"
    assert train.context == "training" and re.fullmatch(r"[0-9a-f]{8}", train.mlflow_digest)
    assert train.source_type == "local" and train.uri == f"file://{world['train']}"
    assert train.schema and train.profile["num_rows"] == 4
    # relative path found through the second base dir
    valid = _ds(f, "valid")
    assert valid.sha256 == sha256_file(world["valid"]) and valid.uri == "data/valid.csv"
    # directory: sha256 over sorted "<sha256>  <relpath>" lines
    images = world["images"]
    lines = "".join(f"{sha256_file(images / rel)}  {rel}\n" for rel in ["a.bin", "sub/b.bin"])
    assert _ds(f, "images").sha256 == hashlib.sha256(lines.encode()).hexdigest()
    assert _ds(f, "images").kind == "directory"
    # remote source, but the same file is in the kit: matched by name
    remote = _ds(f, "remote")
    assert remote.sha256 == hashlib.sha256(world["remote_copy"]).hexdigest()
    assert remote.rehashed_from == "artifact:datasets/remote.csv" and remote.reachable
    # unreachable: recorded, never omitted
    gone, far = _ds(f, "gone"), _ds(f, "far")
    assert gone.sha256 is None and not gone.reachable and "not found" in gone.note
    assert far.sha256 is None and not far.reachable and "remote" in far.note
    assert far.uri == "s3://bucket/far.parquet" and far.source_type == "s3"


def test_directory_digest_matches_coreutils(tmp_path: Path) -> None:
    if not (shutil.which("sha256sum") and shutil.which("find") and shutil.which("xargs")):
        pytest.skip("coreutils not available")
    (tmp_path / "d" / "z").mkdir(parents=True)
    for rel, data in {"b.txt": b"bb", "a b.txt": b"a", "z/c": b"", "Z": b"upper"}.items():
        (tmp_path / "d" / rel).write_bytes(data)
    out = subprocess.run(
        "find -L . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum",
        shell=True,
        cwd=tmp_path / "d",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert hash_path(str(tmp_path / "d")) == ("directory", out)


def test_hash_path_uses_stat_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    f = tmp_path / "data.bin"
    f.write_bytes(b"1" * 5000)
    first = hash_path(str(f))
    real = run_facts.file_sha256
    monkeypatch.setattr(run_facts, "file_sha256", lambda p: pytest.fail("re-read an unchanged file"))
    assert hash_path(str(f)) == first
    f.write_bytes(b"2" * 5000)
    monkeypatch.setattr(run_facts, "file_sha256", real)
    assert hash_path(str(f)) == ("file", hashlib.sha256(b"2" * 5000).hexdigest())


# ----------------------------------------------------------------------------- statement


def test_statement_envelope_and_parameters(world: dict) -> None:
    st, f = world["statement"], world["facts"]
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["subject"] == [{"name": "localhost:5000/team/fraud", "digest": {"sha256": "ab" * 32}}]
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    bd = st["predicate"]["buildDefinition"]
    assert bd["buildType"] == BUILD_TYPE == "https://mlflow-modelkit.dev/buildtypes/mlflow-run/v1"
    ext = bd["externalParameters"]
    assert set(ext) == {"run", "source", "hyperparameters", "datasets"}
    assert ext["run"] == {"experiment": "prov-exp", "run_name": "train"}
    assert ext["source"]["uri"] == f"git+https://github.com/org/repo.git@{COMMIT}"
    assert ext["source"]["dirty"] is True and ext["source"]["branch"] == "main"
    assert ext["source"]["notebook"] == str(world["notebook"])
    assert ext["hyperparameters"]["lr"] == "0.1" and ext["hyperparameters"]["db_password"] == REDACTED
    assert sorted(ext["datasets"]) == sorted(d.uri for d in f.datasets)
    internal = bd["internalParameters"]
    assert internal["tracking_uri"] == "https://mlflow.example.com:5000"
    assert internal["run_id"] == world["run_id"] and internal["status"] == "FINISHED"
    assert internal["user"] == f.user and internal["parent_run_id"] == world["parent_id"]
    assert internal["kit_ref"] == "localhost:5000/team/fraud:v1"
    env = internal["environment"]
    assert (
        env["packages_sha256"] == f.environment.packages_sha256
        and "scikit-learn" in env["model_requirements"]
    )
    assert env["python"] == f.environment.python


def test_statement_dependencies(world: dict) -> None:
    st, f = world["statement"], world["facts"]
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    allowed = {"name", "uri", "digest", "content", "downloadLocation", "mediaType", "annotations"}
    assert all(set(d) <= allowed and (d.get("uri") or d.get("digest")) for d in deps)
    src = _dep(st, "source")
    assert src["digest"] == {"gitCommit": COMMIT} and src["uri"].startswith(
        "git+https://github.com/org/repo.git@"
    )
    assert src["annotations"]["dirty"] is True
    assert _dep(st, "notebook")["digest"] == {"sha256": sha256_file(world["notebook"])}
    train = _dep(st, "train")
    assert train["digest"] == {"sha256": sha256_file(world["train"])}
    assert train["annotations"]["mlflowDigest"] == _ds(f, "train").mlflow_digest
    assert train["annotations"]["context"] == "training" and train["annotations"]["reachable"] is True
    assert "digestScheme" in _dep(st, "images")["annotations"]
    for name in ("gone", "far"):  # unreachable: listed, no digest, marked
        d = _dep(st, name)
        assert "digest" not in d and d["annotations"]["reachable"] is False and d["annotations"]["note"]
    assert _dep(st, "remote")["annotations"]["rehashedFrom"] == "artifact:datasets/remote.csv"
    base = _dep(st, "base-model:base")
    assert base["uri"] == f"models:/{world['base_id']}" and base["digest"] == {"sha256": BASE_KIT_DIGEST}
    parent = _dep(st, "parent-run")
    assert parent["uri"].endswith(f"#/experiments/{world['exp_id']}/runs/{world['parent_id']}")
    envdep = _dep(st, "python-environment")
    assert envdep["digest"] == {"sha256": f.environment.packages_sha256}
    assert envdep["annotations"]["packagesCount"] == f.environment.packages_count


def test_statement_run_details(world: dict) -> None:
    st, f = world["statement"], world["facts"]
    rd = st["predicate"]["runDetails"]
    assert rd["builder"]["id"] == f"https://mlflow-modelkit.dev/builder/mlflow-modelkit@{__version__}"
    meta = rd["metadata"]
    assert meta["invocationId"] == (
        f"https://mlflow.example.com:5000#/experiments/{world['exp_id']}/runs/{world['run_id']}"
    )
    assert RFC3339.match(meta["startedOn"]) and RFC3339.match(meta["finishedOn"])
    assert (meta["startedOn"], meta["finishedOn"]) == (f.start_time, f.end_time)
    metrics = next(b for b in rd["byproducts"] if b["name"] == "metrics")
    raw = base64.b64decode(metrics["content"])
    assert metrics["digest"] == {"sha256": hashlib.sha256(raw).hexdigest()}
    assert metrics["mediaType"] == "application/json"
    body = json.loads(raw)
    assert body == {
        "metrics": {"acc": 0.9, "loss": 0.25, "weird": "NaN"},
        "history_length": {"acc": 3, "loss": 1, "weird": 1},
    }
    model = next(b for b in rd["byproducts"] if b["name"] == "model:model")
    assert model["uri"] == f"models:/{world['model_id']}"
    assert set(model["annotations"]["flavors"]) == {"python_function", "sklearn"}
    json.dumps(st, allow_nan=False)  # strict JSON despite the NaN metric


def test_no_credentials_anywhere(world: dict) -> None:
    st = world["statement"]
    blobs = {
        "statement": json.dumps(st),
        "facts": json.dumps(world["facts"].to_dict()),
        "summary": summarize(st),
        "mlbom": build_mlbom(
            world["facts"], "localhost:5000/team/fraud:v1", KIT_DIGEST, world["kit_files"]
        ).decode(),
    }
    for where, text in blobs.items():
        for what, secret in PLANTED.items():
            assert secret not in text, f"{what} secret leaked into the {where}"
        assert "alice" not in text and "bob:" not in text and "carol" not in text, where
    assert provenance.find_credentials(st) == []
    remote = _dep(st, "remote")
    assert remote["uri"].startswith("https://data.example.com/d/remote.csv?token=")


def test_deterministic(world: dict) -> None:
    again = collect_run_facts(world["run_id"], CredClient(), **world["kwargs"])
    assert json.dumps(again.to_dict()) == json.dumps(world["facts"].to_dict())  # NaN != NaN, so as JSON
    st2 = build_statement(
        again, "localhost:5000/team/fraud", KIT_DIGEST, kit_ref="localhost:5000/team/fraud:v1"
    )
    assert json.dumps(st2, sort_keys=True) == json.dumps(world["statement"], sort_keys=True)
    a = build_mlbom(world["facts"], "localhost:5000/team/fraud:v1", KIT_DIGEST, world["kit_files"])
    b = build_mlbom(again, "localhost:5000/team/fraud:v1", KIT_DIGEST, world["kit_files"])
    assert a == b


def test_unreachable_without_artifact_index(world: dict) -> None:
    kwargs = dict(world["kwargs"], artifact_sha256=None, base_dirs=[str(world["tmp"] / "nowhere")])
    f = collect_run_facts(world["run_id"], CredClient(), **kwargs)
    assert len(f.datasets) == 6  # nothing silently dropped
    assert _ds(f, "remote").sha256 is None and "remote" in _ds(f, "remote").note
    # a relative source is still found next to the notebook the run-context provider recorded
    assert _ds(f, "valid").rehashed_from == f"file:{world['valid']}"
    assert _ds(f, "train").sha256 == sha256_file(world["train"])  # absolute path still resolves


def test_extra_subjects_and_requirements_override(world: dict) -> None:
    extra = [{"name": "model", "digest": {"sha256": "ef" * 32}}]
    st = build_statement(
        world["facts"], "kit", "ab" * 32, extra_subjects=extra, model_requirements=["torch==2.5"]
    )
    assert st["subject"][1] == extra[0]
    env = st["predicate"]["buildDefinition"]["internalParameters"]["environment"]
    assert env["model_requirements"] == ["torch==2.5"]
    assert "kit_ref" not in st["predicate"]["buildDefinition"]["internalParameters"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["subject"][0].pop("digest"), "has no digest"),
        (lambda s: s["subject"][0].update(digest={"sha256": "XYZ"}), "not lowercase hex"),
        (
            lambda s: s["predicate"]["runDetails"]["metadata"].update(startedOn="2026-01-02 03:04:05"),
            "startedOn",
        ),
        (lambda s: s["predicate"]["buildDefinition"].pop("buildType"), "buildType"),
        (lambda s: s["predicate"]["runDetails"]["builder"].pop("id"), "builder.id"),
        (
            lambda s: s["predicate"]["buildDefinition"]["internalParameters"].update(
                tracking_uri="https://u:pw@host"
            ),
            "credentials",
        ),
        (lambda s: s["predicate"]["runDetails"]["byproducts"].append({"name": "x"}), "no uri, digest"),
        (
            lambda s: s["predicate"]["runDetails"]["byproducts"].append({"uri": "u", "size": 1}),
            "unknown fields",
        ),
    ],
)
def test_validate_rejects(world: dict, mutate, message: str) -> None:
    st = json.loads(json.dumps(world["statement"]))
    validate_statement(st)
    mutate(st)
    with pytest.raises(ProvenanceError, match=message):
        validate_statement(st)


def test_bad_subject_digest(world: dict) -> None:
    with pytest.raises(ProvenanceError, match="not a sha256 digest"):
        build_statement(world["facts"], "kit", "sha256:1234")


def test_summarize(world: dict) -> None:
    text = summarize(world["statement"])
    assert "train (" + world["run_id"] + ") in experiment prov-exp" in text
    assert f"git+https://github.com/org/repo.git@{COMMIT} (branch main, DIRTY working tree)" in text
    assert "acc=0.9 (3 points)" in text and "lr=0.1" in text and "db_password=<redacted>" in text
    assert re.search(r"gone \[test\].*NOT RE-HASHED: local source not found", text)
    assert re.search(r"far .*NOT RE-HASHED: remote source", text)
    assert re.search(r"remote \[training\].*\(kit copy\)", text)
    assert f"base-model:base  models:/{world['base_id']}  sha256:{BASE_KIT_DIGEST[:12]}" in text
    assert "scikit-learn" in text and "python_function" in text


# ----------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("db_password", "hunter2", REDACTED),
        ("clientSecret", "x", REDACTED),
        ("api_key", "sk-live-Zq81nWm3Lp0Rt7Vx", REDACTED),
        ("apiKey", "Zq81nWm3Lp0Rt7Vx", REDACTED),
        ("HF_TOKEN", "hf_" + "aB3" * 10, REDACTED),
        ("key_column", "customer_id", "customer_id"),
        ("max_tokens", "4096", "4096"),
        ("tokenizer", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
        ("note", "see ghp_" + "a1" * 18 + " for access", "see <redacted> for access"),
        ("db_uri", "postgresql://u:p@db:5432/x", "postgresql://db:5432/x"),
        ("mlflow.source.git.commit", COMMIT, COMMIT),
        ("task", "task-classification-binary-v1", "task-classification-binary-v1"),
        ("model", "sk-learn-pipeline-standard-scaler", "sk-learn-pipeline-standard-scaler"),
    ],
)
def test_redact_value(key: str, value: str, expected: str) -> None:
    assert redact_value(key, value) == expected


def test_redact_uri_and_text() -> None:
    assert redact_uri("s3://b/k?X-Amz-Signature=abc&X-Amz-Credential=AK&part=1") == (
        "s3://b/k?X-Amz-Signature=%3Credacted%3E&X-Amz-Credential=%3Credacted%3E&part=1"
    )
    assert redact_uri("https://h/x.csv?v=2") == "https://h/x.csv?v=2"
    assert redact_text("AKIAABCDEFGHIJKLMNOP in text") == "<redacted> in text"


# ----------------------------------------------------------------------------- ML-BOM


def test_mlbom(world: dict) -> None:
    f = world["facts"]
    raw = build_mlbom(f, "localhost:5000/team/fraud:v1", KIT_DIGEST, world["kit_files"])
    validate_mlbom(raw)
    bom = json.loads(raw)
    assert bom["specVersion"] == "1.6" and bom["bomFormat"] == "CycloneDX"
    kit = bom["metadata"]["component"]
    assert kit["type"] == "machine-learning-model" and kit["name"] == "fraud" and kit["version"] == "v1"
    assert kit["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert (
        kit["purl"].startswith("pkg:oci/fraud@sha256:")
        and "repository_url=localhost:5000/team/fraud" in kit["purl"]
    )
    card = kit["modelCard"]
    assert card["modelParameters"]["architectureFamily"] == "sklearn"
    metrics = {m["type"]: m["value"] for m in card["quantitativeAnalysis"]["performanceMetrics"]}
    assert metrics == {"acc": "0.9", "loss": "0.25", "weird": "NaN"}
    hp = {p["name"].rsplit(":", 1)[1]: p["value"] for p in card["properties"]}
    assert hp["lr"] == "0.1" and hp["db_password"] == REDACTED
    comps = {c["bom-ref"]: c for c in bom["components"]}
    refs = [d["ref"] for d in card["modelParameters"]["datasets"]]
    assert len(refs) == 6 and all(comps[r]["type"] == "data" for r in refs)
    by_name = {comps[r]["name"]: comps[r] for r in refs}
    assert by_name["train"]["hashes"] == [{"alg": "SHA-256", "content": sha256_file(world["train"])}]
    assert by_name["train"]["data"][0]["contents"]["url"] == f"file://{world['train']}"
    assert "hashes" not in by_name["gone"]
    assert {"name": "mlflow-modelkit:reachable", "value": "false"} in by_name["gone"]["properties"]
    for path, size, sha in world["kit_files"]:
        c = comps[f"file:{path}"]
        assert c["type"] == "file" and c["hashes"][0]["content"] == sha
        assert {"name": "mlflow-modelkit:size", "value": str(size)} in c["properties"]
    assert comps["environment"]["hashes"][0]["content"] == f.environment.packages_sha256
    assert comps["pkg:pypi/scikit-learn"]["purl"] == "pkg:pypi/scikit-learn"
    assert comps[f"base-model:{world['base_id']}"]["hashes"][0]["content"] == BASE_KIT_DIGEST
    kit_dep = next(d for d in bom["dependencies"] if d["ref"] == "kit")
    assert set(kit_dep["dependsOn"]) == set(comps)


def test_mlbom_rejects_bad_digest(world: dict) -> None:
    with pytest.raises(mlbom.MLBOMError):
        build_mlbom(world["facts"], "r/m:v1", "sha256:nothex", [])


def test_mlbom_minimal_facts_validate() -> None:
    facts = RunFacts(run_id="0" * 32, experiment_id="0")
    bom = json.loads(build_mlbom(facts, "oci-layout-kit", "ef" * 32, []))
    assert bom["metadata"]["component"]["name"] == "oci-layout-kit"


def test_facts_roundtrip_replace(world: dict) -> None:
    f = dataclasses.replace(world["facts"], end_time=None, status="RUNNING")
    st = build_statement(f, "kit", KIT_DIGEST)
    assert "finishedOn" not in st["predicate"]["runDetails"]["metadata"]
    assert st["predicate"]["buildDefinition"]["internalParameters"]["status"] == "RUNNING"


@pytest.mark.parametrize("module", [provenance, mlbom])
def test_doctests(module) -> None:
    env_before = dict(os.environ)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.failed == 0 and result.attempted > 0
    assert dict(os.environ) == env_before
