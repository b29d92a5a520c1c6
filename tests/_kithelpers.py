"""Helpers shared by the kit format tests (no fixtures: conftest.py belongs to others)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from mlflow_plugin._internal.gojson import dumps
from mlflow_plugin.kit.mediatypes import KIT_ARTIFACT_TYPE, KIT_CONFIG
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.layout import LayoutRepository
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST

PINNED_ENV = {
    "SOURCE_DATE_EPOCH": "315532800",
    "MODELKIT_CREATED": "1980-01-01T00:00:00Z",
    "MODELKIT_CLI_VERSION": "1.15.0",
}


# The Kitfile of the reference vector (modelkit-format.md §10.2 / shared conformance case0).
CASE0_KITFILE = """\
manifestVersion: 1.0.0
package:
  name: golden
  version: 1.0
  authors: [Alice, Bob]
model:
  name: m
  path: ./model/
  framework: pytorch
  parameters:
    lr: 1.2e+3
    hex: 0xFF
    small: 1e-7
    zeta: "z"
    alpha: [1, 2.5, true, null]
    nested: {b: 2, a: 1}
code:
  - path: code
datasets:
  - name: d
    path: data.csv
"""


def pin_env(monkeypatch: Any, **extra: str) -> None:
    """Pin created/cli-version like the conformance checker does."""
    for k, v in {**PINNED_ENV, **extra}.items():
        monkeypatch.setenv(k, v)


def make_tree(
    root: Path, files: dict[str, bytes | str], dirs: tuple[str, ...] = (), modes: dict[str, int] | None = None
) -> Path:
    """Create files (content defaults to the path) and dirs under ``root``, then chmod."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(p, 0o644)
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    for rel, mode in (modes or {}).items():
        os.chmod(root / rel, mode)
    return root


def make_case0_context(root: Path) -> Path:
    """The §10.2 reference context (case0) under ``root``: files, empty dir, 0755 file, symlink."""
    ctx = make_tree(
        root,
        {
            "Kitfile": CASE0_KITFILE,
            ".kitignore": "*.log\n",
            "model/weights.bin": "abc",
            "model/debug.log": "x",
            "model/sub/cfg.json": "{}",
            "code/train.py": "print(1)\n",
            "code/ünïcode.txt": "u",
            f"code/{'a' * 60}/{'b' * 68}/file.txt": "deep",
            "data.csv": "a,b\n1,2\n",
        },
        dirs=("code/empty",),
        modes={"code/train.py": 0o755},
    )
    os.symlink("train.py", ctx / "code" / "link.py")
    return ctx


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_blob(layout: Path, digest: str) -> bytes:
    alg, hexd = digest.split(":", 1)
    return (layout / "blobs" / alg / hexd).read_bytes()


def read_kit(layout: Path, tag: str) -> dict[str, Any]:
    """Follow index.json → manifest → config and layers of ``tag``; checks every digest."""
    index = json.loads((layout / "index.json").read_text())
    desc = next(
        d
        for d in index["manifests"]
        if (d.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
    )
    mbytes = read_blob(layout, desc["digest"])
    assert sha256(mbytes) == desc["digest"] and len(mbytes) == desc["size"]
    manifest = json.loads(mbytes)
    cbytes = read_blob(layout, manifest["config"]["digest"])
    assert sha256(cbytes) == manifest["config"]["digest"]
    layers = []
    for d in manifest["layers"]:
        data = read_blob(layout, d["digest"])
        assert sha256(data) == d["digest"] and len(data) == d["size"]
        layers.append(data)
    return {
        "manifest_bytes": mbytes,
        "manifest": manifest,
        "config_bytes": cbytes,
        "config": json.loads(cbytes),
        "layers": layers,
        "digest": desc["digest"],
    }


def tar_names(data: bytes, mode: str = "r:") -> list[str]:
    """Member names as Python's tarfile reads them (PAX records applied)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tf:
        return [m.name for m in tf.getmembers()]


def tar_members(data: bytes) -> dict[str, tuple[str, int, int, bytes | None]]:
    """name → (type, mode, size, content) for every member."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf.getmembers():
            content = tf.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            out[m.name] = ("dir" if m.isdir() else "file", m.mode, m.size, content)
    return out


def hostile_tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """Build a tar with Python's tarfile from hand-made TarInfo entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in entries:
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def tinfo(name: str, type_: bytes = tarfile.REGTYPE, mode: int = 0o644, **kw: Any) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def layout_with_layers(
    layout: Path,
    layers: list[tuple[str, bytes, dict[str, Any]]],
    tag: str = "v1",
    kitfile_extra: dict[str, Any] | None = None,
) -> str:
    """Write a ModelKit into an OCI layout from raw layer blobs and hand-built config/manifest.

    ``layers`` holds ``(kind, blob, entry)`` where kind is model/modelpart/code/dataset/docs and
    ``entry`` is the Kitfile entry (path, name, …); digest/diffId are filled in here.
    """
    repo = LayoutRepository(str(layout), create=True)
    config: dict[str, Any] = {"manifestVersion": "1.0.0", "package": {}}
    config.update(kitfile_extra or {})
    descs = []
    for kind, blob, entry in layers:
        digest = repo.push_blob_chunks([blob])[0]
        e = dict(entry, digest=digest, diffId=digest)
        if kind == "model":
            config["model"] = e
        elif kind == "modelpart":
            config.setdefault("model", {}).setdefault("parts", []).append(e)
        else:
            section = {"code": "code", "dataset": "datasets", "docs": "docs", "prompt": "prompts"}[kind]
            config.setdefault(section, []).append(e)
        mt_kind = "code" if kind == "prompt" else kind
        descs.append(Descriptor(f"application/vnd.kitops.modelkit.{mt_kind}.v1.tar", digest, len(blob)))
    cdata = json.dumps(config).encode()
    cdesc = repo.push_bytes(cdata, KIT_CONFIG)
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": KIT_ARTIFACT_TYPE,
            "config": cdesc.to_json(),
            "layers": [d.to_json() for d in descs],
        }
    )
    return repo.put_manifest(manifest, OCI_MANIFEST, tag=tag)


def listdir_all(root: Path) -> list[str]:
    """Every path under ``root`` (relative, sorted), dirs included; [] if root is missing."""
    if not root.exists():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def log_files_run(registry_host: str, home: Path, files: dict[str, bytes], prefix: str = "enc") -> str:
    """A run (active tracking URI) whose artifacts are ``files`` (``{"dir/name": bytes}``), drafted
    in ``registry_host`` under ``enc/src-<random>``; the files are written under ``home/src`` first.
    Returns the run id."""
    import uuid

    import mlflow

    exp = mlflow.create_experiment(
        f"{prefix}-{uuid.uuid4().hex[:8]}",
        artifact_location=f"modelkit://{registry_host}/enc/src-{uuid.uuid4().hex[:8]}",
    )
    with mlflow.start_run(experiment_id=exp) as run:
        for rel, data in files.items():
            p = home / "src" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            mlflow.log_artifact(str(p), os.path.dirname(rel))
    mlflow.end_run()
    return str(run.info.run_id)
