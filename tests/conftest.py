"""Shared pytest fixtures: the real registries live in ``tests/_registries.py``."""

from _registries import *  # noqa: F403
