"""Notebook widgets: publish an MLflow run as a signed ModelKit, verify a published kit.

Both are plain ``ipywidgets`` compositions (no custom JavaScript): they render in JupyterLab,
Notebook 7, VS Code and Voilà, and work headless (without a kernel) for tests. They call only the
public API of :mod:`mlflow_plugin` (``list_runs``, ``publish_run``, ``verify``, ``load_config``).
The work runs in a thread, so the kernel stays responsive; the button is disabled meanwhile.

>>> import pathlib, tempfile
>>> from mlflow import MlflowClient
>>> home = pathlib.Path(tempfile.mkdtemp())
>>> client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
>>> exp = client.create_experiment("fraud", artifact_location=f"modelkit://{home}/kits/fraud")
>>> run = client.create_run(exp, run_name="baseline")
>>> client.log_metric(run.info.run_id, "auc", 0.91)
>>> w = PublishWidget("fraud", tracking_uri=client.tracking_uri, metrics=["auc"])
>>> len(w.frame), w.run_select.value == run.info.run_id, w.publish_button.description
(1, True, 'Publish')
>>> [bar.description for bar in w.bars.values()]
['compose', 'scan', 'attest', 'sign', 'tag', 'record']
>>> v = VerifyWidget("oci:/nonexistent/kits/fraud:v1")
>>> v.reference.value, v.verify_button.description
('oci:/nonexistent/kits/fraud:v1', 'Verify')
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
from IPython.display import HTML

from mlflow_plugin import PUBLISH_STAGES as STAGES
from mlflow_plugin import ModelKitError, PublishBlocked, list_runs, load_config, publish_run
from mlflow_plugin import verify as verify_kit

log = logging.getLogger(__name__)
PASSWORD_ENV = "MLFLOW_MODELKIT_KEY_PASSWORD"
_BADGE = (
    "display:inline-block;padding:0 6px;margin-right:3px;border-radius:8px;font-size:85%;"
    "color:white;background:{color}"
)
_SEVERITY_COLOR = {"critical": "#8b0000", "high": "#c62828", "medium": "#ef6c00", "low": "#9e9d24"}


def _one_line(e: BaseException) -> str:
    """A failure as one line: a ModelKitError's own message, else its type and first line."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(e, ModelKitError):
        return " ".join(text.split("\n")) if text else type(e).__name__
    return (
        f"unexpected error ({type(e).__name__}): {first}"
        if first
        else f"unexpected error ({type(e).__name__})"
    )


def _badge(text: str, color: str) -> str:
    return f'<span style="{_BADGE.format(color=color)}">{html.escape(text)}</span>'


def _scan_color(verdict: str) -> str:
    v = verdict.lower()
    if v.startswith("blocked"):
        return "#c62828"
    if v.startswith("clean") or v.startswith("none"):
        return "#2e7d32"
    for sev, color in _SEVERITY_COLOR.items():
        if v.startswith(sev):
            return color
    return "#616161"


def _fmt_metric(value: Any) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else f"{f:.4g}"


def _fmt_time(value: Any) -> str:
    try:
        return str(value.strftime("%Y-%m-%d %H:%M"))
    except (AttributeError, ValueError):  # NaT or None
        return ""


def _badges(row: Any, as_html: bool) -> str:
    """draft / published / signed ✓ / scan verdict of one ``list_runs`` row."""
    parts: list[tuple[str, str]] = []
    if row.get("draft"):
        parts.append(("draft", "#607d8b"))
    if row.get("published"):
        parts.append(("published", "#1565c0"))
    if bool(row.get("signed")):
        parts.append(("signed ✓", "#2e7d32"))
    scan = row.get("scan")
    if scan:
        parts.append((f"scan: {scan}", _scan_color(str(scan))))
    if as_html:
        return "".join(_badge(t, c) for t, c in parts)
    return " ".join(f"[{t}]" for t, _ in parts)


def _split_specs(text: str) -> list[str]:
    """``RULE[:PATH]`` patterns separated by commas, semicolons or whitespace."""
    return [s for s in re.split(r"[,;\s]+", text.strip()) if s]


