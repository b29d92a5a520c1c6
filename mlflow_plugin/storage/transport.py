"""HTTP transport for the registry client: connections per host, TLS and loopback detection,
request bodies that stream and hash, responses read in bounded pieces, and one-line error text.

No OCI protocol lives here (that is :mod:`mlflow_plugin.storage.registry`); this is what the
protocol sends its requests through, the way go-containerregistry keeps ``remote/transport``
under ``remote``.

>>> split_registry("localhost:5000", None)
('http', 'localhost:5000')
>>> split_registry("registry.example.com", None)
('https', 'registry.example.com')
>>> backoff(0) <= 1.0
True
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import random
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import IO

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from mlflow_plugin._internal.hashing import HashWorker
from mlflow_plugin.errors import (
    DigestMismatchError,
    ModelKitError,
    ReferenceFormatError,
    RegistryError,
)
from mlflow_plugin.storage.auth import (
    Credentials,
    RegistryAuth,
)
from mlflow_plugin.storage.base import (
    Progress,
)
from mlflow_plugin.storage.mediatypes import MANIFEST_TYPES, OCI_MANIFEST

log = logging.getLogger(__name__)
BLOCK = 1 << 20
_USER_AGENT = "mlflow-modelkit"


class TransientError(RegistryError):
    """A failure worth retrying (connection lost, 5xx, 429); still a :class:`RegistryError`."""


# ---- hosts and connections -------------------------------------------------------------------------
def host_only(host: str) -> str:
    """``[::1]:5000`` → ``::1``; ``127.0.0.1:5000`` → ``127.0.0.1``; ``localhost`` → ``localhost``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (with or without a port).

    >>> [is_loopback(h) for h in ("localhost:5000", "127.3.0.1", "[::1]:80", "10.0.0.1", "r.example")]
    [True, True, True, False, False]
    """
    name = host_only(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_registry(registry: str, insecure: bool | None, tls_hint: bool = False) -> tuple[str, str]:
    """``("http://h:1" | "h:1", insecure)`` → ``(scheme, host)``; ``tls_hint``: a CA file was given."""
    reg = registry.strip().rstrip("/")
    scheme = ""
    if "://" in reg:
        scheme, _, reg = reg.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ReferenceFormatError(f"invalid registry {registry!r}: use host[:port]")
    if not reg or "/" in reg:
        raise ReferenceFormatError(f"invalid registry {registry!r}: use host[:port], e.g. localhost:5000")
    if insecure is not None:
        scheme = "http" if insecure else "https"
    elif not scheme:
        scheme = "http" if is_loopback(reg) and not tls_hint else "https"
    return scheme, reg


SCHEMES: dict[str, str] = {}


def probe_loopback_scheme(host: str) -> str:
    """A loopback registry may still speak TLS (like docker, try it): one cached probe per host."""
    cached = SCHEMES.get(host)
    if cached:
        return cached
    scheme = "http"
    try:
        r = requests.get(f"http://{host}/v2/", timeout=3, allow_redirects=False)
        if r.status_code == 400 and "HTTPS server" in r.text:
            scheme = "https"
        r.close()
    except requests.RequestException:
        return "http"  # unreachable now: do not cache, the real request reports the error
    SCHEMES[host] = scheme
    return scheme


def resolve_verify(ca_bundle: str | None) -> bool | str:
    path = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not path:
        return True
    if not os.path.exists(path):
        origin = "ca_bundle" if ca_bundle else "REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE"
        raise ModelKitError(
            f"CA bundle {path!r} ({origin}) does not exist: point it at the registry's CA file"
        )
    return path


def check_client_cert(client_cert: tuple[str, str] | None, host: str) -> tuple[str, str] | None:
    """``(certificate file, key file)`` for mTLS to ``host`` after checking both exist."""
    if not client_cert:
        return None
    for what, path in zip(("client_cert", "client_key"), client_cert, strict=True):
        if not path or not os.path.isfile(path):
            raise ModelKitError(
                f'{what} {path!r} for registry {host} does not exist: fix [registries.tls."{host}"] '
                "in the admin config"
            )
    return client_cert


class Transport:
    """A keep-alive session plus auth state for one registry base URL and one set of credentials."""

    def __init__(
        self,
        base_url: str,
        host: str,
        credentials: Credentials | None,
        verify: bool | str,
        timeout: float,
        client_cert: tuple[str, str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.host = host
        self.verify = verify
        self.client_cert = client_cert
        self.session = requests.Session()
        if client_cert:
            self.session.cert = client_cert
        self.session.trust_env = False  # no ~/.netrc surprises; proxies and CA are resolved here
        self.session.proxies = requests.utils.get_environ_proxies(base_url)
        self.session.headers["User-Agent"] = _USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.auth = RegistryAuth(host, credentials, self.session, verify=verify, timeout=timeout)
        self.pinged = False
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r}, auth={self.auth!r})"


TRANSPORTS: dict[tuple[str, str, Credentials | None, tuple[str, str] | None], Transport] = {}
TRANSPORTS_LOCK = threading.Lock()
INDEX_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}


def transport_for(
    base_url: str,
    host: str,
    credentials: Credentials | None,
    verify: bool | str,
    timeout: float,
    client_cert: tuple[str, str] | None = None,
) -> Transport:
    key = (base_url, str(verify), credentials, client_cert)
    with TRANSPORTS_LOCK:
        t = TRANSPORTS.get(key)
        if t is None:
            t = TRANSPORTS[key] = Transport(base_url, host, credentials, verify, timeout, client_cert)
        return t


def index_lock(base_url: str, repository: str, tag: str) -> threading.Lock:
    with TRANSPORTS_LOCK:
        return INDEX_LOCKS.setdefault((base_url, repository, tag), threading.Lock())


def reset_connections() -> None:
    """Close every pooled registry session and forget cached tokens (e.g. after a credential change).

    >>> reset_connections()
    """
    with TRANSPORTS_LOCK:
        transports = list(TRANSPORTS.values())
        TRANSPORTS.clear()
    for t in transports:
        t.session.close()


# ---- error text ----------------------------------------------------------------------------------
def exc_chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [e]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        for nxt in (cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def connection_reason(e: BaseException, timeout: float) -> str:
    chain = list(exc_chain(e))
    checks: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (ConnectionRefusedError, "connection refused"),
        (socket.gaierror, "cannot resolve the host name"),
        ((ConnectionResetError, BrokenPipeError, ConnectionAbortedError), "connection reset by the registry"),
        (http.client.RemoteDisconnected, "connection closed by the registry"),
        (
            (TimeoutError, socket.timeout, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError),
            f"no answer within {timeout:g}s",
        ),
        (urllib3.exceptions.ProtocolError, "connection broken"),
    ]
    for types, text in checks:
        if any(isinstance(x, types) for x in chain):
            return text
    return type(e).__name__


CLIENT_CERT_ALERTS = ("certificate required", "bad certificate", "handshake failure", "unknown ca")


def tls_reason(e: BaseException) -> str:
    for x in exc_chain(e):
        if isinstance(x, ssl.SSLError) and x.reason and "alert" in str(x.reason).lower():
            return str(x.reason).lower().replace("_", " ")
        if isinstance(x, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {x.verify_message}"
        if isinstance(x, ssl.SSLError) and x.reason:
            return str(x.reason).lower().replace("_", " ")
    return "TLS handshake failed"


def tls_hint(reason: str, host: str, client_cert: tuple[str, str] | None) -> str:
    """The fix for a failed TLS handshake with registry ``host``.

    >>> tls_hint("tlsv13 alert certificate required", "r:5443", None)[:57]
    'the registry requires a client certificate (mTLS): set cl'
    """
    if "wrong version" in reason:
        return "the registry may speak plain HTTP: use insecure=True"
    if "alert" in reason and any(a in reason for a in CLIENT_CERT_ALERTS):
        if not client_cert:
            return (
                "the registry requires a client certificate (mTLS): set client_cert and client_key in "
                f'[registries.tls."{host}"] of the admin config'
            )
        return (
            "the registry refused the client certificate: check client_cert/client_key in "
            f'[registries.tls."{host}"] (is it signed by a CA the registry trusts?)'
        )
    return (
        f'pass ca_bundle=<CA certificate file>, set ca_bundle in [registries.tls."{host}"] or set '
        "REQUESTS_CA_BUNDLE to the registry's CA"
    )


def error_detail(resp: requests.Response) -> tuple[str, str]:
    """``(code, one-line message)`` from an OCI JSON error body (best effort, small reads only)."""
    try:
        if getattr(resp, "_content", False) is not False:  # body already loaded (stream=False)
            raw = resp.content[:8192]
        else:
            raw = resp.raw.read(8192, decode_content=True) if resp.raw is not None else b""
    except Exception:
        raw = b""
    code, msg = "", ""
    try:
        errors = json.loads(raw).get("errors") or []
        if errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code") or "")
            msg = str(errors[0].get("message") or "")
    except (ValueError, AttributeError):
        msg = raw.decode("utf-8", "replace")
    msg = " ".join(msg.split())[:200]
    return code, msg


def discard(resp: requests.Response, limit: int = 65536) -> None:
    """Drain a small unwanted body so the keep-alive connection goes back to the pool, then close."""
    try:
        if getattr(resp, "_content", False) is False and resp.raw is not None:
            resp.raw.read(limit)
    except Exception:
        pass
    resp.close()


def looks_like_go_tls_reject(resp: requests.Response) -> bool:
    """Go's TLS server answers plain HTTP with a bare ``HTTP/1.0 400`` (no registry headers)."""
    version = getattr(resp.raw, "version", None)
    return version == 10 and "Docker-Distribution-Api-Version" not in resp.headers


