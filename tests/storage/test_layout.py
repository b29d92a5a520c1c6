"""LayoutRepository: an OCI image layout with atomic index updates, tags and referrers."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from mlflow_plugin._internal.gojson import dumps
from mlflow_plugin.errors import DigestMismatchError, ModelKitError, NotFoundError, ReferenceFormatError
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.layout import LayoutRepository

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_manifest(
    repo: LayoutRepository,
    payload: bytes,
    artifact_type: str | None = None,
    subject: Descriptor | None = None,
    annotations: dict | None = None,
) -> bytes:
    cfg = repo.push_bytes(b"{}", "application/vnd.oci.empty.v1+json")
    layer = repo.push_bytes(payload, "application/octet-stream")
    m: dict = {"schemaVersion": 2, "mediaType": MANIFEST}
    if artifact_type:
        m["artifactType"] = artifact_type
    m["config"] = cfg.to_json()
    m["layers"] = [layer.to_json()]
    if subject is not None:
        m["subject"] = subject.to_json()
    if annotations:
        m["annotations"] = annotations
    return dumps(m)


def index_json(path: Path) -> dict:
    return json.loads((path / "index.json").read_text())


def no_temp_files(path: Path) -> bool:
    return not [p for p in path.rglob("*") if p.name.startswith((".tmp-", ".ingest-"))]


def test_create_layout_files(tmp_path: Path) -> None:
    LayoutRepository(str(tmp_path / "l"), create=True)
    assert json.loads((tmp_path / "l" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert index_json(tmp_path / "l") == {"schemaVersion": 2, "manifests": []}
    assert (tmp_path / "l" / "blobs" / "sha256").is_dir()
    with pytest.raises(NotFoundError, match="not an OCI image layout"):
        LayoutRepository(str(tmp_path / "missing"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "oci-layout").write_text('{"imageLayoutVersion": "9"}')
    with pytest.raises(ModelKitError, match="unsupported or corrupt"):
        LayoutRepository(str(tmp_path / "bad"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelKitError, match="not a directory"):
        LayoutRepository(str(tmp_path / "file"), create=True)


def test_blobs_verified_on_write_and_read(tmp_path: Path) -> None:
    repo = LayoutRepository(str(tmp_path / "l"), create=True)
    data = b"hello blob"
    d = digest_of(data)
    assert repo.push_blob(io.BytesIO(data), d, len(data)) is True
    assert repo.push_blob(io.BytesIO(data), d, len(data)) is False  # dedupe
    assert repo.read_blob(d) == data and repo.read_range(d, 6, 4) == b"blob"
    wrong = digest_of(b"other")
    with pytest.raises(DigestMismatchError, match=wrong):
        repo.push_blob(io.BytesIO(data), wrong, len(data))
    assert not repo.blob_exists(wrong)
    with pytest.raises(DigestMismatchError, match="early"):
        repo.push_blob(io.BytesIO(b"short"), digest_of(b"short!"), 6)
    assert no_temp_files(tmp_path / "l")
    # tampering is caught when reading
    (tmp_path / "l" / "blobs" / "sha256" / d.split(":")[1]).write_bytes(b"hellO blob")
    with pytest.raises(DigestMismatchError, match=d):
        repo.read_blob(d)
    with pytest.raises(NotFoundError):
        repo.read_blob(digest_of(b"never stored"))
    assert repo.push_blob_chunks([b"ab", b"cd"]) == (digest_of(b"abcd"), 4)


def test_tags_put_get_retag_list_delete(tmp_path: Path) -> None:
    repo = LayoutRepository(str(tmp_path / "l"), create=True)
    m1 = make_manifest(repo, b"one")
    m2 = make_manifest(repo, b"two")
    d1 = repo.put_manifest(m1, MANIFEST, tag="v1")
    assert d1 == digest_of(m1)
    assert repo.get_manifest("v1") == (m1, MANIFEST, d1)
    assert repo.get_manifest(d1) == (m1, MANIFEST, d1)
    d2 = repo.put_manifest(m2, MANIFEST, tag="v1")  # move the tag
    assert repo.get_manifest("v1")[2] == d2
    tags = [
        x["annotations"][REF_NAME] for x in index_json(tmp_path / "l")["manifests"] if x.get("annotations")
    ]
    assert tags == ["v1"]
    repo.tag(d1, "old")
    repo.tag(d1, "latest")
    assert repo.list_tags() == ["latest", "old", "v1"]
    entry = next(x for x in index_json(tmp_path / "l")["manifests"] if x["annotations"][REF_NAME] == "old")
    assert entry == {"mediaType": MANIFEST, "digest": d1, "size": len(m1), "annotations": {REF_NAME: "old"}}
    repo.delete_tag("old")
    assert repo.list_tags() == ["latest", "v1"]
    with pytest.raises(NotFoundError):
        repo.delete_tag("old")
    with pytest.raises(NotFoundError, match="not found"):
        repo.get_manifest("nope")
    with pytest.raises(ReferenceFormatError):
        repo.get_manifest("-bad-tag")
    with pytest.raises(ReferenceFormatError):
        repo.put_manifest(m1, MANIFEST, tag="bad tag")
    # an untagged put is recorded once, and not at all when a tag already lists the digest
    n = len(index_json(tmp_path / "l")["manifests"])
    repo.put_manifest(m1, MANIFEST)
    assert len(index_json(tmp_path / "l")["manifests"]) == n
    m3 = make_manifest(repo, b"three")
    d3 = repo.put_manifest(m3, MANIFEST)
    repo.put_manifest(m3, MANIFEST)
    assert [x for x in index_json(tmp_path / "l")["manifests"] if x["digest"] == d3] == [
        {"mediaType": MANIFEST, "digest": d3, "size": len(m3)}
    ]
    assert repo.list_manifests() == index_json(tmp_path / "l")["manifests"]
    assert no_temp_files(tmp_path / "l")


def test_put_manifest_refuses_missing_blobs_and_non_json(tmp_path: Path) -> None:
    repo = LayoutRepository(str(tmp_path / "l"), create=True)
    missing = Descriptor("application/octet-stream", digest_of(b"absent"), 6)
    cfg = repo.push_bytes(b"{}", "application/vnd.oci.empty.v1+json")
    m = dumps(
        {"schemaVersion": 2, "mediaType": MANIFEST, "config": cfg.to_json(), "layers": [missing.to_json()]}
    )
    with pytest.raises(ModelKitError, match=r"blob.*missing"):
        repo.put_manifest(m, MANIFEST, tag="v1")
    with pytest.raises(ModelKitError, match="not JSON"):
        repo.put_manifest(b"\x00garbage", MANIFEST, tag="v1")
    assert repo.list_tags() == []


def test_index_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = LayoutRepository(str(tmp_path / "l"), create=True)
    repo.put_manifest(make_manifest(repo, b"one"), MANIFEST, tag="v1")
    before = (tmp_path / "l" / "index.json").read_bytes()
    m2 = make_manifest(repo, b"two")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        repo.put_manifest(m2, MANIFEST, tag="v2")
    monkeypatch.undo()
    assert (tmp_path / "l" / "index.json").read_bytes() == before  # old index intact
    assert no_temp_files(tmp_path / "l")
    assert repo.list_tags() == ["v1"]


def test_referrers_tag_schema_index(tmp_path: Path) -> None:
    repo = LayoutRepository(str(tmp_path / "l"), create=True)
    base = make_manifest(repo, b"the model")
    bd = repo.put_manifest(base, MANIFEST, tag="v1")
    subject = Descriptor(MANIFEST, bd, len(base))
    sig = make_manifest(repo, b"signature", "application/vnd.example.sig", subject, {"kind": "sig"})
    sbom = make_manifest(repo, b"sbom", "application/vnd.example.sbom", subject)
    ds = repo.put_manifest(sig, MANIFEST)
    db = repo.put_manifest(sbom, MANIFEST)
    repo.put_manifest(sig, MANIFEST)  # again: no duplicate
    refs = repo.referrers(bd)
    assert sorted(r.digest for r in refs) == sorted([ds, db])
    by = {r.digest: r for r in refs}
    assert by[ds].artifact_type == "application/vnd.example.sig" and by[ds].annotations == {"kind": "sig"}
    assert by[db].artifact_type == "application/vnd.example.sbom" and by[db].size == len(sbom)
    assert [r.digest for r in repo.referrers(bd, artifact_type="application/vnd.example.sbom")] == [db]
    assert repo.referrers(bd, artifact_type="application/other") == []
    assert repo.referrers(digest_of(b"no such subject")) == []
    # the fallback tag sha256-<hex> points at an OCI index of the referrers
    tag = "sha256-" + bd.split(":")[1]
    assert tag in repo.list_tags()
    data, mt, _ = repo.get_manifest(tag)
    idx = json.loads(data)
    assert mt == INDEX and idx["mediaType"] == INDEX and idx["schemaVersion"] == 2
    assert [m["digest"] for m in idx["manifests"]] == sorted([ds, db])
    # the subject's own tag is unchanged
    assert repo.get_manifest("v1")[2] == bd


def _concurrent_writer(path: str, i: int, barrier) -> None:  # runs in a child process
    repo = LayoutRepository(path, create=True)
    m = make_manifest(repo, f"payload {i}".encode() * 100)
    barrier.wait()
    repo.put_manifest(m, MANIFEST, tag=f"t{i}")


def test_concurrent_writers_keep_every_tag(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    path = str(tmp_path / "shared")
    procs = [ctx.Process(target=_concurrent_writer, args=(path, i, barrier)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    repo = LayoutRepository(path)
    assert repo.list_tags() == sorted(f"t{i}" for i in range(8))
    for i in range(8):
        data, _, digest = repo.get_manifest(f"t{i}")
        assert digest == digest_of(data)
    assert no_temp_files(tmp_path / "shared")