def findings_html(findings: Sequence[Any], threshold: str | None = None) -> str:
    """The findings as an HTML table: rule, severity, path, message and the explanation line.

    >>> from mlflow_plugin import Finding, Severity
    >>> f = Finding("requirements.txt", Severity.HIGH, "env.index-override", "--extra-index-url")
    >>> "env.index-override" in findings_html([f], "high"), "threshold" in findings_html([f], "high")
    (True, True)
    """
    rows = []
    for f in findings:
        sev = str(f.severity)
        try:
            why = f.explain().line()
        except Exception:  # an explanation is a help, never a reason to fail
            why = ""
        rows.append(
            "<tr>"
            f"<td><code>{html.escape(f.rule)}</code></td>"
            f"<td>{_badge(sev, _SEVERITY_COLOR.get(sev, '#616161'))}</td>"
            f"<td><code>{html.escape(f.path)}</code></td>"
            f"<td>{html.escape(f.message)}"
            + (f"<br><small>{html.escape(why)}</small>" if why else "")
            + "</td></tr>"
        )
    head = "<tr><th>rule</th><th>severity</th><th>path</th><th>message</th></tr>"
    note = (
        f"<p>The admin's threshold (<code>[scan] fail_on</code>): <b>{html.escape(threshold)}</b></p>"
        if threshold
        else ""
    )
    return f'<table class="modelkit-findings">{head}{"".join(rows)}</table>{note}'


