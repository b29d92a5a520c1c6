"""The server routes of ``jupyter_ext`` (docs/jupyter.md) through a real Jupyter server (``jp_fetch``).

One SQLite tracking store per module, with runs logged to a local OCI layout
(``modelkit://<dir>/kits/<name>``) and to the session's real ``docker-registry``; publishes are
real (scan, attest, sign, tag, record), keys come from ``generate_keypair``. Covered: every route,
page tokens, publish jobs (stages, digest, blocked, wrong passphrase, unreachable registry,
concurrency and the 409 of a second publish of the same run), verify results per check, kits,
hostile inputs on every route, and that no passphrase or registry password ever shows up in a
response, in the job listing or in the server log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from _envhelpers import clean_env
from _registries import RegistryServer
from mlflow import MlflowClient

from mlflow_plugin import generate_keypair, inspect

pytestmark = pytest.mark.registry

Fetch = Callable[..., Awaitable[Any]]
NS = "mlflow-modelkit"
PASSPHRASE = "jx-route-passphrase-Q7rT9vW2kZ"
PARAM_SECRET = "hunter2-param-value-8d1f4c"
EVIL_PICKLE = b"cos\nsystem\n(S'true'\ntR."  # calls os.system when unpickled; never unpickled here
STAGES = ["compose", "scan", "attest", "sign", "tag", "record"]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
N_PAGED = 250


@dataclass
class World:
    home: Path
    uri: str
    private: str
    public: str
    registry: str  # HOST/REPO of the experiment logged to the registry
    local_run: str  # artifacts, a secret-named param, a git commit, a dataset, an sklearn model
    model_txt: bytes
    evil_run: str  # a malicious pickle artifact
    bare_run: str  # no artifact at all
    reg_runs: list[str]  # four runs logged to the registry


def _log_file(
    client: MlflowClient, run_id: str, name: str, data: bytes, artifact_path: str | None = None
) -> None:
    d = Path(tempfile.mkdtemp())
    (d / name).write_bytes(data)
    client.log_artifact(run_id, str(d / name), artifact_path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer) -> Iterator[World]:
    home = tmp_path_factory.mktemp("jupyter-routes")
    uri = f"sqlite:///{home}/mlflow.db"
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(tracking_uri=uri)
        keys = generate_keypair(str(home / "keys"), password=PASSPHRASE)

        # 250 runs for paging: auc = i/250; "loss" only on even runs (NaN elsewhere)
        paged = client.create_experiment("paged", artifact_location=f"modelkit://{home}/kits/paged")
        for i in range(N_PAGED):
            run = client.create_run(paged, run_name=f"p{i:03d}")
            metrics = [mlflow.entities.Metric("auc", i / N_PAGED, 0, 0)]
            if i % 2 == 0:
                metrics.append(mlflow.entities.Metric("loss", 1 - i / N_PAGED, 0, 0))
            client.log_batch(run.info.run_id, metrics=metrics, params=[mlflow.entities.Param("C", str(i))])

        local = client.create_experiment("local", artifact_location=f"modelkit://{home}/kits/local")
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        with mlflow.start_run(experiment_id=local, run_name="baseline") as run:
            mlflow.log_params({"C": "0.5", "db_password": PARAM_SECRET})
            mlflow.log_metric("auc", 0.91)
            mlflow.set_tag("mlflow.source.git.commit", "c0ffee" * 6 + "abcd")
            mlflow.set_tag("hf_token", PARAM_SECRET)
            mlflow.log_input(
                mlflow.data.from_numpy(np.arange(6).reshape(3, 2), name="train"), context="training"
            )
            model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
            mlflow.sklearn.log_model(model, name="clf", pip_requirements=["scikit-learn"])
        local_run = run.info.run_id
        model_txt = b"weights " * 64
        _log_file(client, local_run, "model.txt", model_txt)

        evil = client.create_run(local, run_name="evil").info.run_id
        _log_file(client, evil, "model.pkl", EVIL_PICKLE, "model")
        client.set_terminated(evil)
        bare = client.create_run(local, run_name="bare").info.run_id

        repo = f"jupyter/r-{uuid.uuid4().hex[:8]}"
        reg = client.create_experiment("reg", artifact_location=f"modelkit://{registry.host}/{repo}")
        reg_runs = []
        for i in range(4):
            rid = client.create_run(reg, run_name=f"reg{i}").info.run_id
            client.log_param(rid, "C", str(i))
            _log_file(client, rid, "model.bin", f"weights {i} ".encode() * 1000)
            client.set_terminated(rid)
            reg_runs.append(rid)
        mlflow.set_tracking_uri(previous)
        yield World(
            home, uri, keys.private, keys.public, f"{registry.host}/{repo}",
            local_run, model_txt, evil, bare, reg_runs,
        )  # fmt: skip


@pytest.fixture(autouse=True)
def _env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's environment: the module's tracking store, the trusted key, no admin file."""
    clean_env(monkeypatch)
    monkeypatch.delenv("MLFLOW_MODELKIT_KEY_PASSWORD", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.uri)
    monkeypatch.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", world.public)


