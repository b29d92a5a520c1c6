"""Packing contexts into OCI layouts: layer selection, order, ignore rules, determinism, CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _kithelpers import (
    make_case0_context,
    make_tree,
    pin_env,
    read_kit,
    sha256,
    tar_members,
    tar_names,
)
from click.testing import CliRunner

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.errors import KitfileError, ModelKitError

KIT = "application/vnd.kitops.modelkit"


def pack(ctx: Path, out: Path, tag: str = "v1", **kw) -> dict:
    r = ops.pack(str(ctx), f"oci:{out}:{tag}", **kw)
    kit = read_kit(out, tag)
    assert (
        kit["digest"] == r.digest and kit["manifest_bytes"] == r.manifest and kit["config_bytes"] == r.config
    )
    return kit


def layer_files(kit: dict) -> list[set[str]]:
    """Regular-file names per layer."""
    return [{n for n, m in tar_members(t).items() if m[0] == "file"} for t in kit["layers"]]


# ---- the §10.2 reference vector, end to end ------------------------------------------------------


def test_reference_vector_manifest_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_case0_context(tmp_path / "ctx")
    kit = pack(ctx, tmp_path / "out", tag="golden")
    assert kit["digest"] == "sha256:5eeea071e49b69f34e21dbeecac473fe23c93a5ae76d4dc75b74bedc24384fa8"
    assert len(kit["manifest_bytes"]) == 1056
    assert (
        sha256(kit["config_bytes"])
        == "sha256:7162426e7495841b35a54fffec6773d55a902c371191176183718a74eec2fe11"
    )
    assert [d["size"] for d in kit["manifest"]["layers"]] == [5120, 7168, 2048]


def test_manifest_bytes_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch, MODELKIT_CLI_VERSION="9.9.9-test")
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "Kitfile": "manifestVersion: 1.0.0\nmodel:\n  path: ./m/\ncode:\n  - path: .\n",
            "m/w.bin": "w",
            "x.py": "x",
        },
    )
    kit = pack(ctx, tmp_path / "out")
    c = kit["manifest"]["config"]
    l0, l1 = kit["manifest"]["layers"]
    expected = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        f'"artifactType":"{KIT}.manifest.v1+json",'
        f'"config":{{"mediaType":"{KIT}.config.v1+json","digest":"{c["digest"]}","size":{c["size"]}}},'
        f'"layers":[{{"mediaType":"{KIT}.model.v1.tar","digest":"{l0["digest"]}","size":{l0["size"]},'
        '"annotations":{"org.cncf.model.filepath":"m"}},'
        f'{{"mediaType":"{KIT}.code.v1.tar","digest":"{l1["digest"]}","size":{l1["size"]},'
        '"annotations":{"org.cncf.model.filepath":"."}}],'
        '"annotations":{"ml.kitops.modelkit.cli-version":"9.9.9-test",'
        '"org.opencontainers.image.created":"1980-01-01T00:00:00Z"}}'
    )
    assert kit["manifest_bytes"] == expected.encode()
    # config: path verbatim, digest == diffId == sha256 of the uncompressed tar
    cfg = kit["config"]
    assert cfg["model"]["path"] == "./m/"
    assert cfg["model"]["digest"] == cfg["model"]["diffId"] == l0["digest"] == sha256(kit["layers"][0])
    assert cfg["code"][0]["digest"] == cfg["code"][0]["diffId"] == l1["digest"]
    # the layout index tags the manifest
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert json.loads((tmp_path / "out" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_empty_kitfile_has_empty_layers_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "Kitfile": "manifestVersion: 1.0.0\npackage:\n  name: test-empty\n",
            "model/my-model.bin": "m",
            "some-file.txt": "s",
        },
    )
    kit = pack(ctx, tmp_path / "out")
    assert b'"layers":[]' in kit["manifest_bytes"]
    assert kit["config_bytes"] == b'{"manifestVersion":"1.0.0","package":{"name":"test-empty"}}'


# ---- layer membership and order ------------------------------------------------------------------

INTERSECTING = """\
manifestVersion: 1.0.0
package:
  name: test-intersecting-dir
model:
  name: test-model
  path: main-dir
datasets:
  - name: test-dataset
    path: main-dir/subdir
code:
  - path: .   # everything else
