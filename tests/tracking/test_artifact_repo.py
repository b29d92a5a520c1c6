"""The ``modelkit://`` ArtifactRepository contract, modelled on MLflow's own S3 suite.

Every store test runs twice: against a local OCI image layout (``modelkit:///tmp/…``) and
against the session's real registry (Debian's docker-registry, distribution 2.8). Repositories
are built through MLflow's own ``get_artifact_repository`` so the entry point is exercised too.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from _registries import RegistryServer
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from mlflow_plugin import packaging as ops
from mlflow_plugin.drafts.uri import parse_artifact_uri
from mlflow_plugin.kit.fileindex import ANN_FILES
from mlflow_plugin.kit.mediatypes import ANN_FILEPATH, KIT_CONFIG, parse_layer_media_type
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.tracking.artifact_repo import ModelKitArtifactRepository

RUN = "0123456789abcdef0123456789abcdef"
MODEL = "m-" + "ab" * 16
TRACE = "tr-" + "cd" * 16


# ---- helpers ----------------------------------------------------------------------------------------
@dataclass
class Store:
    """One experiment location in a layout or a registry, and ways to look behind the plugin."""

    kind: str
    base: str  # the experiment's artifact location (what MLflow puts before <run_id>/artifacts)
    registry: RegistryServer | None = None
    repository: str = ""  # registry repository
    layout: Path | None = None

    def repo(self, key: str) -> ModelKitArtifactRepository:
        """A fresh repository for ``<base>/<key>/artifacts``, as MLflow builds one per call."""
        r = get_artifact_repository(f"{self.base}/{key}/artifacts")
        assert isinstance(r, ModelKitArtifactRepository)
        return r

    def ref(self, tag: str) -> str:
        """The kit as :mod:`mlflow_plugin.packaging` names it."""
        if self.layout is not None:
            return f"oci:{self.layout}:{tag}"
        assert self.registry is not None
        return f"{self.registry.host}/{self.repository}:{tag}"

    def published(self, ref: str) -> str:
        """``modelkit://…/REPO:TAG`` or ``…@sha256:…`` (``ref`` includes ``:`` or ``@``)."""
        return f"{self.base}{ref}"

    def manifest(self, tag: str) -> dict[str, Any]:
        return ops.inspect(self.ref(tag)).manifest

    def tags(self) -> list[str]:
        repo, _ = open_location(self.ref("x").rsplit(":", 1)[0])
        return repo.list_tags()

    def blob_file(self, digest: str) -> Path:
        """Where the store keeps a blob's bytes on disk (to tamper with it)."""
        if self.layout is not None:
            return self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]
        assert self.registry is not None
        return self.registry.blob_path(digest)

    def skopeo_raw(self, tag: str) -> bytes:
        if self.layout is not None:
            cmd = ["skopeo", "inspect", "--raw", f"oci:{self.layout}:{tag}"]
        else:
            assert self.registry is not None
            cmd = [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"docker://{self.registry.host}/{self.repository}:{tag}",
            ]
        return subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout


@pytest.fixture(autouse=True)
def _own_stat_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the plugin's stat cache out of the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(params=["layout", "registry"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "layout":
        layout = tmp_path / "kits" / "exp"
        return Store("layout", f"modelkit://{layout}", layout=layout)
    reg: RegistryServer = request.getfixturevalue("registry")
    repository = f"contract/{uuid.uuid4().hex[:12]}"
    return Store("registry", f"modelkit://{reg.host}/{repository}", registry=reg, repository=repository)


@pytest.fixture
def registry_store(registry: RegistryServer) -> Store:
    repository = f"contract/{uuid.uuid4().hex[:12]}"
    return Store(
        "registry", f"modelkit://{registry.host}/{repository}", registry=registry, repository=repository
    )


def new_run() -> str:
    return uuid.uuid4().hex


def tuples(infos: list[Any]) -> list[tuple[str, bool, int | None]]:
    return [(f.path, f.is_dir, f.file_size) for f in infos]


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def abc_tree(root: Path) -> Path:
    return write(root, {"a.txt": "A", "b.txt": "B", "nested/c.txt": "C"})


