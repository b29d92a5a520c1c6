"""One parser for every ``modelkit://`` URI MLflow builds, plus published kit references.

>>> u = parse_artifact_uri("modelkit://localhost:5000/team/fraud/0123456789abcdef0123456789abcdef/artifacts/plots")
>>> (u.registry, u.repository, u.tag, u.path)
('localhost:5000', 'team/fraud', 'run-0123456789abcdef0123456789abcdef', 'plots')
>>> u = parse_artifact_uri("modelkit:///srv/kits/team/fraud/models/m-0123456789abcdef0123456789abcdef/artifacts")
>>> (u.layout, u.tag, u.path)
('/srv/kits/team/fraud', 'm-0123456789abcdef0123456789abcdef', '')
>>> parse_artifact_uri("modelkit://localhost:5000/team/fraud:v1/model").read_only
True

Shapes (DESIGN "URIs"): ``<exp>/<run_id>/artifacts/…`` → tag ``run-<run_id>``;
``<exp>/models/<model_id>/artifacts/…`` → ``<model_id>``; ``<exp>/traces/<trace_id>/artifacts/…``
→ ``<trace_id>``; a bare root (proxy mode: ``--artifacts-destination``), where every path passed
later carries the key itself (``<exp_id>/<run_id>/artifacts/…``, optionally ``workspaces/<ws>/``
first); ``REPO:TAG[/path]`` and ``REPO@sha256:…[/path]`` are published kits (read-only).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

from mlflow_plugin.errors import ReferenceFormatError, UnsafeArchiveError
from mlflow_plugin.kit.safepath import clean_path
from mlflow_plugin.storage.descriptor import check_digest
from mlflow_plugin.storage.reference import check_repository, check_tag

SCHEME = "modelkit"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_TRACE_ID = re.compile(r"^tr-[0-9a-f]{32}$")
_PUBLISHED = re.compile(
    r"^(?P<repo>[^:@]+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))$"
)


@dataclass(frozen=True)
class ArtifactLocation:
    """Where a ``modelkit://`` URI points: a store, a kit within it, and a path inside the kit.

    Exactly one of ``registry`` and ``layout`` is set. ``tag`` is the draft tag (or published
    tag); ``digest`` pins a published kit. ``tag is None and digest is None`` means a bare root
    (proxy mode) whose paths must each carry the key.
    """

    registry: str | None
    layout: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None
    path: str = ""
    read_only: bool = False

    @property
    def store(self) -> str:
        """A reference :func:`~mlflow_plugin.storage.locations.open_location` understands (no tag)."""
        return f"oci:{self.layout}" if self.layout else f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str | None:
        return self.digest or self.tag

    @property
    def is_root(self) -> bool:
        return self.tag is None and self.digest is None

    def __str__(self) -> str:
        base = (
            f"{SCHEME}://{self.registry}/{self.repository}".rstrip("/")
            if self.registry
            else f"{SCHEME}://{self.layout}"
        )
        if self.read_only:
            base += f"@{self.digest}" if self.digest else f":{self.tag}"
        return base + (f"/{self.path}" if self.path else "")

    def child(self, path: str | None) -> ArtifactLocation:
        """Resolve a path passed to an ArtifactRepository method against this location.

        On a bare root the path must start with the key (proxy mode); otherwise it is relative
        to the artifact root. Paths are validated: no ``..``, no absolute paths.
        """
        raw = (path or "").strip("/")
        if (
            self.is_root
            and raw
            and any(_PUBLISHED.match(x) and (":" in x or "@" in x) for x in raw.split("/"))
        ):
            # MLflow loads "modelkit://host/team/fraud@sha256:…" as root "…/team" + path "fraud@sha256:…"
            # (the part after the kit reference is checked by the parser)
            return parse_artifact_uri(f"{self}/{raw}")
        rel = _clean_rel(path or "")
        if not self.is_root:
            return replace(self, path=posixpath.join(self.path, rel).strip("/") if rel else self.path)
        if not rel:
            return self
        return _split_key(self, rel.split("/"), f"path {path!r}")


def _clean_rel(path: str) -> str:
    """An artifact path under the one safe-path rule ('' for the root)."""
    p = path.strip("/")
    try:
        return clean_path(p, "artifact path") if p else ""
    except UnsafeArchiveError as e:
        raise ReferenceFormatError(str(e)) from None


class _NoKey(ReferenceFormatError):
    """The path holds no run/model/trace key (then it may be a plain repository)."""


def _split_key(base: ArtifactLocation, segs: list[str], what: str) -> ArtifactLocation:
    """Find the key (run / model / trace id followed by ``artifacts``) in ``segs``.

    The *first* key wins: what follows it is a path inside the kit, and that path may itself
    look like an MLflow tree (``mlruns/0/<run_id>/artifacts/…`` logged as an artifact).
    """
    for i in range(len(segs)):
        if segs[i] != "artifacts" or i == 0:
            continue
        key = segs[i - 1]
        tag = None
        prefix_end = i - 1
        if _RUN_ID.match(key):
            tag = f"run-{key}"
        elif (_MODEL_ID.match(key) and i >= 2 and segs[i - 2] == "models") or (
            _TRACE_ID.match(key) and i >= 2 and segs[i - 2] == "traces"
        ):
            tag, prefix_end = key, i - 2
        if tag is None:
            continue
        prefix = segs[:prefix_end]
        if prefix[:1] == ["workspaces"] and len(prefix) >= 2:
            prefix = [f"ws-{prefix[1]}", *prefix[2:]]
        repo = "/".join([base.repository, *prefix] if base.repository else prefix)
        rest = _clean_rel("/".join(segs[i + 1 :]))
        if base.layout:
            layout = posixpath.join(base.layout, *prefix) if prefix else base.layout
            return replace(base, layout=layout, repository=repo, tag=tag, path=rest)
        if not repo:
            raise ReferenceFormatError(f"{what}: no repository before the run/model/trace id")
        _check_repo(repo, what)
        return replace(base, repository=repo, tag=tag, path=rest)
    raise _NoKey(
        f"{what} has no run, model or trace key: expected <experiment>/<run_id>/artifacts/..., "
        "<experiment>/models/<model_id>/artifacts/... or <experiment>/traces/<trace_id>/artifacts/..."
    )


def parse_artifact_uri(uri: str) -> ArtifactLocation:
    """Parse a ``modelkit://`` artifact or model URI (see module docstring)."""
    if uri.startswith(f"{SCHEME}:/") and not uri.startswith(f"{SCHEME}://"):
        uri = f"{SCHEME}://" + uri[len(SCHEME) + 1 :]  # MLflow rewrites modelkit:///x as modelkit:/x
    if not uri.startswith(f"{SCHEME}://"):
        raise ReferenceFormatError(f"not a {SCHEME}:// URI: {uri!r}")
    body = unquote(uri[len(SCHEME) + 3 :]).split("?", 1)[0].split("#", 1)[0]
    if body.startswith("/"):
        return _parse_layout(uri, body)
    host, _, rest = body.partition("/")
    if "@" in host:
        raise ReferenceFormatError(
            f"invalid URI {SCHEME}://***@{host.rsplit('@', 1)[1]}/...: credentials do not belong in the "
            "URI; set MLFLOW_MODELKIT_REGISTRY_USERNAME/MLFLOW_MODELKIT_REGISTRY_PASSWORD or log in "
            "with docker (~/.docker/config.json)"
        )
    if host and not rest.strip("/") and _looks_like_registry(host):
        # a registry's root: MLflow loads "modelkit://HOST/fraud:v1" as root "modelkit://HOST" + "fraud:v1"
        _check_host(host, uri)
        return ArtifactLocation(registry=host, layout=None, repository="")
    if not host or not rest:
        raise ReferenceFormatError(
            f"invalid URI {uri!r}: expected {SCHEME}://HOST[:PORT]/REPOSITORY/... "
            f"or {SCHEME}:///ABSOLUTE/PATH/..."
        )
    _check_host(host, uri)
    segs = _segments(rest, uri)
    base = ArtifactLocation(registry=host, layout=None, repository="")
    published = _published(base, segs, uri)
    if published is not None:
        return published
    if "artifacts" in segs:
        try:
            return _split_key(base, segs, f"invalid URI {uri!r}")
        except _NoKey:
            pass
    repo = "/".join(segs)
    _check_repo(repo, f"invalid URI {uri!r}")
    return replace(base, repository=repo)