"""
INTERSECTING_FILES = [
    "main-dir/model-file1.txt",
    "main-dir/model-file2.txt",
    "main-dir/model-file3.txt",
    "main-dir/main-subdir/model-subdir1.txt",
    "main-dir/main-subdir/model-subdir2.txt",
    "main-dir/subdir/dataset-file1.txt",
    "main-dir/subdir/dataset-file2.txt",
    "main-dir/subdir/subdir2/dataset-subdir1.txt",
    "other-dir/code-file1.txt",
    "other-dir/code-file2.txt",
    "root-file1.txt",
    "root-file2",
]


def test_intersecting_paths_layer_membership(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kit's test_pack-intersecting-paths: every file lands in exactly one, the most specific, layer."""
    pin_env(monkeypatch)
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": INTERSECTING, **{f: f for f in INTERSECTING_FILES}})
    kit = pack(ctx, tmp_path / "out")
    kinds = [d["mediaType"].split(".")[3] for d in kit["manifest"]["layers"]]
    assert kinds == ["model", "code", "dataset"]  # model → code → datasets, not Kitfile order
    model, code, data = (tar_names(t) for t in kit["layers"])
    assert model == [
        "main-dir",
        "main-dir/main-subdir",
        "main-dir/main-subdir/model-subdir1.txt",
        "main-dir/main-subdir/model-subdir2.txt",
        "main-dir/model-file1.txt",
        "main-dir/model-file2.txt",
        "main-dir/model-file3.txt",
    ]
    # the dataset layer emits its ancestor directory main-dir
    assert data == [
        "main-dir",
        "main-dir/subdir",
        "main-dir/subdir/dataset-file1.txt",
        "main-dir/subdir/dataset-file2.txt",
        "main-dir/subdir/subdir2",
        "main-dir/subdir/subdir2/dataset-subdir1.txt",
    ]
    assert code == [
        "other-dir",
        "other-dir/code-file1.txt",
        "other-dir/code-file2.txt",
        "root-file1.txt",
        "root-file2",
    ]  # no Kitfile, no main-dir
    files = layer_files(kit)
    assert sorted(f for s in files for f in s) == sorted(INTERSECTING_FILES)
    assert [d["annotations"]["org.cncf.model.filepath"] for d in kit["manifest"]["layers"]] == [
        "main-dir",
        ".",
        "main-dir/subdir",
    ]


def test_component_wise_layer_exclusion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # current kit (isWithin): model-extra.txt is not inside 'model', so the '.' code layer keeps it
    pin_env(monkeypatch)
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "Kitfile": "manifestVersion: 1.0.0\nmodel:\n  path: model\ncode:\n  - path: .\n",
            "model/w": "w",
            "model-extra.txt": "e",
            "modelx/f": "f",
        },
    )
    kit = pack(ctx, tmp_path / "out")
    assert tar_names(kit["layers"][0]) == ["model", "model/w"]
    assert tar_names(kit["layers"][1]) == ["model-extra.txt", "modelx", "modelx/f"]


def test_parts_and_prompts_order_and_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    kitfile = textwrap.dedent("""\
        manifestVersion: 1.0.0
        prompts:
          - name: sys
            path: prompts/system.prompt.md
        docs:
          - path: README.md
        datasets:
          - path: data
        code:
          - path: src
        model:
          path: ./model
          parts:
            - name: part1
              path: ./model/part1
              type: lora
            - path: part3/
        """)
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "Kitfile": kitfile,
            "model/main.bin": "m",
            "model/part1": "p1",
            "part3/a": "p3",
            "src/s.py": "s",
            "data/d.csv": "d",
            "README.md": "r",
            "prompts/system.prompt.md": "p",
            "prompts/other.md": "o",
        },
    )
    kit = pack(ctx, tmp_path / "out")
    layers = kit["manifest"]["layers"]
    assert [d["mediaType"] for d in layers] == [
        f"{KIT}.model.v1.tar",
        f"{KIT}.modelpart.v1.tar",
        f"{KIT}.modelpart.v1.tar",
        f"{KIT}.code.v1.tar",
        f"{KIT}.dataset.v1.tar",
        f"{KIT}.docs.v1.tar",
        f"{KIT}.code.v1.tar",
    ]
    assert [d["annotations"] for d in layers] == [
        {"org.cncf.model.filepath": "model"},
        {"org.cncf.model.filepath": "model/part1"},
        {"org.cncf.model.filepath": "part3"},
        {"org.cncf.model.filepath": "src"},
        {"org.cncf.model.filepath": "data"},
        {"org.cncf.model.filepath": "README.md"},
        {"ml.kitops.modelkit.layer-subtype": "prompt", "org.cncf.model.filepath": "prompts/system.prompt.md"},
    ]
    assert (
        b'"annotations":{"ml.kitops.modelkit.layer-subtype":"prompt","org.cncf.model.filepath":'
        b'"prompts/system.prompt.md"}'
    ) in kit["manifest_bytes"]
    assert layer_files(kit) == [
        {"model/main.bin"},
        {"model/part1"},
        {"part3/a"},
        {"src/s.py"},
        {"data/d.csv"},
        {"README.md"},
        {"prompts/system.prompt.md"},
    ]
    cfg = kit["config"]
    assert [p["digest"] for p in cfg["model"]["parts"]] == [layers[1]["digest"], layers[2]["digest"]]
    assert cfg["prompts"] == [
        {
            "name": "sys",
            "path": "prompts/system.prompt.md",
            "digest": layers[6]["digest"],
            "diffId": layers[6]["digest"],
        }
    ]
    assert list(cfg) == ["manifestVersion", "package", "model", "code", "datasets", "docs", "prompts"]


