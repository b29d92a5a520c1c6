"""The read-only answers of the server routes, as JSON-safe dicts (blocking: run them in a thread).

Everything goes through ``mlflow_plugin``'s public API (``list_runs``, ``list_kits``, ``inspect``,
``load_config``) plus ``MlflowClient`` reads; values that could carry a secret are redacted by the
admin's ``[publish] redact_params`` globs and URL credentials are masked.

>>> ui_url("https://mlflow.example.com/", "3", "ab" * 16)
'https://mlflow.example.com/#/experiments/3/runs/abababababababababababababababab'
>>> ui_url("sqlite:///tmp/mlflow.db", "3", "ab" * 16) is None
True
"""

from __future__ import annotations

import os
import tempfile
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jupyter_ext.safe import from_ms, jsonable, mask_uri

MAX_FILES_PER_LAYER = 2000
MAX_EXPERIMENTS = 1000
MAX_MODELS = 100
MAX_MLMODEL_BYTES = 1 << 20
GIT_COMMIT_TAG = "mlflow.source.git.commit"


class NotFound(Exception):
    """No such run, experiment or kit (HTTP 404)."""


def resolve_tracking_uri(given: str | None) -> str:
    """The panel's tracking URI when it sent one, else the server's ``MLFLOW_TRACKING_URI``
    (else MLflow's default)."""
    if given:
        return given
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    import mlflow

    return str(mlflow.get_tracking_uri())


def _ui_base(tracking_uri: str) -> str | None:
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in (parts.hostname or "") and not netloc.startswith("["):  # IPv6 literal
        netloc = f"[{parts.hostname}]" + ("" if parts.port is None else f":{parts.port}")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def ui_url(tracking_uri: str, experiment_id: str | None = None, run_id: str | None = None) -> str | None:
    """The MLflow UI address of a run (or of the UI) when the tracking URI is http(s)."""
    base = _ui_base(tracking_uri)
    if base is None:
        return None
    if experiment_id is None:
        return base + "/"
    url = f"{base}/#/experiments/{experiment_id}"
    return f"{url}/runs/{run_id}" if run_id else url


def settings(tracking_uri: str) -> dict[str, Any]:
    from mlflow_plugin import load_config

    cfg = load_config()
    rows = [
        {"setting": name, "value": mask_uri(value), "source": mask_uri(source)}
        for name, value, source in cfg.show()
    ]
    return {
        "tracking_uri": mask_uri(tracking_uri),
        "mlflow_ui_url": ui_url(tracking_uri),
        "config": rows,
    }


def experiments(tracking_uri: str) -> dict[str, Any]:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=MAX_EXPERIMENTS)
    return {
        "experiments": [
            {
                "id": str(e.experiment_id),
                "name": e.name,
                "artifact_location": mask_uri(e.artifact_location or ""),
            }
            for e in found
        ]
    }


def runs(
    tracking_uri: str,
    experiment: str,
    *,
    metrics: list[str],
    params: list[str],
    filter_string: str | None,
    order_by: list[str] | None,
    max_results: int,
    page_token: str | None,
) -> dict[str, Any]:
    from mlflow_plugin import list_runs, load_config

    page = list_runs(
        experiment,
        metrics=metrics,
        params=params,
        filter_string=filter_string,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        tracking_uri=tracking_uri,
    )
    frame = page.frame
    cfg = load_config()
    hidden = {f"params.{p}" for p in params if _is_redacted(p, cfg)}
    rows = []
    experiment_id = _experiment_id(tracking_uri, experiment) if _ui_base(tracking_uri) else None
    for rec in frame.to_dict("records"):
        row = {k: ("[redacted]" if k in hidden and v is not None else jsonable(v)) for k, v in rec.items()}
        row["run_url"] = ui_url(tracking_uri, experiment_id, str(rec["run_id"])) if experiment_id else None
        rows.append(row)
    return {
        "runs": rows,
        "columns": [*map(str, frame.columns), "run_url"],
        "next_page_token": _token(page.next_page_token),
    }


def _token(token: str | bytes | None) -> str | None:
    """MLflow's page token as text (the SQL store hands out bytes)."""
    if isinstance(token, bytes):
        return token.decode("ascii")
    return token or None


def _is_redacted(name: str, cfg: Any) -> bool:
    return cfg.redact({name: ""})[name] == "[redacted]"


def _experiment_id(tracking_uri: str, experiment: str) -> str | None:
    from mlflow import MlflowClient

    exp = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment)
    if exp is not None:
        return str(exp.experiment_id)
    return experiment if experiment.isdigit() else None


def get_run(tracking_uri: str, run_id: str) -> Any:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"run {run_id} not found in the tracking store {mask_uri(tracking_uri)}") from None
        raise


def draft_reference(tracking_uri: str, run_id: str) -> tuple[Any, str | None]:
    """``(run, OCI reference of its draft kit or None)``: the draft as ``list_runs`` derives it."""
    from mlflow_plugin import list_runs

    run = get_run(tracking_uri, run_id)
    page = list_runs(
        str(run.info.experiment_id),
        filter_string=f"attributes.run_id = '{run_id}'",
        max_results=1,
        tracking_uri=tracking_uri,
    )
    refs = page.frame["draft_ref"].tolist()
    return run, (refs[0] if refs and refs[0] else None)