class RequestLog:
    """Every HTTP request the registry client sends: ``(method, path)``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        orig = requests.Session.send

        def send(session: requests.Session, req: requests.PreparedRequest, **kw: Any) -> requests.Response:
            self.calls.append((req.method or "", req.path_url))
            return orig(session, req, **kw)

        monkeypatch.setattr(requests.Session, "send", send)

    def uploads(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if "/blobs/uploads" in c[1]]


# ---- logging, listing, downloading --------------------------------------------------------------
def test_entry_point_builds_our_repository(store: Store) -> None:
    repo = store.repo(RUN)
    assert type(repo) is ModelKitArtifactRepository
    assert repo.list_artifacts() == []  # an empty draft, not an error


def test_plugin_registers_when_imported_before_mlflow(tmp_path: Path) -> None:
    """Importing the plugin first (a notebook, the CLI) must not leave ``modelkit`` unregistered."""
    code = (
        "import mlflow_plugin.tracking.artifact_repo\n"
        "from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository\n"
        f"print(type(get_artifact_repository('modelkit://{tmp_path}/kits/x')).__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "ModelKitArtifactRepository"
    assert "Failure attempting to register" not in r.stderr


def test_log_artifact_and_download(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "src", {"hello.txt": "hello\n"}) / "hello.txt"
    run = new_run()
    store.repo(run).log_artifact(str(src))
    repo = store.repo(run)
    assert tuples(repo.list_artifacts()) == [("hello.txt", False, 6)]
    dst = tmp_path / "dst"
    dst.mkdir()
    out = repo.download_artifacts("hello.txt", str(dst))
    assert Path(out) == dst / "hello.txt"
    assert Path(out).read_bytes() == b"hello\n"

    repo.log_artifact(str(src), "more/deeper")
    assert tuples(repo.list_artifacts("more")) == [("more/deeper", True, None)]
    assert tuples(repo.list_artifacts("more/deeper")) == [("more/deeper/hello.txt", False, 6)]


def test_log_artifacts_listing(store: Store, tmp_path: Path) -> None:
    run = new_run()
    store.repo(run).log_artifacts(str(abc_tree(tmp_path / "src")))
    repo = store.repo(run)
    assert tuples(repo.list_artifacts()) == [("a.txt", False, 1), ("b.txt", False, 1), ("nested", True, None)]
    assert tuples(repo.list_artifacts(None)) == tuples(repo.list_artifacts(""))
    assert repo.list_artifacts("a.txt") == []
    assert repo.list_artifacts("nested/c.txt") == []
    assert repo.list_artifacts("no/such/dir") == []
    assert tuples(repo.list_artifacts("nested")) == [("nested/c.txt", False, 1)]


def test_log_artifacts_under_artifact_path(store: Store, tmp_path: Path) -> None:
    run = new_run()
    store.repo(run).log_artifacts(str(abc_tree(tmp_path / "src")), "x/y")
    repo = store.repo(run)
    assert tuples(repo.list_artifacts()) == [("x", True, None)]
    assert tuples(repo.list_artifacts("x/y")) == [
        ("x/y/a.txt", False, 1),
        ("x/y/b.txt", False, 1),
        ("x/y/nested", True, None),
    ]


def test_nested_download(store: Store, tmp_path: Path) -> None:
    run = new_run()
    src = abc_tree(tmp_path / "src")
    store.repo(run).log_artifacts(str(src), "dir")
    repo = store.repo(run)
    dst = tmp_path / "dst"
    dst.mkdir()
    out = repo.download_artifacts("dir/nested", str(dst))
    assert Path(out) == dst / "dir" / "nested"
    assert tree_of(dst) == {"dir/nested/c.txt": b"C"}

    everything = Path(repo.download_artifacts(""))
    assert tree_of(everything) == {f"dir/{k}": v for k, v in tree_of(src).items()}

    # MLflow's generic implementation (list per directory + _download_file) gives the same tree
    generic = tmp_path / "generic"
    generic.mkdir()
    ArtifactRepository.download_artifacts(store.repo(run), "dir", str(generic))
    assert tree_of(generic) == tree_of(everything)


def test_download_missing_file_raises(store: Store, tmp_path: Path) -> None:
    run = new_run()
    store.repo(run).log_artifacts(str(abc_tree(tmp_path / "src")))
    repo = store.repo(run)
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(MlflowException, match=r"missing\.txt") as e:
        repo._download_file("missing.txt", str(dst / "missing.txt"))
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        repo._download_file("nested", str(dst / "nested"))  # a directory is not a file
    with pytest.raises(MlflowException):
        repo.download_artifacts("no/such/file.txt", str(dst))
    assert list(dst.iterdir()) == []  # nothing half-written
    # runs:/<id>/model probes the run first: empty listing, then _download_file must raise
    empty = store.repo(new_run())
    assert empty.list_artifacts("model") == []
    with pytest.raises(MlflowException):
        empty._download_file("model", str(dst / "model"))


def test_delete_artifacts(store: Store, tmp_path: Path) -> None:
    run = new_run()
    src = abc_tree(tmp_path / "src")
    store.repo(run).log_artifacts(str(src))
    store.repo(run).log_artifact(str(src / "a.txt"), "other")
    repo = store.repo(run)
    repo.delete_artifacts("nested")
    assert tuples(store.repo(run).list_artifacts()) == [
        ("a.txt", False, 1),
        ("b.txt", False, 1),
        ("other", True, None),
    ]
    store.repo(run).delete_artifacts("a.txt")
    assert tuples(store.repo(run).list_artifacts()) == [("b.txt", False, 1), ("other", True, None)]
    store.repo(run).delete_artifacts()
    assert store.repo(run).list_artifacts() == []
    assert f"run-{run}" not in store.tags()
    store.repo(run).delete_artifacts()  # deleting an empty draft is fine
    store.repo(run).log_artifact(str(src / "b.txt"))  # and the run can log again
    assert tuples(store.repo(run).list_artifacts()) == [("b.txt", False, 1)]


def test_relogging_a_file_replaces_it(store: Store, tmp_path: Path) -> None:
    run = new_run()
    f = tmp_path / "src" / "a.txt"
    write(tmp_path / "src", {"a.txt": "old"})
    store.repo(run).log_artifact(str(f))
    f.write_text("new content")
    store.repo(run).log_artifact(str(f))
    repo = store.repo(run)
    assert tuples(repo.list_artifacts()) == [("a.txt", False, 11)]
    assert Path(repo.download_artifacts("a.txt", str(tmp_path))).read_bytes() == b"new content"
    paths = [d["annotations"][ANN_FILEPATH] for d in store.manifest(f"run-{run}")["layers"]]
    assert paths == ["a.txt"]


def test_partially_shadowed_directory_keeps_other_files(store: Store, tmp_path: Path) -> None:
    run = new_run()
    first = write(tmp_path / "first", {"x.txt": "x1", "y.txt": "y1", "sub/z.txt": "z1", "sub/q.txt": "q1"})
    store.repo(run).log_artifacts(str(first), "d")  # one layer at d
    newx = write(tmp_path / "newx", {"x.txt": "x2-longer"}) / "x.txt"
    store.repo(run).log_artifact(str(newx), "d")  # replaces one file of that layer
    repo = store.repo(run)
    assert tuples(repo.list_artifacts("d")) == [
        ("d/sub", True, None),
        ("d/x.txt", False, 9),
        ("d/y.txt", False, 2),
    ]

    newz = write(tmp_path / "newz", {"z.txt": "z2"}) / "z.txt"
    store.repo(run).log_artifact(str(newz), "d/sub")
    second = write(tmp_path / "second", {"y.txt": "y2", "w.txt": "w"})
    store.repo(run).log_artifacts(str(second), "d")  # same layer path again: folded

    want = {
        "d/sub/q.txt": b"q1",
        "d/sub/z.txt": b"z2",
        "d/w.txt": b"w",
        "d/x.txt": b"x2-longer",
        "d/y.txt": b"y2",
    }
    got = tree_of(Path(store.repo(run).download_artifacts("")))
    assert got == want
    # every file is in exactly one layer, no two layers share a path (kit forbids it)
    m = store.manifest(f"run-{run}")
    layer_paths = [d["annotations"][ANN_FILEPATH] for d in m["layers"]]
    assert len(layer_paths) == len(set(layer_paths))
    indexed = [r[0] for d in m["layers"] for r in json.loads(d["annotations"][ANN_FILES])]
    assert sorted(indexed) == sorted(want)
    # and the kit unpacks to exactly these files
    out = tmp_path / "unpacked"
    ops.unpack(store.ref(f"run-{run}"), str(out))
    assert {k: v for k, v in tree_of(out).items() if k != "Kitfile"} == want


def test_empty_directories_are_kept(store: Store, tmp_path: Path) -> None:
    """Like MLflow's local store: an empty directory logged at a path lists and downloads."""
    run = new_run()
    (tmp_path / "empty").mkdir()
    src = write(tmp_path / "src", {"f.txt": "f"})
    (src / "hole" / "deeper").mkdir(parents=True)
    store.repo(run).log_artifacts(str(tmp_path / "empty"), "e")
    store.repo(run).log_artifacts(str(tmp_path / "empty"))  # at the root: adds nothing
    store.repo(run).log_artifacts(str(src), "tree")
    repo = store.repo(run)
    assert tuples(repo.list_artifacts()) == [("e", True, None), ("tree", True, None)]
    assert repo.list_artifacts("e") == []
    assert tuples(repo.list_artifacts("tree")) == [("tree/f.txt", False, 1), ("tree/hole", True, None)]
    assert tuples(repo.list_artifacts("tree/hole")) == [("tree/hole/deeper", True, None)]
    with pytest.raises(MlflowException):
        repo._download_file("e", str(tmp_path / "e-as-file"))
    for download in (repo.download_artifacts, lambda p, d: ArtifactRepository.download_artifacts(repo, p, d)):
        dst = tmp_path / f"dst-{uuid.uuid4().hex[:6]}"
        dst.mkdir()
        download("", str(dst))
        assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == [
            "e",
            "tree",
            "tree/f.txt",
            "tree/hole",
            "tree/hole/deeper",
        ]
    # a file logged into the empty directory, then deleting it
    store.repo(run).log_artifact(str(src / "f.txt"), "e")
    assert tuples(store.repo(run).list_artifacts("e")) == [("e/f.txt", False, 1)]
    store.repo(run).delete_artifacts("tree/hole")
    assert tuples(store.repo(run).list_artifacts("tree")) == [("tree/f.txt", False, 1)]
    out = tmp_path / "unpacked"
    ops.unpack(store.ref(f"run-{run}"), str(out))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "Kitfile",
        "e",
        "e/f.txt",
        "tree",
        "tree/f.txt",
    ]


