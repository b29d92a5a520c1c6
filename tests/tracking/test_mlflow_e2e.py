"""MLflow end to end on ``modelkit://``: the issue's user examples with real MLflow.

* in-process: a SQLite tracking store and the client-side plugin, for a registry and a layout;
* the session's real ``mlflow server`` (``tests/_mlflow_server.py``) in proxy mode
  (``mlflow-artifacts:`` experiments, the server's plugin writes ``<registry>/ml/<exp_id>``) and
  in client-side mode, plus the UI's artifact endpoints;
* a differential test: the same MLflow calls on ``modelkit://`` and on MLflow's own file store
  must give the same listings, bytes and predictions;
* 8 processes logging into one run at once; a registry outage; the run-context provider.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from _mlflow_server import MlflowServer
from _registries import RegistryServer, registry_binary
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from mlflow_plugin import packaging as ops
from mlflow_plugin.storage.locations import open_location

PIP = ["scikit-learn"]


# ---- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _start_server_early(request: pytest.FixtureRequest) -> None:
    """Launch the session's mlflow server now if any selected test needs it (it takes a while)."""
    if any("mlflow_server" in getattr(item, "fixturenames", ()) for item in request.session.items):
        with contextlib.suppress(pytest.skip.Exception):  # no docker-registry: only those tests skip
            request.getfixturevalue("mlflow_server_started")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    monkeypatch.setenv("MLFLOW_MODELKIT_NO_PROGRESS", "1")
    yield
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def tracking(tmp_path: Path) -> str:
    """A fresh SQLite tracking + model-registry store, used in-process."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


@dataclass
class Location:
    """An experiment artifact location and how to reach the kits behind it."""

    kind: str
    uri: str
    ref_base: str  # ``oci:/path`` or ``host/repo`` -- append ``:<tag>``

    def ref(self, tag: str) -> str:
        return f"{self.ref_base}:{tag}"

    def tags(self) -> list[str]:
        return open_location(self.ref_base)[0].list_tags()


def layout_location(root: Path) -> Location:
    return Location("layout", f"modelkit://{root}", f"oci:{root}")


def registry_location(reg: RegistryServer, name: str) -> Location:
    repo = f"team/{name}-{uuid.uuid4().hex[:8]}"
    return Location("registry", f"modelkit://{reg.host}/{repo}", f"{reg.host}/{repo}")


@pytest.fixture(params=["layout", "registry"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "layout":
        return layout_location(tmp_path / "kits" / "fraud")
    return registry_location(request.getfixturevalue("registry"), "fraud")


# ---- helpers ----------------------------------------------------------------------------------------
def training_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(80, 4)), columns=["amount", "age", "hour", "score"])
    y = ((X["amount"] + 0.5 * X["score"]) > 0).astype(int)
    return X, y


def trained_model() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    X, y = training_data()
    return LogisticRegression(max_iter=200).fit(X, y), X


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def dirs_of(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


def walk(client: MlflowClient, run_id: str, path: str | None = None) -> list[tuple[str, bool, int | None]]:
    """Recursive listing through MLflow's client: ``(path, is_dir, size)``."""
    out: list[tuple[str, bool, int | None]] = []
    for f in client.list_artifacts(run_id, path):
        out.append((f.path, f.is_dir, f.file_size))
        if f.is_dir:
            out += walk(client, run_id, f.path)
    return out


def walk_repo(repo: Any, path: str = "") -> list[tuple[str, bool, int | None]]:
    out: list[tuple[str, bool, int | None]] = []
    for f in repo.list_artifacts(path):
        out.append((f.path, f.is_dir, f.file_size))
        if f.is_dir:
            out += walk_repo(repo, f.path)
    return out


