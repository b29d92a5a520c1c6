"""One real ``mlflow server`` per test session, storing artifacts in the session registry.

The server runs with a SQLite backend, ``--artifacts-destination modelkit://<registry>/ml`` and
``--serve-artifacts``, so it serves both ways of using the plugin:

* proxy mode: experiments created *without* ``artifact_location`` get ``mlflow-artifacts:/<id>``;
  the client talks HTTP to the server, whose plugin writes ``<registry>/ml/<exp_id>:run-<run_id>``;
* client-side plugin mode: experiments created with ``artifact_location="modelkit://…"``; the
  client writes to the registry itself, the server only tracks (and lists them for the UI).

Start-up takes 25-45 s, so the process is launched as early as possible (:func:`mlflow_server_started`
is requested by an autouse fixture of the modules that use the server) and waited for only
when a test needs it. It runs in its own session (``start_new_session``) and is stopped by
killing its whole process group (SIGTERM, SIGKILL after 10 s): uvicorn and huey leave children::

    def test_proxy(mlflow_server):
        mlflow.set_tracking_uri(mlflow_server.url)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _registries import RegistryServer, free_port

__all__ = ["MlflowServer", "mlflow_server", "mlflow_server_started"]

READY_TIMEOUT = 120.0
STOP_GRACE = 10.0


@dataclass
class MlflowServer:
    """A ``mlflow server`` process group; ``url`` is ``http://127.0.0.1:PORT``."""

    workdir: Path
    registry: RegistryServer
    port: int
    proc: subprocess.Popen[bytes] | None = None
    destination_repository: str = "ml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def destination(self) -> str:
        """The ``--artifacts-destination`` URI."""
        return f"modelkit://{self.registry.host}/{self.destination_repository}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mlflow-server.log"

    def start(self) -> None:
        """Launch the server in a new session; returns at once (see :meth:`wait_ready`)."""
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        db = self.workdir / "mlflow.db"
        cmd = [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            self.destination,
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        env = {
            **os.environ,
            "MLFLOW_MODELKIT_NO_PROGRESS": "1",
            "PYTHONUNBUFFERED": "1",
            "XDG_CACHE_HOME": str(self.workdir / "cache"),  # the plugin's stat cache stays in the test dir
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/health`` until it answers 200; on failure stop the server and show the log tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        status = "exited" if self.proc is None or self.proc.poll() is not None else "timed out"
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"mlflow server on {self.url} {status} before /health answered; log tail:\n{tail}")

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL whatever is left after 10 s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_GRACE)
        # children (uvicorn worker, huey consumers) may outlive the leader: kill the group regardless
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def mlflow_server_started(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """The session's server, launched but maybe not ready yet (use :func:`mlflow_server`)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), registry, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(mlflow_server_started: MlflowServer) -> MlflowServer:
    """The session's ``mlflow server``, answering ``/health``."""
    if mlflow_server_started.proc is None:
        pytest.fail(f"mlflow server failed earlier; log tail:\n{mlflow_server_started.log_tail()}")
    mlflow_server_started.wait_ready()
    return mlflow_server_started
