"""Publish an MLflow run as a hardened ModelKit: compose, scan, attest, sign, tag, record.

>>> from mlflow_plugin import publish_run
>>> r = publish_run("3f2a…", tag="v1", key="keys/cosign.key",                       # doctest: +SKIP
...                 progress=lambda stage, done, total: print(stage, done, total))
>>> r.reference, r.digest, r.scan.max_severity                                      # doctest: +SKIP
('localhost:5000/team/fraud:v1', 'sha256:…', None)

Steps (each reported to ``progress(stage, done, total)``):

1. **compose** — the kit's manifest points at blobs the run's drafts already hold (the run's
   artifacts and its MLflow 3 logged model): nothing is re-uploaded. A final Kitfile config is
   built from the run (package name/version/authors/description/license, model framework from
   the MLmodel flavors, datasets, code, docs), and so are the provenance statement and the ML-BOM,
   all in memory. Params and tags named like secrets (``[publish] redact_params``) keep their name
   and get the value ``[redacted]`` in all three (:mod:`mlflow_plugin.trust.redact`). Kinds the
   admin's ``[publish] include`` leaves out, or ``exclude`` names, get no layer and no Kitfile
   entry: the provenance references each of their files by SHA-256 only.
2. **scan** — first the metadata the kit will carry (the Kitfile config, the provenance, the
   ML-BOM, the run's params and tags): a secret there is at least ``high`` and blocks publishing
   *before anything is stored*, with a finding that names the param, tag or field (never the
   value) and says how to redact it. Then the config and the manifest are stored *by digest* and
   exactly the kit's bytes are scanned, streamed and verified; the admin's threshold blocks
   publishing with the report.
3. **attest** — SLSA provenance from the run, the scan report, a CycloneDX ML-BOM and an
   OpenSSF model_signing bundle, each a signed Sigstore bundle attached as an OCI referrer.
4. **sign** — a cosign-style signature over the manifest digest (referrer bundle) and a legacy
   ``sha256-<hex>.sig`` simple-signing signature. Both stages go through one
   :class:`~mlflow_plugin.trust.signer.Signer`, loaded from the key before anything else happens;
   nothing else sees the private key.
5. **tag** — only now does the tag move: a failure earlier leaves no tag on an unsigned kit.
6. **record** — run tags ``modelkit.ref``, ``modelkit.digest``, ``modelkit.signed``,
   ``modelkit.scan``; optionally a registered model version whose source is the pinned kit.

Publishing the same run again with the same key is idempotent: the composed manifest is
deterministic (its ``created`` is the run's end time) and existing valid signatures are reused.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlflow_plugin._internal.mlmodel import read_mlmodel
from mlflow_plugin._internal.times import from_mlflow_ms, now_precise, now_rfc3339
from mlflow_plugin._version import __version__
from mlflow_plugin.drafts.draft import DraftKit
from mlflow_plugin.drafts.uri import ArtifactLocation, parse_artifact_uri
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.kit.compose import LayerRecord, ModelTemplate, compose, kind_of
from mlflow_plugin.kit.fileindex import ANN_FILES, layer_path, parse_file_index
from mlflow_plugin.kit.kitfile import Kitfile, Package
from mlflow_plugin.kit.limits import UnpackLimits
from mlflow_plugin.kit.manifest import build_manifest
from mlflow_plugin.kit.mediatypes import KIT_CONFIG
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.descriptor import Descriptor, sha256_digest
from mlflow_plugin.storage.locations import StorageSettings
from mlflow_plugin.storage.mediatypes import OCI_MANIFEST
from mlflow_plugin.storage.reference import check_tag

if TYPE_CHECKING:
    from mlflow_plugin.trust.signer import Signer

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
STAGES = ("compose", "scan", "attest", "sign", "tag", "record")
FLAVOR_FRAMEWORK = {
    "sklearn": "scikit-learn",
    "pytorch": "pytorch",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "onnx": "onnx",
    "transformers": "transformers",
    "statsmodels": "statsmodels",
    "prophet": "prophet",
    "spark": "spark",
    "h2o": "h2o",
    "paddle": "paddle",
    "spacy": "spacy",
}


class PublishBlocked(ModelKitError):
    """The scan found something at or above the policy threshold; nothing was tagged or signed.

    ``report`` is the :class:`~mlflow_plugin.ScanReport` that blocked it (also recorded on the run
    as the tag ``modelkit.scan = blocked: …``).

    >>> from mlflow_plugin.scanner.report import ScanReport
    >>> try:
    ...     raise PublishBlocked("publishing blocked by the scan: highest critical", ScanReport("kit"))
    ... except ModelKitError as e:
    ...     print(e.report.target, "-", e)
    kit - publishing blocked by the scan: highest critical
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class PublishResult:
    """What :func:`publish_run` produced: the published ``reference`` (``STORE:TAG``) and its
    manifest ``digest``, the scan report, the attached referrers by kind, and the model version.

    >>> r = PublishResult("oci:/srv/kits/fraud:v1", "sha256:" + "ab" * 32, "v1", "oci:/srv/kits/fraud", None)
    >>> r.pinned[:34], r.model_uri[:36]
    ('oci:/srv/kits/fraud@sha256:abababa', 'modelkit:///srv/kits/fraud@sha256:ab')
    """

    reference: str
    digest: str
    tag: str
    store: str
    scan: Any
    attachments: dict[str, str] = field(default_factory=dict)
    reused_signatures: bool = False
    model_version: str | None = None
    provenance: dict[str, Any] | None = None
    accepted: list[tuple[Any, Any]] = field(default_factory=list)  # (Finding, Acceptance) pairs
    verdict: str = ""
    encrypted_for: list[str] = field(default_factory=list)
    """Recipient ids (SHA-256 of each public key's DER) the kit is encrypted for; empty: not encrypted."""

    @property
    def pinned(self) -> str:
        return f"{self.store}@{self.digest}"

    @property
    def model_uri(self) -> str:
        """``modelkit://…@sha256:…``: loadable with ``mlflow.pyfunc.load_model``."""
        s = self.store
        if s.startswith("oci:"):
            return f"modelkit://{s[4:]}@{self.digest}"
        return f"modelkit://{s}@{self.digest}"


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _store_ref(loc: ArtifactLocation) -> str:
    return f"oci:{loc.layout}" if loc.layout else f"{loc.registry}/{loc.repository}"


