"""A container recipe for a verified kit (issue 12, requirement 5).

No Docker engine exists here, so the Dockerfile is checked as text (base pinned when given a digest,
a non-root USER, the kit referenced by digest everywhere, the public key baked in by its SHA-256, no
secret), and the generated entry script is run directly, as a process, against a real registry kit
unpacked read-only the way the image build does it: it verifies and serves (a real prediction, the
digest header), and refuses a tampered blob, a changed model file and a key that is not the baked one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from _envhelpers import clean_env, end_runs, use_tracking
from _registries import RegistryServer, free_port
from click.testing import CliRunner, Result

from mlflow_plugin.cli import main
from mlflow_plugin.harden.publish import publish_run
from mlflow_plugin.harden.serve import make_read_only, remove_tree
from mlflow_plugin.storage.locations import open_location

pytestmark = pytest.mark.registry

PASSPHRASE = "dockerfile passphrase 3e7b-pangolin"
REGISTRY_PASSWORD = "registry-pw-5c2d-narwhal"
BIN = Path(sys.executable).parent
BASE = "python:3.11-slim@sha256:" + "4f" * 32


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@dataclass
class Kit:
    store: str
    reference: str
    digest: str
    model: Any
    X: pd.DataFrame
    pub: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dockerfile")


@pytest.fixture(autouse=True)
def _env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch, PASSPHRASE)
    use_tracking(f"sqlite:///{home}/mlflow.db")
    yield
    end_runs()


@pytest.fixture(scope="module")
def kit(home: Path, registry: RegistryServer) -> Kit:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        use_tracking(f"sqlite:///{home}/mlflow.db")
        assert cli("keygen", "-o", str(home / "keys")).exit_code == 0
        assert cli("keygen", "-o", str(home / "other")).exit_code == 0
        repo = f"docker/fraud-{uuid.uuid4().hex[:8]}"
        exp = mlflow.create_experiment(
            f"df-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{registry.host}/{repo}"
        )
        X = pd.DataFrame(np.random.default_rng(3).normal(size=(30, 3)), columns=["a", "b", "c"])
        model = LogisticRegression(max_iter=200).fit(X, (X["a"] > 0).astype(int))
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        end_runs()
        r = publish_run(run.info.run_id, "v1", key=str(home / "keys" / "cosign.key"))
        return Kit(
            f"{registry.host}/{repo}", r.reference, r.digest, model, X, str(home / "keys" / "cosign.pub")
        )


@pytest.fixture(scope="module")
def recipe(home: Path, kit: Kit) -> tuple[Path, Result]:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
        out = home / "recipe"
        r = CliRunner().invoke(
            main, ["dockerfile", kit.reference, "--key", kit.pub, "--base", BASE, "-o", str(out)]
        )
        assert r.exit_code == 0, r.output
        return out, r


@pytest.fixture(scope="module")
def baked(home: Path, kit: Kit) -> Path:
    """The kit unpacked and made read-only as the image build does (``unpack`` then chmod)."""
    d = home / "image" / "opt-modelkit-model"
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        assert cli("unpack", f"{kit.store}@{kit.digest}", "-d", str(d)).exit_code == 0
    make_read_only(str(d))
    return d


# ---- the Dockerfile ----------------------------------------------------------------------------------
def test_dockerfile_content(recipe: tuple[Path, Result], kit: Kit) -> None:
    out, result = recipe
    text = (out / "Dockerfile").read_text()
    entry = (out / "modelkit-entry.sh").read_text()
    lines = text.splitlines()
    assert [ln for ln in lines if ln.startswith("FROM ")] == [f"FROM {BASE}"]
    (user,) = [ln for ln in lines if ln.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid not in ("0", "root") and int(uid) >= 1000
    assert lines.index(user) > max(i for i, ln in enumerate(lines) if ln.startswith(("RUN", "COPY")))
    # the kit is referenced by digest, every time, in both files
    for body in (text, entry):
        refs = re.findall(re.escape(kit.store) + r"\S*", body)
        assert refs and all(r.startswith(f"{kit.store}@{kit.digest}") for r in refs), refs
        assert ":v1" not in body
    # the key, baked in by its SHA-256, is the public key given
    pem = Path(kit.pub).read_bytes()
    name = hashlib.sha256(pem).hexdigest() + ".pub"
    assert (out / name).read_bytes() == pem and f"/etc/modelkit/{name}" in text
    assert "mlflow-modelkit verify" in text and "chmod 0444" in text and "chmod 0555" in text
    assert "requirements.txt" in text and "pip install" in text and "mlflow-modelkit==" in text
    assert 'exec "$MLFLOW" models serve' in entry and "--env-manager local" in entry
    assert 'HOST="${MODELKIT_HOST:-0.0.0.0}"' in entry
    assert os.access(out / "modelkit-entry.sh", os.X_OK)
    # nothing secret anywhere
    private = Path(kit.pub).with_name("cosign.key").read_text()
    for body in [text, entry, result.output, *(p.read_text() for p in out.iterdir())]:
        assert PASSPHRASE not in body and REGISTRY_PASSWORD not in body
        assert "PRIVATE KEY" not in body and private not in body


def test_default_base_is_a_tag_with_a_warning(home: Path, kit: Kit) -> None:
    out = home / "default-base"
    r = cli("dockerfile", kit.reference, "--key", kit.pub, "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "FROM python:3.11-slim\n" in (out / "Dockerfile").read_text()
    assert "warning: the base image is a tag" in r.output


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--base", "python:3.11\nRUN curl evil"], 2, "invalid --base"),
        (["--base", "python@sha256:1234"], 2, "invalid --base"),
        (["--key", "PRIVATE"], 2, "not a private key"),
        (["--key", "OTHER"], 1, "signature"),
    ],
)
def test_bad_input_one_line(home: Path, kit: Kit, args: list[str], code: int, words: str) -> None:
    args = [
        str(home / "keys" / "cosign.key")
        if a == "PRIVATE"
        else str(home / "other" / "cosign.pub")
        if a == "OTHER"
        else a
        for a in args
    ]
    if "--key" not in args:
        args += ["--key", kit.pub]
    out = home / f"bad-{uuid.uuid4().hex[:6]}"
    r = cli("dockerfile", kit.reference, *args, "-o", str(out))
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == code and len(errors) == 1 and words in errors[0], r.output
    assert PASSPHRASE not in r.output and "BEGIN" not in r.output
    assert not (out / "Dockerfile").exists()


# ---- the entry script, run directly ------------------------------------------------------------------
def run_entry(
    recipe_dir: Path, model_dir: Path, key: str | None = None
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    err = recipe_dir.parent / f"entry-{uuid.uuid4().hex[:6]}.err"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MODELKIT_KEY": key or str(next(recipe_dir.glob("*.pub"))),
        "MODELKIT_MODEL_DIR": str(model_dir),
        "MODELKIT_HOST": "127.0.0.1",
        "MODELKIT_PORT": str(port),
        "MLFLOW_MODELKIT_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
    }
    with open(err, "wb") as f:
        proc = subprocess.Popen(
            ["sh", str(recipe_dir / "modelkit-entry.sh")],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return proc, port, err


def kill(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()
    return proc.returncode


def test_entry_verifies_and_serves(recipe: tuple[Path, Result], baked: Path, kit: Kit) -> None:
    proc, port, err = run_entry(recipe[0], baked)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, err.read_text()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.3)
        body = {"dataframe_split": json.loads(kit.X.to_json(orient="split", index=False))}
        r = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == kit.model.predict(kit.X).tolist()
        assert r.headers["X-ModelKit-Digest"] == kit.digest
    finally:
        kill(proc)
    out = err.read_text()
    assert "verified" in out and f"serving {kit.store}@{kit.digest}" in out, out
    assert REGISTRY_PASSWORD not in out and PASSPHRASE not in out


def refused(recipe_dir: Path, model_dir: Path, key: str | None = None) -> str:
    proc, port, err = run_entry(recipe_dir, model_dir, key)
    try:
        code = proc.wait(timeout=60)
    finally:
        kill(proc)
    out = err.read_text()
    assert code == 1 and "Traceback" not in out, out
    assert REGISTRY_PASSWORD not in out
    with contextlib.suppress(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/ping", timeout=1)
        raise AssertionError("something is listening")
    return out


def test_entry_refuses_tampered_blob(
    recipe: tuple[Path, Result], baked: Path, kit: Kit, registry: RegistryServer
) -> None:
    repo, _ = open_location(kit.store)
    config = json.loads(repo.get_manifest(kit.digest)[0])["config"]["digest"]
    path = registry.blob_path(config)
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"', b"'", 1))
    try:
        out = refused(recipe[0], baked)
    finally:
        path.write_bytes(original)
    assert "NOT verified" in out and "blob digests" in out, out


def test_entry_refuses_changed_model_file(recipe: tuple[Path, Result], baked: Path, home: Path) -> None:
    copy = home / f"changed-{uuid.uuid4().hex[:6]}"
    subprocess.run(["cp", "-r", str(baked), str(copy)], check=True)
    for p in [copy, *copy.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    with open(copy / "requirements.txt", "a") as f:
        f.write("evil-package==6.6.6\n")
    make_read_only(str(copy))
    try:
        out = refused(recipe[0], copy)
    finally:
        remove_tree(str(copy))
    assert "requirements.txt" in out and "changed" in out, out


def test_entry_refuses_writable_model_dir(recipe: tuple[Path, Result], baked: Path, home: Path) -> None:
    copy = home / f"writable-{uuid.uuid4().hex[:6]}"
    subprocess.run(["cp", "-r", str(baked), str(copy)], check=True)
    os.chmod(copy, 0o755)
    try:
        out = refused(recipe[0], copy)
    finally:
        remove_tree(str(copy))
    assert "writable" in out, out


def test_entry_refuses_another_key(recipe: tuple[Path, Result], baked: Path, home: Path) -> None:
    out = refused(recipe[0], baked, key=str(home / "other" / "cosign.pub"))
    assert "is not the public key this image was made for" in out, out