def test_remote_dataset_path_is_not_packed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kit keeps every dataset path (remote ones too) out of the other layers, and packs no remote layer
    pin_env(monkeypatch)
    kitfile = (
        "manifestVersion: 1.0.0\ncode:\n  - path: .\ndatasets:\n  - path: data/train\n"
        "    remotePath: s3://bucket/train\n    remoteHash: sha256:abc\n"
    )
    ctx = make_tree(
        tmp_path / "ctx", {"Kitfile": kitfile, "data/train/big.bin": "b", "data/eval.csv": "e", "x.py": "x"}
    )
    kit = pack(ctx, tmp_path / "out")
    assert len(kit["layers"]) == 1
    assert tar_names(kit["layers"][0]) == ["data", "data/eval.csv", "x.py"]
    assert "digest" not in kit["config"]["datasets"][0]


# ---- kit's pack-unpack fixtures (testing/testdata/pack-unpack) -----------------------------------

PACK_UNPACK_CASES = {
    "basic-model": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-basic\nmodel:\n  name: test-model\n  path: ./model\n"
        "datasets:\n  - name: test-dataset\n    path: ./datasets\ncode:\n  - path: ./code\n",
        None,
        ["model/my-model.bin", "datasets/my-dataset.bin", "code/my-code.py"],
        [],
    ),
    "ignores-basic": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-ignores\nmodel:\n  name: test-ignores\n  path: .\n",
        "# Ignore an entire directory\ndir1\n# Ignore a subdirectory\ndir2/dirA\n# Ignore a file in root\n"
        "root-ignored.txt\n# Ignore a file in a subdirectory\ndir3/dir3-ignored.txt\n# Ignore with wildcard\n"
        "dir4/*/ignored-file.txt\n# Ignore all with md extension\n**/*.md\n# Ignore all dirs with name\n"
        "**/ignored\n# Single character wildcard\nignored-?.txt\n# Exclusions\n!dir5/not-ignored.md\n",
        [
            "dir2/file2.txt",
            "dir2/dirB/fileB.txt",
            "root-included.txt",
            "dir3/dir3-included.txt",
            "dir3/dirA/fileA.txt",
            "dir4/dirA/not-ignored",
            "dir4/dirB/not-ignored",
            "dir4/ignored-file.txt",
            "dir5/not-ignored.md",
        ],
        [
            "dir1/dirA/fileA.txt",
            "dir1/file1.txt",
            "dir2/dirA/fileA.txt",
            "root-ignored.txt",
            "dir3/dir3-ignored.txt",
            "dir4/dirA/ignored-file.txt",
            "dir4/dirB/ignored-file.txt",
            "dir4/dirC/ignored-file.txt",
            "ignored-root.md",
            "dir2/ignored-dir2.md",
            "dir3/dirA/ignored-dirA.md",
            "dir2/ignored/ignored-file1.txt",
            "dir3/dirB/ignored/ignored-file2.txt",
            "ignored-a.txt",
            "ignored-b.txt",
            "ignored-1.txt",
        ],
    ),
    "ignores-intersecting": (
        INTERSECTING,
        "main-dir/ignored-subdir\nmain-dir/main-subdir/ignored-file1.txt\nmain-dir/subdir/ignored-dataset1.txt\n"
        "main-dir/subdir/ignored-subdir\nignored-dir\n",
        INTERSECTING_FILES,
        [
            "main-dir/ignored-subdir/file1",
            "main-dir/main-subdir/ignored-file1.txt",
            "main-dir/subdir/ignored-dataset1.txt",
            "main-dir/subdir/ignored-subdir/file1",
            "ignored-dir/file1",
        ],
    ),
    "modelkit-parts": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-model-parts\nmodel:\n  name: test-model\n"
        "  path: ./model\n  parts:\n    - name: part1\n      path: ./model/part1\n"
        "    - name: part2\n      path: model/part2\n"
        "    - name: part3\n      path: ./part3\n",
        None,
        ["model/main-model-1", "model/main-model-2", "model/part1", "model/part2", "part3"],
        [],
    ),
    "modelkit-parts-kitignore": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-model-parts-ignore\nmodel:\n  name: test-model\n"
        "  path: ./model\n  parts:\n  - name: part1\n    path: model/part1/\n  - name: part2\n"
        "    path: model/part2/\n  - name: part3\n    path: part3/\n",
        "**/*.md\n**/part2/ignored\n",
        [
            "model/main-model1",
            "model/main-model2",
            "model/part1/part1A",
            "model/part1/part1B",
            "model/part2/part2A",
            "model/part2/part2B",
            "part3/part3A",
        ],
        [
            "model/main-ignored.md",
            "model/part1/part1-ignored.md",
            "model/part2/ignored/ignored-file.txt",
            "part3/ignored.md",
        ],
    ),
    "pack-path-formats": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-paths\ndatasets:\n"
        "  - name: test-with-dot\n    path: ./test1\n"
        "  - name: test-path-without-dot\n    path: test2\n"
        "  - name: test-path-is-directory\n    path: test3/\n"
        "  - name: test-path-is-file\n    path: test4/test-single-file.txt\n"
        "  - name: test-path-is-subdirectory\n    path: test5/subdir/subdir2/\n"
        "  - name: test-path-has-subdirs\n    path: test6/\n"
        "  - name: test-path-has-repeated-elements\n    path: test7/test7\n",
        None,
        [
            "test1/test1-file1.txt",
            "test1/test1-file2.txt",
            "test2/test2-file1",
            "test2/test2-file2",
            "test3/test3-file1.txt",
            "test3/test3-file2.txt",
            "test4/test-single-file.txt",
            "test5/subdir/subdir2/test5-file1.txt",
            "test6/subdir1/test6-file1.txt",
            "test6/subdir2/test6-file2.txt",
            "test6/subdir2/test6-file3.txt",
            "test6/test6-file4.txt",
            "test7/test7/test7/test7/test7-file1.txt",
        ],
        [
            "test4/ignored-file.txt",
            "test5/ignored-file.txt",
            "test5/ignored-subdir/ignored-file.txt",
            "test5/subdir/ignored-subdir/ignored-file.txt",
            "test-ignored/ignored-file.txt",
        ],
    ),
    "path-is-context-dir": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-context-dir\nmodel:\n  name: test-model\n  path: .\n",
        None,
        [
            "file-in-root1.txt",
            "file-in-root2.txt",
            "main-dir/file-main1.txt",
            "main-dir/subdir/file-subdir1.txt",
            "dir2/test-file1.txt",
        ],
        [],
    ),
    "path-formats-docs": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-path-format\ndocs:\n  - path: my-file.txt\n"
        "  - path: ./my-file2.txt\n  - path: dir-one\n  - path: dir-two/\n  - path: ./dir-three\n"
        "  - path: ./dir-four/\n  - path: dir-five/my-file.txt\n  - path: ./dir-six/my-file.txt\n",
        None,
        [
            "my-file.txt",
            "my-file2.txt",
            "dir-one/test-file",
            "dir-two/test-file",
            "dir-three/test-file",
            "dir-four/test-file",
            "dir-five/my-file.txt",
            "dir-six/my-file.txt",
        ],
        [],
    ),
    "empty-kitfile": (
        "manifestVersion: 1.0.0\npackage:\n  name: test-empty\n",
        None,
        [],
        ["model/my-model.bin", "datasets/my-dataset.bin", "code/my-code.py", "some-file.txt"],
    ),
}