def log_user_run(experiment_id: str, tmp: Path) -> tuple[str, Any, Any, pd.DataFrame]:
    """The issue's example: params, metrics, a dataset, artifacts, a figure, an sklearn model."""
    model, X = trained_model()
    df = X.assign(label=model.predict(X))
    notes = write(tmp / "user-src", {"notes.md": "# fraud model\n"}) / "notes.md"
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({"C": 1.0, "max_iter": 200})
        mlflow.log_metric("accuracy", 0.93)
        mlflow.log_input(
            mlflow.data.from_pandas(df, source="data/train.csv", name="train"), context="training"
        )
        mlflow.log_artifact(str(notes))
        mlflow.log_dict({"threshold": 0.5}, "config/params.json")
        fig = plt.figure()
        plt.plot([0, 1, 2], [0, 1, 4])
        mlflow.log_figure(fig, "plots/curve.png")
        plt.close(fig)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2], pip_requirements=PIP)
    return run.info.run_id, info, model, X


def assert_same_predictions(model_uri: str, model: Any, X: pd.DataFrame) -> None:
    loaded = mlflow.pyfunc.load_model(model_uri)
    np.testing.assert_array_equal(np.asarray(loaded.predict(X)), model.predict(X))


def check_user_run(run_id: str, info: Any, model: Any, X: pd.DataFrame, tmp: Path) -> None:
    client = MlflowClient()
    top = [(f.path, f.is_dir) for f in client.list_artifacts(run_id)]
    assert top == [("config", True), ("notes.md", False), ("plots", True)]
    assert [f.path for f in client.list_artifacts(run_id, "plots")] == ["plots/curve.png"]
    got = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="config/params.json", dst_path=str(tmp)
        )
    )
    assert json.loads(got.read_text()) == {"threshold": 0.5}
    png = Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="plots/curve.png", dst_path=str(tmp))
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = client.get_run(run_id)
    assert run.data.params["C"] == "1.0"
    assert run.inputs.dataset_inputs[0].dataset.name == "train"
    assert "data/train.csv" in run.inputs.dataset_inputs[0].dataset.source
    name = f"fraud-{uuid.uuid4().hex[:6]}"
    mv = mlflow.register_model(info.model_uri, name)
    for uri in (f"runs:/{run_id}/model", info.model_uri, f"models:/{name}/{mv.version}"):
        assert_same_predictions(uri, model, X)


# ---- the user examples ----------------------------------------------------------------------------
def test_user_example_in_process(tracking: str, location: Location, tmp_path: Path) -> None:
    exp = mlflow.create_experiment(f"fraud-{location.kind}", artifact_location=location.uri)
    run_id, info, model, X = log_user_run(exp, tmp_path)
    check_user_run(run_id, info, model, X, tmp_path)
    # the run and the model are kits next to each other in the experiment's repository
    assert {f"run-{run_id}", info.model_id} <= set(location.tags())
    kit = ops.inspect(location.ref(f"run-{run_id}"))
    assert kit.config is not None
    assert sorted(d["path"] for d in kit.config.get("docs", [])) == [
        "config/params.json",
        "notes.md",
        "plots/curve.png",
    ]
    model_kit = ops.inspect(location.ref(info.model_id))
    assert model_kit.config is not None and model_kit.config["model"]["path"] == "."
    out = tmp_path / "unpacked-model"
    ops.unpack(location.ref(info.model_id), str(out))
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= set(tree_of(out))


def test_models_registered_as_fraud_v1(tracking: str, registry: RegistryServer, tmp_path: Path) -> None:
    """The issue's literal ``models:/fraud/1``."""
    loc = registry_location(registry, "fraud")
    exp = mlflow.create_experiment("fraud", artifact_location=loc.uri)
    run_id, info, model, X = log_user_run(exp, tmp_path)
    mv = mlflow.register_model(f"runs:/{run_id}/model", "fraud")
    assert str(mv.version) == "1"
    assert_same_predictions("models:/fraud/1", model, X)
    uri = MlflowClient().get_model_version_download_uri("fraud", "1")
    assert uri.startswith(loc.uri) and uri.endswith(f"models/{info.model_id}/artifacts")


