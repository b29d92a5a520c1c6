"""Every error a user can cause is one line, through the CLI and through the Python API.

One table (:data:`CASES`) of bad inputs, each built for real: malformed Kitfiles, bad references,
a wrong passphrase, a wrong public key, an unreachable registry, wrong credentials, untrusted TLS,
a missing tag, a full disk and a read-only target (small tmpfs mounts), unknown runs and models,
hostile layers, and MLflow downloads and loads. Each case runs

* through the CLI (``CliRunner``, ``catch_exceptions=False`` so a traceback fails the test):
  stderr is exactly one non-empty line starting ``error: `` that names the thing, no
  ``Traceback``, the documented exit code (2 for user errors, 1 for "verify failed");
* through the Python API: a :class:`~mlflow_plugin.errors.ModelKitError` (MLflow entry points: an
  ``MlflowException``) whose message is one line naming the thing.

Neither ever shows a secret (passphrases, registry passwords) or an internal staging path
(``.modelkit-*``). Cases whose fix belongs to another module are ``xfail(strict=True)`` with the
reason; the reason says exactly what fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pytest
from _envhelpers import clean_env, end_runs, use_tracking
from _kithelpers import hostile_tar, layout_with_layers, make_tree, tinfo
from _registries import RegistryServer, free_port
from click.testing import CliRunner
from mlflow.exceptions import MlflowException

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.publish import publish_run
from mlflow_plugin.harden.verify import verify
from mlflow_plugin.trust.keys import generate_keypair

PASSPHRASE = "correct horse battery staple e41d"
WRONG_PASSPHRASE = "wrong-passphrase-9c1f7"
WRONG_PASSWORD = "wrong-registry-pw-51b0"
BIG = 3 << 20  # more than the 2 MiB tmpfs holds
GOOD_KITFILE = "manifestVersion: 1.0.0\npackage:\n  name: errs\nmodel:\n  name: m\n  path: model\n"
UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


# ---- the world the cases are built in ----------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module state: a clean environment, two real key pairs, a SQLite tracking store."""
    root = tmp_path_factory.mktemp("errors")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        generate_keypair(str(root / "keys"), PASSPHRASE.encode())
        generate_keypair(str(root / "other"), PASSPHRASE.encode())
        yield root


@pytest.fixture(autouse=True)
def _env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch, PASSPHRASE)
    use_tracking(f"sqlite:///{home}/mlflow.db")
    yield
    end_runs()


def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip() or r.returncode}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@dataclass
class Logged:
    run_id: str
    layout: Path
    artifact_uri: str


@pytest.fixture(scope="module")
def logged(home: Path) -> Logged:
    """A run logged into ``modelkit:///<home>/kits/team`` (a notes file and a 3 MiB blob)."""
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    layout = home / "kits" / "team"
    exp = mlflow.create_experiment(f"errors-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{layout}")
    src = home / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(os.urandom(BIG))
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("C", "1.0")
        mlflow.log_text("# errors\n", "notes/README.md")
        mlflow.log_artifact(str(src / "weights.bin"), "extra")
    return Logged(run.info.run_id, layout, run.info.artifact_uri)


@pytest.fixture(scope="module")
def published(home: Path, logged: Logged) -> str:
    """``oci:<layout>:v1``: the logged run published (signed with ``keys/cosign.key``)."""
    r = publish_run(
        logged.run_id, tag="v1", key=str(home / "keys" / "cosign.key"), password=PASSPHRASE.encode()
    )
    return f"{r.store}:{r.tag}"


