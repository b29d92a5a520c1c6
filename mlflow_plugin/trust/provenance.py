"""SLSA provenance of an MLflow run: its facts (read by ``harden.run_facts``) as an in-toto Statement v1.

>>> facts = RunFacts(run_id="0" * 32, experiment_id="1", experiment_name="fraud", run_name="lr",
...                  status="FINISHED", user="ana", start_time="2026-01-02T03:04:05Z",
...                  end_time="2026-01-02T03:09:00Z", tracking_uri="http://mlflow:5000",
...                  params={"C": "0.5"}, metrics={"auc": 0.91}, metric_history_len={"auc": 3})
>>> st = build_statement(facts, "team/fraud", "sha256:" + "ab" * 32)
>>> st["predicateType"], st["subject"][0]["digest"]["sha256"][:8]
('https://slsa.dev/provenance/v1', 'abababab')
>>> st["predicate"]["runDetails"]["metadata"]["invocationId"]
'http://mlflow:5000#/experiments/1/runs/00000000000000000000000000000000'
>>> redact_value("db_password", "hunter2"), redact_value("max_tokens", "512")
('<redacted>', '512')

Build type ``https://mlflow-modelkit.dev/buildtypes/mlflow-run/v1``
--------------------------------------------------------------------
A "build" is one MLflow run: training code at a source revision, run with hyperparameters on
datasets, producing the logged models that the published kit holds (the statement's subject is
the kit's manifest digest). Every value below is copied from the tracking server, with URL
credentials stripped and secret-looking values replaced by ``"<redacted>"``. When publishing,
params and tags whose names match ``[publish] redact_params`` are ``"[redacted]"`` already
(:func:`mlflow_plugin.trust.redact.redact_params`, the rule the Kitfile and the ML-BOM follow too)
and are kept as such.

``externalParameters`` (what the user chose; verifiers may reject other fields):

- ``run``: ``{"experiment": <experiment name>, "run_name": <run name>}``
- ``source``: ``{"uri": "git+<repo URL>@<commit>" | <notebook path> | <entry point>,
  "entry_point"?: mlflow.source.name, "notebook"?: notebook path, "branch"?: str, "dirty"?: bool}``
  (omitted keys were unknown)
- ``hyperparameters``: the run's params, ``{name: str}``
- ``datasets``: the URIs of the run's dataset inputs (their digests are in ``resolvedDependencies``)

``internalParameters`` (what the platform decided):

- ``tracking_uri``, ``run_id``, ``experiment_id``, ``user``, ``status`` (MLflow run status)
- ``parent_run_id``? (``mlflow.parentRunId``), ``kit_ref``? (the published reference)
- ``environment``: ``{"python", "implementation", "platform", "packages_sha256", "packages_count",
  "model_requirements": [pip requirement lines]}`` (from the ``modelkit.env.*`` run tags and the
  logged models' ``requirements.txt``)
- ``tags``: the remaining run tags (``mlflow.log-model.history`` dropped)

``resolvedDependencies`` (ResourceDescriptors): the git source (``digest.gitCommit``,
``annotations.dirty``), the notebook (``digest.sha256`` of the ``.ipynb``), every dataset input
(``digest.sha256`` re-hashed from the real source, see below; ``annotations.mlflowDigest`` is
MLflow's own 8-hex MD5 over at most 10k rows and is *not* a content digest; unreachable sources
have no ``digest`` and ``annotations.reachable: false`` with a ``note``), the parent run and every
base model (``inputs.model_inputs``; ``digest.sha256`` is the kit manifest digest when that run was
published, from its ``modelkit.digest`` tag), and the Python environment (``digest.sha256`` over
the sorted ``name==version`` lines of the installed distributions, as the run-context provider
records it), and every file the publisher's policy kept out of the kit (``[publish] include``,
``publish --exclude``): ``{"name": "excluded:<kit path>", "digest": {"sha256": …},
"annotations": {"kind", "path", "size", "excludedFromKit": true, "note": "excluded from the kit by
policy"}}``, so a verifier knows what the model was trained on without receiving it.

``runDetails``: ``builder.id`` = ``https://mlflow-modelkit.dev/builder/mlflow-modelkit@<version>``;
``metadata.invocationId`` = ``<tracking URI>#/experiments/<id>/runs/<run id>``; ``startedOn`` /
``finishedOn`` from the run (RFC 3339 UTC, seconds); ``byproducts``: ``{"name": "metrics",
"mediaType": "application/json", "digest": {"sha256": …}, "content": base64(canonical JSON
{"metrics": {name: latest value}, "history_length": {name: points}})}`` (non-finite values are
the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``), and one ``{"name": "model:<name>",
"uri": "models:/<model id>", "annotations": {"modelId", "flavors", …}}`` per logged model.

Dataset re-hash
---------------
A dataset source is re-hashed with SHA-256 when it is reachable: a local file or directory given
as an absolute path, a ``file://`` URI, or a path relative to one of ``base_dirs`` (then the
notebook's and the entry point's directories); otherwise a file of the kit's own index whose path
ends with the source's trailing path components (``artifact_sha256``; ties between different
digests count as unreachable). Files are read in 1 MiB blocks. A **directory digest** is the
SHA-256 of ``sha256sum``-style lines ``"<file sha256>  <relpath>\\n"`` over every regular file
below it (symlinks to files followed, symlinked directories not entered), relpaths POSIX-style and
sorted by their UTF-8 bytes, i.e. ``cd DIR && find -L . -type f -printf '%P\\n' | LC_ALL=C sort |
xargs -d '\\n' sha256sum | sha256sum`` for trees without symlinked directories and names without
newlines or backslashes. An unreadable entry makes the source unreachable (never a partial digest).
Results of unchanged local trees are cached with the plugin's stat cache.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from mlflow_plugin._internal.envinfo import redact_url
from mlflow_plugin._internal.mlmodel import read_mlmodel
from mlflow_plugin._internal.times import from_mlflow_ms
from mlflow_plugin._version import __version__
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.trust.redact import REDACTED as PUBLISH_REDACTED

if TYPE_CHECKING:
    pass

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://mlflow-modelkit.dev/buildtypes/mlflow-run/v1"
BUILDER_ID_PREFIX = "https://mlflow-modelkit.dev/builder/mlflow-modelkit@"
REDACTED = "<redacted>"
DIR_DIGEST_SCHEME = "sha256 of sorted '<sha256>  <relpath>' lines (mlflow-modelkit dir v1)"
ENV_DIGEST_SCHEME = "sha256 of sorted unique lowercase 'name==version' lines joined by newlines"

_BLOCK = 1 << 20
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# run tags that provenance leaves out; every other tag is published (internalParameters.tags)
DROPPED_TAGS = frozenset({"mlflow.log-model.history"})


class ProvenanceError(ModelKitError, ValueError):
    """A provenance statement is malformed or would leak a credential."""


# --------------------------------------------------------------------------- redaction

# a value under such a key is always a secret, whatever it looks like
_ALWAYS_SECRET = ("password", "passwd", "passphrase", "secret", "credential", "private_key", "privatekey")
# a value under such a key word is a secret if it looks random (``max_tokens=512`` is not)
_MAYBE_SECRET_WORD = re.compile(r"(?:token|key|pat|sig|signature|auth|authorization|bearer|pwd|sas)$")
_KNOWN_TOKENS = re.compile(
    r"(?<![A-Za-z0-9_-])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{16,}"
    r"|hf_[A-Za-z0-9]{20,}|sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
)
_SECRET_QUERY = re.compile(
    r"(?:^|[_.-])(?:token|key|sig|signature|password|passwd|secret|credential|auth|sas)s?$"
    r"|^x-amz-(?:credential|signature|security-token)$|^x-goog-(?:credential|signature)$",
    re.IGNORECASE,
)
_OPAQUE = frozenset({"content", "digest"})
_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]*:[^/\s@]*@")


def _key_words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def _entropy(s: str) -> float:
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def looks_random(value: str) -> bool:
    """True for token-like strings: ≥ 12 chars, no spaces, mixed classes, ≥ 3 bits/char.

    >>> looks_random("a1B2c3D4e5F6g7H8"), looks_random("bert-base-uncased"), looks_random("512")
    (True, False, False)
    """
    s = value.strip()
    if len(s) < 12 or any(c.isspace() for c in s):
        return False
    classes = sum(bool(re.search(p, s)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return classes >= 2 and _entropy(s) >= 3.0


def redact_uri(uri: str) -> str:
    """Strip ``user:password@`` and secret-looking query parameters from a URI.

    >>> redact_uri("https://u:p@h/x.csv?X-Amz-Signature=abc&v=2")
    'https://h/x.csv?X-Amz-Signature=%3Credacted%3E&v=2'
    """
    out = redact_url(uri)
    if "?" not in out or "://" not in out:
        return out
    try:
        parts = urlsplit(out)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return out
    if not any(_SECRET_QUERY.search(k) for k, _ in query):
        return out
    query = [(k, REDACTED if _SECRET_QUERY.search(k) else v) for k, v in query]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _token_sub(m: re.Match[str]) -> str:
    tok = m.group(0)
    # "sk-" and "hf_" also start ordinary names (sk-learn-…); real keys of theirs are mixed-case base62
    if tok.startswith(("sk-", "hf_")) and not (re.search(r"[a-z]", tok) and re.search(r"[A-Z]", tok)):
        return tok
    return REDACTED


def redact_text(text: str) -> str:
    """Remove credentials from free text: URL userinfo, secret query parameters, known token formats.

    >>> redact_text("clone https://bob:pw@git.example/r.git with ghp_" + "x" * 36)
    'clone https://git.example/r.git with <redacted>'
    """
    text = _KNOWN_TOKENS.sub(_token_sub, text)
    if "://" in text:
        text = re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", lambda m: redact_uri(m.group(0)), text)
    return text


def redact_value(key: str, value: str) -> str:
    """The value to record for ``key``: ``"<redacted>"`` for secrets, else ``value`` minus credentials.

    Keys containing password/passwd/passphrase/secret/credential/private key are always redacted;
    keys with a word ending in token/key/pat/sig/auth… only when the value looks random. A value
    that publish already redacted by name (``"[redacted]"``) is kept as it is.

    >>> redact_value("hf_token", "Xq9vLm2Pz8RtYw4K"), redact_value("key_column", "customer_id")
    ('<redacted>', 'customer_id')
    >>> redact_value("aws_secret", "[redacted]")
    '[redacted]'
    """
    if value == PUBLISH_REDACTED:
        return value
    low = key.lower()
    if any(s in low for s in _ALWAYS_SECRET):
        return REDACTED
    if any(_MAYBE_SECRET_WORD.search(w) for w in _key_words(key)) and looks_random(value):
        return REDACTED
    return redact_text(value)


def redact_map(d: Mapping[str, str]) -> dict[str, str]:
    return {k: redact_value(k, str(v)) for k, v in sorted(d.items())}


def redact_json(obj: Any, key: str = "") -> Any:
    if isinstance(obj, dict):
        # "content" is base64 bytes under its own digest and "digest" is hex: never rewritten
        return {k: v if k in _OPAQUE else redact_json(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_json(v, key) for v in obj]
    if isinstance(obj, str):
        return redact_value(key, obj) if key else redact_text(obj)
    return obj


def find_credentials(obj: Any, path: str = "$") -> list[str]:
    """JSON paths of strings that still look like credentials (URL passwords, known tokens).

    >>> find_credentials({"a": ["https://u:pw@h/x"], "b": "ok"})
    ['$.a[0]']
    """
    if isinstance(obj, dict):
        return [p for k, v in obj.items() if k not in _OPAQUE for p in find_credentials(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in find_credentials(v, f"{path}[{i}]")]
    if isinstance(obj, str) and (_URL_USERINFO.search(obj) or redact_text(obj) != obj):
        return [path]
    return []


# --------------------------------------------------------------------------- facts


@dataclass
class GitFacts:
    """Where the code came from (``mlflow.source.*`` and ``modelkit.source.notebook*`` tags)."""

    repo_url: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    notebook: str | None = None
    notebook_sha256: str | None = None
    source_name: str | None = None
    source_type: str | None = None


@dataclass
class EnvFacts:
    """The training environment (``modelkit.env.*`` tags) and the models' pip requirements."""

    python: str | None = None
    implementation: str | None = None
    platform: str | None = None
    packages_sha256: str | None = None
    packages_count: int | None = None
    model_requirements: list[str] = field(default_factory=list)
    mlflow: str | None = None  # the MLflow that publishes (the builder's), not the training one