_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
_FORMS = f"{SCHEME}://HOST[:PORT]/REPOSITORY/... or {SCHEME}:///ABSOLUTE/PATH/..."


def _looks_like_registry(host: str) -> bool:
    """kit's rule: a first segment with ``.`` or ``:`` (or ``localhost``) names a registry."""
    return "." in host or ":" in host or host == "localhost"


def _check_host(host: str, uri: str) -> None:
    """A registry host[:port]; ``.``/``..`` (a relative layout path) and other odd hosts are refused."""
    if host in (".", "..") or host.startswith(("./", "../", "~")):
        raise ReferenceFormatError(
            f"invalid URI {uri!r}: a local OCI layout needs an absolute path, e.g. {SCHEME}:///srv/kits/team"
        )
    if not _HOST.match(host):
        raise ReferenceFormatError(f"invalid URI {uri!r}: {host!r} is not a registry host; use {_FORMS}")


def _segments(rest: str, uri: str) -> list[str]:
    """Path segments of a URI; one trailing ``/`` is fine, empty segments (``a//b``) are refused."""
    body = rest[:-1] if rest.endswith("/") else rest
    segs = body.split("/")
    if "" in segs:
        raise ReferenceFormatError(
            f"invalid URI {uri!r}: empty path segment ('//'); write each path once, e.g. {SCHEME}://HOST/team/x"
        )
    if any(x in (".", "..") for x in segs):
        raise ReferenceFormatError(f"invalid URI {uri!r}: '.' and '..' segments are not allowed")
    return segs


