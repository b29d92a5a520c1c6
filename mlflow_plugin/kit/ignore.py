"""``.kitignore`` matching with Docker ``.dockerignore`` semantics, as kit applies it.

>>> m = IgnoreMatcher(["*.log", "!keep.log", "**/tmp"])
>>> m.matches("x.log"), m.matches("model/x.log"), m.matches("keep.log"), m.matches("a/b/tmp/f")
(True, False, False, True)

Matching follows moby/patternmatcher v0.6.0 exactly, including its fast paths: a pattern
that starts with ``**`` and has no other wildcard is a plain suffix test (``**tmp`` also
matches ``a/xtmp``), and ``[!a]`` is a regexp class holding ``!`` and ``a`` (not a negation).

Patterns are anchored at the context root (``*.log`` does not match ``model/x.log``); a path
is ignored if it or any parent directory matches (``MatchesOrParentMatches``); later patterns
win; ``!`` re-includes. kit always adds ``Kitfile``, ``kitfile``, ``.kitfile``, ``.kitignore``.
"""

from __future__ import annotations

import posixpath
import re

from mlflow_plugin.errors import KitfileError

DEFAULT_IGNORES = ("Kitfile", "kitfile", ".kitfile", ".kitignore")


def go_clean(path: str) -> str:
    """Go ``path.Clean`` (``posixpath.normpath`` keeps a leading ``//``; Go does not).

    >>> go_clean("//a/./b/../c/"), go_clean(""), go_clean("../x/..")
    ('/a/c', '.', '..')
    """
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


def read_ignore_file(text: str) -> list[str]:
    """Parse ``.kitignore`` text like moby's ``ignorefile.ReadAll``."""
    out: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines):
        line = line.removesuffix("\r")  # bufio.ScanLines drops a trailing CR
        if i == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pat = line.strip()
        if not pat:
            continue
        invert = pat.startswith("!")
        if invert:
            pat = pat[1:].strip()
        if pat:
            pat = go_clean(pat)
            if len(pat) > 1 and pat.startswith("/"):
                pat = pat[1:]
        out.append("!" + pat if invert else pat)
    return out


_EXACT, _PREFIX, _SUFFIX, _REGEXP = "exact", "prefix", "suffix", "regexp"
_ESCAPE = set(".+()|{}$")  # moby shouldEscape: only these are escaped; other regexp syntax passes through


class _Pattern:
    """One pattern, matched like moby/patternmatcher v0.6.0 ``Pattern.match`` (incl. its fast paths)."""

    def __init__(self, pattern: str, exclusion: bool) -> None:
        self.exclusion = exclusion
        self.cleaned = pattern
        self.kind, regex = _compile(pattern)
        try:
            self.regex = re.compile(regex) if self.kind == _REGEXP else None
        except re.error:
            raise KitfileError(f"invalid .kitignore pattern {pattern!r}: syntax error in pattern") from None

    def match(self, path: str) -> bool:
        p = self.cleaned
        if self.kind == _EXACT:
            return path == p
        if self.kind == _PREFIX:
            return path.startswith(p[:-2])  # strip the trailing **
        if self.kind == _SUFFIX:
            suffix = p[2:]  # strip the leading **
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]  # **/foo matches "foo"
        assert self.regex is not None
        return self.regex.search(path) is not None


def _compile(pattern: str) -> tuple[str, str]:
    """Port of moby ``Pattern.compile`` for '/' separators: ``(match type, regexp)``."""
    _check_syntax(pattern)
    out = ["^"]
    kind = _EXACT
    i = 0
    n = len(pattern)
    step = 0
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # treat **/ as **
                    i += 1
                if i >= n:  # "**" at the end matches everything below
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        out.append(".*")
                        kind = _REGEXP
                else:
                    out.append("(.*/)?")
                    kind = _REGEXP
                if step == 0:
                    kind = _SUFFIX
            else:
                out.append("[^/]*")
                kind = _REGEXP
        elif ch == "?":
            out.append("[^/]")
            kind = _REGEXP
        elif ch in _ESCAPE:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
                kind = _REGEXP
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = _REGEXP
        else:
            out.append(ch)
        step += 1
    out.append(r"\Z")
    return kind, "".join(out)


def _check_syntax(pattern: str) -> None:
    """The check moby runs with ``filepath.Match(p, ".")``: Go validates the whole pattern.

    Errors: a trailing ``\\``, an unterminated ``[``, an empty class ``[]`` and a class (or range
    end) that starts with ``-`` or ``]``.
    """
    bad = KitfileError(f"invalid .kitignore pattern {pattern!r}: syntax error in pattern")
    i, n = 0, len(pattern)

    def esc(j: int) -> int:  # Go getEsc: one (possibly escaped) class character; returns the next index
        if j >= n or pattern[j] in "-]":
            raise bad
        if pattern[j] == "\\":
            j += 1
            if j >= n:
                raise bad
        return j + 1

    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise bad
            i += 2
        elif ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            nrange = 0
            while True:
                if i < n and pattern[i] == "]" and nrange > 0:
                    i += 1
                    break
                i = esc(i)
                if i < n and pattern[i] == "-":
                    i = esc(i + 1)
                nrange += 1
        else:
            i += 1


class IgnoreMatcher:
    """Compiled ``.kitignore`` patterns plus kit's default ignores."""

    def __init__(self, patterns: list[str], add_defaults: bool = True) -> None:
        self.patterns: list[_Pattern] = []
        for p in [*patterns, *(DEFAULT_IGNORES if add_defaults else ())]:
            p = p.strip()
            if not p:
                continue
            p = go_clean(p)
            excl = p.startswith("!")
            if excl:
                if len(p) == 1:
                    raise KitfileError('invalid .kitignore pattern "!": nothing to re-include')
                p = p[1:]
            self.patterns.append(_Pattern(p, excl))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """True if ``path`` (context-relative, '/'-separated) or one of its parents is ignored."""
        matched = False
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            m = pat.match(path)
            if not m and parent != ".":
                for i in range(len(parent_dirs)):
                    if pat.match("/".join(parent_dirs[: i + 1])):
                        m = True
                        break
            if m:
                matched = not pat.exclusion
        return matched