@pytest.mark.parametrize("case", sorted(PACK_UNPACK_CASES))
def test_kit_pack_unpack_fixtures(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    kitfile, kitignore, files, ignored = PACK_UNPACK_CASES[case]
    tree = {"Kitfile": kitfile, **{f: f"content of {f}" for f in files + ignored}}
    if kitignore is not None:
        tree[".kitignore"] = kitignore
    ctx = make_tree(tmp_path / "ctx", tree)
    kit = pack(ctx, tmp_path / "out")
    packed = [f for s in layer_files(kit) for f in s]
    assert sorted(packed) == sorted(files), "each file in exactly one layer, ignored files in none"
    out = tmp_path / "unpacked"
    written = ops.unpack(f"oci:{tmp_path / 'out'}:v1", str(out))
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert got == sorted([*files, "Kitfile"])
    assert sorted(written) == got
    for f in files:
        assert (out / f).read_text() == f"content of {f}"


# ---- .kitignore semantics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kitignore", "kept"),
    [
        ("*.log\n", {"a.txt", "sub/b.log", "sub/deep/c.log", "sub/keep.txt"}),  # root-anchored
        ("**/*.log\n", {"a.txt", "sub/keep.txt"}),
        ("**/*.log\n!sub/b.log\n", {"a.txt", "sub/b.log", "sub/keep.txt"}),
        ("sub\n", {"a.txt", "x.log"}),  # directory pattern
        ("sub/\n", {"a.txt", "x.log"}),
        ("/sub\n!sub/keep.txt\n", {"a.txt", "x.log", "sub/keep.txt"}),  # re-include inside
        ("sub/deep\n", {"a.txt", "x.log", "sub/b.log", "sub/keep.txt"}),
        ("*\n!a.txt\n", {"a.txt"}),
        ("# comment\n\n  a.txt  \n", {"x.log", "sub/b.log", "sub/deep/c.log", "sub/keep.txt"}),
        ("sub/**\n", {"a.txt", "x.log"}),
        ("s?b\n", {"a.txt", "x.log"}),
    ],
)
def test_kitignore_rules(
    kitignore: str, kept: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: .\n",
            ".kitignore": kitignore,
            "a.txt": "a",
            "x.log": "x",
            "sub/b.log": "b",
            "sub/deep/c.log": "c",
            "sub/keep.txt": "k",
        },
    )
    kit = pack(ctx, tmp_path / "out")
    assert layer_files(kit) == [kept]


