"""Which registries and layout directories the plugin may touch inside ``mlflow server``.

MLflow polices the hosts of its built-in schemes, not plugin schemes (GHSA-mr9f-g8qf-4w4j).
Inside a tracking server anyone who can create an experiment chooses its artifact location, so
without a policy a ``modelkit://attacker-host/...`` experiment would make the server connect to
arbitrary hosts (SSRF) or read arbitrary local directories. In a server process (detected by
MLflow's ``_MLFLOW_SERVER_ARTIFACT_ROOT`` / ``_MLFLOW_SERVER_ARTIFACT_DESTINATION`` variables)
only these are allowed:

* the registry host or layout directory of ``--artifacts-destination`` and
  ``--default-artifact-root`` when they are ``modelkit://`` URIs;
* hosts listed in ``[registries] allowed`` of the admin config or ``MLFLOW_MODELKIT_ALLOWED_REGISTRIES``;
* directories in ``[registries] allowed_layout_roots`` or ``MLFLOW_MODELKIT_ALLOWED_LAYOUT_ROOTS``.

Outside a server (clients, notebooks, CLI) everything is allowed: the user chose the URI.

>>> check_allowed(parse_artifact_uri("modelkit://127.0.0.1:5000/ml"), environ={})   # a client
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mlflow_plugin.drafts.uri import ArtifactLocation, parse_artifact_uri
from mlflow_plugin.errors import ModelKitError

SERVER_VARS = ("_MLFLOW_SERVER_ARTIFACT_ROOT", "_MLFLOW_SERVER_ARTIFACT_DESTINATION")


class NotAllowedError(ModelKitError):
    """The tracking server's policy forbids this registry or directory."""


def check_allowed(loc: ArtifactLocation, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`NotAllowedError` if a server process may not use ``loc``."""
    env = os.environ if environ is None else environ
    roots = [env[v] for v in SERVER_VARS if env.get(v)]
    if not roots:
        return
    from mlflow_plugin.config import load_config  # the admin file plus MLFLOW_MODELKIT_* overrides

    cfg = load_config(env)
    hosts = set(cfg.allowed_registries)
    dirs = [os.path.abspath(d) for d in cfg.allowed_layout_roots]
    for r in roots:
        if r.startswith("modelkit:"):
            try:
                base = parse_artifact_uri(r)
            except ModelKitError:
                continue
            if base.registry:
                hosts.add(base.registry)
            elif base.layout:
                dirs.append(os.path.abspath(base.layout))
    if loc.registry:
        if loc.registry not in hosts:
            raise NotAllowedError(
                f"registry {loc.registry} is not allowed on this tracking server: add it to "
                "MLFLOW_MODELKIT_ALLOWED_REGISTRIES (or use the server's artifact destination)"
            )
        return
    path = os.path.abspath(loc.layout or "/")
    if not any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs):
        raise NotAllowedError(
            f"layout directory {path} is not allowed on this tracking server: add a parent directory to "
            "MLFLOW_MODELKIT_ALLOWED_LAYOUT_ROOTS"
        )
