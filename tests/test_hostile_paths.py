"""One matrix: every hostile path a kit can carry, through every way bytes reach a disk.

Kits are real drafts written by the plugin into a local OCI layout (the embedded default), then
made hostile the way an attacker who can write the registry would: a clean tar with a lying file
index (``dev.mlflow-modelkit.files``), or a tar whose header names something else than the index.
Entry points: ``mlflow-modelkit unpack`` (CLI), ``ops.unpack`` (Python API),
``mlflow.artifacts.download_artifacts`` (drafts), ``ArtifactRepository._download_file``,
``mlflow.pyfunc.load_model`` of a published tag, the same with verify-on-load (the hostile kit
is signed by the trusted key, so only the path rule stands in the way) and ``publish_run``
(publish staging). Each must refuse with one line and write nothing anywhere.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from _envhelpers import clean_env, end_runs, use_tracking
from click.testing import CliRunner
from mlflow.exceptions import MlflowException

from mlflow_plugin import packaging as ops
from mlflow_plugin._internal.gojson import dumps
from mlflow_plugin.cli import main
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.publish import publish_run
from mlflow_plugin.kit.fileindex import ANN_FILES
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.layout import LayoutRepository
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST
from mlflow_plugin.tracking.artifact_repo import ModelKitArtifactRepository
from mlflow_plugin.trust import attach, cosign, dsse, keys

PASSPHRASE = b"hostile paths test key 0b5e"
MLMODEL = b"""flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.skops
    python_version: 3.11.7
mlflow_version: 3.17.2
"""

Records = list[list[Any]]


# ---- hostile variants of the file index (each takes the true index, returns the lie) --------------
def _rename(new: str) -> Callable[[Records], Records]:
    def f(recs: Records) -> Records:
        recs[0][0] = new
        return recs

    return f


def _duplicate(recs: Records) -> Records:
    return [*recs, list(recs[0])]


def _file_and_dir(recs: Records) -> Records:
    return [*recs, [recs[0][0] + "/x.txt", *recs[1][1:]]]


def _size_lies(recs: Records) -> Records:
    recs[0][1] += 1
    return recs


def _points_at_other_file(recs: Records) -> Records:
    recs[0][1:] = recs[1][1:]  # the index says MLmodel, the tar header there names another file
    return recs


INDEX_LIES: dict[str, Callable[[Records], Records]] = {
    "dotdot": _rename("../../victim/evil.txt"),
    "nested-dotdot": _rename("model/../../../victim/evil.txt"),
    "dotdot-at-end": _rename("model/.."),
    "absolute": _rename("/tmp/victim-abs/evil.txt"),
    "empty-segment": _rename("model//evil.txt"),
    "backslash": _rename("model\\..\\..\\victim\\evil.txt"),
    "windows-drive": _rename("C:/victim/evil.txt"),
    "nul": _rename("model/evil\x00.txt"),
    "control-char": _rename("model/evil\x1b[2J.txt"),
    "newline": _rename("model/evil\n.txt"),
    "duplicate-entry": _duplicate,
    "file-and-directory": _file_and_dir,
    "size-differs-from-tar": _size_lies,
    "path-not-in-tar": _rename("model/not-in-the-tar.txt"),
    "points-at-another-file": _points_at_other_file,
}


@dataclass
class Kit:
    layout: Path  # the layout directory (one repository)
    run_id: str
    tag: str  # published tag holding the same manifest as the draft
    probe: str = "model/model.skops"  # the file ``_download_file`` asks for: the lying record's


@pytest.fixture(scope="module")
def tracking_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite tracking store for the module (creating its tables costs a second)."""
    return f"sqlite:///{tmp_path_factory.mktemp('hostile-tracking')}/mlflow.db"


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, tracking_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MLFLOW_MODELKIT_STAT_CACHE", "0")
    use_tracking(tracking_db)
    yield
    end_runs()


def _model_dir(root: Path) -> Path:
    d = root / "src" / "model"
    d.mkdir(parents=True)
    (d / "MLmodel").write_bytes(MLMODEL)
    (d / "model.skops").write_bytes(b"not really a model" * 10)
    (d / "requirements.txt").write_bytes(b"scikit-learn\n")
    return d


def _log_run(root: Path) -> Kit:
    """A real MLflow run whose artifacts are a draft kit in ``root/kits/team``."""
    layout = root / "kits" / "team"
    exp = mlflow.create_experiment(
        f"hostile-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{layout}"
    )
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifacts(str(_model_dir(root)), "model")
    return Kit(layout, run.info.run_id, "v1")


