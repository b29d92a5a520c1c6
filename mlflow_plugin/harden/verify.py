"""Verify a published kit against a trust policy: signatures, attestations, scan verdict, digests.

>>> policy = TrustPolicy(trusted_keys=["cosign.pub"])
>>> result = verify_kit("localhost:5000/team/fraud:v1", policy)     # doctest: +SKIP
>>> result.ok, [c.name for c in result.checks if not c.ok]         # doctest: +SKIP
(True, [])

Checks, in order: the manifest (by tag or digest) and its digest; a cosign-style signature over
that digest by a trusted key; the legacy ``.sig`` signature when present; each required
attestation (provenance, scan, sbom) signed by a trusted key with the manifest digest as its
subject; the scan verdict within the policy's maximum severity; the model_signing bundle's
signature; and (``deep=True``) every blob re-hashed while streamed. The signatures are checked by
one :class:`~mlflow_plugin.trust.signer.Verifier` built from the policy's trusted keys.

Referrers are judged by their own manifests (see :func:`~mlflow_plugin.trust.attach.list_attachments`),
so a kit copied with ``skopeo copy`` verifies on the second registry. Referrers that cannot be used
(unknown type, malformed, oversized, about another subject) never fail verification by themselves:
they are listed in ``VerifyResult.notes`` (and ``to_json()["notes"]``), which the CLI prints as
``NOTE`` lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.progress import Progress, bytes_callback
from mlflow_plugin.scanner.report import Severity
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.trust.sealed import Decryptor, is_encrypted_manifest
from mlflow_plugin.trust.signer import KIND_BY_PREDICATE, LEGACY, Verification, Verifier


@dataclass
class TrustPolicy:
    """What a kit must satisfy to be trusted.

    ``trusted_keys`` are public key paths, PEM bytes or key objects; ``required_attestations``
    name signed statements that must be attached (``provenance``, ``scan``, ``sbom``); the newest
    trusted scan's highest open finding may not exceed ``max_severity``, and findings a publisher
    accepted may not exceed ``accept_max_severity``. :meth:`from_config` reads the admin's ``[policy]``.

    >>> policy = TrustPolicy(trusted_keys=["keys/cosign.pub"], required_attestations=["provenance"])
    >>> policy.max_severity, policy.require_signature
    ('medium', True)
    """

    trusted_keys: list[Any] = field(default_factory=list)  # paths, PEM bytes or public key objects
    required_attestations: list[str] = field(default_factory=lambda: ["provenance", "scan"])
    max_severity: str = "medium"
    require_signature: bool = True
    accept_max_severity: str = "high"  # accepted findings above this fail the scan verdict
    decrypt_keys: list[str] = field(default_factory=list)  # recipient keys for encrypted kits
    _decryptor: Decryptor | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_config(
        cls, cfg: Any, keys: list[str] | None = None, decrypt_keys: list[str] | None = None
    ) -> TrustPolicy:
        return cls(
            trusted_keys=list(keys or cfg.trusted_keys),
            required_attestations=list(cfg.required_attestations),
            max_severity=cfg.max_severity,
            require_signature=True,
            accept_max_severity=cfg.accept_max_severity,
            decrypt_keys=list(decrypt_keys or cfg.decrypt_keys),
        )

    def decryptor(self) -> Decryptor:
        """The recipient keys of :attr:`decrypt_keys`, loaded once (on first use)."""
        if self._decryptor is None or self._decryptor.paths != self.decrypt_keys:
            self._decryptor = Decryptor(self.decrypt_keys)
        return self._decryptor

    def verifier(self) -> Verifier:
        """The trusted keys, loaded once (a key that cannot be loaded raises, in one line)."""
        return Verifier(self.trusted_keys)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`: every check with its detail; ``ok`` only if every check passed.

    ``provenance`` is the verified provenance statement (see :func:`mlflow_plugin.provenance` for
    a typed view), ``scan`` the verified scan report, ``notes`` what was skipped and why.

    >>> r = VerifyResult("oci:kits/fraud:v1", "sha256:" + "ab" * 32)
    >>> r.checks.append(Check("signature", False, "no signature found for this digest"))
    >>> r.ok, [c.name for c in r.failures()], r.to_json()["verified"]
    (False, ['signature'], False)
    """

    reference: str
    digest: str
    checks: list[Check] = field(default_factory=list)
    provenance: dict[str, Any] | None = None
    scan: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # informational: skipped referrers and why
    acceptances: list[Any] = field(default_factory=list)  # findings the publisher accepted (Acceptance)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "verified": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "notes": list(self.notes),
            "acceptances": [a.to_json() for a in self.acceptances],
        }


