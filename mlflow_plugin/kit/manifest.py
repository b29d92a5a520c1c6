"""Build ModelKit manifests exactly as current kit serialises them.

>>> m = build_manifest(config, layers, created="1980-01-01T00:00:00Z", cli_version="1.15.0")  # doctest: +SKIP

Field order: schemaVersion, mediaType, artifactType, config, layers, (subject), annotations;
compact Go JSON. ``created`` follows kit: ``SOURCE_DATE_EPOCH`` if set, else now (UTC).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any

from mlflow_plugin._internal.gojson import Ordered, dumps
from mlflow_plugin._internal.times import now_rfc3339, rfc3339
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.kit.mediatypes import ANN_CLI_VERSION, ANN_CREATED, KIT_ARTIFACT_TYPE
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST


def default_cli_version() -> str:
    """``MODELKIT_CLI_VERSION`` or this package's version."""
    v = os.environ.get("MODELKIT_CLI_VERSION")
    if v:
        return v
    from mlflow_plugin._version import __version__

    return f"mlflow-modelkit-{__version__}"


def created_timestamp() -> str:
    """RFC 3339 UTC creation time: ``MODELKIT_CREATED``, else ``SOURCE_DATE_EPOCH``, else now.

    ``SOURCE_DATE_EPOCH`` is parsed like kit does (Go ``strconv.ParseInt(v, 10, 64)``) and an
    invalid value is an error even when ``MODELKIT_CREATED`` overrides it.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"SOURCE_DATE_EPOCH": "315532800"}):
    ...     _ = os.environ.pop("MODELKIT_CREATED", None)
    ...     created_timestamp()
    '1980-01-01T00:00:00Z'
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    ts: int | None = None
    if epoch is not None and epoch != "":
        if not _GO_INT_RE.match(epoch) or not -(1 << 63) <= int(epoch) < (1 << 63):
            raise ModelKitError(
                f'invalid SOURCE_DATE_EPOCH "{epoch}": must be an integer (seconds since 1970)'
            )
        ts = int(epoch)
    explicit = os.environ.get("MODELKIT_CREATED")
    if explicit:
        try:
            datetime.fromisoformat(explicit.replace("Z", "+00:00"))
        except ValueError:
            raise ModelKitError(
                f"invalid MODELKIT_CREATED {explicit!r}: use RFC 3339, e.g. 2026-01-01T00:00:00Z"
            ) from None
        return explicit
    if ts is None:
        return now_rfc3339()
    return rfc3339_utc(ts)


_GO_INT_RE = re.compile(r"[+-]?[0-9]+\Z")


def rfc3339_utc(ts: int) -> str:
    """Go ``time.Unix(ts, 0).UTC().Format(time.RFC3339)`` (see :func:`mlflow_plugin._internal.times.rfc3339`).

    >>> rfc3339_utc(0)
    '1970-01-01T00:00:00Z'
    """
    return rfc3339(ts)


def build_manifest(
    config: Descriptor,
    layers: list[Descriptor],
    created: str | None = None,
    cli_version: str | None = None,
    extra_annotations: dict[str, str] | None = None,
    subject: Descriptor | None = None,
) -> bytes:
    """Serialise a kit manifest (current kit shape) to bytes."""
    ann: dict[str, Any] = {
        ANN_CLI_VERSION: cli_version or default_cli_version(),
        ANN_CREATED: created or created_timestamp(),
    }
    if extra_annotations:
        ann.update(extra_annotations)
    m = Ordered(
        schemaVersion=2,
        mediaType=OCI_MANIFEST,
        artifactType=KIT_ARTIFACT_TYPE,
        config=config.to_json(),
        layers=[d.to_json() for d in layers],
    )
    if subject is not None:
        m["subject"] = subject.to_json()
    m["annotations"] = ann
    return dumps(m)