def test_concurrent_downloads_from_eight_threads(store: Store, tmp_path: Path) -> None:
    files = {f"f{i}.bin": os.urandom(150_000 + 1000 * i) for i in range(8)}
    run = new_run()
    store.repo(run).log_artifacts(str(write(tmp_path / "src", files)))
    shared = store.repo(run)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for j in range(8):
                name = f"f{(i + j) % 8}.bin"
                repo = shared if j % 2 else store.repo(run)  # shared instance and fresh ones
                dest = tmp_path / f"t{i}" / name
                dest.parent.mkdir(exist_ok=True)
                repo._download_file(name, str(dest))
                assert dest.read_bytes() == files[name], name
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_concurrent_writers_in_threads_lose_nothing(store: Store, tmp_path: Path) -> None:
    """MLflow's async logging and user thread pools write one run from several threads."""
    run = new_run()
    expected: dict[str, bytes] = {}
    src = tmp_path / "src"
    for w in range(8):
        for i in range(10):
            rel = f"t{i % 3}/w{w}-{i}.txt"
            expected[rel] = f"writer {w} file {i}".encode()
            write(src / f"w{w}", {rel: expected[rel]})
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                store.repo(run).log_artifact(str(src / f"w{w}" / f"t{i % 3}" / f"w{w}-{i}.txt"), f"t{i % 3}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert tree_of(Path(store.repo(run).download_artifacts(""))) == expected


def test_trace_data_round_trip(store: Store) -> None:
    repo = store.repo(f"traces/{TRACE}")
    data = {"spans": [{"name": "root", "attributes": {"x": 1, "unicode": "ü"}}]}
    repo.upload_trace_data(json.dumps(data))
    assert store.repo(f"traces/{TRACE}").download_trace_data() == data
    assert TRACE in store.tags()


def test_runs_models_and_traces_are_separate_kits(store: Store, tmp_path: Path) -> None:
    src = write(tmp_path / "src", {"f.txt": "f"}) / "f.txt"
    run = new_run()
    for key in (run, f"models/{MODEL}", f"traces/{TRACE}"):
        store.repo(key).log_artifact(str(src), key.split("/")[0])
    tags = store.tags()
    assert {f"run-{run}", MODEL, TRACE} <= set(tags)
    assert tuples(store.repo(f"models/{MODEL}").list_artifacts()) == [("models", True, None)]
    assert tuples(store.repo(run).list_artifacts()) == [(run, True, None)]


def test_layout_uri_as_mlflow_rewrites_it(tmp_path: Path) -> None:
    """MLflow turns ``modelkit:///abs`` into ``modelkit:/abs``: both name the same layout."""
    layout = tmp_path / "kits" / "exp"
    run = new_run()
    src = write(tmp_path / "src", {"f.txt": "f"}) / "f.txt"
    get_artifact_repository(f"modelkit:{layout}/{run}/artifacts").log_artifact(str(src))
    assert tuples(get_artifact_repository(f"modelkit://{layout}/{run}/artifacts").list_artifacts()) == [
        ("f.txt", False, 1)
    ]
    assert (layout / "oci-layout").is_file()


def test_proxy_root_paths_carry_the_key(store: Store, tmp_path: Path) -> None:
    """``mlflow server --artifacts-destination <root>`` passes ``<exp_id>/<run_id>/artifacts/…``."""
    root = get_artifact_repository(store.base)
    run = new_run()
    src = write(tmp_path / "src", {"f.txt": "f"}) / "f.txt"
    root.log_artifact(str(src), f"7/{run}/artifacts/plots")
    # an artifact path that itself looks like an MLflow tree (people log mlruns/ dirs) stays in this run
    other = uuid.uuid4().hex
    root.log_artifact(str(src), f"7/{run}/artifacts/backup/{other}/artifacts")
    assert tuples(root.list_artifacts(f"7/{run}/artifacts")) == [
        (f"7/{run}/artifacts/backup", True, None),
        (f"7/{run}/artifacts/plots", True, None),
    ]
    assert tuples(root.list_artifacts(f"7/{run}/artifacts/plots/f.txt")) == []
    assert root.list_artifacts("") == []
    dst = tmp_path / "dst"
    dst.mkdir()
    root._download_file(f"7/{run}/artifacts/backup/{other}/artifacts/f.txt", str(dst / "f.txt"))
    assert (dst / "f.txt").read_bytes() == b"f"
    # the kit lives in <root>/7, tagged run-<id>
    if store.layout is not None:
        sub = f"oci:{store.layout}/7"
    else:
        assert store.registry is not None
        sub = f"{store.registry.host}/{store.repository}/7"
    assert f"run-{run}" in open_location(sub)[0].list_tags()
    ws = f"workspaces/team-a/7/{run}/artifacts"
    root.log_artifact(str(src), ws)
    assert tuples(root.list_artifacts(ws)) == [(f"{ws}/f.txt", False, 1)]
    # the workspace's run is another kit: the plain run did not get f.txt at its root
    assert f"7/{run}/artifacts/f.txt" not in [f.path for f in root.list_artifacts(f"7/{run}/artifacts")]
    with pytest.raises(MlflowException, match="no run, model or trace key"):
        root.log_artifact(str(src), "7/not-a-run")


# ---- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        "modelkit://",
        "modelkit://host-only",
        "modelkit:///",
        "modelkit://127.0.0.1:5000/Bad Repo/x",
        f"modelkit://127.0.0.1:5000/team/x/{RUN}/artifacts/../../etc",
        "modelkit://127.0.0.1:5000/team/x:v1/../escape",
        "modelkit://127.0.0.1:5000/team/x@sha256:abc",
    ],
)
def test_bad_uris_are_clear_errors(uri: str) -> None:
    with pytest.raises(MlflowException) as e:
        repo = ModelKitArtifactRepository(uri)
        repo.list_artifacts()
    msg = e.value.message
    assert "\n" not in msg
    assert "modelkit" in msg
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_credentials_in_uri_are_refused_without_echoing_them() -> None:
    with pytest.raises(MlflowException) as e:
        ModelKitArtifactRepository(f"modelkit://bob:s3cret-pw@127.0.0.1:5000/team/x/{RUN}/artifacts")
    assert "s3cret-pw" not in str(e.value)
    assert "credentials" in str(e.value)