@dataclass
class DatasetFact:
    """One ``inputs.dataset_inputs`` entry, with the SHA-256 of its real source when reachable."""

    name: str
    uri: str
    context: str | None = None
    mlflow_digest: str | None = None
    source_type: str | None = None
    source: Any = None
    schema: Any = None
    profile: Any = None
    sha256: str | None = None
    reachable: bool = False
    rehashed_from: str | None = None  # "file:<path>", "directory:<path>", "artifact:<kit path>"
    kind: str | None = None  # "file" or "directory" (then sha256 is the directory digest)
    note: str | None = None


@dataclass
class ModelFact:
    """A logged model (``outputs.model_outputs``) or a base model (``inputs.model_inputs``)."""

    model_id: str
    name: str | None = None
    step: int | None = None
    source_run_id: str | None = None
    model_type: str | None = None
    flavors: dict[str, str | None] = field(default_factory=dict)
    mlflow_version: str | None = None
    requirements: list[str] = field(default_factory=list)
    kit_ref: str | None = None
    kit_digest: str | None = None


@dataclass
class RunFacts:
    """Everything provenance needs from one MLflow run, read once (see :func:`collect_run_facts`).

    All strings are already free of credentials; times are RFC 3339 UTC (``2026-01-02T03:04:05Z``).
    """

    run_id: str
    experiment_id: str
    experiment_name: str | None = None
    run_name: str | None = None
    status: str | None = None
    user: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    tracking_uri: str | None = None
    artifact_uri: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metric_history_len: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    git: GitFacts = field(default_factory=GitFacts)
    environment: EnvFacts = field(default_factory=EnvFacts)
    parent_run_id: str | None = None
    parent_kit_digest: str | None = None
    base_models: list[ModelFact] = field(default_factory=list)
    logged_models: list[ModelFact] = field(default_factory=list)
    datasets: list[DatasetFact] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return dataclasses.asdict(self)

    @property
    def invocation_id(self) -> str:
        """``<tracking URI>#/experiments/<id>/runs/<run id>``."""
        return f"{self.tracking_uri or ''}#/experiments/{self.experiment_id}/runs/{self.run_id}"


