#!/usr/bin/env python3
"""Publish benchmark: publishing an already-logged run must not move its bytes again.

    .venv/bin/python bench/publish.py --size-mb 2048

Logs a run whose model directory holds a ``--size-mb`` weights file into ``modelkit://`` on a
local registry (not timed), then measures, in this order: a scan of the run's draft kit (the
same layers publish will scan: streamed from the registry and verified), and ``publish_run``
(compose, scan, provenance, attestations, signatures, tag, run tags). Prints the bytes publish
uploaded (every request body counted) and its time against the scan time.
Targets (issue 5): bytes uploaded ≤ 1 MB; publish time ≤ scan time + 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048)
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    os.environ["MLFLOW_MODELKIT_NO_PROGRESS"] = "1"
    from _registries import RegistryServer
    from artifact_store import make_model_dir

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    model, _digest = make_model_dir(work, args.size_mb)
    regdir = work / "registry-publish"
    shutil.rmtree(regdir, ignore_errors=True)
    regdir.mkdir()
    server = RegistryServer(
        binary=shutil.which("docker-registry") or "docker-registry", workdir=regdir, name="pub"
    )
    server.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        import mlflow
        import requests

        from mlflow_plugin.harden.publish import publish_run
        from mlflow_plugin.scanner.api import scan_kit
        from mlflow_plugin.trust.keys import generate_keypair

        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        store = f"{server.host}/bench/pub{uuid.uuid4().hex[:6]}"
        exp = mlflow.create_experiment("bench", artifact_location=f"modelkit://{store}")
        print(
            f"logging a {args.size_mb} MiB model directory into modelkit://{store} (not timed) ...",
            flush=True,
        )
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.log_params({"lr": 0.01, "epochs": 3})
            mlflow.log_metric("auc", 0.93)
            mlflow.log_artifacts(str(model), "model")
        key, _pub = generate_keypair(str(tmp / "keys"), b"bench-passphrase")

        os.sync()
        t = time.perf_counter()
        report = scan_kit(f"{store}:run-{run.info.run_id}")
        t_scan = time.perf_counter() - t
        counts = f"{len(report.files)} files, {len(report.findings)} findings"
        print(f"scan of the run's kit:  {t_scan:6.2f} s  ({counts})")

        sent = {"bytes": 0, "requests": 0}
        orig = requests.Session.send

        def send(session, req, **kw):  # type: ignore[no-untyped-def]
            sent["requests"] += 1
            body = req.body
            if body is not None:
                try:
                    sent["bytes"] += len(body)
                except TypeError:
                    sent["bytes"] += int(req.headers.get("Content-Length", 0) or 0)
            return orig(session, req, **kw)

        requests.Session.send = send  # type: ignore[method-assign]
        os.sync()
        t = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
        result = publish_run(run.info.run_id, tag="v1", key=key, password=b"bench-passphrase")
        if os.environ.get("BENCH_PROFILE"):
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        t_pub = time.perf_counter() - t
        requests.Session.send = orig  # type: ignore[method-assign]
    finally:
        server.stop()
        shutil.rmtree(regdir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"publish:                {t_pub:6.2f} s  -> {result.reference}@{result.digest[:19]}…")
    print(
        f"\nbytes uploaded by publish: {sent['bytes']:,} in {sent['requests']} requests (target ≤ 1,000,000)"
    )
    print(f"publish time - scan time:  {t_pub - t_scan:+.2f} s (target ≤ +2.00 s)")


if __name__ == "__main__":
    main()