def verify_attachments(
    repo: Repository,
    digest: str,
    policy: TrustPolicy,
    result: VerifyResult,
    verifier: Verifier | None = None,
) -> None:
    """Signature and attestation checks for the manifest ``digest`` (no blob re-hashing).

    ``verifier`` (default: ``policy.verifier()``) lets a caller that checks many manifests load
    the trusted keys once."""
    if verifier is None and not policy.trusted_keys:
        result.checks.append(
            Check(
                "trusted keys",
                False,
                "no trusted public keys configured: pass --key or set "
                "signing.trusted_keys / MLFLOW_MODELKIT_TRUSTED_KEYS",
            )
        )
        return
    found = (verifier or policy.verifier()).check(repo, digest, policy.decryptor())
    _add_notes(result, found.notes)
    _record(found, policy, result)


def _record(found: Verification, policy: TrustPolicy, result: VerifyResult) -> None:
    """Turn what the verifier found into the policy's checks, in the documented order."""
    verified, bad = found.verified, found.failures
    sig_ok = "signature" in verified
    detail = (
        "signed by a trusted key" if sig_ok else bad.get("signature", "no signature found for this digest")
    )
    result.checks.append(Check("signature", sig_ok or not policy.require_signature, detail))
    if LEGACY in verified:
        result.checks.append(Check("legacy .sig", True, "cosign simple-signing signature valid"))
    elif LEGACY in bad:
        result.checks.append(Check("legacy .sig", False, bad[LEGACY]))
    for kind in policy.required_attestations:
        ok = kind in verified
        result.checks.append(
            Check(
                f"attestation:{kind}",
                ok,
                "signed, subject matches"
                if ok
                else bad.get(kind, f"no {kind} attestation signed by a trusted key"),
            )
        )
    if "provenance" in verified:
        result.provenance = verified["provenance"]
    if "scan" in verified:
        pred = verified["scan"].get("predicate") or {}
        result.scan = pred if isinstance(pred, dict) else {}
        result.checks.append(_scan_check(result, policy, found.counts.get("scan", 1)))
    if "model_signing" in verified or "model_signing" in bad:
        ok = "model_signing" in verified
        result.checks.append(
            Check(
                "model_signing bundle",
                ok,
                "signature valid (files are checked on unpack)" if ok else bad["model_signing"],
            )
        )


def _scan_check(result: VerifyResult, policy: TrustPolicy, n: int) -> Check:
    """The verdict of the newest trusted scan: its highest *open* finding within ``max_severity``,
    and every accepted finding within the admin's ``accept_max_severity`` (an acceptance signed by
    a publisher never lifts a finding past what this policy lets anyone accept)."""
    from mlflow_plugin.scanner.accept import acceptances_in, open_severity

    pred = result.scan or {}
    limit = Severity.parse(policy.max_severity)
    ceiling = Severity.parse(policy.accept_max_severity)
    try:
        top = open_severity(pred)
        result.acceptances = acceptances_in(pred)
    except ModelKitError as e:
        return Check("scan verdict", False, str(e))
    accepted = sum(1 for f in pred.get("findings") or [] if isinstance(f, dict) and "accepted" in f)
    when = pred.get("scanned_at")
    made = f"scan of {when}" if isinstance(when, str) and when else "scan (time not recorded)"
    newest = f", newest of {n}" if n > 1 else ""
    detail = f"highest open finding: {top or 'none'} (allowed up to {limit}); {made}{newest}"
    ok = top is None or top <= limit
    over = _accepted_over(pred, ceiling)
    if accepted:
        detail += f"; {accepted} accepted by the publisher"
    if over:
        ok = False
        detail += f"; an accepted {over} finding is above what may be accepted ({ceiling})"
    return Check("scan verdict", ok, detail)


