"""The scan report as a text table for a terminal: one row per finding, and under each an
explanation a data scientist understands (when it would bite, what it is, how to fix it).

>>> from mlflow_plugin.scanner.report import FileRecord, Finding, ScanReport, Severity
>>> r = ScanReport("model.pkl", files=[FileRecord("model.pkl", "pickle", 40)])
>>> r.add(Finding("model.pkl", Severity.CRITICAL, "pickle.unsafe-global", "imports os.system", "os.system"))
>>> print("\\n".join(render_text(r)))  # doctest: +NORMALIZE_WHITESPACE +ELLIPSIS
Scanned model.pkl: 1 files (1 pickle)
SEVERITY  PATH       RULE                         MESSAGE
CRITICAL  model.pkl  pickle.unsafe-global         imports os.system [os.system]
  → on load: unpickling imports `os.system`, which can run commands, files or code. Fix: do not load...
1 findings: 1 critical
"""

from __future__ import annotations

from mlflow_plugin.scanner.report import ScanReport

INDENT = "  "  # the explanation line sits under its finding


def render_text(report: ScanReport) -> list[str]:
    """The lines ``mlflow-modelkit scan`` prints: a summary of the files scanned, a table of
    findings (most severe first), each followed by ``  → <when>: <what>. Fix: <fix>``, and counts.

    >>> render_text(ScanReport("./model_dir"))
    ['Scanned ./model_dir: 0 files (none)', 'No findings.']
    """
    out: list[str] = []
    counts = report.counts()
    formats: dict[str, int] = {}
    for f in report.files:
        formats[f.format] = formats.get(f.format, 0) + 1
    fmt = ", ".join(f"{n} {k}" for k, n in sorted(formats.items(), key=lambda kv: -kv[1]))
    out.append(f"Scanned {report.target}: {len(report.files)} files ({fmt or 'none'})")
    if not report.findings:
        out.append("No findings.")
        return out
    w = max(len(f.path) for f in report.findings)
    w = min(max(w, 4), 60)
    out.append(f"{'SEVERITY':<9} {'PATH':<{w}}  {'RULE':<28} MESSAGE")
    for fd in report.sorted_findings():
        path = fd.path if len(fd.path) <= w else "…" + fd.path[-(w - 1) :]
        ev = f" [{fd.evidence}]" if fd.evidence else ""
        out.append(f"{str(fd.severity).upper():<9} {path:<{w}}  {fd.rule:<28} {fd.message}{ev}")
        out.append(f"{INDENT}→ {_one_line(fd.explain().line())}")
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    out.append(f"{len(report.findings)} findings: {summary}")
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())
