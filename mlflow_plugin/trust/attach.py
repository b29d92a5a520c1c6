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

Bundles are signed and attached in one step by :meth:`mlflow_plugin.trust.signer.Signer.attest`;
:class:`~mlflow_plugin.trust.signer.Verifier` reads them back through :func:`list_attachments`.

Registries without a referrers API (distribution 2.8) get the ``sha256-<hex>`` tag-schema
index; the store layer maintains it. Reading them back, :func:`list_attachments` trusts no index
entry: it fetches each referrer manifest (bounded in number and bytes) and judges it by its own
``artifactType``, ``config.mediaType``, layers and ``subject``, so a copy whose index lost the
entries' ``artifactType`` (``skopeo copy``) still verifies; unusable referrers become notes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlflow_plugin._internal.times import now_rfc3339
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.descriptor import Descriptor, check_digest
from mlflow_plugin.storage.mediatypes import EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST
from mlflow_plugin.trust.dsse import BUNDLE_MEDIA_TYPE

PRED_SIGN = "https://sigstore.dev/cosign/sign/v1"
PRED_PROVENANCE = "https://slsa.dev/provenance/v1"
PRED_SCAN = "https://mlflow-modelkit.dev/scan/v1"
PRED_SBOM = "https://cyclonedx.org/bom"
PRED_OMS = "https://model_signing/signature/v1.0"
ANN_PRED = "dev.sigstore.bundle.predicateType"
BUNDLE_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
MAX_REFERRERS = 1000
"""Referrers of one subject considered by :func:`list_attachments`; the rest are noted and ignored."""
MAX_REFERRER_MANIFEST = 4 << 20
"""Largest referrer manifest read (4 MiB, distribution's own manifest limit)."""
MAX_BUNDLE = 64 << 20
"""Largest bundle blob read."""
MAX_REFERRER_BYTES = 256 << 20
"""Manifest and bundle bytes read for the referrers of one subject, in all."""
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
    encryption: dict[str, str] | None = None
    """The bundle layer's ``org.opencontainers.image.enc.*`` annotations when it is encrypted
    (``bundle`` is then ciphertext; see :class:`~mlflow_plugin.trust.sealed.Decryptor`)."""

    @property
    def kind(self) -> str:
        return KIND_BY_PREDICATE.get(self.predicate_type, self.predicate_type)


def attach_bundle(
    repo: Repository,
    subject: Descriptor,
    bundle: bytes,
    predicate_type: str,
    created: str | None = None,
    recipients: Sequence[Any] = (),
) -> str:
    """Upload ``bundle`` as a referrer of ``subject``; returns the referrer manifest digest.

    With ``recipients`` (ocicrypt public keys) the bundle layer is stored encrypted for them
    (media type ``…+encrypted``, ocicrypt's annotations): the attestations of an encrypted kit
    describe its files and must not show them to whoever runs the registry."""
    from mlflow_plugin.trust import ocicrypt
    from mlflow_plugin.trust.cosign import bundle_referrer_manifest

    repo.push_bytes(EMPTY_JSON, OCI_EMPTY)  # the {} config blob must exist (distribution checks)
    layer: dict[str, Any] | None = None
    if recipients:
        blob, enc = ocicrypt.encrypt_bytes(bundle, recipients)
        media_type = BUNDLE_MEDIA_TYPE + ocicrypt.ENC_SUFFIX
        repo.push_bytes(blob, media_type)
        layer = {
            "mediaType": media_type,
            "size": enc.size,
            "digest": enc.digest,
            "annotations": enc.annotations,
        }
    else:
        repo.push_bytes(bundle, BUNDLE_MEDIA_TYPE)
    manifest = bundle_referrer_manifest(
        bundle,
        subject.media_type,
        subject.digest,
        subject.size,
        predicate_type,
        created or now_rfc3339(),
        layer=layer,
    )
    return repo.put_manifest(manifest, OCI_MANIFEST, tag=None)


def list_attachments(
    repo: Repository, subject_digest: str, notes: list[str] | None = None
) -> list[Attachment]:
    """Every Sigstore bundle referrer of ``subject_digest`` (referrers API or tag-schema fallback).

    Each referrer is judged by its own manifest, never by its index entry (copies made by
    ``skopeo copy`` drop ``artifactType`` from the entries). Referrers that are not usable bundles
    -- other artifact types, bad JSON, wrong media type, no bundle layer, oversized, a ``subject``
    that is not ``subject_digest``, unreadable -- are skipped with one line appended to ``notes``.
    At most :data:`MAX_REFERRERS` entries and :data:`MAX_REFERRER_BYTES` bytes are read.
    """
    notes = [] if notes is None else notes
    budget = _Budget(MAX_REFERRER_BYTES)
    out: list[Attachment] = []
    entries: set[tuple[str, str, int]] = set()
    fetched: set[str] = set()
    for d in _referrer_entries(repo, subject_digest, notes):
        if (d.digest, d.media_type, d.size) in entries:
            continue  # a repeated entry: noted (if bad) once
        entries.add((d.digest, d.media_type, d.size))
        try:
            _check_entry(d)  # before the digest dedupe: a bad entry must not hide a good one
            if d.digest in fetched:
                continue
            fetched.add(d.digest)
            out.append(_read_attachment(repo, d, subject_digest, budget))
        except _Skip as e:
            notes.append(f"referrer {_short(d.digest)} skipped: {e}")
        except _BudgetSpent:
            notes.append(f"referrers not read past {MAX_REFERRER_BYTES} bytes; the rest were skipped")
            break
    return out


class _Skip(Exception):
    """A referrer that is not a usable bundle; the message (one line) says why."""


