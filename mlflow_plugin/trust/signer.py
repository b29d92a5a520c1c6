"""Sign a kit with one object, verify it with another: :class:`Signer` and :class:`Verifier`.

A :class:`Signer` is built once from the private key (as ``model_signing``'s
``Config().use_elliptic_key_signer(...)`` is) and has one call, :meth:`Signer.attest`: build the
in-toto statement when needed, sign it as a DSSE Sigstore bundle v0.3 and attach it to the kit as
an OCI referrer. :meth:`Signer.legacy_signature` writes cosign's older ``sha256-<hex>.sig`` image.
A :class:`Verifier` holds the trusted public keys and checks everything attached to a manifest at
once (:meth:`Verifier.check`). Nothing else needs the keys: the formats live in
:mod:`~mlflow_plugin.trust.dsse`, :mod:`~mlflow_plugin.trust.cosign`, :mod:`~mlflow_plugin.trust.oms`
and :mod:`~mlflow_plugin.trust.attach`.

>>> import json, tempfile
>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> from mlflow_plugin.storage.descriptor import Descriptor
>>> from mlflow_plugin.storage.locations import open_location
>>> from mlflow_plugin.storage.mediatypes import EMPTY_DIGEST, EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST
>>> tmp = tempfile.TemporaryDirectory()
>>> repo, _ = open_location(f"oci:{tmp.name}/kit", create=True)
>>> _ = repo.push_bytes(EMPTY_JSON, OCI_EMPTY)
>>> empty = {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}
>>> manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty,
...                        "layers": []}).encode()
>>> kit = Descriptor(OCI_MANIFEST, repo.put_manifest(manifest, tag="v1"), len(manifest))
>>> signer = Signer(ec.generate_private_key(ec.SECP256R1()))
>>> signer.attest(repo, kit, "signature").startswith("sha256:")
True
>>> _ = signer.attest(repo, kit, "scan", {"summary": {"max_severity": None}}, name="example/kit")
>>> _ = signer.attest(repo, kit, "model_signing", [("model.skops", "ab" * 32)], name="fraud")
>>> _ = signer.legacy_signature(repo, "registry.example.com/example/kit", kit.digest)
>>> found = signer.verifier().check(repo, kit.digest)
>>> sorted(found.verified), found.failures
(['legacy_signature', 'model_signing', 'scan', 'signature'], {})
>>> found.verified["scan"]["subject"][0]["name"]
'example/kit'
>>> stranger = Verifier([ec.generate_private_key(ec.SECP256R1()).public_key()])
>>> stranger.check(repo, kit.digest).verified
{}
>>> tmp.cleanup()

Kinds (:data:`KINDS`; the predicate type is the referrer's ``dev.sigstore.bundle.predicateType``):

=================  ===================================  ===========================================
kind               ``predicate_or_statement``           signed statement (key hint)
=================  ===================================  ===========================================
``signature``      nothing                              cosign's ``sign/v1`` over the manifest
                                                        digest, exactly as cosign v3 writes it
                                                        (cosign)
``provenance``     a SLSA statement, or its predicate   subject = the manifest digest (cosign)
``scan``           the scan report (JSON), or statement subject = ``name`` + manifest digest (cosign)
``sbom``           the CycloneDX BOM (JSON), or stmt.   subject = ``name`` + manifest digest (cosign)
``model_signing``  ``[(path, sha256 hex)]`` of the      OpenSSF model_signing v1.0 over the files,
                   kit's files, or an OMS statement     named ``name``; ``Kitfile`` and
                                                        ``model.sig`` ignored (model_signing)
=================  ===================================  ===========================================

``legacy_signature`` is the kind under which :meth:`Verifier.check` reports the ``.sig`` image.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from mlflow_plugin._internal.times import parse_any
from mlflow_plugin.errors import ModelKitError, NotFoundError
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.descriptor import Descriptor, check_digest
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST
from mlflow_plugin.trust import attach, cosign, dsse, keys, oms
from mlflow_plugin.trust.attach import KIND_BY_PREDICATE
from mlflow_plugin.trust.dsse import VerificationError
from mlflow_plugin.trust.sealed import Decryptor

PREDICATE_BY_KIND = {kind: pred for pred, kind in KIND_BY_PREDICATE.items()}
KINDS = tuple(PREDICATE_BY_KIND)
"""``signature``, ``provenance``, ``scan``, ``sbom``, ``model_signing``."""
LEGACY = "legacy_signature"
"""The kind :meth:`Verifier.check` reports the ``sha256-<hex>.sig`` simple-signing image under."""
KIT_IGNORE_PATHS = ("Kitfile",)
"""Besides ``model.sig``: what unpack writes next to a kit's files, so model_signing must skip it."""
MAX_LEGACY_LAYER = 1 << 20
"""Largest simple-signing payload read from a ``.sig`` image."""
MAX_LEGACY_BYTES = 16 << 20
"""Payload bytes read from one ``.sig`` image in all (cosign appends a layer per signature)."""
_HINT = {kind: "model_signing" if kind == "model_signing" else "cosign" for kind in KINDS}

