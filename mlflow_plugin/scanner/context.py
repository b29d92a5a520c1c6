"""What every format scanner receives: limits, the policy, a way to report and to recurse.

A format scanner is a function ``scan(ctx, path, stream, size) -> None``. It reads ``stream``
(a binary file object positioned at the start of the content, ``size`` bytes long; seekable
unless said otherwise), never executes anything, and reports through ``ctx.report(...)``.
Containers hand members back with ``ctx.scan_member(member_path, stream, size)``, which
enforces depth, size and ratio limits and dispatches on the member's detected format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from mlflow_plugin.scanner.report import FileRecord, Finding, ScanReport, Severity


@dataclass
class Limits:
    """Resource limits; exceeding one is a finding (``scan.limit``), never a crash or a hang."""

    max_depth: int = 6  # container nesting
    max_member_size: int = 64 << 30  # one decompressed member
    max_total_bytes: int = 256 << 30  # everything decompressed in one scan
    max_ratio: float = 250.0  # decompressed / compressed size of a member
    max_members: int = 200_000  # entries in one container
    max_pickle_ops: int = 50_000_000  # opcodes in one pickle stream
    max_memo: int = 10_000_000  # distinct memo slots
    max_stack: int = 1_000_000  # pickle stack depth (items)
    max_text_scan: int = 16 << 20  # bytes of a text file checked for secrets


@dataclass
class Policy:
    """Allowlist extensions (admin config / ``--allow-global``).

    Pickle globals outside the built-in allowlist are findings; these extend it: exact
    ``module.qualname`` entries, or whole modules (prefixes) the admin trusts.

    >>> from mlflow_plugin import scan
    >>> policy = Policy(allow_globals=frozenset({"mypkg.models.MyEstimator"}))
    >>> scan("model.pkl", policy=policy)                                     # doctest: +SKIP
    >>> sorted(policy.allow_globals), policy.allow_modules
    (['mypkg.models.MyEstimator'], frozenset())
    """

    allow_globals: frozenset[str] = frozenset()  # "module.qualname" entries, exact
    allow_modules: frozenset[str] = frozenset()  # "module" prefixes the admin trusts entirely
    # severity of dangerous calls inside functions/methods of model code (import-time ones are critical)
    code_in_functions: str = "medium"
    # severity of benign code pickled by value (cloudpickle functions/classes: pickle.embedded-code);
    # embedded code that reaches os.system, subprocess, exec… is critical whatever this says
    embedded_code: str = "medium"
    # severity of PII-like values (emails, card numbers…) sampled in tabular dataset files
    pii: str = "info"


@dataclass
class ScanContext:
    """State of one scan. Format modules use :meth:`report` and :meth:`scan_member`."""

    report_obj: ScanReport
    limits: Limits = field(default_factory=Limits)
    policy: Policy = field(default_factory=Policy)
    depth: int = 0
    total_bytes: int = 0
    dispatch: Callable[[ScanContext, str, IO[bytes], int], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def report(
        self, path: str, severity: Severity | str, rule: str, message: str, evidence: str = ""
    ) -> None:
        """Record a finding (evidence is truncated to 200 characters; never include secrets in full)."""
        ev = evidence if len(evidence) <= 200 else evidence[:197] + "..."
        self.report_obj.add(Finding(path, Severity.parse(severity), rule, message, ev))

    def record_file(self, path: str, fmt: str, size: int, sha256: str | None = None) -> None:
        self.report_obj.files.append(FileRecord(path, fmt, size, sha256))

    def scan_member(self, path: str, stream: IO[bytes], size: int) -> None:
        """Scan a container member one level deeper (limits enforced here)."""
        if self.depth + 1 > self.limits.max_depth:
            self.report(
                path,
                Severity.MEDIUM,
                "scan.limit.depth",
                f"containers nested deeper than {self.limits.max_depth} levels; not scanned further",
            )
            return
        self.total_bytes += size
        if self.total_bytes > self.limits.max_total_bytes:
            self.report(
                path,
                Severity.MEDIUM,
                "scan.limit.total",
                f"more than {self.limits.max_total_bytes} bytes decompressed in one scan; stopped",
            )
            return
        assert self.dispatch is not None
        self.depth += 1
        try:
            self.dispatch(self, path, stream, size)
        finally:
            self.depth -= 1
