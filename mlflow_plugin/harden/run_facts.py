"""Facts about an MLflow run for its provenance: read through MLflow's client, datasets re-hashed.

The hardening side of provenance: :func:`collect_run_facts` talks to the tracking server and the
file system; :mod:`mlflow_plugin.trust.provenance` turns the facts into a statement and never
imports MLflow.

>>> facts = collect_run_facts(run.info.run_id, base_dirs=[".", "notebooks"])  # doctest: +SKIP
>>> facts.datasets[0].sha256, facts.git.commit, facts.metrics["auc"]  # doctest: +SKIP
('9f86d0...', 'c27d339e...', 0.91)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from mlflow_plugin._internal import statcache
from mlflow_plugin._internal.hashing import file_sha256
from mlflow_plugin.trust.provenance import (
    DROPPED_TAGS,
    DatasetFact,
    EnvFacts,
    GitFacts,
    ModelFact,
    RunFacts,
    mlmodel_flavors,
    parse_requirements,
    redact_json,
    redact_map,
    redact_text,
    redact_uri,
    rfc3339,
)
from mlflow_plugin.trust.redact import redact_params as redact_by_name

if TYPE_CHECKING:
    from mlflow import MlflowClient

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# MLflow dataset source types whose "path" is not a file (hub ids, tables, in-memory code)
_NOT_FILES = frozenset({"hugging_face", "huggingface", "spark", "delta_table", "code"})


# --------------------------------------------------------------------------- hashing


def _raise(e: OSError) -> None:
    raise e  # an unreadable subdirectory must not silently drop out of the digest


def _dir_entries(root: str) -> list[tuple[str, str]]:
    out = []
    for d, _dirs, files in os.walk(root, onerror=_raise, followlinks=False):
        # symlinked directories are listed in dirs but not entered (followlinks=False)
        for n in files:
            p = os.path.join(d, n)
            if os.path.isfile(p):  # follows a symlink to a file; skips dangling links, fifos
                out.append((os.path.relpath(p, root).replace(os.sep, "/"), p))
    out.sort(key=lambda e: e[0].encode("utf-8", "surrogateescape"))
    return out


def dir_digest_from_files(files: Iterable[tuple[str, str]]) -> str:
    """The directory digest over ``(relpath, file sha256)`` pairs (see the module docstring).

    >>> import hashlib
    >>> dir_digest_from_files([("b", "2" * 64), ("a", "1" * 64)]) == hashlib.sha256(
    ...     ("1" * 64 + "  a\\n" + "2" * 64 + "  b\\n").encode()).hexdigest()
    True
    """
    h = hashlib.sha256()
    for rel, digest in sorted(files, key=lambda e: e[0].encode("utf-8", "surrogateescape")):
        h.update(f"{digest}  {rel}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def hash_path(path: str) -> tuple[str, str]:
    """``(kind, sha256)`` of a local file or directory; kind is ``"file"`` or ``"directory"``.

    Streams 1 MiB blocks; unchanged trees are answered from the stat cache.
    """
    is_dir = os.path.isdir(path)
    entries = _dir_entries(path) if is_dir else [(os.path.basename(path), path)]
    cache = statcache.default()
    sig = None
    if cache is not None:
        sig = statcache.signature(
            [(rel, os.path.abspath(p), os.stat(p)) for rel, p in entries],
            extra=f"provenance-v1\0{'dir' if is_dir else 'file'}",
        )
        hit = cache.get(sig)
        if hit and _HEX64.match(str(hit.get("sha256", ""))):
            return ("directory" if is_dir else "file"), hit["sha256"]
    if is_dir:
        digest = dir_digest_from_files((rel, file_sha256(p)) for rel, p in entries)
    else:
        digest = file_sha256(path)
    if cache is not None and sig is not None:
        cache.put(sig, {"sha256": digest})
    return ("directory" if is_dir else "file"), digest


# --------------------------------------------------------------------------- datasets


def _source_dict(source: Any) -> Any:
    if isinstance(source, str):
        try:
            return json.loads(source)
        except ValueError:
            return source
    return source


def dataset_uri(name: str, source_type: str | None, source: Any, mlflow_digest: str | None) -> str:
    """A URI for a dataset input from MLflow's source JSON (credentials stripped).

    >>> dataset_uri("t", "local", {"uri": "/data/t.csv"}, "5ae63cca")
    'file:///data/t.csv'
    >>> dataset_uri("t", "local", {"uri": "data/t.csv"}, "5ae63cca")
    'data/t.csv'
    >>> dataset_uri("t", "code", {"tags": {}}, "5ae63cca")
    'urn:mlflow:dataset:t:5ae63cca'
    """
    raw = None
    if isinstance(source, Mapping):
        for k in ("uri", "url", "path", "delta_table_name", "table_name"):
            if isinstance(source.get(k), str) and source[k]:
                raw = source[k]
                break
        if raw and source_type == "hugging_face" and "://" not in raw:
            rev = source.get("revision")
            raw = f"hf://datasets/{raw}" + (f"@{rev}" if rev else "")
    elif isinstance(source, str) and source:
        raw = source
    if not raw:
        return f"urn:mlflow:dataset:{quote(name, safe='')}:{mlflow_digest or 'unknown'}"
    if raw.startswith("/"):
        raw = "file://" + quote(raw, safe="/:@!$&'()*+,;=~")
    return redact_uri(raw)


def _local_path(uri: str) -> str | None:
    if uri.startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            return None
        return unquote(parts.path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri) and not re.match(r"^[A-Za-z]:[\\/]", uri):
        return None  # some other scheme (s3:, https:, hf:, urn:, dbfs:, ...)
    return uri


def _path_parts(p: str) -> list[str]:
    return [s for s in p.replace("\\", "/").split("/") if s not in ("", ".")]


def _common_suffix(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _match_artifact(src_parts: list[str], artifact_sha256: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(kind, kit path, sha256) of the kit file (or directory) that best matches the source path."""
    if not src_parts:
        return None
    best: dict[str, str] = {}
    best_score = 0
    for key, digest in artifact_sha256.items():
        score = _common_suffix(_path_parts(key), src_parts)
        if score and score >= best_score:
            if score > best_score:
                best, best_score = {}, score
            best[key] = digest
    if best and len(set(best.values())) == 1:
        return "file", sorted(best)[0], next(iter(best.values()))
    if best:
        return None  # same name, different content: ambiguous
    # a directory source: kit files under a folder whose trailing components match the source's
    groups: dict[str, dict[str, str]] = {}
    scores: dict[str, int] = {}
    for key, digest in artifact_sha256.items():
        kp = _path_parts(key)
        for i in range(len(kp) - 1, 0, -1):
            score = _common_suffix(kp[:i], src_parts)
            if score:
                prefix = "/".join(kp[:i])
                groups.setdefault(prefix, {})["/".join(kp[i:])] = digest
                scores[prefix] = score
                break
    if not groups:
        return None
    top = max(scores.values())
    cands = [p for p, s in scores.items() if s == top]
    if len(cands) != 1:
        return None
    return "directory", cands[0], dir_digest_from_files(groups[cands[0]].items())


