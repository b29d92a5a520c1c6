"""Safe, verified unpack: hostile layers, tampered blobs, overwrite rules, filters, Kitfile."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from _kithelpers import hostile_tar, layout_with_layers, listdir_all, make_tree, pin_env, read_kit, tinfo

from mlflow_plugin import packaging as ops
from mlflow_plugin.errors import DigestMismatchError, ExistsError, ModelKitError, UnsafeArchiveError
from mlflow_plugin.kit.kitfile import Kitfile
from mlflow_plugin.kit.unpack import Staging, extract_layer, safe_member_path

GOOD_KITFILE = """\
manifestVersion: 1.0.0
package:
  name: good
model:
  name: m
  path: model
  parameters:
    digest: keep-me
    nested: {diffId: keep-me-too}
datasets:
  - name: train
    path: data/train.csv
  - name: eval
    path: data/eval.csv
code:
  - path: src
"""


@pytest.fixture
def good_kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pin_env(monkeypatch)
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "Kitfile": GOOD_KITFILE,
            "model/w.bin": "weights",
            "model/sub/c.json": "{}",
            "data/train.csv": "t",
            "data/eval.csv": "e",
            "src/run.py": "run",
        },
        modes={"src/run.py": 0o755},
    )
    ops.pack(str(ctx), f"oci:{tmp_path / 'kit'}:v1")
    return f"oci:{tmp_path / 'kit'}:v1"


def unpack_hostile(tmp_path: Path, tar: bytes, target: Path | None = None, kind: str = "code") -> Path:
    layout = tmp_path / "hostile"
    layout_with_layers(layout, [(kind, tar, {"path": "."})])
    target = target or tmp_path / "target"
    ops.unpack(f"oci:{layout}:v1", str(target))
    return target


# ---- hostile archives ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "/etc/evil",
        "../evil",
        "a/../../evil",
        "./../evil",
        "..",
        "a/b/../../../evil",
        "C:/evil",
        "a\\..\\evil",
    ],
)
def test_paths_escaping_the_target_are_refused(name: str, tmp_path: Path) -> None:
    tar = hostile_tar([(tinfo("ok.txt"), b"fine"), (tinfo(name), b"evil")])
    with pytest.raises(UnsafeArchiveError, match="illegal file path"):
        unpack_hostile(tmp_path, tar)
    assert not (tmp_path / "target").exists()  # not even the directory we would create
    assert not (tmp_path / "evil").exists()


def test_long_pax_name_escaping_is_refused(tmp_path: Path) -> None:
    name = "../" + "x" * 150 + "/evil"  # only expressible via a PAX path record
    tar = hostile_tar([(tinfo(name), b"evil")])
    with pytest.raises(UnsafeArchiveError, match="illegal file path"):
        unpack_hostile(tmp_path, tar)


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        (tinfo("link", tarfile.SYMTYPE, linkname="/etc/passwd"), "symlink"),
        (tinfo("rel-link", tarfile.SYMTYPE, linkname="../../outside"), "symlink"),
        (tinfo("hard", tarfile.LNKTYPE, linkname="ok.txt"), "hard link"),
        (tinfo("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
        (tinfo("blk", tarfile.BLKTYPE, devmajor=8, devminor=0), "device"),
        (tinfo("fifo", tarfile.FIFOTYPE), "FIFO"),
        (tinfo("cont", tarfile.CONTTYPE), "type"),
    ],
)
def test_only_files_and_directories_are_accepted(entry: tarfile.TarInfo, what: str, tmp_path: Path) -> None:
    tar = hostile_tar([(tinfo("ok.txt"), b"fine"), (entry, None)])
    with pytest.raises(UnsafeArchiveError, match=f"unrecognized type in archive: '{entry.name}' is a {what}"):
        unpack_hostile(tmp_path, tar)
    assert not (tmp_path / "target").exists()


def test_symlink_in_target_cannot_redirect_a_file(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "evil")
    tar = hostile_tar([(tinfo("evil/pwned"), b"gotcha")])
    with pytest.raises(UnsafeArchiveError, match="evil/pwned"):
        unpack_hostile(tmp_path, tar, target)
    assert listdir_all(outside) == []
    assert listdir_all(target) == ["evil"]


def test_symlink_in_target_cannot_redirect_a_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "evil")
    tar = hostile_tar([(tinfo("evil", tarfile.DIRTYPE, 0o755), None), (tinfo("evil/pwned"), b"gotcha")])
    with pytest.raises((UnsafeArchiveError, ExistsError), match="evil"):
        unpack_hostile(tmp_path, tar, target)
    assert listdir_all(outside) == []


def test_symlinked_parent_two_levels_down(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    (target / "a").mkdir(parents=True)
    os.symlink(outside, target / "a" / "b")
    tar = hostile_tar([(tinfo("first.txt"), b"1"), (tinfo("a/b/c/deep.txt"), b"gotcha")])
    with pytest.raises(UnsafeArchiveError):
        unpack_hostile(tmp_path, tar, target)
    assert listdir_all(outside) == []
    assert not (target / "first.txt").exists()  # the commit is all or nothing


def test_existing_file_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("original")
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "f.txt")
    tar = hostile_tar([(tinfo("f.txt"), b"overwritten?")])
    with pytest.raises(ExistsError, match="not a regular file"):
        unpack_hostile(tmp_path, tar, target)
    assert outside.read_text() == "original"


@pytest.mark.parametrize(
    "entries",
    [
        [(tinfo("dup.txt"), b"one"), (tinfo("dup.txt"), b"two")],
        [(tinfo("x", tarfile.DIRTYPE, 0o755), None), (tinfo("x"), b"file")],
        [(tinfo("x"), b"file"), (tinfo("x", tarfile.DIRTYPE, 0o755), None)],
        [(tinfo("./a/b.txt"), b"one"), (tinfo("a//b.txt"), b"two")],
    ],
)
def test_duplicate_entries_are_refused(entries: list, tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchiveError):
        unpack_hostile(tmp_path, hostile_tar(entries))
    assert not (tmp_path / "target").exists()


def test_repeated_directory_entries_are_fine(tmp_path: Path) -> None:
    tar = hostile_tar(
        [
            (tinfo("d", tarfile.DIRTYPE, 0o755), None),
            (tinfo("d", tarfile.DIRTYPE, 0o755), None),
            (tinfo("d/f"), b"f"),
        ]
    )
    target = unpack_hostile(tmp_path, tar)
    assert (target / "d" / "f").read_bytes() == b"f"


@pytest.mark.parametrize("cut", [700, 1024, 1536 - 1])
def test_truncated_tar_is_refused(cut: int, tmp_path: Path) -> None:
    full = hostile_tar([(tinfo("big.bin"), b"z" * 2000)], fmt=tarfile.USTAR_FORMAT)
    with pytest.raises(UnsafeArchiveError):
        unpack_hostile(tmp_path, full[:cut])  # stored with its own (correct) digest
    assert not (tmp_path / "target").exists()


def test_garbage_layer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchiveError, match="not a valid tar"):
        unpack_hostile(tmp_path, b"this is not a tar archive at all" * 40)


def test_safe_member_path_normalises() -> None:
    assert safe_member_path("./a/b/c") == "a/b/c"
    assert safe_member_path("dir/") == "dir"
    # '..' is refused even where it would stay inside: one rule, no cleverness
    for bad in ("", ".", "./", "/x", "a/../..", "./a/./b/../c", "a/./b", "x\0y", "a//b", "a\x1bb", "C:x"):
        with pytest.raises(UnsafeArchiveError):
            safe_member_path(bad)


# ---- digest verification -------------------------------------------------------------------------


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("layer", "offset"), [(0, 600), (0, 0), (0, 148), (2, 520), (2, -1)])
def test_tampered_layer_blob_fails_and_writes_nothing(
    layer: int, offset: int, good_kit: str, tmp_path: Path
) -> None:
    kit = read_kit(tmp_path / "kit", "v1")
    digest = kit["manifest"]["layers"][layer]["digest"]
    blob = tmp_path / "kit" / "blobs" / "sha256" / digest.split(":")[1]
    flip(blob, offset if offset >= 0 else blob.stat().st_size + offset)
    target = tmp_path / "target"
    with pytest.raises(DigestMismatchError, match=digest):
        ops.unpack(good_kit, str(target))
    assert not target.exists()
    target.mkdir()
    with pytest.raises(DigestMismatchError, match=digest):
        ops.unpack(good_kit, str(target))
    assert listdir_all(target) == []


def test_tampered_config_and_manifest_are_detected(good_kit: str, tmp_path: Path) -> None:
    kit = read_kit(tmp_path / "kit", "v1")
    cdigest = kit["manifest"]["config"]["digest"]
    flip(tmp_path / "kit" / "blobs" / "sha256" / cdigest.split(":")[1], 10)
    with pytest.raises(DigestMismatchError, match=cdigest):
        ops.unpack(good_kit, str(tmp_path / "t1"))
    flip(tmp_path / "kit" / "blobs" / "sha256" / kit["digest"].split(":")[1], 5)
    with pytest.raises(DigestMismatchError, match=kit["digest"]):
        ops.unpack(good_kit, str(tmp_path / "t2"))
    assert not (tmp_path / "t1").exists() and not (tmp_path / "t2").exists()


def test_truncated_blob_on_disk_is_a_digest_error(good_kit: str, tmp_path: Path) -> None:
    kit = read_kit(tmp_path / "kit", "v1")
    digest = kit["manifest"]["layers"][1]["digest"]
    blob = tmp_path / "kit" / "blobs" / "sha256" / digest.split(":")[1]
    blob.write_bytes(blob.read_bytes()[:-512])
    with pytest.raises(DigestMismatchError, match=digest):
        ops.unpack(good_kit, str(tmp_path / "target"))
    assert not (tmp_path / "target").exists()


# ---- a normal unpack -----------------------------------------------------------------------------


def test_unpack_places_files_with_modes_and_writes_kitfile(good_kit: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    written = ops.unpack(good_kit, str(target))
    assert sorted(written) == [
        "Kitfile",
        "data/eval.csv",
        "data/train.csv",
        "model/sub/c.json",
        "model/w.bin",
        "src/run.py",
    ]
    assert (target / "model" / "w.bin").read_text() == "weights"
    assert stat.S_IMODE((target / "src" / "run.py").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "model" / "w.bin").stat().st_mode) == 0o644
    assert not [p for p in target.iterdir() if p.name.startswith(".modelkit-unpack")]
    # the Kitfile is YAML without layer digests, but parameters keep their own 'digest' keys
    kf = Kitfile.parse((target / "Kitfile").read_text())
    assert kf.model.layer is None and kf.model.parameters == {
        "digest": "keep-me",
        "nested": {"diffId": "keep-me-too"},
    }
    assert kf.to_json() == Kitfile.parse(GOOD_KITFILE).to_json()
    assert b"sha256:" not in (target / "Kitfile").read_bytes()


def test_never_overwrite_unless_asked(good_kit: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    ops.unpack(good_kit, str(target))
    (target / "model" / "w.bin").write_text("local edit")
    (target / "data" / "train.csv").unlink()
    with pytest.raises(ExistsError, match=r"already exists.*use --overwrite"):
        ops.unpack(good_kit, str(target))
    assert (target / "model" / "w.bin").read_text() == "local edit"
    assert not (target / "data" / "train.csv").exists()  # nothing was written by the failed run
    ops.unpack(good_kit, str(target), ignore_existing=True)
    assert (target / "model" / "w.bin").read_text() == "local edit"
    assert (target / "data" / "train.csv").read_text() == "t"
    ops.unpack(good_kit, str(target), overwrite=True)
    assert (target / "model" / "w.bin").read_text() == "weights"


def test_existing_kitfile_rules(good_kit: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    ops.unpack(good_kit, str(target), filters=["kitfile"])
    assert listdir_all(target) == ["Kitfile"]
    ops.unpack(good_kit, str(target), filters=["kitfile"])  # same bytes: fine
    (target / "Kitfile").write_text("manifestVersion: 1.0.0\n")
    with pytest.raises(ModelKitError, match="Kitfile already exists"):
        ops.unpack(good_kit, str(target), filters=["kitfile"])
    ops.unpack(good_kit, str(target), filters=["kitfile"], overwrite=True)
    assert Kitfile.parse((target / "Kitfile").read_text()).package.name == "good"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["model,datasets"], ["data/eval.csv", "data/train.csv", "model/sub/c.json", "model/w.bin"]),
        (["model", "datasets"], ["data/eval.csv", "data/train.csv", "model/sub/c.json", "model/w.bin"]),
        (["datasets:eval"], ["data/eval.csv"]),
        (["datasets:data/train.csv"], ["data/train.csv"]),
        (["code"], ["src/run.py"]),
        (["code,kitfile"], ["Kitfile", "src/run.py"]),
        (["docs"], []),
    ],
)
def test_filters(filters: list[str], expected: list[str], good_kit: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    ops.unpack(good_kit, str(target), filters=filters)
    got = (
        sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
        if target.exists()
        else []
    )
    assert got == expected


def test_invalid_filter(good_kit: str, tmp_path: Path) -> None:
    with pytest.raises(ModelKitError, match="invalid filter"):
        ops.unpack(good_kit, str(tmp_path / "t"), filters=["weights"])


def test_config_and_manifest_consistency_checks(tmp_path: Path) -> None:
    tar = hostile_tar([(tinfo("a.txt"), b"a")])
    layout = tmp_path / "l"
    layout_with_layers(
        layout,
        [("code", tar, {"path": "a.txt"})],
        kitfile_extra={"docs": [{"path": "d", "digest": "sha256:" + "0" * 64}]},
    )
    with pytest.raises(ModelKitError, match="not found in manifest"):
        ops.unpack(f"oci:{layout}:v1", str(tmp_path / "t"))
    layout2 = tmp_path / "l2"
    layout_with_layers(layout2, [("code", tar, {"path": "a.txt"})], kitfile_extra={"docs": [{"path": "d"}]})
    with pytest.raises(ModelKitError, match="invalid digests"):
        ops.unpack(f"oci:{layout2}:v1", str(tmp_path / "t"))


def test_not_a_modelkit(tmp_path: Path) -> None:
    from mlflow_plugin._internal.gojson import dumps
    from mlflow_plugin.storage.layout import LayoutRepository

    repo = LayoutRepository(str(tmp_path / "l"), create=True)
    c = repo.push_bytes(b"{}", "application/vnd.oci.image.config.v1+json")
    repo.put_manifest(
        dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": c.to_json(),
                "layers": [],
            }
        ),
        tag="img",
    )
    with pytest.raises(ModelKitError, match="not a ModelKit"):
        ops.unpack(f"oci:{tmp_path / 'l'}:img", str(tmp_path / "t"))


def test_extract_layer_directly_with_gzip(tmp_path: Path) -> None:
    import gzip

    tar = hostile_tar([(tinfo("d", tarfile.DIRTYPE, 0o750), None), (tinfo("d/f", mode=0o4755), b"data")])
    target = tmp_path / "t"
    with Staging(str(target)) as st:
        names = extract_layer(
            io.BytesIO(gzip.compress(tar)), "application/vnd.kitops.modelkit.code.v1.tar+gzip", st
        )
        st.commit()
    assert names == ["d/f"] and (target / "d" / "f").read_bytes() == b"data"
    assert stat.S_IMODE((target / "d" / "f").stat().st_mode) == 0o755  # setuid dropped
    with pytest.raises(UnsafeArchiveError, match="gzip"), Staging(str(tmp_path / "t2")) as st:
        extract_layer(
            io.BytesIO(b"\x1f\x8b\x08\x00garbage" * 10),
            "application/vnd.kitops.modelkit.code.v1.tar+gzip",
            st,
        )
    assert not (tmp_path / "t2").exists()
    with pytest.raises(ModelKitError, match="not a ModelKit tar layer"), Staging(str(tmp_path / "t3")) as st:
        extract_layer(io.BytesIO(tar), "application/octet-stream", st)


def test_unpacked_kitfile_round_trips_tricky_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    kitfile = (
        "manifestVersion: 1.0.0\npackage:\n  name: 'yes'\n  version: 1.0\n  authors: [on, '017', ~]\n"
        "model:\n  path: m\n  parameters:\n"
        "    a: [yes, on, 0o17, 017, 1e3, 1.0, 0xFF, 2024-01-01, ~, '~', '']\n"
        "    b: {'1.0': '0xFF', '<&>': \"multi\\nline\", '#h': ': c', t: 'true', n: 'null',\n"
        "        d: '2024-01-01'}\n"
        "    f: [1e-7, 1e21, 2.5e-5, 12:30]\n"
    )
    ctx = make_tree(tmp_path / "ctx", {"Kitfile": kitfile, "m/w": "w"})
    ops.pack(str(ctx), f"oci:{tmp_path / 'kit'}:v1")
    ops.unpack(f"oci:{tmp_path / 'kit'}:v1", str(tmp_path / "t"))
    back = Kitfile.parse((tmp_path / "t" / "Kitfile").read_text())
    assert back.to_json() == Kitfile.parse(kitfile).to_json()


def test_prompts_unpack_and_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_env(monkeypatch)
    kitfile = (
        "manifestVersion: 1.0.0\ncode:\n  - path: src\nprompts:\n  - name: sys\n    path: prompts/sys.md\n"
    )
    ctx = make_tree(
        tmp_path / "ctx", {"Kitfile": kitfile, "src/a.py": "a", "prompts/sys.md": "You are helpful."}
    )
    ops.pack(str(ctx), f"oci:{tmp_path / 'kit'}:v1")
    ops.unpack(f"oci:{tmp_path / 'kit'}:v1", str(tmp_path / "t"), filters=["prompts"])
    assert listdir_all(tmp_path / "t") == ["prompts", "prompts/sys.md"]
    ops.unpack(f"oci:{tmp_path / 'kit'}:v1", str(tmp_path / "t2"), filters=["code"])
    assert listdir_all(tmp_path / "t2") == ["src", "src/a.py"]


def test_legacy_config_without_digests_maps_layers_by_order(tmp_path: Path) -> None:
    import json

    from mlflow_plugin._internal.gojson import dumps
    from mlflow_plugin.storage.layout import LayoutRepository

    repo = LayoutRepository(str(tmp_path / "l"), create=True)
    blobs = [
        ("model", hostile_tar([(tinfo("m/w"), b"w")])),
        ("code", hostile_tar([(tinfo("c1/a"), b"a")])),
        ("code", hostile_tar([(tinfo("c2/b"), b"b")])),
    ]
    layers = []
    for kind, blob in blobs:
        d = repo.push_blob_chunks([blob])[0]
        layers.append(
            {"mediaType": f"application/vnd.kitops.modelkit.{kind}.v1.tar", "digest": d, "size": len(blob)}
        )
    cfg = json.dumps(
        {"manifestVersion": "1.0.0", "model": {"path": "m"}, "code": [{"path": "c1"}, {"path": "c2"}]}
    )
    c = repo.push_bytes(cfg.encode(), "application/vnd.kitops.modelkit.config.v1+json")
    repo.put_manifest(dumps({"schemaVersion": 2, "config": c.to_json(), "layers": layers}), tag="old")
    written = ops.unpack(f"oci:{tmp_path / 'l'}:old", str(tmp_path / "t"))
    assert sorted(written) == ["Kitfile", "c1/a", "c2/b", "m/w"]