def _check_repo(repo: str, what: str) -> None:
    """OCI repository names are lowercase: refuse (never silently lowercase, which would mix
    ``Team/X`` into ``team/x``) with the accepted form."""
    if repo != repo.lower():
        try:
            hint = f", use {check_repository(repo.lower())!r}"
        except ReferenceFormatError:
            hint = " (letters, digits and '.', '_', '-', '/' separators)"
        raise ReferenceFormatError(
            f"{what}: repository {repo!r} has upper-case letters; OCI repository names are lowercase{hint}"
        )
    try:
        check_repository(repo)
    except ReferenceFormatError as e:
        raise ReferenceFormatError(f"{what}: {e}") from None


def _published(base: ArtifactLocation, segs: list[str], uri: str) -> ArtifactLocation | None:
    for i, s in enumerate(segs):
        m = _PUBLISHED.match(s)
        if m and (":" in s or "@" in s):
            repo_segs = [*segs[:i], m.group("repo")]
            path = "/".join(segs[i + 1 :])
            if base.layout is not None:
                layout = posixpath.join(base.layout, *repo_segs)
                loc = replace(base, layout=layout, repository="/".join(repo_segs))
            else:
                repo = "/".join(repo_segs)
                _check_repo(repo, f"invalid URI {uri!r}")
                loc = replace(base, repository=repo)
            if m.group("digest"):
                return replace(
                    loc, digest=check_digest(m.group("digest")), path=_clean_rel(path), read_only=True
                )
            return replace(loc, tag=check_tag(m.group("tag")), path=_clean_rel(path), read_only=True)
    return None


def _parse_layout(uri: str, body: str) -> ArtifactLocation:
    stripped = body.lstrip("/")
    if not stripped:
        raise ReferenceFormatError(
            f"invalid URI {uri!r}: give an absolute directory, e.g. {SCHEME}:///srv/kits/team"
        )
    segs = _segments(stripped, uri)
    if not segs:
        raise ReferenceFormatError(
            f"invalid URI {uri!r}: give an absolute directory, e.g. {SCHEME}:///srv/kits/team"
        )
    base = ArtifactLocation(registry=None, layout="/", repository="")
    published = _published(base, segs, uri)
    if published is not None:
        return published
    if "artifacts" in segs:
        try:
            loc = _split_key(replace(base, layout="/"), segs, f"invalid URI {uri!r}")
            return replace(loc, repository=loc.layout.strip("/"))
        except _NoKey:
            pass
    layout = "/" + "/".join(segs)
    return replace(base, layout=layout, repository=layout.strip("/"))
