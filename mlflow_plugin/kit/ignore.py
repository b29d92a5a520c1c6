"""``.kitignore`` matching with Docker ``.dockerignore`` semantics, as kit applies it.

>>> m = IgnoreMatcher(["*.log", "!keep.log", "**/tmp"])
>>> m.matches("x.log"), m.matches("model/x.log"), m.matches("keep.log"), m.matches("a/b/tmp/f")
(True, False, False, True)

Patterns are anchored at the context root (``*.log`` does not match ``model/x.log``); a path
is ignored if it or any parent directory matches (``MatchesOrParentMatches``); later patterns
win; ``!`` re-includes. kit always adds ``Kitfile``, ``kitfile``, ``.kitfile``, ``.kitignore``.
"""

from __future__ import annotations

import posixpath
import re

from ..errors import KitfileError

DEFAULT_IGNORES = ("Kitfile", "kitfile", ".kitfile", ".kitignore")


def read_ignore_file(text: str) -> list[str]:
    """Parse ``.kitignore`` text like moby's ``ignorefile.ReadAll``."""
    out: list[str] = []
    for i, line in enumerate(text.splitlines()):
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
            pat = posixpath.normpath(pat)
            if len(pat) > 1 and pat.startswith("/"):
                pat = pat[1:]
        out.append("!" + pat if invert else pat)
    return out


class _Pattern:
    def __init__(self, pattern: str, exclusion: bool) -> None:
        self.exclusion = exclusion
        self.cleaned = pattern
        self.regex = re.compile(_compile(pattern), re.DOTALL)

    def match(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None


def _compile(pattern: str) -> str:
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < n:
                out.append(re.escape(pattern[i + 1]))
                i += 1
            else:
                out.append(r"\\")
        elif ch == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                raise KitfileError(f"invalid .kitignore pattern {pattern!r}: unterminated '['")
            cls = pattern[i + 1 : j]
            if cls.startswith("^") or cls.startswith("!"):
                cls = "^" + cls[1:]
            out.append("[" + cls.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


class IgnoreMatcher:
    """Compiled ``.kitignore`` patterns plus kit's default ignores."""

    def __init__(self, patterns: list[str], add_defaults: bool = True) -> None:
        self.patterns: list[_Pattern] = []
        for p in [*patterns, *(DEFAULT_IGNORES if add_defaults else ())]:
            p = p.strip()
            if not p:
                continue
            p = posixpath.normpath(p)
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
