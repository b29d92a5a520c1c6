"""Admin configuration: one TOML file (``MLFLOW_MODELKIT_CONFIG``) plus ``MLFLOW_MODELKIT_*`` overrides.

Read at the edges (CLI, plugin entry points, server routes) and passed inward::

    >>> cfg = load_config(environ={"MLFLOW_MODELKIT_SCAN_FAIL_ON": "medium"})
    >>> cfg.scan_fail_on, cfg.source("scan_fail_on")
    ('medium', 'env MLFLOW_MODELKIT_SCAN_FAIL_ON')

Example file::

    [registries]
    insecure = ["registry.internal:5000"]       # plain HTTP allowed (loopback always is)
    allowed = ["registry.internal:5000"]        # inside mlflow server: registries the plugin may use
    ca_bundle = "/etc/ssl/private-ca.pem"
    credential_helpers = { "registry.internal:5000" = "pass" }   # runs docker-credential-pass

    [registries.tls."registry.internal:5443"]  # this registry only
    ca_bundle = "/etc/modelkit/internal-ca.pem"
    client_cert = "/etc/modelkit/client.crt"    # mTLS: the registry requires a client certificate
    client_key = "/etc/modelkit/client.key"

    [signing]
    key = "/etc/modelkit/cosign.key"             # passphrase: MLFLOW_MODELKIT_KEY_PASSWORD
    trusted_keys = ["/etc/modelkit/cosign.pub"]

    [scan]
    fail_on = "high"                             # block publishing at or above this severity
    allow_globals = ["mypkg.models.MyEstimator"]
    embedded_code = "medium"                     # code pickled by value (notebook classes, lambdas)
    pii = "info"                                 # PII-like values sampled in tabular datasets

    [accept]
    max_severity = "high"                        # highest finding a publisher may accept (--accept)

    [publish]
    redact_params = ["*password*", "*secret*", "*token*", "*_key"]   # value published as "[redacted]"
    include = ["model", "code", "docs"]          # what a published kit may carry; the rest: SHA-256 only

    [encryption]
    recipients = ["/etc/modelkit/serving-enc.pub"]   # publish encrypts every kit for these (+ --encrypt-for)
    decrypt_keys = ["/etc/modelkit/enc.key"]     # keys that open encrypted kits (unpack, load, verify)

    [limits]
    max_unpack_bytes = 1099511627776             # total decompressed output of one unpack (1 TiB)
    max_unpack_ratio = 1000                      # decompressed / compressed size of a layer
    max_unpack_entries = 1000000                 # tar entries in one layer

    [policy]
    require_signature = true                     # loads of published kits must verify
    required_attestations = ["provenance", "scan"]
    max_severity = "medium"                      # highest scan severity a trusted kit may carry

Registry credentials come from ``MLFLOW_MODELKIT_REGISTRY_USERNAME``/``_PASSWORD``, a credential
helper named per registry here, or the Docker config (``mlflow-modelkit login``); passwords are
never stored in this file (it is often world-readable and checked in), and ``config show`` lists
every source in lookup order with secrets masked.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from mlflow_plugin.errors import ModelKitError

if TYPE_CHECKING:
    from mlflow_plugin.scanner.context import Policy
    from mlflow_plugin.storage.locations import StorageSettings

SEVERITIES = ("info", "low", "medium", "high", "critical")
ATTESTATIONS = ("provenance", "scan", "sbom")
# what a published kit may carry ([publish] include); excluded kinds are referenced by SHA-256 only
PUBLISH_KINDS = ("model", "code", "docs", "datasets")
# Run params whose names match one of these (case-insensitive glob) are published as "[redacted]".
DEFAULT_REDACT_PARAMS = (
    "*password*",
    "*passwd*",
    "*secret*",
    "*token*",
    "*api_key*",
    "*apikey*",
    "*access_key*",
    "*private_key*",
    "*_key",
    "*credential*",
)


@dataclass
class Config:
    """The effective configuration; :meth:`source` tells where each value came from.

    Read it with :func:`load_config`; the public calls do so for whatever they are not given.

    >>> cfg = Config(trusted_keys=["/etc/modelkit/cosign.pub"])
    >>> cfg.scan_fail_on, cfg.source("scan_fail_on"), cfg.storage_settings().ca_bundle
    ('high', 'default', None)
    """

    insecure_registries: list[str] = field(default_factory=list)
    allowed_registries: list[str] = field(default_factory=list)
    allowed_layout_roots: list[str] = field(default_factory=list)
    ca_bundle: str | None = None
    signing_key: str | None = None
    trusted_keys: list[str] = field(default_factory=list)
    scan_fail_on: str = "high"
    allow_globals: list[str] = field(default_factory=list)
    allow_modules: list[str] = field(default_factory=list)
    code_in_functions: str = "medium"
    scan_embedded_code: str = "medium"
    scan_pii: str = "info"
    accept_max_severity: str = "high"
    require_signature: bool = False
    required_attestations: list[str] = field(default_factory=lambda: ["provenance", "scan"])
    max_severity: str = "medium"
    register_model: bool = False
    artifacts_destination: str | None = None
    redact_params: list[str] = field(default_factory=lambda: list(DEFAULT_REDACT_PARAMS))
    publish_include: list[str] = field(default_factory=lambda: list(PUBLISH_KINDS))
    max_unpack_bytes: int = 1 << 40
    max_unpack_ratio: int = 1000
    max_unpack_entries: int = 1_000_000
    encrypt_for: list[str] = field(default_factory=list)
    decrypt_keys: list[str] = field(default_factory=list)
    registry_credential_helpers: dict[str, str] = field(default_factory=dict)
    registry_tls: dict[str, dict[str, str]] = field(default_factory=dict)
    path: str | None = None
    _sources: dict[str, str] = field(default_factory=dict, repr=False)

    def source(self, name: str) -> str:
        return self._sources.get(name, "default")

    def scan_policy(self, allow_globals: Iterable[str] = (), allow_modules: Iterable[str] = ()) -> Policy:
        """The scanner's policy from this config (allowlists, embedded-code and in-function code
        severities), plus ``allow_globals``/``allow_modules`` given on the command line."""
        from mlflow_plugin.scanner.context import Policy

        return Policy(
            allow_globals=frozenset(allow_globals) | frozenset(self.allow_globals),
            allow_modules=frozenset(allow_modules) | frozenset(self.allow_modules),
            embedded_code=self.scan_embedded_code,
            code_in_functions=self.code_in_functions,
            pii=self.scan_pii,
        )

    def redact(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` (run params or tags) as publish shows them: every name matching
        ``redact_params`` maps to ``"[redacted]"`` (names and order kept).

        >>> Config().redact({"db_password": "hunter2", "lr": "0.1"})
        {'db_password': '[redacted]', 'lr': '0.1'}
        """
        from mlflow_plugin.trust.redact import redact_params

        return redact_params(values, self.redact_params)

    def storage_settings(self) -> StorageSettings:
        """What storage needs of this config: insecure registries and the CA bundle."""
        from mlflow_plugin.storage.locations import RegistryTLS, StorageSettings

        return StorageSettings(
            frozenset(self.insecure_registries),
            self.ca_bundle,
            tls=tuple((h, RegistryTLS(**t)) for h, t in sorted(self.registry_tls.items())),
            credential_helpers=tuple(sorted(self.registry_credential_helpers.items())),
        )

    def show(self, environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
        """``(setting, value, source)`` rows for ``config show``; secrets are masked."""
        env = os.environ if environ is None else environ
        rows = []
        for f in fields(self):
            if f.name.startswith("_") or f.name == "path":
                continue
            v = getattr(self, f.name)
            rows.append((f.name, _fmt(v), self.source(f.name)))
        user = env.get("MLFLOW_MODELKIT_REGISTRY_USERNAME")
        rows.append(("registry_username", user or "(docker config)", "env" if user else "default"))
        rows.append(
            (
                "registry_password",
                "********" if env.get("MLFLOW_MODELKIT_REGISTRY_PASSWORD") else "(unset)",
                "env" if env.get("MLFLOW_MODELKIT_REGISTRY_PASSWORD") else "default",
            )
        )
        rows.append(
            (
                "key_password",
                "********" if env.get("MLFLOW_MODELKIT_KEY_PASSWORD") else "(unset)",
                "env" if env.get("MLFLOW_MODELKIT_KEY_PASSWORD") else "default",
            )
        )
        from mlflow_plugin.storage.auth import credential_sources

        rows += credential_sources(env, self.registry_credential_helpers)
        rows.append(
            ("config_file", self.path or "(none)", "env MLFLOW_MODELKIT_CONFIG" if self.path else "default")
        )
        return rows


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in sorted(v.items())) if v else "(none)"
    if isinstance(v, list):
        return ", ".join(v) if v else "(none)"
    if v is None:
        return "(unset)"
    return str(v).lower() if isinstance(v, bool) else str(v)


