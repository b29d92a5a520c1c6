"""``login``/``logout`` as docker does them: check the credentials against the registry, then store
them in the Docker config (a credential helper if one applies, else ``auths[host].auth``).

Credentials are never stored for a registry reached over plain HTTP unless it is on loopback: the
password would cross the network in clear text on every request.

>>> check_password("S3cr3t\\nsecond line")
Traceback (most recent call last):
...
mlflow_plugin.errors.AuthError: the password contains a line break or control character: give it on one line
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import requests

from mlflow_plugin.errors import AuthError, RegistryError
from mlflow_plugin.storage import dockerconfig
from mlflow_plugin.storage.auth import Credentials, RegistryAuth
from mlflow_plugin.storage.locations import DEFAULT_SETTINGS, StorageSettings
from mlflow_plugin.storage.transport import (
    check_client_cert,
    connection_reason,
    is_loopback,
    probe_loopback_scheme,
    resolve_verify,
    split_registry,
    tls_hint,
    tls_reason,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginResult:
    """Where the credentials went (a helper name or the config file path); no secret."""

    host: str
    username: str
    stored_in: str


def check_username(username: str) -> str:
    """A user name fit for Basic authentication (no ``:``, no control characters)."""
    if not username or any(ord(c) < 32 or ord(c) == 127 for c in username):
        raise AuthError("the user name is empty or contains control characters: give a user name with -u")
    if ":" in username:
        raise AuthError("the user name contains ':', which Basic authentication cannot carry")
    return username


def check_password(password: str) -> str:
    """A password on one line, without control characters."""
    if not password:
        raise AuthError("the password is empty: give it with --password-stdin or at the prompt")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise AuthError("the password contains a line break or control character: give it on one line")
    return password


def _endpoint(host: str, settings: StorageSettings) -> tuple[str, bool | str, tuple[str, str] | None]:
    opts = settings.options_for(host)
    insecure = opts.get("insecure")
    ca = opts.get("ca_bundle")
    scheme, host = split_registry(host, insecure, tls_hint=ca is not None)
    if scheme == "http" and insecure is None:
        scheme = probe_loopback_scheme(host)
    if scheme == "http" and not is_loopback(host):
        raise AuthError(
            f"refusing to store credentials for {host}: it is reached over plain HTTP, so the password "
            "would cross the network unencrypted; serve the registry over TLS and remove it from "
            "[registries] insecure"
        )
    return f"{scheme}://{host}/v2/", resolve_verify(ca), check_client_cert(opts.get("client_cert"), host)


def verify_credentials(
    host: str, username: str, password: str, settings: StorageSettings | None = None, timeout: float = 30.0
) -> None:
    """``GET /v2/`` with the credentials (Basic, or a token from the registry's token server);
    raises :class:`AuthError` ``wrong user name or password for HOST`` if they are refused."""
    url, verify, cert = _endpoint(host, settings or DEFAULT_SETTINGS)
    what = f"login to {host}"
    wrong = AuthError(f"wrong user name or password for {host}")
    with requests.Session() as session:
        session.trust_env = False
        session.proxies = requests.utils.get_environ_proxies(url)
        if cert:
            session.cert = cert
        auth = RegistryAuth(host, Credentials(username, password, source="login"), session, verify=verify)

        def get(header: str | None) -> requests.Response:
            try:
                resp = session.get(
                    url,
                    headers={"Authorization": header} if header else {},
                    verify=verify,
                    timeout=timeout,
                )
            except requests.exceptions.SSLError as e:
                reason = tls_reason(e)
                raise RegistryError(
                    f"{what}: TLS verification of registry {host} failed ({reason}): "
                    f"{tls_hint(reason, host, cert)}"
                ) from None
            except requests.exceptions.RequestException as e:
                raise RegistryError(
                    f"{what}: cannot reach registry {host} ({connection_reason(e, timeout)}): is it running?"
                ) from None
            resp.close()
            return resp

        resp = get(None)
        if resp.status_code == 401:
            auth.learn(resp)
            if auth.scheme == "bearer":
                try:
                    auth.ensure_token({}, what)
                except AuthError:
                    raise wrong from None
            elif auth.scheme != "basic":
                raise AuthError(f"{what}: registry {host} answered 401 without a usable challenge")
            resp = get(auth.authorization({}))
            if resp.status_code == 401:
                raise wrong
        if resp.status_code != 200:
            raise RegistryError(f"{what}: registry {host} answered HTTP {resp.status_code} for /v2/")
    log.info("registry %s accepted the credentials of user %r", host, username)


def login(
    host: str,
    username: str,
    password: str,
    settings: StorageSettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoginResult:
    """Check ``host``/``username``/``password``, verify them against the registry, store them."""
    plain = host.strip().lower().startswith("http://")
    host = dockerconfig.check_login_host(host)
    if plain and not is_loopback(host):
        raise AuthError(
            f"refusing to store credentials for {host}: http:// sends the password unencrypted; "
            "serve the registry over TLS and log in to it without http://"
        )
    check_username(username)
    check_password(password)
    verify_credentials(host, username, password, settings)
    path = dockerconfig.config_path(os.environ if environ is None else environ)
    where = dockerconfig.store(host, username, password, path)
    return LoginResult(host, username, where)


def logout(host: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Remove ``host``'s stored credentials; where they were removed from (empty: none stored)."""
    host = dockerconfig.check_login_host(host)
    path = dockerconfig.config_path(os.environ if environ is None else environ)
    return dockerconfig.erase(host, path)