def test_kitfile_variants_and_kitignore_never_packed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(
        tmp_path / "ctx",
        {
            ".kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: .\n",
            ".kitignore": "",
            "f": "f",
            "sub/Kitfile": "nested",
        },
    )
    kit = pack(ctx, tmp_path / "out")
    # the defaults are root-anchored patterns too: sub/Kitfile is packed
    assert tar_names(kit["layers"][0]) == ["f", "sub", "sub/Kitfile"]
    # Kitfile is found first; kitfile and .kitfile next to it are never packed either
    make_tree(ctx, {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: .\n", "kitfile": "x"})
    kit = pack(ctx, tmp_path / "out2")
    assert tar_names(kit["layers"][0]) == ["f", "sub", "sub/Kitfile"]


def test_fully_ignored_layer_warns_and_packs_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(
        tmp_path / "ctx",
        {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: logs\n", ".kitignore": "logs\n", "logs/a": "a"},
    )
    with caplog.at_level(logging.WARNING):
        kit = pack(ctx, tmp_path / "out")
    assert kit["layers"] == [bytes(1024)]
    assert any("ignored" in r.getMessage() for r in caplog.records)


def test_symlinks_are_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: src\n",
            "src/real.py": "r",
            "outside/secret": "s",
        },
    )
    os.symlink("real.py", ctx / "src" / "link.py")
    os.symlink("../outside", ctx / "src" / "dirlink")
    os.mkfifo(ctx / "src" / "fifo")
    with caplog.at_level(logging.WARNING):
        kit = pack(ctx, tmp_path / "out")
    assert tar_names(kit["layers"][0]) == ["src", "src/real.py"]
    msgs = " ".join(r.getMessage() for r in caplog.records)
    assert "src/link.py" in msgs and "src/dirlink" in msgs and "symlink" in msgs


def test_missing_layer_path_is_an_error(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": "manifestVersion: 1.0.0\nmodel:\n  path: nope\n"})
    with pytest.raises(KitfileError, match="does not exist"):
        ops.pack(str(ctx), f"oci:{tmp_path / 'out'}:v1")


def test_invalid_kitfile_is_rejected_before_packing(tmp_path: Path) -> None:
    ctx = make_tree(
        tmp_path / "ctx",
        {"Kitfile": "manifestVersion: 1.0.0\nmodel:\n  path: m\ncode:\n  - path: m/\n", "m/x": "x"},
    )
    with pytest.raises(KitfileError, match="duplicate path"):
        ops.pack(str(ctx), f"oci:{tmp_path / 'out'}:v1")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KitfileError, match="no Kitfile"):
        ops.pack(str(empty), f"oci:{tmp_path / 'o2'}:v1")
    assert not (tmp_path / "out").exists()  # nothing written for a bad Kitfile


# ---- reproducibility -----------------------------------------------------------------------------


def test_pack_is_deterministic_across_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    tree = {"Kitfile": INTERSECTING, **{f: f * 3 for f in INTERSECTING_FILES}}
    a = make_tree(tmp_path / "a" / "ctx", tree)
    b = make_tree(tmp_path / "somewhere" / "else" / "ctx2", tree)
    ka = pack(a, tmp_path / "out-a")
    kb = pack(b, tmp_path / "out-b")
    assert ka["digest"] == kb["digest"] and ka["layers"] == kb["layers"]
    # packing again into the same layout keeps one tag and the same digest
    kc = pack(a, tmp_path / "out-a")
    assert kc["digest"] == ka["digest"]
    index = json.loads((tmp_path / "out-a" / "index.json").read_text())
    assert len(index["manifests"]) == 1


def test_source_date_epoch_pins_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELKIT_CREATED", raising=False)
    monkeypatch.setenv("MODELKIT_CLI_VERSION", "1.15.0")
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: f\n", "f": "f"})
    for epoch, created in (
        ("0", "1970-01-01T00:00:00Z"),
        ("1700000000", "2023-11-14T22:13:20Z"),
        ("+315532800", "1980-01-01T00:00:00Z"),
    ):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        kit = pack(ctx, tmp_path / f"out{epoch}")
        assert kit["manifest"]["annotations"]["org.opencontainers.image.created"] == created
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    kit = pack(ctx, tmp_path / "now")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", kit["manifest"]["annotations"]["org.opencontainers.image.created"]
    )


