"""Registry credentials and the HTTP authentication dance (Basic and Bearer token).

Where credentials come from (:func:`resolve_credentials`), first match wins -- the order docker
and oras users expect, shown by ``mlflow-modelkit config show``:

1. ``MLFLOW_MODELKIT_REGISTRY_USERNAME`` / ``MLFLOW_MODELKIT_REGISTRY_PASSWORD`` (any host);
2. the admin config's ``[registries] credential_helpers = {"HOST:PORT" = "NAME"}``: run
   ``docker-credential-NAME`` for that host (the TOML names a helper only, never a secret);
3. the Docker config, ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``:
   ``credHelpers[host]`` (run that helper), else ``auths[host]`` (``auth`` = base64
   ``user:password``, ``username``/``password`` or ``identitytoken``), else ``credsStore``
   (run that helper). See :mod:`mlflow_plugin.storage.dockerconfig` and
   :mod:`mlflow_plugin.storage.credhelpers`.

How they are used (:class:`RegistryAuth`, one per registry host and credentials):

* **Basic**: learnt from the first ``401 WWW-Authenticate: Basic``; from then on every request
  carries the header pre-emptively, so a large upload body is never sent unauthenticated (a
  registry answers such a body with 401 and closes the connection mid-upload).
* **Bearer**: on ``401 WWW-Authenticate: Bearer realm=…,service=…,scope=…`` a token is fetched
  from ``realm`` (``GET`` with Basic credentials and ``service``/``scope`` parameters, or the
  OAuth2 refresh-token ``POST`` for an identity token; the answer's ``token`` or
  ``access_token`` is used). Tokens are cached per scope set. A later 401 with
  ``error="insufficient_scope"`` (e.g. a ``pull`` token meeting a ``POST`` upload) fetches a new
  token for the union of the old and the required scopes -- it is never answered by re-sending
  the same token. If a token that was requested for every needed scope is still refused, the
  account lacks the permission and :class:`~mlflow_plugin.errors.AuthError` says so.

Secrets never appear in ``repr``, exception messages or logs: only the user name does.

>>> c = Credentials(username="ci", password="s3cret")
>>> c
Credentials(username='ci', password='***', source='')
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mlflow_plugin.errors import AuthError, RegistryError
from mlflow_plugin.storage import dockerconfig
from mlflow_plugin.storage.credhelpers import TOKEN_USERNAME, helper_get

log = logging.getLogger(__name__)

ENV_USERNAME = "MLFLOW_MODELKIT_REGISTRY_USERNAME"
ENV_PASSWORD = "MLFLOW_MODELKIT_REGISTRY_PASSWORD"
CREDENTIALS_HINT = (
    "log in with 'mlflow-modelkit login HOST' (or docker login; or set "
    "MLFLOW_MODELKIT_REGISTRY_USERNAME/_PASSWORD)"
)


def login_hint(host: str) -> str:
    """How to log in to ``host``, for error messages.

    >>> login_hint("r.example:5000")[:50]
    "log in with 'mlflow-modelkit login r.example:5000'"
    """
    return CREDENTIALS_HINT.replace("HOST", host)


# ---- credentials --------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Credentials:
    """Registry credentials: user name and password, or an identity (refresh) token.

    The ``repr`` masks the secrets, so a ``Credentials`` object is safe to log.

    >>> Credentials("alice", "pw", source="env").who
    "user 'alice'"
    >>> "pw" in repr(Credentials("alice", "pw"))
    False
    """

    username: str = ""
    password: str = ""
    identity_token: str = ""
    source: str = ""

    def __repr__(self) -> str:
        parts = [f"username={self.username!r}"]
        if self.password:
            parts.append("password='***'")
        if self.identity_token:
            parts.append("identity_token='***'")
        parts.append(f"source={self.source!r}")
        return f"Credentials({', '.join(parts)})"

    __str__ = __repr__

    @property
    def has_password(self) -> bool:
        """True if a user name and password are available for Basic authentication."""
        return bool(self.username) and bool(self.password)

    @property
    def who(self) -> str:
        """How to name the account in messages, without any secret.

        >>> Credentials(identity_token="t").who
        'an identity token'
        """
        if self.username:
            return f"user {self.username!r}"
        return "an identity token" if self.identity_token else "anonymous access"

    def basic_header(self) -> str:
        """The ``Authorization: Basic …`` value (raises :class:`AuthError` without a password).

        >>> Credentials("a", "b").basic_header()
        'Basic YTpi'
        """
        if not self.has_password:
            raise AuthError(f"{self.who} has no password for Basic authentication: {CREDENTIALS_HINT}")
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def _docker_config_path(environ: Mapping[str, str]) -> Path:
    return dockerconfig.config_path(environ)


def _credentials(found: dockerconfig.Found | None) -> Credentials | None:
    if found is None:
        return None
    return Credentials(found.username, found.password, found.identity_token, found.source)


def load_docker_config_credentials(
    host: str, path: str | os.PathLike[str] | None = None
) -> Credentials | None:
    """Credentials for ``host`` from a Docker ``config.json``: ``credHelpers``, ``auths``, ``credsStore``.

    >>> load_docker_config_credentials("nowhere.invalid", "/nonexistent/config.json") is None
    True
    """
    cfg_path = Path(path) if path else _docker_config_path(os.environ)
    return _credentials(dockerconfig.lookup(host, cfg_path))


def resolve_credentials(
    registry_host: str,
    environ: Mapping[str, str] | None = None,
    helpers: Mapping[str, str] | None = None,
) -> Credentials | None:
    """Find credentials for ``registry_host``: env variables, then the admin config's credential
    helper for the host (``helpers``: host → helper name), then the Docker config.

    >>> resolve_credentials("r.example:5000", {ENV_USERNAME: "ci", ENV_PASSWORD: "x"})
    Credentials(username='ci', password='***', source='environment')
    """
    env = os.environ if environ is None else environ
    user, password = env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, "")
    if user and password:
        return Credentials(username=user, password=password, source="environment")
    if user or password:
        log.warning("only one of %s/%s is set; ignoring both", ENV_USERNAME, ENV_PASSWORD)
    want = dockerconfig.normalise_host(registry_host)
    for host, name in (helpers or {}).items():
        if dockerconfig.normalise_host(host) == want:
            got = helper_get(name, registry_host, "[registries] credential_helpers in the admin config")
            if got is None:
                return None
            source = f"credential helper docker-credential-{name} (admin config)"
            if got[0] == TOKEN_USERNAME:
                return Credentials(identity_token=got[1], source=source)
            return Credentials(username=got[0], password=got[1], source=source)
    return load_docker_config_credentials(registry_host, _docker_config_path(env))


def credential_sources(
    environ: Mapping[str, str] | None = None, helpers: Mapping[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """``(setting, value, source)`` rows for ``config show``: each credential source that applies,
    in lookup order, secrets masked.

    >>> credential_sources({ENV_USERNAME: "ci", ENV_PASSWORD: "x", "DOCKER_CONFIG": "/nonexistent"})
    [('credentials.1', "user 'ci', password ********", 'env MLFLOW_MODELKIT_REGISTRY_USERNAME/_PASSWORD')]
    """
    env = os.environ if environ is None else environ
    rows: list[tuple[str, str, str]] = []
    user, password = env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, "")
    if user and password:
        rows.append(("env", f"user {user!r}, password ********", f"env {ENV_USERNAME}/_PASSWORD"))
    for host, name in sorted((helpers or {}).items()):
        where = "admin config [registries] credential_helpers"
        rows.append(("admin", f"{host} -> docker-credential-{name}", where))
    path = _docker_config_path(env)
    for what, value in dockerconfig.describe(path):
        rows.append(("docker", f"{what}: {value}", f"docker config {path}"))
    return [(f"credentials.{i}", v, s) for i, (_, v, s) in enumerate(rows, 1)]


# ---- WWW-Authenticate and scopes -----------------------------------------------------------------
@dataclass
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge.

    >>> parse_challenges('Bearer realm="https://a/t",service="r",scope="repository:x:pull,push"')[0].params["scope"]
    'repository:x:pull,push'
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')
_SCHEME_RE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_.-]*)(?=\s|,|$)\s*,?")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header into challenges (quoted and bare parameter values).

    >>> [c.scheme for c in parse_challenges('Basic realm="r", Bearer realm="x",error=invalid_token')]
    ['basic', 'bearer']
    """
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        m = _PARAM_RE.match(header, pos) if out else None
        if m:
            value = m.group(2) if m.group(2) is not None else m.group(3)
            out[-1].params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value or "")
            pos = m.end()
            continue
        m = _SCHEME_RE.match(header, pos)
        if not m:
            break
        out.append(Challenge(m.group(1).lower()))
        pos = m.end()
    return out


