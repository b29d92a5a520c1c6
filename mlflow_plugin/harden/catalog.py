"""Catalog calls for notebooks and UIs: MLflow runs with their publish status, kits of a repository.

:func:`list_runs` is one ``MlflowClient.search_runs`` request per page (the tracking server
filters, sorts and pages); :func:`list_kits` reads a repository's tags. Both return pandas
DataFrames (pandas is imported when they are called).

>>> import pathlib, tempfile
>>> from mlflow import MlflowClient
>>> home = pathlib.Path(tempfile.mkdtemp())
>>> client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
>>> exp = client.create_experiment("fraud", artifact_location=f"modelkit://{home}/kits/fraud")
>>> for c in ("0.1", "1.0"):
...     run = client.create_run(exp, run_name=f"C={c}")
...     _ = client.log_param(run.info.run_id, "C", c)
>>> page = list_runs("fraud", params=["C"], order_by=["params.C DESC"], tracking_uri=client.tracking_uri)
>>> page.frame[["run_name", "params.C", "published", "signed"]].values.tolist()
[['C=1.0', '1.0', None, False], ['C=0.1', '0.1', None, False]]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mlflow_plugin.errors import ModelKitError, NotFoundError
from mlflow_plugin.storage.locations import StorageSettings

if TYPE_CHECKING:
    import pandas as pd

# run tags publish_run records (see harden/publish.py, step 6 "record")
TAG_REF, TAG_DIGEST = "modelkit.ref", "modelkit.digest"
TAG_SIGNED, TAG_SCAN = "modelkit.signed", "modelkit.scan"
RUN_COLUMNS = ("run_id", "run_name", "status", "start_time", "end_time")
STATUS_COLUMNS = ("draft", "draft_ref", "published", "digest", "signed", "scan")
KIT_COLUMNS = ("tag", "digest", "size", "type", "created", "draft", "run_id", "signed", "encrypted")
_DRAFT_TAG = re.compile(r"^(?:run-(?P<run>[0-9a-f]{32})|m-[0-9a-f]{32}|tr-[0-9a-f]{32})$")
# signatures, attestations and referrers indexes stored under tags (cosign, the tag-schema fallback)
_SUPPORT_TAG = re.compile(r"^sha256-[0-9a-f]{64}(?:\.[a-z]+)?$")
_ANN_RUN_ID = "dev.mlflow-modelkit.run-id"
_ANN_CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class RunsPage:
    """One page of :func:`list_runs`: the runs as a DataFrame and the token of the next page.

    ``next_page_token`` is ``None`` on the last page; pass it back as ``page_token=`` for the next.

    >>> import pandas as pd
    >>> page = RunsPage(pd.DataFrame({"run_id": ["a" * 32]}), next_page_token=None)
    >>> len(page.frame), page.next_page_token
    (1, None)
    """

    frame: pd.DataFrame
    next_page_token: str | None = None


def list_runs(
    experiment: str,
    *,
    metrics: Sequence[str] = (),
    params: Sequence[str] = (),
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    tracking_uri: str | None = None,
) -> RunsPage:
    """One page of the runs of ``experiment`` (a name or an id) with their publish status.

    The tracking server filters (``filter_string``, MLflow's search syntax, e.g.
    ``"metrics.auc > 0.9 and tags.modelkit.signed = 'true'"``), sorts (``order_by``, e.g.
    ``["metrics.auc DESC"]``; default: newest first) and pages (``max_results`` per page,
    ``page_token`` from the previous :class:`RunsPage`): each page is a single
    ``MlflowClient.search_runs`` request, whatever the number of runs.

    Columns: ``run_id``, ``run_name``, ``status``, ``start_time``, ``end_time`` (UTC datetimes),
    ``metrics.<m>`` for each of ``metrics`` (NaN when absent), ``params.<p>`` for each of
    ``params`` (``None`` when absent), then the kit status: ``draft`` (the run's draft kit as a
    ``modelkit://…:run-<id>`` URI, derived from the artifact location; it exists once the run
    logged an artifact; ``None`` outside a modelkit store), ``draft_ref`` (the same kit as an OCI
    reference for :func:`~mlflow_plugin.inspect`/:func:`~mlflow_plugin.unpack`), ``published``
    (the published reference), ``digest``, ``signed`` (bool) and ``scan`` (the verdict:
    ``clean``, ``high (3 findings)``, ``blocked: …``), read from the ``modelkit.*`` tags
    :func:`~mlflow_plugin.publish_run` records. Those tags are filterable server-side too.

    >>> import pathlib, tempfile
    >>> from mlflow import MlflowClient
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    >>> exp = client.create_experiment("fraud", artifact_location=f"modelkit://{home}/kits/fraud")
    >>> for auc in (0.7, 0.9, 0.8):
    ...     run = client.create_run(exp)
    ...     client.log_metric(run.info.run_id, "auc", auc)
    >>> page = list_runs("fraud", metrics=["auc"], order_by=["metrics.auc DESC"], max_results=2,
    ...                  tracking_uri=client.tracking_uri)
    >>> page.frame["metrics.auc"].tolist(), page.next_page_token is not None
    ([0.9, 0.8], True)
    >>> last = list_runs("fraud", metrics=["auc"], order_by=["metrics.auc DESC"], max_results=2,
    ...                  page_token=page.next_page_token, tracking_uri=client.tracking_uri)
    >>> last.frame["metrics.auc"].tolist(), last.next_page_token
    ([0.7], None)
    >>> page = list_runs("fraud", filter_string="metrics.auc > 0.75", tracking_uri=client.tracking_uri)
    >>> len(page.frame), [d.startswith("modelkit:///") for d in page.frame["draft"]]
    (2, [True, True])
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    try:
        runs = client.search_runs(
            experiment_ids=[experiment_id],
            filter_string=filter_string or "",
            max_results=max_results,
            order_by=list(order_by) if order_by else None,
            page_token=page_token,
        )
    except MlflowException as e:
        first = (e.message.strip().splitlines() or [e.error_code])[0]
        raise ModelKitError(f"cannot list the runs of experiment {experiment!r}: {first}") from None
    return RunsPage(_runs_frame(runs, metrics, params), runs.token or None)


