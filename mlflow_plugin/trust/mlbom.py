"""A CycloneDX 1.6 ML-BOM of a published kit, built from the run's facts with ``cyclonedx-python-lib``.

>>> from mlflow_plugin.trust.provenance import RunFacts
>>> facts = RunFacts(run_id="0" * 32, experiment_id="1", run_name="lr", start_time="2026-01-02T03:04:05Z",
...                  params={"C": "0.5"}, metrics={"auc": 0.91})
>>> bom = json.loads(build_mlbom(facts, "localhost:5000/team/fraud:v1", "sha256:" + "ab" * 32,
...                              [("model/model.skops", 10211, "cd" * 32)]))
>>> bom["specVersion"], bom["metadata"]["component"]["type"]
('1.6', 'machine-learning-model')
>>> bom["metadata"]["component"]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
[{'type': 'auc', 'value': '0.91'}]

Layout:

- ``metadata.component`` (bom-ref ``kit``): the kit as a ``machine-learning-model``: name and version
  from the reference, ``purl`` ``pkg:oci/<name>@sha256:…?repository_url=…&tag=…``, the manifest
  digest as its SHA-256 hash, and a ``modelCard``: ``modelParameters.datasets`` refer to the dataset
  components, ``modelParameters.architectureFamily`` is the framework flavor of the first logged
  model (``sklearn``, ``pytorch``…), ``quantitativeAnalysis.performanceMetrics`` holds the latest
  metric values, and the hyperparameters are ``modelCard.properties`` named
  ``mlflow-modelkit:hyperparameter:<name>`` (CycloneDX 1.6 ``modelParameters`` has no free-form
  field for them). Their values follow the provenance's rule: ``"[redacted]"`` for names matching
  ``[publish] redact_params`` (already so in the facts publish collects), ``"<redacted>"`` for
  secret-looking values under secret-sounding names.
- ``components``: every kit file (``file``, SHA-256, ``mlflow-modelkit:size``); every dataset input
  (``data`` with a ``data[0]`` ``dataset`` entry; SHA-256 when it was re-hashed, else
  ``mlflow-modelkit:reachable`` ``false`` and a note); every pip requirement of the logged models
  (``library`` with a ``pkg:pypi`` purl); the training environment (``platform`` whose SHA-256 is
  the packages digest); base models (``machine-learning-model``).
- ``dependencies``: the kit depends on all of those.

``cyclonedx-python-lib`` 11 does not model ``modelCard`` nor ``component.data`` yet, so those two are
added to its JSON output; the result is then validated against the bundled CycloneDX 1.6 JSON schema
(strict). Output is deterministic: the serial number is a UUIDv5 of the manifest digest and the
timestamp is the run's end (or start) time.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from mlflow_plugin._internal.times import parse_rfc3339
from mlflow_plugin._version import __version__
from mlflow_plugin.trust.provenance import ProvenanceError, RunFacts, redact_text, redact_uri, redact_value

NS = "mlflow-modelkit"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(?:==\s*([^\s;,]+))?")


class MLBOMError(ProvenanceError):
    """The ML-BOM does not validate against the CycloneDX 1.6 schema."""


def _sha(hexdigest: str) -> HashType:
    return HashType(alg=HashAlgorithm.SHA_256, content=hexdigest)


def _props(pairs: list[tuple[str, Any]]) -> list[Property]:
    return [Property(name=f"{NS}:{k}", value=str(v)) for k, v in pairs if v is not None]


def _parse_ref(kit_ref: str) -> tuple[str, str, str | None]:
    """``(repository URL, short name, tag)`` of ``host/repo:tag`` or ``host/repo@sha256:…``."""
    ref = kit_ref.removeprefix("modelkit://")
    ref = ref.split("@", 1)[0]
    tag = None
    head, _, last = ref.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
    repo = f"{head}/{last}" if head else last
    return repo, last, tag


def _metric_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v) if not float(v).is_integer() else str(v)


def _timestamp(facts: RunFacts) -> datetime | None:
    t = facts.end_time or facts.start_time
    return parse_rfc3339(t) if t else None


def build_mlbom(
    facts: RunFacts,
    kit_ref: str,
    manifest_digest: str,
    files: list[tuple[str, int, str]],
    validate: bool = True,
) -> bytes:
    """The CycloneDX 1.6 ML-BOM (JSON bytes) of the kit ``kit_ref`` whose manifest is ``manifest_digest``.

    ``files`` are the kit's ``(path, size, sha256 hex)``. Raises :class:`MLBOMError` if the result does
    not validate against the CycloneDX 1.6 JSON schema. Loading the schema validator costs seconds, so
    publish passes ``validate=False``; the test suite validates every shape publish produces.

    >>> from mlflow_plugin.trust.provenance import RunFacts
    >>> raw = build_mlbom(RunFacts(run_id="1" * 32, experiment_id="0"), "reg/team/m:v2", "ef" * 32, [])
    >>> json.loads(raw)["metadata"]["component"]["purl"]
    'pkg:oci/m@sha256:efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef?repository_url=reg/team/m&tag=v2'
    """
    digest = manifest_digest.removeprefix("sha256:")
    if not _HEX64.match(digest):
        raise MLBOMError(f"manifest digest {manifest_digest!r} is not sha256:<64 hex>")
    kit_ref = redact_uri(kit_ref)
    repo, name, tag = _parse_ref(kit_ref)
    flavors: list[str] = []
    for m in facts.logged_models:
        flavors += [f for f in m.flavors if f != "python_function" and f not in flavors]

    kit = Component(
        name=name,
        version=tag or f"sha256:{digest[:12]}",
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref="kit",
        description=f"ModelKit {kit_ref} built from MLflow run {facts.run_id}",
        hashes=[_sha(digest)],
        purl=PackageURL(
            type="oci",
            name=name.lower(),
            version=f"sha256:{digest}",
            qualifiers={"repository_url": repo, **({"tag": tag} if tag else {})},
        ),
        properties=_props(
            [
                ("run_id", facts.run_id),
                ("run_name", facts.run_name),
                ("experiment", facts.experiment_name or facts.experiment_id),
                ("tracking_uri", facts.tracking_uri),
                ("user", facts.user),
                ("git_commit", facts.git.commit),
                ("git_repo", facts.git.repo_url),
                ("git_dirty", None if facts.git.dirty is None else str(facts.git.dirty).lower()),
                ("notebook", facts.git.notebook),
                ("notebook_sha256", facts.git.notebook_sha256),
                *[
                    (f"model:{m.name or m.model_id}", ",".join(sorted(m.flavors)) or m.model_id)
                    for m in facts.logged_models
                ],
            ]
        ),
    )
    with_uri = facts.tracking_uri and re.match(r"^[a-z][a-z0-9+.-]*://", facts.tracking_uri)
    if with_uri:
        kit.external_references.add(
            ExternalReference(type=ExternalReferenceType.BUILD_META, url=XsUri(facts.invocation_id))
        )

    components: list[Component] = []
    for path, size, sha in sorted(files):
        components.append(
            Component(
                name=path,
                type=ComponentType.FILE,
                bom_ref=f"file:{path}",
                hashes=[_sha(sha)],
                properties=_props([("size", size)]),
            )
        )
    data_refs: list[tuple[str, Any]] = []
    for i, ds in enumerate(facts.datasets):
        ref = f"dataset:{i}:{ds.name}"
        components.append(
            Component(
                name=ds.name,
                type=ComponentType.DATA,
                bom_ref=ref,
                version=ds.mlflow_digest,
                hashes=[_sha(ds.sha256)] if ds.sha256 else None,
                properties=_props(
                    [
                        ("context", ds.context),
                        ("mlflow_digest", ds.mlflow_digest),
                        ("source_type", ds.source_type),
                        ("reachable", str(ds.reachable).lower()),
                        ("rehashed_from", ds.rehashed_from),
                        ("note", ds.note),
                    ]
                ),
            )
        )
        data_refs.append((ref, ds))
    reqs: dict[str, Component] = {}
    for line in facts.environment.model_requirements:
        m = _REQ.match(line)
        if not m:
            continue
        pkg, ver = m.group(1).lower(), m.group(2)
        ref = f"pkg:pypi/{pkg}" + (f"@{ver}" if ver else "")
        reqs.setdefault(
            ref,
            Component(
                name=pkg,
                version=ver,
                type=ComponentType.LIBRARY,
                bom_ref=ref,
                purl=PackageURL(type="pypi", name=pkg, version=ver),
                properties=_props([("requirement", redact_text(line.strip()))]),
            ),
        )
    components += reqs.values()
    env = facts.environment
    if env.python or env.packages_sha256:
        components.append(
            Component(
                name="python-environment",
                version=env.python,
                type=ComponentType.PLATFORM,
                bom_ref="environment",
                hashes=[_sha(env.packages_sha256)] if env.packages_sha256 else None,
                properties=_props(
                    [
                        ("implementation", env.implementation),
                        ("platform", env.platform),
                        ("packages_count", env.packages_count),
                    ]
                ),
            )
        )
    for m in facts.base_models:
        components.append(
            Component(
                name=m.name or m.model_id,
                type=ComponentType.MACHINE_LEARNING_MODEL,
                bom_ref=f"base-model:{m.model_id}",
                hashes=[_sha(m.kit_digest)] if m.kit_digest else None,
                properties=_props(
                    [("model_id", m.model_id), ("source_run_id", m.source_run_id), ("kit_ref", m.kit_ref)]
                ),
            )
        )

    bom = Bom(
        components=components,
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"{NS}:mlbom:sha256:{digest}"),
        metadata=BomMetaData(
            component=kit,
            timestamp=_timestamp(facts),
            tools=ToolRepository(
                components=[Component(name=NS, version=__version__, type=ComponentType.APPLICATION)]
            ),
        ),
    )
    bom.register_dependency(kit, components)
    doc = json.loads(JsonV1Dot6(bom).output_as_string())

    # what the library cannot model yet: the model card and the dataset descriptions
    card: dict[str, Any] = {"bom-ref": "kit-model-card"}
    params: dict[str, Any] = {}
    if flavors:
        params["architectureFamily"] = flavors[0]
    if data_refs:
        params["datasets"] = [{"ref": ref} for ref, _ in data_refs]
    if params:
        card["modelParameters"] = params
    if facts.metrics:
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [
                {"type": k, "value": _metric_value(v)} for k, v in sorted(facts.metrics.items())
            ]
        }
    if facts.params:
        card["properties"] = [
            {"name": f"{NS}:hyperparameter:{k}", "value": redact_value(k, str(v))}
            for k, v in sorted(facts.params.items())
        ]
    doc["metadata"]["component"]["modelCard"] = card
    by_ref = {c.get("bom-ref"): c for c in doc.get("components", [])}
    for ref, ds in data_refs:
        desc = f"MLflow dataset input {ds.name!r}"
        if ds.context:
            desc += f" (context {ds.context})"
        desc += f"; MLflow digest {ds.mlflow_digest} (MD5, 8 hex, first 10k rows)"
        if not ds.reachable:
            desc += f"; not re-hashed: {ds.note}"
        by_ref[ref]["data"] = [
            {
                "type": "dataset",
                "name": ds.name,
                "contents": {"url": _iri(ds.uri)},
                "description": desc,
            }
        ]
    text = json.dumps(doc, indent=2, sort_keys=False, allow_nan=False)
    if validate:
        validate_mlbom(text)
    return text.encode()


def _iri(uri: str) -> str:
    return re.sub(r"[\s\"<>\\^`{|}]", lambda m: f"%{ord(m.group(0)):02X}", uri)


def validate_mlbom(text: str | bytes) -> None:
    """Raise :class:`MLBOMError` unless ``text`` is valid CycloneDX 1.6 JSON (strict schema).

    >>> validate_mlbom('{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}')
    >>> validate_mlbom('{"bomFormat": "CycloneDX", "specVersion": "1.6", "nope": 1}')
    Traceback (most recent call last):
    ...
    mlflow_plugin.trust.mlbom.MLBOMError: ML-BOM is not valid CycloneDX 1.6: ...
    """
    from cyclonedx.validation.json import JsonStrictValidator

    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(
        text.decode() if isinstance(text, bytes) else text
    )
    if err is not None:
        raise MLBOMError(f"ML-BOM is not valid CycloneDX 1.6: {err}")
