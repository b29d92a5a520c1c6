"""Inside mlflow server the plugin only reaches the admin's registries and directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from mlflow_plugin.drafts.uri import parse_artifact_uri
from mlflow_plugin.tracking.artifact_repo import ModelKitArtifactRepository
from mlflow_plugin.tracking.server_policy import NotAllowedError, check_allowed

RUN = "0123456789abcdef0123456789abcdef"
SERVER = {"_MLFLOW_SERVER_ARTIFACT_DESTINATION": "modelkit://127.0.0.1:5000/ml"}


def test_clients_may_use_any_location() -> None:
    check_allowed(parse_artifact_uri(f"modelkit://elsewhere:443/team/x/{RUN}/artifacts"), environ={})
    check_allowed(parse_artifact_uri(f"modelkit:///etc/x/{RUN}/artifacts"), environ={})


def test_server_allows_its_destination_and_listed_hosts() -> None:
    check_allowed(parse_artifact_uri(f"modelkit://127.0.0.1:5000/ml/3/{RUN}/artifacts"), environ=SERVER)
    env = {**SERVER, "MLFLOW_MODELKIT_ALLOWED_REGISTRIES": "reg.example.com, other:5000"}
    check_allowed(parse_artifact_uri(f"modelkit://other:5000/team/{RUN}/artifacts"), environ=env)


@pytest.mark.parametrize(
    "uri",
    [
        f"modelkit://169.254.169.254/x/{RUN}/artifacts",
        f"modelkit://127.0.0.1:5001/ml/{RUN}/artifacts",
        f"modelkit:///etc/kits/{RUN}/artifacts",
    ],
)
def test_server_refuses_other_hosts_and_directories(uri: str) -> None:
    with pytest.raises(NotAllowedError, match="not allowed on this tracking server"):
        check_allowed(parse_artifact_uri(uri), environ=SERVER)


def test_layout_roots(tmp_path: Path) -> None:
    env = {"_MLFLOW_SERVER_ARTIFACT_ROOT": f"modelkit://{tmp_path}/kits"}
    check_allowed(parse_artifact_uri(f"modelkit://{tmp_path}/kits/team/{RUN}/artifacts"), environ=env)
    with pytest.raises(NotAllowedError):
        check_allowed(parse_artifact_uri(f"modelkit://{tmp_path}/kitsx/team/{RUN}/artifacts"), environ=env)
    env["MLFLOW_MODELKIT_ALLOWED_LAYOUT_ROOTS"] = str(tmp_path)
    check_allowed(parse_artifact_uri(f"modelkit://{tmp_path}/kitsx/team/{RUN}/artifacts"), environ=env)


def test_repository_refuses_in_server_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SERVER.items():
        monkeypatch.setenv(k, v)
    repo = ModelKitArtifactRepository(f"modelkit://203.0.113.9:5000/team/{RUN}/artifacts")
    with pytest.raises(MlflowException, match=r"203\.0\.113\.9:5000 is not allowed"):
        repo.list_artifacts()
