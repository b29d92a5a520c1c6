"""The package version: one source, the installed distribution's metadata (``pyproject.toml``).

>>> isinstance(__version__, str) and __version__.count(".") >= 2
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlflow-modelkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
