"""mlflow-modelkit: every MLflow run is a KitOps ModelKit in an OCI registry or local layout.

The stable public API (everything else is implementation detail)::

    from mlflow_plugin import pack, push, pull, unpack, inspect, scan

    digest = pack("./my-model", "oci:./kits/fraud:v1")
    push("oci:./kits/fraud:v1", "localhost:5000/team/fraud:v1")
    unpack("localhost:5000/team/fraud:v1", "./out", filters=["model"])
    report = scan("./out")              # static scan, nothing is executed
    report.failed("high")               # True if any finding is high or critical
    result = publish_run(run_id, tag="v1", key="keys/cosign.key")   # hardened, signed, scanned kit
    verify(result.reference, keys=["keys/cosign.pub"]).ok
"""

from __future__ import annotations

from mlflow_plugin._version import __version__
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.publish import publish_run
from mlflow_plugin.harden.verify import verify
from mlflow_plugin.packaging import inspect, list_tags, pack, pull, push, unpack
from mlflow_plugin.scanner.api import scan

__all__ = [
    "ModelKitError",
    "__version__",
    "inspect",
    "list_tags",
    "pack",
    "publish_run",
    "pull",
    "push",
    "scan",
    "unpack",
    "verify",
]
