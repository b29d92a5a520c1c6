"""mlflow-modelkit in Jupyter: a server extension for the JupyterLab ModelKits panel, and widgets.

The server extension adds routes under ``<base_url>/mlflow-modelkit/`` (settings, experiments,
runs, a run's detail, scan/publish/verify jobs, kits, jobs; see ``docs/jupyter.md``). It is
enabled by ``jupyter-config/server-config/jupyter_ext.json`` once the package is installed, or
by hand with ``jupyter server extension enable jupyter_ext``. The notebook widgets
``PublishWidget`` and ``VerifyWidget`` (:mod:`jupyter_ext.widgets`) are imported on first use,
so importing this package loads neither ipywidgets nor MLflow nor pandas.

>>> import jupyter_ext
>>> jupyter_ext._jupyter_server_extension_points()
[{'module': 'jupyter_ext'}]
>>> jupyter_ext._jupyter_labextension_paths()
[{'src': 'labextension', 'dest': 'mlflow-modelkit'}]
>>> sorted(jupyter_ext.__all__)
['PublishWidget', 'VerifyWidget']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_ext.widgets import PublishWidget, VerifyWidget

__all__ = ["PublishWidget", "VerifyWidget"]
_LAZY = {"PublishWidget", "VerifyWidget"}
_JOBS = "_mlflow_modelkit_jobs"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from jupyter_ext import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'jupyter_ext' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_ext"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "mlflow-modelkit"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the routes; the job pool lives as long as the server (jupyter_server 2 has no
    unload hook for plain extension modules; idle pool threads end with the process)."""
    from jupyter_ext.handlers import NAMESPACE, setup_route_handlers
    from jupyter_ext.jobs import JobManager

    jobs = JobManager()
    setattr(server_app, _JOBS, jobs)
    setup_route_handlers(server_app.web_app, jobs)
    server_app.log.info("mlflow-modelkit: routes registered under %s/", NAMESPACE)