def test_server_proxy_mode(mlflow_server: MlflowServer, registry: RegistryServer, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    exp = mlflow.create_experiment(f"proxy-{uuid.uuid4().hex[:8]}")
    assert mlflow.get_experiment(exp).artifact_location == f"mlflow-artifacts:/{exp}"
    run_id, info, model, X = log_user_run(exp, tmp_path)
    check_user_run(run_id, info, model, X, tmp_path)
    # the server's plugin wrote the kits into <registry>/ml/<exp_id>
    ref_base = f"{registry.host}/ml/{exp}"
    tags = open_location(ref_base)[0].list_tags()
    assert {f"run-{run_id}", info.model_id} <= set(tags)
    out = tmp_path / "unpacked-run"
    ops.unpack(f"{ref_base}:run-{run_id}", str(out))
    assert json.loads(out.joinpath("config", "params.json").read_text()) == {"threshold": 0.5}
    assert out.joinpath("notes.md").read_text() == "# fraud model\n"
    check_ui_endpoints(mlflow_server, run_id)
    log = mlflow_server.log_tail(1 << 20)
    assert "Failure attempting to register" not in log
    assert "Traceback" not in log, log[-3000:]


def test_server_client_side_mode(
    mlflow_server: MlflowServer, registry: RegistryServer, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    loc = registry_location(registry, "client")
    exp = mlflow.create_experiment(f"client-{uuid.uuid4().hex[:8]}", artifact_location=loc.uri)
    run_id, info, model, X = log_user_run(exp, tmp_path)
    check_user_run(run_id, info, model, X, tmp_path)
    assert {f"run-{run_id}", info.model_id} <= set(loc.tags())
    check_ui_endpoints(mlflow_server, run_id)  # the server reads the client-written kit itself


def test_server_sees_writes_of_other_workers(
    mlflow_server: MlflowServer, registry: RegistryServer, tmp_path: Path
) -> None:
    """``mlflow server`` keeps one repository per worker: it must not serve a stale draft.

    Another uvicorn worker (the default is 4) or a client-side writer updates the same kit; here
    a direct ``modelkit://`` write into ``<registry>/ml/<exp_id>`` plays that part.
    """
    mlflow.set_tracking_uri(mlflow_server.url)
    exp = mlflow.create_experiment(f"stale-{uuid.uuid4().hex[:8]}")
    src = write(tmp_path / "src", {"a.txt": "a1", "b.txt": "b", "v2/a.txt": "a2, rewritten"})
    client = MlflowClient()
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifact(str(src / "a.txt"))
    run_id = run.info.run_id
    assert [f.path for f in client.list_artifacts(run_id)] == ["a.txt"]
    assert Path(client.download_artifacts(run_id, "a.txt", str(tmp_path / "d1"))).read_text() == "a1"
    elsewhere = get_artifact_repository(f"{mlflow_server.destination}/{exp}/{run_id}/artifacts")
    elsewhere.log_artifact(str(src / "b.txt"))
    elsewhere.log_artifact(str(src / "v2" / "a.txt"))
    assert [f.path for f in client.list_artifacts(run_id)] == ["a.txt", "b.txt"]
    assert (
        Path(client.download_artifacts(run_id, "a.txt", str(tmp_path / "d2"))).read_text() == "a2, rewritten"
    )
    r = requests.get(
        f"{mlflow_server.url}/get-artifact", params={"path": "a.txt", "run_uuid": run_id}, timeout=60
    )
    assert r.content == b"a2, rewritten"


def check_ui_endpoints(server: MlflowServer, run_id: str) -> None:
    """What the MLflow UI's artifact browser calls."""
    r = requests.get(
        f"{server.url}/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": run_id}, timeout=60
    )
    assert r.status_code == 200, r.text
    files = {f["path"]: f for f in r.json()["files"]}
    assert set(files) == {"config", "notes.md", "plots"}
    assert files["notes.md"]["file_size"] == len("# fraud model\n") and not files["notes.md"]["is_dir"]
    assert files["plots"]["is_dir"]
    r = requests.get(
        f"{server.url}/ajax-api/2.0/mlflow/artifacts/list",
        params={"run_id": run_id, "path": "config"},
        timeout=60,
    )
    assert [f["path"] for f in r.json()["files"]] == ["config/params.json"]
    r = requests.get(
        f"{server.url}/get-artifact", params={"path": "config/params.json", "run_uuid": run_id}, timeout=60
    )
    assert r.status_code == 200, r.text
    assert json.loads(r.content) == {"threshold": 0.5}
    r = requests.get(
        f"{server.url}/get-artifact", params={"path": "notes.md", "run_uuid": run_id}, timeout=60
    )
    assert r.content == b"# fraud model\n"


# ---- differential: modelkit:// versus MLflow's own file store ----------------------------------------
def differential_sources(root: Path) -> Path:
    write(
        root,
        {
            "a.txt": "first a",
            "a-v2/a.txt": "second a, longer",
            "tree/x.txt": "x",
            "tree/y.txt": "y1",
            "tree/sub/z.txt": "z",
            "tree/sub/deeper/q.bin": bytes(range(256)) * 40,
            "tree2/y.txt": "y2 replaced",
            "tree2/w.txt": "w new",
            "deep.txt": "deep",
            "rootdir/r1.txt": "r1",
            "rootdir/rsub/r2.txt": "r2",
            "unicode/spaced name ü.txt": "ü",
        },
    )
    (root / "empty").mkdir()
    return root


def apply_operations(experiment_id: str, src: Path, model: Any) -> tuple[str, Any]:
    """One fixed sequence of MLflow calls; applied to each store under comparison."""
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(src / "a.txt"))
        mlflow.log_artifacts(str(src / "tree"), "tree")
        mlflow.log_artifacts(str(src / "tree2"), "tree")  # re-log into a directory: y replaced, w added
        mlflow.log_artifact(str(src / "deep.txt"), "tree/sub/deeper")  # into a directory logged as one layer
        mlflow.log_artifact(str(src / "deep.txt"), "tree/sub/deeper")  # the same file again
        mlflow.log_text("hello ü", "texts/hello.txt")
        mlflow.log_dict({"a": [1, 2]}, "texts/d.json")
        mlflow.log_dict({"a": 1}, "texts/d.yaml")
        mlflow.log_artifacts(str(src / "empty"), "empty")
        mlflow.log_artifacts(str(src / "rootdir"))  # a directory at the root: its children land at the root
        mlflow.log_artifact(str(src / "unicode" / "spaced name ü.txt"), "odd names")
        mlflow.log_artifact(str(src / "a-v2" / "a.txt"))  # overwrite a file
        mlflow.log_text("replaced", "texts/hello.txt")  # overwrite through log_text
        get_artifact_repository(run.info.artifact_uri).delete_artifacts("tree/sub")  # a directory
        get_artifact_repository(run.info.artifact_uri).delete_artifacts("texts/d.yaml")  # a file
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=PIP)
    return run.info.run_id, info