def _rehash(ds: DatasetFact, base_dirs: list[str], artifact_sha256: Mapping[str, str] | None) -> DatasetFact:
    raw = None
    if isinstance(ds.source, Mapping):
        for k in ("uri", "url", "path"):
            if isinstance(ds.source.get(k), str):
                raw = ds.source[k]
                break
    elif isinstance(ds.source, str):
        raw = ds.source
    if ds.source_type in _NOT_FILES:
        raw = None  # a table, a hub dataset or code: no file to re-hash
    local = _local_path(raw) if raw else None
    tried: list[str] = []
    if local:
        cands = [local] if os.path.isabs(local) else [os.path.join(b, local) for b in base_dirs]
        for c in cands:
            c = os.path.normpath(c)
            tried.append(c)
            if os.path.isfile(c) or os.path.isdir(c):
                try:
                    kind, digest = hash_path(c)
                except OSError as e:
                    ds.note = f"local source {c} could not be read: {e.strerror or e}"
                    continue
                ds.sha256, ds.reachable, ds.rehashed_from, ds.kind = digest, True, f"{kind}:{c}", kind
                ds.note = None
                return ds
    if artifact_sha256 and raw:
        path = urlsplit(raw).path if "://" in raw else raw
        hit = _match_artifact(_path_parts(unquote(path)), artifact_sha256)
        if hit:
            kind, key, digest = hit
            ds.sha256, ds.reachable, ds.rehashed_from, ds.kind = digest, True, f"artifact:{key}", kind
            ds.note = f"hashed from the copy logged in the kit ({kind} {key}), matched by path"
            return ds
    if not ds.note:
        if not raw:
            ds.note = f"source type {ds.source_type or 'unknown'!r} names no file to re-hash"
        elif local:
            ds.note = "local source not found (tried: " + ", ".join(tried) + ")"
        else:
            ds.note = f"remote source ({ds.source_type or 'unknown'}) is not fetched; not in the kit"
    ds.sha256, ds.reachable = None, False
    return ds


