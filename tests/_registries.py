"""Real OCI registries for the tests: Debian's ``docker-registry`` (CNCF distribution 2.8).

Session-scoped fixtures, each a separate ``docker-registry serve <own config>`` process on a free
loopback port, with its own config and log file in a temp dir (never Debian's broken default
config). They are killed at the end of the session.

* ``registry`` -- plain HTTP, filesystem storage, deletes enabled; ``.stop()``/``.start()``
  restart it on the same port and storage (outage tests), ``.root`` is the storage dir.
* ``auth_registry`` -- TLS (self-signed, SAN ``IP:127.0.0.1``/``DNS:localhost``) + htpasswd
  (bcrypt cost 5); ``.ca``, ``.username``, ``.password``.
* ``token_registry`` -- plain HTTP with ``auth.token`` pointing at :class:`TokenServer`, a
  scope-strict token server written here; ``.username``/``.password`` may pull and push,
  ``.ro_username``/``.ro_password`` may only pull.

If ``docker-registry`` is not on ``PATH`` the fixtures skip (CI installs it)::

    def test_push(registry):
        repo = RegistryRepository(registry.host, "team/x")
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "RegistryServer",
    "TokenServer",
    "auth_registry",
    "registry",
    "registry_binary",
    "token_registry",
]

READY_TIMEOUT = 20.0


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- certificates and passwords -----------------------------------------------------------------
def self_signed_cert(directory: Path, name: str, *, rsa_key: bool = False) -> tuple[Path, Path, Any, Any]:
    """Write ``<name>.crt``/``<name>.key`` (SAN IP:127.0.0.1, DNS:localhost); returns paths and objects."""
    key: Any = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)

    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=rsa_key,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    crt, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return crt, key_path, cert, key


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt (cost 5) htpasswd entry: ``htpasswd -Bbn -C 5`` if available, else python bcrypt."""
    tool = shutil.which("htpasswd")
    if tool:
        out = subprocess.run(
            [tool, "-Bbn", "-C", "5", username, password], check=True, capture_output=True, text=True
        ).stdout
        return out.strip().splitlines()[0]
    import bcrypt

    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"


# ---- the registry process -------------------------------------------------------------------------
@dataclass
class RegistryServer:
    """One ``docker-registry serve`` process with its own config, storage and log."""

    binary: str
    workdir: Path
    name: str
    auth_yaml: str = ""
    tls: tuple[Path, Path] | None = None
    port: int = field(default_factory=free_port)
    ca: str | None = None
    username: str = ""
    password: str = ""
    ro_username: str = ""
    ro_password: str = ""
    token_server: TokenServer | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT``."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def root(self) -> Path:
        """The filesystem storage root (blobs under ``docker/registry/v2/blobs/sha256/<2>/<hex>/data``)."""
        return self.workdir / "data"

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def blob_path(self, digest: str) -> Path:
        """Where the registry stores blob ``digest`` on disk."""
        hexd = digest.split(":", 1)[1]
        return self.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"

    def write_config(self) -> None:
        tls = ""
        if self.tls:
            tls = f"\n  tls:\n    certificate: {self.tls[0]}\n    key: {self.tls[1]}"
        self.config_path.write_text(
            f"""version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: {self.name}
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {self.root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{self.port}
  secret: test-only-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]{tls}
{self.auth_yaml}"""
        )

    def start(self) -> None:
        """Start (or restart) on the same port and storage; waits until ``/v2/`` answers."""
        if self.running:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_config()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._wait_ready()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the process (SIGKILL, like a crash) and wait for it to exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def _wait_ready(self) -> None:
        ctx = ssl.create_default_context(cafile=self.ca) if self.ca else None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=2, context=ctx):
                    return
            except urllib.error.HTTPError:
                return  # 401 counts: the registry is answering
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise RuntimeError(f"registry {self.name} on {self.host} did not start; log tail:\n{tail}")


def registry_binary() -> str:
    """Path of ``docker-registry`` or ``pytest.skip``."""
    path = shutil.which("docker-registry")
    if not path:
        pytest.skip(
            "docker-registry (Debian package 'docker-registry', CNCF distribution 2.8) is not on PATH"
        )
    return path


