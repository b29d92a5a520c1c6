"""The server routes under ``<base_url>/mlflow-modelkit/`` (the contract: ``docs/jupyter.md``).

One base handler, :class:`ModelKitHandler`, turns every failure into ``{"error": "<one line>"}``
with the contract's status: 400 bad input (and ``ModelKitError``), 404 no such run/job/kit, 409
a publish of that run is already running, 500 unexpected (a generic line naming the route; the
redacted traceback goes to the server log at DEBUG). Every verb is ``@tornado.web.authenticated``;
POSTs carry JSON and go through Jupyter's XSRF check. Blocking reads run in a thread
(``asyncio.to_thread``); scans, publishes and verifies are jobs (:mod:`jupyter_ext.jobs`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import traceback
from types import TracebackType
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from jupyter_ext import validate, views, work
from jupyter_ext.jobs import Busy, Job, JobManager, describe_error
from jupyter_ext.safe import one_line, redact
from jupyter_ext.validate import BadInput

NAMESPACE = "mlflow-modelkit"
JOBS_SETTING = "mlflow_modelkit_jobs"
PUBLISH_FIELDS = {
    "run_id",
    "tag",
    "model",
    "repository",
    "key",
    "passphrase",
    "register_as",
    "accept",
    "reason",
    "tracking_uri",
}
SCAN_FIELDS = {"tracking_uri"}
VERIFY_FIELDS = {"reference", "deep"}


def _status_and_line(e: BaseException | None, status: int, route: str, method: str) -> tuple[int, str]:
    """The response status and one-line message for ``e`` (never a traceback or a secret)."""
    from mlflow_plugin import ModelKitError, NotFoundError

    if isinstance(e, BadInput):
        return e.status, one_line(e.message)
    if isinstance(e, views.NotFound):
        return 404, one_line(str(e))
    if isinstance(e, Busy):
        return 409, one_line(str(e))
    if isinstance(e, NotFoundError):
        return 404, one_line(str(e))
    if isinstance(e, ModelKitError):
        return 400, one_line(str(e))
    mlflow_exc = sys.modules.get("mlflow.exceptions")
    if mlflow_exc is not None and isinstance(e, mlflow_exc.MlflowException):
        code = {"RESOURCE_DOES_NOT_EXIST": 404, "INVALID_PARAMETER_VALUE": 400, "BAD_REQUEST": 400}
        return code.get(e.error_code, 500), describe_error(e, route)
    if isinstance(e, tornado.web.HTTPError):
        return e.status_code, one_line(e.log_message or e.reason or f"HTTP {e.status_code}")
    if e is None:
        return status, f"{method} {route}: HTTP {status}"
    return 500, f"{method} {route} failed unexpectedly: the details are in the server log at DEBUG level"


class ModelKitHandler(APIHandler):
    """Base of every route: JSON in and out, errors as ``{"error": one line}``."""

    route = "mlflow-modelkit"

    @property
    def jobs(self) -> JobManager:
        manager: JobManager = self.settings[JOBS_SETTING]
        return manager

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        e = exc_info[1] if exc_info else None
        status, line = _status_and_line(e, status_code, self.route, self.request.method or "")
        self.set_status(status)
        self.finish(json.dumps({"error": line}))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status, line = _status_and_line(value, 500, self.route, self.request.method or "")
        if status < 500 or value is None:
            self.log.debug("mlflow-modelkit %s %s: %s: %s", self.request.method, self.route, status, line)
            return
        detail = "".join(traceback.format_exception(typ, value, tb)) if typ is not None else repr(value)
        self.log.debug("mlflow-modelkit %s %s failed: %s", self.request.method, self.route, redact(detail))

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, allow_nan=False))

    def query(self, name: str) -> str | None:
        """The raw last value of query argument ``name`` (tornado's accessors would silently
        turn control characters into spaces; validation wants to see them)."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"query argument {name} is not UTF-8") from None

    def body(self, allowed: set[str]) -> dict[str, Any]:
        data = validate.body_object(self.request.body or b"")
        validate.only_keys(data, allowed)
        return data

    def tracking_uri(self, given: Any = None) -> str:
        """The panel's ``tracking_uri`` (query or body), validated, else the server's."""
        if given is None:
            given = self.query("tracking_uri")
        return views.resolve_tracking_uri(validate.tracking_uri(given) if given else None)

    def job_reply(self, job: Job) -> None:
        self.reply(job.to_json(), status=202)


class SettingsHandler(ModelKitHandler):
    route = "settings"

    @tornado.web.authenticated
    async def get(self) -> None:
        uri = self.tracking_uri()
        self.reply(await asyncio.to_thread(views.settings, uri))


class ExperimentsHandler(ModelKitHandler):
    route = "experiments"

    @tornado.web.authenticated
    async def get(self) -> None:
        uri = self.tracking_uri()
        self.reply(await asyncio.to_thread(views.experiments, uri))