def rfc3339(ms: int | None) -> str | None:
    """MLflow milliseconds → ``YYYY-MM-DDThh:mm:ssZ`` (:func:`mlflow_plugin._internal.times.from_mlflow_ms`).

    >>> rfc3339(1767323045123)
    '2026-01-02T03:04:05Z'
    """
    return from_mlflow_ms(ms)


def parse_requirements(text: str | bytes) -> list[str]:
    """Requirement lines of a ``requirements.txt`` (comments, blanks and ``-r``/``-c`` dropped).

    >>> parse_requirements("mlflow==3.17.2\\n# c\\n\\nscikit-learn  # pinned later\\n-r more.txt\\n")
    ['mlflow==3.17.2', 'scikit-learn']
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line and not line.startswith(("-r", "-c", "--requirement", "--constraint")):
            out.append(redact_text(line))
    return out


def mlmodel_flavors(mlmodel: str | bytes | Mapping[str, Any]) -> tuple[dict[str, str | None], str | None]:
    """``({flavor: framework version or None}, mlflow_version)`` from an ``MLmodel`` file.

    >>> mlmodel_flavors("flavors:\\n  sklearn: {sklearn_version: 1.9.1}\\n  python_function:"
    ...                 " {python_version: 3.11.7}\\nmlflow_version: 3.17.2\\n")
    ({'python_function': '3.11.7', 'sklearn': '1.9.1'}, '3.17.2')
    """
    doc = read_mlmodel(mlmodel)
    flavors: dict[str, str | None] = {}
    for name, conf in sorted((doc.get("flavors") or {}).items()):
        version = None
        if isinstance(conf, Mapping):
            keys = sorted(k for k in conf if str(k).endswith("_version") and conf[k] is not None)
            if keys:
                version = str(conf[keys[0]])
        flavors[str(name)] = version
    mv = doc.get("mlflow_version")
    return flavors, (str(mv) if mv is not None else None)


# --------------------------------------------------------------------------- statement


def _json_number(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _hex_digest(d: str) -> str:
    h = d.removeprefix("sha256:")
    if not _HEX64.match(h):
        raise ProvenanceError(f"subject digest {d!r} is not a sha256 digest (64 lowercase hex)")
    return h


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _file_uri(path: str) -> str:
    return "file://" + quote(path, safe="/:@!$&'()*+,;=~") if path.startswith("/") else path


def _source_params(g: GitFacts) -> dict[str, Any]:
    uri = None
    if g.repo_url and g.commit:
        uri = f"git+{g.repo_url}@{g.commit}"
    elif g.notebook:
        uri = _file_uri(g.notebook)
    elif g.source_name:
        uri = g.source_name
    return _drop_none(
        {
            "uri": uri,
            "entry_point": g.source_name,
            "notebook": g.notebook,
            "branch": g.branch,
            "dirty": g.dirty,
        }
    )


def _metrics_byproduct(facts: RunFacts) -> dict[str, Any]:
    body = {
        "metrics": {k: _json_number(v) for k, v in sorted(facts.metrics.items())},
        "history_length": dict(sorted(facts.metric_history_len.items())),
    }
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    return {
        "name": "metrics",
        "mediaType": "application/json",
        "digest": {"sha256": hashlib.sha256(raw).hexdigest()},
        "content": base64.b64encode(raw).decode(),
    }


def _dependencies(facts: RunFacts) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = []
    g = facts.git
    if g.commit:
        deps.append(
            _drop_none(
                {
                    "uri": f"git+{g.repo_url}@{g.commit}" if g.repo_url else None,
                    "name": "source",
                    "digest": {"gitCommit": g.commit},
                    "annotations": _drop_none({"branch": g.branch, "dirty": g.dirty}) or None,
                }
            )
        )
    if g.notebook and g.notebook_sha256:
        deps.append(
            {"uri": _file_uri(g.notebook), "name": "notebook", "digest": {"sha256": g.notebook_sha256}}
        )
    for ds in facts.datasets:
        ann = _drop_none(
            {
                "context": ds.context,
                "mlflowDigest": ds.mlflow_digest,
                "sourceType": ds.source_type,
                "source": ds.source,
                "reachable": ds.reachable,
                "rehashedFrom": ds.rehashed_from,
                "digestScheme": DIR_DIGEST_SCHEME if ds.kind == "directory" else None,
                "note": ds.note,
                "schema": ds.schema,
                "profile": ds.profile,
            }
        )
        deps.append(
            _drop_none(
                {
                    "uri": ds.uri,
                    "name": ds.name,
                    "digest": {"sha256": ds.sha256} if ds.sha256 else None,
                    "annotations": ann,
                }
            )
        )
    if facts.parent_run_id:
        deps.append(
            _drop_none(
                {
                    "uri": dataclasses.replace(facts, run_id=facts.parent_run_id).invocation_id,
                    "name": "parent-run",
                    "digest": {"sha256": facts.parent_kit_digest} if facts.parent_kit_digest else None,
                    "annotations": {"runId": facts.parent_run_id},
                }
            )
        )
    for m in facts.base_models:
        deps.append(
            _drop_none(
                {
                    "uri": f"models:/{m.model_id}",
                    "name": f"base-model:{m.name or m.model_id}",
                    "digest": {"sha256": m.kit_digest} if m.kit_digest else None,
                    "annotations": _drop_none(
                        {
                            "modelId": m.model_id,
                            "sourceRunId": m.source_run_id,
                            "modelType": m.model_type,
                            "kitRef": m.kit_ref,
                        }
                    ),
                }
            )
        )
    e = facts.environment
    if e.packages_sha256:
        deps.append(
            {
                "name": "python-environment",
                "digest": {"sha256": e.packages_sha256},
                "annotations": _drop_none(
                    {
                        "python": e.python,
                        "implementation": e.implementation,
                        "platform": e.platform,
                        "packagesCount": e.packages_count,
                        "digestScheme": ENV_DIGEST_SCHEME,
                        "modelRequirements": e.model_requirements or None,
                    }
                ),
            }
        )
    return deps


EXCLUDED_NOTE = "excluded from the kit by policy"


def _excluded(files: list[tuple[str, int, str, str]]) -> list[dict[str, Any]]:
    """ResourceDescriptors of files kept out of the kit: digest, kind, path and size, no content.

    >>> _excluded([("data/train.csv", 12, "ab" * 32, "datasets")])[0]["annotations"]["note"]
    'excluded from the kit by policy'
    """
    return [
        {
            "name": f"excluded:{path}",
            "digest": {"sha256": _hex_digest(sha)},
            "annotations": {
                "kind": kind,
                "path": path,
                "size": size,
                "excludedFromKit": True,
                "note": EXCLUDED_NOTE,
            },
        }
        for path, size, sha, kind in sorted(files)
    ]


def build_statement(
    facts: RunFacts,
    subject_name: str,
    subject_digest: str,
    extra_subjects: list[dict] | None = None,
    kit_ref: str | None = None,
    model_requirements: list[str] | None = None,
    excluded: list[tuple[str, int, str, str]] | None = None,
) -> dict:
    """An in-toto Statement v1 with a SLSA Provenance v1 predicate for ``facts``.

    ``subject_digest`` is the kit's manifest digest (``sha256:<hex>`` or ``<hex>``);
    ``extra_subjects`` are further ``{"name", "digest": {alg: hex}}`` entries (e.g. the OMS root
    digest); ``model_requirements`` overrides ``facts.environment.model_requirements``;
    ``excluded`` lists ``(kit path, size, sha256, kind)`` of files kept out of the kit by policy
    (referenced in ``resolvedDependencies`` by digest only). The result is validated
    (:func:`validate_statement`) and deterministic for the same inputs.

    >>> st = build_statement(RunFacts(run_id="r" * 32, experiment_id="0"), "kit", "ab" * 32,
    ...                      extra_subjects=[{"name": "model", "digest": {"sha256": "cd" * 32}}])
    >>> [s["name"] for s in st["subject"]], st["predicate"]["buildDefinition"]["buildType"]
    (['kit', 'model'], 'https://mlflow-modelkit.dev/buildtypes/mlflow-run/v1')
    """
    subjects = [{"name": subject_name, "digest": {"sha256": _hex_digest(subject_digest)}}]
    subjects += [dict(s) for s in extra_subjects or []]
    e = facts.environment
    reqs = sorted(model_requirements) if model_requirements is not None else list(e.model_requirements)
    if model_requirements is not None:
        facts = dataclasses.replace(facts, environment=dataclasses.replace(e, model_requirements=reqs))
    environment = _drop_none(
        {
            "python": e.python,
            "implementation": e.implementation,
            "platform": e.platform,
            "packages_sha256": e.packages_sha256,
            "packages_count": e.packages_count,
            "model_requirements": [redact_text(r) for r in reqs],
        }
    )
    byproducts = [_metrics_byproduct(facts)]
    for m in facts.logged_models:
        byproducts.append(
            {
                "name": f"model:{m.name or m.model_id}",
                "uri": f"models:/{m.model_id}",
                "annotations": _drop_none(
                    {
                        "modelId": m.model_id,
                        "step": m.step,
                        "modelType": m.model_type,
                        "flavors": m.flavors or None,
                        "mlflowVersion": m.mlflow_version,
                        "requirements": m.requirements or None,
                    }
                ),
            }
        )
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "run": _drop_none({"experiment": facts.experiment_name, "run_name": facts.run_name}),
                    "source": _source_params(facts.git),
                    "hyperparameters": redact_map(facts.params),
                    "datasets": [d.uri for d in facts.datasets],
                },
                "internalParameters": _drop_none(
                    {
                        "tracking_uri": facts.tracking_uri,
                        "run_id": facts.run_id,
                        "experiment_id": facts.experiment_id,
                        "user": facts.user,
                        "status": facts.status,
                        "parent_run_id": facts.parent_run_id,
                        "kit_ref": redact_uri(kit_ref) if kit_ref else None,
                        "environment": environment,
                        "tags": redact_map(facts.tags),
                    }
                ),
                "resolvedDependencies": _dependencies(facts) + _excluded(excluded or []),
            },
            "runDetails": {
                "builder": {
                    "id": f"{BUILDER_ID_PREFIX}{__version__}",
                    "version": {"mlflow-modelkit": __version__, "mlflow": e.mlflow or "unknown"},
                },
                "metadata": _drop_none(
                    {
                        "invocationId": redact_uri(facts.invocation_id),
                        "startedOn": facts.start_time,
                        "finishedOn": facts.end_time,
                    }
                ),
                "byproducts": byproducts,
            },
        },
    }
    statement = redact_json(statement)  # belt and braces: free text (tags, notes) included
    validate_statement(statement)
    return statement


def validate_statement(statement: Mapping[str, Any]) -> None:
    """Raise :class:`ProvenanceError` unless ``statement`` is a well-formed, credential-free provenance.

    Checks: Statement v1 type, every subject has a non-empty hex digest, SLSA v1 predicate with
    buildType/externalParameters/builder.id, every ResourceDescriptor has a uri, digest or content
    and only the spec's fields, RFC 3339 UTC timestamps, strict JSON, and no credentials.

    >>> validate_statement({"_type": STATEMENT_TYPE, "subject": [{"name": "x"}]})
    Traceback (most recent call last):
    ...
    mlflow_plugin.trust.provenance.ProvenanceError: provenance: subject[0] has no digest
    """
    errs: list[str] = []
    if statement.get("_type") != STATEMENT_TYPE:
        errs.append(f"_type is not {STATEMENT_TYPE}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        errs.append("no subject")
    for i, s in enumerate(subjects or []):
        dg = s.get("digest") if isinstance(s, Mapping) else None
        if not dg:
            errs.append(f"subject[{i}] has no digest")
        elif not all(isinstance(v, str) and re.fullmatch(r"[0-9a-f]+", v) for v in dg.values()):
            errs.append(f"subject[{i}] digest is not lowercase hex")
    if errs:
        raise ProvenanceError("provenance: " + "; ".join(errs))
    if statement.get("predicateType") != SLSA_PROVENANCE_V1:
        errs.append(f"predicateType is not {SLSA_PROVENANCE_V1}")
    pred = statement.get("predicate") or {}
    bd, rd = pred.get("buildDefinition") or {}, pred.get("runDetails") or {}
    if not bd.get("buildType"):
        errs.append("buildDefinition.buildType missing")
    if not isinstance(bd.get("externalParameters"), Mapping):
        errs.append("buildDefinition.externalParameters missing")
    if not (rd.get("builder") or {}).get("id"):
        errs.append("runDetails.builder.id missing")
    for key in ("startedOn", "finishedOn"):
        v = (rd.get("metadata") or {}).get(key)
        if v is not None and not _RFC3339.match(str(v)):
            errs.append(f"runDetails.metadata.{key} {v!r} is not YYYY-MM-DDThh:mm:ssZ")
    allowed = {"name", "uri", "digest", "content", "downloadLocation", "mediaType", "annotations"}
    for where, rds in (
        ("resolvedDependencies", bd.get("resolvedDependencies") or []),
        ("byproducts", rd.get("byproducts") or []),
    ):
        for i, r in enumerate(rds):
            if not (r.get("uri") or r.get("digest") or r.get("content")):
                errs.append(f"{where}[{i}] has no uri, digest or content")
            if set(r) - allowed:
                errs.append(f"{where}[{i}] has unknown fields {sorted(set(r) - allowed)}")
    try:
        json.dumps(statement, allow_nan=False)
    except ValueError as e:
        errs.append(f"not strict JSON: {e}")
    leaks = find_credentials(statement)
    if leaks:
        errs.append("credentials at " + ", ".join(leaks[:5]))
    if errs:
        raise ProvenanceError("provenance: " + "; ".join(errs))


# --------------------------------------------------------------------------- rendering


def _short(d: str | None, n: int = 12) -> str:
    return (d[:n] + "…") if d and len(d) > n else (d or "")


def summarize(statement: dict) -> str:
    """A readable multi-line rendering of a provenance statement (for ``mlflow-modelkit provenance``).

    >>> st = build_statement(RunFacts(run_id="f" * 32, experiment_id="1", experiment_name="fraud",
    ...                               params={"C": "0.5"}, metrics={"auc": 0.91}), "kit", "ab" * 32)
    >>> print(summarize(st))  # doctest: +ELLIPSIS
    Subject          kit  sha256:abababababab…
    Build type       https://mlflow-modelkit.dev/buildtypes/mlflow-run/v1
    ...
    Hyperparameters  C=0.5
    Metrics          auc=0.91
    """
    lines: list[str] = []

    def row(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"{label:<16} {value}")

    for s in statement.get("subject", []):
        dg = s.get("digest", {})
        alg = "sha256" if "sha256" in dg else next(iter(dg), "")
        row("Subject", f"{s.get('name', '')}  {alg}:{_short(dg.get(alg))}")
    pred = statement.get("predicate", {})
    bd, rd = pred.get("buildDefinition", {}), pred.get("runDetails", {})
    ext, internal = bd.get("externalParameters", {}), bd.get("internalParameters", {})
    meta = rd.get("metadata", {})
    row("Build type", bd.get("buildType"))
    row("Builder", rd.get("builder", {}).get("id"))
    run = ext.get("run", {})
    row(
        "Run",
        f"{run.get('run_name') or '(unnamed)'} ({internal.get('run_id', '?')}) in experiment "
        f"{run.get('experiment') or internal.get('experiment_id', '?')}",
    )
    row("Status", " by ".join(x for x in (internal.get("status"), internal.get("user")) if x))
    row("Tracking", internal.get("tracking_uri"))
    row("Invocation", meta.get("invocationId"))
    row("Started", meta.get("startedOn"))
    row("Finished", meta.get("finishedOn"))
    row("Parent run", internal.get("parent_run_id"))
    row("Kit", internal.get("kit_ref"))
    src = ext.get("source", {})
    if src:
        flags = []
        if src.get("branch"):
            flags.append(f"branch {src['branch']}")
        if src.get("dirty") is True:
            flags.append("DIRTY working tree")
        row("Source", src.get("uri", "") + (f" ({', '.join(flags)})" if flags else ""))
        if src.get("entry_point") and src.get("entry_point") != src.get("uri"):
            row("Entry point", src["entry_point"])
    env = internal.get("environment", {})
    if env.get("python") or env.get("packages_sha256"):
        row(
            "Environment",
            f"Python {env.get('python', '?')} on {env.get('platform', '?')}; "
            f"{env.get('packages_count', '?')} packages sha256:{_short(env.get('packages_sha256'))}",
        )
    row("Requirements", ", ".join(env.get("model_requirements", [])))
    row("Hyperparameters", ", ".join(f"{k}={v}" for k, v in sorted(ext.get("hyperparameters", {}).items())))
    for bp in rd.get("byproducts", []):
        if bp.get("name") == "metrics" and bp.get("content"):
            try:
                body = json.loads(base64.b64decode(bp["content"]))
            except ValueError:
                continue
            hist = body.get("history_length", {})
            row(
                "Metrics",
                ", ".join(
                    f"{k}={v}" + (f" ({hist[k]} points)" if hist.get(k, 1) > 1 else "")
                    for k, v in sorted(body.get("metrics", {}).items())
                ),
            )
    datasets = [
        d
        for d in bd.get("resolvedDependencies", [])
        if "mlflowDigest" in d.get("annotations", {}) or "reachable" in d.get("annotations", {})
    ]
    if datasets:
        lines.append("Datasets")
        for d in datasets:
            a = d.get("annotations", {})
            ctx = f" [{a['context']}]" if a.get("context") else ""
            if d.get("digest", {}).get("sha256"):
                state = f"sha256:{_short(d['digest']['sha256'])}"
                if str(a.get("rehashedFrom", "")).startswith("artifact:"):
                    state += " (kit copy)"
            else:
                state = f"NOT RE-HASHED: {a.get('note', 'unreachable')}"
            mdg = a.get("mlflowDigest", "-")
            lines.append(f"  {d.get('name', '?')}{ctx}  {d.get('uri', '')}  {state}  (mlflow md5/8 {mdg})")
    others = [
        d
        for d in bd.get("resolvedDependencies", [])
        if str(d.get("name", "")).startswith(("base-model:", "parent-run"))
    ]
    if others:
        lines.append("Upstream")
        for d in others:
            dg = d.get("digest", {}).get("sha256")
            lines.append(f"  {d['name']}  {d.get('uri', '')}" + (f"  sha256:{_short(dg)}" if dg else ""))
    models = [b for b in rd.get("byproducts", []) if str(b.get("name", "")).startswith("model:")]
    if models:
        lines.append("Logged models")
        for b in models:
            fl = b.get("annotations", {}).get("flavors") or {}
            fls = ", ".join(f"{k} {v}" if v else k for k, v in sorted(fl.items()))
            lines.append(f"  {b['name'][6:]}  {b.get('uri', '')}" + (f"  ({fls})" if fls else ""))
    return "\n".join(lines)