def short(digest: str) -> str:
    return digest[:19] + "…" if len(digest) > 19 else digest


def with_query(url: str, **params: str) -> str:
    """Add query parameters to a URL that may already have some (upload ``Location``s do)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def seek_position(src: IO[bytes]) -> int | None:
    try:
        if hasattr(src, "seekable") and not src.seekable():
            return None
        return src.tell()
    except (OSError, AttributeError, ValueError):
        return None


def backoff(attempt: int, resp: requests.Response | None = None) -> float:
    delay = min(2.0, 0.2 * (2**attempt))
    if resp is not None:
        with contextlib.suppress(ValueError):
            delay = min(2.0, max(delay, float(resp.headers.get("Retry-After", ""))))
    return delay * (0.8 + 0.4 * random.random())


def media_type_of(resp: requests.Response, data: bytes) -> str:
    ct = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if ct in MANIFEST_TYPES:
        return ct
    try:
        mt = json.loads(data).get("mediaType")
    except (ValueError, AttributeError):
        mt = None
    return mt if isinstance(mt, str) and mt else OCI_MANIFEST


# ---- request bodies ------------------------------------------------------------------------------
class SourceError(ModelKitError):
    """Reading the data to upload failed (not the registry's fault)."""


def read_source(src: IO[bytes], n: int) -> bytes:
    """``src.read(n)``; an OSError becomes :class:`SourceError` so urllib3 does not take it for a
    network failure (it treats every OSError raised while sending as a connection problem)."""
    try:
        return src.read(n)
    except OSError as e:
        raise SourceError(f"reading the upload source failed ({type(e).__name__}: {e})") from e


def next_chunk(it: Iterator[bytes]) -> bytes | None:
    try:
        return next(it)
    except StopIteration:
        return None
    except OSError as e:
        raise SourceError(f"producing the upload stream failed ({type(e).__name__}: {e})") from e


class FileBody:
    """Exactly ``size`` bytes of ``src`` as 1 MiB blocks; ``len()`` gives requests the Content-Length."""

    def __init__(self, src: IO[bytes], size: int, progress: Progress | None) -> None:
        self.src, self.size, self.progress = src, size, progress
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        left = self.size
        while left > 0:
            b = read_source(self.src, min(BLOCK, left))
            if not b:
                raise DigestMismatchError(
                    f"upload source ended after {self.size - left} of the expected {self.size} bytes"
                )
            left -= len(b)
            self.sent += len(b)
            if self.progress:
                self.progress(len(b))
            yield b


class HashingChunks:
    """Re-block an iterable of bytes into ≥1 MiB pieces while hashing and counting them."""

    def __init__(
        self, chunks: Iterable[bytes], progress: Progress | None, expected: int | None = None
    ) -> None:
        self._chunks = chunks
        self._progress = progress
        self.expected = expected
        self.hasher = hashlib.sha256()
        self.size = 0
        self._worker = HashWorker()  # hash on another core while this thread sends

    def _emit(self, b: bytes) -> bytes:
        self._worker.update(self.hasher, b)
        self.size += len(b)
        if self._progress:
            self._progress(len(b))
        return b

    def __iter__(self) -> Iterator[bytes]:
        buf = bytearray()
        it = iter(self._chunks)
        while (chunk := next_chunk(it)) is not None:
            if not chunk:
                continue
            if not buf and len(chunk) >= BLOCK:
                yield self._emit(bytes(chunk))
                continue
            buf += chunk
            if len(buf) >= BLOCK:
                yield self._emit(bytes(buf))
                buf.clear()
        if buf:
            yield self._emit(bytes(buf))
        self._worker.join()
        self._worker.close()
        if self.expected is not None and self.size != self.expected:
            raise DigestMismatchError(f"upload stream had {self.size} bytes, expected {self.expected}")

    def __len__(self) -> int:
        if self.expected is None:
            raise TypeError("size unknown")
        return self.expected

    @property
    def digest(self) -> str:
        self._worker.join()
        return "sha256:" + self.hasher.hexdigest()


class ResponseStream:
    """``read(n)`` over a streamed response body, fetching at least 1 MiB per socket read.

    Small reads are served from a 1 MiB buffer; network failures become :class:`RegistryError`.
    """

    def __init__(self, resp: requests.Response, what: str) -> None:
        self._resp = resp
        self._what = what
        self._buf = b""
        self._pos = 0

    def _raw_read(self, n: int) -> bytes:
        try:
            return self._resp.raw.read(n)
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as e:
            reason = connection_reason(e, 0)
            raise RegistryError(f"{self._what} was interrupted ({reason}): try again") from None

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._buf[self._pos :], *iter(lambda: self._raw_read(BLOCK), b"")]
            self._buf, self._pos = b"", 0
            return b"".join(parts)
        if self._pos >= len(self._buf):
            if n >= BLOCK:
                return self._raw_read(n)
            self._buf, self._pos = self._raw_read(BLOCK), 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def close(self) -> None:
        self._resp.close()