@contextlib.contextmanager
def own_registry(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[RegistryServer]:
    """A plain-HTTP registry of a test module's own (its process, its storage directory): for
    tests that read or corrupt the registry's storage, or need a second registry."""
    server = RegistryServer(registry_binary(), tmp_path_factory.mktemp(name), name)
    with _running(server):
        yield server


@contextlib.contextmanager
def _running(server: RegistryServer) -> Iterator[RegistryServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---- a scope-strict token server ------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenServer:
    """Docker token auth server: RS256 JWTs with an ``x5c`` header; grants exactly what is asked.

    ``users`` maps a user name to ``(password, allowed actions)``. A scope's granted actions are the
    requested ones the user may do -- never more -- so clients must ask for ``pull,push`` before
    pushing. ``issued`` records ``(user, requested scopes, granted access)`` for every token;
    ``token_field`` chooses the JSON field of the answer (``token`` or ``access_token``).
    """

    def __init__(self, workdir: Path, service: str, issuer: str) -> None:
        self.service, self.issuer = service, issuer
        self.cert_path, _, cert, self._key = self_signed_cert(workdir, "token", rsa_key=True)
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        self.users: dict[str, tuple[str, frozenset[str]]] = {}
        self.issued: list[tuple[str, list[str], list[dict[str, Any]]]] = []
        self.token_field = "token"
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _user(self, header: str) -> str | None:
        """The authenticated user, ``""`` for anonymous, None for bad credentials."""
        if not header:
            return ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        known = self.users.get(user)
        if not known or not secrets.compare_digest(known[0], password):
            return None
        return user

    def grant(self, user: str, scopes: list[str]) -> list[dict[str, Any]]:
        allowed = self.users[user][1] if user else frozenset()
        access: list[dict[str, Any]] = []
        for scope in (s for item in scopes for s in item.split()):
            typ, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a in allowed]
            access.append({"type": typ, "name": name, "actions": granted})
        return access

    def issue(self, user: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(sig)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                user = server._user(self.headers.get("Authorization", ""))
                if url.path != "/token":
                    self._reply(404, {"error": "not found"})
                elif user is None:
                    self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                elif query.get("service", [""])[0] != server.service:
                    self._reply(400, {"error": "unknown service"})
                else:
                    scopes = query.get("scope", [])
                    access = server.grant(user, scopes)
                    server.issued.append((user, scopes, access))
                    self._reply(
                        200,
                        {
                            server.token_field: server.issue(user, access),
                            "expires_in": 300,
                            "issued_at": dt.datetime.now(dt.UTC).isoformat(),
                        },
                    )

        return Handler


# ---- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Plain-HTTP registry with filesystem storage and deletes enabled."""
    binary = registry_binary()
    server = RegistryServer(binary, tmp_path_factory.mktemp("registry-plain"), "registry-plain")
    with _running(server):
        yield server


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """TLS + htpasswd registry; ``.ca`` is the CA file, ``.username``/``.password`` the account."""
    binary = registry_binary()
    workdir = tmp_path_factory.mktemp("registry-auth")
    crt, key, _, _ = self_signed_cert(workdir, "tls")
    user, password = "tester", "pw-" + secrets.token_hex(12)
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(htpasswd_line(user, password) + "\n")
    auth_yaml = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    server = RegistryServer(
        binary,
        workdir,
        "registry-auth",
        auth_yaml=auth_yaml,
        tls=(crt, key),
        ca=str(crt),
        username=user,
        password=password,
    )
    with _running(server):
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Plain-HTTP registry using token auth from a scope-strict :class:`TokenServer`."""
    binary = registry_binary()
    workdir = tmp_path_factory.mktemp("registry-token")
    tokens = TokenServer(workdir, service="test-registry", issuer="test-issuer")
    user, password = "pusher", "pw-" + secrets.token_hex(12)
    ro_user, ro_password = "reader", "ro-" + secrets.token_hex(12)
    tokens.users = {
        user: (password, frozenset({"pull", "push", "delete"})),
        ro_user: (ro_password, frozenset({"pull"})),
    }
    tokens.start()
    auth_yaml = (
        "auth:\n  token:\n"
        f"    realm: {tokens.realm}\n    service: {tokens.service}\n    issuer: {tokens.issuer}\n"
        f"    rootcertbundle: {tokens.cert_path}\n"
    )
    server = RegistryServer(
        binary,
        workdir,
        "registry-token",
        auth_yaml=auth_yaml,
        username=user,
        password=password,
        ro_username=ro_user,
        ro_password=ro_password,
        token_server=tokens,
    )
    try:
        with _running(server):
            yield server
    finally:
        tokens.stop()


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` (test helper)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
