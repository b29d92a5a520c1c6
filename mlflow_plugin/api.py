"""Edge wrappers of the public API that need a few lines of code: they read the admin
configuration (:func:`~mlflow_plugin.config.load_config`) for whatever the caller does not give.

Import them from :mod:`mlflow_plugin`; this module holds :func:`scan`, :func:`generate_keypair`
(with :class:`KeyPair`) and :func:`provenance` (with :class:`Provenance`).

>>> import tempfile
>>> from mlflow_plugin import generate_keypair, scan
>>> keys = generate_keypair(tempfile.mkdtemp(), password="")
>>> scan(keys.public).findings
[]
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.kit.limits import UnpackLimits
from mlflow_plugin.progress import Progress, report_stage
from mlflow_plugin.scanner.context import Limits, Policy
from mlflow_plugin.scanner.report import ScanReport
from mlflow_plugin.storage.locations import StorageSettings


def scan(
    target: str,
    *,
    policy: Policy | None = None,
    limits: Limits | None = None,
    unpack_limits: UnpackLimits | None = None,
    settings: StorageSettings | None = None,
    progress: Progress | None = None,
    decrypt_keys: list[str] | None = None,
    **registry_options: Any,
) -> ScanReport:
    """Scan a file, a directory or a kit (``oci:DIR:TAG``, ``HOST/REPO:TAG``) without executing anything.

    Nothing is unpickled, imported or loaded: pickles are disassembled, archives walked, kit layers
    streamed from their store and verified against their digests while scanned (nothing is
    unpacked to disk). What is not given comes from the admin config: ``policy`` (the pickle
    allowlist extensions ``scan.allow_globals``/``allow_modules``), ``unpack_limits``
    (``[limits]``) and ``settings`` (insecure registries, CA bundle). ``limits`` bound the scan
    itself (:class:`~mlflow_plugin.scanner.context.Limits`). ``progress`` gets the stage
    ``"scan"`` at its start ``(0, 1)`` and end ``(1, 1)`` only. An encrypted kit is scanned as
    plaintext with one of its recipients' private keys, ``decrypt_keys`` (default: the admin's
    ``[encryption] decrypt_keys``); its layers are decrypted into unnamed temp files, verified first.

    >>> import os, pickle, tempfile
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "model.pkl"), "wb") as f:
    ...     pickle.dump({"weights": [0.5, 0.25]}, f)
    >>> report = scan(d)
    >>> [(r.path, r.format) for r in report.files], report.failed("high")
    ([('model.pkl', 'pickle')], False)
    >>> with open(os.path.join(d, "evil.pkl"), "wb") as f:   # calls os.system when unpickled
    ...     _ = f.write(b"cos\\nsystem\\n(S'true'\\ntR.")
    >>> report = scan(d)
    >>> report.failed("high"), str(report.max_severity), report.sorted_findings()[0].path
    (True, 'critical', 'evil.pkl')
    """
    from mlflow_plugin.scanner import api
    from mlflow_plugin.trust.sealed import Decryptor

    if policy is None or unpack_limits is None or settings is None or decrypt_keys is None:
        from mlflow_plugin.config import load_config

        cfg = load_config()
        if policy is None:
            policy = cfg.scan_policy()
        unpack_limits = unpack_limits or UnpackLimits.from_config(cfg)
        settings = settings or cfg.storage_settings()
        decrypt_keys = cfg.decrypt_keys if decrypt_keys is None else decrypt_keys
    dec = Decryptor(decrypt_keys)
    decrypt = dec.decrypt_to_temp if dec.paths else None
    report_stage(progress, "scan", 0, 1)
    report = api.scan(target, limits, policy, unpack_limits, settings, decrypt, **registry_options)
    report_stage(progress, "scan", 1, 1)
    return report


class KeyPair(NamedTuple):
    """The files :func:`generate_keypair` wrote: ``(private, public)`` paths.

    >>> pair = KeyPair("keys/cosign.key", "keys/cosign.pub")
    >>> private, public = pair
    >>> public
    'keys/cosign.pub'
    """

    private: str
    public: str

    @property
    def key_id(self) -> str:
        """SHA-256 of the public key (DER SubjectPublicKeyInfo), hex: what ``verify`` reports."""
        from mlflow_plugin.trust.keys import key_id, load_public_key

        return key_id(load_public_key(self.public))


def generate_keypair(out_dir: str, password: str | bytes | None = None) -> KeyPair:
    """Create an ECDSA P-256 signing key pair: ``out_dir/cosign.key`` and ``out_dir/cosign.pub``.

    The private key is encrypted PKCS#8 PEM (mode 0600) under ``password``; ``None`` takes it
    from ``MLFLOW_MODELKIT_KEY_PASSWORD`` (or a prompt on a terminal) and fails without one;
    ``""`` writes an *unencrypted* key (tests, demos). Existing files are never overwritten.
    The keys work with cosign and ``model_signing``; :func:`~mlflow_plugin.publish_run` signs
    with the private key, :func:`~mlflow_plugin.verify` trusts the public one.

    >>> import os, tempfile
    >>> keys = generate_keypair(tempfile.mkdtemp(), password="correct horse")
    >>> os.path.basename(keys.private), oct(os.stat(keys.private).st_mode & 0o777)
    ('cosign.key', '0o600')
    >>> len(keys.key_id)
    64
    """
    from mlflow_plugin.trust import keys

    if password is None:
        secret = keys.passphrase_from_env(confirm=True)
        if not secret:
            raise ModelKitError(
                "a passphrase is required: pass password=..., set MLFLOW_MODELKIT_KEY_PASSWORD, or "
                "pass password='' for an unencrypted key"
            )
    else:
        secret = password.encode("utf-8") if isinstance(password, str) else password
    private, public = keys.generate_keypair(out_dir, secret or None)
    return KeyPair(private, public)


@dataclass(frozen=True)
class ProvenanceDataset:
    """A dataset the run used, as its provenance records it.

    ``sha256`` is the digest of the dataset's real source, re-hashed at publish time (``None``
    when it was unreachable); ``context`` is MLflow's (``training``, ``eval``…).

    >>> ProvenanceDataset("train", "file:///data/train.csv", "ab" * 32, "training").context
    'training'
    """

    name: str
    uri: str
    sha256: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class Provenance:
    """A typed view of a kit's *verified* SLSA provenance (an in-toto Statement v1).

    ``subject_digest`` is the kit's manifest digest the statement is about; ``params`` are the
    run's (redacted) hyperparameters; ``metrics`` its final metric values; ``git_commit`` and
    ``source`` where the training code came from; ``builder`` the SLSA builder id; times are UTC.
    ``statement`` is the raw statement (a dict) for everything else.

    >>> p = Provenance.from_statement({"subject": [{"name": "kit", "digest": {"sha256": "ab" * 32}}]})
    >>> p.subject_digest[:15], p.params, p.started_on
    ('sha256:abababab', {}, None)
    """

    subject_name: str
    subject_digest: str
    run_id: str | None = None
    run_name: str | None = None
    experiment_id: str | None = None
    experiment: str | None = None
    user: str | None = None
    status: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    datasets: list[ProvenanceDataset] = field(default_factory=list)
    git_commit: str | None = None
    source: str | None = None
    builder: str | None = None
    started_on: datetime | None = None
    finished_on: datetime | None = None
    tracking_uri: str | None = None
    kit_ref: str | None = None
    statement: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_statement(cls, statement: dict[str, Any]) -> Provenance:
        """Read the fields out of an in-toto statement (missing parts become ``None`` or empty).

        >>> st = {"subject": [{"name": "kit", "digest": {"sha256": "cd" * 32}}],
        ...       "predicate": {"runDetails": {"metadata": {"startedOn": "2026-01-02T03:04:05Z"}}}}
        >>> Provenance.from_statement(st).started_on.isoformat()
        '2026-01-02T03:04:05+00:00'
        """
        subjects = statement.get("subject") or [{}]
        first = subjects[0] if isinstance(subjects[0], dict) else {}
        hexd = (first.get("digest") or {}).get("sha256") or ""
        pred = statement.get("predicate") or {}
        bd, rd = pred.get("buildDefinition") or {}, pred.get("runDetails") or {}
        ext, internal = bd.get("externalParameters") or {}, bd.get("internalParameters") or {}
        run, src, meta = ext.get("run") or {}, ext.get("source") or {}, rd.get("metadata") or {}
        deps = bd.get("resolvedDependencies") or []
        commit = next(
            (
                str(d["digest"]["gitCommit"])
                for d in deps
                if d.get("name") == "source" and (d.get("digest") or {}).get("gitCommit")
            ),
            None,
        )
        datasets = [
            ProvenanceDataset(
                name=str(d.get("name", "")),
                uri=str(d.get("uri", "")),
                sha256=(d.get("digest") or {}).get("sha256"),
                context=(d.get("annotations") or {}).get("context"),
            )
            for d in deps
            if isinstance(d.get("annotations"), dict)
            and ("mlflowDigest" in d["annotations"] or "reachable" in d["annotations"])
        ]
        return cls(
            subject_name=str(first.get("name", "")),
            subject_digest=f"sha256:{hexd}" if hexd else "",
            run_id=internal.get("run_id"),
            run_name=run.get("run_name"),
            experiment_id=internal.get("experiment_id"),
            experiment=run.get("experiment"),
            user=internal.get("user"),
            status=internal.get("status"),
            params={str(k): str(v) for k, v in (ext.get("hyperparameters") or {}).items()},
            metrics=_metrics(rd.get("byproducts") or []),
            datasets=datasets,
            git_commit=commit,
            source=src.get("uri"),
            builder=(rd.get("builder") or {}).get("id"),
            started_on=_time(meta.get("startedOn")),
            finished_on=_time(meta.get("finishedOn")),
            tracking_uri=internal.get("tracking_uri"),
            kit_ref=internal.get("kit_ref"),
            statement=statement,
        )


def _metrics(byproducts: list[dict[str, Any]]) -> dict[str, float]:
    for bp in byproducts:
        if bp.get("name") == "metrics" and bp.get("content"):
            try:
                body = json.loads(base64.b64decode(bp["content"]))
                return {str(k): float(v) for k, v in (body.get("metrics") or {}).items()}
            except (ValueError, TypeError, AttributeError):
                return {}
    return {}


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def provenance(ref: str, keys: list[Any] | None = None, **registry_options: Any) -> Provenance:
    """The verified SLSA provenance of the published kit ``ref``, as a :class:`Provenance`.

    The kit's signature and provenance attestation must verify against ``keys`` (public key
    paths, PEM bytes or key objects; default: the admin config's ``signing.trusted_keys``) with
    the manifest digest as the statement's subject; otherwise :class:`~mlflow_plugin.ModelKitError`
    says why. Blobs are not re-hashed (that is :func:`~mlflow_plugin.verify`'s ``deep``).

    >>> import os, pathlib, tempfile
    >>> from mlflow import MlflowClient
    >>> from mlflow_plugin import generate_keypair, publish_run
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    >>> exp = client.create_experiment("fraud", artifact_location=f"modelkit://{home}/kits/fraud")
    >>> run = client.create_run(exp, run_name="baseline")
    >>> _ = client.log_param(run.info.run_id, "C", "0.5")
    >>> client.log_metric(run.info.run_id, "auc", 0.91)
    >>> _ = (home / "model.txt").write_text("weights")
    >>> client.log_artifact(run.info.run_id, str(home / "model.txt"))
    >>> client.set_terminated(run.info.run_id)
    >>> keys = generate_keypair(str(home / "keys"), password="")
    >>> kit = publish_run(run.info.run_id, "v1", key=keys.private, tracking_uri=client.tracking_uri)
    >>> p = provenance(kit.reference, keys=[keys.public])
    >>> p.subject_digest == kit.digest, p.run_id == run.info.run_id, p.run_name
    (True, True, 'baseline')
    >>> p.params, p.metrics, p.finished_on.tzname()
    ({'C': '0.5'}, {'auc': 0.91}, 'UTC')
    >>> provenance(kit.reference, keys=[generate_keypair(str(home / "other"), password="").public])
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: no verified provenance for oci:...:v1: signature: ...
    """
    from mlflow_plugin.harden.verify import TrustPolicy, verify_kit

    if keys:
        policy = TrustPolicy(trusted_keys=list(keys), required_attestations=["provenance"])
    else:
        from mlflow_plugin.config import load_config

        policy = TrustPolicy.from_config(load_config())
        policy.required_attestations = ["provenance"]
    result = verify_kit(ref, policy, deep=False, **registry_options)
    if result.provenance is None or not result.ok:
        why = "; ".join(f"{c.name}: {c.detail}" for c in result.failures()) or "no provenance attestation"
        raise ModelKitError(" ".join(f"no verified provenance for {ref}: {why}".split()))
    return Provenance.from_statement(result.provenance)


__all__ = ["KeyPair", "Provenance", "ProvenanceDataset", "generate_keypair", "provenance", "scan"]


@dataclass(frozen=True)
class KitRef:
    """A parsed kit reference: the ``store`` (``oci:DIR`` or ``HOST/REPO``) and a tag or digest.

    >>> r = parse_reference("localhost:5000/team/fraud:v1")
    >>> r.store, r.tag, r.digest, str(r)
    ('localhost:5000/team/fraud', 'v1', None, 'localhost:5000/team/fraud:v1')
    """

    store: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.digest:
            return f"{self.store}@{self.digest}"
        return f"{self.store}:{self.tag}" if self.tag else self.store


def parse_reference(text: str) -> KitRef:
    """Check and split ``oci:DIR[:TAG|@DIGEST]`` or ``HOST[:PORT]/REPO[:TAG|@DIGEST]`` (never fetched).

    Raises :class:`~mlflow_plugin.errors.ReferenceFormatError` (one line, with an example) for
    anything else: upper-case repositories, bad tags or digests, empty segments.

    >>> parse_reference("oci:/srv/kits/fraud@sha256:" + "0" * 64).digest[:13]
    'sha256:000000'
    >>> parse_reference("oci:/srv/kits/fraud").tag is None
    True
    >>> parse_reference("Registry/Team/Fraud:v1")                     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ReferenceFormatError: ...
    """
    from mlflow_plugin.storage.reference import LayoutLocation, parse_location

    loc = parse_location(text)
    if isinstance(loc, LayoutLocation):
        return KitRef(f"oci:{loc.path}", loc.tag, loc.digest)
    ref = loc.ref
    return KitRef(f"{ref.registry}/{ref.repository}", ref.tag, ref.digest)


def check_tag(tag: str) -> str:
    """``tag`` if it is a valid OCI tag, else a one-line :class:`~mlflow_plugin.errors.ReferenceFormatError`.

    >>> check_tag("v1.2")
    'v1.2'
    """
    from mlflow_plugin.storage.reference import check_tag as _check

    return _check(tag)


def draft_reference(artifact_uri: str) -> str | None:
    """The OCI reference of the draft kit behind an MLflow artifact URI of the ``modelkit`` store —
    a run's (``STORE:run-<id>``) or a logged model's (``STORE:m-<id>``; MLflow 3 keeps each logged
    model in a kit of its own) — for :func:`~mlflow_plugin.inspect` and :func:`~mlflow_plugin.scan`.
    ``None`` for other stores.

    >>> draft_reference("modelkit:/srv/kits/fraud/models/m-" + "a" * 32 + "/artifacts")
    'oci:/srv/kits/fraud:m-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
    >>> draft_reference("s3://bucket/1/abc/artifacts") is None
    True
    """
    from mlflow_plugin.drafts.uri import parse_artifact_uri

    if not artifact_uri or not artifact_uri.startswith("modelkit:"):
        return None
    try:
        loc = parse_artifact_uri(artifact_uri)
    except ModelKitError:
        return None
    return f"{loc.store}:{loc.tag}" if loc.tag else None
