"""Reference.parse and parse_location: kit's defaults and OCI naming rules."""

from __future__ import annotations

import pytest

from mlflow_plugin.errors import ReferenceFormatError
from mlflow_plugin.storage.reference import (
    LayoutLocation,
    Reference,
    RegistryLocation,
    check_repository,
    check_tag,
    parse_location,
)

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:5000/team/fraud:v1", ("localhost:5000", "team/fraud", "v1", None)),
        ("registry.example.com/a/b/c:1.0", ("registry.example.com", "a/b/c", "1.0", None)),
        ("jozu.ml/org/model@" + D, ("jozu.ml", "org/model", None, D)),
        ("jozu.ml/org/model:v2@" + D, ("jozu.ml", "org/model", "v2", D)),
        # kit: the first segment is a registry only if it has '.' or ':'; otherwise localhost/ is prepended
        ("team/fraud:v1", ("localhost", "team/fraud", "v1", None)),
        ("fraud:v1", ("localhost", "fraud", "v1", None)),
        ("fraud", ("localhost", "fraud", None, None)),
        ("org/sub/name", ("localhost", "org/sub/name", None, None)),
        ("localhost/fraud:v1", ("localhost", "fraud", "v1", None)),
        ("[::1]:5000/repo:t", ("[::1]:5000", "repo", "t", None)),
        ("127.0.0.1:5000/repo", ("127.0.0.1:5000", "repo", None, None)),
        # a bare digest maps to localhost/_
        (D, ("localhost", "_", None, D)),
        ("a.b/my_repo__x-y.z:T_ag-1.0", ("a.b", "my_repo__x-y.z", "T_ag-1.0", None)),
        ("host.io/r:" + "t" * 128, ("host.io", "r", "t" * 128, None)),
    ],
)
def test_parse(text: str, expected: tuple) -> None:
    r = Reference.parse(text)
    assert (r.registry, r.repository, r.tag, r.digest) == expected


def test_default_tag_and_str_round_trip() -> None:
    r = Reference.parse("team/fraud", default_tag="latest")
    assert r.tag == "latest" and str(r) == "localhost/team/fraud:latest"
    assert Reference.parse("jozu.ml/o/m@" + D, default_tag="latest").tag is None
    for s in ("localhost:5000/team/fraud:v1", "jozu.ml/o/m@" + D, "jozu.ml/o/m:t@" + D):
        assert str(Reference.parse(s)) == s
    assert Reference.parse("h.io/r:t").reference == "t"
    assert Reference.parse("h.io/r:t@" + D).reference == D
    assert Reference.parse("h.io/r:t").with_tag("u") == Reference("h.io", "r", "u", None)


@pytest.mark.parametrize("text", ["Team/Fraud:v1", "localhost:5000/Team/fraud", "jozu.ml/org/Model"])
def test_uppercase_repository_is_rejected_with_a_clear_message(text: str) -> None:
    with pytest.raises(ReferenceFormatError, match="must be lowercase"):
        Reference.parse(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("repo:-tag", "invalid tag"),
        ("repo:.tag", "invalid tag"),
        ("repo:", "invalid tag"),
        ("repo:t" + "x" * 128, "invalid tag"),
        ("h.io/repo:ta+g", "invalid tag"),
        ("repo@sha256:abc", "invalid digest"),
        ("repo@md5:" + "a" * 32, "invalid digest"),
        ("repo@sha256:" + "A" * 64, "invalid digest"),
        ("h.io/-repo", "invalid repository"),
        ("h.io/repo-", "invalid repository"),
        ("h.io/re..po", "invalid repository"),
        ("h.io//repo", "invalid repository"),
        ("", "invalid reference"),
        ("a repo", "invalid reference"),
        ("https://h.io/repo:t", "drop the scheme"),
        ("bad_host.io:x/repo", "invalid registry"),
    ],
)
def test_invalid_references(text: str, why: str) -> None:
    with pytest.raises(ReferenceFormatError, match=why):
        Reference.parse(text)
    with pytest.raises(ValueError):  # ReferenceFormatError is a ValueError too
        Reference.parse(text)


def test_check_helpers() -> None:
    assert check_tag("v1.0_rc-1") == "v1.0_rc-1"
    assert check_tag("_x") == "_x"
    with pytest.raises(ReferenceFormatError, match="max 128"):
        check_tag("a b")
    for bad in ("v1\n", "v1\r", ""):
        with pytest.raises(ReferenceFormatError):
            check_tag(bad)
    with pytest.raises(ReferenceFormatError):
        check_repository("team/fraud\n")
    assert check_repository("a/b-c/d_e.f") == "a/b-c/d_e.f"
    with pytest.raises(ReferenceFormatError, match="lowercase"):
        check_repository("A")
    with pytest.raises(ReferenceFormatError):
        check_repository("a" * 256)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci:./kits/fraud:v1", LayoutLocation("./kits/fraud", "v1", None)),
        ("oci:./kits/fraud", LayoutLocation("./kits/fraud", None, None)),
        ("oci:/srv/kits/fraud:latest", LayoutLocation("/srv/kits/fraud", "latest", None)),
        ("oci:/srv/kits/fraud@" + D, LayoutLocation("/srv/kits/fraud", None, D)),
        ("oci:kits", LayoutLocation("kits", None, None)),
        ("oci:dir.with:colon/sub", LayoutLocation("dir.with:colon/sub", None, None)),  # ':' before a '/'
        ("oci:dir.with:colon/sub:t", LayoutLocation("dir.with:colon/sub", "t", None)),
        ("oci:///abs/path:t", LayoutLocation("/abs/path", "t", None)),
    ],
)
def test_parse_location_layouts(text: str, expected: LayoutLocation) -> None:
    loc = parse_location(text)
    assert loc == expected
    if expected.tag or expected.digest:
        assert loc.reference == (expected.digest or expected.tag)


def test_parse_location_defaults_and_registry_form() -> None:
    assert parse_location("oci:./k", default_tag="latest").tag == "latest"
    assert parse_location("oci:./k@" + D, default_tag="latest").tag is None
    loc = parse_location("localhost:5000/team/fraud:v1")
    assert isinstance(loc, RegistryLocation) and loc.reference == "v1"
    assert str(loc) == "localhost:5000/team/fraud:v1"
    assert str(parse_location("oci:./k:v1")) == "oci:./k:v1"
    assert isinstance(parse_location("team/fraud"), RegistryLocation)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("oci:", "expected oci:DIR"),
        ("oci:./k:-bad", "invalid tag"),
        ("oci:./k@sha256:12", "invalid digest"),
        ("oci:./k:", "invalid tag"),
    ],
)
def test_parse_location_errors(text: str, why: str) -> None:
    with pytest.raises(ReferenceFormatError, match=why):
        parse_location(text)
