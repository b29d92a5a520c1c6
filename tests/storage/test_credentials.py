"""Registry credentials as docker and oras users expect (issue 12, requirement 1), end to end.

Real registries only: ``secret_registry`` (TLS + htpasswd with a distinctive password, started here
so the secret is known), the shared ``auth_registry`` (TLS + htpasswd) and ``mtls_registry`` (TLS
that requires a client certificate: distribution 2.8's ``http.tls.clientcas``, config written
here). Credential helpers are a real executable the tests write (``docker-credential-mkfake``,
a small Python script on ``PATH`` that answers get/store/erase, keeps its store in a JSON file and
records each call's action and server -- never the secret). Nothing is mocked.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import ssl
import stat
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _envhelpers import clean_env
from _kithelpers import make_case0_context
from _registries import READY_TIMEOUT, RegistryServer, htpasswd_line, registry_binary, self_signed_cert
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mlflow_plugin import packaging
from mlflow_plugin.cli import main
from mlflow_plugin.config import load_config
from mlflow_plugin.errors import AuthError, ModelKitError, RegistryError
from mlflow_plugin.storage import credhelpers
from mlflow_plugin.storage.auth import resolve_credentials
from mlflow_plugin.storage.login import login, logout
from mlflow_plugin.storage.transport import reset_connections

USER = "alice"
PASSWORD = "S3cr3t-pa55w0rd-7c1e"
WRONG = "Wr0ng-pa55w0rd-d41d"
TOKEN = "tok-9f8e7d6c5b4a3928"
SECRETS = (PASSWORD, WRONG, TOKEN)

HELPER = """#!{python}
import json, os, sys
base = os.environ["MK_HELPER_DIR"]
store_path = os.path.join(base, "store.json")
action = sys.argv[1]
data = sys.stdin.read()
store = json.load(open(store_path)) if os.path.exists(store_path) else {{}}
server = json.loads(data)["ServerURL"] if action == "store" else data.strip()
with open(os.path.join(base, "calls.log"), "a") as f:
    f.write(action + " " + server + "\\n")
sys.stderr.write("careless helper echoes its input: " + data + "\\n")  # must never be shown
mode = os.environ.get("MK_HELPER_MODE", "")
if mode == "slow":
    import time
    time.sleep(30)
if mode == "flood":
    sys.stdout.write("x" * (1 << 20))
    sys.exit(0)
if action == "get":
    if server not in store:
        print("credentials not found in native keychain")
        sys.exit(1)
    user, secret = store[server]
    print(json.dumps({{"ServerURL": server, "Username": user, "Secret": secret}}))
elif action == "store":
    d = json.loads(data)
    store[server] = [d["Username"], d["Secret"]]
    json.dump(store, open(store_path, "w"))
elif action == "erase":
    if server not in store:
        print("credentials not found in native keychain")
        sys.exit(1)
    del store[server]
    json.dump(store, open(store_path, "w"))