# --------------------------------------------------------------------------- collection


def _find_model(d: Mapping[str, Any] | None, m: ModelFact) -> Any:
    if not d:
        return None
    for k in (m.model_id, m.name):
        if k is not None and k in d:
            return d[k]
    return None


def _kit_tags(client: MlflowClient, run_id: str | None) -> tuple[str | None, str | None]:
    if not run_id:
        return None, None
    try:
        tags = client.get_run(run_id).data.tags
    except Exception:
        return None, None
    digest = tags.get("modelkit.digest")
    digest = digest.removeprefix("sha256:") if digest else None
    return tags.get("modelkit.ref"), (digest if digest and _HEX64.match(digest) else None)


def collect_run_facts(
    run_id: str,
    client: MlflowClient | None = None,
    base_dirs: list[str] | None = None,
    artifact_sha256: dict[str, str] | None = None,
    *,
    mlmodels: Mapping[str, str | bytes | Mapping[str, Any]] | None = None,
    requirements: Mapping[str, str | bytes | list[str]] | None = None,
    redact_params: Iterable[str] = (),
) -> RunFacts:
    """Read a run once from MLflow and re-hash its dataset sources.

    ``base_dirs`` resolve relative dataset paths (default: the current directory; the notebook's
    and the entry point's directories are tried after them). ``artifact_sha256`` maps kit paths
    to SHA-256 (the kit's file index) for sources that are not on disk. ``mlmodels`` and
    ``requirements`` map a logged model's id (or name) to its ``MLmodel`` text and its
    ``requirements.txt`` text (or list); they fill ``flavors`` and ``environment.model_requirements``.
    Params and tags whose names match a glob of ``redact_params`` (publish passes
    ``[publish] redact_params``) are ``"[redacted]"`` in ``params`` and ``tags``.

    >>> facts = collect_run_facts(run.info.run_id, base_dirs=[".", "notebooks"])  # doctest: +SKIP
    >>> facts.datasets[0].sha256, facts.git.commit, facts.metrics["auc"]  # doctest: +SKIP
    ('9f86d0...', 'c27d339e...', 0.91)
    """
    import mlflow
    from mlflow import MlflowClient

    client = client or MlflowClient()
    run = client.get_run(run_id)
    info, data = run.info, run.data
    exp_name = None
    with contextlib.suppress(Exception):
        exp_name = client.get_experiment(info.experiment_id).name
    raw_tags = dict(data.tags)
    metric_len = {}
    for key in sorted(data.metrics):
        try:
            metric_len[key] = len(client.get_metric_history(info.run_id, key))
        except Exception:
            metric_len[key] = 1

    dirty = raw_tags.get("mlflow.source.git.dirty")
    count = raw_tags.get("modelkit.env.packages_count")
    git = GitFacts(
        repo_url=redact_uri(raw_tags["mlflow.source.git.repoURL"])
        if raw_tags.get("mlflow.source.git.repoURL")
        else None,
        commit=raw_tags.get("mlflow.source.git.commit"),
        branch=raw_tags.get("mlflow.source.git.branch"),
        dirty=None if dirty is None else dirty.lower() == "true",
        notebook=raw_tags.get("modelkit.source.notebook"),
        notebook_sha256=raw_tags.get("modelkit.source.notebook_sha256"),
        source_name=redact_text(raw_tags["mlflow.source.name"]) if "mlflow.source.name" in raw_tags else None,
        source_type=raw_tags.get("mlflow.source.type"),
    )
    env = EnvFacts(
        python=raw_tags.get("modelkit.env.python"),
        implementation=raw_tags.get("modelkit.env.implementation"),
        platform=raw_tags.get("modelkit.env.platform"),
        packages_sha256=raw_tags.get("modelkit.env.packages_sha256"),
        packages_count=int(count) if count and count.isdigit() else None,
        mlflow=mlflow.__version__,
    )

    logged = []
    outputs = getattr(run, "outputs", None)
    for mo in getattr(outputs, "model_outputs", None) or []:
        m = ModelFact(model_id=mo.model_id, step=getattr(mo, "step", None))
        try:
            lm = client.get_logged_model(mo.model_id)
            m.name, m.source_run_id = lm.name, lm.source_run_id
            m.model_type = lm.model_type
        except Exception:
            pass
        mlmodel = _find_model(mlmodels, m)
        if mlmodel is not None:
            m.flavors, m.mlflow_version = mlmodel_flavors(mlmodel)
        req = _find_model(requirements, m)
        if req is not None:
            m.requirements = (
                [redact_text(str(r)) for r in req] if isinstance(req, list) else parse_requirements(req)
            )
        logged.append(m)
    logged.sort(key=lambda m: (m.name or "", m.model_id))
    env.model_requirements = sorted({r for m in logged for r in m.requirements})

    bases = []
    for mi in getattr(run.inputs, "model_inputs", None) or []:
        m = ModelFact(model_id=mi.model_id)
        try:
            lm = client.get_logged_model(mi.model_id)
            m.name, m.source_run_id, m.model_type = lm.name, lm.source_run_id, lm.model_type
        except Exception:
            pass
        m.kit_ref, m.kit_digest = _kit_tags(client, m.source_run_id)
        bases.append(m)
    bases.sort(key=lambda m: m.model_id)

    dirs = [os.path.abspath(d) for d in (base_dirs if base_dirs is not None else [os.getcwd()])]
    for extra in (git.notebook, git.source_name):
        if extra and os.path.isabs(extra):
            d = os.path.dirname(extra)
            if d not in dirs:
                dirs.append(d)
    datasets = []
    for di in getattr(run.inputs, "dataset_inputs", None) or []:
        d = di.dataset
        source = _source_dict(d.source)
        context = next((t.value for t in (di.tags or []) if t.key == "mlflow.data.context"), None)
        ds = DatasetFact(
            name=d.name,
            uri=dataset_uri(d.name, d.source_type, source, d.digest),
            context=context,
            mlflow_digest=d.digest,
            source_type=d.source_type,
            source=redact_json(source),
            schema=_source_dict(d.schema) if d.schema else None,
            profile=_source_dict(d.profile) if d.profile else None,
        )
        datasets.append(_rehash(ds, dirs, artifact_sha256))
    datasets.sort(key=lambda d: (d.context or "", d.name, d.uri, d.mlflow_digest or ""))

    parent = raw_tags.get("mlflow.parentRunId")
    patterns = list(redact_params)
    tags = redact_map(redact_by_name({k: v for k, v in raw_tags.items() if k not in DROPPED_TAGS}, patterns))
    run_name = info.run_name or raw_tags.get("mlflow.runName")
    if run_name:  # the run name is the mlflow.runName tag: redacted with it
        run_name = str(redact_by_name({"mlflow.runName": run_name}, patterns)["mlflow.runName"])
    return RunFacts(
        run_id=info.run_id,
        experiment_id=str(info.experiment_id),
        experiment_name=exp_name,
        run_name=run_name,
        status=info.status,
        user=info.user_id or raw_tags.get("mlflow.user"),
        start_time=rfc3339(info.start_time),
        end_time=rfc3339(info.end_time),
        tracking_uri=redact_uri(str(client.tracking_uri)),
        artifact_uri=redact_uri(info.artifact_uri) if info.artifact_uri else None,
        params=redact_map(redact_by_name(data.params, patterns)),
        metrics=dict(sorted(data.metrics.items())),
        metric_history_len=metric_len,
        tags=tags,
        git=git,
        environment=env,
        parent_run_id=parent,
        parent_kit_digest=_kit_tags(client, parent)[1],
        base_models=bases,
        logged_models=logged,
        datasets=datasets,
    )