# file key (section, key) -> field; env var -> field
_FILE = {
    ("registries", "insecure"): "insecure_registries",
    ("registries", "allowed"): "allowed_registries",
    ("registries", "allowed_layout_roots"): "allowed_layout_roots",
    ("registries", "ca_bundle"): "ca_bundle",
    ("registries", "credential_helpers"): "registry_credential_helpers",
    ("registries", "tls"): "registry_tls",
    ("signing", "key"): "signing_key",
    ("signing", "trusted_keys"): "trusted_keys",
    ("scan", "fail_on"): "scan_fail_on",
    ("scan", "allow_globals"): "allow_globals",
    ("scan", "allow_modules"): "allow_modules",
    ("scan", "code_in_functions"): "code_in_functions",
    ("scan", "embedded_code"): "scan_embedded_code",
    ("scan", "pii"): "scan_pii",
    ("accept", "max_severity"): "accept_max_severity",
    ("policy", "require_signature"): "require_signature",
    ("policy", "required_attestations"): "required_attestations",
    ("policy", "max_severity"): "max_severity",
    ("publish", "register_model"): "register_model",
    ("publish", "artifacts_destination"): "artifacts_destination",
    ("publish", "redact_params"): "redact_params",
    ("publish", "include"): "publish_include",
    ("encryption", "recipients"): "encrypt_for",
    ("encryption", "decrypt_keys"): "decrypt_keys",
    ("limits", "max_unpack_bytes"): "max_unpack_bytes",
    ("limits", "max_unpack_ratio"): "max_unpack_ratio",
    ("limits", "max_unpack_entries"): "max_unpack_entries",
}
_ENV = {
    "MLFLOW_MODELKIT_INSECURE_REGISTRIES": "insecure_registries",
    "MLFLOW_MODELKIT_ALLOWED_REGISTRIES": "allowed_registries",
    "MLFLOW_MODELKIT_ALLOWED_LAYOUT_ROOTS": "allowed_layout_roots",
    "MLFLOW_MODELKIT_CA_BUNDLE": "ca_bundle",
    "MLFLOW_MODELKIT_SIGNING_KEY": "signing_key",
    "MLFLOW_MODELKIT_TRUSTED_KEYS": "trusted_keys",
    "MLFLOW_MODELKIT_SCAN_FAIL_ON": "scan_fail_on",
    "MLFLOW_MODELKIT_ALLOW_GLOBALS": "allow_globals",
    "MLFLOW_MODELKIT_ALLOW_MODULES": "allow_modules",
    "MLFLOW_MODELKIT_CODE_IN_FUNCTIONS": "code_in_functions",
    "MLFLOW_MODELKIT_SCAN_EMBEDDED_CODE": "scan_embedded_code",
    "MLFLOW_MODELKIT_SCAN_PII": "scan_pii",
    "MLFLOW_MODELKIT_ACCEPT_MAX_SEVERITY": "accept_max_severity",
    "MLFLOW_MODELKIT_REQUIRE_SIGNATURE": "require_signature",
    "MLFLOW_MODELKIT_REQUIRED_ATTESTATIONS": "required_attestations",
    "MLFLOW_MODELKIT_MAX_SEVERITY": "max_severity",
    "MLFLOW_MODELKIT_REGISTER_MODEL": "register_model",
    "MLFLOW_MODELKIT_ARTIFACTS_DESTINATION": "artifacts_destination",
    "MLFLOW_MODELKIT_REDACT_PARAMS": "redact_params",
    "MLFLOW_MODELKIT_PUBLISH_INCLUDE": "publish_include",
    "MLFLOW_MODELKIT_ENCRYPT_FOR": "encrypt_for",
    "MLFLOW_MODELKIT_DECRYPT_KEYS": "decrypt_keys",
    "MLFLOW_MODELKIT_MAX_UNPACK_BYTES": "max_unpack_bytes",
    "MLFLOW_MODELKIT_MAX_UNPACK_RATIO": "max_unpack_ratio",
    "MLFLOW_MODELKIT_MAX_UNPACK_ENTRIES": "max_unpack_entries",
}


