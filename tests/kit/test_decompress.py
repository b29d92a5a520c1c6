"""Bounded decompression of layers: the streaming reader, the [limits], and refusals of bombs."""

from __future__ import annotations

import doctest
import gzip
import io
import itertools
import os
import random
import tarfile
import threading
import zlib
from pathlib import Path

import pytest
import zstandard
from _kithelpers import hostile_tar, layout_with_layers, listdir_all, tinfo
from click.testing import CliRunner

from mlflow_plugin import packaging as ops
from mlflow_plugin.cli import main
from mlflow_plugin.errors import LimitExceededError, UnsafeArchiveError
from mlflow_plugin.kit import decompress, unpack
from mlflow_plugin.kit.decompress import OUT_CHUNK, PREFETCH, Budget, DecompressingReader
from mlflow_plugin.kit.limits import UnpackLimits

MiB = 1 << 20
OPEN = UnpackLimits(max_ratio=1 << 40)  # ratio never in the way


def sample(seed: int, size: int) -> bytes:
    """Mixed data: compressible text runs, random bytes and zero runs."""
    rng = random.Random(seed)
    parts, n = [], 0
    while n < size:
        kind = rng.random()
        if kind < 0.4:
            p = b"".join(b"row,%d,%f\n" % (rng.randint(0, 99), rng.random()) for _ in range(200))
        elif kind < 0.7:
            p = rng.randbytes(rng.randint(1, 70_000))
        else:
            p = bytes(rng.randint(1, 300_000))
        parts.append(p)
        n += len(p)
    return b"".join(parts)[:size]


