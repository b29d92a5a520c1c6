"""Attach signed bundles to a kit as OCI referrers, and find them again.

Every attachment is a Sigstore bundle v0.3 (DSSE) in an OCI 1.1 referrer manifest whose
``subject`` is the kit's manifest (cosign's new format, §2.4 of signing-formats.md). The
``dev.sigstore.bundle.predicateType`` annotation tells them apart:

==============================  ==================================================
predicate type                  what
==============================  ==================================================
cosign sign v1                  the signature over the manifest digest
SLSA provenance v1              provenance built from the MLflow run
mlflow-modelkit scan v1         the scan report
CycloneDX BOM                   the ML-BOM
model_signing v1.0              the OpenSSF model_signing bundle (``model.sig``)
==============================  ==================================================

Registries without a referrers API (distribution 2.8) get the ``sha256-<hex>`` tag-schema
index; the store layer maintains it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from ..oci.base import Repository
from ..oci.descriptor import Descriptor
from ..oci.mediatypes import EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST
from .dsse import BUNDLE_MEDIA_TYPE

PRED_SIGN = "https://sigstore.dev/cosign/sign/v1"
PRED_PROVENANCE = "https://slsa.dev/provenance/v1"
PRED_SCAN = "https://mlflow-modelkit.dev/scan/v1"
PRED_SBOM = "https://cyclonedx.org/bom"
PRED_OMS = "https://model_signing/signature/v1.0"
ANN_PRED = "dev.sigstore.bundle.predicateType"
KIND_BY_PREDICATE = {
    PRED_SIGN: "signature",
    PRED_PROVENANCE: "provenance",
    PRED_SCAN: "scan",
    PRED_SBOM: "sbom",
    PRED_OMS: "model_signing",
}


@dataclass(frozen=True)
class Attachment:
    """A referrer of the kit that holds a Sigstore bundle."""

    manifest_digest: str
    predicate_type: str
    bundle: bytes

    @property
    def kind(self) -> str:
        return KIND_BY_PREDICATE.get(self.predicate_type, self.predicate_type)


def now_rfc3339() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attach_bundle(
    repo: Repository, subject: Descriptor, bundle: bytes, predicate_type: str, created: str | None = None
) -> str:
    """Upload ``bundle`` as a referrer of ``subject``; returns the referrer manifest digest."""
    from .cosign import bundle_referrer_manifest

    repo.push_bytes(EMPTY_JSON, OCI_EMPTY)  # the {} config blob must exist (distribution checks)
    repo.push_bytes(bundle, BUNDLE_MEDIA_TYPE)
    manifest = bundle_referrer_manifest(
        bundle, subject.media_type, subject.digest, subject.size, predicate_type, created or now_rfc3339()
    )
    return repo.put_manifest(manifest, OCI_MANIFEST, tag=None)


def list_attachments(repo: Repository, subject_digest: str) -> list[Attachment]:
    """Every bundle referrer of ``subject_digest`` (referrers API or tag-schema fallback)."""
    out: list[Attachment] = []
    for d in repo.referrers(subject_digest):
        if d.artifact_type != BUNDLE_MEDIA_TYPE:
            continue
        try:
            data, _mt, digest = repo.get_manifest(d.digest)
            m = json.loads(data)
            layers = [
                x
                for x in m.get("layers") or []
                if str(x.get("mediaType", "")).startswith("application/vnd.dev.sigstore.bundle")
            ]
            if len(layers) != 1 or (m.get("subject") or {}).get("digest") != subject_digest:
                continue
            bundle = repo.read_blob(layers[0]["digest"], layers[0].get("size"), limit=64 << 20)
        except Exception:
            continue
        pred = (m.get("annotations") or {}).get(ANN_PRED, "")
        out.append(Attachment(digest, pred, bundle))
    return out
