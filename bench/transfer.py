#!/usr/bin/env python3
"""Transfer benchmark: our registry client vs curl vs naive oras-py, interleaved, one registry.

    .venv/bin/python bench/transfer.py --size-mb 2048 --rounds 2

For each round, in this order: curl PUT, our push, oras-py push, then curl GET, our pull (with
inline digest verification), oras-py pull. Every push goes to a fresh repository so nothing is
deduplicated. Each tool runs in its own process; ours reports idle and peak RSS. Prints every
time, the medians, the throughput ratios ours/curl (1.0 = as fast as curl) and our peak RSS
above idle. Targets (issue 2): push ≥ 0.9× curl, pull ≥ 0.9× curl, RSS ≤ 100 MB above idle.
Not a test: numbers vary with the machine; compare only within one run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_file(path: Path, size: int) -> str:
    """Random file of ``size`` bytes (kept between runs); returns its sha256 digest."""
    meta = path.with_suffix(".sha256")
    if path.exists() and path.stat().st_size == size and meta.exists():
        return meta.read_text().strip()
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(8 << 20, left))
            h.update(b)
            f.write(b)
            left -= len(b)
    digest = "sha256:" + h.hexdigest()
    meta.write_text(digest)
    return digest


# ---- workers (run in their own process) ---------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    size = os.path.getsize(args.file)
    if args.worker == "ours-push":
        from mlflow_plugin.storage.registry import RegistryRepository

        repo = RegistryRepository(args.host, args.repo)
        idle = rss_mb()
        t = time.perf_counter()
        with open(args.file, "rb") as f:
            repo.push_blob(f, args.digest, size)
        dt = time.perf_counter() - t
    elif args.worker == "ours-pull":
        from mlflow_plugin.storage.registry import RegistryRepository

        repo = RegistryRepository(args.host, args.repo)
        idle = rss_mb()
        t = time.perf_counter()
        with repo.open_blob(args.digest, size) as src, open(args.out, "wb") as out:
            src.copy_to(out)  # read, sha256-verify and write overlapped on threads
        dt = time.perf_counter() - t
    elif args.worker == "oras-push":
        import oras.provider

        reg = oras.provider.Registry(hostname=args.host, insecure=True)
        idle = rss_mb()
        container = reg.get_container(f"{args.host}/{args.repo}:x")
        t = time.perf_counter()
        layer = {"mediaType": "application/octet-stream", "digest": args.digest, "size": size}
        r = reg.upload_blob(args.file, container, layer)
        r.raise_for_status()
        dt = time.perf_counter() - t
    elif args.worker == "oras-pull":
        import oras.provider

        reg = oras.provider.Registry(hostname=args.host, insecure=True)
        idle = rss_mb()
        container = reg.get_container(f"{args.host}/{args.repo}:x")
        t = time.perf_counter()
        reg.download_blob(container, args.digest, args.out)
        dt = time.perf_counter() - t
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    print(json.dumps({"seconds": dt, "idle_mb": idle, "peak_mb": peak_mb()}))


def run_worker(name: str, host: str, repo: str, file: Path, digest: str, out: Path | None = None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--host",
        host,
        "--repo",
        repo,
        "--file",
        str(file),
        "--digest",
        digest,
    ]
    if out:
        cmd += ["--out", str(out)]
    os.sync()  # no dirty pages from the previous operation
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def curl_push(host: str, repo: str, file: Path, digest: str) -> dict:
    import requests

    os.sync()
    t = time.perf_counter()
    r = requests.post(f"http://{host}/v2/{repo}/blobs/uploads/", timeout=30)
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else f"http://{host}{loc}"
    sep = "&" if "?" in loc else "?"
    subprocess.run(
        [
            "curl",
            "-sS",
            "-f",
            "-o",
            "/dev/null",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "-T",
            str(file),
            f"{loc}{sep}digest={digest}",
        ],
        check=True,
    )
    return {"seconds": time.perf_counter() - t}


def curl_pull(host: str, repo: str, digest: str, out: Path) -> dict:
    os.sync()
    t = time.perf_counter()
    subprocess.run(
        ["curl", "-sS", "-f", "-L", "-o", str(out), f"http://{host}/v2/{repo}/blobs/{digest}"], check=True
    )
    return {"seconds": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    ap.add_argument(
        "--skip-oras", action="store_true", help="skip naive oras-py (its push holds the blob in RAM)"
    )
    ap.add_argument("--worker")
    ap.add_argument("--host")
    ap.add_argument("--repo")
    ap.add_argument("--file")
    ap.add_argument("--digest")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    from _registries import RegistryServer

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"blob-{args.size_mb}M.bin"
    print(f"preparing {args.size_mb} MiB random file ...", flush=True)
    digest = make_file(src, args.size_mb << 20)
    size = src.stat().st_size
    binary = shutil.which("docker-registry")
    if not binary:
        raise SystemExit("docker-registry is not installed (make system-deps)")
    regdir = work / "registry"
    shutil.rmtree(regdir, ignore_errors=True)
    regdir.mkdir()
    server = RegistryServer(binary=binary, workdir=regdir, name="bench")
    server.start()
    results: dict[str, list[dict]] = {}
    tools = ["curl", "ours"] + ([] if args.skip_oras else ["oras"])
    try:
        for rnd in range(args.rounds):
            for tool in tools:
                repo = f"bench/r{rnd}-{tool}"
                if tool == "curl":
                    r = curl_push(server.host, repo, src, digest)
                else:
                    r = run_worker(f"{tool}-push", server.host, repo, src, digest)
                results.setdefault(f"push/{tool}", []).append(r)
                print(
                    f"round {rnd + 1} push {tool:5s} {r['seconds']:7.2f} s"
                    f"  {size / r['seconds'] / 1e6:7.1f} MB/s"
                    + (
                        f"  peak RSS {r['peak_mb'] - r['idle_mb']:.0f} MB above idle"
                        if "peak_mb" in r
                        else ""
                    ),
                    flush=True,
                )
            for tool in tools:
                repo = f"bench/r{rnd}-{tool}"
                out = work / f"pulled-{tool}.bin"
                if tool == "curl":
                    r = curl_pull(server.host, repo, digest, out)
                else:
                    r = run_worker(f"{tool}-pull", server.host, repo, src, digest, out)
                results.setdefault(f"pull/{tool}", []).append(r)
                out.unlink(missing_ok=True)
                print(
                    f"round {rnd + 1} pull {tool:5s} {r['seconds']:7.2f} s"
                    f"  {size / r['seconds'] / 1e6:7.1f} MB/s"
                    + (
                        f"  peak RSS {r['peak_mb'] - r['idle_mb']:.0f} MB above idle"
                        if "peak_mb" in r
                        else ""
                    ),
                    flush=True,
                )
    finally:
        server.stop()
        shutil.rmtree(regdir, ignore_errors=True)

    print(f"\n== {args.size_mb} MiB, {args.rounds} interleaved rounds, medians ==")
    print(f"{'op':6s} {'tool':6s} {'seconds':>8s} {'MB/s':>8s} {'vs curl':>8s} {'peak RSS above idle':>20s}")
    for op in ("push", "pull"):
        base = statistics.median(r["seconds"] for r in results[f"{op}/curl"])
        for tool in tools:
            rs = results[f"{op}/{tool}"]
            med = statistics.median(r["seconds"] for r in rs)
            rss = max((r["peak_mb"] - r["idle_mb"] for r in rs if "peak_mb" in r), default=None)
            print(
                f"{op:6s} {tool:6s} {med:8.2f} {size / med / 1e6:8.1f} {base / med:7.2f}x"
                f" {'' if rss is None else f'{rss:.0f} MB':>20s}"
            )
    ours_push = statistics.median(r["seconds"] for r in results["push/ours"])
    ours_pull = statistics.median(r["seconds"] for r in results["pull/ours"])
    cp = statistics.median(r["seconds"] for r in results["push/curl"])
    cg = statistics.median(r["seconds"] for r in results["pull/curl"])
    rss = max(r["peak_mb"] - r["idle_mb"] for k in ("push/ours", "pull/ours") for r in results[k])
    print(
        f"\nratios ours/curl (throughput): push {cp / ours_push:.2f}x (target ≥0.90), "
        f"pull {cg / ours_pull:.2f}x (target ≥0.90); our peak RSS {rss:.0f} MB above idle (target ≤100)"
    )


if __name__ == "__main__":
    main()