class _Threaded:
    """One job at a time in a thread; the button is disabled while it runs."""

    button: widgets.Button
    output: widgets.Output

    def _init_job(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self, work: Callable[[], None]) -> bool:
        """Run ``work`` in a thread unless a job runs already (then do nothing: False)."""
        with self._lock:
            if self.button.disabled or self.running:
                return False
            self.button.disabled = True
            self.output.outputs = ()
            self.error = None

            def run() -> None:
                try:
                    work()
                except BaseException as e:  # the widget shows it; the kernel must not see a traceback
                    log.debug("widget job failed", exc_info=True)
                    self._fail(_one_line(e))
                finally:
                    self.button.disabled = False

            self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running job (if any) to finish."""
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _fail(self, line: str) -> None:
        self.error = line
        self.output.append_stderr(f"error: {line}\n")


class PublishWidget(widgets.VBox, _Threaded):
    """Pick a run of ``experiment`` and publish it: scanned, attested, signed, tagged.

    The runs table is one page of :func:`mlflow_plugin.list_runs` (``page_size`` rows, Prev/Next
    with the page token) with the ``metrics`` columns and the kit status of each run. The form
    takes the model (name or id, optional), the tag, another repository (optional), the signing
    key (default: the admin's ``signing.key``), its passphrase (cleared as soon as a publish
    starts; an empty field uses ``MLFLOW_MODELKIT_KEY_PASSWORD``) and findings to accept
    (``RULE[:PATH]`` patterns with a reason). One progress bar per stage of
    :data:`~mlflow_plugin.PUBLISH_STAGES`; the output shows the published reference, the
    scan verdict and the ``load_model`` URI, or the findings that blocked the publish.

    ``publish(run_id)`` does the same from code and returns the
    :class:`~mlflow_plugin.PublishResult` (``None`` on failure: see ``error``, one line).

    >>> import pathlib, tempfile
    >>> from mlflow import MlflowClient
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> uri = f"sqlite:///{home}/mlflow.db"
    >>> exp = MlflowClient(uri).create_experiment("e", artifact_location=f"modelkit://{home}/kits/e")
    >>> w = PublishWidget("e", tracking_uri=uri)
    >>> len(w.frame), w.publish("0" * 32), w.error.startswith("no signing key")
    (0, None, True)
    """

    def __init__(
        self,
        experiment: str,
        *,
        tracking_uri: str | None = None,
        key: str | None = None,
        repository: str | None = None,
        metrics: Sequence[str] = (),
        page_size: int = 50,
        tag: str = "v1",
    ) -> None:
        self.experiment = experiment
        self.tracking_uri = tracking_uri
        self.metrics = list(metrics)
        self.page_size = page_size
        self._init_job()
        self.result: Any = None
        self.frame: Any = None
        self._token: str | None = None  # the token of the page shown
        self._previous: list[str | None] = []  # tokens of the pages before it
        self._next: str | None = None

        self.title = widgets.HTML(f"<b>Publish a run of <code>{html.escape(experiment)}</code></b>")
        self.runs_table = widgets.HTML()
        self.run_select = widgets.Select(options=[], description="run", rows=6, layout={"width": "95%"})
        self.prev_button = widgets.Button(description="Prev", icon="arrow-left", disabled=True)
        self.next_button = widgets.Button(description="Next", icon="arrow-right", disabled=True)
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.page_label = widgets.Label()
        self.prev_button.on_click(lambda _b: self.previous_page())
        self.next_button.on_click(lambda _b: self.next_page())
        self.refresh_button.on_click(lambda _b: self.refresh())

        self.model = widgets.Text(description="model", placeholder="logged model name or id (optional)")
        self.tag = widgets.Text(value=tag, description="tag")
        self.repository = widgets.Text(
            value=repository or "", description="repository", placeholder="default: the run's"
        )
        self.key = widgets.Text(value=key or "", description="key", placeholder="default: signing.key")
        self.passphrase = widgets.Password(description="passphrase", placeholder="key passphrase")
        self.accept = widgets.Text(description="accept", placeholder="RULE[:PATH], … (optional)")
        self.reason = widgets.Text(description="reason", placeholder="why the accepted risk is fine")
        self.button = self.publish_button = widgets.Button(
            description="Publish", button_style="primary", icon="upload"
        )
        self.button.on_click(lambda _b: self._publish_from_form(None))
        self.bars: dict[str, widgets.IntProgress] = {
            s: widgets.IntProgress(value=0, min=0, max=1, description=s) for s in STAGES
        }
        self.output = widgets.Output()
        super().__init__(
            children=[
                self.title,
                self.runs_table,
                self.run_select,
                widgets.HBox([self.prev_button, self.page_label, self.next_button, self.refresh_button]),
                widgets.HBox(
                    [
                        widgets.VBox([self.model, self.tag, self.repository]),
                        widgets.VBox([self.key, self.passphrase]),
                    ]
                ),
                widgets.HBox([self.accept, self.reason]),
                self.publish_button,
                widgets.VBox(list(self.bars.values())),
                self.output,
            ]
        )
        self.refresh()

    # ---- the runs table ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the page shown (keeps the selected run when it is still on it)."""
        self._load(self._token)

    def next_page(self) -> None:
        if self._next:
            self._previous.append(self._token)
            self._load(self._next)

    def previous_page(self) -> None:
        if self._previous:
            self._load(self._previous.pop())

    def _load(self, token: str | None) -> None:
        try:
            page = list_runs(
                self.experiment,
                metrics=self.metrics,
                max_results=self.page_size,
                page_token=token,
                tracking_uri=self.tracking_uri,
            )
        except Exception as e:  # shown, never raised into the notebook
            self.runs_table.value = f'<span style="color:#c62828">error: {html.escape(_one_line(e))}</span>'
            return
        self._token, self._next, self.frame = token, page.next_page_token, page.frame
        self.runs_table.value = self._table_html(page.frame)
        selected = self.run_select.value
        self.run_select.options = [(self._label(r), r["run_id"]) for r in page.frame.to_dict("records")]
        ids = list(page.frame["run_id"])
        if ids:
            self.run_select.value = selected if selected in ids else ids[0]
        self.prev_button.disabled = not self._previous
        self.next_button.disabled = not self._next
        n = len(self._previous) + 1
        self.page_label.value = f"page {n}: {len(ids)} runs{'' if self._next else ' (last)'}"

    def _label(self, row: dict[str, Any]) -> str:
        metrics = " ".join(
            f"{m}={_fmt_metric(row.get(f'metrics.{m}'))}"
            for m in self.metrics
            if _fmt_metric(row.get(f"metrics.{m}"))
        )
        name = row.get("run_name") or row["run_id"][:8]
        parts = [
            name,
            _fmt_time(row.get("start_time")),
            row.get("status") or "",
            metrics,
            _badges(row, False),
        ]
        return "  ".join(p for p in parts if p)

    def _table_html(self, frame: Any) -> str:
        head = "".join(
            f"<th>{html.escape(c)}</th>" for c in ["run", "started", "status", *self.metrics, "kit", "run id"]
        )
        rows = []
        for r in frame.to_dict("records"):
            cells = [
                html.escape(str(r.get("run_name") or "")),
                _fmt_time(r.get("start_time")),
                html.escape(str(r.get("status") or "")),
                *(_fmt_metric(r.get(f"metrics.{m}")) for m in self.metrics),
                _badges(r, True),
                f"<code>{html.escape(r['run_id'])}</code>",
            ]
            rows.append(
                f'<tr data-run-id="{html.escape(r["run_id"])}">'
                + "".join(f"<td>{c}</td>" for c in cells)
                + "</tr>"
            )
        if not rows:
            return f'<table class="modelkit-runs"><tr>{head}</tr></table><i>no runs</i>'
        return f'<table class="modelkit-runs"><tr>{head}</tr>{"".join(rows)}</table>'

    # ---- publishing ----------------------------------------------------------------------------
    def publish(
        self, run_id: str | None = None, wait: bool = True, *, password: str | bytes | None = None
    ) -> Any:
        """Publish ``run_id`` (default: the selected run) with the form's settings.

        ``password`` replaces the passphrase field. With ``wait`` returns the
        :class:`~mlflow_plugin.PublishResult` (``None`` on failure; ``error`` holds the one-line
        reason); without, returns at once (``wait()`` joins; ``result`` / ``error`` after). While
        a publish runs, another one does nothing (returns ``None``)."""
        secret = password.encode() if isinstance(password, str) else password
        started = self._publish_from_form(run_id, secret)
        if wait and started:
            self.wait()
            return self.result
        return None

    def _publish_from_form(self, run_id: str | None, secret: bytes | None = None) -> bool:
        if self.running or self.button.disabled:
            return False  # a click while a publish runs does nothing (and keeps the passphrase)
        run = run_id or self.run_select.value
        if secret is None:
            secret = self.passphrase.value.encode()
        self.passphrase.value = ""  # never kept on the widget once a publish starts
        password: bytes | Callable[[], bytes | None] = secret or _password_from_env
        del secret
        args = {
            "tag": self.tag.value.strip(),
            "key": self.key.value.strip() or None,
            "repository": self.repository.value.strip() or None,
            "model": self.model.value.strip() or None,
            "accept": _split_specs(self.accept.value),
            "reason": self.reason.value.strip() or None,
        }
        self.result = None
        for stage, bar in self.bars.items():
            bar.value, bar.max, bar.bar_style, bar.description = 0, 1, "", stage
        self._stage: str | None = None

        def work() -> None:
            if not run:
                raise ModelKitError("no run selected: pick a run in the table or pass run_id=")
            try:
                result = publish_run(
                    run,
                    tracking_uri=self.tracking_uri,
                    progress=self._progress,
                    password=password,  # type: ignore[arg-type]  # a callable is asked only if encrypted
                    **args,
                )
            except PublishBlocked as e:
                self._blocked(e)
                return
            self._succeeded(result)

        return self._start(work)

    def _progress(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            return
        self._stage = stage
        bar.max = max(total, 1)
        bar.value = min(done, bar.max) if total else 0
        bar.bar_style = "info"

    def _fail(self, line: str) -> None:
        super()._fail(line)
        stage = getattr(self, "_stage", None)
        self.bars[stage or STAGES[0]].bar_style = "danger"

    def _blocked(self, e: PublishBlocked) -> None:
        self.error = _one_line(e)
        self.bars["scan"].bar_style = "danger"
        report = e.report
        try:
            threshold: str | None = load_config().scan_fail_on
        except ModelKitError:
            threshold = None
        findings = report.sorted_findings() if hasattr(report, "sorted_findings") else list(report.findings)
        self.output.append_stderr(f"error: {self.error}\n")
        self.output.append_display_data(HTML(findings_html(findings, threshold)))
        self.refresh()

    def _succeeded(self, r: Any) -> None:
        for stage, bar in self.bars.items():
            if bar.value < bar.max:  # attest/sign skipped: existing signatures were reused
                bar.value = bar.max
                bar.description = f"{stage} (reused)" if r.reused_signatures else stage
            bar.bar_style = "success"
        self.result = r
        lines = [
            f"{r.reference}@{r.digest}",
            f"  scan:       {r.verdict}",
            f"  signed:     yes{' (existing signatures reused)' if r.reused_signatures else ''}",
            f"  load with:  mlflow.pyfunc.load_model({r.model_uri!r})",
        ]
        lines += [f"  accepted:   {f.severity} {f.rule} at {f.path} ({a.reason})" for f, a in r.accepted]
        if r.model_version:
            lines.append(f"  registered: version {r.model_version}")
        self.output.append_stdout("\n".join(lines) + "\n")
        shown = [f for f in r.scan.sorted_findings() if str(f.severity) != "info"]
        if shown:
            self.output.append_display_data(HTML(findings_html(shown)))
        self.refresh()


def _password_from_env() -> bytes | None:
    """An empty passphrase field: the environment's, asked only for an encrypted key (no prompt)."""
    value = os.environ.get(PASSWORD_ENV)
    return value.encode() if value else None


class VerifyWidget(widgets.VBox, _Threaded):
    """Verify a published kit: signature, attestations, scan verdict, and (deep) every blob digest.

    ``keys`` are trusted public keys (default: the admin's ``signing.trusted_keys``). The output
    lists every check as ``PASS``/``FAIL`` with its detail (as ``mlflow-modelkit verify``
    prints), the findings the publisher accepted, and ``verified`` or ``NOT verified``.
    ``verify()`` does the same from code and returns the :class:`~mlflow_plugin.VerifyResult`.

    >>> w = VerifyWidget("oci:/nonexistent/kits/fraud:v1", keys=["cosign.pub"])
    >>> w.verify() is None, w.error is not None
    (True, True)
    """

    def __init__(self, reference: str | None = None, *, keys: Sequence[str] | None = None) -> None:
        self._init_job()
        self.result: Any = None
        self.reference = widgets.Text(
            value=reference or "", description="kit", placeholder="HOST/REPO:TAG, oci:DIR:TAG or …@sha256:…"
        )
        self.trusted_keys = widgets.Text(
            value=", ".join(keys or ()), description="keys", placeholder="default: signing.trusted_keys"
        )
        self.deep = widgets.Checkbox(value=True, description="re-hash every blob")
        self.button = self.verify_button = widgets.Button(
            description="Verify", button_style="primary", icon="check"
        )
        self.button.on_click(lambda _b: self._verify_from_form())
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="verify")
        self.checks = widgets.HTML()
        self.output = widgets.Output()
        super().__init__(
            children=[
                widgets.HBox([self.reference, self.trusted_keys]),
                widgets.HBox([self.deep, self.verify_button]),
                self.bar,
                self.checks,
                self.output,
            ]
        )

    def verify(self, wait: bool = True) -> Any:
        """Verify the kit in the reference field; with ``wait`` return the ``VerifyResult``
        (``None`` when verification could not run: ``error`` says why, in one line)."""
        started = self._verify_from_form()
        if wait and started:
            self.wait()
            return self.result
        return None

    def _verify_from_form(self) -> bool:
        ref = self.reference.value.strip()
        keys = [k.strip() for k in self.trusted_keys.value.split(",") if k.strip()] or None
        deep = self.deep.value
        self.result = None
        self.checks.value = ""
        self.bar.value, self.bar.max, self.bar.bar_style = 0, 1, ""

        def work() -> None:
            if not ref:
                raise ModelKitError("no kit reference: enter HOST/REPO:TAG or oci:DIR:TAG")
            self._done(verify_kit(ref, keys=keys, deep=deep, progress=self._progress))

        return self._start(work)

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = min(done, self.bar.max)

    def _fail(self, line: str) -> None:
        super()._fail(line)
        self.bar.bar_style = "danger"

    def _done(self, r: Any) -> None:
        self.result = r
        self.bar.value = self.bar.max
        self.bar.bar_style = "success" if r.ok else "danger"
        lines = [f"{r.reference}  {r.digest}"]
        lines += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name:<24} {c.detail}" for c in r.checks]
        lines += [f"  ACCEPTED {a.describe()}" for a in r.acceptances]
        lines += [f"  NOTE  {n}" for n in r.notes]
        lines.append("verified" if r.ok else "NOT verified")
        self.output.append_stdout("\n".join(lines) + "\n")
        rows = "".join(
            f"<tr><td>{_badge('PASS', '#2e7d32') if c.ok else _badge('FAIL', '#c62828')}</td>"
            f"<td>{html.escape(c.name)}</td><td>{html.escape(c.detail)}</td></tr>"
            for c in r.checks
        )
        self.checks.value = f'<table class="modelkit-checks">{rows}</table>'
        if not r.ok:
            failed = r.failures()
            self.error = f"{r.reference} is NOT verified: {failed[0].name}: {failed[0].detail}".split("\n")[0]


__all__ = ["PublishWidget", "VerifyWidget", "findings_html"]
