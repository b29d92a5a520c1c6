"""Static model scanning: nothing is ever unpickled, imported, loaded or executed.

The entry point is :func:`mlflow_plugin.scan` (implemented by :func:`mlflow_plugin.scanner.api.scan`);
the report types live in :mod:`mlflow_plugin.scanner.report`. This package imports nothing from the
rest of mlflow_plugin except the error types, the kit format (to stream layers) and storage (to open
kit references).
"""