def _accepted_over(pred: dict[str, Any], ceiling: Severity) -> str | None:
    """The severity of the worst accepted finding above ``ceiling`` (None: none is)."""
    worst: Severity | None = None
    for f in pred.get("findings") or []:
        if isinstance(f, dict) and "accepted" in f:
            try:
                sev = Severity.parse(str(f.get("severity")))
            except ModelKitError:
                return "malformed"
            if sev > ceiling and (worst is None or sev > worst):
                worst = sev
    return str(worst) if worst is not None else None


def _add_notes(result: VerifyResult, notes: list[str]) -> None:
    """Record ``notes``: things skipped on the way that do not decide the verdict (the CLI prints them)."""
    result.notes.extend(notes)


def verify_kit(
    ref: str,
    policy: TrustPolicy,
    deep: bool = True,
    progress: Progress | None = None,
    **registry_options: Any,
) -> VerifyResult:
    """Verify the kit ``ref`` (tag or digest, registry or ``oci:`` layout) against ``policy``."""
    from mlflow_plugin.storage.locations import open_location

    if "settings" not in registry_options:  # verify is a public entry point: the admin's settings
        from mlflow_plugin.config import load_config

        registry_options = {**registry_options, "settings": load_config().storage_settings()}
    repo, loc = open_location(ref, default_tag="latest", **registry_options)
    try:
        data, _mt, digest = repo.get_manifest(loc.reference or "latest")
        result = VerifyResult(str(loc), digest)
        result.checks.append(Check("manifest", True, f"{digest} ({len(data)} bytes)"))
        verify_attachments(repo, digest, policy, result)
        if deep:
            m = json.loads(data)
            n = 0
            try:
                blobs = list(repo.iter_blobs_of(m))
                cb = bytes_callback(progress, "verify", sum(d.size for d in blobs))
                for d in blobs:
                    with repo.open_blob(d.digest, d.size) as f:
                        while True:
                            b = f.read(4 << 20)
                            if not b:
                                break
                            cb(len(b))
                    n += 1
                result.checks.append(Check("blob digests", True, f"config and {n - 1} layers re-hashed"))
            except ModelKitError as e:
                result.checks.append(Check("blob digests", False, str(e)))
            if is_encrypted_manifest(m):
                result.checks.append(_plaintext_check(repo, m, policy.decryptor(), str(loc)))
        return result
    finally:
        repo.close()


class _Sink:
    def write(self, b: bytes) -> int:
        return len(b)


def _plaintext_check(repo: Repository, m: dict[str, Any], dec: Decryptor, what: str) -> Check:
    """An encrypted kit, as its recipient sees it: the sealed Kitfile opens and names exactly the
    manifest's layers; each layer decrypts with a valid HMAC to its sealed plaintext digest
    (streamed, nothing written)."""
    from mlflow_plugin.kit.kitfile import Kitfile
    from mlflow_plugin.trust import ocicrypt

    if not dec.paths:
        return Check(
            "plaintext digests",
            False,
            f"the kit is encrypted: pass --decrypt-key (or set {ocicrypt.DECRYPT_KEYS_ENV}) to check them",
        )
    try:
        cdesc = m.get("config") or {}
        config = repo.read_blob(cdesc["digest"], cdesc.get("size"), limit=4 << 20)
        kf = Kitfile.from_json(dec.kitfile(m, config, what))
        layers = [d for d in m.get("layers") or [] if isinstance(d, dict)]
        named = {e.layer.digest for e in _entries(kf) if e.layer is not None}
        if named != {d.get("digest") for d in layers}:
            return Check("plaintext digests", False, "the sealed Kitfile does not name the manifest's layers")
        n = 0
        for d in layers:
            if not ocicrypt.is_encrypted(str(d.get("mediaType", ""))):
                continue
            key = dec.open(d)
            with repo.open_blob(d["digest"], d.get("size")) as f:
                ocicrypt.decrypt_layer(f, _Sink(), key, layer=d["digest"])  # type: ignore[arg-type]
            n += 1
        return Check("plaintext digests", True, f"{n} encrypted layers decrypted: HMACs and digests match")
    except (ModelKitError, KeyError, TypeError) as e:
        return Check("plaintext digests", False, str(e).splitlines()[0] if str(e) else type(e).__name__)