class RunsHandler(ModelKitHandler):
    route = "runs"

    @tornado.web.authenticated
    async def get(self) -> None:
        uri = self.tracking_uri()
        experiment = self.query("experiment")
        if not experiment:
            raise BadInput("experiment is required: runs?experiment=NAME_OR_ID")
        call = functools.partial(
            views.runs,
            uri,
            validate.experiment(experiment),
            metrics=validate.columns(self.query("metrics"), "metrics"),
            params=validate.columns(self.query("params"), "params"),
            filter_string=validate.filter_string(self.query("filter")),
            order_by=validate.order_by(self.query("order_by")),
            max_results=validate.page_size(self.query("max_results")),
            page_token=validate.page_token(self.query("page_token")),
        )
        self.reply(await asyncio.to_thread(call))


class RunHandler(ModelKitHandler):
    route = "runs/<run_id>"

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        rid = validate.run_id(run_id)
        uri = self.tracking_uri()
        self.reply(await asyncio.to_thread(views.run_detail, uri, rid))


class ScanHandler(ModelKitHandler):
    route = "runs/<run_id>/scan"

    @tornado.web.authenticated
    async def post(self, run_id: str) -> None:
        rid = validate.run_id(run_id)
        data = self.body(SCAN_FIELDS)
        uri = self.tracking_uri(data.get("tracking_uri"))
        await asyncio.to_thread(views.get_run, uri, rid)  # 404 now rather than in the job
        self.job_reply(self.jobs.submit("scan", work.scan_run(uri, rid), subject=rid))


class PublishHandler(ModelKitHandler):
    route = "publish"

    @tornado.web.authenticated
    async def post(self) -> None:
        data = self.body(PUBLISH_FIELDS)
        if "run_id" not in data or "tag" not in data:
            raise BadInput("publish needs run_id and tag: {run_id, tag, key?, passphrase?, …}")
        rid = validate.run_id(data["run_id"])
        tag = validate.tag(data["tag"])
        opt = {k: data.get(k) for k in ("model", "repository", "key", "register_as")}
        model = validate.name(opt["model"], "model") if opt["model"] else None
        repository = validate.repository(opt["repository"]) if opt["repository"] else None
        key = validate.key_path(opt["key"]) if opt["key"] else None
        register_as = validate.name(opt["register_as"], "register_as") if opt["register_as"] else None
        accept = validate.accept_list(data.get("accept"))
        reason = validate.reason(data.get("reason"))
        raw = data.pop("passphrase", None)
        password = validate.passphrase(raw) if raw not in (None, "") else None
        del raw
        uri = self.tracking_uri(data.get("tracking_uri"))
        await asyncio.to_thread(views.get_run, uri, rid)
        job = self.jobs.submit(
            "publish",
            work.publish(
                uri,
                rid,
                tag,
                model=model,
                repository=repository,
                key=key,
                password=password,
                register_as=register_as,
                accept=accept,
                reason=reason,
            ),
            subject=rid,
            exclusive=rid,
            secrets=[password] if password else [],
        )
        self.job_reply(job)


class VerifyHandler(ModelKitHandler):
    route = "verify"

    @tornado.web.authenticated
    async def post(self) -> None:
        data = self.body(VERIFY_FIELDS)
        if "reference" not in data:
            raise BadInput("verify needs a reference: {reference, deep?}")
        ref = validate.reference(data["reference"])
        deep = validate.boolean(data.get("deep"), "deep", default=False)
        self.job_reply(self.jobs.submit("verify", work.verify(ref, deep), subject=ref))


class KitsHandler(ModelKitHandler):
    route = "kits"

    @tornado.web.authenticated
    async def get(self) -> None:
        repository = self.query("repository")
        if not repository:
            raise BadInput("repository is required: kits?repository=HOST/REPO or oci:DIR")
        repo = validate.repository(repository)
        self.reply(await asyncio.to_thread(views.kits, repo))


class JobsHandler(ModelKitHandler):
    route = "jobs"

    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply({"jobs": [j.to_json(with_result=False) for j in self.jobs.list()]})


class JobHandler(ModelKitHandler):
    route = "jobs/<id>"

    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        jid = validate.job_id(job_id)
        job = self.jobs.get(jid)
        if job is None:
            raise views.NotFound(f"no job {jid} on this server (finished jobs are kept for an hour)")
        self.reply(job.to_json())


ROUTES: list[tuple[str, type[ModelKitHandler]]] = [
    ("settings", SettingsHandler),
    ("experiments", ExperimentsHandler),
    ("runs", RunsHandler),
    (r"runs/([^/]+)", RunHandler),
    (r"runs/([^/]+)/scan", ScanHandler),
    ("publish", PublishHandler),
    ("verify", VerifyHandler),
    ("kits", KitsHandler),
    ("jobs", JobsHandler),
    (r"jobs/([^/]+)", JobHandler),
]


def setup_route_handlers(web_app: Any, jobs: JobManager) -> None:
    """Register the routes on ``web_app`` and keep ``jobs`` in its settings."""
    web_app.settings[JOBS_SETTING] = jobs
    # a tracking URI in a query string is scrubbed from the request log like a token
    scrub = list(web_app.settings.get("extra_log_scrub_param_keys") or [])
    web_app.settings["extra_log_scrub_param_keys"] = [*scrub, "tracking_uri", "passphrase", "password"]
    base = url_path_join(web_app.settings["base_url"], NAMESPACE)
    web_app.add_handlers(".*$", [(url_path_join(base, path) + "/?$", cls) for path, cls in ROUTES])
