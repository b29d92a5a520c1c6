"""Accepted risks: a publisher accepts named findings, up to the admin's ceiling, on the record.

``publish --accept RULE[:PATH] --reason TEXT`` turns the matching findings from *open* into
*accepted*: they no longer block publishing, and the acceptance (rule and path patterns, who,
when, why) is written into the signed scan attestation, where ``verify`` shows it. The admin's
``[accept] max_severity`` (default ``high``) is the ceiling: a finding above it cannot be
accepted, so critical findings are acceptable only where the admin raised it to ``critical``.

>>> from mlflow_plugin.scanner.report import Finding, ScanReport, Severity
>>> report = ScanReport("kit")
>>> report.add(Finding("model/model.pkl", Severity.MEDIUM, "pickle.embedded-code", "class Model"))
>>> report.add(Finding("requirements.txt", Severity.INFO, "env.unpinned", "numpy"))
>>> ok = Acceptance.parse("pickle.embedded-code:model/*", reason="our notebook class", by="alice",
...                       at="2026-12-06T22:00:00Z")
>>> judged = accept_findings(report, [ok], ceiling="high")
>>> [f.rule for f in judged.open], [f.rule for f, _ in judged.accepted], judged.verdict()
(['env.unpinned'], ['pickle.embedded-code'], 'clean (1 accepted)')
>>> judged.to_json()["summary"]["max_open_severity"]
'info'

Patterns are shell globs (``env.*``, ``model/*.pkl``); a path pattern may be left out (every
path). A pattern that matches no finding is an error: a typo must not pass as an acceptance.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.scanner.report import Finding, ScanReport, Severity, scan_verdict

_RULE = re.compile(r"^[a-z0-9*?\[\]][a-z0-9.*?\[\]_-]{0,99}$")
MAX_REASON = 500


@dataclass(frozen=True)
class Acceptance:
    """One accepted risk: findings whose rule and path match these globs, with who, when and why."""

    rule: str
    path: str = "*"
    reason: str = ""
    by: str = ""
    at: str = ""

    @classmethod
    def parse(cls, spec: str, reason: str, by: str, at: str) -> Acceptance:
        """``RULE[:PATH]`` (rule ids never contain ``:``), with a required one-line reason.

        >>> Acceptance.parse("env.typosquat:requirements.txt", "internal fork", "bob", "").path
        'requirements.txt'
        >>> Acceptance.parse("Pickle!", "x", "bob", "")
        Traceback (most recent call last):
        ...
        mlflow_plugin.errors.ModelKitError: --accept 'Pickle!': RULE must be a rule id or glob ...
        """
        rule, sep, path = spec.strip().partition(":")
        if not _RULE.match(rule):
            raise ModelKitError(
                f"--accept {spec[:80]!r}: RULE must be a rule id or glob such as pickle.embedded-code "
                "or env.* (see the scan report's RULE column), optionally followed by :PATH"
            )
        if sep and (not path or len(path) > 1000 or any(ord(c) < 32 for c in path)):
            raise ModelKitError(f"--accept {spec[:80]!r}: PATH after ':' must be a file path or glob")
        return cls(rule, path if sep else "*", _clean_reason(reason), _clean(by, 100), _clean(at, 40))

    @classmethod
    def from_json(cls, doc: Any) -> Acceptance:
        """Read one entry of a scan attestation's ``acceptances`` (hostile until checked)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("rule"), str):
            raise ModelKitError("an acceptance in the scan attestation is malformed")
        return cls(
            _clean(doc["rule"], 100),
            _clean(str(doc.get("path") or "*"), 1000),
            _clean(str(doc.get("reason") or ""), MAX_REASON),
            _clean(str(doc.get("by") or ""), 100),
            _clean(str(doc.get("at") or ""), 40),
        )

    def matches(self, f: Finding) -> bool:
        return fnmatch.fnmatchcase(f.rule, self.rule) and fnmatch.fnmatchcase(f.path, self.path)

    @property
    def spec(self) -> str:
        return self.rule if self.path == "*" else f"{self.rule}:{self.path}"

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "path": self.path, "reason": self.reason, "by": self.by, "at": self.at}

    def describe(self) -> str:
        """One line for people: ``pickle.embedded-code:model/* by alice at … ("reason")``."""
        who = f" by {self.by}" if self.by else ""
        when = f" at {self.at}" if self.at else ""
        return f"{self.spec}{who}{when}: {self.reason!r}"


def _clean(s: str, limit: int) -> str:
    s = "".join(c if c.isprintable() else " " for c in str(s)).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _clean_reason(reason: str) -> str:
    r = _clean(reason or "", MAX_REASON + 1)
    if not r:
        raise ModelKitError(
            "--accept needs a reason: add --reason 'why this finding is acceptable' (it is signed "
            "into the scan attestation)"
        )
    if len(r) > MAX_REASON:
        raise ModelKitError(f"--reason is longer than {MAX_REASON} characters: shorten it")
    return r


