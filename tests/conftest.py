"""Shared pytest fixtures: the real registries live in ``tests/_registries.py``."""

from _mlflow_server import *  # noqa: F403
from _registries import *  # noqa: F403