__all__ = ["KINDS", "LEGACY", "PREDICATE_BY_KIND", "Signer", "Verification", "Verifier"]


def _sha256_hex(digest: str) -> str:
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise ModelKitError(f"attestations name sha256 manifest digests only, got {digest!r}")
    return check_digest(digest).split(":", 1)[1]


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


class Signer:
    """An ECDSA P-256 private key, loaded once, that signs and attaches a kit's attestations.

    The key never leaves the object: there is no accessor, the ``repr`` shows only the key id and a
    Signer cannot be pickled.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ModelKitError("a Signer needs an ECDSA P-256 private key")
        self.__key = private_key
        self._public = private_key.public_key()
        self._key_id = keys.key_id(self._public)

    @classmethod
    def from_key_file(cls, path: str, password: bytes | Callable[[], bytes | None] | None = None) -> Signer:
        """Load ``path`` (``cosign.key``). Without ``password`` an encrypted key takes
        ``$MLFLOW_MODELKIT_KEY_PASSWORD`` or a terminal prompt (never asked for a plain key).

        >>> Signer.from_key_file("/nonexistent/cosign.key")
        Traceback (most recent call last):
        ...
        mlflow_plugin.errors.ModelKitError: private key /nonexistent/cosign.key not found: ...
        """
        ask = password if password is not None else keys.passphrase_from_env
        return cls(keys.load_private_key(path, ask))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the DER public key (:func:`~mlflow_plugin.trust.keys.key_id`)."""
        return self._key_id

    def __repr__(self) -> str:
        return f"Signer(key_id={self._key_id[:16]}…)"

    def __reduce__(self) -> Any:
        raise TypeError("a Signer holds a private key and cannot be pickled or copied")

    def verifier(self) -> Verifier:
        """A :class:`Verifier` that trusts this signer's public key only."""
        return Verifier([self._public])

    def attest(
        self,
        repo: Repository,
        subject: Descriptor,
        kind: str,
        predicate_or_statement: Any = None,
        *,
        name: str | None = None,
        recipients: Sequence[Any] = (),
    ) -> str:
        """Sign an attestation of ``kind`` about ``subject`` and attach it; return the referrer's digest.

        ``predicate_or_statement`` is a predicate (the statement is built: subject ``name``, if
        given, and the manifest digest) or a whole in-toto statement (``"_type"`` set; signed as
        given, ``name`` not allowed); see the table in the module docstring. A statement is refused
        unless its ``predicateType`` is the kind's and, except for ``model_signing``, one of its
        subjects is ``subject``'s digest. The referrer manifest is PUT by digest, never tagged.
        ``recipients`` (ocicrypt public keys) store the bundle encrypted for them.
        """
        bundle = self._bundle(subject, kind, predicate_or_statement, name)
        return attach.attach_bundle(repo, subject, bundle, PREDICATE_BY_KIND[kind], recipients=recipients)

    def _bundle(self, subject: Descriptor, kind: str, given: Any, name: str | None) -> bytes:
        if kind not in PREDICATE_BY_KIND:
            raise ModelKitError(f"unknown attestation kind {kind!r}: use one of {', '.join(KINDS)}")
        hexd = _sha256_hex(subject.digest)
        if isinstance(given, dict) and "_type" in given:
            if name is not None:
                raise ModelKitError(f"a whole {kind} statement names its own subjects: pass no name")
            st = given
        elif kind == "signature":
            if given not in (None, {}) or name is not None:
                raise ModelKitError("a signature covers the manifest digest only: pass no predicate or name")
            st = cosign.cosign_sign_statement(subject.digest)
        elif kind == "model_signing":
            if isinstance(given, dict | str | bytes) or not isinstance(given, Sequence):
                raise ModelKitError("a model_signing attestation needs the kit's [(path, sha256 hex)] files")
            if not all(isinstance(f, Sequence) and len(f) == 2 for f in given):
                raise ModelKitError("a model_signing attestation needs (path, sha256 hex) pairs")
            ignore = list(KIT_IGNORE_PATHS)
            files = oms.signable_files([(p, d) for p, d in given], ignore)
            st = oms.oms_statement(files, name or "model", ignore_paths=ignore)
        else:
            if not isinstance(given, dict):
                raise ModelKitError(f"a {kind} attestation needs a predicate (a JSON object) or a statement")
            entry: dict[str, Any] = {"name": name} if name else {}
            entry["digest"] = {"sha256": hexd}
            st = dsse.statement([entry], PREDICATE_BY_KIND[kind], given)
        _check_statement(st, kind, hexd)
        return dsse.sign_bundle(st, self.__key, hint=_HINT[kind])

    def legacy_signature(self, repo: Repository, docker_ref: str, digest: str) -> str:
        """Write cosign's legacy ``sha256-<hex>.sig`` image for ``digest``; return its manifest digest.

        ``docker_ref`` is the ``docker-reference`` claim (``host/repo``; cosign does not check it).
        An existing ``.sig`` image keeps its signatures and gets this one appended, as cosign does,
        so a second signer does not erase the first; an unreadable one is replaced.
        """
        payload = cosign.simple_signing_payload(docker_ref, digest)
        signature = cosign.sign_simple(payload, self.__key)
        tag = cosign.sig_tag(digest)
        try:
            previous: bytes | None = repo.get_manifest(tag)[0]
        except NotFoundError:
            previous = None
        try:
            manifest, config = cosign.signature_image(payload, signature, previous_manifest=previous)
        except ModelKitError:  # not a .sig image we can extend (or full): start a new one
            manifest, config = cosign.signature_image(payload, signature)
        repo.push_bytes(config, cosign.OCI_CONFIG)
        repo.push_bytes(payload, cosign.SIMPLE_SIGNING_LAYER)
        return repo.put_manifest(manifest, OCI_MANIFEST, tag=tag)