@dataclass
class Judged:
    """A scan report split into open findings and accepted ones (with the acceptance that took each)."""

    report: ScanReport
    acceptances: list[Acceptance] = field(default_factory=list)
    accepted: list[tuple[Finding, Acceptance]] = field(default_factory=list)
    open: list[Finding] = field(default_factory=list)

    def failed(self, threshold: Severity | str) -> bool:
        """True if an *open* finding is at or above ``threshold``."""
        t = Severity.parse(threshold)
        return any(f.severity >= t for f in self.open)

    @property
    def max_open_severity(self) -> Severity | None:
        return max((f.severity for f in self.open), default=None)

    def open_report(self) -> ScanReport:
        """The report with only the open findings (what blocks, and what a verdict is made of)."""
        r = ScanReport(self.report.target, list(self.report.files), list(self.open))
        r.scanner, r.version = self.report.scanner, self.report.version
        return r

    def verdict(self) -> str:
        """The ``scan_verdict`` of the open findings, plus how many were accepted."""
        v = scan_verdict(self.open_report())
        return f"{v} ({len(self.accepted)} accepted)" if self.accepted else v

    def to_json(self) -> dict[str, Any]:
        """The report's JSON plus ``acceptances``, an ``accepted`` index on each accepted finding and
        ``summary.max_open_severity`` (the highest finding nobody accepted)."""
        doc = self.report.to_json()
        index = {id(f): self.acceptances.index(a) for f, a in self.accepted}
        by_key: dict[tuple[str, str, str, str], list[int]] = {}
        for f in self.report.findings:
            if id(f) in index:
                by_key.setdefault(_key(f.to_json()), []).append(index[id(f)])
        for fj in doc["findings"]:
            hits = by_key.get(_key(fj))
            if hits:
                fj["accepted"] = hits.pop(0)
        doc["acceptances"] = [a.to_json() for a in self.acceptances]
        top = self.max_open_severity
        doc["summary"]["max_open_severity"] = str(top) if top is not None else None
        doc["summary"]["accepted"] = len(self.accepted)
        return doc


def _key(fj: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(fj.get("path")), str(fj.get("rule")), str(fj.get("severity")), str(fj.get("message")))


def accept_findings(
    report: ScanReport,
    acceptances: Sequence[Acceptance],
    ceiling: Severity | str = "high",
    strict: bool = True,
) -> Judged:
    """Split ``report`` by ``acceptances``; the first matching acceptance takes a finding.

    ``strict`` (publish): an acceptance that matches no finding, or only findings above
    ``ceiling``, raises one line naming it and the fix. Not strict (re-scans carrying earlier
    acceptances over): such acceptances are kept on record but accept nothing above the ceiling.
    """
    top = Severity.parse(ceiling)
    judged = Judged(report, list(acceptances))
    used: dict[int, int] = {}
    for f in report.findings:
        hit = next((a for a in acceptances if a.matches(f)), None)
        if hit is None:
            judged.open.append(f)
            continue
        if f.severity > top:
            if strict:
                raise ModelKitError(
                    f"--accept {hit.spec} matches a {f.severity} finding ({f.rule} at {f.path}), above the "
                    f"highest severity the admin lets publishers accept ({top}, [accept] max_severity): "
                    "fix the finding instead, or ask the admin"
                )
            judged.open.append(f)
            continue
        judged.accepted.append((f, hit))
        used[id(hit)] = used.get(id(hit), 0) + 1
    if strict:
        for a in acceptances:
            if id(a) not in used:
                rules = sorted({f.rule for f in report.findings})
                have = f"the findings are: {', '.join(rules)}" if rules else "the scan found nothing"
                raise ModelKitError(f"--accept {a.spec} matches no finding of this scan ({have}): check it")
    return judged


def acceptances_in(predicate: Any) -> list[Acceptance]:
    """The acceptances recorded in a scan attestation's predicate (malformed entries raise)."""
    raw = predicate.get("acceptances") if isinstance(predicate, dict) else None
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 1000:
        raise ModelKitError("the scan attestation's acceptances are malformed")
    return [Acceptance.from_json(a) for a in raw]


def open_severity(predicate: Any) -> Severity | None:
    """The highest *open* finding a scan attestation records (older ones: the highest finding)."""
    summary = predicate.get("summary") if isinstance(predicate, dict) else None
    if not isinstance(summary, dict):
        raise ModelKitError("the scan attestation has no summary")
    value = summary.get("max_open_severity", summary.get("max_severity"))
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModelKitError("the scan attestation's summary severity is malformed")
    return Severity.parse(value)


def open_keys(predicate: Any, at_least: Severity = Severity.LOW) -> set[tuple[str, str, str]]:
    """``(rule, path, severity)`` of the open findings at or above ``at_least`` in a predicate."""
    findings = predicate.get("findings") if isinstance(predicate, dict) else None
    out: set[tuple[str, str, str]] = set()
    for f in findings if isinstance(findings, list) else []:
        if not isinstance(f, dict) or "accepted" in f:
            continue
        try:
            sev = Severity.parse(str(f.get("severity")))
        except ModelKitError:
            continue
        if sev >= at_least:
            out.add((str(f.get("rule")), str(f.get("path")), str(sev)))
    return out


def judged_keys(judged: Judged, at_least: Severity = Severity.LOW) -> set[tuple[str, str, str]]:
    """:func:`open_keys` of a fresh scan, to compare with an attestation's."""
    return {(f.rule, f.path, str(f.severity)) for f in judged.open if f.severity >= at_least}


def parse_all(specs: Iterable[str], reason: str | None, by: str, at: str) -> list[Acceptance]:
    """``--accept`` values (each ``RULE[:PATH]``) with the one ``--reason`` they share."""
    specs = list(specs)
    if not specs:
        if reason:
            raise ModelKitError(
                "--reason without --accept: name the finding to accept (--accept RULE[:PATH])"
            )
        return []
    return [Acceptance.parse(s, reason or "", by, at) for s in specs]