def _open(store: str, settings: StorageSettings) -> Repository:
    from mlflow_plugin.storage.locations import open_location

    repo, _ = open_location(store, create=store.startswith("oci:"), settings=settings)
    return repo


def _sanitize(name: str) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return s or "model"


@dataclass
class _Source:
    repo: Repository
    store: str
    kit: DraftKit
    manifest: dict[str, Any]


def resolve_artifact_uri(uri: str, destination: str | None) -> str:
    """A run's or model's artifact URI as a ``modelkit://`` URI.

    Proxied runs (``mlflow server --artifacts-destination modelkit://HOST/ml``) report
    ``mlflow-artifacts:/<exp>/<run>/artifacts``; the destination (admin config
    ``publish.artifacts_destination`` / ``MLFLOW_MODELKIT_ARTIFACTS_DESTINATION``) maps them back.

    >>> resolve_artifact_uri("mlflow-artifacts:/3/" + "a" * 32 + "/artifacts", "modelkit://h:5000/ml")[:30]
    'modelkit://h:5000/ml/3/aaaaaaa'
    """
    if uri.startswith("modelkit:"):
        return uri
    if uri.startswith("mlflow-artifacts:"):
        if not destination:
            raise ModelKitError(
                f"{uri} is proxied by the tracking server: set publish.artifacts_destination (or "
                "MLFLOW_MODELKIT_ARTIFACTS_DESTINATION) to the server's --artifacts-destination URI"
            )
        path = uri.split(":", 1)[1]
        if path.startswith("//"):  # mlflow-artifacts://host:port/path
            path = "/" + path[2:].split("/", 1)[1] if "/" in path[2:] else "/"
        return destination.rstrip("/") + "/" + path.lstrip("/")
    raise ModelKitError(
        f"artifacts at {uri.split(':')[0]}:… are not in a modelkit:// store: create the experiment with "
        "artifact_location='modelkit://…'"
    )


def _draft(uri: str, reference: str, settings: StorageSettings) -> _Source | None:
    loc = parse_artifact_uri(uri)
    store = _store_ref(loc)
    repo = _open(store, settings)
    kit = DraftKit(repo, reference)
    m, _ = kit.manifest(refresh=True)
    if m is None:
        return None
    return _Source(repo, store, kit, m)


def _read_small(src: _Source, path: str) -> bytes | None:
    f = src.kit.files().get(path)
    if f is None or f.size > (1 << 20):
        return None
    data = src.repo.read_range(f.layer.digest, f.offset, f.size)
    import hashlib

    return data if hashlib.sha256(data).hexdigest() == f.sha256 else None


def _framework(mlmodel: bytes | None) -> tuple[str, str]:
    """(framework, format) from an MLmodel file's flavors (YAML)."""
    doc = read_mlmodel(mlmodel)
    all_flavors = doc.get("flavors")
    flavors = [f for f in (all_flavors if isinstance(all_flavors, dict) else {}) if f != "python_function"]
    if not flavors:
        return "", ""
    fl = flavors[0]
    fmt = ""
    detail = all_flavors.get(fl) or {}  # type: ignore[union-attr]
    if isinstance(detail, dict):
        fmt = str(detail.get("serialization_format") or detail.get("pickled_model", "") or "")
        if fmt.endswith(".skops") or detail.get("serialization_format") == "skops":
            fmt = "skops"
    return FLAVOR_FRAMEWORK.get(fl, fl), fmt