def compress(codec: str, data: bytes, members: int = 1) -> bytes:
    """``members`` gzip members / zstd frames, like concatenated ``gzip``/``zstd`` output."""
    cuts = [len(data) * i // members for i in range(members + 1)]
    pieces = [data[a:b] for a, b in itertools.pairwise(cuts)]
    if codec == "gzip":
        return b"".join(gzip.compress(p, compresslevel=6, mtime=0) for p in pieces)
    if codec == "zstd":
        return b"".join(zstandard.ZstdCompressor().compress(p) for p in pieces)
    return data


def read_randomly(r: DecompressingReader, seed: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray()
    while True:
        how = rng.random()
        if how < 0.5:
            b = r.read(rng.choice([1, 7, 512, 10240, OUT_CHUNK - 1, OUT_CHUNK + 3, 3 * OUT_CHUNK]))
        elif how < 0.75:
            b = r.read1(rng.choice([-1, 1, 4096, 2 * OUT_CHUNK]))
        else:
            buf = bytearray(rng.choice([1, 999, 65536, OUT_CHUNK * 2]))
            b = bytes(buf[: r.readinto(buf)])
        if not b:
            assert r.read(10) == b"" and r.read() == b""
            return bytes(out)
        out += b


# ---- the reader ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefetch", [0, PREFETCH])
@pytest.mark.parametrize("codec", ["gzip", "zstd", "none"])
def test_reader_returns_the_one_shot_bytes_for_random_chunkings(codec: str, prefetch: int) -> None:
    for seed, (size, members) in enumerate([(0, 1), (1, 1), (5 * MiB + 17, 1), (3 * MiB, 3)]):
        data = sample(seed, size)
        blob = compress(codec, data, members)
        one_shot = {
            "gzip": gzip.decompress if members > 1 else lambda b: zlib.decompress(b, 16 + zlib.MAX_WBITS),
            "zstd": lambda b: (
                zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(b)
            ),
            "none": lambda b: b,
        }[codec](blob)
        assert one_shot == data
        with DecompressingReader(io.BytesIO(blob), codec, OPEN, layer="L", prefetch=prefetch) as r:
            assert read_randomly(r, seed) == data
            assert r.bytes_out == len(data)


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_reader_holds_a_bounded_buffer_while_streaming_256_mib(codec: str) -> None:
    """Linear time without a timing assertion: nothing ever accumulates (the old reader kept
    everything not yet read and re-copied it on every read)."""
    if codec == "gzip":
        c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        blob = b"".join(c.compress(bytes(MiB)) for _ in range(256)) + c.flush()
    else:
        zc = zstandard.ZstdCompressor().compressobj()
        blob = b"".join(zc.compress(bytes(MiB)) for _ in range(256)) + zc.flush()
    raw = io.BytesIO(blob)
    most, total = 0, 0
    with DecompressingReader(raw, codec, OPEN, layer="L") as r:
        for i in range(10**9):
            b = r.read(10240)  # what tarfile's stream mode asks for
            if not b:
                break
            total += len(b)
            if i % 97 == 0:
                most = max(most, r.buffered)
        assert total == 256 * MiB
    assert 0 < most <= (PREFETCH + 2) * OUT_CHUNK + decompress.IN_CHUNK


def test_close_stops_the_read_ahead_before_the_caller_reads_raw() -> None:
    blob = gzip.compress(sample(3, 20 * MiB), mtime=0)
    raw = io.BytesIO(blob)
    before = threading.active_count()
    r = DecompressingReader(raw, "gzip", OPEN, layer="L")
    assert len(r.read(100)) == 100
    r.close()
    pos = raw.tell()
    assert pos < len(blob)  # it read ahead a little, not the whole blob
    assert threading.active_count() == before
    assert raw.read(1) and raw.tell() == pos + 1  # nobody else is reading raw any more


@pytest.mark.parametrize(
    "codec, blob, message",
    [
        ("gzip", gzip.compress(b"x" * 100_000)[:-20], "truncated"),
        ("gzip", gzip.compress(b"x" * 1000) + b"garbage", "trailing garbage"),
        ("gzip", b"\x1f\x8b\x07" + bytes(200), "not valid gzip data"),
        ("gzip", b"", "truncated"),
        ("zstd", b"definitely not zstd", "not valid zstd data"),
    ],
)
def test_invalid_data_is_an_unsafe_archive(codec: str, blob: bytes, message: str) -> None:
    with (
        DecompressingReader(io.BytesIO(blob), codec, layer="sha256:feed") as r,
        pytest.raises(UnsafeArchiveError, match=message) as e,
    ):
        r.read()
    assert "sha256:feed" in str(e.value)
    assert not isinstance(e.value, LimitExceededError)


def test_ratio_applies_only_past_the_grace() -> None:
    blob = gzip.compress(bytes(4 * MiB))  # ~1000:1, but small
    with DecompressingReader(io.BytesIO(blob), "gzip", UnpackLimits(max_ratio=2, ratio_grace=8 * MiB)) as r:
        assert len(r.read()) == 4 * MiB
    with (
        DecompressingReader(io.BytesIO(blob), "gzip", UnpackLimits(max_ratio=2, ratio_grace=MiB)) as r,
        pytest.raises(LimitExceededError, match="max_unpack_ratio = 2"),
    ):
        r.read()


def test_budget_adds_up_across_layers() -> None:
    budget = Budget(UnpackLimits(max_bytes=3 * MiB))
    with DecompressingReader(io.BytesIO(bytes(2 * MiB)), "none", layer="sha256:one", budget=budget) as r:
        assert len(r.read()) == 2 * MiB
    with (
        DecompressingReader(io.BytesIO(bytes(2 * MiB)), "none", layer="sha256:two", budget=budget) as r,
        pytest.raises(LimitExceededError) as e,
    ):
        r.read()
    assert str(e.value).startswith("layer sha256:two brings the kit past 3.0 MiB decompressed")
    assert "max_unpack_bytes = 3145728" in str(e.value)


def test_docstring_examples() -> None:
    assert doctest.testmod(decompress, optionflags=doctest.ELLIPSIS).failed == 0


def test_the_quadratic_reader_is_gone() -> None:
    assert not hasattr(unpack, "_Decompressed")


# ---- unpack of real kits --------------------------------------------------------------------------


def zeros_kit(tmp_path: Path, codec: str, mib: int = 64) -> tuple[str, str]:
    """A kit packed by ops.pack whose model layer holds ``mib`` MiB of zeros; (ref, layer digest)."""
    ctx = tmp_path / f"ctx-{codec}-{mib}"
    ctx.mkdir()
    with open(ctx / "zeros.bin", "wb") as f:
        f.truncate(mib * MiB)
    (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel:\n  name: m\n  path: zeros.bin\n")
    ref = f"oci:{tmp_path / f'kit-{codec}-{mib}'}:v1"
    ops.pack(str(ctx), ref, compression=codec)
    layer = ops.inspect(ref).manifest["layers"][0]
    assert layer["mediaType"].endswith(f"+{codec}")
    return ref, layer["digest"]


@pytest.mark.parametrize(
    "limits, key",
    [
        (UnpackLimits(max_ratio=100), "max_unpack_ratio = 100"),
        (UnpackLimits(max_bytes=32 * MiB, max_ratio=1 << 30), "max_unpack_bytes = 33554432"),
    ],
)
@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_zeros_bomb_is_refused_and_nothing_is_written(
    codec: str, limits: UnpackLimits, key: str, tmp_path: Path
) -> None:
    ref, digest = zeros_kit(tmp_path, codec)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(LimitExceededError) as e:
        ops.unpack(ref, str(target), limits=limits)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"layer {digest} decompresses to more than ")
    assert f"(limit [limits] {key})" in msg
    assert msg.endswith("raise it in the admin config if this kit is trusted")
    assert listdir_all(target) == []
    with pytest.raises(LimitExceededError):
        ops.unpack(ref, str(tmp_path / "new"), limits=limits)
    assert not (tmp_path / "new").exists()


def test_entry_limit(tmp_path: Path) -> None:
    tar = hostile_tar([(tinfo(f"f{i}"), b"x") for i in range(5)])
    layout = tmp_path / "kit"
    digest = layout_with_layers(layout, [("code", tar, {"path": "."})])
    layer = ops.inspect(f"oci:{layout}:v1").manifest["layers"][0]["digest"]
    assert digest != layer
    with pytest.raises(LimitExceededError) as e:
        ops.unpack(f"oci:{layout}:v1", str(tmp_path / "t1"), limits=UnpackLimits(max_entries=4))
    assert str(e.value) == (
        f"layer {layer} has more than 4 entries (limit [limits] max_unpack_entries = 4); "
        "raise it in the admin config if this kit is trusted"
    )
    assert not (tmp_path / "t1").exists()
    written = ops.unpack(f"oci:{layout}:v1", str(tmp_path / "t2"), limits=UnpackLimits(max_entries=5))
    assert sorted(w for w in written if w != "Kitfile") == [f"f{i}" for i in range(5)]


def test_total_bytes_limit_counts_every_layer(tmp_path: Path) -> None:
    def layer(name: str) -> bytes:
        return hostile_tar([(tinfo(name), os.urandom(3 * MiB))])

    layout = tmp_path / "kit"
    layout_with_layers(
        layout,
        [("code", layer("a.bin"), {"path": "a"}), ("dataset", layer("b.bin"), {"name": "b", "path": "b"})],
    )
    digests = [d["digest"] for d in ops.inspect(f"oci:{layout}:v1").manifest["layers"]]
    with pytest.raises(LimitExceededError) as e:
        ops.unpack(f"oci:{layout}:v1", str(tmp_path / "t"), limits=UnpackLimits(max_bytes=5 * MiB))
    # whichever layer is unpacked second is the one that crosses the total
    assert str(e.value).split(" brings the kit past 5.0 MiB decompressed ")[0] in [
        f"layer {d}" for d in digests
    ]
    assert "max_unpack_bytes = 5242880" in str(e.value)
    assert not (tmp_path / "t").exists()
    ops.unpack(f"oci:{layout}:v1", str(tmp_path / "t"), limits=UnpackLimits(max_bytes=7 * MiB))
    assert (tmp_path / "t" / "b.bin").stat().st_size == 3 * MiB


def test_extract_layer_takes_limits_and_a_shared_budget(tmp_path: Path) -> None:
    tar = hostile_tar([(tinfo("w.bin"), bytes(2 * MiB))])
    budget = Budget(UnpackLimits(max_bytes=3 * MiB))
    with unpack.Staging(str(tmp_path / "out")) as st:
        unpack.extract_layer(
            io.BytesIO(gzip.compress(tar)),
            "application/vnd.kitops.modelkit.model.v1.tar+gzip",
            st,
            budget=budget,
            layer="sha256:one",
        )
        with pytest.raises(LimitExceededError, match=r"layer sha256:two brings the kit past 3\.0 MiB"):
            unpack.extract_layer(
                io.BytesIO(tar),
                "application/vnd.kitops.modelkit.model.v1.tar",
                st,
                budget=budget,
                layer="sha256:two",
            )


def test_cli_refuses_with_one_line_and_env_raises_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_MODELKIT_CONFIG", raising=False)
    ref, digest = zeros_kit(tmp_path, "gzip", mib=24)
    out = tmp_path / "out"
    monkeypatch.setenv("MLFLOW_MODELKIT_MAX_UNPACK_RATIO", "100")
    r = CliRunner().invoke(main, ["unpack", ref, "-d", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: layer {digest} decompresses to more than 100 times")
    assert "[limits] max_unpack_ratio = 100" in r.stderr
    assert not out.exists()

    monkeypatch.setenv("MLFLOW_MODELKIT_MAX_UNPACK_RATIO", "100000")
    monkeypatch.setenv("MLFLOW_MODELKIT_MAX_UNPACK_BYTES", str(16 * MiB))
    r = CliRunner().invoke(main, ["unpack", ref, "-d", str(out)])
    assert r.exit_code == 2 and "max_unpack_bytes = 16777216" in r.stderr

    monkeypatch.setenv("MLFLOW_MODELKIT_MAX_UNPACK_BYTES", str(64 * MiB))
    r = CliRunner().invoke(main, ["unpack", ref, "-d", str(out)])
    assert r.exit_code == 0, r.stderr
    assert (out / "zeros.bin").stat().st_size == 24 * MiB


def test_scan_reports_a_bomb_layer_as_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow_plugin.scanner.api import scan_kit

    monkeypatch.delenv("MLFLOW_MODELKIT_CONFIG", raising=False)
    monkeypatch.setenv("MLFLOW_MODELKIT_SCAN_CACHE", "0")
    monkeypatch.setenv("MLFLOW_MODELKIT_MAX_UNPACK_RATIO", "100")
    ref, digest = zeros_kit(tmp_path, "zstd", mib=24)
    report = scan_kit(ref)
    hits = [f for f in report.findings if f.rule == "scan.limit.unpack"]
    assert [f.path for f in hits] == [digest]
    assert "max_unpack_ratio = 100" in hits[0].message


def test_gzip_layer_with_several_members_unpacks(tmp_path: Path) -> None:
    """Like ``gzip -dc`` (and Go's gzip reader), concatenated members are one stream."""
    tar = hostile_tar([(tinfo("a.txt"), b"a" * 100_000), (tinfo("b.txt"), os.urandom(50_000))])
    blob = gzip.compress(tar[:70_000], mtime=0) + gzip.compress(tar[70_000:], mtime=0)
    with unpack.Staging(str(tmp_path / "out")) as st:
        names = unpack.extract_layer(
            io.BytesIO(blob), "application/vnd.kitops.modelkit.code.v1.tar+gzip", st, layer="sha256:x"
        )
        st.commit()
    assert names == ["a.txt", "b.txt"]
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        assert (tmp_path / "out" / "b.txt").read_bytes() == tf.extractfile("b.txt").read()  # type: ignore[union-attr]