def _coerce(name: str, value: Any, where: str) -> Any:
    f = {x.name: x for x in fields(Config)}[name]
    kind = str(f.type)
    if kind.startswith("dict"):
        return _coerce_registry_table(name, value, where)
    if "list" in kind:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ModelKitError(f"{where}: expected a list of strings")
    if kind == "int":
        if isinstance(value, bool):
            raise ModelKitError(f"{where}: expected a positive integer")
        try:
            n = int(str(value).strip())
        except ValueError:
            raise ModelKitError(f"{where}: expected a positive integer, got {value!r}") from None
        if n <= 0:
            raise ModelKitError(f"{where}: expected a positive integer, got {value!r}")
        return n
    if "bool" in kind:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off", ""):
            return False
        raise ModelKitError(f"{where}: expected true or false, got {value!r}")
    if not isinstance(value, str):
        raise ModelKitError(f"{where}: expected a string")
    return value


_TLS_KEYS = ("ca_bundle", "client_cert", "client_key")


def _coerce_registry_table(name: str, value: Any, where: str) -> Any:
    """``credential_helpers`` (host → helper name) or ``tls`` (host → ca_bundle/client_cert/client_key)."""
    from mlflow_plugin.storage.credhelpers import helper_program
    from mlflow_plugin.storage.dockerconfig import check_login_host

    if not isinstance(value, dict):
        raise ModelKitError(f"{where}: expected a table keyed by registry host")
    out: dict[str, Any] = {}
    for host, v in value.items():
        try:
            key = check_login_host(host)
            if name == "registry_credential_helpers":
                if not isinstance(v, str):
                    raise ModelKitError("expected a helper name (docker-credential-<name>)")
                helper_program(v)
                out[key] = v
                continue
            if not isinstance(v, dict) or not v or any(k not in _TLS_KEYS for k in v):
                raise ModelKitError(f"expected a table with {', '.join(_TLS_KEYS)}")
            if not all(isinstance(x, str) and x for x in v.values()):
                raise ModelKitError("expected file paths")
            if ("client_key" in v) and ("client_cert" not in v):
                raise ModelKitError("client_key needs client_cert")
            out[key] = dict(v)
        except ModelKitError as e:
            raise ModelKitError(f"{where}.{host!r}: {e}") from None
    return out


