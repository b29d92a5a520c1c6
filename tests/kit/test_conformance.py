"""Byte-for-byte conformance of our packer with ``kit pack``: the repository's own golden cases.

``tests/golden/caseN/`` holds a context (``ctx/``), the exact bytes ``kit pack`` writes for it
(``expected/``: manifest, config, layer tars) and ``case.json`` (file modes, empty directories,
the SHA-256 of every context file, the pinned ``created`` and ``cli-version``). The expected bytes
come from the format's published digests and rules, not from our own output (see
``tests/golden/make_cases.py``). Each case is packed by the CLI in a subprocess, as a user runs it,
into an OCI image layout, and every blob is compared byte for byte; these tests need nothing
outside the repository.

When the team's shared conformance vectors are checked out beside the repository
(``../shared/conformance/kitops/check.py``), their checker also runs, over its own cases and over
ours; without them those tests are skipped, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CASES = sorted(p for p in GOLDEN.iterdir() if (p / "case.json").is_file())
SHARED_CHECK = ROOT.parent / "shared" / "conformance" / "kitops" / "check.py"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


# ---- the repository's own golden cases ------------------------------------------------------------


def prepare_context(case_dir: Path, case: dict, ctx: Path) -> None:
    """Copy ``ctx/``, restore what git does not keep (empty dirs, modes) and check every file."""
    shutil.copytree(case_dir / "ctx", ctx, symlinks=True)
    for d in case.get("dirs", []):
        (ctx / d).mkdir(parents=True, exist_ok=True)
    for rel, target in case.get("symlinks", {}).items():
        p = ctx / rel
        if not p.is_symlink():
            if p.exists():
                p.unlink()
            p.symlink_to(target)
    for rel, digest in case["file_sha256"].items():
        got = hashlib.sha256((ctx / rel).read_bytes()).hexdigest()
        assert got == digest, f"{case_dir.name}: ctx/{rel} is damaged in this checkout (line endings?)"
    for rel, mode in case["file_modes"].items():
        os.chmod(ctx / rel, int(mode, 8))
    os.chmod(ctx, 0o755)


def read_blob(layout: Path, desc: dict) -> bytes:
    """A blob of the layout, checked against its descriptor's digest and size."""
    alg, _, hexd = desc["digest"].partition(":")
    data = (layout / "blobs" / alg / hexd).read_bytes()
    assert alg == "sha256" and hashlib.sha256(data).hexdigest() == hexd, f"blob {desc['digest']} is corrupt"
    assert len(data) == desc["size"], f"blob {desc['digest']}: size {len(data)} != descriptor {desc['size']}"
    return data


def tagged_manifest(layout: Path, tag: str) -> bytes:
    index = json.loads((layout / "index.json").read_bytes())
    found = [
        d
        for d in index.get("manifests", [])
        if (d.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
    ]
    assert len(found) == 1, f"index.json has {len(found)} manifests tagged {tag!r}"
    assert found[0]["mediaType"] != OCI_INDEX
    return read_blob(layout, found[0])


def same_bytes(what: str, expected: bytes, got: bytes) -> None:
    """Equal, or a message naming the first differing byte (and what surrounds it in text)."""
    if expected == got:
        return
    off = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), None)
    off = min(len(expected), len(got)) if off is None else off
    msg = f"{what} differs at byte {off} (expected {len(expected)} bytes, got {len(got)})"
    if not what.endswith(".tar"):
        lo = max(0, off - 40)
        msg += f"\n  expected: …{expected[lo : off + 40]!r}…\n  got:      …{got[lo : off + 40]!r}…"
    pytest.fail(msg)


def test_golden_cases_are_present() -> None:
    assert len(CASES) >= 2, f"tests/golden holds {len(CASES)} cases; case1 and case2 are in git"


@pytest.mark.parametrize("case_dir", CASES, ids=[c.name for c in CASES])
def test_own_golden_case(case_dir: Path, tmp_path: Path) -> None:
    case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    ctx, out = tmp_path / "ctx", tmp_path / "out"
    prepare_context(case_dir, case, ctx)
    env = dict(
        os.environ,
        SOURCE_DATE_EPOCH=str(case["source_date_epoch"]),
        MODELKIT_CREATED=case["created"],
        MODELKIT_CLI_VERSION=case["cli_version"],
    )
    r = subprocess.run(
        [sys.executable, "-m", "mlflow_plugin.cli", "pack", str(ctx), "-t", f"oci:{out}:golden"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr

    exp = case["expected"]
    got_manifest = tagged_manifest(out, "golden")
    same_bytes("manifest.json", (case_dir / exp["manifest"]).read_bytes(), got_manifest)
    assert "sha256:" + hashlib.sha256(got_manifest).hexdigest() == exp["manifest_digest"]
    manifest = json.loads(got_manifest)
    same_bytes("config.json", (case_dir / exp["config"]).read_bytes(), read_blob(out, manifest["config"]))
    assert len(manifest["layers"]) == len(exp["layers"])
    for desc, want in zip(manifest["layers"], exp["layers"], strict=True):
        keys = ("digest", "size", "mediaType")
        assert [desc[k] for k in keys] == [want[k] for k in keys], want["file"]
        same_bytes(want["file"], (case_dir / want["file"]).read_bytes(), read_blob(out, desc))


# ---- the team's shared checker, when it is checked out beside the repository -----------------------


def run_shared_check(check: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    packer = f"{shlex.quote(sys.executable)} -m mlflow_plugin.cli pack {{ctx}} -t oci:{{out}}:golden"
    # the checker runs the packer in its own temp dir: make it import this checkout's package
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, str(check), "--packer", packer, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=path),
    )


needs_shared = pytest.mark.skipif(
    not SHARED_CHECK.is_file(),
    reason=f"optional: the shared conformance checker {SHARED_CHECK} is not checked out "
    "(the repository's own golden cases ran in test_own_golden_case)",
)


@needs_shared
def test_shared_conformance_cases(tmp_path: Path) -> None:
    r = run_shared_check(SHARED_CHECK, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout and "FAIL" not in r.stdout, r.stdout


@needs_shared
def test_shared_checker_agrees_on_own_golden_cases(tmp_path: Path) -> None:
    """The shared checker reads its cases from beside itself: run a copy next to ours."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(SHARED_CHECK, run / "check.py")
    for case in CASES:
        shutil.copytree(case, run / case.name)
    r = run_shared_check(run / "check.py", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(CASES)} passed, 0 failed" in r.stdout, r.stdout
