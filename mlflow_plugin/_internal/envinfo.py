"""Facts about the environment and the source tree, for run tags and provenance.

>>> redact_url("https://bob:s3cret@github.com/org/repo.git")
'https://github.com/org/repo.git'
>>> redact_url("https://bob:p@ss@github.com/org/a@b.git")
'https://github.com/org/a@b.git'

No MLflow imports here: the run-context provider and provenance both use this module.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
from importlib import metadata

# up to the *last* "@" of the authority: a password may contain a raw "@" ("bob:p@ss@host")
_CRED_RE = re.compile(r"(?<=://)[^/\s]*@")


def redact_url(url: str) -> str:
    """Drop ``user:password@`` (or a token) from a URL."""
    return _CRED_RE.sub("", url)


@functools.lru_cache(maxsize=1)
def packages_digest() -> tuple[str, int]:
    """SHA-256 over the sorted ``name==version`` lines of installed distributions, and their count."""
    lines = sorted(
        {
            f"{(d.metadata['Name'] or '').lower()}=={d.version}"
            for d in metadata.distributions()
            if d.metadata["Name"]
        }
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


def _git(cwd: str, *args: str) -> str | None:
    try:
        r = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def git_state(path: str) -> dict[str, str]:
    """Commit, branch, remote URL (redacted) and dirty flag of the repository holding ``path``."""
    d = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    commit = _git(d, "rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {"mlflow.source.git.commit": commit}
    branch = _git(d, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    url = _git(d, "config", "--get", "remote.origin.url")
    if url:
        tags["mlflow.source.git.repoURL"] = redact_url(url)
    status = _git(d, "status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags["mlflow.source.git.dirty"] = "true" if status else "false"
    return tags


def notebook_path() -> str | None:
    """Absolute path of the notebook this kernel runs, from the Jupyter server's kernel env."""
    name = os.environ.get("JPY_SESSION_NAME")
    if not name:
        return None
    p = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
    if not os.path.isfile(p) and os.path.isfile(os.path.join(os.getcwd(), os.path.basename(name))):
        p = os.path.join(os.getcwd(), os.path.basename(name))
    return p if os.path.isfile(p) else None