_ACTION_ORDER = {"pull": 0, "push": 1, "delete": 2, "*": 3}
Scopes = dict[str, frozenset[str]]
"""``{"repository:team/x": frozenset({"pull", "push"})}``."""


def parse_scopes(scopes: Iterable[str]) -> Scopes:
    """Parse scope strings (``type:name:action,action``; space-separated lists allowed).

    >>> {k: sorted(v) for k, v in parse_scopes(["repository:a/b:pull,push"]).items()}
    {'repository:a/b': ['pull', 'push']}
    """
    out: dict[str, set[str]] = {}
    for item in scopes:
        for scope in (item or "").split():
            resource, sep, actions = scope.rpartition(":")
            if not sep or not resource:
                continue
            out.setdefault(resource, set()).update(a for a in actions.split(",") if a)
    return {k: frozenset(v) for k, v in out.items()}


def merge_scopes(*many: Scopes) -> Scopes:
    """Union of scope sets.

    >>> merged = merge_scopes({"repository:x": frozenset({"pull"})}, {"repository:x": frozenset({"push"})})
    >>> merged == {"repository:x": frozenset({"pull", "push"})}
    True
    """
    out: dict[str, frozenset[str]] = {}
    for scopes in many:
        for res, actions in scopes.items():
            out[res] = out.get(res, frozenset()) | actions
    return out


