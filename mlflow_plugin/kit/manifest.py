"""Build ModelKit manifests exactly as current kit serialises them.

>>> m = build_manifest(config, layers, created="1980-01-01T00:00:00Z", cli_version="1.15.0")  # doctest: +SKIP

Field order: schemaVersion, mediaType, artifactType, config, layers, (subject), annotations;
compact Go JSON. ``created`` follows kit: ``SOURCE_DATE_EPOCH`` if set, else now (UTC).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from .._internal.gojson import Ordered, dumps
from ..errors import ModelKitError
from ..oci.descriptor import Descriptor
from ..oci.mediatypes import OCI_MANIFEST
from .mediatypes import ANN_CLI_VERSION, ANN_CREATED, KIT_ARTIFACT_TYPE


def default_cli_version() -> str:
    """``MODELKIT_CLI_VERSION`` or this package's version."""
    v = os.environ.get("MODELKIT_CLI_VERSION")
    if v:
        return v
    from .. import __version__

    return f"mlflow-modelkit-{__version__}"


def created_timestamp() -> str:
    """RFC 3339 UTC creation time: ``MODELKIT_CREATED``, else ``SOURCE_DATE_EPOCH``, else now.

    >>> os.environ["SOURCE_DATE_EPOCH"] = "315532800"; created_timestamp()
    '1980-01-01T00:00:00Z'
    """
    explicit = os.environ.get("MODELKIT_CREATED")
    if explicit:
        try:
            datetime.fromisoformat(explicit.replace("Z", "+00:00"))
        except ValueError:
            raise ModelKitError(f"invalid MODELKIT_CREATED {explicit!r}: use RFC 3339, e.g. 2026-01-01T00:00:00Z") from None
        return explicit
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch != "":
        try:
            ts = int(epoch)
        except ValueError:
            raise ModelKitError(f'invalid SOURCE_DATE_EPOCH "{epoch}": must be an integer (seconds since 1970)') from None
        dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    else:
        dt = datetime.now(tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


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