@pytest.mark.parametrize("bad", ["abc", "1.5", "1e9", " 12", "1_000", "99999999999999999999"])
def test_invalid_source_date_epoch_is_an_error(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELKIT_CREATED", raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", bad)
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: f\n", "f": "f"})
    with pytest.raises(ModelKitError, match=f'invalid SOURCE_DATE_EPOCH "{re.escape(bad)}"'):
        ops.pack(str(ctx), f"oci:{tmp_path / 'out'}:v1")
    monkeypatch.setenv("MODELKIT_CREATED", "1980-01-01T00:00:00Z")  # an override does not hide it
    with pytest.raises(ModelKitError, match="invalid SOURCE_DATE_EPOCH"):
        ops.pack(str(ctx), f"oci:{tmp_path / 'out2'}:v1")


def test_modelkit_created_and_cli_version_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    monkeypatch.setenv("MODELKIT_CREATED", "2026-06-24T10:11:12Z")
    monkeypatch.setenv("MODELKIT_CLI_VERSION", "1.7.0")
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: f\n", "f": "f"})
    kit = pack(ctx, tmp_path / "out")
    assert kit["manifest"]["annotations"] == {
        "ml.kitops.modelkit.cli-version": "1.7.0",
        "org.opencontainers.image.created": "2026-06-24T10:11:12Z",
    }
    monkeypatch.setenv("MODELKIT_CREATED", "yesterday")
    with pytest.raises(ModelKitError, match="MODELKIT_CREATED"):
        ops.pack(str(ctx), f"oci:{tmp_path / 'out2'}:v1")


# ---- compression ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compression_round_trip(compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": INTERSECTING, **{f: f * 50 for f in INTERSECTING_FILES}})
    plain = pack(ctx, tmp_path / "plain")
    kit = pack(ctx, tmp_path / "comp", compression=compression)
    for d, blob, raw, entry in zip(
        kit["manifest"]["layers"],
        kit["layers"],
        plain["layers"],
        [kit["config"]["model"], kit["config"]["code"][0], kit["config"]["datasets"][0]],
        strict=True,
    ):
        assert d["mediaType"].endswith(f".v1.tar+{compression}")
        if compression == "gzip":
            assert blob[:4] == b"\x1f\x8b\x08\x00" and gzip.decompress(blob) == raw
        else:
            import zstandard

            assert zstandard.ZstdDecompressor().decompressobj().decompress(blob) == raw
        assert entry["digest"] == d["digest"] == sha256(blob)
        assert entry["diffId"] == sha256(raw) != entry["digest"]
    out = tmp_path / "unpacked"
    ops.unpack(f"oci:{tmp_path / 'comp'}:v1", str(out))
    for f in INTERSECTING_FILES:
        assert (out / f).read_text() == f * 50


# ---- the CLI -------------------------------------------------------------------------------------