class World:
    """What a case's setup can build: paths, kits, registries, tmpfs mounts, keys, runs."""

    def __init__(self, request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch, home: Path) -> None:
        self.request, self.tmp, self.mp, self.home = request, tmp, mp, home
        self._mounts: list[Path] = []

    # keys
    @property
    def private_key(self) -> str:
        return str(self.home / "keys" / "cosign.key")

    @property
    def public_key(self) -> str:
        return str(self.home / "keys" / "cosign.pub")

    @property
    def other_public_key(self) -> str:
        return str(self.home / "other" / "cosign.pub")

    # stores
    def registry(self) -> RegistryServer:
        return self.request.getfixturevalue("registry")

    def auth_registry(self) -> RegistryServer:
        return self.request.getfixturevalue("auth_registry")

    def logged(self) -> Logged:
        return self.request.getfixturevalue("logged")

    def published(self) -> str:
        return self.request.getfixturevalue("published")

    def context(self, kitfile: str = GOOD_KITFILE, big: int = 0) -> Path:
        ctx = self.tmp / f"ctx-{uuid.uuid4().hex[:6]}"
        files: dict[str, bytes | str] = {"Kitfile": kitfile, "model/w.txt": "weights"}
        if big:
            files["model/big.bin"] = os.urandom(big)
        return make_tree(ctx, files)

    def kit(self, big: int = 0) -> str:
        ref = f"oci:{self.tmp / f'kit-{uuid.uuid4().hex[:6]}'}:v1"
        ops.pack(str(self.context(big=big)), ref)
        return ref

    # file systems
    def tmpfs(self, size: str = "2m", read_only: bool = False) -> Path:
        path = self.tmp / f"fs-{uuid.uuid4().hex[:6]}"
        _mount(path, size)
        self._mounts.append(path)
        if read_only:
            r = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot remount {path} read-only: {r.stderr.strip()}")
        return path

    def close(self) -> None:
        for p in reversed(self._mounts):
            _umount(p)


@pytest.fixture
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> Iterator[World]:
    w = World(request, tmp_path, monkeypatch, home)
    try:
        yield w
    finally:
        w.close()


# ---- situations ----------------------------------------------------------------------------------
S = SimpleNamespace


def _kitfile_case(text: str, names: str | None = None) -> Callable[[World], S]:
    def setup(w: World) -> S:
        ctx = w.context(kitfile=text)
        return S(ctx=str(ctx), target=f"oci:{w.tmp / 'out'}:v1", names=names or f"{ctx}/Kitfile")

    return setup


def _no_kitfile(w: World) -> S:
    ctx = w.tmp / "empty-ctx"
    ctx.mkdir()
    return S(ctx=str(ctx), target=f"oci:{w.tmp / 'out'}:v1", names=str(ctx))


def _bad_ref(ref: str, names: str | None = None) -> Callable[[World], S]:
    return lambda w: S(ref=ref, names=names or ref)


def _unreachable(w: World) -> S:
    host = f"127.0.0.1:{free_port()}"
    return S(ref=f"{host}/team/x:v1", repo=f"{host}/team/x", kit=w.kit(), names=host)


def _tls_untrusted(w: World) -> S:
    reg = w.auth_registry()
    return S(ref=f"{reg.host}/team/x:v1", repo=f"{reg.host}/team/x", names=reg.host)


def _wrong_credentials(w: World) -> S:
    reg = w.auth_registry()
    assert reg.ca
    w.mp.setenv("MLFLOW_MODELKIT_CA_BUNDLE", reg.ca)
    w.mp.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", reg.username)
    w.mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", WRONG_PASSWORD)
    return S(
        ref=f"{reg.host}/team/x:v1",
        repo=f"{reg.host}/team/x",
        names=reg.host,
        secrets=(WRONG_PASSWORD, reg.password),
    )


def _missing_registry_tag(w: World) -> S:
    reg = w.registry()
    repo = f"{reg.host}/errors/missing-{uuid.uuid4().hex[:6]}"
    ops.copy(w.kit(), f"{repo}:v1")
    return S(ref=f"{repo}:nope", names="nope")


def _missing_layout_tag(w: World) -> S:
    kit = w.kit()
    ref = kit.rsplit(":", 1)[0] + ":nope"
    return S(ref=ref, out=str(w.tmp / "out"), names="nope")


def _missing_layout(w: World) -> S:
    ref = f"oci:{w.tmp / 'no-such-layout'}:v1"
    return S(ref=ref, out=str(w.tmp / "out"), names=str(w.tmp / "no-such-layout"))


def _unpack_full_disk(w: World) -> S:
    kit = w.kit(big=BIG)
    out = w.tmpfs("2m") / "out"
    return S(ref=kit, out=str(out), names=str(out))