def publish_run(
    run_id: str,
    tag: str,
    key: str | None = None,
    password: bytes | None = None,
    repository: str | None = None,
    model: str | None = None,
    register_as: str | None = None,
    tracking_uri: str | None = None,
    config: Any = None,
    progress: Progress | None = None,
    accept: Sequence[str] = (),
    reason: str | None = None,
    exclude: Sequence[str] = (),
    encrypt_for: Sequence[str] = (),
) -> PublishResult:
    """Turn ``run_id`` into a hardened, signed, scanned kit tagged ``tag``; see the module docstring.

    ``key`` signs (default: ``signing.key``), ``password`` unlocks it (default:
    ``MLFLOW_MODELKIT_KEY_PASSWORD``); ``repository`` publishes into another repository than the
    run's (``HOST/REPO`` or ``oci:DIR``); ``model`` picks a logged model by name or id;
    ``register_as`` also registers a model version; ``config`` replaces the admin config;
    ``progress`` gets the stages of :data:`STAGES`. Raises :class:`PublishBlocked` (with the
    report) when the scan finds something at or above ``scan.fail_on``. ``accept`` (``RULE[:PATH]``
    globs) with a ``reason`` accepts matching findings up to ``[accept] max_severity``: they stop
    blocking and the acceptance (who, when, why) is signed into the scan attestation
    (:mod:`mlflow_plugin.scanner.accept`). ``exclude`` (``code``, ``docs``, ``datasets``) narrows
    what the admin's ``[publish] include`` lets the kit carry: excluded files get no layer and no
    Kitfile entry, only a SHA-256 reference in the provenance; the scan covers what is published.
    ``encrypt_for`` (recipient public keys, ``keygen --encryption``) publishes every layer encrypted
    in containers/ocicrypt's format (:mod:`mlflow_plugin.trust.ocicrypt`): the plaintext kit is
    scanned where the drafts are and never stored in the target; signatures and attestations cover
    the encrypted manifest; encrypted layers carry no path or file-index annotation, the config
    blob a redacted Kitfile (the real one is sealed in the manifest), and every attestation but the
    signature is stored encrypted for the same recipients (:mod:`mlflow_plugin.trust.sealed`).
    The admin's ``[encryption] recipients`` are always added.

    >>> import pathlib, tempfile
    >>> from mlflow import MlflowClient
    >>> from mlflow_plugin import generate_keypair
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    >>> exp = client.create_experiment("fraud", artifact_location=f"modelkit://{home}/kits/fraud")
    >>> run = client.create_run(exp)
    >>> _ = (home / "model.txt").write_text("weights")
    >>> client.log_artifact(run.info.run_id, str(home / "model.txt"))
    >>> keys = generate_keypair(str(home / "keys"), password="")
    >>> stages: list[str] = []
    >>> r = publish_run(run.info.run_id, "v1", key=keys.private, tracking_uri=client.tracking_uri,
    ...                 progress=lambda stage, done, total: stages.append(stage))
    >>> r.reference == f"oci:{home}/kits/fraud:v1", r.model_uri == f"modelkit://{home}/kits/fraud@{r.digest}"
    (True, True)
    >>> sorted(set(stages), key=stages.index) == list(STAGES)
    True
    >>> client.get_run(run.info.run_id).data.tags["modelkit.signed"]
    'true'
    """
    from mlflow.tracking import MlflowClient

    from mlflow_plugin.config import load_config
    from mlflow_plugin.scanner.accept import accept_findings, parse_all
    from mlflow_plugin.scanner.api import scan_kit
    from mlflow_plugin.scanner.report import Severity
    from mlflow_plugin.trust import ocicrypt
    from mlflow_plugin.trust.signer import Signer

    cfg = config or load_config()
    progress = progress or _noop
    check_tag(tag)
    allowed = _allowed_kinds(cfg.publish_include, exclude)
    acceptances = parse_all(accept, reason, by=_publisher(), at=now_rfc3339())
    key_path = key or cfg.signing_key
    if not key_path:
        raise ModelKitError(
            "no signing key: pass --key PATH or set signing.key / MLFLOW_MODELKIT_SIGNING_KEY"
        )
    signer = Signer.from_key_file(key_path, password)  # None: $MLFLOW_MODELKIT_KEY_PASSWORD or a prompt
    recipients = [ocicrypt.load_recipient(p) for p in dict.fromkeys([*cfg.encrypt_for, *encrypt_for])]
    client = MlflowClient(tracking_uri=tracking_uri)
    run = _get_run(client, run_id, tracking_uri)
    run_uri = resolve_artifact_uri(run.info.artifact_uri, cfg.artifacts_destination)

    # ---- 1. compose -----------------------------------------------------------------------------
    progress("compose", 0, 1)
    settings = cfg.storage_settings()
    run_src = _draft(run_uri, f"run-{run_id}", settings)
    model_src, model_name = _pick_model(client, run, model, cfg.artifacts_destination, settings)
    if run_src is None and model_src is None:
        raise ModelKitError(f"run {run_id} has no artifacts and no logged model: nothing to publish")
    target_store = repository or (run_src or model_src).store  # type: ignore[union-attr]
    target = _open(target_store, settings)
    blobs, layers, kitfile, files, excluded = _compose(
        run, model_src, model_name, run_src, tag, cfg.redact_params, allowed
    )
    config_bytes = kitfile.to_json()
    cdesc = Descriptor.for_bytes(KIT_CONFIG, config_bytes)
    created = from_mlflow_ms(run.info.end_time or run.info.start_time) or now_rfc3339()
    manifest = build_manifest(
        cdesc,
        layers,
        created=created,
        cli_version=f"mlflow-modelkit-{__version__}",
        extra_annotations={"dev.mlflow-modelkit.run-id": run_id},
    )
    digest = sha256_digest(manifest)
    subject = Descriptor(OCI_MANIFEST, digest, len(manifest))
    facts = _run_facts(client, run_id, files, cfg.redact_params)
    statement = _provenance(facts, target_store, tag, digest, excluded)
    bom = _mlbom(facts, target_store, digest, files)
    progress("compose", 1, 1)

    # ---- 2. scan --------------------------------------------------------------------------------
    progress("scan", 0, 1)
    threshold = Severity.parse(cfg.scan_fail_on)
    # the metadata first: nothing of it is stored until it is clean
    meta = _scan_metadata(
        run, cfg.redact_params, {"kitfile": json.loads(config_bytes), "provenance": statement, "mlbom": bom}
    )
    if meta.failed(threshold):
        _blocked(client, run_id, meta, threshold, "secrets in the metadata the kit would carry")
    scan_repo, scan_store = target, target_store
    if recipients:  # the plaintext kit never reaches the target: scan it where the drafts are
        first = run_src or model_src
        scan_repo, scan_store = first.repo, first.store  # type: ignore[union-attr]
    for src, d in blobs:
        _ensure_blob(scan_repo, src, d)
    scan_repo.push_bytes(config_bytes, KIT_CONFIG)
    stored = scan_repo.put_manifest(manifest, OCI_MANIFEST, tag=None)  # no tag until signed
    if stored != digest:
        raise ModelKitError(f"{scan_store} stored the manifest as {stored}, expected {digest}")
    policy = cfg.scan_policy()
    report = scan_kit(
        f"{scan_store}@{digest}",
        policy=policy,
        unpack_limits=UnpackLimits.from_config(cfg),
        settings=settings,
    )
    for finding in meta.findings:  # below the threshold, but part of the signed report
        report.add(finding)
    judged = accept_findings(report, acceptances, cfg.accept_max_severity)
    progress("scan", 1, 1)
    if judged.failed(threshold):
        _blocked(client, run_id, judged.open_report(), threshold, "the scan", cfg.accept_max_severity)
    scan_doc = judged.to_json()
    scan_doc["scanned_at"] = now_precise()
    if recipients:  # encrypt each scanned layer into the target; what is signed is the encrypted kit
        enc_layers = _encrypt_layers(target, blobs, layers, kitfile, recipients)
        # everyone sees a redacted Kitfile; the real one (paths, names, parameters) is sealed
        sealed = ocicrypt.seal(kitfile.to_json(), recipients)
        config_bytes = kitfile.redacted().to_json()
        manifest = build_manifest(
            Descriptor.for_bytes(KIT_CONFIG, config_bytes),
            enc_layers,
            created=created,
            cli_version=f"mlflow-modelkit-{__version__}",
            extra_annotations={"dev.mlflow-modelkit.run-id": run_id, ocicrypt.ANN_SEALED_KITFILE: sealed},
        )
        digest = sha256_digest(manifest)
        subject = Descriptor(OCI_MANIFEST, digest, len(manifest))
        statement = _provenance(facts, target_store, tag, digest, excluded)
        bom = _mlbom(facts, target_store, digest, files)
        target.push_bytes(config_bytes, KIT_CONFIG)
        stored = target.put_manifest(manifest, OCI_MANIFEST, tag=None)
        if stored != digest:
            raise ModelKitError(f"{target_store} stored the manifest as {stored}, expected {digest}")

    # ---- 3./4. attest and sign ------------------------------------------------------------------
    # what publish attests, with the evidence and the subject name each statement carries
    evidence: list[tuple[str, Any, str | None]] = [
        ("provenance", statement, None),
        ("scan", scan_doc, target_store),
        ("sbom", bom, target_store),
        ("model_signing", [(p, sha) for p, _size, sha in files], _sanitize(model_name or tag)),
    ]
    kinds = [kind for kind, doc, _name in evidence if doc is not None] + ["signature"]
    reused = _already_signed(target, digest, signer, kinds)
    attachments: dict[str, str] = {}
    provenance = None
    if not reused:
        provenance = statement
        progress("attest", 0, len(evidence))
        for done, (kind, doc, name) in enumerate(evidence, 1):
            if doc is not None:  # no ML-BOM without the cyclonedx library
                # an encrypted kit's attestations name its files: they are encrypted for its recipients
                attachments[kind] = signer.attest(
                    target, subject, kind, doc, name=name, recipients=recipients
                )
            progress("attest", done, len(evidence))
        progress("sign", 0, 2)
        attachments["signature"] = signer.attest(target, subject, "signature")
        progress("sign", 1, 2)
        signer.legacy_signature(target, _docker_ref(target_store), digest)
        progress("sign", 2, 2)

    # ---- 5. tag ---------------------------------------------------------------------------------
    progress("tag", 0, 1)
    target.tag(digest, tag)
    progress("tag", 1, 1)

    # ---- 6. record ------------------------------------------------------------------------------
    progress("record", 0, 1)
    ref = f"{target_store}:{tag}"
    verdict = judged.verdict()
    for k, v in (
        ("modelkit.ref", ref),
        ("modelkit.digest", digest),
        ("modelkit.signed", "true"),
        ("modelkit.scan", verdict),
    ):
        client.set_tag(run_id, k, v)
    result = PublishResult(
        ref,
        digest,
        tag,
        target_store,
        report,
        attachments,
        reused,
        provenance=provenance,
        accepted=judged.accepted,
        verdict=verdict,
        encrypted_for=[ocicrypt.recipient_id(k) for k in recipients],
    )
    name = register_as or (cfg.register_model and _sanitize(model_name or tag)) or None
    if name:
        result.model_version = _register(client, name, result.model_uri, run_id)
    progress("record", 1, 1)
    return result