@pytest.mark.parametrize("path", ["../x", "a/../../x", "a/./b", "a//b", "a\\..\\b", "a\0b"])
def test_dotdot_paths_are_refused(store: Store, tmp_path: Path, path: str) -> None:
    src = write(tmp_path / "src", {"f.txt": "f"}) / "f.txt"
    repo = store.repo(new_run())
    for call in (
        lambda: repo.log_artifact(str(src), path),
        lambda: repo.log_artifacts(str(src.parent), path),
        lambda: repo.list_artifacts(path),
        lambda: repo._download_file(path, str(tmp_path / "out")),
        lambda: repo.delete_artifacts(path),
    ):
        with pytest.raises(MlflowException) as e:
            call()
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "\n" not in e.value.message
    assert not (tmp_path / "out").exists()


def test_uri_parser_shapes() -> None:
    u = parse_artifact_uri(f"modelkit://127.0.0.1:5000/team/fraud/{RUN}/artifacts/plots/a")
    assert (u.registry, u.repository, u.tag, u.path) == (
        "127.0.0.1:5000",
        "team/fraud",
        f"run-{RUN}",
        "plots/a",
    )
    u = parse_artifact_uri(f"modelkit://r.example/team/fraud/models/{MODEL}/artifacts")
    assert (u.repository, u.tag, u.path) == ("team/fraud", MODEL, "")
    u = parse_artifact_uri(f"modelkit://r.example/team/fraud/traces/{TRACE}/artifacts")
    assert (u.repository, u.tag) == ("team/fraud", TRACE)
    u = parse_artifact_uri(f"modelkit:///srv/kits/fraud/{RUN}/artifacts/m")
    assert (u.layout, u.tag, u.path, u.registry) == ("/srv/kits/fraud", f"run-{RUN}", "m", None)
    assert parse_artifact_uri(f"modelkit:/srv/kits/fraud/{RUN}/artifacts/m") == u
    u = parse_artifact_uri("modelkit://r.example/team/fraud:v1/model")
    assert (u.repository, u.tag, u.path, u.read_only) == ("team/fraud", "v1", "model", True)
    digest = "sha256:" + "0" * 64
    u = parse_artifact_uri(f"modelkit://r.example/team/fraud@{digest}")
    assert (u.repository, u.digest, u.read_only) == ("team/fraud", digest, True)
    root = parse_artifact_uri("modelkit://r.example/ml")
    assert root.is_root
    c = root.child(f"3/{RUN}/artifacts/a/b.txt")
    assert (c.repository, c.tag, c.path) == ("ml/3", f"run-{RUN}", "a/b.txt")
    c = root.child(f"3/models/{MODEL}/artifacts/MLmodel")
    assert (c.repository, c.tag, c.path) == ("ml/3", MODEL, "MLmodel")
    w = root.child(f"workspaces/team-a/3/{RUN}/artifacts")
    assert w.tag == f"run-{RUN}" and w.repository != "ml/3"
    # the first key wins: a logged tree that looks like mlruns/ stays inside the run
    c = root.child(f"3/{RUN}/artifacts/mlruns/0/{'e' * 32}/artifacts/x")
    assert (c.repository, c.tag, c.path) == ("ml/3", f"run-{RUN}", f"mlruns/0/{'e' * 32}/artifacts/x")