def _unpack_read_only(w: World) -> S:
    kit = w.kit()
    out = w.tmpfs(read_only=True) / "out"
    return S(ref=kit, out=str(out), names=str(out))


def _pack_full_disk(w: World) -> S:
    ctx = w.context(big=BIG)
    layout = w.tmpfs("2m") / "kit"
    return S(ctx=str(ctx), target=f"oci:{layout}:v1", names=str(layout))


def _pack_read_only(w: World) -> S:
    ctx = w.context()
    layout = w.tmpfs(read_only=True) / "kit"
    return S(ctx=str(ctx), target=f"oci:{layout}:v1", names=str(layout))


def _pull_full_disk(w: World) -> S:
    kit = w.kit(big=BIG)
    layout = w.tmpfs("2m") / "kit"
    return S(ref=kit, dest=f"oci:{layout}:v1", names=str(layout))


def _keygen_read_only(w: World) -> S:
    out = w.tmpfs(read_only=True) / "keys"
    return S(out=str(out), names=str(out))


def _file_then_dir(w: World) -> S:
    tar = hostile_tar([(tinfo("model/x"), b"a file"), (tinfo("model/x/y.txt"), b"below a file")])
    layout = w.tmp / "hostile"
    layout_with_layers(layout, [("model", tar, {"name": "m", "path": "."})])
    return S(ref=f"oci:{layout}:v1", out=str(w.tmp / "out"), names="model/x")


def _unpack_exists(w: World) -> S:
    kit = w.kit()
    out = w.tmp / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "w.txt").write_text("mine")
    return S(ref=kit, out=str(out), names="model/w.txt")


def _unpack_dir_in_the_way(w: World) -> S:
    kit = w.kit()
    out = w.tmp / "out"
    (out / "model" / "w.txt").mkdir(parents=True)
    return S(ref=kit, out=str(out), names="model/w.txt")


def _bad_filter(w: World) -> S:
    return S(ref=w.kit(), out=str(w.tmp / "out"), names="weights")


def _publish(key: str = "private", run: str = "logged", **extra: Any) -> Callable[[World], S]:
    def setup(w: World) -> S:
        run_id = w.logged().run_id if run == "logged" else run
        key_path = {"private": w.private_key, "missing": str(w.tmp / "nokeys" / "cosign.key")}[key]
        s = S(run=run_id, key=key_path, tag="v9", model=None, password=PASSPHRASE, secrets=(PASSPHRASE,))
        for k, v in extra.items():
            setattr(s, k, v)
        if s.password != PASSPHRASE:
            w.mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", s.password)
            s.secrets = (PASSPHRASE, s.password)
        s.names = {"run": run_id, "key": key_path, "model": s.model, "tag": s.tag}[s.names_what]
        return s

    return setup


def _tracking_unreachable(w: World) -> S:
    s = _publish(names_what="run")(w)
    host = f"127.0.0.1:{free_port()}"
    w.mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    w.mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    mlflow.set_tracking_uri(f"http://bob:{WRONG_PASSWORD}@{host}")
    s.names, s.secrets = host, (*s.secrets, WRONG_PASSWORD)
    return s


def _verify_wrong_key(w: World) -> S:
    ref = w.published()
    return S(ref=ref, key=w.other_public_key, names=ref, uri=f"modelkit://{ref[4:]}", dst=str(w.tmp / "dst"))


def _load_untrusted(w: World) -> S:
    s = _verify_wrong_key(w)
    w.mp.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    w.mp.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", w.other_public_key)
    Path(s.dst).mkdir()
    s.names = s.ref[4:]  # the layout path and tag, as in the modelkit:// URI
    return s


def _verify_key(which: str) -> Callable[[World], S]:
    def setup(w: World) -> S:
        key = {"private": w.private_key, "missing": str(w.tmp / "nope.pub")}[which]
        return S(ref=w.published(), key=key, names=key)

    return setup


def _download(where: str) -> Callable[[World], S]:
    def setup(w: World) -> S:
        run = w.logged()
        dst = w.tmpfs("2m", read_only=where == "read-only") / "dst"
        if where != "read-only":
            dst.mkdir()
        else:
            dst = dst.parent
        return S(uri=f"{run.artifact_uri}/extra", dst=str(dst), names=str(dst))

    return setup