"""


# ---- registries ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secret_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """TLS + htpasswd with the distinctive ``USER``/``PASSWORD``."""
    binary = registry_binary()
    workdir = tmp_path_factory.mktemp("registry-secret")
    crt, key, _, _ = self_signed_cert(workdir, "tls")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(htpasswd_line(USER, PASSWORD) + "\n")
    server = RegistryServer(
        binary,
        workdir,
        "registry-secret",
        auth_yaml=f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n",
        tls=(crt, key),
        ca=str(crt),
        username=USER,
        password=PASSWORD,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A client CA and a client certificate it signed (EKU clientAuth): ``(ca, cert, key)``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-client")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "client-ca.crt", directory / "client.crt", directory / "client.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    os.chmod(paths[2], 0o600)
    return paths


@dataclass
class MTLSRegistry(RegistryServer):
    """A registry whose TLS requires a client certificate signed by ``client_ca``."""

    client_ca: str = ""
    client_cert: str = ""
    client_key: str = ""

    def write_config(self) -> None:
        super().write_config()
        assert self.tls is not None
        text = self.config_path.read_text()
        line = f"    key: {self.tls[1]}"
        assert line in text
        self.config_path.write_text(text.replace(line, f"{line}\n    clientcas:\n      - {self.client_ca}"))

    def _wait_ready(self) -> None:
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(self.client_cert, self.client_key)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=2, context=ctx):
                    return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mTLS registry on {self.host} did not start: {self.log_path.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def mtls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MTLSRegistry]:
    binary = registry_binary()
    workdir = tmp_path_factory.mktemp("registry-mtls")
    crt, key, _, _ = self_signed_cert(workdir, "tls")
    client_ca, client_cert, client_key = _client_ca(workdir)
    server = MTLSRegistry(
        binary,
        workdir,
        "registry-mtls",
        tls=(crt, key),
        ca=str(crt),
        client_ca=str(client_ca),
        client_cert=str(client_cert),
        client_key=str(client_key),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---- environment ---------------------------------------------------------------------------------
@dataclass
class Env:
    tmp: Path
    docker: Path  # $DOCKER_CONFIG
    helper_dir: Path
    kit: str  # oci:... reference of a packed kit
    outputs: list[str]
    mp: pytest.MonkeyPatch

    @property
    def config_json(self) -> Path:
        return self.docker / "config.json"

    def calls(self) -> list[str]:
        log = self.helper_dir / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def helper_store(self) -> dict[str, Any]:
        p = self.helper_dir / "store.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def write_docker_config(self, data: dict[str, Any]) -> None:
        self.docker.mkdir(parents=True, exist_ok=True)
        self.config_json.write_text(json.dumps(data))

    def admin_config(self, text: str) -> None:
        path = self.tmp / "modelkit.toml"
        path.write_text(text)
        self.mp.setenv("MLFLOW_MODELKIT_CONFIG", str(path))

    def cli(self, *args: str, input: str | None = None) -> Result:
        reset_connections()
        result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
        self.outputs.append(result.output)
        return result


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Env]:
    clean_env(monkeypatch)
    caplog.set_level(logging.DEBUG)
    docker = tmp_path / "docker"
    helper_dir = tmp_path / "helper"
    bin_dir = tmp_path / "bin"
    helper_dir.mkdir()
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-mkfake"
    helper.write_text(HELPER.format(python=sys.executable))
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("MK_HELPER_DIR", str(helper_dir))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    ctx = make_case0_context(tmp_path / "ctx")
    kit = f"oci:{tmp_path / 'kits'}:v1"
    packaging.pack(str(ctx), kit)
    e = Env(tmp_path, docker, helper_dir, kit, [], monkeypatch)
    yield e
    reset_connections()
    # nothing secret anywhere: outputs, logs, and every file except the docker config / helper store
    seen = "\n".join(e.outputs) + caplog.text
    for secret in SECRETS:
        assert secret not in seen
        b64 = base64.b64encode(f"{USER}:{secret}".encode()).decode()
        assert b64 not in seen
        for path in tmp_path.rglob("*"):
            if path.is_file() and path not in (e.config_json, helper_dir / "store.json"):
                data = path.read_bytes()
                assert secret.encode() not in data and b64.encode() not in data, path


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def one_line_error(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def use_ca(env: Env, reg: RegistryServer) -> None:
    assert reg.ca
    env.mp.setenv("MLFLOW_MODELKIT_CA_BUNDLE", reg.ca)


# ---- login / logout into config.json ------------------------------------------------------------
def test_login_stores_auth_in_config_json_0600_and_push_pull_use_it(
    env: Env, secret_registry: RegistryServer
) -> None:
    use_ca(env, secret_registry)
    host = secret_registry.host
    env.write_docker_config({"auths": {"other.example": {"auth": "b3RoZXI6eA=="}}, "detachKeys": "ctrl-e"})
    r = env.cli("login", host, "-u", USER, "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert f"Login succeeded: {USER}@{host}" in r.output
    assert stat.S_IMODE(env.config_json.stat().st_mode) == 0o600
    cfg = json.loads(env.config_json.read_text())
    assert cfg["detachKeys"] == "ctrl-e" and "other.example" in cfg["auths"]
    assert base64.b64decode(cfg["auths"][host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert not list(env.docker.glob(".config.json.*"))  # the atomic write left no temp file

    ref = f"{host}/team/creds:v1"
    r = env.cli("push", env.kit, ref)
    assert r.exit_code == 0, r.output
    r = env.cli("pull", ref, "-t", f"oci:{env.tmp / 'back'}:v1")
    assert r.exit_code == 0, r.output
    creds = resolve_credentials(host)
    assert creds is not None and creds.source.startswith("docker config")

    r = env.cli("logout", host)
    assert r.exit_code == 0 and f"Removed the credentials for {host}" in r.output
    assert host not in json.loads(env.config_json.read_text())["auths"]
    r = env.cli("logout", host)
    assert r.exit_code == 0 and f"Not logged in to {host}" in r.output
    for path in secret_registry.workdir.rglob("*"):  # the registry's storage and log
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_wrong_password_is_one_line_and_nothing_is_stored(env: Env, secret_registry: RegistryServer) -> None:
    use_ca(env, secret_registry)
    host = secret_registry.host
    r = env.cli("login", host, "-u", USER, "--password-stdin", input=WRONG)
    assert one_line_error(r) == f"error: wrong user name or password for {host}"
    assert not env.config_json.exists()
    with pytest.raises(AuthError, match=f"^wrong user name or password for {host}$") as e:
        login(host, USER, WRONG, settings=load_config().storage_settings())
    assert WRONG not in repr(e.value) and not env.config_json.exists()


def test_password_option_warns_and_prompt_works(env: Env, secret_registry: RegistryServer) -> None:
    use_ca(env, secret_registry)
    host = secret_registry.host
    r = env.cli("login", host, "-u", USER, "-p", PASSWORD)
    assert r.exit_code == 0 and "WARNING! Using --password is insecure" in r.output
    env.cli("logout", host)
    r = env.cli("login", host, input=f"{USER}\n{PASSWORD}\n")  # prompted, password hidden
    assert r.exit_code == 0 and "Login succeeded" in r.output
    assert PASSWORD not in r.output


def test_missing_or_wrong_credentials_name_the_registry_and_login(
    env: Env, secret_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_ca(env, secret_registry)
    host = secret_registry.host
    hint = f"log in with 'mlflow-modelkit login {host}'"
    r = env.cli("push", env.kit, f"{host}/team/nocreds:v1")
    line = one_line_error(r)
    assert host in line and "requires credentials" in line and hint in line
    with pytest.raises(AuthError, match="requires credentials") as e:
        reset_connections()
        packaging.copy(env.kit, f"{host}/team/nocreds:v1")
    assert hint in str(e.value)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", WRONG)
    r = env.cli("push", env.kit, f"{host}/team/nocreds:v1")
    line = one_line_error(r)
    assert f"registry {host} rejected the credentials for user '{USER}'" in line and hint in line
    r = env.cli("pull", f"{host}/team/nocreds:v1", "-t", f"oci:{env.tmp / 'x'}:v1")
    assert hint in one_line_error(r)


# ---- credential helpers -------------------------------------------------------------------------
def test_creds_store_helper_login_push_logout(env: Env, auth_registry: RegistryServer) -> None:
    use_ca(env, auth_registry)
    host = auth_registry.host
    env.write_docker_config({"credsStore": "mkfake"})
    r = env.cli("login", host, "-u", auth_registry.username, "--password-stdin", input=auth_registry.password)
    assert r.exit_code == 0, r.output
    assert "stored in credential helper docker-credential-mkfake" in r.output
    assert env.helper_store() == {host: [auth_registry.username, auth_registry.password]}
    assert auth_registry.password not in env.config_json.read_text()
    assert json.loads(env.config_json.read_text())["auths"][host] == {}  # as docker leaves it
    assert env.calls() == [f"store {host}"]
    r = env.cli("push", env.kit, f"{host}/team/helper:v1")
    assert r.exit_code == 0, r.output
    assert f"get {host}" in env.calls()
    assert "careless helper" not in r.output  # its stderr is never echoed
    creds = resolve_credentials(host)
    assert creds is not None and creds.source == "credential helper docker-credential-mkfake"
    r = env.cli("logout", host)
    assert r.exit_code == 0 and "docker-credential-mkfake" in r.output
    assert env.helper_store() == {} and env.calls()[-1] == f"erase {host}"
    # nothing stored now: the helper's "credentials not found" means no credentials, not an error
    assert resolve_credentials(host) is None
    r = env.cli("logout", host)
    assert r.exit_code == 0 and "Not logged in" in r.output
    assert auth_registry.password not in "\n".join(env.outputs)


def test_cred_helpers_win_over_auths_and_token_username(env: Env) -> None:
    host = "registry.internal:5443"
    env.write_docker_config(
        {
            "auths": {host: {"auth": base64.b64encode(f"{USER}:{WRONG}".encode()).decode()}},
            "credHelpers": {host: "mkfake"},
        }
    )
    (env.helper_dir / "store.json").write_text(json.dumps({host: ["<token>", TOKEN]}))
    creds = resolve_credentials(host)
    assert creds is not None and creds.identity_token == TOKEN and not creds.password
    assert TOKEN not in repr(creds) and TOKEN not in str(creds)
    # a host without a credHelpers entry uses auths
    env.write_docker_config(
        {"auths": {host: {"auth": base64.b64encode(f"{USER}:{WRONG}".encode()).decode()}}}
    )
    creds = resolve_credentials(host)
    assert creds is not None and creds.password == WRONG and "docker config" in creds.source
    # env wins over everything
    env.mp.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", "ci")
    env.mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", PASSWORD)
    creds = resolve_credentials(host)
    assert creds is not None and creds.source == "environment"


def test_admin_config_credential_helper(env: Env, auth_registry: RegistryServer) -> None:
    use_ca(env, auth_registry)
    host = auth_registry.host
    (env.helper_dir / "store.json").write_text(
        json.dumps({host: [auth_registry.username, auth_registry.password]})
    )
    env.write_docker_config(
        {"auths": {host: {"auth": base64.b64encode(f"{USER}:{WRONG}".encode()).decode()}}}
    )
    env.admin_config(f'[registries]\ncredential_helpers = {{ "{host}" = "mkfake" }}\n')
    r = env.cli("push", env.kit, f"{host}/team/admin-helper:v1")  # the wrong auths entry is not used
    assert r.exit_code == 0, r.output
    assert f"get {host}" in env.calls()
    r = env.cli("config", "show")
    assert r.exit_code == 0
    rows = [ln for ln in r.output.splitlines() if ln.startswith("credentials.")]
    assert rows[0].split()[1:4] == [host, "->", "docker-credential-mkfake"]
    assert "auths:" in rows[1] and "(secrets masked)" in rows[1]
    assert WRONG not in r.output and auth_registry.password not in r.output


def test_missing_helper_is_one_line_naming_it(env: Env, auth_registry: RegistryServer) -> None:
    use_ca(env, auth_registry)
    host = auth_registry.host
    env.write_docker_config({"credHelpers": {host: "nothere"}})
    r = env.cli("push", env.kit, f"{host}/team/x:v1")
    line = one_line_error(r)
    assert "credential helper docker-credential-nothere" in line and "is not on PATH: install it" in line
    with pytest.raises(AuthError, match=r"docker-credential-nothere .* is not on PATH"):
        packaging.copy(env.kit, f"{host}/team/x:v1")
    r = env.cli("login", host, "-u", auth_registry.username, "--password-stdin", input=auth_registry.password)
    assert "docker-credential-nothere" in one_line_error(r)


def test_helper_timeout_and_flood_are_bounded(
    env: Env, monkeypatch: pytest.MonkeyPatch, auth_registry: RegistryServer
) -> None:
    host = auth_registry.host
    env.write_docker_config({"credsStore": "mkfake"})
    # a helper that hangs or floods stdout is a fault the real helper here cannot be asked for
    # any other way than through its environment; the timeout is shortened so the test is quick
    monkeypatch.setattr(credhelpers, "TIMEOUT", 1.0)
    monkeypatch.setenv("MK_HELPER_MODE", "slow")
    with pytest.raises(AuthError, match="did not answer within 1s"):
        resolve_credentials(host)
    monkeypatch.setenv("MK_HELPER_MODE", "flood")
    with pytest.raises(AuthError, match="printed more than"):
        resolve_credentials(host)


# ---- refusals and hostile input ---------------------------------------------------------------------
def test_refuses_plain_http_non_loopback(env: Env) -> None:
    env.admin_config('[registries]\ninsecure = ["registry.example.com:5000"]\n')
    r = env.cli("login", "registry.example.com:5000", "-u", USER, "--password-stdin", input=PASSWORD)
    line = one_line_error(r)
    assert "refusing to store credentials for registry.example.com:5000" in line and "TLS" in line
    assert not env.config_json.exists()
    env.mp.delenv("MLFLOW_MODELKIT_CONFIG")
    r = env.cli("login", "http://registry.example.com", "-u", USER, "--password-stdin", input=PASSWORD)
    assert "refusing to store credentials for registry.example.com" in one_line_error(r)
    assert not env.config_json.exists()


@pytest.mark.parametrize(
    "host",
    [
        "registry.example.com\x1b[2J",
        "reg\nistry.example.com",
        "../../etc",
        "registry..example.com",
        "https://registry.example.com/team/x",
        "registry.example.com/v2/",
        "user@registry.example.com",
        "registry.example.com:99999",
        "",
    ],
)
def test_hostile_hosts_are_one_line_errors(env: Env, host: str) -> None:
    r = env.cli("login", host, "-u", USER, "--password-stdin", input=PASSWORD)
    line = one_line_error(r)
    assert "invalid registry host" in line and "\x1b" not in line
    assert "invalid registry host" in one_line_error(env.cli("logout", host))
    with pytest.raises(ModelKitError, match="invalid registry host"):
        logout(host)
    assert not env.config_json.exists()


def test_hostile_passwords_and_users(env: Env) -> None:
    r = env.cli("login", "registry.example.com", "-u", USER, "--password-stdin", input=f"{PASSWORD}\nmore\n")
    assert "line break" in one_line_error(r)
    r = env.cli("login", "registry.example.com", "-u", "a:b", "--password-stdin", input=PASSWORD)
    assert "':'" in one_line_error(r)
    r = env.cli("login", "registry.example.com", "-u", "a\x07b", "--password-stdin", input=PASSWORD)
    assert "control characters" in one_line_error(r)
    assert not env.config_json.exists()


# ---- config show ------------------------------------------------------------------------------------
def test_config_show_lists_sources_in_order_masked(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", PASSWORD)
    env.write_docker_config(
        {
            "auths": {"r1.example": {"auth": base64.b64encode(f"{USER}:{WRONG}".encode()).decode()}},
            "credHelpers": {"r2.example": "mkfake"},
            "credsStore": "desktop",
        }
    )
    env.admin_config(
        '[registries]\ncredential_helpers = { "r3.example:5000" = "pass" }\n'
        '[registries.tls."r4.example:5443"]\nca_bundle = "/etc/ca.pem"\n'
        'client_cert = "/etc/c.crt"\nclient_key = "/etc/c.key"\n'
    )
    r = env.cli("config", "show")
    assert r.exit_code == 0, r.output
    rows = [ln for ln in r.output.splitlines() if ln.startswith("credentials.")]
    assert [ln.split()[0] for ln in rows] == [f"credentials.{i}" for i in range(1, 6)]
    assert "user 'ci', password ********" in rows[0]
    assert "r3.example:5000 -> docker-credential-pass" in rows[1]
    assert "credHelpers: r2.example -> docker-credential-mkfake" in rows[2]
    assert "auths: r1.example (secrets masked)" in rows[3]
    assert "credsStore: docker-credential-desktop" in rows[4]
    tls = next(ln for ln in r.output.splitlines() if ln.startswith("registry_tls"))
    assert "r4.example:5443" in tls and "client_cert: /etc/c.crt" in tls
    r = env.cli("config", "show", "--json")
    assert json.loads(r.output)["credentials.1"]["value"] == "user 'ci', password ********"


def test_admin_config_rejects_bad_tables(env: Env) -> None:
    env.admin_config('[registries]\ncredential_helpers = { "r.example" = "../x" }\n')
    assert "invalid credential helper name" in one_line_error(env.cli("config", "show"))
    env.admin_config('[registries.tls."r.example"]\npassword = "x"\n')
    assert "expected a table with ca_bundle" in one_line_error(env.cli("config", "show"))


# ---- mTLS ---------------------------------------------------------------------------------------------
def test_mtls_without_and_with_client_certificate(env: Env, mtls_registry: MTLSRegistry) -> None:
    host = mtls_registry.host
    ref = f"{host}/team/mtls:v1"
    env.admin_config(f'[registries.tls."{host}"]\nca_bundle = "{mtls_registry.ca}"\n')
    r = env.cli("push", env.kit, ref)
    line = one_line_error(r)
    assert f"registry {host}" in line and "requires a client certificate" in line, line
    assert "client_cert" in line
    with pytest.raises(RegistryError, match="requires a client certificate"):
        reset_connections()
        packaging.copy(env.kit, ref)
    env.admin_config(
        f'[registries.tls."{host}"]\nca_bundle = "{mtls_registry.ca}"\n'
        f'client_cert = "{mtls_registry.client_cert}"\nclient_key = "{mtls_registry.client_key}"\n'
    )
    r = env.cli("push", env.kit, ref)
    assert r.exit_code == 0, r.output
    r = env.cli("pull", ref, "-t", f"oci:{env.tmp / 'back'}:v1")
    assert r.exit_code == 0, r.output
    reset_connections()
    assert packaging.list_tags(f"{host}/team/mtls")[0]["tag"] == "v1"
    # the certificate is for that host only: another TLS registry does not get it
    settings = load_config().storage_settings()
    assert settings.options_for("127.0.0.1:1").get("client_cert") is None
    env.admin_config(
        f'[registries.tls."{host}"]\nca_bundle = "{mtls_registry.ca}"\nclient_cert = "/nope.crt"\n'
    )
    assert "client_cert '/nope.crt' for registry" in one_line_error(env.cli("push", env.kit, ref))


# ---- MLflow through modelkit:// ---------------------------------------------------------------------
def test_mlflow_log_artifact_without_and_with_login(env: Env, secret_registry: RegistryServer) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from mlflow_plugin.tracking import artifact_repo

    use_ca(env, secret_registry)
    host = secret_registry.host
    run = "ab" * 16
    src = env.tmp / "notes.txt"
    src.write_text("hello")
    artifact_repo._REPOS.clear()
    repo = get_artifact_repository(f"modelkit://{host}/team/mlflow-creds/{run}/artifacts")
    with pytest.raises(MlflowException) as e:
        repo.log_artifact(str(src))
    msg = str(e.value.message)
    assert "\n" not in msg and host in msg and f"mlflow-modelkit login {host}" in msg
    env.outputs.append(msg)
    assert env.cli("login", host, "-u", USER, "--password-stdin", input=PASSWORD).exit_code == 0
    artifact_repo._REPOS.clear()
    repo = get_artifact_repository(f"modelkit://{host}/team/mlflow-creds/{run}/artifacts")
    repo.log_artifact(str(src))
    assert [f.path for f in repo.list_artifacts()] == ["notes.txt"]
    artifact_repo._REPOS.clear()