class _BudgetSpent(Exception):
    """The referrers of one subject would need more than :data:`MAX_REFERRER_BYTES` bytes."""


@dataclass
class _Budget:
    left: int

    def spend(self, n: int) -> None:
        if n > self.left:
            raise _BudgetSpent
        self.left -= n


def _short(digest: str) -> str:
    return digest[:19] + "…" if len(digest) > 19 else digest


def _shown(value: object) -> str:
    """A value from an untrusted manifest, quoted and cut short for a note."""
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."


def _referrer_entries(repo: Repository, subject_digest: str, notes: list[str]) -> list[Descriptor]:
    """The listed referrers, at most :data:`MAX_REFERRERS`; an unreadable list is a note, not a crash."""
    try:
        entries = repo.referrers(subject_digest)
    except (ModelKitError, ValueError, TypeError, AttributeError) as e:
        notes.append(f"could not read the referrers of {_short(subject_digest)}: {_first_line(e)}")
        return []
    if len(entries) > MAX_REFERRERS:
        notes.append(f"{len(entries)} referrers listed; only the first {MAX_REFERRERS} were considered")
    return entries[:MAX_REFERRERS]


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _check_entry(d: Descriptor) -> None:
    """Refuse, before any fetch, an index entry that cannot name a referrer manifest we would read."""
    if d.media_type and d.media_type != OCI_MANIFEST:
        raise _Skip(f"listed with media type {_shown(d.media_type)}, not an OCI image manifest")
    if d.size > MAX_REFERRER_MANIFEST:
        raise _Skip(f"listed with size {d.size}, over the {MAX_REFERRER_MANIFEST}-byte manifest limit")


def _read_attachment(repo: Repository, d: Descriptor, subject_digest: str, budget: _Budget) -> Attachment:
    """Fetch the referrer ``d`` and return its bundle; raises :class:`_Skip` if it is not one."""
    try:
        data, media_type, digest = repo.get_manifest(d.digest)  # the stores cap manifests at 4 MiB
    except ModelKitError as e:
        raise _Skip(f"manifest unreadable: {_first_line(e)}") from None
    budget.spend(len(data))
    m = _parse_referrer(data, media_type, subject_digest)
    layer = _bundle_layer(m)
    if layer["size"] > budget.left:
        raise _BudgetSpent
    try:
        bundle = repo.read_blob(layer["digest"], layer["size"], limit=min(MAX_BUNDLE, budget.left))
    except ModelKitError as e:
        raise _Skip(f"bundle unreadable: {_first_line(e)}") from None
    budget.spend(len(bundle))
    pred = _annotation(m, ANN_PRED) or _annotation(layer, ANN_PRED)
    encryption = None
    if str(layer.get("mediaType", "")).endswith("+encrypted"):
        ann = layer.get("annotations")
        encryption = {k: v for k, v in (ann if isinstance(ann, dict) else {}).items() if isinstance(v, str)}
    return Attachment(digest, pred, bundle, encryption)


def _parse_referrer(data: bytes, media_type: str, subject_digest: str) -> dict[str, Any]:
    """The referrer manifest as a dict, if it is an OCI image manifest whose subject is the kit."""
    if len(data) > MAX_REFERRER_MANIFEST:
        raise _Skip(f"manifest is {len(data)} bytes, over the {MAX_REFERRER_MANIFEST}-byte limit")
    if media_type != OCI_MANIFEST:
        raise _Skip(f"served as {_shown(media_type)}, not an OCI image manifest")
    try:
        m = json.loads(data)
    except ValueError:
        raise _Skip("manifest is not valid JSON") from None
    if not isinstance(m, dict):
        raise _Skip("manifest is not a JSON object")
    if m.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
        raise _Skip(f"manifest declares mediaType {_shown(m.get('mediaType'))}, not an OCI image manifest")
    subject = m.get("subject")
    got = subject.get("digest") if isinstance(subject, dict) else None
    if got is None:
        raise _Skip("manifest has no subject")
    if got != subject_digest:
        raise _Skip(f"its subject is {_shown(got)}, not this kit")
    return m


def _is_bundle_type(value: object) -> bool:
    return isinstance(value, str) and value.startswith(BUNDLE_TYPE_PREFIX)


def _bundle_layer(m: dict[str, Any]) -> dict[str, Any]:
    """The one Sigstore bundle layer of the manifest ``m`` (checked: type, digest, bounded size)."""
    config = m.get("config") if isinstance(m.get("config"), dict) else {}
    declared = m.get("artifactType") or config.get("mediaType")
    layers = m.get("layers") if isinstance(m.get("layers"), list) else []
    bundles = [x for x in layers if isinstance(x, dict) and _is_bundle_type(x.get("mediaType"))]
    if not _is_bundle_type(declared) and (declared not in (None, "", OCI_EMPTY) or not bundles):
        raise _Skip(f"artifact type {_shown(declared)} is not a Sigstore bundle")
    if not layers:
        raise _Skip("manifest has no layers")
    if len(bundles) != 1:
        raise _Skip(f"manifest has {len(bundles)} Sigstore bundle layers, expected 1")
    layer = bundles[0]
    size = layer.get("size")
    if type(size) is not int or not 0 < size <= MAX_BUNDLE:
        raise _Skip(f"bundle layer declares size {_shown(size)}, outside 1..{MAX_BUNDLE} bytes")
    try:
        check_digest(layer.get("digest", ""))
    except ModelKitError:
        raise _Skip(f"bundle layer has an invalid digest {_shown(layer.get('digest'))}") from None
    return layer


def _annotation(obj: dict[str, Any], key: str) -> str:
    ann = obj.get("annotations")
    value = ann.get(key) if isinstance(ann, dict) else None
    return value if isinstance(value, str) else ""