def _rewrite(
    kit: Kit, lie: Callable[[Records], Records] | None = None, layer_blob: bytes | None = None
) -> None:
    """Replace the draft's manifest (and tag ``v1`` with it) by a hostile variant."""
    repo = LayoutRepository(str(kit.layout))
    data, _mt, _d = repo.get_manifest(f"run-{kit.run_id}")
    m = json.loads(data)
    layer = m["layers"][0]
    recs = json.loads(layer["annotations"][ANN_FILES])
    recs = [r for r in recs if not r[0].endswith("/")]
    recs.sort(key=lambda r: r[0] != "model/MLmodel")  # the MLmodel record first
    if layer_blob is not None:
        digest, size = repo.push_blob_chunks([layer_blob])
        layer["digest"], layer["size"] = digest, size
        _fix_config(repo, m, digest)
    if lie is not None:
        recs = lie(recs)
        kit.probe = recs[0][0] if all(c.isprintable() for c in recs[0][0]) else kit.probe
    layer["annotations"][ANN_FILES] = json.dumps(recs)
    manifest = dumps(m)
    repo.put_manifest(manifest, OCI_MANIFEST, tag=f"run-{kit.run_id}")
    repo.put_manifest(manifest, OCI_MANIFEST, tag=kit.tag)


def _fix_config(repo: LayoutRepository, m: dict[str, Any], digest: str) -> None:
    """Point the Kitfile's model layer at the replacement blob (so unpack reaches the tar)."""
    cfg = json.loads(repo.read_blob(m["config"]["digest"], m["config"]["size"]))
    cfg["model"]["digest"] = cfg["model"]["diffId"] = digest
    from mlflow_plugin.kit.mediatypes import KIT_CONFIG

    c = repo.push_bytes(json.dumps(cfg).encode(), KIT_CONFIG)
    m["config"] = c.to_json()


