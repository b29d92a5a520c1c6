"""Run metadata on its way into published bytes: params and tags named like secrets keep only their name.

This is the one redaction rule of ``publish``. It applies to every place where an MLflow run's
params and tags become bytes in the registry: the Kitfile config (``model.parameters``, the
package description), the SLSA provenance (``externalParameters.hyperparameters``,
``internalParameters.tags``) and the CycloneDX ML-BOM (the hyperparameter properties).

Names are matched case-insensitively against shell-style globs (``[publish] redact_params`` /
``MLFLOW_MODELKIT_REDACT_PARAMS``; the defaults are :data:`mlflow_plugin.config.DEFAULT_REDACT_PARAMS`).
A value is *not* redacted because of what it looks like: a secret under an innocent name blocks
publishing instead (see :func:`mlflow_plugin.scanner.secrets.scan_document`), so the leak gets fixed
rather than hidden.

>>> redact_params({"aws_secret": "x" * 40, "Db_Password": "hunter2", "lr": "0.1"}, ["*secret*", "*password*"])
{'aws_secret': '[redacted]', 'Db_Password': '[redacted]', 'lr': '0.1'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import TypeVar

REDACTED = "[redacted]"

V = TypeVar("V")


def is_redacted(name: str, patterns: Iterable[str]) -> bool:
    """True if ``name`` matches one of the globs ``patterns`` (case-insensitive).

    >>> is_redacted("AWS_ACCESS_KEY_ID", ["*access_key*"]), is_redacted("max_tokens", ["*_key"])
    (True, False)
    """
    low = name.lower()
    return any(fnmatchcase(low, p.lower()) for p in patterns)


def redact_params(values: Mapping[str, V], patterns: Iterable[str]) -> dict[str, V | str]:
    """A copy of ``values`` (params or tags) where every name matching ``patterns`` maps to ``"[redacted]"``.

    Order and names are kept, so readers still see that the param existed.

    >>> redact_params({"hf_token": "hf_abc", "epochs": 3}, ["*token*"])
    {'hf_token': '[redacted]', 'epochs': 3}
    """
    pats = [p for p in patterns if p]
    return {k: REDACTED if is_redacted(str(k), pats) else v for k, v in values.items()}
