"""pytest-jupyter for the tests of this directory only, and a server that loads ``jupyter_ext``.

pytest refuses ``pytest_plugins`` outside the root conftest, and there the plugin's autouse
fixtures (a fresh event loop and a ServerApp cleanup around *every* test) and its
``pytest_pyfunc_call`` hook would apply to the whole suite. Importing the plugin's fixtures and
hooks into this conftest scopes them to ``tests/jupyter``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("jupyter_ext") is None:  # an editable install made before the package existed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """A server with only this extension, requiring authentication everywhere."""
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_ext": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        }
    }
