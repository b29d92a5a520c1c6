#!/usr/bin/env python3
"""Unpack benchmark: ``ops.unpack`` of a compressed layer vs ``gzip -dc`` / ``zstd -dc``, and bombs.

    .venv/bin/python bench/unpack.py --size-mb 1024 --rounds 2

1. A compressible dataset (CSV rows with structure, fixed seed; about 3-4x compressible, cached in
   the work directory) is packed with ``ops.pack(compression="gzip"|"zstd")`` into an ``oci:``
   layout. Per round, interleaved: ``gzip -dc BLOB > FILE`` (or ``zstd -dc``) on the layer blob,
   then our ``ops.unpack`` of that kit (digest check, tar parsing, staging, limits). Each runs in
   its own process and is timed there, the interpreter's start-up excluded. Prints wall time,
   throughput (decompressed MB/s), ours/baseline (target: ≤ 1.5), CPU seconds (robust when the
   machine is shared) and our peak RSS above the idle process. ``--staging-write-kb N`` adds a
   diagnostic row: ``ops.unpack`` with ``Staging.add_file`` moving N KiB per read/write instead
   of its 128 KiB (on Linux 6.x VMs with a free-page-reporting balloon, 1 MiB writes to ext4 cost
   several times the kernel time of 128 KiB ones: try 1024 to see it).
2. Bombs: a gzip and a zstd layer whose tar holds ``--bomb-mb`` MiB of zeros, unpacked with the
   default limits in their own process: time until refusal, peak RSS above idle, the message.
   Target: refused in under 2 s with flat memory.
Not a test: numbers vary with the machine; compare only within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from transfer import rss_mb  # noqa: E402

SEED = 20240611
BLOCK = 16 << 20  # distinct CSV generated per block; blocks repeat beyond gzip's and zstd's windows
CODECS = ("gzip", "zstd")


def peak_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would include the parent's from before exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_csv(path: Path, size: int) -> None:
    """``size`` bytes of sensor-style CSV (timestamps, ids, categories, floats); deterministic."""
    marker = path.with_suffix(".ok")
    if path.exists() and path.stat().st_size == size and marker.exists():
        return
    rng = random.Random(SEED)
    sites = [f"site-{i:03d}" for i in range(40)]
    kinds = ["temp", "humidity", "pressure", "wind", "rain", "co2"]
    rows = ["ts,site,sensor,kind,value,quality,flag\n"]
    n, ts, got = 0, 1_700_000_000, 0
    while got < BLOCK:
        ts += rng.randint(1, 30)
        kind = rng.choice(kinds)
        row = (
            f"{ts},{rng.choice(sites)},{rng.randint(1, 5000)},{kind},"
            f"{rng.gauss(20, 8):.4f},{rng.random():.3f},{'ok' if rng.random() < 0.97 else 'suspect'}\n"
        )
        rows.append(row)
        got += len(row)
        n += 1
    block = "".join(rows).encode()[:BLOCK]
    with open(path, "wb") as f:
        left = size
        while left:
            b = block[: min(len(block), left)]
            f.write(b)
            left -= len(b)
    marker.write_text("ok")


def pack_kit(work: Path, name: str, data_file: Path, codec: str, kind: str) -> tuple[str, Path]:
    """Pack ``data_file`` (hard-linked into a context) as one layer; returns (ref, layer blob path)."""
    from mlflow_plugin import packaging as ops

    ctx = work / f"ctx-{name}"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    os.link(data_file, ctx / data_file.name)
    if kind == "dataset":
        entry = f"datasets:\n  - name: data\n    path: {data_file.name}\n"
    else:
        entry = f"model:\n  name: m\n  path: {data_file.name}\n"
    (ctx / "Kitfile").write_text(f"manifestVersion: 1.0.0\npackage:\n  name: {name}\n{entry}")
    layout = work / f"kit-{name}"
    shutil.rmtree(layout, ignore_errors=True)
    ref = f"oci:{layout}:v1"
    ops.pack(str(ctx), ref, compression=codec)
    shutil.rmtree(ctx)
    index = json.loads((layout / "index.json").read_text())
    mdigest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / mdigest.split(":")[1]).read_text())
    layer = manifest["layers"][0]["digest"]
    return ref, layout / "blobs" / "sha256" / layer.split(":")[1]


# ---- workers (run in their own process) ---------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    from mlflow_plugin import packaging as ops
    from mlflow_plugin.errors import LimitExceededError

    out = Path(args.out)
    if args.staging_write_kb:  # diagnostic only: Staging.add_file reads/writes WRITE_CHUNK bytes at a time
        from mlflow_plugin.kit import unpack

        unpack.WRITE_CHUNK = args.staging_write_kb << 10
    idle = rss_mb()
    who = resource.RUSAGE_CHILDREN if args.worker == "baseline" else resource.RUSAGE_SELF
    r0 = resource.getrusage(who)
    t = time.perf_counter()
    refused = ""
    if args.worker == "baseline":
        with open(out, "wb") as f:
            subprocess.run([args.codec, "-dc", args.ref], stdout=f, check=True)
    else:
        try:
            ops.unpack(args.ref, str(out), filters=["datasets", "model"])
        except LimitExceededError as e:
            refused = str(e)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(who)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    left = sum(len(fs) + len(ds) for _, ds, fs in os.walk(out)) if out.is_dir() else int(out.exists())
    res = {"seconds": dt, "cpu": cpu, "refused": refused, "left": left}
    if args.worker != "baseline":
        res.update(idle_mb=idle, peak_mb=peak_mb())
    print(json.dumps(res))


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def run_worker(kind: str, ref: str, out: Path, codec: str = "", staging_write_kb: int = 0) -> dict:
    """``kind`` ours (ops.unpack of ``ref``) or baseline (``codec -dc`` of the blob ``ref``)."""
    remove(out)
    os.sync()  # no dirty pages from the previous run
    cmd = [sys.executable, __file__, "--worker", kind, "--ref", ref, "--out", str(out)]
    cmd += ["--codec", codec, "--staging-write-kb", str(staging_write_kb)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{r.stderr[-3000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    remove(out)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="decompressed size of the dataset layer")
    ap.add_argument("--bomb-mb", type=int, default=1024, help="decompressed size of the bombs")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out" / "unpack"))
    ap.add_argument("--worker", choices=["ours", "baseline", "ours-chunk"])
    ap.add_argument("--ref")
    ap.add_argument("--out")
    ap.add_argument("--codec", default="")
    ap.add_argument(
        "--staging-write-kb",
        type=int,
        default=0,
        help="also time ops.unpack with Staging writing this many KiB per write (diagnostic row)",
    )
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    for tool in CODECS:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install -y {tool})")

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    size = args.size_mb << 20
    data = work / f"data-{args.size_mb}M.csv"
    print(f"preparing {args.size_mb} MiB CSV and packing it (gzip, zstd) ...", flush=True)
    make_csv(data, size)
    kits = {codec: pack_kit(work, f"data-{codec}", data, codec, "dataset") for codec in CODECS}
    for codec, (_ref, blob) in kits.items():
        print(f"  {codec}: layer blob {blob.stat().st_size / 1e6:.1f} MB ({size / blob.stat().st_size:.2f}x)")

    results: dict[str, list[dict]] = {}
    tools = ["baseline", "ours"] + (["ours-chunk"] if args.staging_write_kb else [])
    for rnd in range(args.rounds):
        for codec, (ref, blob) in kits.items():
            for tool in tools:
                if tool == "baseline":
                    r = run_worker("baseline", str(blob), work / "baseline.out", codec)
                else:
                    kb = args.staging_write_kb if tool == "ours-chunk" else 0
                    r = run_worker(tool, ref, work / "unpacked", staging_write_kb=kb)
                    if r["refused"]:
                        raise SystemExit(f"unpack refused the dataset: {r['refused']}")
                results.setdefault(f"{codec}/{tool}", []).append(r)
                rss = f"  peak RSS {r['peak_mb'] - r['idle_mb']:.0f} MB above idle" if "peak_mb" in r else ""
                print(
                    f"round {rnd + 1} {codec} {tool:10s} {r['seconds']:7.2f} s"
                    f"  {size / r['seconds'] / 1e6:7.1f} MB/s  cpu {r['cpu']:5.2f} s{rss}",
                    flush=True,
                )

    print(f"\n== unpack {args.size_mb} MiB, {args.rounds} interleaved rounds, medians ==")
    head = ("codec", "tool", "seconds", "MB/s", "ours/base", "cpu s", "cpu ratio", "peak RSS +idle")
    print("{:6s} {:12s} {:>8s} {:>8s} {:>10s} {:>7s} {:>10s} {:>15s}".format(*head))
    for codec in CODECS:
        base = statistics.median(r["seconds"] for r in results[f"{codec}/baseline"])
        base_cpu = statistics.median(r["cpu"] for r in results[f"{codec}/baseline"])
        for tool in tools:
            rs = results[f"{codec}/{tool}"]
            med = statistics.median(r["seconds"] for r in rs)
            cpu = statistics.median(r["cpu"] for r in rs)
            peak = max((r["peak_mb"] - r["idle_mb"] for r in rs if "peak_mb" in r), default=None)
            label = {
                "baseline": f"{codec} -dc",
                "ours": "ops.unpack",
                "ours-chunk": f"  writes {args.staging_write_kb}K",
            }[tool]
            print(
                f"{codec:6s} {label:12s} {med:8.2f} {size / med / 1e6:8.1f} {med / base:9.2f}x"
                f" {cpu:7.2f} {cpu / base_cpu:9.2f}x {'' if peak is None else f'{peak:.0f} MB':>15s}"
            )
    print("target: ours/base <= 1.5")

    print(f"\n== bombs: {args.bomb_mb} MiB of zeros, default limits ==", flush=True)
    zeros = work / f"zeros-{args.bomb_mb}M.bin"
    with open(zeros, "wb") as f:
        f.truncate(args.bomb_mb << 20)  # sparse: no disk used for the source
    for codec in CODECS:
        ref, blob = pack_kit(work, f"bomb-{codec}", zeros, codec, "model")
        r = run_worker("ours", ref, work / "bomb-out")
        verdict = "refused" if r["refused"] else "NOT REFUSED"
        print(
            f"{codec:5s} layer {blob.stat().st_size / 1e3:8.1f} kB → {args.bomb_mb} MiB: {verdict} after "
            f"{r['seconds']:.2f} s, peak RSS {r['peak_mb'] - r['idle_mb']:.0f} MB above idle "
            f"({r['peak_mb']:.0f} MB total), {r['left']} paths left in the target"
        )
        if r["refused"]:
            print(f"      {r['refused']}")
        shutil.rmtree(Path(ref[4:].rsplit(":", 1)[0]), ignore_errors=True)
    zeros.unlink()
    print("target: refused in < 2 s, flat memory")


if __name__ == "__main__":
    main()
