"""KitOps media types and annotations.

>>> layer_media_type("model"), layer_media_type("dataset", "gzip")
('application/vnd.kitops.modelkit.model.v1.tar', 'application/vnd.kitops.modelkit.dataset.v1.tar+gzip')
"""

from __future__ import annotations

import re

from mlflow_plugin.errors import ModelKitError

KIT_CONFIG = "application/vnd.kitops.modelkit.config.v1+json"
KIT_ARTIFACT_TYPE = "application/vnd.kitops.modelkit.manifest.v1+json"
ANN_FILEPATH = "org.cncf.model.filepath"
ANN_LAYER_SUBTYPE = "ml.kitops.modelkit.layer-subtype"
ANN_CLI_VERSION = "ml.kitops.modelkit.cli-version"
ANN_CREATED = "org.opencontainers.image.created"
LAYER_KINDS = ("model", "modelpart", "code", "dataset", "docs")
COMPRESSIONS = ("none", "gzip", "zstd")
_RE = re.compile(r"^application/vnd\.kitops\.modelkit\.(\w+)\.v1\.(\w+)(?:\+(\w+))?$")
_LEGACY_RE = re.compile(r"^application/vnd\.jozu\.model\.(\w+)\.v1\.tar(?:\+(\w+))?$")


def layer_media_type(base: str, compression: str = "none") -> str:
    """``application/vnd.kitops.modelkit.<base>.v1.tar[+gzip|+zstd]``."""
    if base not in LAYER_KINDS:
        raise ModelKitError(f"invalid layer type {base!r}")
    if compression not in COMPRESSIONS:
        raise ModelKitError(f"invalid compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")
    mt = f"application/vnd.kitops.modelkit.{base}.v1.tar"
    return mt if compression == "none" else f"{mt}+{compression}"


def parse_layer_media_type(mt: str) -> tuple[str, str, str] | None:
    """``(base, format, compression)`` of a kit layer media type, or None if not a kit layer."""
    m = _RE.match(mt)
    if m:
        return m.group(1), m.group(2), m.group(3) or "none"
    m = _LEGACY_RE.match(mt)
    if m:
        return m.group(1), "tar", m.group(2) or "none"
    return None