def _shown_uri(text: str) -> str:
    """``text`` without credentials in URLs (``https://user:pw@host`` → ``https://***@host``)."""
    return re.sub(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@", r"\1***@", text)


def _get_run(client: Any, run_id: str, tracking_uri: str | None) -> Any:
    """The MLflow run, or one line naming the run and the tracking store (never MLflow's traceback)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as e:
        import mlflow

        where = _shown_uri(tracking_uri or mlflow.get_tracking_uri())
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelKitError(
                f"run {run_id!r} not found in the tracking store {where}: check the run id, or set "
                "MLFLOW_TRACKING_URI to the tracking server the run was logged to"
            ) from None
        message = e.message.strip()
        if "API request to" in message and "failed with exception" in message:
            errno_text = re.search(r"\[Errno -?\d+\] [^'\")]+", message)
            reason = errno_text.group(0) if errno_text else "no answer"
            raise ModelKitError(
                f"cannot read run {run_id!r}: the tracking server {where} is unreachable ({reason}): "
                "is it running? check MLFLOW_TRACKING_URI"
            ) from None
        first = _shown_uri((message.splitlines() or [e.error_code])[0])
        raise ModelKitError(
            f"cannot read run {run_id!r} from the tracking store {where}: {first}: check the run id "
            "and MLFLOW_TRACKING_URI"
        ) from None


def _blocked(
    client: Any, run_id: str, report: Any, threshold: Any, what: str, ceiling: str | None = None
) -> None:
    """Record the verdict on the run and raise :class:`PublishBlocked` (one line, top finding first).

    With ``ceiling`` (findings a publisher may accept), a top finding at or under it gets the
    ``--accept`` hint; metadata secrets get none (they must be removed, never accepted)."""
    from mlflow_plugin.scanner.report import Severity

    top = report.sorted_findings()[0]
    client.set_tag(
        run_id, "modelkit.scan", f"blocked: {report.max_severity} ({len(report.findings)} findings)"
    )
    hint = ""
    if ceiling is not None and top.severity <= Severity.parse(ceiling):
        hint = f"; if this risk is acceptable: --accept {top.rule}:{top.path} --reason '…'"
    raise PublishBlocked(
        f"publishing blocked by {what}: {len(report.findings)} findings, highest {report.max_severity} "
        f"(threshold {threshold}): {top.path}: {top.rule}: {top.message}{hint}",
        report,
    )


def _publisher() -> str:
    """Who accepts a risk: ``MLFLOW_TRACKING_USERNAME`` when set, else the login name."""
    import getpass

    name = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def _pick_model(
    client: Any,
    run: Any,
    wanted: str | None,
    destination: str | None = None,
    settings: StorageSettings | None = None,
) -> tuple[_Source | None, str | None]:
    outputs = list(getattr(run.outputs, "model_outputs", None) or [])
    candidates = []
    for o in outputs:
        lm = client.get_logged_model(o.model_id)
        candidates.append(lm)
    if wanted:
        names = sorted({m.name for m in candidates})
        candidates = [m for m in candidates if m.name == wanted or m.model_id == wanted]
        if not candidates:
            fix = (
                f"pass --model with one of {', '.join(repr(n) for n in names)}"
                if names
                else "it has no logged models: leave --model out"
            )
            raise ModelKitError(f"run {run.info.run_id} has no logged model named {wanted!r}: {fix}")
    for lm in candidates:
        loc = str(lm.artifact_location)
        if not loc.startswith(("modelkit:", "mlflow-artifacts:")):
            continue
        src = _draft(resolve_artifact_uri(loc, destination), lm.model_id, settings or StorageSettings())
        if src is not None:
            return src, lm.name
    return None, None


def _allowed_kinds(include: Sequence[str], exclude: Sequence[str]) -> frozenset[str]:
    """The kinds a published kit may carry: the admin's ``include`` minus the publisher's ``exclude``.

    >>> sorted(_allowed_kinds(["model", "code", "docs", "datasets"], ["datasets"]))
    ['code', 'docs', 'model']
    >>> _allowed_kinds(["model"], ["model"])
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: --exclude model: the model can not be excluded from a published kit
    """
    from mlflow_plugin.config import PUBLISH_KINDS

    for kind in exclude:
        if kind == "model":
            raise ModelKitError("--exclude model: the model can not be excluded from a published kit")
        if kind not in PUBLISH_KINDS:
            raise ModelKitError(f"--exclude {kind!r}: unknown kind; use code, docs or datasets")
    return frozenset(include) - frozenset(exclude)


def _publish_kind(layer_kind: str) -> str:
    """The ``[publish] include`` kind of a layer kind (model parts are the model, unknown is docs)."""
    return {"model": "model", "modelpart": "model", "code": "code", "dataset": "datasets"}.get(
        layer_kind, "docs"
    )


def _compose(
    run: Any,
    model_src: _Source | None,
    model_name: str | None,
    run_src: _Source | None,
    tag: str,
    redact_params: list[str],
    allowed: frozenset[str] = frozenset({"model", "code", "docs", "datasets"}),
) -> tuple[
    list[tuple[_Source, Descriptor]],
    list[Descriptor],
    Kitfile,
    list[tuple[str, int, str]],
    list[tuple[str, int, str, str]],
]:
    """Blobs to make available in the target (source, descriptor), layers (model first, kit order),
    the Kitfile (params and tags redacted by name), ``[(path, size, sha256)]`` of every published
    file and ``[(path, size, sha256, kind)]`` of every file whose kind is not ``allowed``."""
    from mlflow_plugin.trust.redact import redact_params as redact_by_name

    records: list[tuple[str, dict[str, Any], _Source]] = []
    if model_src is not None:
        for d in model_src.manifest.get("layers") or []:
            records.append(("model-draft", d, model_src))
    if run_src is not None:
        for d in run_src.manifest.get("layers") or []:
            records.append(("run", d, run_src))
    seen: dict[str, str] = {}
    files: list[tuple[str, int, str]] = []
    excluded: list[tuple[str, int, str, str]] = []
    kept: list[tuple[str, dict[str, Any], _Source]] = []
    for origin, d, src in records:
        kind = _publish_kind(kind_of(d.get("mediaType", "")))
        if kind in allowed:
            kept.append((origin, d, src))
        for rec in parse_file_index(d):
            path = rec[0]
            if len(rec) > 2 and rec[2] is None:
                continue
            if path in seen:
                raise ModelKitError(
                    f"cannot compose: {path!r} is in both the {seen[path]} and the {origin} "
                    "artifacts; rename one of them"
                )
            seen[path] = origin
            if kind in allowed:
                files.append((path, int(rec[1]), rec[2]))
            else:
                excluded.append((path, int(rec[1]), rec[2], kind))
    if records and not kept:
        raise ModelKitError(
            f"nothing to publish for run {run.info.run_id}: every layer is excluded by policy "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    records = kept
    blobs = [(src, Descriptor.from_json(d)) for _origin, d, src in records]
    params = redact_by_name(dict(run.data.params), redact_params)
    mlmodel = None
    if model_src is not None:
        mlmodel = _read_small(model_src, "MLmodel")
    framework, fmt = _framework(mlmodel)
    tags = redact_by_name(dict(run.data.tags), redact_params)
    pkg = Package(
        name=_sanitize(model_name or tags.get("mlflow.runName") or run.info.run_id),
        version=tag,
        description=(
            tags.get("mlflow.note.content")
            or f"MLflow run {run.info.run_id} (experiment {run.info.experiment_id})"
        )[:2000],
        license=tags.get("license", ""),
        authors=[run.info.user_id] if run.info.user_id else [],
    )
    kf = Kitfile(manifest_version="1.0.0", package=pkg)
    layer_records = [
        LayerRecord(
            kind_of(d.get("mediaType", "")),
            layer_path(d),
            d["digest"],
            d["size"],
            (d.get("annotations") or {}).get(ANN_FILES) or None,
        )
        for _origin, d, _src in records
    ]
    template = ModelTemplate(
        name=_sanitize(model_name or "model"),
        framework=framework,
        format=fmt,
        version=tag,
        description=f"MLflow {'logged model' if model_src is not None else 'model'}",
        parameters={
            "mlflow": {
                "run_id": run.info.run_id,
                "experiment_id": run.info.experiment_id,
                "params": params,
                "metrics": {k: float(v) for k, v in run.data.metrics.items()},
            }
        },
    )
    descs = compose(kf, layer_records, template)
    return blobs, descs, kf, sorted(files), sorted(excluded)


def _ensure_blob(target: Repository, src: _Source, d: Descriptor) -> None:
    """Make a draft blob available in the target repository (no-op when it is the same store)."""
    if target.blob_exists(d.digest):
        return
    if target.can_mount_from(src.repo) and target.mount_blob(d.digest, src.repo.name):
        return
    with src.repo.open_blob(d.digest, d.size) as f:
        target.push_blob(f, d.digest, d.size)


def _encrypt_layers(
    target: Repository,
    blobs: list[tuple[_Source, Descriptor]],
    layers: list[Descriptor],
    kitfile: Kitfile,
    recipients: Sequence[Any],
) -> list[Descriptor]:
    """Stream each plaintext layer from its draft through ocicrypt's cipher into ``target``
    (only ciphertext is pushed; it is staged in an unnamed local temp file); point the Kitfile's
    layer digests at the ciphertext (``diffId`` stays the plaintext tar's). The encrypted
    descriptors carry no path or file index: the tar inside has them."""
    import tempfile

    from mlflow_plugin.kit.kitfile import LayerInfo
    from mlflow_plugin.kit.mediatypes import ANN_FILEPATH
    from mlflow_plugin.trust import ocicrypt

    src_of = {d.digest: src for src, d in blobs}
    renamed: dict[str, str] = {}
    out: list[Descriptor] = []
    for d in layers:
        with tempfile.TemporaryFile() as ct:
            with src_of[d.digest].repo.open_blob(d.digest, d.size) as f:
                enc = ocicrypt.encrypt_layer(f, ct, recipients, expected_digest=d.digest)
            ct.seek(0)
            if not target.blob_exists(enc.digest):
                target.push_blob(ct, enc.digest, enc.size)
        ann = {k: v for k, v in (d.annotations or {}).items() if k not in (ANN_FILES, ANN_FILEPATH)}
        ann.update(enc.annotations)
        out.append(Descriptor(d.media_type + ocicrypt.ENC_SUFFIX, enc.digest, enc.size, annotations=ann))
        renamed[d.digest] = enc.digest
    parts = kitfile.model.parts if kitfile.model is not None else []
    for entry in [kitfile.model, *parts, *kitfile.code, *kitfile.datasets, *kitfile.docs]:
        if entry is not None and entry.layer is not None and entry.layer.digest in renamed:
            entry.layer = LayerInfo(renamed[entry.layer.digest], entry.layer.diff_id)
    return out


# where run params and tags sit in each published document (key path prefixes)
_PARAM_AT = {
    "kitfile": "model.parameters.mlflow.params.",
    "provenance": "predicate.buildDefinition.externalParameters.hyperparameters.",
    "mlbom": "metadata.component.modelCard.properties[mlflow-modelkit:hyperparameter:",
    "run": "params.",
}
_TAG_AT = {"provenance": "predicate.buildDefinition.internalParameters.tags.", "run": "tags."}
_TAG_FIELDS = {
    "kitfile:package.description": "mlflow.note.content",
    "kitfile:package.license": "license",
    "kitfile:package.name": "mlflow.runName",
    "provenance:predicate.buildDefinition.externalParameters.run.run_name": "mlflow.runName",
    "mlbom:metadata.component.properties[mlflow-modelkit:run_name]": "mlflow.runName",
}
_TAG_NAMES = {"mlflow.note.content": "the run description", "mlflow.runName": "the run name"}
_HOW = "add {name!r} to [publish] redact_params (or MLFLOW_MODELKIT_REDACT_PARAMS) or remove it from the run"


def _label(source: str, keypath: str) -> tuple[str, str]:
    """What holds a secret found at ``source:keypath`` and how to keep it out of the kit.

    The same param or tag gets the same label in every document, so it is reported once.

    >>> _label("mlbom", "metadata.component.modelCard.properties[mlflow-modelkit:hyperparameter:note]")[0]
    "param 'note'"
    >>> _label("kitfile", "package.description")[0]
    "tag 'mlflow.note.content' (the run description)"
    """
    name, kind = None, "tag"
    for k, table in (("param", _PARAM_AT), ("tag", _TAG_AT)):
        prefix = table.get(source)
        if prefix and keypath.startswith(prefix) and len(keypath) > len(prefix):
            name, kind = keypath[len(prefix) :], k
            name = name[:-1] if prefix.endswith(":") and name.endswith("]") else name
            break
    else:
        name = _TAG_FIELDS.get(f"{source}:{keypath}")
    if name is None:
        return f"{source} field {keypath!r}", "remove it from the run's metadata (names, sources, tags)"
    what = f"{kind} {name!r}" + (f" ({_TAG_NAMES[name]})" if kind == "tag" and name in _TAG_NAMES else "")
    return what, _HOW.format(name=name)


def _scan_metadata(run: Any, redact_params: list[str], documents: dict[str, Any]) -> Any:
    """Secrets in everything the kit will carry besides its files: the composed ``documents``
    (``{source: JSON}``: Kitfile config, provenance, ML-BOM), then the run's params and published tags
    as they are before provenance's own heuristics mask known token formats. A :class:`ScanReport`;
    a scan that cannot run raises (it is never a pass)."""
    from functools import partial

    from mlflow_plugin.scanner import secrets
    from mlflow_plugin.scanner.context import ScanContext
    from mlflow_plugin.scanner.report import ScanReport
    from mlflow_plugin.trust.provenance import DROPPED_TAGS
    from mlflow_plugin.trust.redact import redact_params as redact_by_name

    report = ScanReport(target=f"metadata of MLflow run {run.info.run_id}", version=__version__)
    ctx = ScanContext(report)
    seen: set[tuple[str, str]] = set()
    try:
        tags = {k: v for k, v in run.data.tags.items() if k not in DROPPED_TAGS}
        documents = {
            **documents,
            "run": {
                "params": redact_by_name(dict(run.data.params), redact_params),
                "tags": redact_by_name(tags, redact_params),
            },
        }
        for source, doc in documents.items():
            if doc is not None:
                secrets.scan_document(ctx, source, doc, label=partial(_label, source), seen=seen)
    except Exception as e:
        raise ModelKitError(
            f"could not scan run {run.info.run_id}'s metadata for secrets ({type(e).__name__}); "
            "nothing was published"
        ) from e
    return report


def _already_signed(repo: Repository, digest: str, signer: Signer, kinds: list[str]) -> bool:
    """Whether ``digest`` already has every attestation of ``kinds`` and a legacy ``.sig`` signature,
    all valid and by ``signer``'s key: then publishing again signs nothing (bundles by other keys,
    or broken ones, do not count and do not stop the reuse)."""
    from mlflow_plugin.trust.signer import LEGACY

    return signer.verifier().check(repo, digest).has(*kinds, LEGACY)


def _docker_ref(store: str) -> str:
    """The ``docker-reference`` a legacy signature claims: ``host/repo``, or the layout's path."""
    return store[4:] if store.startswith("oci:") else store


def _run_facts(client: Any, run_id: str, files: list[tuple[str, int, str]], redact_params: list[str]) -> Any:
    import os

    from mlflow_plugin.harden.run_facts import collect_run_facts

    return collect_run_facts(
        run_id,
        client=client,
        base_dirs=[os.getcwd()],
        artifact_sha256={p: sha for p, _s, sha in files},
        redact_params=redact_params,
    )


def _provenance(
    facts: Any, store: str, tag: str, digest: str, excluded: list[tuple[str, int, str, str]]
) -> dict[str, Any]:
    from mlflow_plugin.trust import provenance

    return provenance.build_statement(
        facts, subject_name=store, subject_digest=digest, kit_ref=f"{store}:{tag}", excluded=list(excluded)
    )


def _mlbom(facts: Any, store: str, digest: str, files: list[tuple[str, int, str]]) -> dict[str, Any] | None:
    try:
        from mlflow_plugin.trust import mlbom
    except ImportError:
        return None
    data = mlbom.build_mlbom(facts, store, digest, files, validate=False)  # the schema is checked in tests
    return json.loads(data)


def _register(client: Any, name: str, source: str, run_id: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if "already exists" not in str(e).lower() and "RESOURCE_ALREADY_EXISTS" not in str(e):
            raise
    mv = client.create_model_version(name, source, run_id=run_id)
    return str(mv.version)