def _download_dir_in_the_way(w: World) -> S:
    run = w.logged()
    dst = w.tmp / "dst"
    (dst / "extra" / "weights.bin").mkdir(parents=True)
    return S(uri=f"{run.artifact_uri}/extra", dst=str(dst), names="weights.bin")


def _load_unreachable(repo: str = "team/fraud") -> Callable[[World], S]:
    def setup(w: World) -> S:
        host = f"127.0.0.1:{free_port()}"
        return S(uri=f"modelkit://{host}/{repo}:v1", dst=str(w.tmp / "dst"), names=f"{host}/{repo}")

    return setup


def _load_bad_uri(w: World) -> S:
    uri = "modelkit://127.0.0.1:5000/Bad Repo/x:v1"
    return S(uri=uri, dst=str(w.tmp / "dst"), names="Bad Repo")


def _config_missing(w: World) -> S:
    path = str(w.tmp / "nope.toml")
    w.mp.setenv("MLFLOW_MODELKIT_CONFIG", path)
    return S(names=path)


def _scan_missing(w: World) -> S:
    path = str(w.tmp / "nope.pkl")
    return S(path=path, names=path)


# ---- the table -----------------------------------------------------------------------------------
@dataclass
class Case:
    """One bad input: how to build it, what to run, what the one line must say."""

    id: str
    setup: Callable[[World], S]
    cli: Callable[[S], list[str]] | None  # mlflow-modelkit arguments (None: no CLI form)
    api: Callable[[S], Any] | None  # the Python API call (None: no API form)
    exit_code: int = 2
    api_error: type[Exception] = ModelKitError
    fix: str | None = None  # a word of the fix the line should suggest (case-insensitive)
    cli_xfail: str | None = None
    api_xfail: str | None = None
    marks: list[Any] = field(default_factory=list)


def _download_artifacts(s: S) -> Any:
    # artifact_uri=: MLflow's ``run_id=``/``runs:/`` path (RunsArtifactRepository) swallows every
    # error of the underlying repository into "Failed to download artifacts from path ..."
    return mlflow.artifacts.download_artifacts(artifact_uri=s.uri, dst_path=s.dst)


def _load(s: S) -> Any:
    return mlflow.pyfunc.load_model(s.uri, dst_path=s.dst)


def _publish_api(s: S) -> Any:
    return publish_run(s.run, tag=s.tag, key=s.key, password=s.password.encode(), model=s.model)


def _publish_cli(s: S) -> list[str]:
    args = ["publish", f"runs:/{s.run}", "--tag", s.tag, "--key", s.key]
    return args + (["--model", s.model] if s.model else [])