def test_differential_against_mlflow_file_store(tracking: str, location: Location, tmp_path: Path) -> None:
    model, X = trained_model()
    src = differential_sources(tmp_path / "src")
    exp_kit = mlflow.create_experiment("kit", artifact_location=location.uri)
    exp_file = mlflow.create_experiment("file", artifact_location=(tmp_path / "file-store").as_uri())
    results = {}
    for name, exp in (("kit", exp_kit), ("file", exp_file)):
        results[name] = apply_operations(exp, src, model)
    client = MlflowClient()
    (kit_run, kit_model), (file_run, file_model) = results["kit"], results["file"]

    listing = walk(client, kit_run)
    assert listing == walk(client, file_run)
    assert ("empty", True, None) in listing
    assert not [p for p, _, _ in listing if p.startswith("tree/sub") or p == "texts/d.yaml"]
    # every file, downloaded one by one
    for path, is_dir, _ in listing:
        if is_dir:
            continue
        a = Path(client.download_artifacts(kit_run, path, str(tmp_path / "dl-kit")))
        b = Path(client.download_artifacts(file_run, path, str(tmp_path / "dl-file")))
        assert a.read_bytes() == b.read_bytes(), path
    # the whole run, downloaded at once: same files and same (empty) directories
    whole_kit = Path(mlflow.artifacts.download_artifacts(run_id=kit_run, dst_path=str(tmp_path / "all-kit")))
    whole_file = Path(
        mlflow.artifacts.download_artifacts(run_id=file_run, dst_path=str(tmp_path / "all-file"))
    )
    assert tree_of(whole_kit) == tree_of(whole_file)
    assert dirs_of(whole_kit) == dirs_of(whole_file)
    assert tree_of(whole_kit)["a.txt"] == b"second a, longer"
    # logged models: same files (MLmodel and the pickle carry ids and times), same predictions
    kit_repo = get_artifact_repository(f"models:/{kit_model.model_id}")
    file_repo = get_artifact_repository(f"models:/{file_model.model_id}")
    assert [(p, d) for p, d, _ in walk_repo(kit_repo)] == [(p, d) for p, d, _ in walk_repo(file_repo)]
    (tmp_path / "m-kit").mkdir()
    (tmp_path / "m-file").mkdir()
    for same in ("requirements.txt", "python_env.yaml", "conda.yaml"):
        ka = Path(kit_repo.download_artifacts(same, str(tmp_path / "m-kit")))
        fa = Path(file_repo.download_artifacts(same, str(tmp_path / "m-file")))
        assert ka.read_bytes() == fa.read_bytes(), same
    p_kit = mlflow.pyfunc.load_model(f"models:/{kit_model.model_id}").predict(X)
    p_file = mlflow.pyfunc.load_model(f"models:/{file_model.model_id}").predict(X)
    np.testing.assert_array_equal(np.asarray(p_kit), np.asarray(p_file))