def covers(have: Scopes, need: Scopes) -> bool:
    """True if ``have`` grants every action in ``need`` (``*`` grants all).

    >>> covers(parse_scopes(["repository:x:pull,push"]), parse_scopes(["repository:x:pull"]))
    True
    """
    for res, actions in need.items():
        got = have.get(res, frozenset())
        if "*" not in got and not actions <= got:
            return False
    return True


def format_scopes(scopes: Scopes) -> list[str]:
    """Scope strings for the token request, one per resource, actions in a stable order.

    >>> format_scopes({"repository:x": frozenset({"push", "pull"})})
    ['repository:x:pull,push']
    """
    return [
        f"{res}:{','.join(sorted(actions, key=lambda a: (_ACTION_ORDER.get(a, 9), a)))}"
        for res, actions in sorted(scopes.items())
        if actions
    ]


def repository_scope(repository: str, *actions: str) -> Scopes:
    """The scope needed to act on a repository.

    >>> format_scopes(repository_scope("team/x", "pull", "push"))
    ['repository:team/x:pull,push']
    """
    return {f"repository:{repository}": frozenset(actions)}


# ---- the per-registry authenticator ------------------------------------------------------------
@dataclass
class _Token:
    value: str
    requested: Scopes
    expires: float


class RegistryAuth:
    """Authentication state for one registry host and one set of credentials (thread-safe).

    ``session`` is used for token requests so their connections are pooled too. Typical use by
    the client::

        auth = RegistryAuth("r.example", creds, session, verify=True)
        header = auth.authorization(scopes)          # before each request (may be None)
        ...                                          # on a 401:
        auth.handle_401(resp, scopes, sent=header, what="push to r.example/x")   # or raises
    """

    def __init__(
        self,
        host: str,
        credentials: Credentials | None,
        session: requests.Session,
        *,
        verify: bool | str = True,
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.credentials = credentials
        self._session = session
        self._verify = verify
        self._timeout = timeout
        self._lock = threading.RLock()
        self.scheme: str | None = None  # "basic", "bearer", or None (unknown / not needed)
        self._realm = ""
        self._service = ""
        self._tokens: list[_Token] = []
        #: Requested scopes of the last 100 tokens fetched, oldest first (for tests and debugging).
        self.token_requests: list[list[str]] = []

    def __repr__(self) -> str:
        return f"RegistryAuth(host={self.host!r}, scheme={self.scheme!r}, credentials={self.credentials!r})"

    # -- what to send ---------------------------------------------------------------------------
    def authorization(self, scopes: Scopes) -> str | None:
        """The ``Authorization`` value to send pre-emptively for a request needing ``scopes``."""
        with self._lock:
            if self.scheme == "basic" and self.credentials and self.credentials.has_password:
                return self.credentials.basic_header()
            if self.scheme == "bearer":
                tok = self._covering(scopes) or self._related(scopes)
                return f"Bearer {tok.value}" if tok else None
            return None

    def known(self) -> bool:
        """True once the registry's scheme is known (after a 401 or a ping)."""
        return self.scheme is not None

    def ensure_token(self, scopes: Scopes, what: str) -> None:
        """Fetch a token covering ``scopes`` now (before a request whose body cannot be replayed)."""
        with self._lock:
            if self.scheme == "bearer" and not self._covering(scopes):
                self._fetch(scopes, what)

    def learn(self, resp: requests.Response) -> None:
        """Record the scheme of a 401 without acting on it (used by the ``/v2/`` ping)."""
        with self._lock:
            self._learn(self._challenge(resp))

    # -- reacting to a 401 -----------------------------------------------------------------------
    def handle_401(
        self, resp: requests.Response, scopes: Scopes, *, sent: str | None, what: str, attempt: int = 0
    ) -> None:
        """Prepare for a retry of a request that got 401, or raise :class:`AuthError`.

        ``attempt`` counts the 401s this request already got; after two the credentials are
        considered refused.
        """
        with self._lock:
            ch = self._challenge(resp)
            self._learn(ch)
            if ch is None:
                raise AuthError(f"{what}: registry {self.host} answered 401 without a usable challenge")
            if ch.scheme == "basic":
                self._basic_retry(sent, what)
            elif attempt >= 2:
                raise self._denied(self._need(ch, scopes), ch, what)
            else:
                self._bearer_retry(ch, scopes, sent, what)

    def _challenge(self, resp: requests.Response) -> Challenge | None:
        challenges = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
        for ch in challenges:
            if ch.scheme == "bearer" and ch.params.get("realm"):
                return ch
        return next((c for c in challenges if c.scheme == "basic"), None)

    def _learn(self, ch: Challenge | None) -> None:
        if ch is None:
            return
        self.scheme = ch.scheme
        if ch.scheme == "bearer":
            self._realm = ch.params.get("realm", "")
            self._service = ch.params.get("service", "")

    def _basic_retry(self, sent: str | None, what: str) -> None:
        if not self.credentials:
            raise AuthError(
                f"{what}: registry {self.host} requires credentials (401): {login_hint(self.host)}"
            )
        if sent and sent.lower().startswith("basic "):
            raise self._rejected(what)
        if not self.credentials.has_password:
            raise AuthError(
                f"{what}: registry {self.host} uses Basic auth but {self.credentials.who} has no "
                f"password: {login_hint(self.host)}"
            )

    @staticmethod
    def _need(ch: Challenge, scopes: Scopes) -> Scopes:
        return merge_scopes(scopes, parse_scopes([ch.params.get("scope", "")]))

    def _bearer_retry(self, ch: Challenge, scopes: Scopes, sent: str | None, what: str) -> None:
        need = self._need(ch, scopes)
        sent_tok = self._find_sent(sent)
        if sent_tok:
            if covers(sent_tok.requested, need):
                self._tokens.remove(sent_tok)
                if ch.params.get("error") == "insufficient_scope":
                    # we asked the token server for all of it and it granted less: a permission problem
                    raise self._denied(need, ch, what)
                # refused for another reason (expired, revoked): simply fetch it again
            # escalate: keep what the old token could do on these resources, add what is needed now
            kept = {res: acts for res, acts in sent_tok.requested.items() if res in need}
            need = merge_scopes(kept, need)
        self._fetch(need, what)

    def _rejected(self, what: str) -> AuthError:
        if not self.credentials:
            return AuthError(
                f"{what}: registry {self.host} requires credentials (its token server refused anonymous "
                f"access): {login_hint(self.host)}"
            )
        who = self.credentials.who if self.credentials else "anonymous access"
        src = f" (from {self.credentials.source})" if self.credentials and self.credentials.source else ""
        return AuthError(
            f"{what}: registry {self.host} rejected the credentials for {who}{src} (401): "
            f"{login_hint(self.host)}"
        )

    def _denied(self, need: Scopes, ch: Challenge, what: str) -> AuthError:
        err = ch.params.get("error") or "unauthorized"
        wanted = " ".join(format_scopes(need))
        if not self.credentials:
            return AuthError(
                f"{what}: registry {self.host} denied {wanted} to anonymous access ({err}): "
                f"{login_hint(self.host)}"
            )
        return AuthError(
            f"{what}: registry {self.host} denied {wanted} to {self.credentials.who} ({err}): "
            "the account lacks that permission; ask for access or use other credentials"
        )

    # -- tokens ----------------------------------------------------------------------------------
    def _covering(self, scopes: Scopes) -> _Token | None:
        now = time.monotonic()
        self._tokens = [t for t in self._tokens if t.expires > now]
        for tok in reversed(self._tokens):
            if covers(tok.requested, scopes):
                return tok
        return None

    def _related(self, scopes: Scopes) -> _Token | None:
        """The newest live token for any of the same resources (sent so the 401 names what is missing)."""
        now = time.monotonic()
        for tok in reversed(self._tokens):
            if tok.expires > now and set(tok.requested) & set(scopes):
                return tok
        return None

    def _find_sent(self, sent: str | None) -> _Token | None:
        if not sent or not sent.lower().startswith("bearer "):
            return None
        value = sent.split(" ", 1)[1]
        return next((t for t in self._tokens if t.value == value), None)

    def _fetch(self, scopes: Scopes, what: str) -> _Token:
        if not self._realm:
            raise AuthError(f"{what}: registry {self.host} asked for a token without naming a realm")
        scope_list = format_scopes(scopes)
        self.token_requests = [*self.token_requests[-99:], scope_list]
        resp = self._token_request(scope_list, what)
        tok = self._parse_token(resp, scopes, what)
        self._tokens = [*self._tokens[-63:], tok]
        log.debug("got a token from %s for %s", self._realm, scope_list)
        return tok

    def _token_request(self, scope_list: list[str], what: str) -> requests.Response:
        creds = self.credentials
        try:
            if creds and creds.identity_token and not creds.password:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "service": self._service,
                    "scope": " ".join(scope_list),
                    "client_id": "mlflow-modelkit",
                }
                resp = self._session.post(self._realm, data=form, verify=self._verify, timeout=self._timeout)
            else:
                params: list[tuple[str, str]] = [("service", self._service)] if self._service else []
                params += [("scope", s) for s in scope_list]
                headers = {}
                if creds and creds.has_password:
                    params.append(("account", creds.username))
                    headers["Authorization"] = creds.basic_header()
                resp = self._session.get(
                    self._realm, params=params, headers=headers, verify=self._verify, timeout=self._timeout
                )
        except requests.exceptions.SSLError as e:
            raise RegistryError(
                f"{what}: TLS verification of the token server {self._realm} failed "
                f"({type(e).__name__}): pass ca_bundle= or set REQUESTS_CA_BUNDLE"
            ) from None
        except requests.exceptions.RequestException as e:
            raise RegistryError(
                f"{what}: cannot reach the token server {self._realm} of registry "
                f"{self.host} ({type(e).__name__}): is it running?"
            ) from None
        if resp.status_code in (401, 403):
            raise self._rejected(what)
        if resp.status_code != 200:
            raise RegistryError(f"{what}: the token server {self._realm} answered HTTP {resp.status_code}")
        return resp

    def _parse_token(self, resp: requests.Response, scopes: Scopes, what: str) -> _Token:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        value = body.get("token") or body.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{what}: the token server {self._realm} answered without a token")
        try:
            ttl = float(body.get("expires_in") or 60)
        except (TypeError, ValueError):
            ttl = 60.0
        return _Token(value=value, requested=scopes, expires=time.monotonic() + max(ttl - 5.0, 1.0))