def _hostile_tar() -> bytes:
    """The layer's tar with a member named outside the target, at the offset the index names."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in (("../../victim/evil.txt", MLMODEL), ("model/model.skops", b"x" * 180)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _sign(kit: Kit, root: Path) -> str:
    """Sign the hostile manifest with a key the policy trusts; returns the public key path."""
    priv_path, pub_path = keys.generate_keypair(str(root / "keys"), PASSPHRASE)
    private = keys.load_private_key(priv_path, PASSPHRASE)
    repo = LayoutRepository(str(kit.layout))
    desc = repo.resolve(kit.tag)
    subject = Descriptor(OCI_MANIFEST, desc.digest, desc.size)
    bundle = dsse.sign_bundle(cosign.cosign_sign_statement(desc.digest), private, hint="cosign")
    attach.attach_bundle(repo, subject, bundle, attach.PRED_SIGN)
    return pub_path


# ---- entry points: each returns the one-line error it got ---------------------------------------
def _cli_unpack(kit: Kit, dst: Path, root: Path, mp: pytest.MonkeyPatch) -> str:
    r = CliRunner().invoke(main, ["unpack", f"oci:{kit.layout}:{kit.tag}", "-d", str(dst)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def _api_unpack(kit: Kit, dst: Path, root: Path, mp: pytest.MonkeyPatch) -> str:
    with pytest.raises(ModelKitError) as ei:
        ops.unpack(f"oci:{kit.layout}:{kit.tag}", str(dst))
    return str(ei.value)


def _mlflow_download(kit: Kit, dst: Path, root: Path, mp: pytest.MonkeyPatch) -> str:
    with pytest.raises(MlflowException) as ei:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"modelkit://{kit.layout}/{kit.run_id}/artifacts/model", dst_path=str(dst)
        )
    return ei.value.message


def _mlflow_download_file(kit: Kit, dst: Path, root: Path, mp: pytest.MonkeyPatch) -> str:
    repo = ModelKitArtifactRepository(f"modelkit://{kit.layout}/{kit.run_id}/artifacts")
    with pytest.raises(MlflowException) as ei:
        repo._download_file(kit.probe, str(dst / "probe"))
    return ei.value.message


def _mlflow_load(kit: Kit, dst: Path, root: Path, mp: pytest.MonkeyPatch) -> str:
    with pytest.raises(MlflowException) as ei:
        mlflow.pyfunc.load_model(f"modelkit://{kit.layout}:{kit.tag}/model", dst_path=str(dst))
    return ei.value.message


def _verify_on_load(kit: Kit, dst: Path, root: Path, mp: pytest.MonkeyPatch) -> str:
    mp.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    mp.setenv("MLFLOW_MODELKIT_REQUIRED_ATTESTATIONS", "")
    mp.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", _sign(kit, root))
    return _mlflow_load(kit, dst, root, mp)


def _publish(kit: Kit, dst: Path, root: Path, mp: pytest.MonkeyPatch) -> str:
    priv, _pub = keys.generate_keypair(str(root / "pubkeys"), PASSPHRASE)
    with pytest.raises(ModelKitError) as ei:
        publish_run(kit.run_id, tag="v2", key=priv, password=PASSPHRASE)
    repo = LayoutRepository(str(kit.layout))
    assert "v2" not in repo.list_tags()  # nothing published
    return str(ei.value)


ENTRY_POINTS: dict[str, Callable[[Kit, Path, Path, pytest.MonkeyPatch], str]] = {
    "cli-unpack": _cli_unpack,
    "api-unpack": _api_unpack,
    "mlflow-download_artifacts": _mlflow_download,
    "mlflow-_download_file": _mlflow_download_file,
    "mlflow-load_model": _mlflow_load,
    "verify-on-load": _verify_on_load,
    "publish": _publish,
}


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _assert_nothing_written(root: Path, before: set[str], dst: Path, kit: Kit) -> None:
    after = _snapshot(root)
    new = sorted(
        p
        for p in after - before
        if not p.startswith(("kits", "xdg", "keys", "pubkeys", "mlflow.db", "mlruns"))
    )
    assert new == [], new
    assert not any("evil" in p for p in after), [p for p in after if "evil" in p]
    assert not Path("/tmp/victim-abs").exists()
    assert sorted(os.listdir(dst)) == [], os.listdir(dst)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("lie", list(INDEX_LIES))
def test_lying_file_index_is_refused_everywhere(
    entry: str, lie: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = _log_run(tmp_path)
    _rewrite(kit, INDEX_LIES[lie])
    (tmp_path / "victim").mkdir()
    dst = tmp_path / "out" / "a" / "b"
    dst.mkdir(parents=True)
    before = _snapshot(tmp_path)
    msg = ENTRY_POINTS[entry](kit, dst, tmp_path, monkeypatch)
    assert "\n" not in msg and "Traceback" not in msg
    assert ".modelkit-" not in msg, msg  # no internal staging paths
    assert any(w in msg for w in ("illegal", "twice", "disagree", "both a file and a directory", "index")), (
        msg
    )
    _assert_nothing_written(tmp_path, before, dst, kit)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_hostile_tar_member_behind_a_clean_index_is_refused(
    entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = _log_run(tmp_path)
    tar = _hostile_tar()
    # the index tells the truth about offsets and hashes, and lies about the name
    import hashlib

    recs = [
        ["model/MLmodel", len(MLMODEL), hashlib.sha256(MLMODEL).hexdigest(), 512],
        ["model/model.skops", 180, hashlib.sha256(b"x" * 180).hexdigest(), 512 + 512 + 512],
    ]
    _rewrite(kit, lambda _r: recs, layer_blob=tar)
    kit.probe = "model/MLmodel"
    (tmp_path / "victim").mkdir()
    dst = tmp_path / "out" / "a" / "b"
    dst.mkdir(parents=True)
    before = _snapshot(tmp_path)
    msg = ENTRY_POINTS[entry](kit, dst, tmp_path, monkeypatch)
    assert "\n" not in msg and "Traceback" not in msg
    assert "illegal" in msg or "disagree" in msg, msg
    _assert_nothing_written(tmp_path, before, dst, kit)


@pytest.mark.parametrize(
    "entry", ["cli-unpack", "api-unpack", "mlflow-download_artifacts", "mlflow-load_model"]
)
def test_symlink_already_in_the_target_cannot_redirect_writes(
    entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = _log_run(tmp_path)
    _rewrite(kit)  # an honest kit
    victim = tmp_path / "victim"
    victim.mkdir()
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "model").symlink_to(victim, target_is_directory=True)
    msg = ENTRY_POINTS[entry](kit, dst, tmp_path, monkeypatch)
    assert "\n" not in msg
    assert os.listdir(victim) == []
    assert sorted(os.listdir(dst)) == ["model"]  # only the attacker's symlink, nothing staged left


@pytest.mark.parametrize("entry", ["mlflow-download_artifacts", "api-unpack"])
def test_honest_kit_still_downloads(entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks refuse lies, not kits: the untouched draft downloads and unpacks in full."""
    kit = _log_run(tmp_path)
    _rewrite(kit)
    dst = tmp_path / "out"
    dst.mkdir()
    if entry == "api-unpack":
        ops.unpack(f"oci:{kit.layout}:{kit.tag}", str(dst))
    else:
        mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{kit.run_id}/model", dst_path=str(dst))
    assert (dst / "model" / "MLmodel").read_bytes() == MLMODEL
    assert not [p for p in os.listdir(dst) if p.startswith(".modelkit")]