# ---- concurrency: 8 processes, one run ---------------------------------------------------------------
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import mlflow
    from mlflow import MlflowClient

    tracking, worker, src, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    runs = sys.argv[5:]
    mlflow.set_tracking_uri(tracking)
    client = MlflowClient()
    uris = {r: client.get_run(r).info.artifact_uri for r in runs}
    (go.parent / f"ready-{worker}").touch()
    while not go.exists():  # start together (a file barrier, no timing)
        time.sleep(0.01)
    for i in range(25):
        for run_id in runs:
            if i < 20:  # single files: into a per-worker dir and into directories every worker shares
                dest = f"w{worker}" if i % 2 else f"shared/{i % 5}"
                client.log_artifact(run_id, str(src / f"f{i}" / f"w{worker}-f{i}.txt"), dest)
            else:  # directory logs: all workers log into the same layer path "common"
                client.log_artifacts(run_id, str(src / f"d{i}"), "common")
    print("done", worker)
    """
)


def test_eight_processes_log_into_one_run(tracking: str, registry: RegistryServer, tmp_path: Path) -> None:
    locations = [layout_location(tmp_path / "kits" / "conc"), registry_location(registry, "conc")]
    runs = []
    for loc in locations:
        exp = mlflow.create_experiment(f"conc-{loc.kind}", artifact_location=loc.uri)
        with mlflow.start_run(experiment_id=exp) as r:
            runs.append(r.info.run_id)
    expected: dict[str, bytes] = {}
    procs = []
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "sync" / "go"
    go.parent.mkdir()
    for w in range(8):
        src = tmp_path / f"src{w}"
        for i in range(25):
            content = f"worker {w} artifact {i} ".encode() * (1 + i)
            if i < 20:
                write(src, {f"f{i}/w{w}-f{i}.txt": content})
                dest = f"w{w}" if i % 2 else f"shared/{i % 5}"
                expected[f"{dest}/w{w}-f{i}.txt"] = content
            else:
                write(src, {f"d{i}/w{w}-d{i}.txt": content})
                expected[f"common/w{w}-d{i}.txt"] = content
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), tracking, str(w), str(src), str(go), *runs],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    while len(list(go.parent.glob("ready-*"))) < 8 and all(p.poll() is None for p in procs):
        time.sleep(0.05)  # polling, not timing: the workers are importing mlflow
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
    assert len(expected) == 200
    client = MlflowClient()
    for run_id in runs:
        listing = [p for p, is_dir, _ in walk(client, run_id) if not is_dir]
        assert sorted(listing) == sorted(expected)
        got = tree_of(
            Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / run_id)))
        )
        assert got == expected


# ---- outage -------------------------------------------------------------------------------------------
@pytest.fixture
def flaky_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry of our own that the test may stop and restart (never the session one)."""
    server = RegistryServer(registry_binary(), tmp_path / "flaky-registry", "registry-flaky")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_registry_outage(tracking: str, flaky_registry: RegistryServer, tmp_path: Path) -> None:
    loc = registry_location(flaky_registry, "outage")
    exp = mlflow.create_experiment("outage", artifact_location=loc.uri)
    src = write(tmp_path / "src", {"before.txt": "before", "during.txt": "during"})
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifact(str(src / "before.txt"))
        flaky_registry.stop()
        with pytest.raises(MlflowException) as e:
            mlflow.log_artifact(str(src / "during.txt"))
        msg = e.value.message
        assert flaky_registry.host in msg
        assert "\n" not in msg
        flaky_registry.start()
        client = MlflowClient()
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["before.txt"]
        mlflow.log_artifact(str(src / "during.txt"))
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["before.txt", "during.txt"]
    got = tree_of(
        Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "dl")))
    )
    assert got == {"before.txt": b"before", "during.txt": b"during"}


