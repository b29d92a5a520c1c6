"""Static model scanning: nothing is ever unpickled, imported, loaded or executed.

The package itself is callable, so the public API reads naturally::

    >>> from mlflow_plugin import scan                       # doctest: +SKIP
    >>> report = scan("./model_dir")                         # == mlflow_plugin.scan.api.scan(...)
    >>> report.failed("high")

while its modules stay importable (``from mlflow_plugin.scan.report import Severity``). This
package imports nothing from the rest of mlflow_plugin except the error types and, for kit
references, the stores.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import scan

        return scan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