def test_cli_pack_inspect_list_unpack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": INTERSECTING, **{f: f for f in INTERSECTING_FILES}})
    runner = CliRunner()
    target = f"oci:{tmp_path / 'out'}:v1"
    r = runner.invoke(main, ["pack", str(ctx), "-t", target])
    assert r.exit_code == 0, r.output
    kit = read_kit(tmp_path / "out", "v1")
    assert r.output.strip().endswith(f"@{kit['digest']}")
    r = runner.invoke(main, ["inspect", target, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["digest"] == kit["digest"]
    r = runner.invoke(main, ["list", f"oci:{tmp_path / 'out'}", "--json"])
    assert r.exit_code == 0 and [t["tag"] for t in json.loads(r.output)] == ["v1"]
    r = runner.invoke(main, ["unpack", target, "-d", str(tmp_path / "u"), "--filter", "model,datasets"])
    assert r.exit_code == 0, r.output
    got = sorted(str(p.relative_to(tmp_path / "u")) for p in (tmp_path / "u").rglob("*") if p.is_file())
    assert got == sorted(f for f in INTERSECTING_FILES if f.startswith("main-dir/"))


def test_cli_kitfile_from_stdin_and_file_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(tmp_path / "ctx", {"m/w": "w"})
    runner = CliRunner()
    r = runner.invoke(
        main,
        ["pack", str(ctx), "-t", f"oci:{tmp_path / 'a'}:v1", "-f", "-"],
        input="manifestVersion: 1.0.0\nmodel:\n  path: m\n",
    )
    assert r.exit_code == 0, r.output
    kf = tmp_path / "elsewhere.yaml"
    kf.write_text("manifestVersion: 1.0.0\nmodel:\n  path: m\n")
    r = runner.invoke(main, ["pack", str(ctx), "-t", f"oci:{tmp_path / 'b'}:v1", "-f", str(kf)])
    assert r.exit_code == 0, r.output
    assert read_kit(tmp_path / "a", "v1")["digest"] == read_kit(tmp_path / "b", "v1")["digest"]


def test_cli_errors_exit_2_with_one_line_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": "manifestVersion: 1.0.0\nmodle: {}\n"})
    r = CliRunner().invoke(main, ["pack", str(ctx), "-t", f"oci:{tmp_path / 'out'}:v1"])
    assert r.exit_code == 2 and "error:" in r.output and "modle" in r.output
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "abc")
    monkeypatch.delenv("MODELKIT_CREATED")
    (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\n")
    r = CliRunner().invoke(main, ["pack", str(ctx), "-t", f"oci:{tmp_path / 'out'}:v1"])
    assert r.exit_code == 2 and 'invalid SOURCE_DATE_EPOCH "abc"' in r.output


def test_console_module_subprocess(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: .\n", "a": "a"})
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532800", MODELKIT_CLI_VERSION="1.15.0")
    env.pop("MODELKIT_CREATED", None)
    r = subprocess.run(
        [sys.executable, "-m", "mlflow_plugin.cli", "pack", str(ctx), "-t", f"oci:{tmp_path / 'out'}:v1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    kit = read_kit(tmp_path / "out", "v1")
    assert kit["manifest"]["annotations"]["org.opencontainers.image.created"] == "1980-01-01T00:00:00Z"


# ---- interoperability ----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_reads_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": INTERSECTING, **{f: f for f in INTERSECTING_FILES}})
    kit = pack(ctx, tmp_path / "out")
    r = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{tmp_path / 'out'}:v1"], capture_output=True, timeout=120
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == kit["manifest_bytes"]
    assert hashlib.sha256(r.stdout).hexdigest() == kit["digest"].split(":")[1]
    r = subprocess.run(
        ["skopeo", "inspect", "--raw", "--config", f"oci:{tmp_path / 'out'}:v1"],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == kit["config_bytes"]


# ---- the matcher itself: moby/patternmatcher v0.6.0 + ignorefile.ReadAll ------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (["*.log"], "x.log", True),
        (["*.log"], "model/x.log", False),  # anchored at the context root
        (["**/*.log"], "model/deep/x.log", True),
        (["**/*.log"], "x.log", True),
        (["model"], "model/sub/file", True),  # a parent directory matches
        (["model/*"], "model", False),
        (["model/**"], "model/a/b", True),
        (["model/**"], "model", False),
        (["**/tmp"], "a/tmp/f", True),
        (["**/tmp"], "a/xtmp", False),
        (["**tmp"], "a/xtmp", True),  # moby's suffix fast path: a plain suffix test
        (["?.txt"], "a.txt", True),
        (["?.txt"], "ab.txt", False),
        (["[a-c].txt"], "b.txt", True),
        (["[^a].txt"], "a.txt", False),
        (["[!a].txt"], "!.txt", True),  # '!' is not negation in moby's regexp
        (["[!a].txt"], "b.txt", False),
        (["a.b"], "axb", False),  # '.' is literal
        (["dir", "!dir/keep"], "dir/keep", False),
        (["dir", "!dir/keep"], "dir/other", True),
        (["*", "!*.py", "secret.py"], "secret.py", True),  # later patterns win
        (["*", "!*.py", "secret.py"], "main.py", False),
        (["\\*.txt"], "*.txt", True),
        (["\\*.txt"], "a.txt", False),
    ],
)
def test_ignore_matcher(patterns: list[str], path: str, ignored: bool) -> None:
    from mlflow_plugin.kit.ignore import IgnoreMatcher

    assert IgnoreMatcher(patterns, add_defaults=False).matches(path) is ignored


def test_ignore_file_parsing_and_errors() -> None:
    from mlflow_plugin.kit.ignore import IgnoreMatcher, read_ignore_file

    text = "\ufeff# comment\n*.log\r\n  !  /x/../y  \n\n//abs/\n#not/a/comment\n !keep\n"
    assert read_ignore_file(text) == ["*.log", "!y", "abs", "!keep"]
    assert IgnoreMatcher([]).matches("Kitfile") and IgnoreMatcher([]).matches(".kitignore")
    assert not IgnoreMatcher([]).matches("sub/Kitfile")
    for bad in (["!"], ["a["], ["[]"], ["a\\"]):
        with pytest.raises(KitfileError, match="kitignore"):
            IgnoreMatcher(bad)


def test_invalid_kitignore_fails_pack(tmp_path: Path) -> None:
    ctx = make_tree(
        tmp_path / "ctx",
        {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: .\n", ".kitignore": "[oops\n", "a": "a"},
    )
    with pytest.raises(KitfileError, match="kitignore"):
        ops.pack(str(ctx), f"oci:{tmp_path / 'out'}:v1")


def test_kitinfo_layers_refuse_a_hostile_file_index() -> None:
    """``KitInfo.layers()`` (what the Jupyter panel shows) never passes on a lying index: a path
    that climbs out, or a malformed index, gives no files and one line saying why."""
    import json as _json

    from mlflow_plugin import KitInfo

    good = [["model/model.pkl", 7, "ab" * 32, 512]]
    evil = [["../../etc/passwd", 7, "ab" * 32, 512]]
    layers = []
    for i, index in enumerate((good, evil, "not json")):
        ann = index if isinstance(index, str) else _json.dumps(index)
        layers.append(
            {
                "mediaType": "application/vnd.kitops.modelkit.model.v1.tar",
                "digest": f"sha256:{i:064x}",
                "size": 2048,
                "annotations": {"org.cncf.model.filepath": "model", "dev.mlflow-modelkit.files": ann},
            }
        )
    info = KitInfo("oci:/k:v1", "sha256:" + "0" * 64, "m", {"layers": layers}, b"{}", None)
    ok, climbing, garbled = info.layers()
    assert ok["error"] is None and [f["path"] for f in ok["files"]] == ["model/model.pkl"], ok
    for bad in (climbing, garbled):
        assert bad["files"] == [] and bad["error"] and "\n" not in bad["error"], bad


@pytest.mark.parametrize("path", ["../../outside", "/etc/outside", "a/../../outside", "ok\\..\\x"])
def test_unpack_refuses_a_config_kitfile_naming_a_path_outside(tmp_path: Path, path: str) -> None:
    """The Kitfile an unpack writes comes from the config blob: a path out of the target in it
    (which a later ``kit pack`` there would follow) refuses the unpack, in one line, nothing written."""
    import json as _json

    from mlflow_plugin.storage.locations import open_location

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "model.bin").write_bytes(b"weights")
    (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel: {path: model.bin}\n")
    ops.pack(str(ctx), f"oci:{tmp_path}/kits:v1")
    repo, _ = open_location(f"oci:{tmp_path}/kits")
    m = _json.loads(repo.get_manifest("v1")[0])
    config = _json.loads(repo.read_blob(m["config"]["digest"], m["config"]["size"]))
    config["model"]["path"] = path
    data = _json.dumps(config).encode()
    m["config"]["digest"] = repo.push_bytes(data, m["config"]["mediaType"]).digest
    m["config"]["size"] = len(data)
    repo.put_manifest(_json.dumps(m).encode(), m["mediaType"], tag="hostile")
    out = tmp_path / "out"
    with pytest.raises(ModelKitError, match="its Kitfile names an illegal model path") as e:
        ops.unpack(f"oci:{tmp_path}/kits:hostile", str(out))
    assert "\n" not in str(e.value) and not out.exists()
    assert not (tmp_path / "outside").exists()
