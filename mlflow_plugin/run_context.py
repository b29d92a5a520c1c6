"""Run-context provider: record what provenance needs and MLflow misses, at ``start_run``.

Registered as an ``mlflow.run_context_provider``. Adds to every run::

    modelkit.env.python          3.11.7
    modelkit.env.platform        Linux-6.1-x86_64-with-glibc2.36
    modelkit.env.packages_sha256 sha256 of the sorted "name==version" list of installed packages
    modelkit.env.packages_count  number of installed distributions

and, in a Jupyter kernel (``JPY_SESSION_NAME`` names the notebook, where MLflow only sees
ipykernel's launcher), the notebook's git repository state::

    mlflow.source.git.commit / .branch / .repoURL / .dirty, modelkit.source.notebook,
    modelkit.source.notebook_sha256

Remote URLs are stripped of credentials. Every probe is bounded (git runs with a 5 s timeout)
and failures only omit tags; starting a run never fails because of this provider.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import re
import subprocess
import sys
from importlib import metadata

from mlflow.tracking.context.abstract_context import RunContextProvider

log = logging.getLogger(__name__)
_CRED_RE = re.compile(r"(?<=://)[^/@\s]+@")


def redact_url(url: str) -> str:
    """Drop ``user:password@`` from a URL.

    >>> redact_url("https://bob:s3cret@github.com/org/repo.git")
    'https://github.com/org/repo.git'
    """
    return _CRED_RE.sub("", url)


@functools.lru_cache(maxsize=1)
def packages_digest() -> tuple[str, int]:
    """SHA-256 over the sorted ``name==version`` lines of installed distributions, and their count."""
    lines = sorted({f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions()
                    if d.metadata["Name"]})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


def _git(cwd: str, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5,
                           env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
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


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


class ModelKitRunContext(RunContextProvider):
    """Adds environment and notebook-git tags to every run."""

    def in_context(self) -> bool:
        return True

    def tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        try:
            digest, count = packages_digest()
            tags.update({
                "modelkit.env.python": platform.python_version(),
                "modelkit.env.implementation": sys.implementation.name,
                "modelkit.env.platform": platform.platform(),
                "modelkit.env.packages_sha256": digest,
                "modelkit.env.packages_count": str(count),
            })
            nb = notebook_path()
            if nb:
                tags["modelkit.source.notebook"] = nb
                tags["modelkit.source.notebook_sha256"] = file_sha256(nb)
                tags.update(git_state(nb))
        except Exception as e:  # never break start_run
            log.debug("modelkit run context failed: %s", e)
        return tags