def _check_statement(st: Any, kind: str, hexd: str) -> None:
    """Refuse to sign a statement of the wrong type, or (but for model_signing) about another artifact."""
    pred = PREDICATE_BY_KIND[kind]
    if not isinstance(st, dict) or st.get("_type") != dsse.STATEMENT_V1:
        got = st.get("_type") if isinstance(st, dict) else type(st).__name__
        raise ModelKitError(f"a {kind} attestation must be an in-toto Statement v1, not {got!r}")
    dsse.statement(st.get("subject") or [], st.get("predicateType") or "", {})  # subjects carry digests
    if st["predicateType"] != pred:
        raise ModelKitError(f"a {kind} statement has predicateType {pred!r}, not {st['predicateType']!r}")
    if kind == "model_signing":
        oms.signed_files(st)  # a manifest model_signing would reject is not signed either
    elif hexd not in dsse.subject_digests(st):
        raise ModelKitError(f"refusing to sign a {kind} statement about another artifact than sha256:{hexd}")


@dataclass
class Verification:
    """What :meth:`Verifier.check` found attached to one manifest digest."""

    digest: str
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)
    """kind -> the first statement of that kind signed by a trusted key about this digest; for
    ``scan``, the newest by its ``scanned_at`` (re-scans attach newer ones; statements without it
    count as oldest) (``legacy_signature``: the simple-signing payload)."""
    failures: dict[str, str] = field(default_factory=dict)
    """kind -> why the first failing attachment of that kind failed (one line); a kind may be in
    both maps when one attachment verified and another did not."""
    notes: list[str] = field(default_factory=list)
    """Referrers that were not usable bundles and were skipped (never a verdict by themselves)."""
    counts: dict[str, int] = field(default_factory=dict)
    """kind -> how many attachments of that kind verified (re-scans add scan attestations)."""

    def has(self, *kinds: str) -> bool:
        """Whether every one of ``kinds`` verified."""
        return all(k in self.verified for k in kinds)