# ---- helpers ------------------------------------------------------------------------------------
def _no_nan(name: str) -> Any:
    raise AssertionError(f"response carries {name}: not JSON")


async def call(
    fetch: Fetch, method: str, *parts: str, params: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    """``(status, JSON)`` of a request; the body must be strict JSON (no NaN)."""
    data = None if body is None else (body if isinstance(body, (str, bytes)) else json.dumps(body))
    r = await fetch(NS, *parts, method=method, params=params, body=data, raise_error=False)
    text = r.body.decode("utf-8")
    return r.code, json.loads(text, parse_constant=_no_nan)


def assert_error(code: int, payload: Any, status: int) -> str:
    assert code == status, payload
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    line = payload["error"]
    assert isinstance(line, str) and line and "\n" not in line and "Traceback" not in line
    return line


async def wait_job(fetch: Fetch, job_id: str, timeout: float = 180) -> tuple[dict[str, Any], list[str]]:
    """Poll ``jobs/<id>`` until it is over: the last JSON and the stages seen while polling."""
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        code, job = await call(fetch, "GET", "jobs", job_id)
        assert code == 200, job
        if job["stage"] and (not seen or seen[-1] != job["stage"]):
            seen.append(job["stage"])
        if job["state"] in ("done", "failed"):
            return job, seen
        assert loop.time() < deadline, f"job still {job['state']} after {timeout}s"
        await asyncio.sleep(0.02)


async def start(fetch: Fetch, route: str, body: dict[str, Any]) -> dict[str, Any]:
    code, job = await call(fetch, "POST", *route.split("/"), body=body)
    assert code == 202, job
    # a job that fails fast (a wrong passphrase) may already be over when the 202 answer is written
    assert re.fullmatch(r"[0-9a-f]{32}", job["id"])
    assert job["state"] in ("queued", "running", "done", "failed")
    return job


def publish_body(world: World, run_id: str, tag: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "tag": tag, "key": world.private, "passphrase": PASSPHRASE, **extra}


# ---- read routes --------------------------------------------------------------------------------
async def test_settings(jp_fetch: Fetch, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    code, s = await call(jp_fetch, "GET", "settings")
    assert code == 200
    assert s["tracking_uri"] == world.uri and s["mlflow_ui_url"] is None
    rows = {r["setting"]: r for r in s["config"]}
    assert rows["trusted_keys"]["value"] == world.public
    assert rows["trusted_keys"]["source"] == "env MLFLOW_MODELKIT_TRUSTED_KEYS"
    assert rows["scan_fail_on"] == {"setting": "scan_fail_on", "value": "high", "source": "default"}

    # the panel's tracking URI wins; an http(s) one has an MLflow UI
    code, s = await call(jp_fetch, "GET", "settings", params={"tracking_uri": "https://mlflow.example.com/"})
    assert code == 200 and s["mlflow_ui_url"] == "https://mlflow.example.com/"
    # the server's own URI may carry credentials: masked in the answer
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://alice:t0p-s3cret-uri@mlflow.example.com")
    code, s = await call(jp_fetch, "GET", "settings")
    assert code == 200 and s["tracking_uri"] == "https://***@mlflow.example.com"
    assert s["mlflow_ui_url"] == "https://mlflow.example.com/" and "t0p-s3cret-uri" not in json.dumps(s)


async def test_experiments(jp_fetch: Fetch, world: World) -> None:
    code, out = await call(jp_fetch, "GET", "experiments", params={"tracking_uri": world.uri})
    assert code == 200
    by_name = {e["name"]: e for e in out["experiments"]}
    assert {"paged", "local", "reg"} <= set(by_name)
    assert by_name["local"]["artifact_location"] == f"modelkit://{world.home}/kits/local"
    assert by_name["reg"]["id"].isdigit()


async def test_runs_pages_round_trip(jp_fetch: Fetch, world: World) -> None:
    query = {"experiment": "paged", "metrics": "auc,loss", "params": "C", "order_by": "metrics.auc DESC"}
    pages: list[list[dict[str, Any]]] = []
    token = None
    while True:
        params = {**query, "max_results": "100", **({"page_token": token} if token else {})}
        code, page = await call(jp_fetch, "GET", "runs", params=params)
        assert code == 200, page
        pages.append(page["runs"])
        token = page["next_page_token"]
        if token is None:
            break
        assert len(pages) < 5
    assert [len(p) for p in pages] == [100, 100, 50]
    rows = [r for p in pages for r in p]
    assert len({r["run_id"] for r in rows}) == N_PAGED
    aucs = [r["metrics.auc"] for r in rows]
    assert aucs == sorted(aucs, reverse=True) and aucs[0] == (N_PAGED - 1) / N_PAGED
    first = rows[0]
    assert page["columns"][:5] == ["run_id", "run_name", "status", "start_time", "end_time"]
    assert {"metrics.auc", "metrics.loss", "params.C", "draft", "signed", "scan"} <= set(page["columns"])
    assert RFC3339.match(first["start_time"]) and first["end_time"] is None  # still running
    # NaN (no such metric on odd runs) is null, not NaN
    losses = {int(r["params.C"]) % 2: r["metrics.loss"] for r in rows}
    assert losses[1] is None and isinstance(losses[0], float)
    assert first["signed"] is False and first["draft"].startswith("modelkit:///")

    # filters run on the tracking server
    code, page = await call(
        jp_fetch, "GET", "runs", params={"experiment": "paged", "filter": "metrics.auc > 0.987"}
    )
    assert code == 200 and len(page["runs"]) == 3 and page["next_page_token"] is None


async def test_run_detail(jp_fetch: Fetch, world: World) -> None:
    code, d = await call(jp_fetch, "GET", "runs", world.local_run)
    assert code == 200, d
    run = d["run"]
    assert (run["run_id"], run["name"], run["status"]) == (world.local_run, "baseline", "FINISHED")
    assert RFC3339.match(run["start_time"]) and RFC3339.match(run["end_time"])
    assert run["params"] == {"C": "0.5", "db_password": "[redacted]"}
    assert run["metrics"] == {"auc": 0.91} and run["run_url"] is None
    assert run["tags"]["hf_token"] == "[redacted]" and run["tags"]["mlflow.runName"] == "baseline"
    assert PARAM_SECRET not in json.dumps(d)

    draft = d["draft"]
    assert draft["reference"] == f"oci:{world.home}/kits/local:run-{world.local_run}"
    files = {f["path"]: f for layer in draft["layers"] for f in layer["files"]}
    assert files["model.txt"]["sha256"] == hashlib.sha256(world.model_txt).hexdigest()
    assert files["model.txt"]["size"] == len(world.model_txt)
    for layer in draft["layers"]:
        assert layer["digest"].startswith("sha256:") and layer["media_type"] and "path" in layer

    (model,) = d["models"]
    assert model["name"] == "clf" and model["model_id"].startswith("m-")
    assert {"sklearn", "python_function"} <= set(model["flavors"])
    # a logged model lives in its own draft kit (m-<id>): the detail lists its files too
    assert model["draft"]["reference"] == f"oci:{world.home}/kits/local:{model['model_id']}"
    model_files = {f["path"] for layer in model["draft"]["layers"] for f in layer["files"]}
    assert any(p.endswith("MLmodel") for p in model_files), model_files

    prov = d["provenance_preview"]
    assert prov["git_commit"] == "c0ffee" * 6 + "abcd"
    assert prov["params"]["db_password"] == "[redacted]" and prov["redacted"] == ["db_password"]
    assert prov["metrics"] == {"auc": 0.91}
    assert [(ds["name"], ds["context"]) for ds in prov["datasets"]] == [("train", "training")]

    # a run without any artifact has no draft kit yet
    code, d = await call(jp_fetch, "GET", "runs", world.bare_run)
    assert code == 200 and d["draft"] is None and d["models"] == []


async def test_scan_job(jp_fetch: Fetch, world: World) -> None:
    clean = await start(jp_fetch, f"runs/{world.local_run}/scan", {})
    evil = await start(jp_fetch, f"runs/{world.evil_run}/scan", {"tracking_uri": world.uri})
    job, _ = await wait_job(jp_fetch, clean["id"])
    assert job["state"] == "done" and job["kind"] == "scan", job
    assert job["result"]["target"].startswith(f"oci:{world.home}/kits/local:run-{world.local_run}@sha256:")
    # the run's logged model is scanned too: it is in a draft kit of its own
    assert f"oci:{world.home}/kits/local:m-" in job["result"]["target"]
    assert any(f["path"].endswith("MLmodel") for f in job["result"]["files"]), job["result"]["files"]
    assert job["result"]["summary"]["max_severity"] in (None, "info", "low")
    assert job["stages"] == ["scan"]
    job, _ = await wait_job(jp_fetch, evil["id"])
    assert job["state"] == "done", job
    report = job["result"]
    assert report["summary"]["max_severity"] == "critical"
    assert any(f["path"] == "model/model.pkl" and f["severity"] == "critical" for f in report["findings"])
    # a run without a draft: the job fails in one line
    bare = await start(jp_fetch, f"runs/{world.bare_run}/scan", {})
    job, _ = await wait_job(jp_fetch, bare["id"])
    assert job["state"] == "failed" and "no draft kit" in job["error"] and "\n" not in job["error"]


async def test_unreachable_tracking_server_is_one_line(
    jp_fetch: Fetch, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    down = {"tracking_uri": "http://127.0.0.1:9"}  # nothing listens on port 9
    for parts, params in ((("experiments",), {}), (("runs",), {"experiment": "x"}), (("runs", RUN), {})):
        code, payload = await call(jp_fetch, "GET", *parts, params={**down, **params})
        line = assert_error(code, payload, 500)
        assert line.startswith("the tracking server http://127.0.0.1:9 is unreachable ([Errno 111] "), line


def test_module_examples() -> None:
    """The docstring examples of the server side of jupyter_ext run and pass."""
    import doctest
    import importlib

    for name in (
        "jupyter_ext",
        "jupyter_ext.validate",
        "jupyter_ext.safe",
        "jupyter_ext.jobs",
        "jupyter_ext.views",
    ):
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, name


def test_import_is_light() -> None:
    """Importing jupyter_ext (and its routes) loads neither ipywidgets, MLflow nor pandas."""
    import subprocess
    import sys

    code = (
        "import sys, jupyter_ext, jupyter_ext.handlers; "
        "print(sorted(m for m in ('ipywidgets', 'mlflow', 'pandas') if m in sys.modules))"
    )
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_job_manager_bounds_busy_and_secrets() -> None:
    """The job table is bounded, ``exclusive`` refuses a second job of the same run while the first
    is queued or running, and a secret given to a job is neither on the job nor in its error."""
    import threading

    from jupyter_ext.jobs import Busy, JobManager
    from mlflow_plugin import ModelKitError

    jobs = JobManager(max_workers=1, keep=2)
    gate = threading.Event()

    def blocked(progress: Any) -> dict[str, Any]:
        progress("wait", 0, 1)
        gate.wait(30)
        return {}

    first = jobs.submit("publish", blocked, exclusive="r1")
    queued = jobs.submit("publish", lambda p: {}, exclusive="r2")
    with pytest.raises(Busy):
        jobs.submit("publish", lambda p: {}, exclusive="r1")
    with pytest.raises(Busy):
        jobs.submit("publish", lambda p: {}, exclusive="r2")  # queued counts too
    gate.set()
    assert jobs.wait(first.id, 30).state == "done" and jobs.wait(queued.id, 30).state == "done"
    jobs.submit("publish", lambda p: {}, exclusive="r1")  # released

    secret = b"s3cret-passphrase-in-a-closure"

    def leaky(progress: Any) -> dict[str, Any]:
        raise ValueError(f"bad key {secret.decode()} at https://bob:pw123@registry.example.com/x")

    def chatty(progress: Any) -> dict[str, Any]:
        raise ModelKitError(f"cannot use {secret.decode()} for https://bob:pw123@registry.example.com")

    failed = jobs.wait(jobs.submit("publish", leaky, secrets=[secret]).id, 30)
    assert failed.state == "failed" and failed.error is not None
    assert "failed unexpectedly (ValueError)" in failed.error
    assert secret.decode() not in repr(vars(failed)) and "pw123" not in repr(vars(failed))
    failed = jobs.wait(jobs.submit("publish", chatty, secrets=[secret]).id, 30)
    assert failed.error == "cannot use *** for https://***@registry.example.com"
    assert len(jobs.list()) == 2  # keep=2
    assert jobs.get(first.id) is None  # the oldest finished job was dropped
    jobs.shutdown()


# ---- publish, verify, kits ----------------------------------------------------------------------
async def test_publish_verify_and_kits(jp_fetch: Fetch, world: World) -> None:
    run_id = world.reg_runs[0]
    created = await start(jp_fetch, "publish", publish_body(world, run_id, "v1"))
    assert created["kind"] == "publish" and created["subject"] == run_id
    job, seen = await wait_job(jp_fetch, created["id"])
    assert job["state"] == "done", job
    assert job["stages"] == STAGES
    assert [s for s in STAGES if s in seen] == seen  # whatever polling saw, in order
    result = job["result"]
    assert result["reference"] == f"{world.registry}:v1"
    assert result["digest"] == inspect(result["reference"]).digest  # what the registry stores
    assert result["pinned"] == f"{world.registry}@{result['digest']}"
    assert result["model_uri"] == f"modelkit://{world.registry}@{result['digest']}"
    assert result["verdict"] == "clean" and result["run_url"] is None
    # the published kit's own scan findings travel with the result (clean: nothing at low or above)
    assert isinstance(result["findings"], list)
    assert all(f["severity"] == "info" and f["rule"] for f in result["findings"]), result["findings"]
    assert {"provenance", "scan", "signature"} <= set(result["attachments"])
    assert RFC3339.match(job["started"]) and RFC3339.match(job["finished"])
    tags = MlflowClient(tracking_uri=world.uri).get_run(run_id).data.tags
    assert tags["modelkit.digest"] == result["digest"]

    # verify (the configured trusted key), shallow then deep: every check reported
    for deep in (False, True):
        created = await start(jp_fetch, "verify", {"reference": result["reference"], "deep": deep})
        job, _ = await wait_job(jp_fetch, created["id"])
        assert job["state"] == "done", job
        v = job["result"]
        assert v["verified"] is True and v["digest"] == result["digest"]
        checks = {c["name"]: c for c in v["checks"]}
        assert {"signature", "attestation:provenance", "attestation:scan", "scan verdict"} <= set(checks)
        assert all(c["ok"] for c in v["checks"]), v["checks"]
    # an unsigned draft does not verify, check by check
    created = await start(jp_fetch, "verify", {"reference": f"{world.registry}:run-{world.reg_runs[3]}"})
    job, _ = await wait_job(jp_fetch, created["id"])
    assert job["state"] == "done" and job["result"]["verified"] is False
    assert not {c["name"]: c for c in job["result"]["checks"]}["signature"]["ok"]

    # kits of the registry repository: the published tag (signed) and the drafts
    code, out = await call(jp_fetch, "GET", "kits", params={"repository": world.registry})
    assert code == 200, out
    kits = {k["tag"]: k for k in out["kits"]}
    assert kits["v1"]["digest"] == result["digest"] and kits["v1"]["signed"] is True
    assert kits["v1"]["draft"] is False and kits["v1"]["run_id"] == run_id
    assert kits[f"run-{run_id}"]["draft"] is True and kits[f"run-{run_id}"]["signed"] is False
    assert RFC3339.match(kits["v1"]["created"])
    # and of a local layout
    code, out = await call(jp_fetch, "GET", "kits", params={"repository": f"oci:{world.home}/kits/local"})
    assert code == 200 and f"run-{world.local_run}" in {k["tag"] for k in out["kits"]}


async def test_publish_encrypted_by_admin_policy_and_verify(
    jp_fetch: Fetch, world: World, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin's ``[encryption] recipients`` apply to a publish from the panel: the result names
    the recipient; the verify route checks the encrypted kit with the server's recipient key and
    says what is missing without it."""
    from mlflow_plugin.trust.ocicrypt import generate_recipient_keypair

    pub, key = generate_recipient_keypair(str(world.home / f"enc-{uuid.uuid4().hex[:6]}"))
    client = MlflowClient(tracking_uri=world.uri)
    exp = client.create_experiment(
        f"enc-{uuid.uuid4().hex[:6]}", artifact_location=f"modelkit://{registry.host}/jupyter/enc"
    )
    rid = client.create_run(exp, run_name="confidential").info.run_id
    _log_file(client, rid, "model.bin", b"confidential weights " * 500)
    client.set_terminated(rid)
    monkeypatch.setenv("MLFLOW_MODELKIT_ENCRYPT_FOR", pub)
    job, _ = await wait_job(
        jp_fetch, (await start(jp_fetch, "publish", publish_body(world, rid, "v1")))["id"]
    )
    assert job["state"] == "done", job
    result = job["result"]
    assert len(result["encrypted_for"]) == 1 and re.fullmatch(r"[0-9a-f]{64}", result["encrypted_for"][0])
    layers = inspect(result["reference"]).manifest["layers"]
    assert layers and all(d["mediaType"].endswith("+encrypted") for d in layers)
    code, out = await call(jp_fetch, "GET", "kits", params={"repository": f"{registry.host}/jupyter/enc"})
    assert code == 200, out
    kits = {k["tag"]: k for k in out["kits"]}
    assert kits["v1"]["encrypted"] is True and kits[f"run-{rid}"]["encrypted"] is False

    async def verified(deep: bool) -> dict[str, Any]:
        created = await start(jp_fetch, "verify", {"reference": result["reference"], "deep": deep})
        job, _ = await wait_job(jp_fetch, created["id"])
        assert job["state"] == "done", job
        return dict(job["result"])

    monkeypatch.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
    v = await verified(True)
    checks = {c["name"]: c for c in v["checks"]}
    assert v["verified"] is False and checks["signature"]["ok"]
    assert "--decrypt-key" in checks["plaintext digests"]["detail"]
    _other, stranger = generate_recipient_keypair(str(world.home / f"stranger-{uuid.uuid4().hex[:6]}"))
    monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", stranger)
    v = await verified(True)
    details = [c["detail"] for c in v["checks"] if not c["ok"]]
    assert v["verified"] is False and any(d.startswith("not a recipient of this kit") for d in details), (
        details
    )
    assert all("\n" not in d for d in details)
    monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", key)
    v = await verified(True)
    assert v["verified"] is True, v["checks"]
    assert {c["name"]: c["ok"] for c in v["checks"]}["plaintext digests"] is True


async def test_publish_blocked_by_the_scan(jp_fetch: Fetch, world: World) -> None:
    created = await start(jp_fetch, "publish", publish_body(world, world.evil_run, "v1"))
    job, _ = await wait_job(jp_fetch, created["id"])
    assert job["state"] == "failed" and job["blocked"] is True, job
    assert job["threshold"] == "high"
    assert "publishing blocked by the scan" in job["error"] and "\n" not in job["error"]
    findings = job["report"]["findings"]
    assert any(f["path"] == "model/model.pkl" and f["severity"] == "critical" for f in findings)
    assert "result" not in job
    assert (
        MlflowClient(tracking_uri=world.uri)
        .get_run(world.evil_run)
        .data.tags["modelkit.scan"]
        .startswith("blocked")
    )


async def test_publish_wrong_passphrase_and_unreachable_registry(jp_fetch: Fetch, world: World) -> None:
    wrong = await start(
        jp_fetch, "publish", {**publish_body(world, world.local_run, "v1"), "passphrase": "nope"}
    )
    no_pass = await start(
        jp_fetch, "publish", {"run_id": world.reg_runs[3], "tag": "v1", "key": world.private}
    )
    job, _ = await wait_job(jp_fetch, wrong["id"])
    assert job["state"] == "failed"
    assert job["error"].startswith("wrong passphrase for ") and "\n" not in job["error"]
    job, _ = await wait_job(jp_fetch, no_pass["id"])
    assert job["state"] == "failed" and "is encrypted and no passphrase was given" in job["error"]

    # nothing listens on port 9 of the loopback
    body = publish_body(world, world.local_run, "v1", repository="127.0.0.1:9/jupyter/nowhere")
    job, _ = await wait_job(jp_fetch, (await start(jp_fetch, "publish", body))["id"])
    assert job["state"] == "failed", job
    assert (
        "cannot reach registry 127.0.0.1:9" in job["error"]
        and "\n" not in job["error"]
        and "Traceback" not in job["error"]
    )


async def test_publishes_at_once_and_409_for_the_same_run(jp_fetch: Fetch, world: World) -> None:
    a, b = world.reg_runs[1], world.reg_runs[2]
    job_a = await start(jp_fetch, "publish", publish_body(world, a, "v1"))
    job_b = await start(jp_fetch, "publish", publish_body(world, b, "v1"))
    # the same run again while its publish is queued or running
    code, payload = await call(jp_fetch, "POST", "publish", body=publish_body(world, a, "v2"))
    assert_error(code, payload, 409)
    assert a in payload["error"] and "already being published" in payload["error"]
    done_a, _ = await wait_job(jp_fetch, job_a["id"])
    assert (await call(jp_fetch, "GET", "jobs", job_b["id"]))[1]["state"] in ("running", "done")
    done_b, _ = await wait_job(jp_fetch, job_b["id"])
    assert done_a["state"] == done_b["state"] == "done", (done_a, done_b)
    assert done_a["result"]["digest"] != done_b["result"]["digest"]
    # once over, the run can be published again (idempotent: same digest, signatures reused)
    again, _ = await wait_job(
        jp_fetch, (await start(jp_fetch, "publish", publish_body(world, a, "v1")))["id"]
    )
    assert again["state"] == "done" and again["result"]["digest"] == done_a["result"]["digest"]
    assert again["result"]["reused_signatures"] is True

    # the listing: newest first, without results or reports
    code, listing = await call(jp_fetch, "GET", "jobs")
    assert code == 200
    ids = [j["id"] for j in listing["jobs"]]
    assert ids.index(again["id"]) < ids.index(job_b["id"]) < ids.index(job_a["id"])
    assert all("result" not in j and "report" not in j for j in listing["jobs"])


# ---- hostile input ------------------------------------------------------------------------------
RUN = "0123456789abcdef0123456789abcdef"
HOSTILE_GET: list[tuple[tuple[str, ...], dict[str, str], int]] = [
    (("runs", "..%2F..%2Fetc%2Fpasswd"), {}, 400),
    (("runs", "ABCDEF0123456789ABCDEF0123456789"), {}, 400),
    (("runs", RUN), {}, 404),
    (("runs",), {}, 400),
    (("runs",), {"experiment": "paged", "max_results": "100000"}, 400),
    (("runs",), {"experiment": "paged", "max_results": "0"}, 400),
    (("runs",), {"experiment": "paged", "max_results": "ten"}, 400),
    (("runs",), {"experiment": "paged\x1b[31m"}, 400),
    (("runs",), {"experiment": "x" * 300}, 400),
    (("runs",), {"experiment": "../../etc/passwd"}, 400),
    (("runs",), {"experiment": "paged", "metrics": "auc\x00loss"}, 400),
    (("runs",), {"experiment": "paged", "metrics": ",".join(f"m{i}" for i in range(51))}, 400),
    (("runs",), {"experiment": "paged", "params": "C;DROP TABLE runs"}, 400),
    (("runs",), {"experiment": "paged", "filter": "x" * 3000}, 400),
    (("runs",), {"experiment": "paged", "filter": "metrics.auc >>> 1"}, 400),
    (("runs",), {"experiment": "paged", "order_by": "metrics.auc; DROP"}, 400),
    (("runs",), {"experiment": "paged", "page_token": "not a token!"}, 400),
    (("runs",), {"experiment": "paged", "page_token": "bm90LWEtdG9rZW4="}, 400),
    (("settings",), {"tracking_uri": "ftp://example.com"}, 400),
    (("settings",), {"tracking_uri": "https://bob:pw@mlflow.example.com"}, 400),
    (("experiments",), {"tracking_uri": "javascript:alert(1)"}, 400),
    (("kits",), {}, 400),
    (("kits",), {"repository": "oci:../../etc"}, 400),
    (("kits",), {"repository": "oci:/nonexistent/kits"}, 404),
    (("kits",), {"repository": "Not A Repo!!"}, 400),
    (("kits",), {"repository": "localhost:5000/team/fraud:v1"}, 400),
    (("jobs", "not-a-job"), {}, 400),
    (("jobs", "f" * 32), {}, 404),
]


@pytest.mark.parametrize(("parts", "params", "status"), HOSTILE_GET)
async def test_hostile_get(
    jp_fetch: Fetch,
    world: World,
    caplog: pytest.LogCaptureFixture,
    parts: tuple[str, ...],
    params: dict[str, str],
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    code, payload = await call(jp_fetch, "GET", *parts, params=params)
    assert_error(code, payload, status)
    # a tracking URI with credentials is scrubbed from the request log like a token
    assert "bob:pw" not in caplog.text and "bob%3Apw" not in caplog.text


def _hostile_posts(world: World) -> list[tuple[str, Any, int]]:
    ok = publish_body(world, world.local_run, "v9")
    return [
        ("publish", b"{not json", 400),
        ("publish", json.dumps([1, 2]), 400),
        ("publish", json.dumps({**ok, "pad": "x" * 70_000}), 400),  # oversized body
        ("publish", {**ok, "surprise": 1}, 400),
        ("publish", {"tag": "v1"}, 400),
        ("publish", {**ok, "run_id": "../../etc/passwd"}, 400),
        ("publish", {**ok, "run_id": RUN}, 404),
        ("publish", {**ok, "tag": "../evil"}, 400),
        ("publish", {**ok, "tag": "v1\nX-Injected: 1"}, 400),
        ("publish", {**ok, "repository": "oci:../../tmp/evil"}, 400),
        ("publish", {**ok, "repository": "localhost:5000/a:tag"}, 400),
        ("publish", {**ok, "model": "../m"}, 400),
        ("publish", {**ok, "register_as": "x\x07"}, 400),
        ("publish", {**ok, "key": "/keys/../../etc/shadow"}, 400),
        ("publish", {**ok, "passphrase": 12345}, 400),
        ("publish", {**ok, "accept": "pickle.*"}, 400),
        ("publish", {**ok, "tracking_uri": "gopher://x"}, 400),
        ("verify", {"reference": "../../etc/passwd"}, 400),
        ("verify", {"reference": "oci:/tmp/kits/x"}, 400),
        ("verify", {"reference": f"{world.registry}:v1", "deep": "yes"}, 400),
        ("verify", {}, 400),
        (f"runs/{RUN}/scan", {}, 404),
        ("runs/..%2Fx/scan", {}, 400),
        (f"runs/{world.local_run}/scan", {"tracking_uri": "file:///tmp", "x": 1}, 400),
    ]


async def test_hostile_post(jp_fetch: Fetch, world: World) -> None:
    for route, body, status in _hostile_posts(world):
        code, payload = await call(jp_fetch, "POST", *route.split("/"), body=body)
        assert code == status, (route, body, payload)
        line = assert_error(code, payload, status)
        assert PASSPHRASE not in line, route
    # none of them started a job
    code, listing = await call(jp_fetch, "GET", "jobs")
    assert code == 200 and listing["jobs"] == []


# ---- secrets ------------------------------------------------------------------------------------
async def test_secrets_never_leave_the_server(
    jp_fetch: Fetch,
    world: World,
    auth_registry: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A publish to a password-protected registry with a passphrase-protected key, a wrong
    passphrase, a wrong registry password: neither secret is in any answer, listing or log line."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", auth_registry.password)
    monkeypatch.setenv("MLFLOW_MODELKIT_CA_BUNDLE", str(auth_registry.ca))
    target = f"{auth_registry.host}/jupyter/secret"
    bodies: list[str] = []

    async def get(*parts: str, **params: str) -> Any:
        code, out = await call(jp_fetch, "GET", *parts, params=params)
        assert code == 200, out
        bodies.append(json.dumps(out))
        return out

    created = await start(jp_fetch, "publish", publish_body(world, world.local_run, "v1", repository=target))
    bodies.append(json.dumps(created))
    job, _ = await wait_job(jp_fetch, created["id"])
    bodies.append(json.dumps(job))
    assert job["state"] == "done", job
    assert job["result"]["reference"] == f"{target}:v1"

    wrong = await start(
        jp_fetch, "publish", {**publish_body(world, world.local_run, "v2"), "passphrase": "x"}
    )
    job, _ = await wait_job(jp_fetch, wrong["id"])
    bodies.append(json.dumps(job))
    assert job["state"] == "failed"

    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", auth_registry.password + "-wrong")
    denied = await start(jp_fetch, "publish", publish_body(world, world.local_run, "v3", repository=target))
    job, _ = await wait_job(jp_fetch, denied["id"])
    bodies.append(json.dumps(job))
    assert job["state"] == "failed" and "\n" not in job["error"]
    assert "rejected the credentials" in job["error"]
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", auth_registry.password)

    settings = await get("settings")
    assert {r["setting"]: r["value"] for r in settings["config"]}["registry_password"] == "********"
    await get("jobs")
    await get("runs", world.local_run)
    await get("kits", repository=target)
    await get("runs", experiment="local", params="C,db_password")

    log_text = "\n".join(
        f"{r.name} {r.getMessage()} {logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
    )
    assert "POST /a%40b/mlflow-modelkit/publish" in log_text  # the server log was captured
    for secret in (PASSPHRASE, auth_registry.password, PARAM_SECRET):
        for body in bodies:
            assert secret not in body
        assert secret not in log_text