def _entries(kf: Any) -> list[Any]:
    parts = kf.model.parts if kf.model is not None else []
    return [
        e for e in [kf.model, *parts, *kf.code, *kf.datasets, *kf.docs, *kf.prompts, *kf.mcp_servers] if e
    ]


def load_verifier(repo: Repository, policy: TrustPolicy, ref: str) -> Callable[[bytes, str], None]:
    """A manifest hook for verify-on-load: raises before any file of an untrusted kit is written."""
    loaded: list[Verifier] = []  # the trusted keys, loaded on the first manifest and kept

    def check(data: bytes, digest: str) -> None:
        result = VerifyResult(ref, digest)
        if not loaded and policy.trusted_keys:
            loaded.append(policy.verifier())
        verify_attachments(repo, digest, policy, result, loaded[0] if loaded else None)
        # the config (Kitfile) is never downloaded by a load, but the signature covers it too
        try:
            config = json.loads(data)["config"]
            repo.read_blob(config["digest"], config.get("size"), limit=1 << 20)
        except ModelKitError as e:
            result.checks.append(Check("config", False, str(e).splitlines()[0]))
        except (ValueError, KeyError, TypeError):
            result.checks.append(Check("config", False, "the manifest has no valid config descriptor"))
        if not result.ok:
            failed = result.failures()
            why = "; ".join(f"{c.name}: {c.detail}" for c in failed)
            fix = (
                ": check that signing.trusted_keys (MLFLOW_MODELKIT_TRUSTED_KEYS) holds the "
                "signer's public key"
                if any(c.name == "signature" for c in failed)
                else ""
            )
            raise ModelKitError(" ".join(f"refusing to load {ref} ({digest[:19]}…): {why}{fix}".split("\n")))

    return check


def verify(
    ref: str,
    keys: list[Any] | None = None,
    policy: TrustPolicy | None = None,
    deep: bool = True,
    progress: Progress | None = None,
    decrypt_keys: list[str] | None = None,
    **registry_options: Any,
) -> VerifyResult:
    """Verify ``ref`` with ``keys`` (or the admin config's trusted keys and policy).

    ``policy`` (default: the admin's ``[policy]``) says what is required; ``deep`` re-hashes
    every blob (``progress`` gets the stage ``"verify"`` in bytes). An encrypted kit needs one of
    its recipients' private keys, ``decrypt_keys`` (default: the admin's ``[encryption]
    decrypt_keys``), to read its attestations and check its plaintext digests. A kit that was
    packed or pushed but never published carries no signature:

    >>> import pathlib, tempfile
    >>> from mlflow_plugin import generate_keypair, pack
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> _ = (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\\nmodel: {path: model.bin}\\n")
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
    >>> keys = generate_keypair(tempfile.mkdtemp(), password="")
    >>> result = verify(f"oci:{kits}/fraud:v1", keys=[keys.public])
    >>> result.ok, [c.name for c in result.failures()]
    (False, ['signature', 'attestation:provenance', 'attestation:scan'])
    >>> verify("localhost:5000/team/fraud:v1", keys=["keys/cosign.pub"]).ok   # doctest: +SKIP
    True
    """
    if policy is None:
        from mlflow_plugin.config import load_config

        policy = TrustPolicy.from_config(load_config(), keys=keys, decrypt_keys=decrypt_keys)
    else:
        if keys:
            policy.trusted_keys = list(keys)
        if decrypt_keys:
            policy.decrypt_keys = list(decrypt_keys)
    return verify_kit(ref, policy, deep=deep, progress=progress, **registry_options)


__all__ = [
    "KIND_BY_PREDICATE",
    "Check",
    "TrustPolicy",
    "VerifyResult",
    "load_verifier",
    "verify",
    "verify_kit",
]
