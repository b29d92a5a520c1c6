"""Verified serving (issue 12, requirement 4), end to end: ``mlflow-modelkit serve`` as a real process.

* a published sklearn run is served from a private read-only directory (files 0444, dirs 0555,
  parent 0700) and answers a real ``/invocations`` request with the model's own predictions; every
  response carries the served digest (``X-ModelKit-Digest``) and the start line names it;
* moving the tag to another manifest after start-up changes nothing that is served;
* an unsigned kit, a tampered blob and a kit whose scan exceeds the policy never start: exit 1,
  one ``error:`` line naming the check, nothing listening, no temp directory left behind;
* SIGTERM stops the server and removes the private directory; no passphrase is ever printed.

The kit lives in the session's real ``docker-registry``; runs are logged to a SQLite tracking store.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from _envhelpers import clean_env, end_runs, use_tracking
from _registries import RegistryServer, free_port
from click.testing import CliRunner, Result

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.harden.publish import publish_run
from mlflow_plugin.storage.locations import open_location

pytestmark = pytest.mark.registry

PASSPHRASE = "serve passphrase 9d41-quokka"
CLI = str(Path(sys.executable).with_name("mlflow-modelkit"))
# an index override: a HIGH finding the publisher accepts (the policy may refuse such acceptances)
REQS = b"--extra-index-url https://mirror.internal/simple\nscikit-learn==1.5.0\n"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@dataclass
class Kit:
    store: str  # HOST/REPO
    reference: str  # HOST/REPO:v1
    digest: str
    model: Any
    X: pd.DataFrame
    pub: str
    key: str


def log_model_run(host: str, repo: str, flip: bool = False, extra: dict[str, bytes] | None = None) -> Any:
    """A run with an sklearn model (``flip`` learns the opposite labels): (run id, model id, model, X)."""
    from sklearn.linear_model import LogisticRegression

    exp = mlflow.create_experiment(
        f"serve-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{host}/{repo}"
    )
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["amount", "age", "score"])
    y = ((X["amount"] + X["score"] > 0) != flip).astype(int)
    model = LogisticRegression(max_iter=200).fit(X, y)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("C", "1.0")
        for rel, data in (extra or {}).items():
            d = Path(tempfile.mkdtemp()) / os.path.basename(rel)
            d.write_bytes(data)
            mlflow.log_artifact(str(d), os.path.dirname(rel) or None)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    return run.info.run_id, info.model_id, model, X


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        assert cli("keygen", "-o", str(root / "keys")).exit_code == 0
        yield root


@pytest.fixture(autouse=True)
def _env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch, PASSPHRASE)
    monkeypatch.setenv("TMPDIR", str(home / "tmp"))  # the server's private directory lands here
    (home / "tmp").mkdir(exist_ok=True)
    use_tracking(f"sqlite:///{home}/mlflow.db")
    yield
    end_runs()


@pytest.fixture(scope="module")
def kit(home: Path, registry: RegistryServer) -> Kit:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        use_tracking(f"sqlite:///{home}/mlflow.db")
        store = f"{registry.host}/serve/fraud-{uuid.uuid4().hex[:8]}"
        run_id, _mid, model, X = log_model_run(
            registry.host, store.split("/", 1)[1], extra={"extra/requirements.txt": REQS}
        )
        key = str(home / "keys" / "cosign.key")
        r = publish_run(
            run_id, "v1", key=key, accept=["env.index-override:extra/requirements.txt"], reason="our mirror"
        )
        end_runs()
        return Kit(store, r.reference, r.digest, model, X, str(home / "keys" / "cosign.pub"), key)


# ---- helpers ----------------------------------------------------------------------------------------
@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    err: Path

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def start(home: Path, *args: str) -> Server:
    port = free_port()
    err = home / f"serve-{uuid.uuid4().hex[:6]}.err"
    with open(err, "wb") as f:
        proc = subprocess.Popen(
            [CLI, "serve", *args, "--port", str(port)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
        )
    return Server(proc, port, err)


def stop(server: Server) -> int:
    if server.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            return server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            return server.proc.wait()
    return server.proc.returncode


@contextlib.contextmanager
def serving(home: Path, *args: str) -> Iterator[Server]:
    server = start(home, *args)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)


def wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"serve exited {server.proc.returncode}: {server.stderr()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{server.port}/ping", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"not ready after {timeout}s: {server.stderr()}")


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def predict(server: Server, X: pd.DataFrame) -> tuple[list[Any], requests.Response]:
    body = {"dataframe_split": json.loads(X.to_json(orient="split", index=False))}
    r = requests.post(f"http://127.0.0.1:{server.port}/invocations", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"], r


def served_dir(server: Server) -> Path:
    line = next(ln for ln in server.stderr().splitlines() if ln.startswith("serving "))
    return Path(line.split(" from ", 1)[1])


def refused(home: Path, *args: str) -> str:
    """``serve`` must exit 1 with one error line, never listen, and leave no private directory."""
    before = set((home / "tmp").iterdir())
    server = start(home, *args)
    try:
        code = server.proc.wait(timeout=60)
    finally:
        stop(server)
    out = server.stderr()
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in out, out
    assert not listening(server.port)
    assert set((home / "tmp").iterdir()) == before
    assert PASSPHRASE not in out
    return errors[0]


# ---- serving ---------------------------------------------------------------------------------------
def test_serves_verified_kit_read_only_and_pinned(home: Path, kit: Kit, registry: RegistryServer) -> None:
    with serving(home, kit.reference, "--key", kit.pub) as server:
        out = server.stderr()
        pinned = f"{kit.store}@{kit.digest}"
        assert f"serving {pinned} from " in out, out
        preds, resp = predict(server, kit.X)
        assert preds == kit.model.predict(kit.X).tolist()
        assert resp.headers["X-ModelKit-Digest"] == kit.digest
        assert (
            requests.get(f"http://127.0.0.1:{server.port}/version", timeout=5).headers["X-ModelKit-Digest"]
            == kit.digest
        )

        # read-only: files 0444, directories 0555, inside a private 0700 directory
        model_dir = served_dir(server)
        kit_dir = model_dir if (model_dir / "Kitfile").exists() else model_dir.parent
        root = kit_dir.parent
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        modes = {
            p.relative_to(kit_dir).as_posix(): stat.S_IMODE(p.lstat().st_mode)
            for p in [kit_dir, *kit_dir.rglob("*")]
        }
        assert "MLmodel" in {Path(p).name for p in modes}
        bad = {p: oct(m) for p, m in modes.items() if m != (0o555 if (kit_dir / p).is_dir() else 0o444)}
        assert bad == {}
        if os.geteuid() != 0:  # root ignores modes
            with pytest.raises(PermissionError):
                (model_dir / "MLmodel").write_text("x")

        # the tag moves to another (unsigned, different) model: nothing served changes
        other = f"serve/other-{uuid.uuid4().hex[:8]}"
        _run, other_model_id, other_model, _X = log_model_run(registry.host, other, flip=True)
        end_runs()
        moved = ops.copy(f"{registry.host}/{other}:{other_model_id}", kit.reference)
        repo, _ = open_location(kit.store)
        assert repo.resolve("v1").digest == moved != kit.digest
        assert other_model.predict(kit.X).tolist() != kit.model.predict(kit.X).tolist()
        preds, resp = predict(server, kit.X)
        assert preds == kit.model.predict(kit.X).tolist()
        assert resp.headers["X-ModelKit-Digest"] == kit.digest
        ops.copy(f"{kit.store}@{kit.digest}", kit.reference)  # put the tag back

        # SIGTERM: the server stops, the private directory is removed
        assert stop(server) == 0
        assert not root.exists()
        assert not listening(server.port)
    assert PASSPHRASE not in server.stderr()


def test_refuses_unsigned_kit(home: Path, kit: Kit, registry: RegistryServer) -> None:
    repo = f"serve/unsigned-{uuid.uuid4().hex[:8]}"
    _run, model_id, _m, _X = log_model_run(registry.host, repo)
    end_runs()
    # the run's draft kit, tagged like a release but never published (no signature)
    ops.copy(f"{registry.host}/{repo}:{model_id}", f"{registry.host}/{repo}:v1")
    line = refused(home, f"{registry.host}/{repo}:v1", "--key", kit.pub)
    assert "signature" in line and "refusing to serve" in line, line


def test_refuses_tampered_blob(home: Path, kit: Kit, registry: RegistryServer) -> None:
    repo, _ = open_location(kit.store)
    layers = json.loads(repo.get_manifest(kit.digest)[0])["layers"]
    layer = max(layers, key=lambda d: d["size"])["digest"]
    path = registry.blob_path(layer)
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    try:
        line = refused(home, kit.reference, "--key", kit.pub)
    finally:
        path.write_bytes(original)
    assert "blob digests" in line, line


def test_refuses_scan_over_policy(home: Path, kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_MODELKIT_ACCEPT_MAX_SEVERITY", "medium")
    line = refused(home, kit.reference, "--key", kit.pub)
    assert "scan verdict" in line and "accepted high" in line, line


def test_refuses_untrusted_key(home: Path, kit: Kit) -> None:
    other = home / "other"
    assert cli("keygen", "-o", str(other)).exit_code == 0
    line = refused(home, kit.reference, "--key", str(other / "cosign.pub"))
    assert "signature" in line, line


def test_bad_input_is_one_line(home: Path, kit: Kit) -> None:
    out = cli("serve", kit.reference, "--key", kit.pub, "--port", "0")
    assert out.exit_code == 2 and out.output.count("error:") == 1, out.output
    out = cli("serve", "not a ref", "--key", kit.pub)
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output


# ---- secrets ---------------------------------------------------------------------------------------
def _child_environs(server: Server) -> dict[int, bytes]:
    """The environment of every descendant of the ``serve`` process (the model server, its workers)."""
    parent: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat_line = Path(f"/proc/{pid}/stat").read_text()
            parent[int(pid)] = int(stat_line.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {server.proc.pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    out = {}
    for pid in found:
        with contextlib.suppress(OSError):
            out[pid] = Path(f"/proc/{pid}/environ").read_bytes()
    return out


def test_no_secret_leaks_with_a_private_registry(
    home: Path, kit: Kit, auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS + htpasswd registry, password from MLFLOW_MODELKIT_REGISTRY_PASSWORD: serve and dockerfile
    work; neither the password nor the passphrase is printed, written or given to the model server."""
    assert auth_registry.ca is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", auth_registry.ca)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", auth_registry.password)
    repo = f"serve/private-{uuid.uuid4().hex[:8]}"
    run_id, _mid, model, X = log_model_run(auth_registry.host, repo)
    end_runs()
    r = publish_run(run_id, "v1", key=kit.key)
    secrets = (auth_registry.password, PASSPHRASE)
    texts: list[str] = []
    with serving(home, r.reference, "--key", kit.pub) as server:
        preds, resp = predict(server, X)
        assert preds == model.predict(X).tolist() and resp.headers["X-ModelKit-Digest"] == r.digest
        environs = _child_environs(server)
        assert environs, "no model server process found"
        for env in environs.values():
            assert all(s.encode() not in env for s in secrets)
            assert b"MLFLOW_MODELKIT_REGISTRY_PASSWORD" not in env
    texts.append(server.stderr())
    out = CliRunner().invoke(main, ["dockerfile", r.reference, "--key", kit.pub, "-o", str(home / "private")])
    assert out.exit_code == 0, out.output
    texts += [out.output, *(p.read_text() for p in (home / "private").iterdir())]
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", "wrong-" + auth_registry.password)
    server = start(home, r.reference, "--key", kit.pub)
    assert server.proc.wait(timeout=60) == 2
    errors = [ln for ln in server.stderr().splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), errors
    texts.append(server.stderr())
    blob = "\n".join(texts)
    for s in secrets:
        assert s not in blob