CASES = [
    # malformed Kitfiles
    Case(
        "kitfile-yaml-syntax",
        _kitfile_case("manifestVersion: 1.0.0\nmodel: [unclosed\n"),
        lambda s: ["pack", s.ctx, "-t", s.target],
        lambda s: ops.pack(s.ctx, s.target),
    ),
    Case(
        "kitfile-unknown-key",
        _kitfile_case("manifestVersion: 1.0.0\nmodle:\n  path: model\n"),
        lambda s: ["pack", s.ctx, "-t", s.target],
        lambda s: ops.pack(s.ctx, s.target),
        fix="did you mean",
    ),
    Case(
        "kitfile-wrong-type",
        _kitfile_case("manifestVersion: 1.0.0\nmodel: [a, b]\n"),
        lambda s: ["pack", s.ctx, "-t", s.target],
        lambda s: ops.pack(s.ctx, s.target),
    ),
    Case(
        "kitfile-missing-path",
        _kitfile_case("manifestVersion: 1.0.0\nmodel:\n  name: m\n  path: no-such-dir\n", "'no-such-dir'"),
        lambda s: ["pack", s.ctx, "-t", s.target],
        lambda s: ops.pack(s.ctx, s.target),
    ),
    Case(
        "kitfile-absent",
        _no_kitfile,
        lambda s: ["pack", s.ctx, "-t", s.target],
        lambda s: ops.pack(s.ctx, s.target),
        fix="Kitfile",
    ),
    # bad references
    Case(
        "ref-uppercase-repo",
        _bad_ref("127.0.0.1:5000/Team/X:v1", "'Team/X'"),
        lambda s: ["inspect", s.ref],
        lambda s: ops.inspect(s.ref),
    ),
    Case(
        "ref-bad-tag",
        _bad_ref("127.0.0.1:5000/team/x:bad tag!"),
        lambda s: ["inspect", s.ref],
        lambda s: ops.inspect(s.ref),
    ),
    Case(
        "ref-empty-layout",
        _bad_ref("oci::v1"),
        lambda s: ["list", s.ref],
        lambda s: ops.list_tags(s.ref),
    ),
    Case(
        "ref-bad-digest",
        _bad_ref("127.0.0.1:5000/team/x@sha256:abc", "'sha256:abc'"),
        lambda s: ["inspect", s.ref],
        lambda s: ops.inspect(s.ref),
    ),
    # keys and passphrases
    Case(
        "wrong-passphrase",
        _publish(password=WRONG_PASSPHRASE, names_what="key"),
        _publish_cli,
        _publish_api,
        fix="MLFLOW_MODELKIT_KEY_PASSWORD",
    ),
    Case(
        "missing-private-key",
        _publish(key="missing", names_what="key"),
        _publish_cli,
        _publish_api,
        fix="keygen",
    ),
    Case(
        "wrong-public-key",
        _verify_wrong_key,
        lambda s: ["verify", s.ref, "--key", s.key],
        None,
        exit_code=1,
        fix="--key",
    ),
    Case(
        "wrong-public-key-load",
        _load_untrusted,
        None,
        _load,
        api_error=MlflowException,
    ),
    Case(
        "private-key-as-public-key",
        _verify_key("private"),
        lambda s: ["verify", s.ref, "--key", s.key],
        lambda s: verify(s.ref, keys=[s.key]),
        fix="public key",
    ),
    Case(
        "missing-public-key",
        _verify_key("missing"),
        lambda s: ["verify", s.ref, "--key", s.key],
        lambda s: verify(s.ref, keys=[s.key]),
    ),
    # registries
    Case(
        "unreachable-registry",
        _unreachable,
        lambda s: ["inspect", s.ref],
        lambda s: ops.inspect(s.ref),
        fix="running",
    ),
    Case(
        "unreachable-registry-push",
        _unreachable,
        lambda s: ["push", s.kit, s.ref],
        lambda s: ops.copy(s.kit, s.ref),
    ),
    Case(
        "untrusted-tls",
        _tls_untrusted,
        lambda s: ["inspect", s.ref],
        lambda s: ops.inspect(s.ref),
        fix="CA",
    ),
    Case(
        "wrong-credentials",
        _wrong_credentials,
        lambda s: ["list", s.repo],
        lambda s: ops.list_tags(s.repo),
        fix="MLFLOW_MODELKIT_REGISTRY_USERNAME",
    ),
    Case(
        "missing-tag-registry",
        _missing_registry_tag,
        lambda s: ["inspect", s.ref],
        lambda s: ops.inspect(s.ref),
    ),
    Case(
        "missing-tag-layout",
        _missing_layout_tag,
        lambda s: ["unpack", s.ref, "-d", s.out],
        lambda s: ops.unpack(s.ref, s.out),
    ),
    Case(
        "missing-layout",
        _missing_layout,
        lambda s: ["unpack", s.ref, "-d", s.out],
        lambda s: ops.unpack(s.ref, s.out),
    ),
    # full disk, read-only target
    Case(
        "unpack-full-disk",
        _unpack_full_disk,
        lambda s: ["unpack", s.ref, "-d", s.out],
        lambda s: ops.unpack(s.ref, s.out),
        fix="space",
    ),
    Case(
        "unpack-read-only",
        _unpack_read_only,
        lambda s: ["unpack", s.ref, "-d", s.out],
        lambda s: ops.unpack(s.ref, s.out),
        fix="read-only",
    ),
    Case(
        "pack-full-disk",
        _pack_full_disk,
        lambda s: ["pack", s.ctx, "-t", s.target],
        lambda s: ops.pack(s.ctx, s.target),
        fix="space",
    ),
    Case(
        "pack-read-only",
        _pack_read_only,
        lambda s: ["pack", s.ctx, "-t", s.target],
        lambda s: ops.pack(s.ctx, s.target),
        fix="read-only",
    ),
    Case(
        "pull-full-disk",
        _pull_full_disk,
        lambda s: ["pull", s.ref, "-t", s.dest],
        lambda s: ops.copy(s.ref, s.dest),
        fix="space",
    ),
    Case(
        "keygen-read-only",
        _keygen_read_only,
        lambda s: ["keygen", "-o", s.out],
        lambda s: generate_keypair(s.out, PASSPHRASE.encode()),
        fix="read-only",
    ),
    # unpack
    Case(
        "unpack-file-then-directory",
        _file_then_dir,
        lambda s: ["unpack", s.ref, "-d", s.out],
        lambda s: ops.unpack(s.ref, s.out),
    ),
    Case(
        "unpack-existing-file",
        _unpack_exists,
        lambda s: ["unpack", s.ref, "-d", s.out],
        lambda s: ops.unpack(s.ref, s.out),
        fix="--overwrite",
    ),
    Case(
        "unpack-directory-in-the-way",
        _unpack_dir_in_the_way,
        lambda s: ["unpack", s.ref, "-d", s.out],
        lambda s: ops.unpack(s.ref, s.out),
    ),
    Case(
        "unpack-bad-filter",
        _bad_filter,
        lambda s: ["unpack", s.ref, "-d", s.out, "--filter", "weights"],
        lambda s: ops.unpack(s.ref, s.out, filters=["weights"]),
    ),
    # unknown runs and models
    Case(
        "publish-unknown-run",
        _publish(run=UNKNOWN_RUN, names_what="run"),
        _publish_cli,
        _publish_api,
        fix="tracking",
    ),
    Case(
        "publish-malformed-run-id",
        _publish(run="not-a-run", names_what="run"),
        _publish_cli,
        _publish_api,
    ),
    Case(
        "publish-tracking-unreachable",
        _tracking_unreachable,
        _publish_cli,
        _publish_api,
        fix="MLFLOW_TRACKING_URI",
    ),
    Case(
        "publish-unknown-model",
        _publish(model="no-such-model", names_what="model"),
        _publish_cli,
        _publish_api,
    ),
    Case(
        "publish-bad-tag",
        _publish(tag="bad tag!", names_what="tag"),
        _publish_cli,
        _publish_api,
    ),
    # MLflow entry points
    Case(
        "mlflow-download-read-only",
        _download("read-only"),
        None,
        _download_artifacts,
        api_error=MlflowException,
        fix="permissions",
    ),
    Case(
        "mlflow-download-full-disk",
        _download("full"),
        None,
        _download_artifacts,
        api_error=MlflowException,
        fix="free space",
    ),
    Case(
        "mlflow-download-directory-in-the-way",
        _download_dir_in_the_way,
        None,
        _download_artifacts,
        api_error=MlflowException,
    ),
    Case(
        "mlflow-load-unreachable",
        _load_unreachable(),
        None,
        _load,
        api_error=MlflowException,
        fix="running",
    ),
    Case(
        "mlflow-load-one-letter-repo",
        _load_unreachable("team/x"),
        None,
        _load,
        api_error=MlflowException,
    ),
    Case(
        "mlflow-load-one-segment-repo",
        _load_unreachable("fraud"),
        None,
        _load,
        api_error=MlflowException,
    ),
    Case(
        "mlflow-load-bad-uri",
        _load_bad_uri,
        None,
        _load,
        api_error=MlflowException,
    ),
    # command line usage
    Case(
        "cli-missing-option",
        lambda w: S(ctx=str(w.context()), names="--tag"),
        lambda s: ["pack", s.ctx],
        None,
        fix="-h",
    ),
    Case(
        "cli-unknown-command",
        lambda w: S(names="frobnicate"),
        lambda s: ["frobnicate"],
        None,
    ),
    Case(
        "verify-no-trusted-keys",
        lambda w: S(ref=w.published(), names="trusted"),
        lambda s: ["verify", s.ref],
        None,  # verify() returns a failed VerifyResult: the "trusted keys" check says why
        exit_code=1,
        fix="MLFLOW_MODELKIT_TRUSTED_KEYS",
    ),
    Case(
        "publish-no-signing-key",
        lambda w: S(run=w.logged().run_id, names="signing key"),
        lambda s: ["publish", f"runs:/{s.run}", "--tag", "v9"],
        lambda s: publish_run(s.run, tag="v9"),
        fix="--key",
    ),
    # configuration, scan
    Case(
        "config-file-missing",
        _config_missing,
        lambda s: ["config", "show"],
        None,
    ),
    Case(
        "scan-missing-file",
        _scan_missing,
        lambda s: ["scan", s.path],
        None,
    ),
]


