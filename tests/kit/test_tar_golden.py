"""Byte-level tar checks against the facts stated in modelkit-format.md §4.2 and §10.2.

Every expected value here comes from the reference document (header checksums, digests, sizes,
field encodings) or from Go's archive/tar rules it cites; none is a snapshot of our own output.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from _kithelpers import make_case0_context, make_tree

from mlflow_plugin.kit import tarwriter
from mlflow_plugin.kit.kitfile import Kitfile
from mlflow_plugin.kit.layers import LayerIgnore, LayerStream, walk_layer

A60 = "a" * 60
B68 = "b" * 68


# ---- a minimal, independent header decoder -------------------------------------------------------


def headers(tar: bytes) -> list[dict]:
    """Decode every header block (PAX 'x' headers included) without using tarfile."""
    out = []
    pos = 0
    while pos + 512 <= len(tar):
        blk = tar[pos : pos + 512]
        if blk == bytes(512):
            break
        size = int(blk[124:136].rstrip(b"\0") or b"0", 8)
        out.append(
            {
                "raw": blk,
                "offset": pos,
                "name": blk[0:100].rstrip(b"\0"),
                "mode": blk[100:108],
                "uid": blk[108:116],
                "gid": blk[116:124],
                "size_field": blk[124:136],
                "size": size,
                "mtime": blk[136:148],
                "chksum": blk[148:156],
                "typeflag": blk[156:157],
                "linkname": blk[157:257],
                "magic": blk[257:263],
                "version": blk[263:265],
                "uname": blk[265:297],
                "gname": blk[297:329],
                "devmajor": blk[329:337],
                "devminor": blk[337:345],
                "prefix": blk[345:500].rstrip(b"\0"),
                "pad": blk[500:512],
                "data": tar[pos + 512 : pos + 512 + size],
            }
        )
        pos += 512 + (size + 511) // 512 * 512
    assert tar[pos:] == bytes(1024), "archive must end with exactly two zero blocks"
    return out


def full_name(h: dict) -> bytes:
    return h["prefix"] + b"/" + h["name"] if h["prefix"] else h["name"]


def checksum_ok(blk: bytes) -> bool:
    expected = sum(blk[:148]) + 8 * 0x20 + sum(blk[156:])
    return blk[148:156] == b"%06o\0 " % expected


# ---- the §10.2 reference context, rebuilt from the document's table ------------------------------


@pytest.fixture
def case0_ctx(tmp_path: Path) -> Path:
    return make_case0_context(tmp_path / "ctx")


def build(ctx: Path, path: str) -> bytes:
    kf = Kitfile.parse((ctx / "Kitfile").read_text())
    ignore = LayerIgnore.from_context(str(ctx), kf)
    return b"".join(LayerStream(walk_layer(str(ctx), path, ignore)))


def test_reference_model_layer(case0_ctx: Path) -> None:
    tar = build(case0_ctx, "./model/")
    assert len(tar) == 5120
    assert (
        hashlib.sha256(tar).hexdigest() == "4111230d7e281850ae2d1989e72f9235a725337db99a49fdb0c91cd6ea8627e6"
    )
    # '*.log' is anchored at the context root: model/debug.log stays in
    assert [full_name(h) for h in headers(tar)] == [
        b"model",
        b"model/debug.log",
        b"model/sub",
        b"model/sub/cfg.json",
        b"model/weights.bin",
    ]


def test_reference_code_layer_entries_and_checksums(case0_ctx: Path) -> None:
    tar = build(case0_ctx, "code")
    assert len(tar) == 7168
    assert (
        hashlib.sha256(tar).hexdigest() == "1357b9f87b2acd97811273659ccae844e8a04907d870a905defa8ee75c4eff62"
    )
    hs = headers(tar)
    assert [full_name(h) for h in hs] == [
        b"code",
        f"code/{A60}".encode(),
        f"code/{A60}/{B68}".encode(),
        f"code/{A60}/{B68}/file.txt".encode(),
        b"code/empty",
        b"code/train.py",
        b"code/PaxHeaders.0/ncode.txt",
        b"code/ncode.txt",
    ]
    # §10.2: "The header checksums in the code tar are ..."
    assert [h["chksum"][:6] for h in hs] == [
        b"010055",
        b"023430",
        b"040440",
        b"042171",
        b"011213",
        b"011616",
        b"012760",
        b"011754",
    ]
    assert all(checksum_ok(h["raw"]) and h["chksum"][6:] == b"\0 " for h in hs)
    # the long path is split into USTAR prefix and name
    split = hs[3]
    assert split["prefix"] == f"code/{A60}/{B68}".encode() and split["name"] == b"file.txt"
    # the non-ASCII name goes through PAX
    pax, main = hs[6], hs[7]
    assert pax["typeflag"] == b"x" and pax["data"] == "27 path=code/ünïcode.txt\n".encode()
    assert main["typeflag"] == b"0" and main["data"] == b"u"
    assert hs[5]["mode"] == b"0000755\0" and hs[5]["typeflag"] == b"0"  # the 0755 file
    assert b"link.py" not in tar  # the symlink is skipped


def test_reference_dataset_layer(case0_ctx: Path) -> None:
    tar = build(case0_ctx, "data.csv")
    assert len(tar) == 2048
    assert (
        hashlib.sha256(tar).hexdigest() == "ad4e6fc877eb1944df8aaa52be2dd4cbd258870ddfc67869eef1a7058c4fe3c2"
    )
    assert [full_name(h) for h in headers(tar)] == [b"data.csv"]


def test_ustar_field_encoding(case0_ctx: Path) -> None:
    """§4.2 table: zero-padded octal + NUL fields, uid 1000, gid 0, mtime 0, empty names."""
    for path in ("./model/", "code", "data.csv"):
        for h in headers(build(case0_ctx, path)):
            if h["typeflag"] == b"x":
                continue
            assert h["magic"] == b"ustar\0" and h["version"] == b"00"
            assert h["uid"] == b"0001750\0" and h["gid"] == b"0000000\0"
            assert h["mtime"] == b"00000000000\0"
            assert h["devmajor"] == b"0000000\0" and h["devminor"] == b"0000000\0"
            assert h["uname"] == bytes(32) and h["gname"] == bytes(32) and h["linkname"] == bytes(100)
            assert h["pad"] == bytes(12)
            assert not h["name"].endswith(b"/")  # no trailing slash on directories
            if h["typeflag"] == b"5":
                assert h["mode"] == b"0000755\0" and h["size_field"] == b"00000000000\0"
            else:
                assert h["typeflag"] == b"0"
                assert h["size_field"] == b"%011o\0" % len(h["data"])


def test_pax_header_layout_for_non_ascii(case0_ctx: Path) -> None:
    pax = next(h for h in headers(build(case0_ctx, "code")) if h["typeflag"] == b"x")
    # mode, uid, gid, mtime zero; devmajor/devminor all NUL; magic ustar
    assert pax["mode"] == b"0000000\0" and pax["uid"] == b"0000000\0" and pax["gid"] == b"0000000\0"
    assert pax["mtime"] == b"00000000000\0"
    assert pax["devmajor"] == bytes(8) and pax["devminor"] == bytes(8)
    assert pax["magic"] == b"ustar\0" and pax["version"] == b"00"
    assert pax["size"] == 27 and pax["prefix"] == b""


def test_python_tarfile_reads_our_tars_back(case0_ctx: Path) -> None:
    tar = build(case0_ctx, "code")
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == [
            "code",
            f"code/{A60}",
            f"code/{A60}/{B68}",
            f"code/{A60}/{B68}/file.txt",
            "code/empty",
            "code/train.py",
            "code/ünïcode.txt",
        ]
        by = {m.name: m for m in members}
        assert by["code/train.py"].mode == 0o755 and by["code/empty"].isdir()
        assert tf.extractfile(by[f"code/{A60}/{B68}/file.txt"]).read() == b"deep"
        assert tf.extractfile(by["code/ünïcode.txt"]).read() == b"u"
        assert tf.extractfile(by["code/train.py"]).read() == b"print(1)\n"
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (1000, 0, "", "", 0)


# ---- header-only cases from §10.2 ----------------------------------------------------------------


def test_8gib_file_uses_pax_size_record() -> None:
    size = 8589934592
    blocks = b"".join(tarwriter.file_header("big.bin", 0o644, size))
    assert len(blocks) == 1536  # PAX header + one record block + main header
    pax, records, main = blocks[:512], blocks[512:1024], blocks[1024:]
    assert pax[:100].rstrip(b"\0") == b"PaxHeaders.0/big.bin" and pax[156:157] == b"x"
    assert records == b"19 size=8589934592\n".ljust(512, b"\0")
    assert int(pax[124:136].rstrip(b"\0"), 8) == 19
    assert main[:100].rstrip(b"\0") == b"big.bin" and main[156:157] == b"0"
    assert main[124:136] == b"00000000000\0"
    assert main[100:108] == b"0000644\0" and main[108:116] == b"0001750\0"
    assert checksum_ok(pax) and checksum_ok(main)
    # Python's tarfile applies the record
    ti = tarfile.TarInfo.frombuf(main, "utf-8", "surrogateescape")
    assert ti.size == 0


def test_just_below_8gib_stays_ustar() -> None:
    blocks = b"".join(tarwriter.file_header("big.bin", 0o644, 8589934591))
    assert len(blocks) == 512 and blocks[124:136] == b"77777777777\0"


def test_unsplittable_long_path_uses_pax_path_record() -> None:
    name = "model/" + "x" * 120 + ".bin"
    blocks = b"".join(tarwriter.file_header(name, 0o600, 5))
    pax, records, main = blocks[:512], blocks[512:1024], blocks[1024:1536]
    assert pax[:100] == ("model/PaxHeaders.0/" + "x" * 81).encode()  # truncated to 100 bytes
    assert records.rstrip(b"\0") == f"140 path={name}\n".encode()
    assert main[:100] == name.encode()[:100]  # main name truncated
    assert main[345:500] == bytes(155)  # no prefix in the PAX form
    assert main[100:108] == b"0000600\0" and main[124:136] == b"00000000005\0"
    # and tarfile reads the full name back
    tar = blocks + b"hello" + bytes(507) + bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        (m,) = tf.getmembers()
        assert m.name == name and tf.extractfile(m).read() == b"hello"


def test_setgid_directory_mode_field() -> None:
    (blk,) = list(tarwriter.dir_header("sg", 0o2775))
    assert blk[100:108] == b"0002775\0" and blk[156:157] == b"5" and blk[:3] == b"sg\0"
    assert len(blk) == 512 and checksum_ok(blk)
    assert tarwriter.tar_mode(0o42775) == 0o2775 and tarwriter.tar_mode(0o107755) == 0o7755


def test_setgid_and_sticky_dirs_on_disk(tmp_path: Path) -> None:
    ctx = make_tree(
        tmp_path / "ctx",
        {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: sg\n", "sg/f": "x"},
        modes={"sg": 0o2775},
    )
    os.chmod(ctx / "sg", 0o2775)
    if os.stat(ctx / "sg").st_mode & 0o7777 != 0o2775:
        pytest.skip("filesystem does not keep the setgid bit")
    hs = headers(build(ctx, "sg"))
    assert hs[0]["name"] == b"sg" and hs[0]["mode"] == b"0002775\0"
    os.chmod(ctx / "sg", 0o1777)
    assert headers(build(ctx, "sg"))[0]["mode"] == b"0001777\0"


def test_top_level_non_ascii_pax_name() -> None:
    blocks = b"".join(tarwriter.file_header("ünïcode.txt", 0o644, 1))
    assert blocks[:100].rstrip(b"\0") == b"PaxHeaders.0/ncode.txt"
    assert blocks[512:1024].rstrip(b"\0") == "22 path=ünïcode.txt\n".encode()  # 6 + 13 bytes + 1 + 2 digits
    assert blocks[1024:1124].rstrip(b"\0") == b"ncode.txt"


# ---- Go splitUSTARPath / PAX selection rules -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a" * 100, None),  # fits in name: no split needed
        ("d/" + "f" * 99, ("d", "f" * 99)),  # 101 bytes: split at the slash
        ("d/" + "f" * 101, None),  # name part > 100
        ("p" * 155 + "/f", ("p" * 155, "f")),  # prefix of exactly 155
        ("p" * 156 + "/f", None),  # prefix > 155
        ("/" + "f" * 100, None),  # i == 0
        ("x" * 101, None),  # no slash
        ("d/" + "é" * 60, None),  # non-ASCII is never split
        ("a/" + "b" * 98 + "/", ("a", "b" * 98 + "/")),  # trailing slash ignored when searching
    ],
)
def test_split_ustar_path(name: str, expected: tuple[str, str] | None) -> None:
    assert tarwriter.split_ustar_path(name) == expected


def test_splittable_long_name_is_plain_ustar() -> None:
    name = "p" * 120 + "/file.txt"
    blocks = b"".join(tarwriter.file_header(name, 0o644, 0))
    assert len(blocks) == 512
    assert blocks[345:500].rstrip(b"\0") == b"p" * 120 and blocks[:100].rstrip(b"\0") == b"file.txt"


def test_truncated_main_name_drops_trailing_slash() -> None:
    # Go formatString: a name cut at 100 bytes that ends in '/' gets that slash replaced by NUL
    name = "x" * 99 + "/" + "y" * 101
    main = b"".join(tarwriter.file_header(name, 0o644, 0))[1024:1536]
    assert main[:100] == b"x" * 99 + b"\0"
    assert checksum_ok(main)


@pytest.mark.parametrize("n", [1, 80, 88, 89, 90, 91, 95, 96, 97, 98, 500, 993, 994, 995, 996, 1000])
def test_pax_record_length_prefix_is_exact(n: int) -> None:
    rec = tarwriter._pax_record("path", "p" * n)
    length, rest = rec.split(b" ", 1)
    assert int(length) == len(rec) and rest == b"path=" + b"p" * n + b"\n"


def test_non_utf8_file_name_bytes_round_trip() -> None:
    name = os.fsdecode(b"d/caf\xe9.txt")  # latin-1 byte: surrogate-escaped by os.listdir
    blocks = b"".join(tarwriter.file_header(name, 0o644, 0))
    assert blocks[:100].rstrip(b"\0") == b"d/PaxHeaders.0/caf.txt"
    assert blocks[512:1024].rstrip(b"\0") == b"19 path=d/caf\xe9.txt\n"
    assert blocks[1024:1124].rstrip(b"\0") == b"d/caf.txt"


def test_end_of_archive_is_exactly_1024_zero_bytes(tmp_path: Path) -> None:
    ctx = make_tree(
        tmp_path / "ctx", {"Kitfile": "manifestVersion: 1.0.0\ncode:\n  - path: f\n", "f": b"z" * 700}
    )
    tar = build(ctx, "f")
    assert len(tar) == 512 + 1024 + 1024  # header, 700 bytes padded to 1024, trailer
    assert tar[512:1212] == b"z" * 700 and tar[1212:] == bytes(1024 - 700 + 1024)
    assert len(tar) % 10240 != 0  # not padded to tarfile's RECORDSIZE
