"""Long work of the server routes (scan, publish, verify) as jobs on a small thread pool.

A job reports ``mlflow_plugin``'s progress convention ``(stage, done, total)``; the panel polls
``GET jobs/<id>``. A second publish of a run whose publish is still queued or running is refused
(:class:`Busy`, HTTP 409). Finished jobs are kept for a bounded time and number. Secrets given to
a job (a key passphrase) live only in the work function's closure: they are used to redact the
job's error line and are never stored on the :class:`Job`.

>>> jobs = JobManager(max_workers=1)
>>> def work(progress):
...     progress("count", 1, 2)
...     progress("count", 2, 2)
...     return {"answer": 42}
>>> job = jobs.submit("demo", work)
>>> jobs.wait(job.id, timeout=10).to_json()["result"]
{'answer': 42}
>>> job.to_json()["state"], job.to_json()["stages"]
('done', ['count'])
>>> jobs.shutdown()
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jupyter_ext.safe import one_line, redact, rfc3339

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
Work = Callable[[Progress], dict[str, Any]]
STATES = ("queued", "running", "done", "failed")
_UNREACHABLE = re.compile(r"API request to (\S+?)/api/\S* failed with exception")
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")


class Busy(Exception):
    """The run already has a publish queued or running (HTTP 409)."""


class JobFailed(Exception):
    """A job's expected failure: a one-line ``message`` plus fields for the job's JSON."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


@dataclass
class Job:
    id: str
    kind: str
    subject: str
    state: str = "queued"
    stage: str | None = None
    done: int = 0
    total: int = 0
    stages: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            if stage != self.stage:
                self.stage = stage
                if stage not in self.stages:
                    self.stages.append(stage)
            self.done, self.total = int(done), int(total)

    @property
    def over(self) -> bool:
        return self.state in ("done", "failed")

    def to_json(self, with_result: bool = True) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                "id": self.id,
                "kind": self.kind,
                "subject": self.subject,
                "state": self.state,
                "stage": self.stage,
                "done": self.done,
                "total": self.total,
                "stages": list(self.stages),
                "created": _time(self.created),
                "started": _time(self.started),
                "finished": _time(self.finished),
            }
            if self.error is not None:
                out["error"] = self.error
            if with_result:
                if self.result is not None:
                    out["result"] = self.result
                out.update(self.extra)
            elif self.extra.get("blocked"):
                out["blocked"] = True
            return out


def _time(t: float | None) -> str | None:
    import datetime as dt

    return None if t is None else rfc3339(dt.datetime.fromtimestamp(t, tz=dt.UTC))


class JobManager:
    """The jobs of one server: a thread pool, the job table and the runs being published."""

    def __init__(self, max_workers: int = 4, keep: int = 200, max_age: float = 3600.0) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="modelkit-job")
        self._keep, self._max_age = keep, max_age
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, concurrent.futures.Future[None]] = {}
        self._publishing: set[str] = set()
        self._lock = threading.Lock()

    def submit(
        self,
        kind: str,
        work: Work,
        *,
        subject: str = "",
        exclusive: str | None = None,
        secrets: Iterable[str | bytes] = (),
    ) -> Job:
        """Queue ``work(progress)``; ``exclusive`` (a run id) refuses a second job holding the same key."""
        job = Job(uuid.uuid4().hex, kind, subject)
        with self._lock:
            if exclusive is not None:
                if exclusive in self._publishing:
                    raise Busy(f"run {exclusive} is already being published: wait for that job to finish")
                self._publishing.add(exclusive)
            self._prune()
            self._jobs[job.id] = job
        try:
            fut = self._pool.submit(self._execute, job, work, exclusive, tuple(secrets))
        except RuntimeError:  # the pool is shut down
            with self._lock:
                self._jobs.pop(job.id, None)
                if exclusive is not None:
                    self._publishing.discard(exclusive)
            raise
        with self._lock:
            self._futures[job.id] = fut
        return job

    def _execute(self, job: Job, work: Work, exclusive: str | None, secrets: tuple[str | bytes, ...]) -> None:
        with job._lock:
            job.state, job.started = "running", time.time()
        result: dict[str, Any] | None = None
        error: str | None = None
        extra: dict[str, Any] = {}
        try:
            result = work(job.progress)
        except JobFailed as e:
            error, extra = one_line(e.message, secrets), e.extra
        except Exception as e:  # every failure becomes the job's one line
            error = describe_error(e, f"{job.kind} job", secrets)
        finally:
            with self._lock:
                if exclusive is not None:
                    self._publishing.discard(exclusive)
                self._futures.pop(job.id, None)
        with job._lock:
            job.result, job.error, job.extra = result, error, extra
            job.state = "failed" if error is not None else "done"
            job.finished = time.time()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            self._prune()
            return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is over (tests and tools; the routes never wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.over:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state}")
            time.sleep(0.02)

    def _prune(self) -> None:
        """Drop finished jobs older than ``max_age``, then the oldest finished past ``keep``."""
        now = time.time()
        over = sorted((j for j in self._jobs.values() if j.over), key=lambda j: j.finished or 0)
        for j in over:
            if now - (j.finished or now) > self._max_age:
                del self._jobs[j.id]
        over = [j for j in over if j.id in self._jobs]
        excess = len(self._jobs) - self._keep
        for j in over[: max(0, excess)]:
            del self._jobs[j.id]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def describe_error(e: BaseException, what: str, secrets: Iterable[str | bytes] = ()) -> str:
    """One line for ``e``: the message of a ``ModelKitError``, the first line of an MLflow error,
    else a generic line naming ``what`` (the redacted traceback goes to the log at DEBUG)."""
    import sys

    from mlflow_plugin import ModelKitError

    secrets = tuple(secrets)
    if isinstance(e, ModelKitError):
        return one_line(str(e), secrets)
    mlflow_exc = sys.modules.get("mlflow.exceptions")
    if mlflow_exc is not None and isinstance(e, mlflow_exc.MlflowException):
        message = e.message.strip()
        down = _UNREACHABLE.search(message)
        if down:
            errno_text = _ERRNO.search(message)
            reason = errno_text.group(0) if errno_text else "no answer"
            return one_line(
                f"the tracking server {down.group(1)} is unreachable ({reason}): is it running? "
                "check the tracking URI (panel settings or MLFLOW_TRACKING_URI)",
                secrets,
            )
        first = (message.splitlines() or [str(e.error_code)])[0]
        return one_line(f"MLflow: {first}", secrets)
    if log.isEnabledFor(logging.DEBUG):
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        log.debug("%s failed unexpectedly: %s", what, redact(tb, secrets))
    return (
        f"{what} failed unexpectedly ({type(e).__name__}): the details are in the server log at DEBUG level"
    )