def _validate(cfg: Config) -> None:
    for name in (
        "scan_fail_on",
        "max_severity",
        "code_in_functions",
        "scan_embedded_code",
        "scan_pii",
        "accept_max_severity",
    ):
        v = getattr(cfg, name).lower()
        if v not in SEVERITIES:
            raise ModelKitError(f"{name} = {v!r} ({cfg.source(name)}): use one of {', '.join(SEVERITIES)}")
        setattr(cfg, name, v)
    bad = [a for a in cfg.required_attestations if a not in ATTESTATIONS]
    if bad:
        raise ModelKitError(
            f"required_attestations: unknown {bad[0]!r} ({cfg.source('required_attestations')}); "
            f"use {', '.join(ATTESTATIONS)}"
        )
    include = [k.strip().lower() for k in cfg.publish_include]
    where = f"publish.include ({cfg.source('publish_include')})"
    bad = [k for k in include if k not in PUBLISH_KINDS]
    if bad:
        raise ModelKitError(f"{where}: unknown kind {bad[0]!r}; use {', '.join(PUBLISH_KINDS)}")
    if "model" not in include:
        raise ModelKitError(f"{where}: must include 'model' (a kit without its model is not a kit)")
    cfg.publish_include = [k for k in PUBLISH_KINDS if k in include]


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the TOML file named by ``MLFLOW_MODELKIT_CONFIG``, then env overrides.

    ``environ`` replaces ``os.environ`` (tests, tools). Bad values raise :class:`ModelKitError`
    naming the setting and where it came from.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "modelkit.toml")
    >>> with open(path, "w") as f:
    ...     _ = f.write('[scan]\\nfail_on = "medium"\\n')
    ...     _ = f.write('[signing]\\ntrusted_keys = ["/etc/modelkit/cosign.pub"]\\n')
    >>> cfg = load_config({"MLFLOW_MODELKIT_CONFIG": path, "MLFLOW_MODELKIT_MAX_SEVERITY": "high"})
    >>> cfg.scan_fail_on, cfg.trusted_keys, cfg.max_severity, cfg.source("max_severity")
    ('medium', ['/etc/modelkit/cosign.pub'], 'high', 'env MLFLOW_MODELKIT_MAX_SEVERITY')
    >>> load_config({"MLFLOW_MODELKIT_SCAN_FAIL_ON": "severe"})
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: scan_fail_on = 'severe' (env ...): use one of info, low, ...
    """
    env = os.environ if environ is None else environ
    cfg = Config()
    path = env.get("MLFLOW_MODELKIT_CONFIG")
    if path:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ModelKitError(f"MLFLOW_MODELKIT_CONFIG={path}: file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ModelKitError(f"{path}: invalid TOML ({e})") from None
        cfg.path = path
        for section, table in data.items():
            if not isinstance(table, dict):
                raise ModelKitError(f"{path}: [{section}] must be a table")
            for key, value in table.items():
                name = _FILE.get((section, key))
                if name is None:
                    known = ", ".join(f"{s}.{k}" for s, k in _FILE)
                    raise ModelKitError(f"{path}: unknown setting {section}.{key} (known: {known})")
                setattr(cfg, name, _coerce(name, value, f"{path}: {section}.{key}"))
                cfg._sources[name] = f"file {path}"
    for var, name in _ENV.items():
        if var in env:
            setattr(cfg, name, _coerce(name, env[var], f"env {var}"))
            cfg._sources[name] = f"env {var}"
    _validate(cfg)
    return cfg