# ---- encrypted kits (publish --encrypt-for) ----------------------------------------------------------
def test_encrypted_kit_serves_and_loads_only_for_its_recipient(
    home: Path, kit: Kit, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MLflow model published encrypted: ``serve --decrypt-key`` answers real predictions;
    ``mlflow.pyfunc.load_model("modelkit://…")`` decrypts with the configured key under the
    verify-on-load policy; without the key, or with another one, neither starts nor loads."""
    from mlflow.exceptions import MlflowException

    from mlflow_plugin.trust.ocicrypt import generate_recipient_keypair

    enc_pub, enc_key = generate_recipient_keypair(str(home / f"enc-{uuid.uuid4().hex[:6]}"))
    _pub, stranger = generate_recipient_keypair(str(home / f"stranger-{uuid.uuid4().hex[:6]}"))
    repo = f"serve/enc-{uuid.uuid4().hex[:8]}"
    run_id, _mid, model, X = log_model_run(registry.host, repo)
    end_runs()
    r = publish_run(run_id, "v1", key=kit.key, encrypt_for=[enc_pub])
    expected = model.predict(X).tolist()

    with serving(home, r.reference, "--key", kit.pub, "--decrypt-key", enc_key) as server:
        preds, resp = predict(server, X)
        assert preds == expected and resp.headers["X-ModelKit-Digest"] == r.digest
    line = refused(home, r.reference, "--key", kit.pub)
    assert "--decrypt-key" in line, line
    line = refused(home, r.reference, "--key", kit.pub, "--decrypt-key", stranger)
    assert "not a recipient of this kit" in line, line

    monkeypatch.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    monkeypatch.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", kit.pub)
    uri = f"modelkit://{r.store}@{r.digest}"
    monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", stranger)
    with pytest.raises(MlflowException, match="not a recipient of this kit") as e:
        mlflow.pyfunc.load_model(uri)
    assert "\n" not in e.value.message
    monkeypatch.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", enc_key)
    loaded = mlflow.pyfunc.load_model(uri)
    assert list(loaded.predict(X)) == expected
