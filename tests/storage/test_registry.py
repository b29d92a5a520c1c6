"""RegistryRepository against real distribution 2.8 registries (plain, TLS + htpasswd, token auth)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import os
import random
import threading
import tracemalloc
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from _registries import RegistryServer, free_port

import mlflow_plugin.storage.registry as registry_mod
from mlflow_plugin._internal.gojson import Ordered, dumps
from mlflow_plugin.errors import AuthError, DigestMismatchError, ModelKitError, NotFoundError, RegistryError
from mlflow_plugin.storage.auth import (
    ENV_PASSWORD,
    ENV_USERNAME,
    Credentials,
    load_docker_config_credentials,
    parse_challenges,
    resolve_credentials,
)
from mlflow_plugin.storage.base import referrers_tag
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.mediatypes import (
    ACCEPT_MANIFESTS,
    EMPTY_JSON,
    KIT_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
)
from mlflow_plugin.storage.registry import RegistryRepository
from mlflow_plugin.storage.transport import SourceError, is_loopback, reset_connections

pytestmark = pytest.mark.registry

MiB = 1 << 20
SIG_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SBOM_TYPE = "application/spdx+json"


# ---- helpers -----------------------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rand_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def new_repo(server: RegistryServer, **kw: Any) -> RegistryRepository:
    """A repository with a unique name, so tests never see each other's content."""
    return RegistryRepository(server.host, f"test/{uuid.uuid4().hex[:12]}", **kw)


