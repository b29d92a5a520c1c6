"""The public API is pinned: ``mlflow_plugin.__all__``, every signature, and a runnable example in
every docstring. Changing any of them is an API change: update this table on purpose.
"""

from __future__ import annotations

import doctest
import inspect
import subprocess
import sys
import tomllib
from pathlib import Path

import mlflow_plugin

ROOT = Path(__file__).resolve().parents[1]

ALL = [
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
ERRORS = [
    "AuthError",
    "DigestMismatchError",
    "DiskError",
    "ExistsError",
    "KitfileError",
    "LimitExceededError",
    "ModelKitError",
    "NotFoundError",
    "PublishBlocked",
    "ReferenceFormatError",
    "RegistryError",
    "UnsafeArchiveError",
]
# str(inspect.signature(...)) of every public function and class (exceptions and the enum aside)
SIGNATURES = {
    "Config": (
        "(insecure_registries: 'list[str]' = <factory>, "
        "allowed_registries: 'list[str]' = <factory>, "
        "allowed_layout_roots: 'list[str]' = <factory>, ca_bundle: 'str | None' = None, "
        "signing_key: 'str | None' = None, trusted_keys: 'list[str]' = <factory>, "
        "scan_fail_on: 'str' = 'high', allow_globals: 'list[str]' = <factory>, "
        "allow_modules: 'list[str]' = <factory>, code_in_functions: 'str' = 'medium', "
        "scan_embedded_code: 'str' = 'medium', scan_pii: 'str' = 'info', "
        "accept_max_severity: 'str' = 'high', require_signature: 'bool' = False, "
        "required_attestations: 'list[str]' = <factory>, max_severity: 'str' = 'medium', "
        "register_model: 'bool' = False, artifacts_destination: 'str | None' = None, "
        "redact_params: 'list[str]' = <factory>, publish_include: 'list[str]' = <factory>, "
        "max_unpack_bytes: 'int' = 1099511627776, "
        "max_unpack_ratio: 'int' = 1000, max_unpack_entries: 'int' = 1000000, "
        "encrypt_for: 'list[str]' = <factory>, decrypt_keys: 'list[str]' = <factory>, "
        "registry_credential_helpers: 'dict[str, str]' = <factory>, "
        "registry_tls: 'dict[str, dict[str, str]]' = <factory>, "
        "path: 'str | None' = None, _sources: 'dict[str, str]' = <factory>) -> None"
    ),
    "Finding": (
        "(path: 'str', severity: 'Severity', rule: 'str', message: 'str', evidence: 'str' = '') -> None"
    ),
    "KeyPair": "(private: ForwardRef('str'), public: ForwardRef('str'))",
    "KitRef": "(store: 'str', tag: 'str | None' = None, digest: 'str | None' = None) -> None",
    "KitInfo": (
        "(reference: 'str', digest: 'str', media_type: 'str', manifest: 'dict[str, Any]', "
        "manifest_bytes: 'bytes', config: 'dict[str, Any] | None', encrypted: 'bool' = False, "
        "sealed: 'bool' = False) -> None"
    ),
    "PackResult": (
        "(digest: 'str', manifest: 'bytes', config: 'bytes', layers: 'list[Descriptor]', "
        "target: 'str', warnings: 'list[str]' = <factory>) -> None"
    ),
    "Policy": (
        "(allow_globals: 'frozenset[str]' = frozenset(), "
        "allow_modules: 'frozenset[str]' = frozenset(), code_in_functions: 'str' = 'medium', "
        "embedded_code: 'str' = 'medium', pii: 'str' = 'info') -> None"
    ),
    "Provenance": (
        "(subject_name: 'str', subject_digest: 'str', run_id: 'str | None' = None, "
        "run_name: 'str | None' = None, experiment_id: 'str | None' = None, "
        "experiment: 'str | None' = None, user: 'str | None' = None, status: 'str | None' = None, "
        "params: 'dict[str, str]' = <factory>, metrics: 'dict[str, float]' = <factory>, "
        "datasets: 'list[ProvenanceDataset]' = <factory>, git_commit: 'str | None' = None, "
        "source: 'str | None' = None, builder: 'str | None' = None, "
        "started_on: 'datetime | None' = None, finished_on: 'datetime | None' = None, "
        "tracking_uri: 'str | None' = None, kit_ref: 'str | None' = None, statement: 'dict[str, "
        "Any]' = <factory>) -> None"
    ),
    "PublishBlocked": "(message: 'str', report: 'Any') -> 'None'",
    "PublishResult": (
        "(reference: 'str', digest: 'str', tag: 'str', store: 'str', scan: 'Any', "
        "attachments: 'dict[str, str]' = <factory>, reused_signatures: 'bool' = False, "
        "model_version: 'str | None' = None, provenance: 'dict[str, Any] | None' = None, "
        "accepted: 'list[tuple[Any, Any]]' = <factory>, verdict: 'str' = '', "
        "encrypted_for: 'list[str]' = <factory>) -> None"
    ),
    "RescanResult": (
        "(repository: 'str', digest: 'str', tags: 'list[str]', previous: 'str | None', "
        "current: 'str | None', action: 'str' = 'unchanged', reason: 'str' = '', "
        "previous_at: 'str | None' = None, attestation: 'str | None' = None, "
        "fails_policy: 'bool' = False, added: 'list[str]' = <factory>, "
        "resolved: 'list[str]' = <factory>) -> None"
    ),
    "RunsPage": "(frame: 'pd.DataFrame', next_page_token: 'str | None' = None) -> None",
    "ScanReport": (
        "(target: 'str', files: 'list[FileRecord]' = <factory>, "
        "findings: 'list[Finding]' = <factory>, scanner: 'str' = 'mlflow-modelkit', "
        "version: 'str' = '') -> None"
    ),
    "TrustPolicy": (
        "(trusted_keys: 'list[Any]' = <factory>, required_attestations: 'list[str]' = <factory>, "
        "max_severity: 'str' = 'medium', require_signature: 'bool' = True, "
        "accept_max_severity: 'str' = 'high', decrypt_keys: 'list[str]' = <factory>) -> None"
    ),
    "VerifyResult": (
        "(reference: 'str', digest: 'str', checks: 'list[Check]' = <factory>, "
        "provenance: 'dict[str, Any] | None' = None, scan: 'dict[str, Any] | None' = None, "
        "notes: 'list[str]' = <factory>, acceptances: 'list[Any]' = <factory>) -> None"
    ),
    "check_tag": "(tag: 'str') -> 'str'",
    "draft_reference": "(artifact_uri: 'str') -> 'str | None'",
    "generate_keypair": "(out_dir: 'str', password: 'str | bytes | None' = None) -> 'KeyPair'",
    "inspect": (
        "(ref: 'str', decrypt_keys: 'Sequence[str] | None' = None, **registry_options: 'Any') -> 'KitInfo'"
    ),
    "list_kits": "(repository: 'str', *, settings: 'StorageSettings | None' = None) -> 'pd.DataFrame'",
    "list_runs": (
        "(experiment: 'str', *, metrics: 'Sequence[str]' = (), params: 'Sequence[str]' = (), "
        "filter_string: 'str | None' = None, order_by: 'Sequence[str] | None' = None, "
        "max_results: 'int' = 100, page_token: 'str | None' = None, "
        "tracking_uri: 'str | None' = None) -> 'RunsPage'"
    ),
    "list_tags": "(repository: 'str', **registry_options: 'Any') -> 'list[dict[str, Any]]'",
    "load_config": "(environ: 'Mapping[str, str] | None' = None) -> 'Config'",
    "pack": (
        "(context: 'str', target: 'str', kitfile: 'str | None' = None, "
        "compression: 'str' = 'none', progress: 'Progress | None' = None, "
        "**registry_options: 'Any') -> 'PackResult'"
    ),
    "parse_reference": "(text: 'str') -> 'KitRef'",
    "provenance": "(ref: 'str', keys: 'list[Any] | None' = None, **registry_options: 'Any') -> 'Provenance'",
    "publish_run": (
        "(run_id: 'str', tag: 'str', key: 'str | None' = None, password: 'bytes | None' = None, "
        "repository: 'str | None' = None, model: 'str | None' = None, "
        "register_as: 'str | None' = None, tracking_uri: 'str | None' = None, "
        "config: 'Any' = None, progress: 'Progress | None' = None, accept: 'Sequence[str]' = (), "
        "reason: 'str | None' = None, exclude: 'Sequence[str]' = (), "
        "encrypt_for: 'Sequence[str]' = ()) -> 'PublishResult'"
    ),
    "pull": (
        "(source: 'str', dest: 'str', progress: 'Progress | None' = None, **registry_options: 'Any') -> 'str'"
    ),
    "push": (
        "(source: 'str', dest: 'str', progress: 'Progress | None' = None, **registry_options: 'Any') -> 'str'"
    ),
    "rescan": (
        "(repository: 'str', key: 'str | None' = None, password: 'bytes | None' = None, "
        "config: 'Any' = None, dry_run: 'bool' = False, progress: 'Progress | None' = None, "
        "decrypt_keys: 'list[str] | None' = None, encrypt_for: 'list[str] | None' = None) "
        "-> 'list[RescanResult]'"
    ),
    "scan": (
        "(target: 'str', *, policy: 'Policy | None' = None, limits: 'Limits | None' = None, "
        "unpack_limits: 'UnpackLimits | None' = None, settings: 'StorageSettings | None' = None, "
        "progress: 'Progress | None' = None, decrypt_keys: 'list[str] | None' = None, "
        "**registry_options: 'Any') -> 'ScanReport'"
    ),
    "unpack": (
        "(ref: 'str', directory: 'str', filters: 'list[str] | None' = None, "
        "overwrite: 'bool' = False, ignore_existing: 'bool' = False, "
        "progress: 'Progress | None' = None, limits: 'UnpackLimits | None' = None, "
        "decrypt_keys: 'Sequence[str] | None' = None, **registry_options: 'Any') -> 'list[str]'"
    ),
    "verify": (
        "(ref: 'str', keys: 'list[Any] | None' = None, policy: 'TrustPolicy | None' = None, "
        "deep: 'bool' = True, progress: 'Progress | None' = None, "
        "decrypt_keys: 'list[str] | None' = None, **registry_options: 'Any') -> 'VerifyResult'"
    ),
}


CONSTANTS = {"PUBLISH_STAGES": ("compose", "scan", "attest", "sign", "tag", "record")}


def public() -> dict[str, object]:
    """The public functions and classes (the version, the Progress alias and constants aside)."""
    skip = {"__version__", "Progress", *CONSTANTS}
    return {n: getattr(mlflow_plugin, n) for n in mlflow_plugin.__all__ if n not in skip}


def test_constants_are_pinned() -> None:
    for name, value in CONSTANTS.items():
        assert getattr(mlflow_plugin, name) == value, name


def test_all_is_pinned_and_sorted() -> None:
    assert mlflow_plugin.__all__ == ALL
    assert sorted(ALL, key=lambda n: (not n.isupper(), n)) == ALL  # constants first (ruff RUF022)
    for name in ALL:
        assert hasattr(mlflow_plugin, name), name


def test_errors_are_modelkit_errors() -> None:
    for name in ERRORS:
        assert issubclass(getattr(mlflow_plugin, name), mlflow_plugin.ModelKitError), name
    exported = {n for n, o in public().items() if isinstance(o, type) and issubclass(o, Exception)}
    assert exported == set(ERRORS)


def test_signatures_are_pinned() -> None:
    got = {
        n: str(inspect.signature(o))
        for n, o in public().items()
        if n != "Severity" and not (n in ERRORS and n != "PublishBlocked")
    }
    assert got == SIGNATURES
    assert [s.name for s in mlflow_plugin.Severity] == ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    # push and pull are copy: one function, one signature
    assert mlflow_plugin.push is mlflow_plugin.pull


def test_every_public_name_has_a_runnable_example() -> None:
    """A docstring of its own (not inherited) with at least one example that is not ``+SKIP``
    (tests/test_doctests.py runs them)."""
    parser = doctest.DocTestParser()
    missing = []
    for name, obj in public().items():
        doc = obj.__doc__ or ""
        runnable = [e for e in parser.get_examples(doc) if not e.options.get(doctest.SKIP)]
        if ">>>" not in doc or not runnable:
            missing.append(name)
    assert missing == []
    for module in (
        "mlflow_plugin",
        "mlflow_plugin.progress",
        "mlflow_plugin.api",
        "mlflow_plugin.harden.catalog",
    ):
        doc = sys.modules[module].__doc__ or ""
        assert [e for e in parser.get_examples(doc) if not e.options.get(doctest.SKIP)], module


def test_progress_convention() -> None:
    """``Progress`` is ``(stage, done, total) -> None`` and every long call takes it."""
    assert str(mlflow_plugin.Progress) == "collections.abc.Callable[[str, int, int], None]"
    for name in ("pack", "push", "pull", "unpack", "verify", "publish_run", "scan", "rescan"):
        param = inspect.signature(getattr(mlflow_plugin, name)).parameters["progress"]
        assert param.annotation == "Progress | None" and param.default is None, name


def test_import_is_light() -> None:
    """``import mlflow_plugin`` imports neither MLflow nor pandas (the calls that need them do)."""
    code = "import sys, mlflow_plugin; print(sorted({'mlflow', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_ships() -> None:
    """hatchling ships every package file that git does not ignore and no ``exclude`` drops; the
    built wheel is checked by tests/jupyter/test_wheel.py."""
    assert (ROOT / "mlflow_plugin" / "py.typed").is_file()
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "mlflow_plugin" in wheel["packages"]
    excludes = wheel.get("exclude", []) + cfg["tool"]["hatch"]["build"].get("exclude", [])
    assert not any("py.typed" in x for x in excludes)
    ignored = subprocess.run(["git", "check-ignore", "-q", "mlflow_plugin/py.typed"], cwd=ROOT)
    # 0: ignored (hatchling would leave it out); 128: not a git checkout (an unpacked sdist)
    assert ignored.returncode in (1, 128), "mlflow_plugin/py.typed is gitignored"
    typed = set(cfg["tool"]["mypy"]["files"])
    assert {"mlflow_plugin/__init__.py", "mlflow_plugin/api.py", "mlflow_plugin/harden/catalog.py"} <= typed