def test_long_pax_names_download_by_range(tmp_path: Path) -> None:
    """Names longer than USTAR allows live in a PAX record: the range check reads it, not refuses."""
    layout = tmp_path / "kits" / "team"
    exp = mlflow.create_experiment("pax", artifact_location=f"modelkit://{layout}")
    deep = tmp_path / "src" / ("d" * 120) / ("é" * 30)
    deep.mkdir(parents=True)
    (deep / ("f" * 110 + ".txt")).write_bytes(b"long name")
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifacts(str(tmp_path / "src"), "deep")
    dst = tmp_path / "out"
    dst.mkdir()
    mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run.info.run_id}/deep", dst_path=str(dst))
    got = [p for p in dst.rglob("*.txt")]
    assert len(got) == 1 and got[0].read_bytes() == b"long name"
    shutil.rmtree(dst)


# ---- the same lies in a real registry (drafts read by HTTP range requests) ------------------------
@pytest.mark.registry
@pytest.mark.parametrize(
    "lie", ["dotdot", "duplicate-entry", "points-at-another-file", "size-differs-from-tar"]
)
def test_lying_index_in_a_registry_draft_is_refused(
    lie: str, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow_plugin.storage.registry import RegistryRepository

    repo_name = f"hostile/{lie}-{uuid.uuid4().hex[:6]}"
    exp = mlflow.create_experiment(
        f"hostile-reg-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{registry.host}/{repo_name}"
    )
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifacts(str(_model_dir(tmp_path)), "model")
    repo = RegistryRepository(registry.host, repo_name)
    tag = f"run-{run.info.run_id}"
    data, _mt, _d = repo.get_manifest(tag)
    m = json.loads(data)
    layer = m["layers"][0]
    recs = [r for r in json.loads(layer["annotations"][ANN_FILES]) if not r[0].endswith("/")]
    recs.sort(key=lambda r: r[0] != "model/MLmodel")
    recs = INDEX_LIES[lie](recs)
    layer["annotations"][ANN_FILES] = json.dumps(recs)
    repo.put_manifest(dumps(m), OCI_MANIFEST, tag=tag)
    (tmp_path / "victim").mkdir()
    dst = tmp_path / "out" / "a" / "b"
    dst.mkdir(parents=True)
    with pytest.raises(MlflowException) as ei:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"modelkit://{registry.host}/{repo_name}/{run.info.run_id}/artifacts/model",
            dst_path=str(dst),
        )
    msg = ei.value.message
    assert "\n" not in msg and registry.host in msg
    assert os.listdir(dst) == [] and os.listdir(tmp_path / "victim") == []
    assert not [p for p in tmp_path.rglob("*evil*")]


@pytest.mark.parametrize("where", ["publish", "log-into-draft"])
def test_hostile_layer_path_annotation_is_refused(where: str, tmp_path: Path) -> None:
    """``org.cncf.model.filepath`` names where a layer's tree is rebuilt and what the Kitfile says:
    a lie there must not make a merge read (and upload) files outside its temp tree, nor publish."""
    from mlflow_plugin.kit.mediatypes import ANN_FILEPATH

    kit = _log_run(tmp_path)
    repo = LayoutRepository(str(kit.layout))
    data, _mt, _d = repo.get_manifest(f"run-{kit.run_id}")
    m = json.loads(data)
    m["layers"][0]["annotations"][ANN_FILEPATH] = "../../../../../../../etc"
    repo.put_manifest(dumps(m), OCI_MANIFEST, tag=f"run-{kit.run_id}")
    before = _snapshot(kit.layout)
    with pytest.raises((ModelKitError, MlflowException)) as ei:
        if where == "publish":
            priv, _pub = keys.generate_keypair(str(tmp_path / "pubkeys"), PASSPHRASE)
            publish_run(kit.run_id, tag="v2", key=priv, password=PASSPHRASE)
        else:  # re-logging the model's MLmodel rebuilds that layer without the replaced file
            src = tmp_path / "again" / "MLmodel"
            src.parent.mkdir()
            src.write_bytes(MLMODEL + b"# v2\n")
            with mlflow.start_run(run_id=kit.run_id):
                mlflow.log_artifact(str(src), "model")
    assert "illegal" in str(ei.value) and "\n" not in str(ei.value)
    assert "v2" not in repo.list_tags()
    blobs_added = {p for p in _snapshot(kit.layout) - before if "/blobs/" in f"/{p}"}
    # nothing from /etc was tarred up and stored
    for p in blobs_added:
        assert b"root:" not in (kit.layout / p).read_bytes()