# ---- published kits -------------------------------------------------------------------------------
def test_published_kits_are_readable_but_read_only(store: Store, tmp_path: Path) -> None:
    run = new_run()
    src = abc_tree(tmp_path / "src")
    store.repo(run).log_artifacts(str(src))
    raw, _ = open_location(store.ref(f"run-{run}"))
    digest = ops.inspect(store.ref(f"run-{run}")).digest
    raw.tag(digest, "v1")
    for ref in (":v1", f"@{digest}"):
        pub = get_artifact_repository(store.published(ref))
        assert tuples(pub.list_artifacts()) == [
            ("a.txt", False, 1),
            ("b.txt", False, 1),
            ("nested", True, None),
        ]
        dst = tmp_path / f"dst{ref[0]}"
        dst.mkdir()
        assert tree_of(Path(pub.download_artifacts("", str(dst)))) == tree_of(src)
        for call in (
            lambda pub=pub: pub.log_artifact(str(src / "a.txt")),
            lambda pub=pub: pub.log_artifacts(str(src)),
            lambda pub=pub: pub.delete_artifacts(),
            lambda pub=pub: pub.delete_artifacts("a.txt"),
        ):
            with pytest.raises(MlflowException, match="read-only"):
                call()
    nested = get_artifact_repository(store.published(":v1/nested"))
    assert tuples(nested.list_artifacts()) == [("c.txt", False, 1)]
    assert tuples(store.repo(run).list_artifacts()) == [
        ("a.txt", False, 1),
        ("b.txt", False, 1),
        ("nested", True, None),
    ]
    with pytest.raises(MlflowException, match="not found") as e:
        get_artifact_repository(store.published(":no-such-tag")).list_artifacts()
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