def _params(surface: str) -> list[Any]:
    out = []
    for c in CASES:
        if getattr(c, surface) is None:
            continue
        marks = list(c.marks)
        reason = getattr(c, f"{surface}_xfail")
        if reason:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def _check_line(line: str, s: S, case: Case) -> None:
    assert "\n" not in line.strip(), line
    assert s.names in line, f"{line!r} does not name {s.names!r}"
    if case.fix:
        assert case.fix.lower() in line.lower(), f"{line!r} does not suggest {case.fix!r}"
    assert ".modelkit-" not in line, f"internal staging path in {line!r}"
    assert "Traceback" not in line
    for secret in getattr(s, "secrets", ()):
        assert secret not in line, "a secret is in the error"


@pytest.mark.parametrize("case", _params("cli"))
def test_cli_error_is_one_line(case: Case, world: World) -> None:
    s = case.setup(world)
    assert case.cli is not None
    r = CliRunner().invoke(main, case.cli(s), catch_exceptions=False)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == case.exit_code, (r.exit_code, r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in r.output + r.stderr
    _check_line(lines[0], s, case)
    for secret in getattr(s, "secrets", ()):
        assert secret not in r.output + r.stderr


@pytest.mark.parametrize("case", _params("api"))
def test_api_error_is_one_line(case: Case, world: World) -> None:
    s = case.setup(world)
    assert case.api is not None
    with pytest.raises(Exception) as ei:
        case.api(s)
    assert isinstance(ei.value, case.api_error), f"{type(ei.value).__name__}: {ei.value}"
    msg = ei.value.message if isinstance(ei.value, MlflowException) else str(ei.value)
    _check_line(msg, s, case)


# ---- the handler itself: -v, unexpected errors ---------------------------------------------------
def test_verbose_shows_the_traceback(world: World) -> None:
    ref = "127.0.0.1:5000/Team/X:v1"
    r = CliRunner().invoke(main, ["-v", "inspect", ref], catch_exceptions=False)
    assert r.exit_code == 2
    assert "Traceback" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")


def test_unexpected_exception_is_one_line_exit_1(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ref: str, **kw: Any) -> Any:
        raise RuntimeError("something impossible\nsecond line")

    monkeypatch.setattr(ops, "inspect", broken)
    r = CliRunner().invoke(main, ["inspect", "oci:/x:v1"], catch_exceptions=False)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 1
    assert lines == [
        "error: internal error: RuntimeError: something impossible (run with -v for the traceback)"
    ]
    r = CliRunner().invoke(main, ["-v", "inspect", "oci:/x:v1"], catch_exceptions=False)
    assert r.exit_code == 1
    assert "Traceback" in r.stderr and "RuntimeError" in r.stderr


def test_oserror_line_has_no_staging_path(world: World) -> None:
    """The unpack staging directory lives inside the target; the line names the user's path."""
    kit = world.kit(big=BIG)
    out = world.tmpfs("2m") / "out"
    r = CliRunner().invoke(main, ["unpack", kit, "-d", str(out)], catch_exceptions=False)
    assert r.exit_code == 2
    line = r.stderr.strip()
    assert ".modelkit-" not in line and str(out) in line
    assert "No space left on device" in line
    with contextlib.suppress(FileNotFoundError):
        assert [p.name for p in out.iterdir()] == []
