"""Format scanners: containers, Keras, protobuf (ONNX / TensorFlow), safetensors, GGUF, secrets.

Every sample is built here, small and deterministic; hostile ones (bombs, overlaps, header
tricks, truncation, deep nesting, header bombs) must give findings, never crashes or hangs,
and the benign ones must give no finding at or above MEDIUM. Pickle findings belong to the
pickle scanner and are not asserted here: only that a pickle member was recorded.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import struct
import tarfile
import zipfile
import zlib

import pytest

from mlflow_plugin.scanner import containers
from mlflow_plugin.scanner.api import _new_context, scan_directory, scan_file
from mlflow_plugin.scanner.context import Limits
from mlflow_plugin.scanner.keras_scan import check_keras_config, scan_hdf5
from mlflow_plugin.scanner.protobuf_scan import _ld, _vi, scan_protobuf
from mlflow_plugin.scanner.report import ScanReport, Severity
from mlflow_plugin.scanner.secrets import scan_json, scan_params, scan_text
from mlflow_plugin.scanner.tensor_formats import scan_gguf, scan_safetensors

# --------------------------------------------------------------------------- helpers


def run(fn, data: bytes, name: str = "x", limits: Limits | None = None) -> ScanReport:
    ctx = _new_context(name, limits, None)
    fn(ctx, name, io.BytesIO(data), len(data))
    return ctx.report_obj


def via_file(tmp_path, name: str, data: bytes, limits: Limits | None = None) -> ScanReport:
    p = tmp_path / name
    p.write_bytes(data)
    return scan_file(str(p), limits=limits)


def rules(report: ScanReport, at_least: Severity = Severity.INFO) -> set[str]:
    return {f.rule for f in report.findings if f.severity >= at_least}


def serious(report: ScanReport) -> list:
    return [f for f in report.findings if f.severity >= Severity.MEDIUM]


def find(report: ScanReport, rule: str):
    hits = [f for f in report.findings if f.rule == rule]
    assert hits, f"no {rule} in {[(f.rule, f.message) for f in report.findings]}"
    return hits[0]


def formats(report: ScanReport) -> dict[str, str]:
    return {r.path: r.format for r in report.files}


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zbuild(entries: list[dict], prefix: bytes = b"") -> bytes:
    """A zip written by hand so headers can lie. Entry keys: name, data, method (0/8), flags,
    lname (local name), lflags, usize, csize, offset (central offset override), central (bool)."""
    out = bytearray(prefix)
    cd = bytearray()
    n_central = 0
    for e in entries:
        data = e.get("data", b"")
        method = e.get("method", 0)
        payload = e["raw"] if "raw" in e else deflate(data) if method == 8 else data
        crc = zlib.crc32(data)
        usize = e.get("usize", len(data))
        csize = e.get("csize", len(payload))
        flags = e.get("flags", 0)
        name = e["name"].encode()
        lname = e.get("lname", e["name"]).encode()
        offset = len(out)
        if not e.get("no_local"):
            out += struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                e.get("lflags", flags),
                method,
                0,
                0x21,
                crc,
                csize,
                usize,
                len(lname),
                0,
            )
            out += lname + payload
        if e.get("central", True):
            n_central += 1
            cd += struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                0x31E,
                20,
                flags,
                method,
                0,
                0x21,
                crc,
                csize,
                usize,
                len(name),
                0,
                0,
                0,
                0,
                e.get("eattr", 0),
                e.get("offset", offset),
            )
            cd += name
    cd_off = len(out)
    out += cd
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n_central, n_central, len(cd), cd_off, 0)
    return bytes(out)


PICKLE = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."  # {'a': 1}, protocol 2


# --------------------------------------------------------------------------- zip


def test_benign_zip_of_text_files(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.md", "# model\nTrained on iris.\n")
        z.writestr("data/train.csv", "a,b,c\n" + "1,2,3\n" * 500)
        z.writestr("sub/", "")
    r = via_file(tmp_path, "bundle.zip", buf.getvalue())
    assert serious(r) == []
    f = formats(r)
    assert f["bundle.zip"] == "zip"
    assert f["bundle.zip!README.md"] == "text"
    assert f["bundle.zip!data/train.csv"] == "text"


def test_real_npz_from_numpy_is_clean(tmp_path):
    np = pytest.importorskip("numpy")
    p = tmp_path / "arrays.npz"
    np.savez(p, w=np.arange(100, dtype=np.float32).reshape(10, 10), b=np.zeros(10))
    q = tmp_path / "packed.npz"
    np.savez_compressed(q, w=np.ones((64, 64)))
    for path in (p, q):
        r = scan_file(str(path))
        assert serious(r) == [], [(f.rule, f.message) for f in r.findings]
        assert any(fmt == "npy" for fmt in formats(r).values())


@pytest.mark.parametrize("name", ["../evil.pkl", "/etc/cron.d/x", "C:\\Windows\\x.dll", "a/../../b"])
def test_zip_path_traversal_names(name):
    r = run(containers.scan_zip, zbuild([{"name": name, "data": b"hello"}]), "t.zip")
    f = find(r, "zip.path-traversal")
    assert f.severity == Severity.HIGH


def test_zip_bomb_by_ratio_is_found_while_decompressing(monkeypatch):
    monkeypatch.setattr(containers, "RATIO_FLOOR", 1 << 20)
    data = bytes(8 << 20)
    # the declared size is honest-looking but small: the bomb must be caught while inflating
    blob = zbuild([{"name": "zeros.bin", "data": data, "method": 8, "usize": 1000}])
    r = run(containers.scan_zip, blob, "b.zip")
    assert find(r, "zip.size-mismatch").severity == Severity.HIGH
    assert "b.zip!zeros.bin" not in formats(r)
    # honest declared size: refused before inflating
    r = run(containers.scan_zip, zbuild([{"name": "zeros.bin", "data": data, "method": 8}]), "b.zip")
    assert find(r, "scan.bomb").severity == Severity.HIGH
    # declared size unknown to the check (hidden entry): the budget stops it
    blob = zbuild([{"name": "zeros.bin", "data": data, "method": 8, "usize": 0xFFFFFFFE}])
    r = run(containers.scan_zip, blob, "b.zip", Limits(max_member_size=4 << 20))
    assert find(r, "scan.bomb").severity == Severity.HIGH


def test_zip_bomb_member_size_limit():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.txt", "x" * (2 << 20))
    r = run(containers.scan_zip, buf.getvalue(), "z.zip", Limits(max_member_size=1 << 20))
    f = find(r, "scan.bomb")
    assert f.severity == Severity.HIGH and "member limit" in f.message


def test_nested_zip_quine_like_depth_is_bounded(tmp_path):
    inner = b"leaf text\n"
    name = "leaf.txt"
    for i in range(12):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, inner)
        inner, name = buf.getvalue(), f"level{i}.zip"
    r = via_file(tmp_path, "nest.zip", inner)
    f = find(r, "scan.limit.depth")
    assert f.severity == Severity.MEDIUM
    assert max(p.count("!") for p in formats(r)) <= Limits().max_depth


def test_zip_overlapping_entries_42zip_style():
    kernel = bytes(2 << 20)
    entries = [{"name": "k0", "data": kernel, "method": 8}]
    # 50 more central entries that all reuse the first local header's data
    entries += [
        {"name": f"k{i}", "data": kernel, "method": 8, "offset": 0, "no_local": True} for i in range(1, 51)
    ]
    r = run(containers.scan_zip, zbuild(entries), "o.zip")
    assert find(r, "zip.overlap").severity == Severity.HIGH
    # the shared data was decompressed and scanned once, not 51 times
    assert sum(1 for p in formats(r) if p.startswith("o.zip!")) == 1


def test_zip_entry_hidden_inside_another_entry_is_scanned():
    hidden_name = b"evil.pkl"
    hidden_local = (
        struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            0,
            0,
            0,
            0x21,
            zlib.crc32(PICKLE),
            len(PICKLE),
            len(PICKLE),
            len(hidden_name),
            0,
        )
        + hidden_name
        + PICKLE
    )
    outer_name = "cover.bin"
    entries = [
        {"name": outer_name, "data": hidden_local},
        {"name": "evil.pkl", "data": PICKLE, "offset": 30 + len(outer_name), "no_local": True},
    ]
    r = run(containers.scan_zip, zbuild(entries), "h.zip")
    assert find(r, "zip.overlap").severity == Severity.HIGH
    assert formats(r)["h.zip!evil.pkl"] == "pickle"


def test_truncated_zip_is_a_finding_and_early_members_are_scanned():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "first member\n")
        z.writestr("b.bin", os.urandom(4000))
    data = buf.getvalue()[:-200]
    r = run(containers.scan_zip, data, "t.zip")
    assert find(r, "zip.malformed").severity == Severity.MEDIUM
    assert formats(r).get("t.zip!a.txt") == "text"


def test_zip_local_name_differs_from_central_name_cve_2025_1944():
    blob = zbuild([{"name": "archive/data.pkl", "lname": "archive/data.pkx", "data": PICKLE}])
    with pytest.raises(zipfile.BadZipFile):  # what stops zipfile-based scanners
        zipfile.ZipFile(io.BytesIO(blob)).read("archive/data.pkl")
    r = run(containers.scan_zip, blob, "m.pt")
    assert find(r, "zip.header-mismatch").severity == Severity.HIGH
    assert formats(r)["m.pt!archive/data.pkl"] == "pickle"  # scanned anyway


@pytest.mark.parametrize("flags", [0x01, 0x20, 0x40])
def test_zip_flag_bit_trick_cve_2025_1945(flags):
    for method in (0, 8):
        blob = zbuild([{"name": "archive/data.pkl", "data": PICKLE, "flags": flags, "method": method}])
        r = run(containers.scan_zip, blob, "m.pt")
        assert find(r, "zip.flag-mismatch").severity == Severity.HIGH
        assert formats(r)["m.pt!archive/data.pkl"] == "pickle"


def test_zip_really_encrypted_member():
    noise = bytes((i * 73 + 41) % 256 for i in range(512))
    r = run(containers.scan_zip, zbuild([{"name": "secret.bin", "data": noise, "flags": 1}]), "e.zip")
    assert find(r, "zip.encrypted").severity == Severity.MEDIUM
    r = run(containers.scan_zip, zbuild([{"name": "s2", "raw": noise, "flags": 1, "method": 8}]), "e.zip")
    assert find(r, "zip.encrypted").severity == Severity.MEDIUM
    r = run(containers.scan_zip, zbuild([{"name": "s3", "raw": noise, "method": 8}]), "e.zip")
    assert find(r, "zip.corrupt-member").severity == Severity.MEDIUM


def test_zip_local_entry_missing_from_central_directory():
    blob = zbuild(
        [{"name": "ok.txt", "data": b"visible"}, {"name": "ghost.pkl", "data": PICKLE, "central": False}]
    )
    r = run(containers.scan_zip, blob, "g.zip")
    assert find(r, "zip.hidden-entry").severity == Severity.MEDIUM
    assert formats(r)["g.zip!ghost.pkl"] == "pickle"


def test_zip_duplicate_names_and_symlink():
    blob = zbuild([{"name": "data.pkl", "data": PICKLE}, {"name": "data.pkl", "data": b"plain text"}])
    r = run(containers.scan_zip, blob, "d.zip")
    assert find(r, "zip.duplicate-name").severity == Severity.MEDIUM
    link = zbuild([{"name": "link", "data": b"../../etc/passwd", "eattr": (0o120777 << 16)}])
    r = run(containers.scan_zip, link, "l.zip")
    assert find(r, "zip.symlink").severity == Severity.HIGH


def test_zip_member_count_limit():
    blob = zbuild([{"name": f"f{i}.txt", "data": b"x"} for i in range(10)])
    r = run(containers.scan_zip, blob, "m.zip", Limits(max_members=5))
    assert "scan.limit.members" in rules(r)
    assert sum(1 for p in formats(r) if "!" in p) == 5


def test_zip_garbage_and_central_pointing_nowhere():
    r = run(containers.scan_zip, b"PK\x03\x04" + os.urandom(64), "g.zip")
    assert "zip.malformed" in rules(r)
    blob = zbuild([{"name": "a.txt", "data": b"abc", "offset": 5}])
    r = run(containers.scan_zip, blob, "n.zip")
    assert "zip.header-mismatch" in rules(r)


def test_pytorch_zip_records_pickles_and_skips_storages(tmp_path):
    storage = b"\x80\x02" + bytes(range(200))  # raw tensor bytes that happen to look like a pickle
    blob = zbuild(
        [
            {"name": "archive/data.pkl", "data": PICKLE},
            {"name": "archive/byteorder", "data": b"little"},
            {"name": "archive/data/0", "data": storage},
            {"name": "archive/.data/version", "data": b"3\n"},
            {"name": "archive/extra.pkl", "data": PICKLE},
        ]
    )
    r = via_file(tmp_path, "model.pt", blob)
    f = formats(r)
    assert f["model.pt!archive/data.pkl"] == "pickle"
    assert f["model.pt!archive/extra.pkl"] == "pickle"  # every pickle, whatever its name
    assert f["model.pt!archive/data/0"] == "tensor-data"
    assert not [x for x in r.findings if x.path == "model.pt!archive/data/0"]


def _keras_zip(config: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.3.3", "date_saved": "2024-01-01"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"")
    return buf.getvalue()


def _k3(cls: str, module: str = "keras.layers", config=None, registered=None) -> dict:
    return {
        "module": module,
        "class_name": cls,
        "config": config if config is not None else {"name": cls.lower()},
        "registered_name": registered,
    }


BENIGN_K3 = _k3(
    "Sequential",
    "keras",
    {
        "name": "seq",
        "layers": [
            _k3("InputLayer", config={"batch_shape": [None, 4], "name": "input"}),
            _k3(
                "Dense",
                config={
                    "name": "dense",
                    "units": 3,
                    "activation": "relu",
                    "kernel_initializer": _k3("GlorotUniform", "keras.initializers", {"seed": None}),
                },
            ),
            _k3(
                "Activation",
                config={
                    "name": "act",
                    "activation": {
                        "module": "keras.src.activations",
                        "class_name": "function",
                        "config": "softmax",
                        "registered_name": "softmax",
                    },
                },
            ),
        ],
    },
)


def test_keras_v3_benign(tmp_path):
    r = via_file(tmp_path, "model.keras", _keras_zip(BENIGN_K3))
    assert serious(r) == [], [(f.rule, f.message) for f in r.findings]


def test_keras_v3_lambda_custom_objects_and_gadgets(tmp_path):
    lam = _k3(
        "Lambda",
        config={
            "name": "sneaky",
            "function": {
                "class_name": "__lambda__",
                "config": {"code": "4wAAAAAAAABvcy5zeXN0ZW0=", "defaults": None},
            },
        },
    )
    custom = _k3("MyLayer", "my_package.layers", {"name": "mine"}, "MyPackage>MyLayer")
    osfn = {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
    gadget = {
        "module": "keras.utils",
        "class_name": "function",
        "config": "get_file",
        "registered_name": None,
    }
    cfg = _k3(
        "Functional",
        "keras",
        {
            "name": "m",
            "layers": [
                lam,
                custom,
                _k3("Activation", config={"activation": osfn}),
                _k3("Activation", config={"activation": gadget}),
            ],
        },
    )
    r = via_file(tmp_path, "evil.keras", _keras_zip(cfg))
    lamf = find(r, "keras.lambda")
    assert lamf.severity == Severity.CRITICAL and "sneaky" in lamf.evidence and "bytecode" in lamf.evidence
    assert lamf.path == "evil.keras!config.json"
    assert find(r, "keras.custom-object").severity == Severity.MEDIUM
    assert find(r, "keras.unsafe-module").severity == Severity.CRITICAL
    assert find(r, "keras.gadget").severity == Severity.HIGH


def test_keras_config_malformed_json():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", '{"class_name": ')
        z.writestr("metadata.json", "{}")
    r = run(containers.scan_zip, buf.getvalue(), "m.keras")
    assert find(r, "keras.config").severity == Severity.MEDIUM


def test_keras_tfoplambda_file_op():
    ctx = _new_context("m", None, None)
    cfg = {
        "class_name": "Functional",
        "config": {
            "layers": [
                {"class_name": "TFOpLambda", "config": {"name": "w", "function": "io.write_file"}},
                {"class_name": "TFOpLambda", "config": {"name": "ok", "function": "math.add"}},
            ]
        },
    }
    check_keras_config(ctx, "m", cfg, "h5")
    assert [f.rule for f in ctx.report_obj.findings] == ["keras.tfop"]


def test_zip_with_pickle_member_end_to_end(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("weights/model.bin", PICKLE)
    r = via_file(tmp_path, "pack.zip", buf.getvalue())
    assert formats(r)["pack.zip!weights/model.bin"] == "pickle"


# --------------------------------------------------------------------------- tar


def _tar(members: list[tarfile.TarInfo], datas: list[bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, d in zip(members, datas, strict=True):
            if d is not None:
                ti.size = len(d)
                t.addfile(ti, io.BytesIO(d))
            else:
                t.addfile(ti)
    return buf.getvalue()


def test_benign_tar_of_text_files(tmp_path):
    blob = _tar(
        [tarfile.TarInfo("model/README.md"), tarfile.TarInfo("model/params.json")],
        [b"# readme\n", json.dumps({"C": 1.0, "max_iter": 100}).encode()],
    )
    r = via_file(tmp_path, "m.tar", blob)
    assert serious(r) == []
    f = formats(r)
    assert (
        f["m.tar"] == "tar"
        and f["m.tar!model/README.md"] == "text"
        and f["m.tar!model/params.json"] == "json"
    )


def test_tar_hostile_entries():
    sym = tarfile.TarInfo("model/link")
    sym.type, sym.linkname = tarfile.SYMTYPE, "../../../home/victim/.ssh/authorized_keys"
    hard = tarfile.TarInfo("model/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/shadow"
    dev = tarfile.TarInfo("model/dev")
    dev.type = tarfile.CHRTYPE
    ok_link = tarfile.TarInfo("model/alias")
    ok_link.type, ok_link.linkname = tarfile.SYMTYPE, "README.md"
    suid = tarfile.TarInfo("model/run.sh")
    suid.mode = 0o4755
    blob = _tar(
        [tarfile.TarInfo("../escape.txt"), sym, hard, dev, ok_link, suid],
        [b"x", None, None, None, None, b"#!"],
    )
    r = run(containers.scan_tar, blob, "h.tar")
    assert find(r, "tar.path-traversal").severity == Severity.HIGH
    links = [f for f in r.findings if f.rule == "tar.link-escape"]
    assert {f.path for f in links} == {"h.tar!model/link", "h.tar!model/hard"}
    assert find(r, "tar.special-file").severity == Severity.MEDIUM
    assert find(r, "tar.setuid").severity == Severity.LOW


def test_tar_truncated_and_member_limit():
    blob = _tar([tarfile.TarInfo(f"f{i}.txt") for i in range(6)], [b"data" * 300] * 6)
    r = run(containers.scan_tar, blob[:3000], "t.tar")
    assert "tar.malformed" in rules(r) or "tar.truncated" in rules(r)
    r = run(containers.scan_tar, blob, "t.tar", Limits(max_members=3))
    assert "scan.limit.members" in rules(r)


# --------------------------------------------------------------------------- gzip / bz2 / xz / zstd


def test_gzipped_csv_is_clean_and_named_after_the_file(tmp_path):
    csv = b"sepal_length,sepal_width\n" + b"5.1,3.5\n" * 1000
    r = via_file(tmp_path, "iris.csv.gz", gzip.compress(csv))
    assert serious(r) == []
    assert formats(r)["iris.csv.gz!iris.csv"] == "text"


def test_every_single_stream_codec(tmp_path):
    zstd = pytest.importorskip("zstandard")
    payload = b"hello world\n" * 100
    for name, blob in (
        ("a.txt.bz2", bz2.compress(payload)),
        ("a.txt.xz", lzma.compress(payload)),
        ("a.txt.zst", zstd.ZstdCompressor().compress(payload)),
        ("blob", gzip.compress(payload)),
        ("a.joblib", zlib.compress(payload)),
        ("b.joblib", lzma.compress(payload, format=lzma.FORMAT_ALONE)),
    ):
        r = via_file(tmp_path, name, blob)
        assert serious(r) == [], name
        inner = [p for p in formats(r) if "!" in p]
        assert len(inner) == 1 and formats(r)[inner[0]] == "text", (name, formats(r))
    assert "blob!<decompressed>" in formats(via_file(tmp_path, "blob", gzip.compress(payload)))


def test_gzip_bomb(monkeypatch, tmp_path):
    monkeypatch.setattr(containers, "RATIO_FLOOR", 1 << 20)
    blob = gzip.compress(bytes(16 << 20))
    r = via_file(tmp_path, "z.gz", blob)
    f = find(r, "scan.bomb")
    assert f.severity == Severity.HIGH
    assert not any("!" in p for p in formats(r))


def test_truncated_and_trailing_gzip(tmp_path):
    blob = gzip.compress(os.urandom(5000))
    r = via_file(tmp_path, "t.bin.gz", blob[: len(blob) // 2])
    assert find(r, "compressed.truncated").severity == Severity.MEDIUM
    r = via_file(tmp_path, "t2.txt.gz", gzip.compress(b"abc\n") + b"NOT-GZIP-TRAILER")
    assert find(r, "compressed.trailing-data").severity == Severity.LOW
    r = via_file(tmp_path, "multi.txt.gz", gzip.compress(b"one\n") + gzip.compress(b"two\n") + bytes(16))
    assert serious(r) == [] and "compressed.trailing-data" not in rules(r)


def test_tgz_streams_large_members_without_spooling(monkeypatch, tmp_path):
    monkeypatch.setattr(containers, "SPOOL_MEM", 1024)
    blob = _tar(
        [tarfile.TarInfo("big.txt"), tarfile.TarInfo("small.txt")], [b"line of text\n" * 2000, b"hi\n"]
    )
    r = via_file(tmp_path, "m.tgz", gzip.compress(blob))
    f = formats(r)
    assert f["m.tgz!m.tar"] == "tar"
    assert f["m.tgz!m.tar!big.txt"] == "text" and f["m.tgz!m.tar!small.txt"] == "text"
    assert serious(r) == []


# --------------------------------------------------------------------------- 7z


def test_7z_members_are_scanned(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    p = tmp_path / "bundle.7z"
    with py7zr.SevenZipFile(p, "w") as z:
        z.writestr(b"# notes\n", "notes.md")
        z.writestr(PICKLE, "model.pkl")
    r = scan_file(str(p))
    f = formats(r)
    assert f["bundle.7z"] == "7z"
    assert f["bundle.7z!notes.md"] == "text" and f["bundle.7z!model.pkl"] == "pickle"
    assert not [x for x in r.findings if x.rule.startswith("7z.")]


def test_7z_malformed(tmp_path):
    r = via_file(tmp_path, "bad.7z", b"7z\xbc\xaf\x27\x1c" + os.urandom(100))
    assert "7z.malformed" in rules(r) or "7z.encrypted" in rules(r)


# --------------------------------------------------------------------------- HDF5 (Keras .h5)


def _h5(tmp_path, attrs: dict) -> bytes:
    h5py = pytest.importorskip("h5py")
    p = tmp_path / "tmp.h5"
    with h5py.File(p, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        f.create_dataset("model_weights/dense/kernel", data=[[1.0, 2.0]])
    return p.read_bytes()


def test_h5_keras2_lambda_and_custom_layer(tmp_path):
    cfg = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "Dense", "config": {"name": "d", "units": 2}},
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "payload",
                        "function": ["4wAAAG9zLnN5c3RlbQ==", None, None],
                        "function_type": "lambda",
                        "module": "__main__",
                    },
                },
                {"class_name": "MyAttention", "config": {"name": "att"}},
            ],
        },
    }
    r = via_file(
        tmp_path, "model.h5", _h5(tmp_path, {"model_config": json.dumps(cfg), "keras_version": "2.12.0"})
    )
    f = find(r, "keras.lambda")
    assert f.severity == Severity.CRITICAL and "payload" in f.evidence and "bytecode" in f.evidence
    assert find(r, "keras.custom-object").severity == Severity.MEDIUM


def test_h5_benign_and_malformed(tmp_path):
    cfg = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "Dense", "config": {"units": 1}}]},
    }
    train = {"optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}, "loss": "mse"}
    r = via_file(
        tmp_path,
        "ok.h5",
        _h5(tmp_path, {"model_config": json.dumps(cfg), "training_config": json.dumps(train)}),
    )
    assert serious(r) == []
    r = via_file(tmp_path, "badjson.h5", _h5(tmp_path, {"model_config": "{broken"}))
    assert find(r, "keras.config").severity == Severity.MEDIUM
    r = via_file(tmp_path, "junk.h5", b"\x89HDF\r\n\x1a\n" + os.urandom(300))
    assert "hdf5.malformed" in rules(r)


def test_h5_direct_call_on_nonseekable_stream(tmp_path):
    data = _h5(
        tmp_path, {"model_config": json.dumps({"class_name": "Lambda", "config": {"function": "YWJj"}})}
    )

    class NoSeek(io.RawIOBase):
        def __init__(self, b):
            self.b = io.BytesIO(b)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buf):
            d = self.b.read(len(buf))
            buf[: len(d)] = d
            return len(d)

    ctx = _new_context("s.h5", None, None)
    scan_hdf5(ctx, "s.h5", NoSeek(data), len(data))
    assert "keras.lambda" in rules(ctx.report_obj)


# --------------------------------------------------------------------------- protobuf: ONNX


def _onnx(graph: bytes, opsets: list[bytes] | None = None) -> bytes:
    opsets = opsets if opsets is not None else [_vi(2, 17)]
    return _vi(1, 8) + _ld(2, b"pytorch") + _ld(7, graph) + b"".join(_ld(8, o) for o in opsets)


def _ext_tensor(name: bytes, location: bytes) -> bytes:
    return (
        _ld(8, name)
        + _vi(2, 1)
        + _ld(13, _ld(1, b"location") + _ld(2, location))
        + _ld(13, _ld(1, b"offset") + _ld(2, b"0"))
        + _vi(14, 1)
    )


def _node(op: bytes, domain: bytes = b"") -> bytes:
    return _ld(1, b"x") + _ld(2, b"y") + _ld(4, op) + (_ld(7, domain) if domain else b"")


def test_onnx_external_data_escapes(tmp_path):
    graph = (
        _ld(1, _node(b"MatMul"))
        + _ld(5, _ext_tensor(b"w1", b"weights.bin"))
        + _ld(5, _ext_tensor(b"w2", b"../../../../etc/passwd"))
        + _ld(5, _ext_tensor(b"w3", b"/home/victim/.ssh/id_rsa"))
    )
    r = via_file(tmp_path, "model.onnx", _onnx(graph))
    hits = [f for f in r.findings if f.rule == "onnx.external-data"]
    assert len(hits) == 2 and all(f.severity == Severity.HIGH for f in hits)
    assert any("passwd" in f.evidence for f in hits) and any("id_rsa" in f.evidence for f in hits)


def test_onnx_benign_and_custom_domains(tmp_path):
    graph = (
        _ld(1, _node(b"Gemm"))
        + _ld(1, _node(b"FusedGemm", b"com.microsoft"))
        + _ld(1, _node(b"Evil", b"my.custom"))
        + _ld(5, _ld(8, b"w") + _vi(2, 1) + _ld(9, bytes(64)))
    )
    r = via_file(tmp_path, "m.onnx", _onnx(graph, [_vi(2, 17), _ld(1, b"com.microsoft") + _vi(2, 1)]))
    doms = {f.evidence.split(" ")[0]: f.severity for f in r.findings if f.rule == "onnx.custom-domain"}
    # an unknown domain needs a native operator library from outside the model: blocks by default
    assert doms == {"com.microsoft": Severity.INFO, "my.custom": Severity.HIGH}
    assert {f.rule for f in r.findings if f.severity >= Severity.MEDIUM} == {"onnx.custom-domain"}
    r = via_file(
        tmp_path, "clean.onnx", _onnx(_ld(1, _node(b"Relu")) + _ld(5, _ext_tensor(b"w", b"data/w.bin")))
    )
    assert r.findings == []


def test_onnx_subgraph_external_data_and_deep_nesting():
    inner = _ld(5, _ext_tensor(b"deep", b"..\\..\\secret"))
    node = _ld(4, b"If") + _ld(5, _ld(1, b"then_branch") + _ld(6, inner))
    r = run(scan_protobuf, _onnx(_ld(1, node)), "m.onnx")
    assert find(r, "onnx.external-data").severity == Severity.HIGH
    g = _ld(1, _node(b"Relu"))
    for _ in range(120):
        g = _ld(1, _ld(4, b"Loop") + _ld(5, _ld(1, b"body") + _ld(6, g)))
    r = run(scan_protobuf, _onnx(g), "deep.onnx")
    assert find(r, "protobuf.malformed").message


def test_protobuf_malformed_varints_and_lengths():
    r = run(scan_protobuf, b"\x08" + b"\xff" * 11, "bad.onnx")
    assert find(r, "protobuf.malformed").severity == Severity.MEDIUM
    r = run(scan_protobuf, _vi(1, 8) + b"\x3a\xff\xff\xff\x0f" + b"abc", "len.onnx")
    assert "protobuf.malformed" in rules(r)
    r = run(scan_protobuf, _vi(1, 8) + _ld(7, b"\x0a\x05ab"), "inner.onnx")  # node length past its graph
    assert "protobuf.malformed" in rules(r)
    r = run(scan_protobuf, b"\x0f\x00", "wt.pb")  # wire type 7
    assert "protobuf.malformed" in rules(r)


# --------------------------------------------------------------------------- protobuf: TensorFlow


def _tf_node(name: bytes, op: bytes, attrs: list[tuple[bytes, bytes]] = ()) -> bytes:
    return _ld(1, name) + _ld(2, op) + b"".join(_ld(5, _ld(1, k) + _ld(2, v)) for k, v in attrs)


def _saved_model(graph_def: bytes, object_graph: bytes = b"") -> bytes:
    mg = _ld(2, graph_def) + (_ld(7, object_graph) if object_graph else b"")
    return _vi(1, 1) + _ld(2, mg)


def test_savedmodel_risky_ops_in_graph_and_functions(tmp_path):
    fn = _ld(1, _ld(1, b"__inference_call_42")) + _ld(3, _tf_node(b"pf", b"EagerPyFunc"))
    graph = (
        _ld(1, _tf_node(b"read", b"ReadFile"))
        + _ld(1, _tf_node(b"write", b"WriteFile"))
        + _ld(1, _tf_node(b"save", b"SaveV2"))
        + _ld(1, _tf_node(b"add", b"AddV2"))
        + _ld(2, _ld(1, fn))
    )
    r = via_file(tmp_path, "saved_model.pb", _saved_model(graph))
    ops = {f.evidence.split(" ")[0]: f.severity for f in r.findings if f.rule == "tf.risky-op"}
    assert ops == {
        "ReadFile": Severity.HIGH,
        "WriteFile": Severity.HIGH,
        "EagerPyFunc": Severity.CRITICAL,
        "SaveV2": Severity.INFO,
    }
    assert any("__inference_call_42" in f.evidence for f in r.findings)


def test_savedmodel_benign_saver_graph_is_not_serious(tmp_path):
    graph = b"".join(
        _ld(1, _tf_node(n, op))
        for n, op in (
            (b"x", b"Placeholder"),
            (b"w", b"VarHandleOp"),
            (b"m", b"MatMul"),
            (b"save/SaveV2", b"SaveV2"),
            (b"save/RestoreV2", b"RestoreV2"),
            (b"save/merge", b"MergeV2Checkpoints"),
            (b"c", b"Const"),
        )
    )
    r = via_file(tmp_path, "saved_model.pb", _saved_model(graph))
    assert serious(r) == []


def test_savedmodel_writefile_hidden_in_nested_graph():
    inner = _ld(1, _tf_node(b"w", b"WriteFile")) + _ld(4, _vi(1, 1808))
    tensor = _vi(1, 7) + _ld(8, inner)  # TensorProto{dtype: DT_STRING, string_val: [GraphDef]}
    const = _tf_node(b"graph_def", b"Const", [(b"value", _ld(8, tensor))])
    outer = _ld(1, const) + _ld(1, _tf_node(b"ds", b"DatasetFromGraph"))
    r = run(scan_protobuf, _saved_model(outer), "saved_model.pb")
    f = find(r, "tf.risky-op")
    assert f.severity == Severity.HIGH and "WriteFile" in f.evidence and "nested" in f.evidence


def test_frozen_graphdef_printv2_to_file_and_pbtxt():
    g = _ld(1, _tf_node(b"p", b"PrintV2", [(b"output_stream", _ld(2, b"file:///tmp/leak"))]))
    g += _ld(1, _tf_node(b"q", b"PrintV2", [(b"output_stream", _ld(2, b"stderr"))]))
    r = run(scan_protobuf, g, "frozen.pb")
    hits = [f for f in r.findings if f.rule == "tf.risky-op"]
    assert len(hits) == 1 and "file:///tmp/leak" in hits[0].evidence
    txt = b'node {\n  name: "r"\n  op: "ReadFile"\n}\nnode { name: "a" op: "Add" }\n'
    r = run(scan_protobuf, txt, "graph.pbtxt")
    assert find(r, "tf.risky-op").severity == Severity.HIGH


def test_savedmodel_keras_metadata_lambda():
    meta = json.dumps(
        {
            "class_name": "Lambda",
            "name": "lam",
            "config": {"name": "lam", "function": ["4wAAAA==", None, None], "function_type": "lambda"},
        }
    ).encode()
    user_obj = _ld(1, b"_tf_keras_layer") + _ld(3, meta)
    og = _ld(1, _ld(4, user_obj))
    r = run(scan_protobuf, _saved_model(_ld(1, _tf_node(b"a", b"Add")), og), "saved_model.pb")
    assert find(r, "keras.lambda").severity == Severity.CRITICAL
    km = _ld(1, _vi(2, 1) + _ld(3, b"root.layer-1") + _ld(4, b"_tf_keras_layer") + _ld(5, meta))
    r = run(scan_protobuf, km, "keras_metadata.pb")
    assert find(r, "keras.lambda").severity == Severity.CRITICAL


# --------------------------------------------------------------------------- safetensors


def _st(header: dict, data: bytes, pad: bool = True) -> bytes:
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def test_safetensors_benign_by_hand(tmp_path):
    w = struct.pack("<6f", *range(6))
    b = struct.pack("<2q", 1, 2)
    header = {
        "__metadata__": {"format": "pt", "source": "test"},
        "bias": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
        "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "empty": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [40, 40]},
    }
    r = via_file(tmp_path, "model.safetensors", _st(header, w + b))
    assert formats(r)["model.safetensors"] == "safetensors"
    assert r.findings == []


def test_safetensors_header_bombs_and_truncation():
    r = run(scan_safetensors, struct.pack("<Q", 200_000_000) + b"{" + bytes(100), "a")
    assert find(r, "safetensors.header").severity == Severity.HIGH
    r = run(scan_safetensors, struct.pack("<Q", 5000) + b'{"a": 1}', "b")
    assert find(r, "safetensors.header").severity == Severity.HIGH
    r = run(scan_safetensors, b"\x01\x02", "c")
    assert "safetensors.header" in rules(r)


def test_safetensors_every_header_rule():
    cases = {
        "safetensors.json": struct.pack("<Q", 6) + b"{nope}",
        "safetensors.offsets": _st(
            {"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}}, bytes(16)
        ),
        "safetensors.overlap": _st(
            {
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            },
            bytes(16),
        ),
        "safetensors.shape": _st(
            {"t": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 16]}}, bytes(16)
        ),
        "safetensors.dtype": _st({"t": {"dtype": "Q9", "shape": [4], "data_offsets": [0, 16]}}, bytes(16)),
        "safetensors.metadata": _st(
            {"__metadata__": {"k": 1}, "t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, bytes(4)
        ),
        "safetensors.hole": _st(
            {"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, bytes(4) + PICKLE
        ),
        "safetensors.duplicate": struct.pack("<Q", 120)
        + (
            b'{"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
            b'"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
        ).ljust(120)
        + b"\x00",
        "safetensors.tensor": _st({"t": [1, 2]}, b""),
    }
    for rule, blob in cases.items():
        r = run(scan_safetensors, blob, "m.safetensors")
        assert rule in rules(r, Severity.MEDIUM), (rule, [(f.rule, f.message) for f in r.findings])


def test_safetensors_metadata_secret():
    tok = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
    blob = _st(
        {"__metadata__": {"uploader_token": tok}, "t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}},
        b"\x00",
    )
    r = run(scan_safetensors, blob, "m.safetensors")
    f = find(r, "secret.huggingface-token")
    assert tok not in f.evidence


# --------------------------------------------------------------------------- GGUF


def _gs(s: str | bytes, v: int = 3) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return (struct.pack("<I", len(b)) if v == 1 else struct.pack("<Q", len(b))) + b


def _gguf(kvs: list[bytes], tensors: list[bytes], data: bytes, v: int = 3) -> bytes:
    c = "<I" if v == 1 else "<Q"
    head = b"GGUF" + struct.pack("<I", v) + struct.pack(c, len(tensors)) + struct.pack(c, len(kvs))
    head += b"".join(kvs) + b"".join(tensors)
    head += bytes(-len(head) % 32)
    return head + data


def _kv_str(k: str, val: str, v: int = 3) -> bytes:
    return _gs(k, v) + struct.pack("<I", 8) + _gs(val, v)


def _kv_u32(k: str, val: int, v: int = 3) -> bytes:
    return _gs(k, v) + struct.pack("<II", 4, val)


def _kv_str_array(k: str, vals: list[str], v: int = 3) -> bytes:
    c = "<I" if v == 1 else "<Q"
    return (
        _gs(k, v) + struct.pack("<II", 9, 8) + struct.pack(c, len(vals)) + b"".join(_gs(x, v) for x in vals)
    )


def _tensor(name: str, dims: list[int], ttype: int, offset: int, v: int = 3) -> bytes:
    c = "<I" if v == 1 else "<Q"
    return (
        _gs(name, v)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack(c, d) for d in dims)
        + struct.pack("<IQ", ttype, offset)
    )


def test_gguf_benign(tmp_path):
    kvs = [
        _kv_str("general.architecture", "llama"),
        _kv_u32("general.alignment", 32),
        _kv_str_array("tokenizer.ggml.tokens", ["<s>", "</s>", "hello"]),
        _kv_str(
            "tokenizer.chat_template",
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
        ),
    ]
    tensors = [_tensor("tok_embd.weight", [4, 2], 0, 0), _tensor("out.weight", [32], 8, 32)]
    r = via_file(tmp_path, "m.gguf", _gguf(kvs, tensors, bytes(32) + bytes(34)))
    assert formats(r)["m.gguf"] == "gguf"
    assert r.findings == [], [(f.rule, f.message) for f in r.findings]
    kv1 = [_kv_str("general.architecture", "llama", 1)]
    r = run(scan_gguf, _gguf(kv1, [_tensor("w", [8], 0, 0, 1)], bytes(32), 1), "v1.gguf")
    assert r.findings == []


def test_gguf_header_bombs_and_overflows():
    bomb = b"GGUF" + struct.pack("<IQQ", 3, 0, 3_000_000_000) + bytes(64)
    r = run(scan_gguf, bomb, "b.gguf")
    assert find(r, "gguf.header-bomb").severity == Severity.HIGH
    r = run(scan_gguf, b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0) + bytes(64), "t.gguf")
    assert "gguf.header-bomb" in rules(r)
    huge_str = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 62) + b"k"
    r = run(scan_gguf, huge_str + bytes(64), "s.gguf")
    assert find(r, "gguf.string").severity == Severity.HIGH
    arr = _gs("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 1 << 61)
    r = run(scan_gguf, _gguf([arr], [], b""), "a.gguf")
    assert find(r, "gguf.array").severity == Severity.HIGH
    nested = _gs("x") + struct.pack("<IIQ", 9, 9, 1) + bytes(16)
    assert "gguf.array" in rules(run(scan_gguf, _gguf([nested], [], b""), "n.gguf"))
    r = run(scan_gguf, _gguf([], [_tensor("w", [1 << 40, 1 << 40], 0, 0)], bytes(32)), "o.gguf")
    assert find(r, "gguf.tensor").severity == Severity.HIGH
    r = run(scan_gguf, _gguf([], [_tensor("w", [1024], 0, 0)], bytes(32)), "oob.gguf")
    assert find(r, "gguf.offset").severity == Severity.HIGH
    r = run(scan_gguf, _gguf([], [_tensor("w", [1, 1, 1, 1, 1], 0, 0)], bytes(32)), "d.gguf")
    assert "gguf.tensor" in rules(r)
    r = run(scan_gguf, _gguf([_kv_str("a", "b")], [], b"")[:20], "tr.gguf")
    assert find(r, "gguf.truncated").severity == Severity.MEDIUM
    r = run(scan_gguf, _gguf([_gs("k") + struct.pack("<I", 99) + bytes(8)], [], b""), "ty.gguf")
    assert "gguf.type" in rules(r)


def test_gguf_chat_template_injection():
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    evil += "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    r = run(scan_gguf, _gguf([_kv_str("tokenizer.chat_template", evil)], [], b""), "t.gguf")
    f = find(r, "gguf.chat-template")
    assert f.severity == Severity.CRITICAL and "__class__" in f.evidence


def test_gguf_never_reads_the_data_section():
    class Counting(io.BytesIO):
        max_read = 0

        def read(self, n=-1):
            out = super().read(n)
            Counting.max_read = max(Counting.max_read, self.tell())
            return out

    blob = _gguf([_kv_str("general.architecture", "x")], [_tensor("w", [1 << 20], 0, 0)], bytes(4 << 20))
    ctx = _new_context("g", None, None)
    scan_gguf(ctx, "g", Counting(blob), len(blob))
    assert ctx.report_obj.findings == []
    assert Counting.max_read < 200_000


# --------------------------------------------------------------------------- secrets


def _fake(prefix: str, body: str) -> str:
    return prefix + body


SECRETS = {
    "secret.aws-access-key-id": "aws_id = " + _fake("AKIA", "Q3ZJ7KXW2M4PLT6B"),
    "secret.aws-secret-key": "aws_secret_access_key = "
    + _fake("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYzQ8mKv2Lq9"),
    "secret.github-token": "token: " + _fake("ghp_", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"),
    "secret.gitlab-token": "GL=" + _fake("glpat-", "xY7zQ2mN8pL4kJ6hG3fD"),
    "secret.slack-token": "SLACK=" + _fake("xoxb-", "1234567890-0987654321-AbCdEfGhIjKl"),
    "secret.stripe-key": "stripe.api_key = '" + _fake("sk_live_", "4eC39HqLyjWDarjtT1zdp7dc") + "'",
    "secret.openai-key": "OPENAI_API_KEY=" + _fake("sk-proj-", "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE"),
    "secret.huggingface-token": "HF_TOKEN=" + _fake("hf_", "AbCdEfGhIjKlMnOpQrStUvWxYz12345678"),
    "secret.google-api-key": "key=" + _fake("AIza", "SyD3x4mPl3K3yW1thTh1rtyF1veCh4rs0Ab"),
    "secret.private-key": "-----BEGIN RSA " + "PRIVATE KEY-----",
    "secret.url-password": "uri = 'postgresql://mlflow:" + "Zq8!vR2#pL@db.example.com:5432/mlflow'",
    "secret.azure-storage-key": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
    + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z6A7b8C9d0E1f2G3h4I5j6K7l8M9n0Op==;",
    "secret.azure-sas": "https://acct.blob.core.windows.net/c?sv=2022-11-02&ss=b&sig="
    + "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dEfGhIjK%3D",
    "secret.jwt": "auth: "
    + _fake("eyJ", "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"),
    "secret.assignment": 'db_password = "' + "Xk9#mQ2$vL7!pR4w" + '"',
}


@pytest.mark.parametrize("rule", sorted(SECRETS))
def test_secret_rules_and_redaction(rule):
    line = SECRETS[rule]
    data = ("# config\nnothing here\n" + line + "\n").encode()
    r = run(scan_text, data, "settings.py")
    hits = [f for f in r.findings if f.rule == rule]
    assert hits, [(f.rule, f.message) for f in r.findings]
    f = hits[0]
    assert f.severity >= Severity.MEDIUM
    assert "line 3" in f.message
    # never the secret itself
    secretish = [
        tok for tok in line.replace("'", " ").replace('"', " ").replace("=", " ").split() if len(tok) >= 16
    ]
    for tok in secretish:
        if "BEGIN" in tok or "windows.net" in tok:
            continue
        assert tok not in f.evidence and tok not in f.message, (tok, f.evidence)


def test_example_and_placeholder_values_are_not_serious():
    text = "\n".join(
        [
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "password = ${DB_PASSWORD}",
            "api_key = os.environ['API_KEY']",
            "token = get_token()",
            "secret_key = changeme",
            "url = https://user:${PASS}@host/x",
            "url2 = https://<user>:<password>@host/x",
            "pad_token = <pad>",
            "model_checksum_token = d41d8cd98f00b204e9800998ecf8427e",
            "run_token: 5f0c6f1a-8f0e-4b4c-9e8e-3f2d1c0b9a87",
            "max_tokens = 4096",
            "password_min_length = 12",
        ]
    ).encode()
    r = run(scan_text, text, "cfg.ini")
    assert serious(r) == [], [(f.rule, f.message) for f in r.findings]


def test_benign_mlflow_model_files_give_no_serious_findings(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "MLmodel").write_text(
        "artifact_path: model\nflavors:\n  python_function:\n    env:\n      conda: conda.yaml\n"
        "      virtualenv: python_env.yaml\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n"
        "    predict_fn: predict\n    python_version: 3.11.7\n  sklearn:\n    code: null\n"
        "    pickled_model: model.pkl\n    serialization_format: cloudpickle\n    sklearn_version: 1.5.1\n"
        "mlflow_version: 2.16.0\nmodel_size_bytes: 1094\nmodel_uuid: 8c3e6f2b9a7d4e1f8b2c5a9d3e7f1b4c\n"
        'run_id: 2f9d6e1c4b8a4f7e9c3d5b1a6e8f2c4d\nsignature:\n  inputs: \'[{"type": "tensor", "tensor-spec":'
        ' {"dtype": "float64", "shape": [-1, 4]}}]\'\n  outputs: \'[{"type": "tensor", "tensor-spec": '
        '{"dtype": "int64", "shape": [-1]}}]\'\n  params: null\n'
        "utc_time_created: '2024-09-01 10:11:12.123456'\n"
    )
    (d / "conda.yaml").write_text(
        "channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip<=24.0\n- pip:\n  - mlflow==2.16.0\n"
        "  - cloudpickle==3.0.0\n  - numpy==1.26.4\n  - scikit-learn==1.5.1\n  - scipy==1.14.1\n"
        "name: mlflow-env\n"
    )
    (d / "requirements.txt").write_text(
        "mlflow==2.16.0\ncloudpickle==3.0.0\nnumpy==1.26.4\nscikit-learn==1.5.1\nscipy==1.14.1\n"
        "torch @ https://download.pytorch.org/whl/cpu/torch-2.3.0%2Bcpu-cp311-cp311-linux_x86_64.whl\n"
        "--extra-index-url https://pypi.org/simple\n"
    )
    (d / "python_env.yaml").write_text(
        "python: 3.11.7\nbuild_dependencies:\n- pip==24.0\n- setuptools\n"
        "dependencies:\n- -r requirements.txt\n"
    )
    sk = {
        "memory": None,
        "steps": [["scaler", "StandardScaler()"], ["clf", "LogisticRegression(C=0.5)"]],
        "verbose": False,
        "clf__C": 0.5,
        "clf__class_weight": None,
        "clf__max_iter": 1000,
        "clf__random_state": 42,
        "clf__solver": "lbfgs",
        "vect__token_pattern": "(?u)\\b\\w\\w+\\b",
        "vect__tokenizer": None,
        "vect__stop_words": "english",
        "feature_hash": "9f86d081884c7d659a2feaa0c55ad015",
        "torch": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.01, "amsgrad": False},
    }
    (d / "params.json").write_text(json.dumps(sk, indent=2))
    (d / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": "<s>",
                "eos_token": "</s>",
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "mask_token": {"content": "<mask>", "lstrip": True},
                "sep_token": "[SEP]",
                "cls_token": "[CLS]",
                "model_max_length": 512,
                "tokenizer_class": "BertTokenizer",
                "clean_up_tokenization_spaces": True,
            }
        )
    )
    r = scan_directory(str(d))
    assert serious(r) == [], [(f.path, f.rule, f.message) for f in r.findings]
    assert formats(r)["params.json"] == "json" and formats(r)["MLmodel"] == "mlmodel"


def test_secret_in_requirements_index_url():
    data = (
        b"numpy==1.26.4\n--extra-index-url https://__token__:"
        + b"pypiAgEIcHlwaS5vcmcCJGQ3"
        + b"@pypi.org/simple\n"
    )
    r = run(scan_text, data, "requirements.txt")
    f = find(r, "secret.url-password")
    assert "line 2" in f.message and "pypiAgEIcHlwaS5vcmcCJGQ3" not in f.evidence


def test_gcp_service_account_json(tmp_path):
    doc = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": "-----BEGIN PRIVATE "
        + "KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
        "client_email": "trainer@p.iam.gserviceaccount.com",
    }
    r = via_file(tmp_path, "sa.json", json.dumps(doc, indent=2).encode())
    f = find(r, "secret.gcp-service-account")
    assert f.severity == Severity.CRITICAL and "MIIE" not in f.evidence
    assert len([x for x in r.findings if x.severity >= Severity.MEDIUM]) == 1


def test_scan_json_nested_secret_key():
    doc = json.dumps({"mlflow": {"tracking": {"client_secret": "q7W!x9Z#t2R$y5U&"}}, "lr": 0.1}).encode()
    r = run(scan_json, doc, "conf.json")
    f = find(r, "secret.assignment")
    assert "q7W!x9Z#t2R$y5U&" not in f.evidence


def test_scan_params_helper():
    ctx = _new_context("run", None, None)
    gh = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    scan_params(
        ctx,
        "runs/1/params",
        {
            "github": gh,
            "api_key": "Xk9#mQ2$vL7!pR4w",
            "alpha": 0.1,
            "layers": [64, 32],
            "tokenizer": "bert-base-uncased",
            "run_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        },
    )
    got = {f.rule: f for f in ctx.report_obj.findings}
    assert set(got) == {"secret.github-token", "secret.assignment"}
    assert "param 'github'" in got["secret.github-token"].message
    assert gh not in got["secret.github-token"].evidence


def test_text_scan_is_bounded():
    data = b"x = 1\n" * 100 + b"GL=" + b"glpat-" + b"xY7zQ2mN8pL4kJ6hG3fD" + b"\n"
    r = run(scan_text, data, "big.txt", Limits(max_text_scan=300))
    assert "secret.gitlab-token" not in rules(r)
    assert find(r, "secret.partial").severity == Severity.INFO
    r = run(scan_text, b"a" * (3 << 20), "oneline.txt")  # one huge line: no hang, no finding
    assert serious(r) == []


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "fn,blob",
    [
        (containers.scan_zip, b""),
        (containers.scan_tar, b"\x00" * 10),
        (containers.scan_compressed, b"\x1f\x8b\x08"),
        (containers.scan_compressed, b"BZh9" + b"\x00" * 20),
        (containers.scan_compressed, b"\xfd7zXZ\x00" + b"\x01" * 10),
        (containers.scan_compressed, b"\x28\xb5\x2f\xfd" + b"\x00" * 10),
        (scan_safetensors, b""),
        (scan_gguf, b"GGUF"),
        (scan_protobuf, b""),
    ],
)
def test_truncated_inputs_never_crash(fn, blob):
    run(fn, blob, "x.onnx")  # must return normally (findings or nothing)


def test_h5_parser_runs_with_a_timeout(tmp_path):
    data = _h5(tmp_path, {"model_config": json.dumps({"class_name": "Sequential", "config": {}})})
    ctx = _new_context("slow.h5", None, None)
    ctx.extra["h5_timeout"] = 0.001  # libhdf5 can loop forever on hostile files: never wait for it
    scan_hdf5(ctx, "slow.h5", io.BytesIO(data), len(data))
    assert find(ctx.report_obj, "hdf5.timeout").severity == Severity.MEDIUM


def test_zip_version_needed_trick():
    blob = bytearray(zbuild([{"name": "archive/data.pkl", "data": PICKLE}]))
    cd = blob.rfind(b"PK\x01\x02")
    blob[cd + 6] = 0xFF  # "version needed to extract" 25.5: zipfile refuses, torch does not care
    with pytest.raises(NotImplementedError):
        zipfile.ZipFile(io.BytesIO(bytes(blob)))
    r = run(containers.scan_zip, bytes(blob), "m.pt")
    assert find(r, "zip.version-trick").severity == Severity.HIGH
    assert formats(r)["m.pt!archive/data.pkl"] == "pickle"