# ---- integrity and format -------------------------------------------------------------------------
def test_tampered_layer_is_detected_and_nothing_written(store: Store, tmp_path: Path) -> None:
    run = new_run()
    secret = os.urandom(70_000)  # unique content: the tampered blob is not shared with other tests
    src = write(tmp_path / "src", {"weights.bin": secret, "ok.txt": "ok"})
    store.repo(run).log_artifacts(str(src))
    m = store.manifest(f"run-{run}")
    layer = next(d for d in m["layers"] if d["annotations"][ANN_FILEPATH] == "weights.bin")
    (_path, size, _sha, offset) = json.loads(layer["annotations"][ANN_FILES])[0]
    assert size == len(secret)
    blob = store.blob_file(layer["digest"])
    data = bytearray(blob.read_bytes())
    data[offset + 1234] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))

    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(MlflowException) as e:
        store.repo(run)._download_file("weights.bin", str(dst / "weights.bin"))
    assert layer["digest"] in e.value.message
    assert "\n" not in e.value.message
    assert list(dst.iterdir()) == []
    with pytest.raises(MlflowException) as e:
        store.repo(run).download_artifacts("", str(dst))
    assert layer["digest"] in e.value.message
    assert not (dst / "weights.bin").exists()
    assert not [p for p in dst.iterdir() if p.name.startswith(".modelkit-dl-")]


