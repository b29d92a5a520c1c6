"""Run the shared kitops conformance checker (byte-identical ModelKits) against our packer."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
CHECK = SHARED / "conformance" / "kitops" / "check.py"


@pytest.mark.skipif(not CHECK.is_file(), reason=f"{CHECK} is not available")
def test_conformance_cases_pass(tmp_path: Path) -> None:
    packer = f"{shlex.quote(sys.executable)} -m mlflow_plugin.cli pack {{ctx}} -t oci:{{out}}:golden"
    r = subprocess.run(
        [sys.executable, str(CHECK), "--packer", packer, "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout and "FAIL" not in r.stdout.replace(" 0 failed", "")


GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.skipif(not CHECK.is_file(), reason=f"{CHECK} is not available")
def test_own_golden_cases_pass(tmp_path: Path) -> None:
    """tests/golden/caseN: derived from the reference's stated digests and rules (see make_cases.py)."""
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(CHECK, run / "check.py")
    cases = sorted(p for p in GOLDEN.iterdir() if (p / "case.json").is_file())
    assert cases, "no golden cases found"
    for case in cases:
        shutil.copytree(case, run / case.name)
    packer = f"{shlex.quote(sys.executable)} -m mlflow_plugin.cli pack {{ctx}} -t oci:{{out}}:golden"
    r = subprocess.run(
        [sys.executable, str(run / "check.py"), "--packer", packer, "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(cases)} passed, 0 failed" in r.stdout