# ---- run context ---------------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo.parent),
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def notebook_repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    nb = repo / "notebooks" / "analysis.ipynb"
    nb.parent.mkdir()
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "notebook")
    return repo, nb


def run_tags(experiment_id: str) -> dict[str, str]:
    with mlflow.start_run(experiment_id=experiment_id) as run:
        pass
    return MlflowClient().get_run(run.info.run_id).data.tags


def test_run_context_notebook_git_state(
    tracking: str, notebook_repo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, nb = notebook_repo
    secret = "p@ss-t0ken"
    git(repo, "remote", "add", "origin", f"https://bob:{secret}@git.example.com/org/project.git")
    exp = mlflow.create_experiment("ctx", artifact_location=f"modelkit://{tmp_path}/kits/ctx")
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))

    tags = run_tags(exp)
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.dirty"] == "false"
    assert tags["mlflow.source.git.repoURL"] == "https://git.example.com/org/project.git"
    assert tags["modelkit.source.notebook"] == str(nb)
    assert tags["modelkit.source.notebook_sha256"] == hashlib.sha256(nb.read_bytes()).hexdigest()
    for key in ("python", "platform", "packages_sha256", "packages_count"):
        assert tags[f"modelkit.env.{key}"]
    assert not [k for k, v in tags.items() if "t0ken" in v or "ss-t0" in v]

    nb.write_text(nb.read_text().replace('"cells": []', '"cells": [{"cell_type": "code"}]'))
    # as jupyter_server sets it: the path relative to the server root, the kernel running in the
    # notebook's own directory
    monkeypatch.chdir(nb.parent)
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/analysis.ipynb")
    tags = run_tags(exp)
    assert tags["mlflow.source.git.dirty"] == "true"
    assert tags["modelkit.source.notebook_sha256"] == hashlib.sha256(nb.read_bytes()).hexdigest()
    assert tags["modelkit.source.notebook"] == str(nb)


def test_run_context_outside_a_notebook(
    tracking: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    exp = mlflow.create_experiment("plain", artifact_location=f"modelkit://{tmp_path}/kits/plain")
    tags = run_tags(exp)
    assert tags["modelkit.env.python"] == ".".join(map(str, sys.version_info[:3]))
    assert int(tags["modelkit.env.packages_count"]) > 10
    assert "modelkit.source.notebook" not in tags
    # a notebook outside any git repository: its hash, no git tags from it
    nb = write(tmp_path / "loose", {"n.ipynb": "{}"}) / "n.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))
    tags = run_tags(exp)
    assert tags["modelkit.source.notebook_sha256"] == hashlib.sha256(b"{}").hexdigest()
    assert "mlflow.source.git.dirty" not in tags