class RequestLog:
    """Records (method, path, status, request) of every response on a repository's session."""

    def __init__(self, repo: RegistryRepository) -> None:
        self.repo = repo
        self.entries: list[tuple[str, str, int, requests.PreparedRequest]] = []

    def _hook(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = resp.request.path_url.split("?", 1)[0]
        self.entries.append((resp.request.method or "", path, resp.status_code, resp.request))

    def __enter__(self) -> RequestLog:
        self.repo.session.hooks["response"].append(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self.repo.session.hooks["response"].remove(self._hook)

    def calls(self) -> list[tuple[str, str, int]]:
        return [(m, p, s) for m, p, s, _ in self.entries]

    def methods(self) -> list[str]:
        return [m for m, _, _, _ in self.entries]


def image_manifest(
    layers: list[Descriptor],
    *,
    config: Descriptor | None = None,
    artifact_type: str | None = None,
    subject: Descriptor | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    m: dict[str, Any] = Ordered(schemaVersion=2, mediaType=OCI_MANIFEST)
    if artifact_type:
        m["artifactType"] = artifact_type
    m["config"] = (config or Descriptor.for_bytes(OCI_EMPTY, EMPTY_JSON)).to_json()
    m["layers"] = [d.to_json() for d in layers]
    if subject:
        m["subject"] = Ordered(mediaType=subject.media_type, digest=subject.digest, size=subject.size)
    if annotations:
        m["annotations"] = annotations
    return dumps(m)


def push_image(
    repo: RegistryRepository,
    layer_data: list[bytes],
    *,
    tag: str | None = None,
    config: bytes = EMPTY_JSON,
    config_type: str = OCI_EMPTY,
    **kw: Any,
) -> tuple[str, bytes]:
    """Push blobs first, then the manifest (the order every caller must keep)."""
    cfg = repo.push_bytes(config, config_type)
    layers = [repo.push_bytes(b, "application/vnd.kitops.modelkit.model.v1.tar") for b in layer_data]
    data = image_manifest(layers, config=cfg, **kw)
    return repo.put_manifest(data, OCI_MANIFEST, tag=tag), data


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text, text
    return text


# ---- blobs --------------------------------------------------------------------------------------------
def test_blob_round_trip(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    data = rand_bytes(3 * MiB + 17, seed=1)
    digest = sha256(data)
    assert not repo.blob_exists(digest)
    assert repo.push_blob(io.BytesIO(data), digest, len(data)) is True
    assert repo.blob_exists(digest)
    with repo.open_blob(digest, len(data)) as f:
        got = b"".join(iter(lambda: f.read(MiB), b""))
    assert got == data
    assert repo.read_blob(digest) == data
    with repo.open_blob(digest) as f:  # small reads are buffered, still verified at EOF
        got = b"".join(iter(lambda: f.read(1000), b""))
    assert got == data


def test_push_blob_dedupes_with_head_and_sends_no_body(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    data = rand_bytes(2 * MiB, seed=2)
    digest = sha256(data)
    assert repo.push_blob(io.BytesIO(data), digest, len(data)) is True
    src = io.BytesIO(data)
    with RequestLog(repo) as log:
        assert repo.push_blob(src, digest, len(data)) is False
    assert log.methods() == ["HEAD"]
    assert src.tell() == 0  # not a byte was read


def test_push_blob_streams_a_file_with_content_length_and_bounded_memory(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = new_repo(registry)
    path = tmp_path / "weights.bin"
    size = 48 * MiB + 5
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(0, size, 4 * MiB):
            block = rand_bytes(min(4 * MiB, size - i), seed=i)
            h.update(block)
            f.write(block)
    digest = "sha256:" + h.hexdigest()
    seen: list[int] = []
    tracemalloc.start()
    try:
        with RequestLog(repo) as log, open(path, "rb") as f:
            assert repo.push_blob(f, digest, size, progress=seen.append) is True
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(seen) == size
    assert max(seen) == MiB  # sent in 1 MiB blocks
    assert peak < 12 * MiB, f"upload held {peak} bytes in memory"
    put = [req for m, _, _, req in log.entries if m == "PUT"]
    assert len(put) == 1
    assert put[0].headers["Content-Length"] == str(size)
    assert "Transfer-Encoding" not in put[0].headers
    assert not isinstance(put[0].body, bytes | bytearray)  # streamed, never materialised
    assert log.methods() == ["HEAD", "POST", "PUT"]
    with repo.open_blob(digest, size) as blob:
        while blob.read(4 * MiB):
            pass


def test_push_blob_chunks_hashes_a_multi_mib_stream_in_one_patch(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    sizes = [100, 3 * MiB, 17, 2 * MiB + 3, 512 * 1024, 5 * MiB]
    pieces = [rand_bytes(n, seed=n) for n in sizes]
    expected = b"".join(pieces)
    seen: list[int] = []

    def generate() -> Iterator[bytes]:
        yield from pieces

    with RequestLog(repo) as log:
        digest, size = repo.push_blob_chunks(generate(), progress=seen.append)
    assert (digest, size) == (sha256(expected), len(expected))
    assert sum(seen) == len(expected)
    assert [m for m in log.methods()] == ["POST", "PATCH", "PUT"]
    patch = next(req for m, _, _, req in log.entries if m == "PATCH")
    assert patch.headers.get("Transfer-Encoding") == "chunked"
    put = next(req for m, _, _, req in log.entries if m == "PUT")
    assert f"digest={digest.replace(':', '%3A')}" in (put.url or "")
    assert repo.read_blob(digest, size) == expected


def test_push_blob_chunks_of_an_empty_stream(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    digest, size = repo.push_blob_chunks(iter([]))
    assert (digest, size) == (sha256(b""), 0)
    assert repo.blob_exists(digest)


def test_push_blob_with_a_wrong_digest_is_refused(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    data = rand_bytes(MiB, seed=3)
    wrong = sha256(b"something else")
    with pytest.raises(DigestMismatchError) as e:
        repo.push_blob(io.BytesIO(data), wrong, len(data))
    one_line(e.value)
    assert not repo.blob_exists(wrong)


class FailingReader(io.RawIOBase):
    """A source whose disk fails after the first block."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise OSError(5, "Input/output error")
        return b"x" * n


def test_a_failing_source_is_not_reported_as_a_network_error(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    with pytest.raises(SourceError, match="Input/output error") as e:
        repo.push_blob(FailingReader(), sha256(b"whatever"), 3 * MiB)  # type: ignore[arg-type]
    assert "cannot reach" not in one_line(e.value)

    def chunks() -> Iterator[bytes]:
        yield b"a" * MiB
        raise OSError(28, "No space left on device")

    with pytest.raises(SourceError, match="No space left"):
        repo.push_blob_chunks(chunks())
    assert repo.blob_exists(sha256(b"a" * MiB)) is False


def test_push_blob_with_a_short_source_fails_and_leaves_nothing(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    data = rand_bytes(MiB, seed=4)
    with pytest.raises(ModelKitError, match="ended after"):
        repo.push_blob(io.BytesIO(data[:1000]), sha256(data), len(data))
    assert not repo.blob_exists(sha256(data))


def test_mount_blob_between_repositories(registry: RegistryServer) -> None:
    src, dst = new_repo(registry), new_repo(registry)
    data = rand_bytes(MiB, seed=5)
    digest = sha256(data)
    src.push_blob(io.BytesIO(data), digest, len(data))
    with RequestLog(dst) as log:
        assert dst.mount_blob(digest, src.repository) is True
    assert log.calls()[0][0] == "POST" and log.calls()[0][2] == 201
    assert dst.read_blob(digest) == data
    missing = sha256(b"not there")
    with RequestLog(dst) as log:
        assert dst.mount_blob(missing, src.repository) is False
    assert [(m, s) for m, _, s in log.calls()] == [("POST", 202), ("DELETE", 204)]  # upload cancelled
    assert not dst.blob_exists(missing)


def test_read_range(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    data = rand_bytes(2 * MiB + 100, seed=6)
    digest = sha256(data)
    repo.push_blob(io.BytesIO(data), digest, len(data))
    assert repo.read_range(digest, 0, 10) == data[:10]
    assert repo.read_range(digest, MiB + 3, 70000) == data[MiB + 3 : MiB + 3 + 70000]
    assert repo.read_range(digest, len(data) - 5, 100) == data[-5:]  # short at the end, like a file
    assert repo.read_range(digest, len(data) + 10, 5) == b""
    assert repo.read_range(digest, 7, 0) == b""
    with RequestLog(repo) as log:
        repo.read_range(digest, 5, 5)
    assert log.calls()[0][2] == 206
    assert log.entries[0][3].headers["Range"] == "bytes=5-9"
    with pytest.raises(NotFoundError):
        repo.read_range(sha256(b"nope"), 0, 1)


def test_corrupted_blob_in_storage_fails_verification(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    data = rand_bytes(3 * MiB, seed=7)
    digest = sha256(data)
    repo.push_blob(io.BytesIO(data), digest, len(data))
    path = registry.blob_path(digest)
    raw = bytearray(path.read_bytes())
    raw[MiB + 1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DigestMismatchError) as e, repo.open_blob(digest, len(data)) as f:
        while f.read(MiB):
            pass
    assert digest in one_line(e.value)
    with pytest.raises(DigestMismatchError, match=digest):
        repo.read_blob(digest)


def test_truncated_blob_in_storage_never_reads_short(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    data = rand_bytes(MiB, seed=8)
    digest = sha256(data)
    repo.push_blob(io.BytesIO(data), digest, len(data))
    registry.blob_path(digest).write_bytes(data[:-10])
    # distribution still announces the original length and then cuts the body short: the read fails
    with pytest.raises(ModelKitError) as e, repo.open_blob(digest, len(data)) as f:
        while f.read(MiB):
            pass
    assert digest in one_line(e.value)


def test_missing_blob_is_not_found(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    with pytest.raises(NotFoundError, match="not found"), repo.open_blob(sha256(b"x")):
        pass


# ---- manifests, indexes and tags ---------------------------------------------------------------------
def test_manifest_put_and_get_with_oci_accept(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    with RequestLog(repo) as log:
        digest, data = push_image(repo, [b"layer-one"], tag="v1", config=b'{"a":1}', config_type=KIT_CONFIG)
        got, media_type, got_digest = repo.get_manifest("v1")
    assert (got, media_type, got_digest) == (data, OCI_MANIFEST, digest)
    assert repo.get_manifest(digest) == (data, OCI_MANIFEST, digest)
    gets = [req for m, p, _, req in log.entries if m == "GET" and "/manifests/" in p]
    assert gets and all(req.headers["Accept"] == ACCEPT_MANIFESTS for req in gets)
    # the registry really needs that header: a bare GET of the same OCI manifest is a 404
    bare = requests.get(f"{registry.url}/v2/{repo.repository}/manifests/{digest}", timeout=10)
    assert bare.status_code == 404
    assert repo.resolve("v1") == Descriptor(OCI_MANIFEST, digest, len(data))
    with pytest.raises(NotFoundError, match="nope"):
        repo.get_manifest("nope")


def test_manifest_with_a_missing_blob_is_refused_and_no_tag_is_written(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    repo.push_bytes(EMPTY_JSON, OCI_EMPTY)
    missing = Descriptor.for_bytes("application/octet-stream", b"never uploaded")
    with pytest.raises(NotFoundError) as e:
        repo.put_manifest(image_manifest([missing]), OCI_MANIFEST, tag="v1")
    assert "push the missing" in one_line(e.value)
    assert "v1" not in repo.list_tags()


def test_corrupted_manifest_in_storage_fails_verification(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    digest, data = push_image(repo, [b"abc"], tag="v1", annotations={"note": "original"})
    path = registry.blob_path(digest)
    path.write_bytes(data.replace(b'"original"', b'"tampered"'))  # still a valid manifest
    with pytest.raises(DigestMismatchError, match=digest):
        repo.get_manifest(digest)
    with pytest.raises(DigestMismatchError, match=digest):
        repo.get_manifest("v1")


def test_server_errors_are_retried_a_bounded_number_of_times(
    registry: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlflow_plugin")
    repo = new_repo(registry, retries=2)
    digest, data = push_image(repo, [b"abc"], tag="v1")
    registry.blob_path(digest).write_bytes(data.replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with RequestLog(repo) as log, pytest.raises(RegistryError) as e:
        repo.get_manifest(digest)  # distribution answers 500 for a stored manifest it cannot parse
    assert [s for _, _, s in log.calls()] == [500, 500, 500]  # first try + 2 retries, then give up
    msg = one_line(e.value)
    assert f"registry {registry.host} failed (500" in msg and repo.repository in msg
    assert caplog.text.count("retrying in") == 2  # details for -v (INFO) ...
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # ... the user sees one line


def test_index_upload(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    d1, m1 = push_image(repo, [b"one"])
    d2, m2 = push_image(repo, [b"two"])
    index = dumps(
        Ordered(
            schemaVersion=2,
            mediaType=OCI_INDEX,
            manifests=[
                Descriptor(OCI_MANIFEST, d1, len(m1)).to_json(),
                Descriptor(OCI_MANIFEST, d2, len(m2)).to_json(),
            ],
        )
    )
    digest = repo.put_manifest(index, OCI_INDEX, tag="multi")
    assert repo.get_manifest("multi") == (index, OCI_INDEX, digest)
    dangling = dumps(
        Ordered(
            schemaVersion=2,
            mediaType=OCI_INDEX,
            manifests=[Descriptor(OCI_MANIFEST, sha256(b"?"), 1).to_json()],
        )
    )
    with pytest.raises(NotFoundError):
        repo.put_manifest(dangling, OCI_INDEX, tag="dangling")
    assert repo.list_tags() == ["multi"]


def test_connections_are_kept_alive_and_shared_per_host(registry: RegistryServer) -> None:
    reset_connections()
    a, b = new_repo(registry), new_repo(registry)
    assert a.session is b.session
    for _ in range(3):
        a.blob_exists(sha256(b"x"))
        b.list_tags()
    a.push_bytes(b"payload", "text/plain")
    pools = list(a.session.get_adapter(a.base_url).poolmanager.pools._container.values())
    assert len(pools) == 1
    assert pools[0].num_connections == 1 and pools[0].num_requests >= 9


def test_tag_and_list_tags(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    assert repo.list_tags() == []  # never pushed: NAME_UNKNOWN is an empty list
    digest, data = push_image(repo, [b"x"])
    names = [f"t{i}" for i in (5, 0, 6, 3, 1, 4, 2)]
    for name in names:
        repo.tag(digest, name)
    assert repo.list_tags() == sorted(names)
    # distribution 2.8 ignores n= on tags/list (it only paginates _catalog), so all come at once
    assert repo.list_tags(page_size=2) == sorted(names)
    assert repo.get_manifest("t3") == (data, OCI_MANIFEST, digest)


@contextlib.contextmanager
def paginating_front(registry: RegistryServer) -> Iterator[str]:
    """An HTTP front for the real registry that paginates tags/list with ``n``/``last`` and ``Link``
    headers the way distribution 3 and other registries do (2.8 does not); returns its host."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            real = requests.get(f"{registry.url}{url.path}", timeout=10)
            tags = sorted(real.json().get("tags") or [])
            n = int(query.get("n", len(tags) or 1))
            rest = [t for t in tags if t > query.get("last", "")]
            page, more = rest[:n], len(rest) > n
            body = json.dumps(
                {"name": url.path.split("/v2/", 1)[1].rsplit("/tags", 1)[0], "tags": page}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if more:
                nxt = urllib.parse.urlencode({"last": page[-1], "n": n})
                self.send_header("Link", f'<{url.path}?{nxt}>; rel="next"')
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_list_tags_follows_link_pagination(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    digest, _ = push_image(repo, [b"x"])
    names = [f"t{i}" for i in (5, 0, 6, 3, 1, 4, 2)]
    for name in names:
        repo.tag(digest, name)
    with paginating_front(registry) as front:
        paged = RegistryRepository(front, repo.repository)
        with RequestLog(paged) as log:
            assert paged.list_tags(page_size=2) == sorted(names)
    urls = [req.url or "" for _, _, _, req in log.entries]
    assert len(urls) == 4
    assert urls[0].endswith("/tags/list?n=2") and "last=t5" in urls[-1]


def test_delete_tag_never_removes_other_tags(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    shared, _ = push_image(repo, [b"shared"], tag="a")
    repo.tag(shared, "b")
    with pytest.raises(RegistryError) as e:
        repo.delete_tag("a")
    assert "'b'" not in one_line(e.value) and "b" in str(e.value)
    assert repo.list_tags() == ["a", "b"]
    push_image(repo, [b"alone"], tag="c")
    repo.delete_tag("c")
    assert repo.list_tags() == ["a", "b"]
    with pytest.raises(NotFoundError):
        repo.get_manifest("c")
    with pytest.raises(NotFoundError):
        repo.delete_tag("c")


# ---- referrers ---------------------------------------------------------------------------------------
def push_referrer(
    repo: RegistryRepository, subject: Descriptor, artifact_type: str | None, payload: bytes, **kw: Any
) -> str:
    layer = repo.push_bytes(payload, artifact_type or "application/octet-stream")
    cfg = repo.push_bytes(EMPTY_JSON, OCI_EMPTY) if artifact_type else repo.push_bytes(b"{}", SBOM_TYPE)
    data = image_manifest([layer], config=cfg, artifact_type=artifact_type, subject=subject, **kw)
    return repo.put_manifest(data, OCI_MANIFEST)


def test_referrers_fall_back_to_the_tag_schema_index(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    subject_digest, subject_data = push_image(repo, [b"model"], tag="v1")
    subject = Descriptor(OCI_MANIFEST, subject_digest, len(subject_data))
    assert repo.referrers(subject_digest) == []
    with RequestLog(repo) as log:
        sig = push_referrer(repo, subject, SIG_TYPE, b"signature", annotations={"dev.sigstore.x": "1"})
    referrer_probe = [s for m, p, s in log.calls() if m == "GET" and "/referrers/" in p]
    assert referrer_probe == [404]  # distribution 2.8: no referrers API, so the fallback is written
    sbom = push_referrer(repo, subject, None, b"sbom")  # artifactType comes from config.mediaType
    found = repo.referrers(subject_digest)
    assert [d.digest for d in found] == sorted([sig, sbom])
    by_digest = {d.digest: d for d in found}
    assert by_digest[sig].artifact_type == SIG_TYPE
    assert by_digest[sig].annotations == {"dev.sigstore.x": "1"}
    assert by_digest[sbom].artifact_type == SBOM_TYPE
    assert [d.digest for d in repo.referrers(subject_digest, SIG_TYPE)] == [sig]
    assert [d.digest for d in repo.referrers(subject_digest, SBOM_TYPE)] == [sbom]
    assert repo.referrers(subject_digest, "application/other") == []
    # the fallback tag holds an OCI index; pushing a referrer again does not duplicate it
    tag = referrers_tag(subject_digest)
    assert tag in repo.list_tags()
    push_referrer(repo, subject, SIG_TYPE, b"signature", annotations={"dev.sigstore.x": "1"})
    data, media_type, _ = repo.get_manifest(tag)
    index = json.loads(data)
    assert media_type == OCI_INDEX and index["mediaType"] == OCI_INDEX
    assert [m["digest"] for m in index["manifests"]] == sorted([sig, sbom])
    assert index["manifests"][0]["mediaType"] == OCI_MANIFEST


class RacingRepository(RegistryRepository):
    """Lets a 'concurrent writer' overwrite the referrers index right after our PUT (a lost update)."""

    rival: bytes = b""
    puts = 0

    def _put_referrers_index(self, tag: str, data: bytes) -> None:
        super()._put_referrers_index(tag, data)
        self.puts += 1
        if self.puts == 1:
            self._put_manifest_raw(tag, self.rival, OCI_INDEX)  # built from a stale, empty index


def test_referrers_merge_survives_a_concurrent_writer(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    subject_digest, subject_data = push_image(repo, [b"model"], tag="v1")
    subject = Descriptor(OCI_MANIFEST, subject_digest, len(subject_data))
    # the rival referrer manifest exists, and the rival writes an index holding only it
    rival_layer = repo.push_bytes(b"rival", SBOM_TYPE)
    rival_manifest = image_manifest([rival_layer], artifact_type=SBOM_TYPE, subject=subject)
    rival_digest = repo._put_manifest_raw(sha256(rival_manifest), rival_manifest, OCI_MANIFEST)[0]
    racing = RacingRepository(registry.host, repo.repository)
    racing.rival = dumps(
        Ordered(
            schemaVersion=2,
            mediaType=OCI_INDEX,
            manifests=[
                Descriptor(OCI_MANIFEST, rival_digest, len(rival_manifest), artifact_type=SBOM_TYPE).to_json()
            ],
        )
    )
    ours = push_referrer(racing, subject, SIG_TYPE, b"sig")
    assert racing.puts == 2  # our entry was lost once, re-read, merged and written again
    assert sorted(d.digest for d in repo.referrers(subject_digest)) == sorted([ours, rival_digest])


def test_concurrent_referrer_writers_lose_nothing(registry: RegistryServer) -> None:
    repo = new_repo(registry)
    subject_digest, subject_data = push_image(repo, [b"model"], tag="v1")
    subject = Descriptor(OCI_MANIFEST, subject_digest, len(subject_data))
    results: list[str] = []
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            mine = RegistryRepository(registry.host, repo.repository)
            results.append(push_referrer(mine, subject, SIG_TYPE, f"sig-{i}".encode()))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(d.digest for d in repo.referrers(subject_digest)) == sorted(results)


# ---- availability and retries ------------------------------------------------------------------------
def test_unreachable_registry_fails_fast_with_one_clear_line() -> None:
    port = free_port()
    repo = RegistryRepository(f"127.0.0.1:{port}", "team/x")
    with pytest.raises(RegistryError) as e:
        repo.blob_exists(sha256(b"x"))
    msg = one_line(e.value)
    assert f"cannot reach registry 127.0.0.1:{port} (connection refused)" in msg
    assert "is it running? check the host/port" in msg
    assert "team/x" in msg


def test_retry_recovers_when_the_registry_comes_back(
    registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(registry)
    real_sleep = registry_mod.time.sleep
    restarted: list[bool] = []

    def sleep_then_restart(seconds: float) -> None:
        if not restarted:
            restarted.append(True)
            registry.start()
        else:
            real_sleep(seconds)

    registry.stop()
    try:
        monkeypatch.setattr(registry_mod.time, "sleep", sleep_then_restart)
        assert repo.blob_exists(sha256(b"x")) is False  # first attempt refused, the retry succeeds
    finally:
        monkeypatch.undo()
        registry.start()
    assert restarted == [True]


def _write_random_file(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(0, size, 8 * MiB):
            block = os.urandom(min(8 * MiB, size - i))
            h.update(block)
            f.write(block)
    return "sha256:" + h.hexdigest()


def _kill_after(registry: RegistryServer, threshold: int) -> tuple[Any, threading.Thread]:
    """A progress callback that has another thread kill the registry once ``threshold`` bytes went out."""
    go, done = threading.Event(), threading.Event()
    sent = [0]

    def killer() -> None:
        go.wait(60)
        registry.stop()
        done.set()

    def progress(n: int) -> None:
        sent[0] += n
        if sent[0] >= threshold and not go.is_set():
            go.set()
            done.wait(30)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return progress, thread


def test_registry_killed_mid_upload_leaves_nothing_tagged_and_a_retry_succeeds(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = new_repo(registry)
    path = tmp_path / "big.bin"
    size = 64 * MiB
    digest = _write_random_file(path, size)
    progress, killer = _kill_after(registry, 8 * MiB)

    def push_kit() -> None:
        with open(path, "rb") as f:
            repo.push_blob(f, digest, size, progress=progress)
        layer = Descriptor("application/vnd.kitops.modelkit.model.v1.tar", digest, size)
        repo.push_bytes(EMPTY_JSON, OCI_EMPTY)
        repo.put_manifest(image_manifest([layer]), OCI_MANIFEST, tag="v1")

    try:
        with pytest.raises(RegistryError) as e:
            push_kit()
        killer.join(30)
        msg = one_line(e.value)
        assert f"cannot reach registry {registry.host}" in msg and repo.repository in msg
    finally:
        registry.start()
    assert repo.list_tags() == []
    assert not repo.blob_exists(digest)
    progress = None  # the retry: no kill this time
    with open(path, "rb") as f:
        assert repo.push_blob(f, digest, size) is True
    layer = Descriptor("application/vnd.kitops.modelkit.model.v1.tar", digest, size)
    repo.push_bytes(EMPTY_JSON, OCI_EMPTY)
    repo.put_manifest(image_manifest([layer]), OCI_MANIFEST, tag="v1")
    assert repo.list_tags() == ["v1"]
    with repo.open_blob(digest, size) as blob:
        while blob.read(8 * MiB):
            pass


def test_upload_restarts_from_a_seekable_source_after_an_outage(
    registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(registry)
    path = tmp_path / "mid.bin"
    size = 32 * MiB
    digest = _write_random_file(path, size)
    progress_kill, killer = _kill_after(registry, 4 * MiB)
    total = [0]

    def progress(n: int) -> None:
        total[0] += n
        progress_kill(n)

    real_sleep = registry_mod.time.sleep

    def sleep_and_restart(seconds: float) -> None:
        registry.start()  # the outage ends before the upload is restarted
        real_sleep(0)

    monkeypatch.setattr(registry_mod.time, "sleep", sleep_and_restart)
    try:
        with open(path, "rb") as f:
            assert repo.push_blob(f, digest, size, progress=progress) is True
    finally:
        monkeypatch.undo()
        killer.join(30)
        registry.start()
    assert total[0] == size  # progress was rewound when the upload restarted
    assert repo.blob_exists(digest)


# ---- authentication and TLS --------------------------------------------------------------------------
def basic_creds(server: RegistryServer) -> Credentials:
    return Credentials(server.username, server.password, source="test")


def test_basic_auth_over_tls_is_pre_emptive(auth_registry: RegistryServer) -> None:
    reset_connections()
    repo = new_repo(auth_registry, credentials=basic_creds(auth_registry), ca_bundle=auth_registry.ca)
    assert repo.base_url.startswith("https://")
    data = rand_bytes(8 * MiB, seed=9)
    with RequestLog(repo) as log:
        digest, _ = push_image(repo, [data], tag="v1")
    statuses = log.calls()
    assert [s for _, _, s in statuses].count(401) == 1  # only the very first request
    assert statuses[0][2] == 401 and statuses[0][0] == "HEAD"
    for _, _, status, req in log.entries[1:]:
        assert status != 401
        assert req.headers["Authorization"].startswith("Basic ")  # sent before any body
    assert repo.read_blob(sha256(data)) == data
    assert repo.get_manifest("v1")[2] == digest


def test_basic_auth_wrong_password_is_a_one_line_auth_error(
    auth_registry: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = "wrong-" + auth_registry.password
    repo = new_repo(
        auth_registry, credentials=Credentials(auth_registry.username, bad), ca_bundle=auth_registry.ca
    )
    with pytest.raises(AuthError) as e:
        repo.blob_exists(sha256(b"x"))
    msg = one_line(e.value)
    assert (
        f"registry {auth_registry.host} rejected the credentials for user '{auth_registry.username}' (401)"
        in msg
    )
    assert ENV_USERNAME in msg and "docker login" in msg
    assert bad not in msg and auth_registry.password not in msg
    assert bad not in caplog.text and base64.b64encode(
        f"{auth_registry.username}:{bad}".encode()
    ).decode() not in (caplog.text)
    assert bad not in repr(repo) and bad not in repr(repo.auth)


def test_basic_auth_without_credentials_says_how_to_log_in(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_USERNAME, raising=False)
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    repo = new_repo(auth_registry, ca_bundle=auth_registry.ca)
    with pytest.raises(AuthError, match="requires credentials") as e:
        repo.list_tags()
    assert ENV_USERNAME in one_line(e.value)


def test_tls_without_the_ca_is_a_clear_error(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    repo = RegistryRepository(
        auth_registry.host, "team/x", credentials=basic_creds(auth_registry), insecure=False
    )
    with pytest.raises(RegistryError) as e:
        repo.blob_exists(sha256(b"x"))
    msg = one_line(e.value)
    assert "TLS verification of registry" in msg and "certificate verify failed" in msg
    assert "ca_bundle" in msg and "REQUESTS_CA_BUNDLE" in msg


def test_tls_ca_from_requests_ca_bundle(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", auth_registry.ca or "")
    repo = new_repo(auth_registry, credentials=basic_creds(auth_registry), insecure=False)
    assert repo.blob_exists(sha256(b"x")) is False


def test_plain_http_to_a_tls_registry_says_so(auth_registry: RegistryServer) -> None:
    repo = new_repo(auth_registry, credentials=basic_creds(auth_registry), insecure=True)  # forced HTTP
    with pytest.raises(RegistryError, match="speaks HTTPS") as e:
        repo.blob_exists(sha256(b"x"))
    one_line(e.value)


def test_loopback_tls_registry_is_detected(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    repo = new_repo(auth_registry, credentials=basic_creds(auth_registry))  # loopback, scheme probed
    assert repo.base_url.startswith("https://")
    with pytest.raises(RegistryError, match="REQUESTS_CA_BUNDLE") as e:  # TLS now, but no CA given
        repo.blob_exists(sha256(b"x"))
    one_line(e.value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", auth_registry.ca or "")
    assert new_repo(auth_registry, credentials=basic_creds(auth_registry)).blob_exists(sha256(b"x")) is False


def test_credentials_from_the_docker_config(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_USERNAME, raising=False)
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    auth = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {f"https://{auth_registry.host}": {"auth": auth}}, "credsStore": "desktop"})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    creds = resolve_credentials(auth_registry.host)
    assert creds is not None and creds.username == auth_registry.username
    assert auth_registry.password not in repr(creds)
    repo = new_repo(auth_registry, ca_bundle=auth_registry.ca)
    assert repo.list_tags() == []
    # environment variables win over the docker config
    monkeypatch.setenv(ENV_USERNAME, "env-user")
    monkeypatch.setenv(ENV_PASSWORD, "env-pass")
    assert resolve_credentials(auth_registry.host) == Credentials(
        "env-user", "env-pass", source="environment"
    )


def test_docker_config_variants(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "auths": {
                    "r1.example": {"username": "u1", "password": "p1"},
                    "https://r2.example/v1/": {"identitytoken": "idtok-secret-9f3"},
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
                    "r3.example": {"auth": "!!!not base64"},
                },
                "credHelpers": {"r4.example": "ecr-login"},
            }
        )
    )
    c1 = load_docker_config_credentials("r1.example", cfg)
    assert c1 is not None and (c1.username, c1.password) == ("u1", "p1")
    c2 = load_docker_config_credentials("r2.example", cfg)
    assert c2 is not None and c2.identity_token == "idtok-secret-9f3" and "idtok" not in repr(c2)
    c3 = load_docker_config_credentials("docker.io", cfg)
    assert c3 is not None and (c3.username, c3.password) == ("hub", "pw")
    assert load_docker_config_credentials("r3.example", cfg) is None
    # helpers are run (tests/storage/test_credentials.py); a missing one is named with the fix
    with pytest.raises(AuthError, match=r"docker-credential-ecr-login .* is not on PATH: install it"):
        load_docker_config_credentials("r4.example", cfg)


def test_token_auth_escalates_from_pull_to_push(token_registry: RegistryServer) -> None:
    reset_connections()
    tokens = token_registry.token_server
    assert tokens is not None
    repo = new_repo(token_registry, credentials=basic_creds(token_registry))
    before = len(tokens.issued)
    digest, _ = push_image(repo, [b"weights"], tag="v1")
    scope = f"repository:{repo.repository}"
    issued = [(user, scopes) for user, scopes, _ in tokens.issued[before:]]
    assert issued == [("pusher", [f"{scope}:pull"]), ("pusher", [f"{scope}:pull,push"])]
    assert repo.auth.token_requests[-2:] == [[f"{scope}:pull"], [f"{scope}:pull,push"]]
    assert repo.get_manifest("v1")[2] == digest
    # delete needs one more action: the token is escalated again, keeping pull and push
    repo.delete_tag("v1")
    assert tokens.issued[-1][1] == [f"{scope}:pull,push,delete"]
    assert repo.list_tags() == []


def test_token_auth_mount_asks_for_both_repositories(token_registry: RegistryServer) -> None:
    creds = basic_creds(token_registry)
    src, dst = new_repo(token_registry, credentials=creds), new_repo(token_registry, credentials=creds)
    layer = src.push_bytes(b"shared layer", "text/plain")
    assert dst.mount_blob(layer.digest, src.repository) is True
    assert dst.read_blob(layer.digest) == b"shared layer"
    tokens = token_registry.token_server
    assert tokens is not None
    # the mount's token names both repositories: pull on the source, pull+push on the target
    both = [
        scopes
        for _, scopes, _ in tokens.issued
        if f"repository:{dst.repository}:pull,push" in scopes
        and any(s.startswith(f"repository:{src.repository}:pull") for s in scopes)
    ]
    assert len(both) == 1


def test_token_server_answering_access_token_is_accepted(token_registry: RegistryServer) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    tokens.token_field = "access_token"
    try:
        repo = new_repo(token_registry, credentials=basic_creds(token_registry))
        assert repo.push_bytes(b"hello", "text/plain").size == 5
    finally:
        tokens.token_field = "token"


def test_token_read_only_user_cannot_push(
    token_registry: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    writer = new_repo(token_registry, credentials=basic_creds(token_registry))
    digest, _ = push_image(writer, [b"shared"], tag="v1")
    ro_creds = Credentials(token_registry.ro_username, token_registry.ro_password)
    reader = RegistryRepository(token_registry.host, writer.repository, credentials=ro_creds)
    assert reader.get_manifest("v1")[2] == digest  # pulling is allowed
    with pytest.raises(AuthError) as e:
        reader.push_bytes(b"not allowed", "text/plain")
    msg = one_line(e.value)
    assert f"denied repository:{writer.repository}:pull,push to user '{token_registry.ro_username}'" in msg
    assert "insufficient_scope" in msg
    assert token_registry.ro_password not in msg and token_registry.ro_password not in caplog.text


def test_token_auth_wrong_password(token_registry: RegistryServer) -> None:
    bad = "bad-" + token_registry.password
    repo = new_repo(token_registry, credentials=Credentials(token_registry.username, bad))
    with pytest.raises(AuthError) as e:
        repo.list_tags()
    msg = one_line(e.value)
    assert f"rejected the credentials for user '{token_registry.username}'" in msg
    assert bad not in msg


def test_secrets_never_reach_logs_or_reprs(
    token_registry: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reset_connections()
    creds = basic_creds(token_registry)
    repo = new_repo(token_registry, credentials=creds)
    push_image(repo, [b"x"], tag="v1")
    tokens = token_registry.token_server
    assert tokens is not None
    tok = tokens.issue("pusher", [])
    header_prefix = tok.split(".", 1)[0]  # every token of this server starts with the same JWS header
    for text in (caplog.text, repr(repo), repr(repo.auth), repr(creds), str(creds)):
        assert token_registry.password not in text
        assert header_prefix not in text


# ---- small pure functions ------------------------------------------------------------------------------
def test_loopback_hosts_default_to_plain_http() -> None:
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.2") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.com") and not is_loopback("10.1.2.3:5000")
    assert RegistryRepository("localhost:5000", "a/b").base_url == "http://localhost:5000"
    assert RegistryRepository("registry.example.com", "a/b").base_url == "https://registry.example.com"
    assert RegistryRepository("127.0.0.1:5000", "a/b", insecure=False).base_url == "https://127.0.0.1:5000"
    assert RegistryRepository("10.0.0.1:5000", "a/b", insecure=True).base_url == "http://10.0.0.1:5000"


def test_challenge_parsing() -> None:
    (ch,) = parse_challenges(
        'Bearer realm="http://t/token",service="reg",scope="repository:a/b:pull,push",error="insufficient_scope"'
    )
    assert ch.scheme == "bearer"
    assert ch.params == {
        "realm": "http://t/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
        "error": "insufficient_scope",
    }
    assert parse_challenges('Basic realm="basic-realm"')[0].params == {"realm": "basic-realm"}
