"""Continuous scanning: re-scan every published kit of a repository with today's scanner and policy.

>>> results = rescan("localhost:5000/team/fraud", key="cosign.key")          # doctest: +SKIP
>>> [(r.tags, r.previous, r.current, r.action) for r in results]           # doctest: +SKIP
[(['v1'], 'clean', 'critical (1 findings)', 'attested')]

For each manifest the repository's tags point to (drafts and signature tags aside) that carries a
signature by a trusted key: scan the kit as published (layer results come from the scan cache when
the bytes, scanner and policy are unchanged), carry over the acceptances of its newest trusted scan
attestation, compare the open findings with that attestation's, and — only where they changed —
sign and attach a new scan attestation (``scanned_at`` now, the old ones stay). ``verify`` then
judges by the newest. Unsigned kits are skipped: nobody published them, nothing vouches for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugin._internal.times import now_precise
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.kit.limits import UnpackLimits
from mlflow_plugin.kit.mediatypes import KIT_CONFIG
from mlflow_plugin.storage.descriptor import Descriptor
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST

Progress = Callable[[str, int, int], None]
DRAFT_PREFIXES = ("run-", "m-", "tr-")


@dataclass
class RescanResult:
    """One published kit re-scanned: its tags, the verdict before and now, and what was done.

    ``action`` is ``attested`` (a new signed scan attestation, digest in ``attestation``),
    ``unchanged``, ``would attest`` (``dry_run``) or ``skipped`` (``reason`` says why).

    >>> RescanResult("oci:/srv/kits/fraud", "sha256:" + "ab" * 32, ["v1"], "clean", "clean").action
    'unchanged'
    """

    repository: str
    digest: str
    tags: list[str]
    previous: str | None
    current: str | None
    action: str = "unchanged"
    reason: str = ""
    previous_at: str | None = None
    attestation: str | None = None
    fails_policy: bool = False
    added: list[str] = field(default_factory=list)  # "severity rule at path" newly open
    resolved: list[str] = field(default_factory=list)  # open before, not any more

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": self.tags,
            "previous": self.previous,
            "previous_at": self.previous_at,
            "current": self.current,
            "action": self.action,
            "reason": self.reason,
            "attestation": self.attestation,
            "fails_policy": self.fails_policy,
            "added": self.added,
            "resolved": self.resolved,
        }


def rescan(
    repository: str,
    key: str | None = None,
    password: bytes | None = None,
    config: Any = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    decrypt_keys: list[str] | None = None,
    encrypt_for: list[str] | None = None,
) -> list[RescanResult]:
    """Re-scan the published kits of ``repository`` (``HOST/REPO`` or ``oci:DIR``); see the module.

    ``key`` signs new scan attestations (default ``signing.key``; not needed with ``dry_run``);
    kits count as published when signed by a key in ``signing.trusted_keys`` or by ``key``
    itself. ``progress`` gets ``("rescan", done, total)`` per kit. An encrypted kit is re-scanned
    only with one of its recipient keys (``decrypt_keys``, default ``[encryption] decrypt_keys``)
    and a new scan attestation is attached only encrypted for named recipients (``encrypt_for``,
    default ``[encryption] recipients``): a plaintext report would show its files. A kit that was
    packed but never published is left alone:

    >>> import pathlib, tempfile
    >>> from mlflow_plugin import generate_keypair, pack
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> _ = (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\\nmodel: {path: model.bin}\\n")
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
    >>> keys = generate_keypair(tempfile.mkdtemp(), password="")
    >>> [(r.tags, r.action, r.reason) for r in rescan(f"oci:{kits}/fraud", key=keys.private)]
    [(['v1'], 'skipped', 'no signature by a trusted key (not published)')]
    """
    from mlflow_plugin.config import load_config
    from mlflow_plugin.scanner.accept import (
        accept_findings,
        acceptances_in,
        judged_keys,
        open_keys,
        open_severity,
    )
    from mlflow_plugin.scanner.api import scan_kit
    from mlflow_plugin.scanner.report import Severity
    from mlflow_plugin.storage.locations import open_location
    from mlflow_plugin.trust import ocicrypt
    from mlflow_plugin.trust.sealed import Decryptor, is_encrypted_manifest
    from mlflow_plugin.trust.signer import Signer, Verifier

    store = _store_of(repository)
    cfg = config or load_config()
    settings = cfg.storage_settings()
    signer = None
    if not dry_run:
        key_path = key or cfg.signing_key
        if not key_path:
            raise ModelKitError(
                "no signing key for new scan attestations: pass --key PATH, set signing.key, or use --dry-run"
            )
        signer = Signer.from_key_file(key_path, password)
    trusted: list[Any] = list(cfg.trusted_keys) + ([signer.public_key] if signer else [])
    if not trusted:
        raise ModelKitError(
            "no trusted public keys to tell published kits from others: set signing.trusted_keys "
            "(MLFLOW_MODELKIT_TRUSTED_KEYS) or pass --key"
        )
    verifier = Verifier(trusted)
    dec = Decryptor(decrypt_keys if decrypt_keys is not None else cfg.decrypt_keys)
    recipients = [
        ocicrypt.load_recipient(p) for p in (encrypt_for if encrypt_for is not None else cfg.encrypt_for)
    ]
    policy = cfg.scan_policy()
    limits = UnpackLimits.from_config(cfg)
    allowed = Severity.parse(cfg.max_severity)
    repo, _loc = open_location(store, settings=settings)
    out: list[RescanResult] = []
    try:
        kits = _published_manifests(repo)
        for n, (digest, (tags, size)) in enumerate(sorted(kits.items(), key=lambda kv: kv[1][0]), 1):
            r = RescanResult(store, digest, tags, None, None)
            out.append(r)
            found = verifier.check(repo, digest, dec)
            encrypted = is_encrypted_manifest(json.loads(repo.get_manifest(digest)[0]))
            why = None
            if "signature" not in found.verified:
                why = "no signature by a trusted key (not published)"
            elif encrypted and not dec.paths:
                why = "encrypted for recipients: pass --decrypt-key to re-scan it"
            elif encrypted and not recipients and not dry_run:
                why = "encrypted for recipients: pass --encrypt-for (its recipients) to attest a new scan"
            if why:
                r.action, r.reason = "skipped", why
                if progress:
                    progress("rescan", n, len(kits))
                continue
            prev = (found.verified.get("scan") or {}).get("predicate")
            prev = prev if isinstance(prev, dict) else None
            try:
                carried = acceptances_in(prev) if prev else []
            except ModelKitError:
                carried = []
            if prev is not None:
                at = prev.get("scanned_at")
                r.previous_at = at if isinstance(at, str) else None
                try:
                    r.previous = _verdict_of(prev, open_severity(prev))
                except ModelKitError as e:
                    r.previous = f"unreadable ({e})"
            report = scan_kit(
                f"{store}@{digest}",
                policy=policy,
                unpack_limits=limits,
                settings=settings,
                decrypt=dec.decrypt_to_temp if encrypted else None,
            )
            judged = accept_findings(report, carried, cfg.accept_max_severity, strict=False)
            r.current = judged.verdict()
            top = judged.max_open_severity
            r.fails_policy = top is not None and top > allowed
            before = open_keys(prev) if prev else set()
            now = judged_keys(judged)
            r.added = [f"{s} {rule} at {p}" for rule, p, s in sorted(now - before)]
            r.resolved = [f"{s} {rule} at {p}" for rule, p, s in sorted(before - now)]
            if prev is not None and not r.added and not r.resolved and r.previous == r.current:
                r.action = "unchanged"
            elif dry_run or signer is None:
                r.action = "would attest"
            else:
                doc = judged.to_json()
                doc["scanned_at"] = now_precise()
                if r.previous_at:
                    doc["rescan_of"] = r.previous_at
                subject = Descriptor(OCI_MANIFEST, digest, size)
                r.attestation = signer.attest(
                    repo, subject, "scan", doc, name=store, recipients=recipients if encrypted else ()
                )
                r.action = "attested"
            if progress:
                progress("rescan", n, len(kits))
    finally:
        repo.close()
    return out


def _store_of(repository: str) -> str:
    """``HOST/REPO`` or ``oci:DIR`` without a tag or digest (a repository names no kit)."""
    if "@" in repository:
        raise ModelKitError(f"rescan takes a repository, not a kit: drop '@…' from {repository!r}")
    head, sep, tail = repository.rpartition(":")
    if sep and "/" not in tail and not repository.startswith("oci:") and head:
        raise ModelKitError(f"rescan takes a repository, not a tag: use {head!r}")
    if repository.startswith("oci:") and repository.count(":") > 1:
        raise ModelKitError(f"rescan takes a repository, not a tag: use {head!r}")
    return repository.rstrip("/")


def _published_manifests(repo: Any) -> dict[str, tuple[list[str], int]]:
    """digest -> (its tags, manifest size) for the kits the repository's tags point to.

    Drafts (``run-…``, ``m-…``, ``tr-…``), signature and referrer tags (``sha256-…``) and
    anything that is not a ModelKit are left out."""
    out: dict[str, tuple[list[str], int]] = {}
    for tag in repo.list_tags():
        if tag.startswith(DRAFT_PREFIXES) or tag.startswith("sha256-"):
            continue
        try:
            data, _mt, digest = repo.get_manifest(tag)
            m = json.loads(data)
        except (ModelKitError, ValueError):
            continue
        if not isinstance(m, dict) or (m.get("config") or {}).get("mediaType") != KIT_CONFIG:
            continue
        tags, _ = out.setdefault(digest, ([], len(data)))
        tags.append(tag)
    return out


def _verdict_of(pred: dict[str, Any], top: Any) -> str:
    """The verdict words of a scan attestation, as :meth:`Judged.verdict` writes them."""
    findings = [f for f in pred.get("findings") or [] if isinstance(f, dict)]
    open_ = [f for f in findings if "accepted" not in f]
    accepted = len(findings) - len(open_)
    from mlflow_plugin.scanner.report import Severity

    counted = [f for f in open_ if _sev(f) >= Severity.LOW]
    v = "clean" if not counted else f"{top} ({len(open_)} findings)"
    return f"{v} ({accepted} accepted)" if accepted else v


def _sev(f: dict[str, Any]) -> int:
    from mlflow_plugin.scanner.report import Severity

    try:
        return int(Severity.parse(str(f.get("severity"))))
    except ModelKitError:
        return int(Severity.CRITICAL)
