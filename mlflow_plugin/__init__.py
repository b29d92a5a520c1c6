"""mlflow-modelkit: every MLflow run is a KitOps ModelKit in an OCI registry or local layout.

>>> import pathlib, tempfile
>>> from mlflow import MlflowClient
>>> from mlflow_plugin import (generate_keypair, list_kits, list_runs, provenance, publish_run,
...                            scan, unpack, verify)
>>> home = pathlib.Path(tempfile.mkdtemp())
>>> client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
>>> exp = client.create_experiment("fraud", artifact_location=f"modelkit://{home}/kits/fraud")
>>> run = client.create_run(exp, run_name="baseline")                 # or mlflow.start_run()
>>> _ = client.log_param(run.info.run_id, "C", "0.5")
>>> client.log_metric(run.info.run_id, "auc", 0.91)
>>> _ = (home / "model.txt").write_text("weights")
>>> client.log_artifact(run.info.run_id, str(home / "model.txt"))     # lands in the run's draft kit
>>> client.set_terminated(run.info.run_id)
>>> keys = generate_keypair(str(home / "keys"), password="")
>>> kit = publish_run(run.info.run_id, "v1", key=keys.private, tracking_uri=client.tracking_uri)
>>> kit.reference.endswith("/kits/fraud:v1"), str(kit.scan.max_severity)     # scanned, signed
(True, 'None')
>>> verify(kit.reference, keys=[keys.public]).ok
True
>>> provenance(kit.reference, keys=[keys.public]).metrics
{'auc': 0.91}
>>> runs = list_runs("fraud", metrics=["auc"], tracking_uri=client.tracking_uri).frame
>>> runs[["run_name", "metrics.auc", "signed", "scan"]].values.tolist()
[['baseline', 0.91, True, 'clean']]
>>> kits = list_kits(f"oci:{home}/kits/fraud")
>>> kits[["draft", "signed"]].values.tolist()        # the run's draft and the published kit
[[True, False], [False, True]]
>>> unpack(kit.reference, str(home / "out"))
['model.txt', 'Kitfile']
>>> scan(str(home / "out")).failed("high")
False

The public API is what this module exports (``__all__``); everything else is implementation:

* **kits** -- :func:`pack`, :func:`push`, :func:`pull`, :func:`unpack`, :func:`inspect`
  (a :class:`KitInfo`; ``.layers()`` lists each layer's files), :func:`list_tags` (``oci:DIR:TAG``
  layouts and ``HOST/REPO:TAG`` registries); :func:`parse_reference` (a :class:`KitRef`) and
  :func:`check_tag` check references without fetching; :func:`draft_reference` names the draft
  kit behind an MLflow artifact URI;
* **scanning** -- :func:`scan` (files, directories, kits; nothing is executed) giving a
  :class:`ScanReport` of :class:`Finding` s with a :class:`Severity`; :class:`Policy` extends
  the pickle allowlist;
* **hardening** -- :func:`publish_run` (a :class:`PublishResult`, or :class:`PublishBlocked`),
  :func:`verify` against a :class:`TrustPolicy` (a :class:`VerifyResult`), :func:`provenance`
  (a :class:`Provenance`), :func:`generate_keypair` (a :class:`KeyPair`), :func:`rescan`
  (re-scan a repository's published kits; :class:`RescanResult` s); :data:`PUBLISH_STAGES` are
  the stages publish reports progress for;
* **catalog** -- :func:`list_runs` (a :class:`RunsPage`) and :func:`list_kits` (DataFrames);
* **configuration** -- :func:`load_config` (a :class:`Config`: the admin's TOML file and
  ``MLFLOW_MODELKIT_*`` variables, used for whatever a call is not given);
* **errors** -- every failure is a :class:`ModelKitError` (one line: what failed and how to fix
  it), or one of its subclasses.

Every long call takes ``progress(stage, done, total)`` (:data:`Progress`, documented in
:mod:`mlflow_plugin.progress`). Importing this package is light: MLflow and pandas are imported
by the calls that need them.
"""

from __future__ import annotations

from mlflow_plugin._version import __version__
from mlflow_plugin.api import (
    KeyPair,
    KitRef,
    Provenance,
    check_tag,
    draft_reference,
    generate_keypair,
    parse_reference,
    provenance,
    scan,
)
from mlflow_plugin.config import Config, load_config
from mlflow_plugin.errors import (
    AuthError,
    DigestMismatchError,
    DiskError,
    ExistsError,
    KitfileError,
    LimitExceededError,
    ModelKitError,
    NotFoundError,
    ReferenceFormatError,
    RegistryError,
    UnsafeArchiveError,
)
from mlflow_plugin.harden.catalog import RunsPage, list_kits, list_runs
from mlflow_plugin.harden.publish import STAGES as PUBLISH_STAGES
from mlflow_plugin.harden.publish import PublishBlocked, PublishResult, publish_run
from mlflow_plugin.harden.rescan import RescanResult, rescan
from mlflow_plugin.harden.verify import TrustPolicy, VerifyResult, verify
from mlflow_plugin.packaging import KitInfo, PackResult, inspect, list_tags, pack, pull, push, unpack
from mlflow_plugin.progress import Progress
from mlflow_plugin.scanner.context import Policy
from mlflow_plugin.scanner.report import Finding, ScanReport, Severity

__all__ = [
    "PUBLISH_STAGES",
    "AuthError",
    "Config",
    "DigestMismatchError",
    "DiskError",
    "ExistsError",
    "Finding",
    "KeyPair",
    "KitInfo",
    "KitRef",
    "KitfileError",
    "LimitExceededError",
    "ModelKitError",
    "NotFoundError",
    "PackResult",
    "Policy",
    "Progress",
    "Provenance",
    "PublishBlocked",
    "PublishResult",
    "ReferenceFormatError",
    "RegistryError",
    "RescanResult",
    "RunsPage",
    "ScanReport",
    "Severity",
    "TrustPolicy",
    "UnsafeArchiveError",
    "VerifyResult",
    "__version__",
    "check_tag",
    "draft_reference",
    "generate_keypair",
    "inspect",
    "list_kits",
    "list_runs",
    "list_tags",
    "load_config",
    "pack",
    "parse_reference",
    "provenance",
    "publish_run",
    "pull",
    "push",
    "rescan",
    "scan",
    "unpack",
    "verify",
]
