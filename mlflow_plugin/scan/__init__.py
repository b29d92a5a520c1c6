"""Static model scanning: nothing is ever unpickled, imported, loaded or executed.

The public entry point is :func:`mlflow_plugin.scan.api.scan` (re-exported as
``mlflow_plugin.scan``). This package imports nothing from the rest of mlflow_plugin except the
error types, so it stays usable on its own.
"""
