"""Kits moving between local OCI layouts and a real registry (docker-registry 2.8 on loopback)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from _registries import RegistryServer, registry_binary
from click.testing import CliRunner

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.errors import DigestMismatchError, ModelKitError
from mlflow_plugin.storage.registry import RegistryRepository

KITFILE = """manifestVersion: 1.0.0
package: {name: fraud, version: 1.0}
model: {name: m, path: model}
code: [{path: src}]
datasets: [{name: train, path: data/train.csv}]
"""


def make_context(root: Path, model_bytes: int = 4096) -> Path:
    ctx = root / "ctx"
    (ctx / "model").mkdir(parents=True)
    (ctx / "src").mkdir()
    (ctx / "data").mkdir()
    (ctx / "Kitfile").write_text(KITFILE)
    (ctx / "model" / "weights.bin").write_bytes(os.urandom(model_bytes))
    (ctx / "src" / "train.py").write_text("print('train')\n")
    (ctx / "data" / "train.csv").write_text("a,b\n1,2\n")
    return ctx


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "315532800")
    monkeypatch.setenv("MODELKIT_CLI_VERSION", "1.15.0")
    monkeypatch.delenv("MODELKIT_CREATED", raising=False)


class RequestLog:
    """Record every HTTP request our client sends (method, path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        orig = requests.Session.send

        def send(session: requests.Session, req: requests.PreparedRequest, **kw: object) -> requests.Response:
            self.calls.append((req.method or "", req.path_url))
            return orig(session, req, **kw)

        monkeypatch.setattr(requests.Session, "send", send)

    def uploads(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if "/blobs/uploads" in c[1] and c[0] in ("PUT", "PATCH", "POST")]


def test_layout_registry_round_trip(tmp_path: Path, registry: RegistryServer, pinned: None) -> None:
    ctx = make_context(tmp_path)
    local = ops.pack(str(ctx), f"oci:{tmp_path}/kits/fraud:v1")
    remote = f"{registry.host}/team/fraud:v1"
    assert ops.copy(f"oci:{tmp_path}/kits/fraud:v1", remote) == local.digest
    assert ops.copy(remote, f"oci:{tmp_path}/pulled/fraud:v1") == local.digest
    info = ops.inspect(remote)
    assert info.digest == local.digest
    assert info.config == json.loads(local.config)
    out = tmp_path / "out"
    ops.unpack(remote, str(out))
    for rel in ("model/weights.bin", "src/train.py", "data/train.csv"):
        assert (out / rel).read_bytes() == (ctx / rel).read_bytes()
    assert (out / "Kitfile").is_file()
    tags = {r["tag"]: r for r in ops.list_tags(f"{registry.host}/team/fraud")}
    assert tags["v1"]["digest"] == local.digest
    assert tags["v1"]["size"] == len(local.manifest) + len(local.config) + sum(d.size for d in local.layers)


def test_pack_straight_to_registry_matches_layout(
    tmp_path: Path, registry: RegistryServer, pinned: None
) -> None:
    ctx = make_context(tmp_path)
    a = ops.pack(str(ctx), f"oci:{tmp_path}/kits/fraud:v1")
    b = ops.pack(str(ctx), f"{registry.host}/direct/fraud:v1")
    assert a.digest == b.digest
    assert not (tmp_path / "ctx" / "blobs").exists()  # nothing staged in the context


def test_second_push_sends_no_blob(
    tmp_path: Path, registry: RegistryServer, pinned: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(tmp_path)
    ops.pack(str(ctx), f"oci:{tmp_path}/kits/fraud:v1")
    log = RequestLog(monkeypatch)
    ops.copy(f"oci:{tmp_path}/kits/fraud:v1", f"{registry.host}/dedupe/fraud:v1")
    first = len(log.uploads())
    assert first >= 4  # config + 3 layers, each POST + PUT
    log.calls.clear()
    ops.copy(f"oci:{tmp_path}/kits/fraud:v1", f"{registry.host}/dedupe/fraud:v2")
    assert log.uploads() == []
    assert any(m == "HEAD" for m, _ in log.calls)
    # re-packing unchanged content straight to the registry uploads nothing either
    log.calls.clear()
    ops.pack(str(ctx), f"{registry.host}/dedupe/fraud:v3")
    assert log.uploads() == []


def test_cross_repository_mount(
    tmp_path: Path, registry: RegistryServer, pinned: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(tmp_path)
    ops.pack(str(ctx), f"{registry.host}/mount/src:v1")
    log = RequestLog(monkeypatch)
    ops.copy(f"{registry.host}/mount/src:v1", f"{registry.host}/mount/dst:v1")
    assert any("mount=" in p for _, p in log.calls)
    assert not any(m in ("PUT", "PATCH") and "/blobs/uploads" in p for m, p in log.calls)


def test_skopeo_copy_preserves_digest(tmp_path: Path, registry: RegistryServer, pinned: None) -> None:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo not installed")
    ctx = make_context(tmp_path)
    r = ops.pack(str(ctx), f"{registry.host}/skopeo/fraud:v1")
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            f"docker://{registry.host}/skopeo/fraud:v1",
            f"oci:{tmp_path}/sk:v1",
        ],
        check=True,
        capture_output=True,
    )
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{tmp_path}/sk:v1"], check=True, capture_output=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == r.digest
    # and our tools read skopeo's layout
    out = tmp_path / "out"
    ops.unpack(f"oci:{tmp_path}/sk:v1", str(out))
    assert (out / "model" / "weights.bin").read_bytes() == (ctx / "model" / "weights.bin").read_bytes()


def test_corrupted_blob_in_registry_fails_and_writes_nothing(
    tmp_path: Path, registry: RegistryServer, pinned: None
) -> None:
    ctx = make_context(tmp_path)
    r = ops.pack(str(ctx), f"{registry.host}/corrupt/fraud:v1")
    model = r.layers[0]
    data = registry.blob_path(model.digest)
    raw = bytearray(data.read_bytes())
    raw[1024] ^= 0xFF
    data.write_bytes(bytes(raw))
    out = tmp_path / "out"
    with pytest.raises(DigestMismatchError, match=model.digest):
        ops.unpack(f"{registry.host}/corrupt/fraud:v1", str(out))
    assert not out.exists()
    with pytest.raises(DigestMismatchError, match=model.digest):
        ops.copy(f"{registry.host}/corrupt/fraud:v1", f"oci:{tmp_path}/copy:v1")
    assert "v1" not in ops.list_tags(f"oci:{tmp_path}/copy") if (tmp_path / "copy").exists() else True


def test_registry_killed_mid_upload(tmp_path: Path, pinned: None) -> None:
    binary = registry_binary()
    server = RegistryServer(binary, tmp_path / "reg", "registry-kill")
    (tmp_path / "reg").mkdir()
    server.start()
    try:
        ctx = make_context(tmp_path, model_bytes=256 << 20)
        ops.pack(str(ctx), f"oci:{tmp_path}/kits/fraud:v1")
        (ctx / "src" / "train.py").write_text("print('v0')\n")
        old = ops.pack(str(ctx), f"{server.host}/team/fraud:v1")  # the tag's current value
        (ctx / "src" / "train.py").write_text("print('train')\n")

        def progress(stage: str, done: int, total: int) -> None:
            if done > (16 << 20) and server.running:  # the registry dies mid-upload
                threading.Thread(target=server.stop).start()

        server_was = server.host
        with pytest.raises(ModelKitError) as err:
            ops.copy(f"oci:{tmp_path}/kits/fraud:v1", f"{server_was}/team/fraud:v1", progress=progress)
        msg = str(err.value)
        assert "\n" not in msg and server_was in msg
        deadline = time.monotonic() + 10
        while server.running and time.monotonic() < deadline:
            time.sleep(0.05)
        server.start()
        repo = RegistryRepository(server.host, "team/fraud")
        assert repo.resolve("v1").digest == old.digest  # the tag did not move
        new = ops.copy(f"oci:{tmp_path}/kits/fraud:v1", f"{server.host}/team/fraud:v1")
        assert repo.resolve("v1").digest == new != old.digest
    finally:
        server.stop()


def test_cli_round_trip_with_basic_auth(
    tmp_path: Path, auth_registry: RegistryServer, pinned: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", auth_registry.ca)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", auth_registry.password)
    runner = CliRunner()
    ref = f"{auth_registry.host}/secure/fraud:v1"
    r = runner.invoke(main, ["pack", str(ctx), "-t", ref])
    assert r.exit_code == 0, r.output
    assert r.output.strip().startswith(ref + "@sha256:")
    r = runner.invoke(main, ["list", f"{auth_registry.host}/secure/fraud", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["tag"] == "v1"
    r = runner.invoke(main, ["unpack", ref, "-d", str(tmp_path / "out"), "--filter", "model"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "model" / "weights.bin").exists()
    assert not (tmp_path / "out" / "src").exists()
    # wrong password: one line, exit 2, password not shown
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", "not-the-password-42")
    r = runner.invoke(main, ["inspect", ref])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "not-the-password-42" not in r.output and auth_registry.password not in r.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        ["inspect", "Team/Fraud:v1"],  # uppercase repository
        ["inspect", "localhost:5000/x:bad tag"],  # bad tag
        ["inspect", f"oci:{tmp_path}/missing:v1"],  # no layout there
        ["inspect", "127.0.0.1:9/nobody/home:v1"],  # nothing listening
        ["pack", str(tmp_path), "-t", f"oci:{tmp_path}/k:v1"],  # no Kitfile
    ]
    for args in cases:
        r = runner.invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.output)