def run_detail(tracking_uri: str, run_id: str) -> dict[str, Any]:
    from mlflow_plugin import load_config

    run, draft_ref = draft_reference(tracking_uri, run_id)
    models = _models(tracking_uri, str(run.info.experiment_id), run_id)
    cfg = load_config()
    info, data = run.info, run.data
    params = {k: mask_uri(str(v)) for k, v in cfg.redact(data.params).items()}
    tags = {k: mask_uri(str(v)) for k, v in cfg.redact(data.tags).items()}
    metrics = {k: jsonable(v) for k, v in data.metrics.items()}
    exp_id = str(info.experiment_id)
    return {
        "run": {
            "run_id": info.run_id,
            "name": info.run_name,
            "experiment_id": exp_id,
            "status": info.status,
            "start_time": from_ms(info.start_time),
            "end_time": from_ms(info.end_time),
            "artifact_uri": mask_uri(info.artifact_uri or ""),
            "params": params,
            "metrics": metrics,
            "tags": tags,
            "run_url": ui_url(tracking_uri, exp_id, info.run_id),
        },
        "draft": _draft(draft_ref),
        "models": models,
        "provenance_preview": {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "params": params,
            "metrics": metrics,
            "redacted": sorted(k for k in data.params if k in params and params[k] == "[redacted]"),
            "git_commit": data.tags.get(GIT_COMMIT_TAG),
            "source": mask_uri(data.tags.get("mlflow.source.name", "")) or None,
            "datasets": _datasets(run),
            "finished_on": from_ms(info.end_time),
        },
    }


def _draft(reference: str | None) -> dict[str, Any] | None:
    from mlflow_plugin import NotFoundError, inspect

    if reference is None:
        return None
    try:
        info = inspect(reference)
    except NotFoundError:
        return None  # the run has logged no artifact yet
    layers = []
    for layer in info.layers():  # a hostile or broken index: files = [] and a one-line error
        files = layer["files"]
        layer["files"] = files[:MAX_FILES_PER_LAYER]
        if len(files) > MAX_FILES_PER_LAYER:
            layer["files_truncated"] = len(files)
        layers.append(layer)
    return {"reference": info.reference, "digest": info.digest, "layers": layers}


def _models(tracking_uri: str, experiment_id: str, run_id: str) -> list[dict[str, Any]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string=f"source_run_id = '{run_id}'",
        max_results=MAX_MODELS,
    )
    return [
        {
            "name": m.name,
            "model_id": m.model_id,
            "flavors": _flavors(tracking_uri, m.artifact_location),
            # a logged model lives in a draft kit of its own (tag m-<id>), not in the run's
            "draft": _draft(model_draft_reference(m.artifact_location)),
        }
        for m in found
    ]


def model_drafts(tracking_uri: str, run_id: str) -> list[tuple[str, str]]:
    """``(model name, OCI reference of its draft kit)`` of each model the run logged to a modelkit store."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    run = get_run(tracking_uri, run_id)
    found = client.search_logged_models(
        experiment_ids=[str(run.info.experiment_id)],
        filter_string=f"source_run_id = '{run_id}'",
        max_results=MAX_MODELS,
    )
    out = []
    for m in found:
        ref = model_draft_reference(m.artifact_location)
        if ref:
            out.append((str(m.name), ref))
    return out


def model_draft_reference(artifact_location: str | None) -> str | None:
    """The OCI reference of a logged model's draft kit (``STORE:m-<id>``), None outside modelkit://."""
    from mlflow_plugin import draft_reference as draft_of

    return draft_of(artifact_location or "")


def _flavors(tracking_uri: str, artifact_location: str | None) -> list[str]:
    """The flavor names of a logged model's MLmodel file ([] when it cannot be read)."""
    import logging

    import mlflow
    import yaml

    if not artifact_location:
        return []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_location.rstrip("/") + "/MLmodel",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
            if os.path.getsize(path) > MAX_MLMODEL_BYTES:
                return []
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
    except Exception:  # a detail view shows the model without flavors
        logging.getLogger(__name__).debug("cannot read the MLmodel of a logged model", exc_info=False)
        return []
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    return sorted(str(k) for k in flavors) if isinstance(flavors, dict) else []


def _datasets(run: Any) -> list[dict[str, Any]]:
    inputs = getattr(run, "inputs", None)
    out = []
    for di in getattr(inputs, "dataset_inputs", None) or []:
        ds = di.dataset
        context = next((t.value for t in di.tags or [] if t.key == "mlflow.data.context"), None)
        out.append(
            {
                "name": ds.name,
                "digest": ds.digest,
                "source_type": ds.source_type,
                "context": context,
            }
        )
    return out


def kits(repository: str) -> dict[str, Any]:
    from mlflow_plugin import list_kits

    frame = list_kits(repository)
    return {"repository": mask_uri(repository), "kits": [jsonable(r) for r in frame.to_dict("records")]}
