#!/usr/bin/env python3
"""Artifact-store benchmark: ``modelkit://`` on a real registry vs curl vs MLflow's local store.

    .venv/bin/python bench/artifact_store.py --size-mb 2048 --rounds 2

Per round, interleaved: curl PUT of the model's bytes, our ``log_artifacts`` of the model
directory into a fresh run, MLflow's own local store (``LocalArtifactRepository``, a disk copy),
our re-log of the unchanged directory (stat cache), our re-log of a byte-identical copy (content
hashed, nothing uploaded), curl GET, our ``download_artifacts``. Then ``list_artifacts`` of a
1,000-file run: HTTP requests made and milliseconds. Each timed operation runs in its own
process, which reports idle and peak RSS. Targets (issue 3): log ≥ 0.9× curl, re-log ≤ 0.1× the
first log, download ≥ 0.9× curl, listing = 1 request and ≤ 50 ms, peak RSS ≤ 100 MB above idle.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from transfer import curl_pull, curl_push, make_file, rss_mb  # noqa: E402


def make_model_dir(root: Path, size_mb: int) -> tuple[Path, str]:
    """An MLflow-style model directory whose big file is the shared random blob."""
    blob = root / f"blob-{size_mb}M.bin"
    digest = make_file(blob, size_mb << 20)
    model = root / f"model-{size_mb}M"
    if not model.exists():
        model.mkdir()
        (model / "MLmodel").write_text(
            "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
        )
        (model / "requirements.txt").write_text("scikit-learn\n")
        (model / "conda.yaml").write_text("dependencies: [python=3.11]\n")
        os.link(blob, model / "weights.bin")
    return model, digest


def worker(args: argparse.Namespace) -> None:
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    from mlflow_plugin.tracking.artifact_repo import ModelKitArtifactRepository

    if args.op == "local-log":
        repo = LocalArtifactRepository(args.uri)
    else:
        repo = ModelKitArtifactRepository(args.uri)
    if args.op == "list":
        import requests

        calls = []
        orig = requests.Session.send

        def send(s, req, **kw):
            calls.append(req.method)
            return orig(s, req, **kw)

        requests.Session.send = send  # type: ignore[method-assign]
        times = []
        for _ in range(args.repeat):
            fresh = ModelKitArtifactRepository(args.uri)  # MLflow builds a new instance per call
            calls.clear()
            t = time.perf_counter()
            listing = fresh.list_artifacts("")
            times.append(time.perf_counter() - t)
            requests_made = len(calls)
        sub = fresh.list_artifacts(listing[0].path)
        print(
            json.dumps(
                {
                    "ms": statistics.median(times) * 1000,
                    "requests": requests_made,
                    "entries": len(listing),
                    "sub_entries": len(sub),
                }
            )
        )
        return
    idle = rss_mb()
    t = time.perf_counter()
    if args.op in ("log", "relog", "local-log"):
        repo.log_artifacts(args.src, "model")
    elif args.op == "download":
        repo.download_artifacts("model", args.dst)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "idle_mb": idle, "peak_mb": peak}))


def run(op: str, uri: str, src: str = "", dst: str = "", repeat: int = 1, env: dict | None = None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--op",
        op,
        "--uri",
        uri,
        "--src",
        src,
        "--dst",
        dst,
        "--repeat",
        str(repeat),
    ]
    os.sync()  # start every timed operation without the previous one's dirty pages
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise SystemExit(f"{op} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--files", type=int, default=1000, help="files in the listing run")
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--op")
    ap.add_argument("--uri")
    ap.add_argument("--src")
    ap.add_argument("--dst")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    from _registries import RegistryServer

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"preparing a {args.size_mb} MiB model directory ...", flush=True)
    model, digest = make_model_dir(work, args.size_mb)
    blob = work / f"blob-{args.size_mb}M.bin"
    size = sum(p.stat().st_size for p in model.iterdir())
    regdir = work / "registry-as"
    shutil.rmtree(regdir, ignore_errors=True)
    regdir.mkdir()
    cache = work / "statcache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {"XDG_CACHE_HOME": str(cache), "MLFLOW_MODELKIT_NO_PROGRESS": "1"}
    server = RegistryServer(
        binary=shutil.which("docker-registry") or "docker-registry", workdir=regdir, name="bench"
    )
    server.start()
    res: dict[str, list[dict]] = {}

    def note(key: str, r: dict) -> None:
        res.setdefault(key, []).append(r)
        extra = f"  peak RSS {r['peak_mb'] - r['idle_mb']:.0f} MB above idle" if "peak_mb" in r else ""
        print(f"  {key:22s} {r['seconds']:7.2f} s  {size / r['seconds'] / 1e6:8.1f} MB/s{extra}", flush=True)

    try:
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}", flush=True)
            run_id = uuid.uuid4().hex
            uri = f"modelkit://{server.host}/bench/r{rnd}/{run_id}/artifacts"
            os.sync()
            note("curl PUT", curl_push(server.host, f"bench/curl{rnd}", blob, digest))
            note("modelkit log", run("log", uri, str(model), env=env))
            local = work / f"mlruns-{rnd}"
            shutil.rmtree(local, ignore_errors=True)
            note("mlflow local log", run("local-log", f"file://{local}", str(model), env=env))
            shutil.rmtree(local, ignore_errors=True)
            note("modelkit re-log", run("relog", uri, str(model), env=env))
            copy = work / f"model-copy-{rnd}"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(model, copy)
            note("modelkit re-log (copy)", run("relog", uri, str(copy), env=env))
            shutil.rmtree(copy, ignore_errors=True)
            out = work / "pulled-curl.bin"
            dst = work / "download"

            def curl_get(rnd: int = rnd, out: Path = out) -> None:
                os.sync()
                note("curl GET", curl_pull(server.host, f"bench/curl{rnd}", digest, out))
                out.unlink(missing_ok=True)

            def ours_get(uri: str = uri, dst: Path = dst) -> None:
                shutil.rmtree(dst, ignore_errors=True)
                dst.mkdir()
                note("modelkit download", run("download", uri, dst=str(dst), env=env))
                shutil.rmtree(dst, ignore_errors=True)

            # alternate who goes first: the VM's disk write-back punishes whoever follows a big write
            for fn in (curl_get, ours_get) if rnd % 2 == 0 else (ours_get, curl_get):
                fn()
        # listing a 1,000-file run
        many = work / "many-files"
        shutil.rmtree(many, ignore_errors=True)
        for i in range(args.files):
            d = many / f"dir{i % 10:02d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"file{i:04d}.txt").write_text(f"{i}\n")
        luri = f"modelkit://{server.host}/bench/list/{uuid.uuid4().hex}/artifacts"
        run("log", luri, str(many), env=env)
        listing = run("list", luri, repeat=20, env=env)
    finally:
        server.stop()
        shutil.rmtree(regdir, ignore_errors=True)

    med = {k: statistics.median(r["seconds"] for r in v) for k, v in res.items()}
    rss = max(r["peak_mb"] - r["idle_mb"] for k, v in res.items() for r in v if "peak_mb" in r)
    print(f"\n== {size / 2**20:.0f} MiB model directory, {args.rounds} rounds, medians ==")
    for k, v in med.items():
        print(f"{k:24s} {v:8.2f} s {size / v / 1e6:9.1f} MB/s")
    print(f"\nlog vs curl PUT:        {med['curl PUT'] / med['modelkit log']:.2f}x  (target ≥ 0.90)")
    print(f"log vs MLflow local:    {med['mlflow local log'] / med['modelkit log']:.2f}x")
    relog = med["modelkit re-log"] / med["modelkit log"]
    relog_copy = med["modelkit re-log (copy)"] / med["modelkit log"]
    print(f"re-log / first log:     {relog:.3f}  (target ≤ 0.10; stat cache)")
    print(f"re-log copy / first:    {relog_copy:.3f}  (content hashed, 0 bytes up)")
    print(f"download vs curl GET:   {med['curl GET'] / med['modelkit download']:.2f}x  (target ≥ 0.90)")
    print(
        f"list_artifacts, {args.files} files: {listing['requests']} request(s), {listing['ms']:.1f} ms "
        f"(targets: 1 request, ≤ 50 ms); {listing['entries']} top-level entries"
    )
    print(f"peak RSS above idle:    {rss:.0f} MB  (target ≤ 100)")


if __name__ == "__main__":
    main()
