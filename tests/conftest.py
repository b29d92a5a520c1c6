"""Shared pytest fixtures: the real registries live in ``tests/_registries.py``, the real
``mlflow server`` in ``tests/_mlflow_server.py``."""

import os
from collections.abc import Iterator

import pytest
from _mlflow_server import *  # noqa: F403
from _registries import *  # noqa: F403


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stat and scan caches go to a per-session directory, never the developer's ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