def _experiment_id(client: Any, experiment: str) -> str:
    """The id of the experiment named ``experiment``, or ``experiment`` itself if it is an id."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(experiment)
    if exp is None and experiment.isdigit():
        try:
            exp = client.get_experiment(experiment)
        except MlflowException:
            exp = None
    if exp is None:
        raise ModelKitError(
            f"no experiment named {experiment!r} (nor with that id) in the tracking store: "
            "check the name, or set MLFLOW_TRACKING_URI / tracking_uri="
        )
    return str(exp.experiment_id)


def _runs_frame(runs: Iterable[Any], metrics: Sequence[str], params: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    drafts = _DraftRefs()
    rows: list[dict[str, Any]] = []
    for r in runs:
        info, data = r.info, r.data
        tags = data.tags
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
        }
        for m in metrics:
            row[f"metrics.{m}"] = data.metrics.get(m, float("nan"))
        for p in params:
            row[f"params.{p}"] = data.params.get(p)
        row["draft"], row["draft_ref"] = drafts.of(info.artifact_uri)
        row["published"] = tags.get(TAG_REF)
        row["digest"] = tags.get(TAG_DIGEST)
        row["signed"] = tags.get(TAG_SIGNED) == "true"
        row["scan"] = tags.get(TAG_SCAN)
        rows.append(row)
    columns = [
        *RUN_COLUMNS,
        *(f"metrics.{m}" for m in metrics),
        *(f"params.{p}" for p in params),
        *STATUS_COLUMNS,
    ]
    frame = _frame(rows, columns, floats={f"metrics.{m}" for m in metrics}, bools={"signed"})
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True).astype("datetime64[ms, UTC]")
    return frame


def _frame(
    rows: list[dict[str, Any]],
    columns: Sequence[str],
    floats: Iterable[str] = (),
    bools: Iterable[str] = (),
    ints: Iterable[str] = (),
) -> pd.DataFrame:
    """``rows`` as a DataFrame with stable dtypes whatever the page holds: float64, bool and int64
    where said, ``object`` elsewhere (a missing string is ``None``, never NaN)."""
    import pandas as pd

    dtypes = {**dict.fromkeys(floats, "float64"), **dict.fromkeys(bools, "bool")}
    dtypes.update(dict.fromkeys(ints, "int64"))
    return pd.DataFrame(
        {c: pd.Series([r[c] for r in rows], dtype=dtypes.get(c, object)) for c in columns},
        columns=list(columns),
    )


class _DraftRefs:
    """``(modelkit:// URI, OCI reference)`` of a run's draft kit, from its artifact URI (no request)."""

    def __init__(self) -> None:
        self._destination: str | bool | None = False  # not read yet

    def of(self, artifact_uri: str | None) -> tuple[str | None, str | None]:
        from mlflow_plugin.drafts.uri import parse_artifact_uri

        uri = artifact_uri or ""
        if uri.startswith("mlflow-artifacts:"):
            uri = self._proxied(uri) or ""
        if not uri.startswith("modelkit:"):
            return None, None
        try:
            loc = parse_artifact_uri(uri)
        except ModelKitError:
            return None, None
        if loc.tag is None or loc.read_only:
            return None, None
        draft = replace(loc, read_only=True, path="", digest=None)
        return str(draft), f"{loc.store}:{loc.tag}"

    def _proxied(self, uri: str) -> str | None:
        """A proxied run's artifact URI mapped through ``publish.artifacts_destination``."""
        from mlflow_plugin.harden.publish import resolve_artifact_uri

        if self._destination is False:
            from mlflow_plugin.config import load_config

            self._destination = load_config().artifacts_destination
        if not isinstance(self._destination, str):
            return None
        try:
            return resolve_artifact_uri(uri, self._destination)
        except ModelKitError:
            return None


def list_kits(repository: str, *, settings: StorageSettings | None = None) -> pd.DataFrame:
    """The kits in ``repository`` (``HOST/REPO`` or ``oci:DIR``), one row per tag, as a DataFrame.

    Columns: ``tag``, ``digest``, ``size`` (manifest, config and layers, bytes), ``type``
    (``modelkit`` or the artifact's type), ``created`` (UTC datetime from the manifest, ``NaT``
    when absent), ``draft`` (True for a run's, logged model's or trace's draft: tags ``run-…``,
    ``m-…``, ``tr-…``; False for published tags), ``run_id`` (of a run draft or a published run),
    ``signed`` (a cosign signature referrer is attached; *not verified*: use
    :func:`~mlflow_plugin.verify` for that; drafts are never signed and are not looked up),
    ``encrypted`` (layers encrypted for recipients, ``publish --encrypt-for``).
    Signature and referrers-index tags (``sha256-…``) are not listed. ``settings`` default to
    the admin config's storage settings.

    >>> import pathlib, tempfile
    >>> from mlflow_plugin import pack
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> _ = (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\\nmodel: {path: model.bin}\\n")
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:run-" + "0" * 32)
    >>> kits = list_kits(f"oci:{kits}/fraud")
    >>> kits[["tag", "type", "draft", "signed"]].values.tolist()
    [['run-00000000000000000000000000000000', 'modelkit', True, False], ['v1', 'modelkit', False, False]]
    >>> kits["run_id"].tolist()
    ['00000000000000000000000000000000', None]
    """
    import pandas as pd

    from mlflow_plugin.kit.mediatypes import KIT_CONFIG
    from mlflow_plugin.storage.locations import open_location
    from mlflow_plugin.storage.mediatypes import OCI_INDEX
    from mlflow_plugin.trust.attach import list_attachments
    from mlflow_plugin.trust.sealed import is_encrypted_manifest

    if settings is None:
        from mlflow_plugin.config import load_config

        settings = load_config().storage_settings()
    repo, _loc = open_location(repository, settings=settings)
    rows: list[dict[str, Any]] = []
    signed: dict[str, bool] = {}
    try:
        for tag in repo.list_tags():
            if _SUPPORT_TAG.match(tag):
                continue
            try:
                data, mt, digest = repo.get_manifest(tag)
            except NotFoundError:
                continue  # deleted while we listed
            m = json.loads(data)
            is_index = mt == OCI_INDEX or m.get("mediaType") == OCI_INDEX
            size = len(data) + (0 if is_index else sum(d.size for d in repo.iter_blobs_of(m)))
            kind = (
                "modelkit"
                if (m.get("config") or {}).get("mediaType") == KIT_CONFIG
                else str(m.get("artifactType") or m.get("mediaType") or mt)
            )
            ann = m.get("annotations") or {}
            draft = _DRAFT_TAG.match(tag)
            if draft is None and digest not in signed:
                signed[digest] = any(a.kind == "signature" for a in list_attachments(repo, digest))
            rows.append(
                {
                    "tag": tag,
                    "digest": digest,
                    "size": size,
                    "type": kind,
                    "created": ann.get(_ANN_CREATED),
                    "draft": draft is not None,
                    "run_id": (draft.group("run") if draft else ann.get(_ANN_RUN_ID)) or None,
                    "signed": False if draft else signed[digest],
                    "encrypted": is_encrypted_manifest(m),
                }
            )
    finally:
        repo.close()
    frame = _frame(rows, KIT_COLUMNS, ints={"size"}, bools={"draft", "signed", "encrypted"})
    created = pd.to_datetime(frame["created"], utc=True, errors="coerce", format="ISO8601")
    frame["created"] = created.astype("datetime64[ms, UTC]")
    return frame


__all__ = ["RunsPage", "list_kits", "list_runs"]
