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

import logging
import platform
import sys

from mlflow.tracking.context.abstract_context import RunContextProvider

from mlflow_plugin._internal.envinfo import git_state, notebook_path, packages_digest
from mlflow_plugin._internal.hashing import file_sha256

log = logging.getLogger(__name__)


class ModelKitRunContext(RunContextProvider):
    """Adds environment and notebook-git tags to every run."""

    def in_context(self) -> bool:
        return True

    def tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        try:
            digest, count = packages_digest()
            tags.update(
                {
                    "modelkit.env.python": platform.python_version(),
                    "modelkit.env.implementation": sys.implementation.name,
                    "modelkit.env.platform": platform.platform(),
                    "modelkit.env.packages_sha256": digest,
                    "modelkit.env.packages_count": str(count),
                }
            )
            nb = notebook_path()
            if nb:
                tags["modelkit.source.notebook"] = nb
                tags["modelkit.source.notebook_sha256"] = file_sha256(nb)
                tags.update(git_state(nb))
        except Exception as e:  # never break start_run
            log.debug("modelkit run context failed: %s", e)
        return tags
