"""The Docker client config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``) as docker
and oras read and write it: ``credHelpers``, ``auths`` and ``credsStore``.

Lookup for a host (:func:`lookup`), as docker does: ``credHelpers[host]`` → run that helper; else
``auths[host]`` (``auth`` = base64 ``user:password``, ``username``/``password``,
``identitytoken``); else ``credsStore`` → run that helper. Storing (:func:`store`) goes to the
helper that applies (``credHelpers[host]``, else ``credsStore``), else into ``auths[host].auth``;
the file is rewritten atomically with mode 0600 and every other key kept.

>>> check_login_host("registry.internal:5443")
'registry.internal:5443'
>>> check_login_host("https://registry.internal:5443")
'registry.internal:5443'
>>> check_login_host("registry.internal/team/x")
Traceback (most recent call last):
...
mlflow_plugin.errors.AuthError: invalid registry host 'registry.internal/team/x': give HOST[:PORT] only, ...
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_plugin.errors import AuthError
from mlflow_plugin.storage.credhelpers import (
    TOKEN_USERNAME,
    helper_erase,
    helper_get,
    helper_store,
)

log = logging.getLogger(__name__)

DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
MAX_CONFIG = 4 << 20
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?$")


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base).expanduser() / "config.json"
    return Path.home() / ".docker" / "config.json"


def normalise_host(key: str) -> str:
    """``https://host:5000/v1/`` → ``host:5000``; Docker Hub aliases → ``docker.io``.

    >>> normalise_host("https://index.docker.io/v1/"), normalise_host("R.example:5000")
    ('docker.io', 'r.example:5000')
    """
    host = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", key.strip()).split("/", 1)[0].lower()
    return "docker.io" if host in DOCKER_HUB_ALIASES else host


def check_login_host(text: str) -> str:
    """The ``HOST[:PORT]`` a user typed for login/logout (an ``http(s)://`` prefix is dropped);
    control characters, paths, ``..``, user info and bad ports raise a one-line :class:`AuthError`."""
    shown = repr(text)[:120]
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise AuthError(f"invalid registry host {shown}: it contains control characters or is empty")
    host = text.strip()
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", host)
    if m:
        if m.group(1).lower() not in ("http", "https"):
            raise AuthError(f"invalid registry host {shown}: give HOST[:PORT]")
        host = host[m.end() :]
        host = host[:-1] if host.endswith("/") and host.count("/") == 1 else host
    if "/" in host or "\\" in host or "?" in host or "#" in host:
        raise AuthError(f"invalid registry host {shown}: give HOST[:PORT] only, without a path")
    if "@" in host:
        raise AuthError(f"invalid registry host {shown}: give HOST[:PORT] without a user name")
    if ".." in host or not _HOST.match(host):
        raise AuthError(f"invalid registry host {shown}: give HOST[:PORT], e.g. registry.example.com:5000")
    port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else None
    if port is not None and not 0 < int(port) < 65536:
        raise AuthError(f"invalid registry host {shown}: the port must be 1-65535")
    return host.lower()


def read_config(path: Path) -> dict[str, Any]:
    """The parsed config (``{}`` if missing or unreadable; unreadable is logged, never fatal)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        log.warning("cannot read Docker config %s (%s); ignoring it", path, type(e).__name__)
        return {}
    if len(raw) > MAX_CONFIG:
        log.warning("Docker config %s is larger than %d bytes; ignoring it", path, MAX_CONFIG)
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("Docker config %s is not valid JSON; ignoring it", path)
        return {}
    return data if isinstance(data, dict) else {}


def write_config(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` atomically (temp file in the same directory, fsync, rename), mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _auth_key(auths: Mapping[str, Any], host: str) -> str | None:
    want = normalise_host(host)
    for key in auths:
        if normalise_host(key) == want:
            return key
    return None


def _server_url(host: str) -> str:
    return DOCKER_HUB_KEY if normalise_host(host) == "docker.io" else host


@dataclass(frozen=True)
class Found:
    """What :func:`lookup` found (secrets included: never log this object's fields)."""

    username: str
    password: str
    identity_token: str
    source: str


def _from_entry(entry: Mapping[str, Any], source: str) -> Found | None:
    token = str(entry.get("identitytoken") or "")
    user = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            log.warning("ignoring the malformed 'auth' value in %s", source)
            decoded = ""
        if ":" in decoded:
            user, _, password = decoded.partition(":")
    if not (password or token):
        return None
    return Found(user, password, token, source)


def helper_for(cfg: Mapping[str, Any], host: str) -> tuple[str, str] | None:
    """``(helper name, which key named it)`` that applies to ``host``: credHelpers, else credsStore."""
    helpers = cfg.get("credHelpers") or {}
    if isinstance(helpers, dict):
        key = _auth_key(helpers, host)
        if key is not None and isinstance(helpers[key], str) and helpers[key]:
            return helpers[key], f"credHelpers[{key!r}]"
    store = cfg.get("credsStore")
    if isinstance(store, str) and store:
        return store, "credsStore"
    return None


def _from_helper(name: str, host: str, origin: str) -> Found | None:
    got = helper_get(name, _server_url(host), origin)
    if got is None:
        return None
    user, secret = got
    source = f"credential helper docker-credential-{name}"
    if user == TOKEN_USERNAME:
        return Found("", "", secret, source)
    return Found(user, secret, "", source) if secret else None


def lookup(host: str, path: Path) -> Found | None:
    """Credentials for ``host`` from the Docker config at ``path`` (see the module docstring)."""
    cfg = read_config(path)
    helpers = cfg.get("credHelpers") or {}
    if isinstance(helpers, dict):
        key = _auth_key(helpers, host)
        if key is not None and isinstance(helpers[key], str) and helpers[key]:
            return _from_helper(helpers[key], host, f"credHelpers in {path}")
    auths = cfg.get("auths") or {}
    if isinstance(auths, dict):
        key = _auth_key(auths, host)
        if key is not None and isinstance(auths[key], dict):
            found = _from_entry(auths[key], f"docker config {path}")
            if found:
                return found
    store = cfg.get("credsStore")
    if isinstance(store, str) and store:
        return _from_helper(store, host, f"credsStore in {path}")
    return None


def store(host: str, username: str, password: str, path: Path) -> str:
    """Store credentials for ``host`` as docker does; returns where (for the user's message)."""
    cfg = read_config(path)
    helper = helper_for(cfg, host)
    if helper:
        name, which = helper
        helper_store(name, _server_url(host), username, password, f"{which} in {path}")
        # docker keeps an empty auths entry so `docker login` shows the host as logged in
        auths = cfg.get("auths") if isinstance(cfg.get("auths"), dict) else {}
        assert isinstance(auths, dict)
        key = _auth_key(auths, host) or _server_url(host)
        if auths.get(key) != {}:
            auths[key] = {}
            cfg["auths"] = auths
            write_config(path, cfg)
        return f"credential helper docker-credential-{name}"
    auths = cfg.get("auths") if isinstance(cfg.get("auths"), dict) else {}
    assert isinstance(auths, dict)
    key = _auth_key(auths, host) or _server_url(host)
    raw = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    auths[key] = {"auth": raw}
    cfg["auths"] = auths
    write_config(path, cfg)
    return str(path)


def erase(host: str, path: Path) -> list[str]:
    """Remove ``host``'s credentials (helper ``erase`` and the ``auths`` entry); where from."""
    cfg = read_config(path)
    removed: list[str] = []
    helper = helper_for(cfg, host)
    if helper:
        name, which = helper
        if helper_erase(name, _server_url(host), f"{which} in {path}"):
            removed.append(f"credential helper docker-credential-{name}")
    auths = cfg.get("auths")
    if isinstance(auths, dict):
        key = _auth_key(auths, host)
        if key is not None:
            entry = auths.pop(key)
            write_config(path, cfg)
            if entry and not removed:
                removed.append(str(path))
    return removed


def describe(path: Path) -> list[tuple[str, str]]:
    """``(what, value)`` rows naming what the config at ``path`` holds, never a secret."""
    cfg = read_config(path)
    rows: list[tuple[str, str]] = []
    helpers = cfg.get("credHelpers")
    if isinstance(helpers, dict) and helpers:
        rows.append(
            ("credHelpers", ", ".join(f"{h} -> docker-credential-{n}" for h, n in sorted(helpers.items())))
        )
    auths = cfg.get("auths")
    if isinstance(auths, dict):
        hosts = [k for k, v in auths.items() if isinstance(v, dict) and _from_entry(v, "") is not None]
        if hosts:
            rows.append(("auths", ", ".join(sorted(hosts)) + " (secrets masked)"))
    store_ = cfg.get("credsStore")
    if isinstance(store_, str) and store_:
        rows.append(("credsStore", f"docker-credential-{store_}"))
    return rows