def test_draft_is_a_valid_modelkit(store: Store, tmp_path: Path) -> None:
    run = new_run()
    model = write(
        tmp_path / "model",
        {"MLmodel": "flavors: {}\n", "model.skops": os.urandom(2000), "requirements.txt": "scikit-learn\n"},
    )
    other = write(tmp_path / "other", {"train.py": "print(1)\n", "train.csv": "a,b\n1,2\n", "notes.txt": "n"})
    store.repo(run).log_artifacts(str(model), "model")
    store.repo(run).log_artifact(str(other / "train.py"), "code")
    store.repo(run).log_artifact(str(other / "train.csv"), "data")
    store.repo(run).log_artifact(str(other / "notes.txt"))

    info = ops.inspect(store.ref(f"run-{run}"))
    m = info.manifest
    assert m["config"]["mediaType"] == KIT_CONFIG
    kinds = {d["annotations"][ANN_FILEPATH]: parse_layer_media_type(d["mediaType"]) for d in m["layers"]}
    assert kinds == {
        "model": ("model", "tar", "none"),
        "code/train.py": ("code", "tar", "none"),
        "data/train.csv": ("dataset", "tar", "none"),
        "notes.txt": ("docs", "tar", "none"),
    }
    assert [parse_layer_media_type(d["mediaType"])[0] for d in m["layers"]] == [
        "model",
        "code",
        "dataset",
        "docs",
    ]
    cfg = info.config
    assert cfg is not None
    assert cfg["model"]["path"] == "model"
    assert [c["path"] for c in cfg["code"]] == ["code/train.py"]
    assert [d["path"] for d in cfg["datasets"]] == ["data/train.csv"]
    assert [d["path"] for d in cfg["docs"]] == ["notes.txt"]
    # every layer's digest and the index's per-file hashes match what is stored
    for d in m["layers"]:
        for path, size, sha, _off in json.loads(d["annotations"][ANN_FILES]):
            local = (model / path[len("model/") :]) if path.startswith("model/") else other / Path(path).name
            assert size == local.stat().st_size
            assert sha == hashlib.sha256(local.read_bytes()).hexdigest()

    out = tmp_path / "unpacked"
    ops.unpack(store.ref(f"run-{run}"), str(out))
    got = tree_of(out)
    assert got.pop("Kitfile")
    assert got == {
        **{f"model/{k}": v for k, v in tree_of(model).items()},
        "code/train.py": b"print(1)\n",
        "data/train.csv": b"a,b\n1,2\n",
        "notes.txt": b"n",
    }
    assert store.skopeo_raw(f"run-{run}") == info.manifest_bytes


