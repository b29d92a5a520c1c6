"""Scan results: severities, findings, per-file records, JSON and SARIF output.

>>> r = ScanReport(target="model.pkl")
>>> r.add(Finding("model.pkl", Severity.CRITICAL, "pickle.unsafe-import", "imports os.system", "os.system"))
>>> r.max_severity.name, r.failed(Severity.HIGH)
('CRITICAL', True)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.scanner.explain import Explanation, explain, explain_rule


class Severity(IntEnum):
    """Ordered severities; compare with ``>=``.

    >>> Severity.parse("high") >= Severity.MEDIUM, str(Severity.CRITICAL), [str(s) for s in Severity][:2]
    (True, 'critical', ['info', 'low'])
    """

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, s: str | Severity) -> Severity:
        """``"high"`` → ``Severity.HIGH`` (case-insensitive)."""
        if isinstance(s, Severity):
            return s
        try:
            return cls[str(s).strip().upper()]
        except KeyError:
            raise ModelKitError(
                f"unknown severity {s!r}: use one of {', '.join(x.name.lower() for x in cls)}"
            ) from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One problem. ``path`` names the inner member for containers (``model.pt!archive/data.pkl``).

    >>> f = Finding("model.pt!archive/data.pkl", Severity.CRITICAL, "pickle.unsafe-import", "os.system")
    >>> f.to_json()["severity"], f.path.partition("!")[0]
    ('critical', 'model.pt')
    """

    path: str
    severity: Severity
    rule: str
    message: str
    evidence: str = ""

    def explain(self) -> Explanation:
        """What this finding means, when it would bite and how to fix it (:mod:`.explain`).

        >>> f = Finding("requirements.txt", Severity.HIGH, "env.index-override", "--extra-index-url")
        >>> f.explain().when
        'on install'
        """
        return explain(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "severity": str(self.severity),
            "rule": self.rule,
            "message": self.message,
            "evidence": self.evidence,
            "explanation": self.explain().to_json(),
        }


@dataclass
class FileRecord:
    """A scanned file (or container member): its format as detected from content, and size."""

    path: str
    format: str
    size: int
    sha256: str | None = None


@dataclass
class ScanReport:
    """Everything a scan found: the files (with their detected format) and the findings.

    Files that could not be scanned are findings too. :meth:`to_json` is the machine report,
    :meth:`to_sarif` SARIF 2.1.0 for code-scanning tools.

    >>> r = ScanReport(target="./model")
    >>> r.add(Finding("model.pkl", Severity.MEDIUM, "pickle.unknown-global", "imports mypkg.Model"))
    >>> r.failed("high"), r.failed("medium"), r.to_json()["summary"]["max_severity"]
    (False, True, 'medium')
    """

    target: str
    files: list[FileRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    scanner: str = "mlflow-modelkit"
    version: str = ""

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def failed(self, threshold: Severity | str) -> bool:
        """True if any finding is at or above ``threshold``."""
        t = Severity.parse(threshold)
        return any(f.severity >= t for f in self.findings)

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in Severity}
        for f in self.findings:
            out[str(f.severity)] += 1
        return out

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (-int(f.severity), f.path, f.rule))

    def to_json(self) -> dict[str, Any]:
        """The machine report: ``{target, scanner, files, findings, summary}``."""
        return {
            "target": self.target,
            "scanner": {"name": self.scanner, "version": self.version},
            "files": [asdict(f) for f in self.files],
            "findings": [f.to_json() for f in self.sorted_findings()],
            "summary": {
                "files": len(self.files),
                "findings": self.counts(),
                "max_severity": str(self.max_severity) if self.max_severity is not None else None,
            },
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)

    def to_sarif(self) -> dict[str, Any]:
        """SARIF 2.1.0 for code-scanning tools (GitHub, GitLab, VS Code SARIF viewer)."""
        level = {
            Severity.CRITICAL: "error",
            Severity.HIGH: "error",
            Severity.MEDIUM: "warning",
            Severity.LOW: "note",
            Severity.INFO: "note",
        }
        rules: dict[str, dict[str, Any]] = {}
        results = []
        for f in self.sorted_findings():
            if f.rule not in rules:
                ex = explain_rule(f.rule)
                rules[f.rule] = {
                    "id": f.rule,
                    "shortDescription": {"text": f.rule},
                    "fullDescription": {"text": f"{ex.what[:1].upper()}{ex.what[1:]} — {ex.when}."},
                    "help": {"text": ex.fix},
                    "properties": {"security-severity": _sarif_score(f.severity)},
                }
            fx = f.explain()
            outer, _, inner = f.path.partition("!")
            loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": outer}}}
            if inner:
                loc["logicalLocations"] = [{"fullyQualifiedName": f.path, "kind": "member"}]
            results.append(
                {
                    "ruleId": f.rule,
                    "level": level[f.severity],
                    "message": {
                        "text": f.message
                        + (f" (evidence: {f.evidence})" if f.evidence else "")
                        + f" — {fx.when}. Fix: {fx.fix}"
                    },
                    "locations": [loc],
                    "properties": {"severity": str(f.severity), "member": inner or None},
                }
            )
        return {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": self.scanner,
                            "version": self.version or "0",
                            "informationUri": "https://github.com/mlflow-modelkit",
                            "rules": list(rules.values()),
                        }
                    },
                    "results": results,
                }
            ],
        }


def _sarif_score(s: Severity) -> str:
    return {
        Severity.CRITICAL: "9.5",
        Severity.HIGH: "8.0",
        Severity.MEDIUM: "5.5",
        Severity.LOW: "3.0",
        Severity.INFO: "0.0",
    }[s]


def scan_verdict(report: ScanReport) -> str:
    """One word for a report: ``clean`` (nothing at ``low`` or above; informational notes such as
    unpinned requirements do not count), else the highest severity and how many findings.

    >>> r = ScanReport("kit")
    >>> scan_verdict(r)
    'clean'
    >>> r.add(Finding("requirements.txt", Severity.INFO, "env.unpinned", "unpinned"))
    >>> scan_verdict(r)
    'clean'
    >>> r.add(Finding("model.pkl", Severity.HIGH, "pickle.unsafe-global", "os.system"))
    >>> scan_verdict(r)
    'high (2 findings)'
    """
    if not report.failed(Severity.LOW):
        return "clean"
    return f"{report.max_severity} ({len(report.findings)} findings)"
