#!/usr/bin/env python3
"""Encryption benchmark: ocicrypt-format encrypt/decrypt of a kit vs openssl and skopeo, same run.

    .venv/bin/python bench/encryption.py --size-mb 1024 --rounds 2

A run logging one incompressible ``model.bin`` of ``--size-mb`` MiB through ``modelkit://`` (local
OCI layout, SQLite tracking) is published twice: plain and ``encrypt_for`` an EC P-256 recipient
(both rows time the whole ``publish_run``: compose, scan, encrypt, attest, sign). Then, per round,
interleaved, each operation in its own process (interpreter start-up excluded, peak RSS above the
idle process recorded):

* ``openssl``: ``openssl enc -aes-256-ctr`` piped through ``openssl dgst -sha256 -hmac`` -- the
  same primitives (AES-256-CTR, HMAC-SHA256 over the ciphertext) in C, the encryption baseline;
* ``ours encrypt``: :func:`mlflow_plugin.trust.ocicrypt.encrypt_layer` of the plaintext layer blob
  (AES-CTR + HMAC + SHA-256 of plaintext and ciphertext, one streaming pass);
* ``skopeo decrypt``: ``skopeo copy --decryption-key`` of the encrypted kit into a ``dir:`` -- the
  ecosystem's ocicrypt implementation (Go), the decryption baseline (it also re-hashes);
* ``ours unpack enc``: ``unpack --decrypt-key`` (unwrap, decrypt into staging, HMAC + digests,
  untar) and ``ours unpack plain``: the same kit unencrypted, so the cost of decryption shows;
* ``ours verify enc``: deep ``verify`` as a recipient (attestations decrypted, every layer
  re-decrypted to its HMAC and plaintext digest, nothing written).

Prints medians and ours/baseline ratios. Memory must not grow with the model: run two sizes and
compare the peak RSS rows. Not a test: numbers vary with the machine; compare only within one run.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from transfer import rss_mb  # noqa: E402
from unpack import peak_mb  # noqa: E402

KEY_HEX = "11" * 32  # openssl's fixed key and IV: the baseline's cost does not depend on them
IV_HEX = "22" * 16


def prepare(work: Path, size_mb: int) -> dict[str, str]:
    """Log the run, publish it plain and encrypted; returns refs, blob paths and key paths."""
    import mlflow
    from mlflow import MlflowClient

    from mlflow_plugin import generate_keypair, publish_run
    from mlflow_plugin.trust.ocicrypt import generate_recipient_keypair

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["MLFLOW_MODELKIT_SCAN_CACHE"] = "0"
    uri = f"sqlite:///{work}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("enc-bench", artifact_location=f"modelkit://{work}/kits/src")
    run = client.create_run(exp)
    data = work / "model.bin"
    with open(data, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    client.log_artifact(run.info.run_id, str(data))
    client.set_terminated(run.info.run_id)
    signing = generate_keypair(str(work / "signing"), password="")
    pub, key = generate_recipient_keypair(str(work / "recipient"))
    mlflow.set_tracking_uri(uri)
    out: dict[str, str] = {"key": key, "signing_pub": signing.public, "data": str(data)}
    for name, enc in (("plain", []), ("enc", [pub])):
        t = time.perf_counter()
        r = publish_run(
            run.info.run_id, "v1", key=signing.private, tracking_uri=uri,
            repository=f"oci:{work}/kits/{name}", encrypt_for=enc,
        )  # fmt: skip
        out[f"publish_{name}_s"] = str(time.perf_counter() - t)
        out[f"{name}_ref"] = r.reference
        layout = Path(r.store[4:])
        m = json.loads((layout / "blobs" / "sha256" / r.digest.split(":")[1]).read_text())
        out[f"{name}_blob"] = str(layout / "blobs" / "sha256" / m["layers"][0]["digest"].split(":")[1])
    return out


def worker(args: argparse.Namespace) -> None:
    kit = json.loads(Path(args.kit).read_text())
    out = Path(args.out)
    idle = rss_mb()
    who = resource.RUSAGE_CHILDREN if args.worker in ("openssl", "skopeo") else resource.RUSAGE_SELF
    r0 = resource.getrusage(who)
    t = time.perf_counter()
    if args.worker == "openssl":
        cmd = (
            f"openssl enc -aes-256-ctr -K {KEY_HEX} -iv {IV_HEX} -in {kit['plain_blob']} "
            f"| tee {out} | openssl dgst -sha256 -mac HMAC -macopt hexkey:{KEY_HEX} > /dev/null"
        )
        subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    elif args.worker == "skopeo":
        subprocess.run(
            [
                "skopeo",
                "copy",
                "-q",
                "--decryption-key",
                kit["key"],
                f"oci:{kit['enc_ref'][4:]}",
                f"dir:{out}",
            ],
            check=True,
            capture_output=True,
        )
    elif args.worker == "encrypt":
        from mlflow_plugin.trust import ocicrypt

        recipient = ocicrypt.load_recipient(str(Path(kit["key"]).with_name("enc.pub")))
        with open(kit["plain_blob"], "rb") as src, open(out, "wb") as dst:
            ocicrypt.encrypt_layer(src, dst, [recipient])
    elif args.worker == "unpack-enc":
        from mlflow_plugin import unpack

        unpack(kit["enc_ref"], str(out), decrypt_keys=[kit["key"]])
    elif args.worker == "unpack-plain":
        from mlflow_plugin import unpack

        unpack(kit["plain_ref"], str(out))
    elif args.worker == "verify-enc":
        from mlflow_plugin import verify

        result = verify(kit["enc_ref"], keys=[kit["signing_pub"]], decrypt_keys=[kit["key"]])
        if not result.ok:
            raise SystemExit(f"verify failed: {result.failures()}")
    dt = time.perf_counter() - t
    r1 = resource.getrusage(who)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    print(json.dumps({"seconds": dt, "cpu": cpu, "rss": peak_mb() - idle}))


def run_worker(kind: str, kit_file: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
    os.sync()
    cmd = [sys.executable, __file__, "--worker", kind, "--kit", str(kit_file), "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{r.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


ROWS = [  # (worker, label, baseline worker or None)
    ("openssl", "openssl enc+hmac", None),
    ("encrypt", "ours encrypt", "openssl"),
    ("skopeo", "skopeo decrypt", None),
    ("unpack-enc", "ours unpack enc", "skopeo"),
    ("unpack-plain", "ours unpack plain", None),
    ("verify-enc", "ours verify enc", "skopeo"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out" / "encryption"))
    ap.add_argument("--worker")
    ap.add_argument("--kit")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    for tool in ("openssl", "skopeo"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install -y {tool})")
    work = Path(args.workdir)
    print(f"logging and publishing a {args.size_mb} MiB model, plain and encrypted ...", flush=True)
    kit = prepare(work / "kits", args.size_mb)
    kit_file = work / "kit.json"
    kit_file.write_text(json.dumps(kit))
    size = args.size_mb << 20
    pp, pe = float(kit["publish_plain_s"]), float(kit["publish_enc_s"])
    print(f"publish plain {pp:.2f} s, encrypted {pe:.2f} s (x{pe / pp:.2f})", flush=True)
    results: dict[str, list[dict]] = {}
    for rnd in range(args.rounds):
        for kind, label, _base in ROWS:
            r = run_worker(kind, kit_file, work / "out")
            results.setdefault(kind, []).append(r)
            print(
                f"round {rnd + 1} {label:18s} {r['seconds']:7.2f} s {size / r['seconds'] / 1e6:7.1f} MB/s"
                f"  cpu {r['cpu']:6.2f} s  peak RSS +{r['rss']:.0f} MB",
                flush=True,
            )
    print(f"\n== {args.size_mb} MiB model, {args.rounds} interleaved rounds, medians ==")
    head = ("operation", "seconds", "MB/s", "vs", "ratio", "cpu s", "cpu ratio", "peak RSS +idle")
    print(f"{head[0]:18s} {head[1]:>8s} {head[2]:>8s} {head[3]:>16s} {head[4]:>6s}", end="")
    print(f" {head[5]:>7s} {head[6]:>9s} {head[7]:>15s}")
    med = {k: statistics.median(x["seconds"] for x in v) for k, v in results.items()}
    cpu = {k: statistics.median(x["cpu"] for x in v) for k, v in results.items()}
    for kind, label, base in ROWS:
        rss = statistics.median(x["rss"] for x in results[kind])
        ratio = f"{med[kind] / med[base]:.2f}" if base else ""
        cratio = f"{cpu[kind] / cpu[base]:.2f}" if base else ""
        vs = dict((k, lbl) for k, lbl, _b in ROWS).get(base, "") if base else ""
        rss_s = f"{rss:.0f} MB" if kind not in ("openssl", "skopeo") else "(child)"
        print(
            f"{label:18s} {med[kind]:8.2f} {size / med[kind] / 1e6:8.1f} {vs:>16s} {ratio:>6s}"
            f" {cpu[kind]:7.2f} {cratio:>9s} {rss_s:>15s}"
        )
    print(f"{'publish (total)':18s} plain {pp:.2f} s, encrypted {pe:.2f} s: x{pe / pp:.2f}")


if __name__ == "__main__":
    main()
