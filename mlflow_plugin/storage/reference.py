"""Parse the references users type: registry references and local OCI image layouts.

>>> Reference.parse("localhost:5000/team/fraud:v1")
Reference(registry='localhost:5000', repository='team/fraud', tag='v1', digest=None)
>>> Reference.parse("team/fraud").registry, Reference.parse("team/fraud").tag   # kit's defaults
('localhost', None)
>>> parse_location("oci:./kits/fraud:v1")
LayoutLocation(path='./kits/fraud', tag='v1', digest=None)

Rules follow kit (and the OCI distribution spec): the first path segment is a registry only if
it contains ``.`` or ``:`` or is ``localhost``; repositories are lowercase; tags match
``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``; digests are ``sha256:<64 hex>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlflow_plugin.errors import ReferenceFormatError
from mlflow_plugin.storage.descriptor import check_digest

DEFAULT_REGISTRY = "localhost"
DEFAULT_REPOSITORY = "_"
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")  # \Z: no trailing newline
_REPO_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*\Z")
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_RE = re.compile(
    rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z"
)


def check_tag(tag: str) -> str:
    """Return ``tag`` if valid, else raise a one-line error naming the rule."""
    if not _TAG_RE.match(tag or ""):
        raise ReferenceFormatError(
            f"invalid tag {tag!r}: use letters, digits, '_', '.', '-' (max 128, not starting with '.' or '-')"
        )
    return tag


def check_repository(repo: str) -> str:
    """Return ``repo`` if it is a valid OCI repository name, else raise."""
    if len(repo) > 255 or not _REPO_RE.match(repo):
        hint = " (repository names must be lowercase)" if repo != repo.lower() else ""
        raise ReferenceFormatError(
            f"invalid repository name {repo!r}{hint}: use lowercase letters, digits and '.', '_', '-', '/' "
            "separators, starting and ending with a letter or digit"
        )
    return repo


@dataclass(frozen=True)
class Reference:
    """A registry reference ``registry/repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, s: str, default_tag: str | None = None) -> Reference:
        """Parse ``s``; raises :class:`ReferenceFormatError` with the reason and an example."""
        if not s or any(c.isspace() for c in s):
            raise ReferenceFormatError(
                f"invalid reference {s!r}: expected HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]"
            )
        if "://" in s:
            raise ReferenceFormatError(
                f"invalid reference {s!r}: drop the scheme, e.g. 'localhost:5000/team/fraud:v1'"
            )
        rest, digest = s, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            check_digest(digest)
        if rest.startswith("sha256:") and digest is None:  # bare digest, kit maps to localhost/_
            return cls(DEFAULT_REGISTRY, DEFAULT_REPOSITORY, None, check_digest(rest))
        tag = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            check_tag(tag)
        parts = rest.split("/", 1)
        if len(parts) == 2 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            registry, repo = parts
        else:
            registry, repo = DEFAULT_REGISTRY, rest
        if not _HOST_RE.match(registry):
            raise ReferenceFormatError(f"invalid registry host {registry!r} in {s!r}")
        check_repository(repo)
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, repo, tag, digest)

    @property
    def reference(self) -> str | None:
        """The digest if present, else the tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        s = f"{self.registry}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


@dataclass(frozen=True)
class LayoutLocation:
    """A local OCI image layout directory (one repository) plus an optional tag or digest."""

    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str | None:
        return self.digest or self.tag

    def __str__(self) -> str:
        s = f"oci:{self.path}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


@dataclass(frozen=True)
class RegistryLocation:
    """A repository in a registry plus an optional tag or digest."""

    ref: Reference

    @property
    def reference(self) -> str | None:
        return self.ref.reference

    def __str__(self) -> str:
        return str(self.ref)


Location = LayoutLocation | RegistryLocation


def parse_location(s: str, default_tag: str | None = None) -> Location:
    """Parse ``oci:DIR[:TAG|@DIGEST]`` or a registry reference.

    >>> parse_location("oci:/srv/kits/fraud@sha256:" + "0" * 64).digest[:12]
    'sha256:00000'
    >>> str(parse_location("localhost:5000/team/fraud:v1"))
    'localhost:5000/team/fraud:v1'
    """
    if s.startswith("oci:"):
        body = s[4:]
        if body.startswith("//"):
            body = body[2:] if body.startswith("///") else body
        tag = digest = None
        if "@" in body:
            body, digest = body.rsplit("@", 1)
            check_digest(digest)
        else:
            head, sep, tail = body.rpartition(":")
            if sep and "/" not in tail and head:
                body, tag = head, check_tag(tail)
        if not body:
            raise ReferenceFormatError(
                f"invalid layout reference {s!r}: expected oci:DIR[:TAG], e.g. oci:./kits/fraud:v1"
            )
        if tag is None and digest is None:
            tag = default_tag
        return LayoutLocation(body, tag, digest)
    return RegistryLocation(Reference.parse(s, default_tag=default_tag))