# ---- efficiency (counted, not timed) ------------------------------------------------------------
@pytest.mark.parametrize("stat_cache", ["on", "off"])
def test_relogging_unchanged_file_uploads_no_blob(
    registry_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_cache: str
) -> None:
    if stat_cache == "off":
        monkeypatch.setenv("MLFLOW_MODELKIT_STAT_CACHE", "0")
    store = registry_store
    big = write(tmp_path / "src", {"weights.bin": os.urandom(3 << 20)}) / "weights.bin"
    run = new_run()
    store.repo(run).log_artifact(str(big), "model")
    before = [d["digest"] for d in store.manifest(f"run-{run}")["layers"]]
    log = RequestLog(monkeypatch)
    store.repo(run).log_artifact(str(big), "model")
    assert log.uploads() == []
    assert not [c for c in log.calls if "/blobs/" in c[1] and c[0] == "GET"]  # nothing re-downloaded
    big.write_bytes(big.read_bytes())  # same bytes, new mtime: hashed again, still not uploaded
    store.repo(run).log_artifact(str(big), "model")
    assert log.uploads() == []
    assert [d["digest"] for d in store.manifest(f"run-{run}")["layers"]] == before


def test_relogging_unchanged_file_adds_no_layout_blob(tmp_path: Path) -> None:
    layout = tmp_path / "kits" / "exp"
    store = Store("layout", f"modelkit://{layout}", layout=layout)
    big = write(tmp_path / "src", {"weights.bin": os.urandom(1 << 20)}) / "weights.bin"
    run = new_run()
    store.repo(run).log_artifact(str(big))
    blobs = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
    store.repo(run).log_artifact(str(big))
    assert sorted(p.name for p in (layout / "blobs" / "sha256").iterdir()) == blobs


def test_listing_is_one_request(
    registry_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = registry_store
    run = new_run()
    store.repo(run).log_artifacts(str(abc_tree(tmp_path / "src")))
    log = RequestLog(monkeypatch)
    assert len(store.repo(run).list_artifacts()) == 3
    assert log.calls == [("GET", f"/v2/{store.repository}/manifests/run-{run}")]
    log.calls.clear()
    assert len(store.repo(run).list_artifacts("nested")) == 1
    assert len(log.calls) == 1
    log.calls.clear()
    # a whole download: one manifest read, then one range read per file
    store.repo(run).download_artifacts("", str(tmp_path))
    assert [c[0] for c in log.calls] == ["GET"] * 4
    assert sum("/manifests/" in c[1] for c in log.calls) == 1