class Verifier:
    """Trusted ECDSA P-256 public keys (objects, PEM text or ``cosign.pub`` paths), loaded once."""

    def __init__(self, public_keys: Iterable[Any]) -> None:
        self._keys = dsse.as_public_keys(list(public_keys))
        if not self._keys:
            raise ModelKitError("a Verifier needs at least one trusted public key")

    @property
    def key_ids(self) -> list[str]:
        return [keys.key_id(k) for k in self._keys]

    def __repr__(self) -> str:
        return f"Verifier(key_ids=[{', '.join(k[:16] + '…' for k in self.key_ids)}])"

    def check(self, repo: Repository, digest: str, decryptor: Decryptor | None = None) -> Verification:
        """Verify every Sigstore bundle referrer of ``digest`` and its legacy ``.sig`` image.

        A bundle counts for its kind when it verifies with a trusted key, its signed
        ``predicateType`` is the one its referrer announces (if it announces one) and, but for
        model_signing (whose subject is the files' root digest, checked for consistency), one of
        its subjects is ``digest``. Encrypted bundles (an encrypted kit's) are opened with
        ``decryptor``; without one, or as a non-recipient, they count as failures of their kind
        that say so. Problems with one attachment never raise: they land in ``failures``;
        unusable referrers land in ``notes``.
        """
        check_digest(digest)
        found = Verification(digest)
        for a in attach.list_attachments(repo, digest, found.notes):
            try:
                bundle = (decryptor or Decryptor()).attachment(a)
                stmt, _key = dsse.verify_bundle(bundle, self._keys)
            except ModelKitError as e:
                found.failures.setdefault(a.kind, _first_line(e))
                continue
            # no predicateType annotation (some copiers and tools drop it): the signed statement says
            pred = a.predicate_type or str(stmt.get("predicateType") or "")
            kind = KIND_BY_PREDICATE.get(pred, pred)
            why = _statement_problem(stmt, pred, kind, digest)
            if why:
                found.failures.setdefault(kind, why)
                continue
            found.counts[kind] = found.counts.get(kind, 0) + 1
            old = found.verified.get(kind)
            if old is None or (kind == "scan" and _scanned_at(stmt) > _scanned_at(old)):
                found.verified[kind] = stmt  # a re-scan's newer verdict replaces the older one
        self._check_legacy(repo, digest, found)
        return found

    def _check_legacy(self, repo: Repository, digest: str, found: Verification) -> None:
        """The ``.sig`` image, if there is one: verified if any of its signatures is by a trusted key."""
        try:
            data = repo.get_manifest(cosign.sig_tag(digest))[0]
        except NotFoundError:
            return  # optional: only older cosign needs it
        except ModelKitError as e:
            found.failures[LEGACY] = f"cannot read the .sig image: {_first_line(e)}"
            return
        first: str | None = None
        budget = MAX_LEGACY_BYTES
        try:
            layers = cosign.signature_layers(data)
        except ModelKitError as e:
            layers, first = [], _first_line(e)
        for layer in layers:
            size = layer["size"]
            if type(size) is not int or not 0 < size <= min(MAX_LEGACY_LAYER, budget):
                first = first or f"simple-signing layer declares size {size!r}, outside 1..{MAX_LEGACY_LAYER}"
                continue
            budget -= size
            try:
                payload = repo.read_blob(layer["digest"], size, limit=MAX_LEGACY_LAYER)
                cosign.verify_simple(payload, layer["signature"], self._keys, digest)
            except ModelKitError as e:
                first = first or _first_line(e)
                continue
            found.verified[LEGACY] = json.loads(payload)  # verify_simple parsed it strictly
            return
        found.failures[LEGACY] = first or "the .sig image holds no simple-signing signature"


def _scanned_at(stmt: dict[str, Any]) -> datetime:
    """When a scan statement says it was made (none or unreadable: the oldest possible)."""
    pred = stmt.get("predicate")
    at = parse_any(pred.get("scanned_at")) if isinstance(pred, dict) else None
    return at or datetime.min.replace(tzinfo=UTC)


def _statement_problem(stmt: dict[str, Any], pred: str, kind: str, digest: str) -> str | None:
    """Why a validly signed statement is no ``kind`` attestation of ``digest`` (None: it is one)."""
    if pred != attach.PRED_OMS and digest.split(":", 1)[1] not in dsse.subject_digests(stmt):
        return f"{kind} statement is about another artifact (subject digest mismatch)"
    if stmt.get("predicateType") != pred:
        return f"{kind} bundle's predicateType {stmt.get('predicateType')!r} does not match its annotation"
    if pred == attach.PRED_OMS:
        try:
            oms.signed_files(stmt)
        except VerificationError as e:
            return _first_line(e)
    return None
