"""The jobs' work: scan a run's draft kit, publish a run, verify a kit (blocking; run on the job pool).

Each builder returns ``work(progress) -> dict`` for :meth:`jupyter_ext.jobs.JobManager.submit`.
A publish blocked by the scan fails with :class:`~jupyter_ext.jobs.JobFailed` carrying
``{blocked: true, report, threshold}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jupyter_ext import views
from jupyter_ext.jobs import JobFailed, Progress, Work

KEY_PASSWORD_ENV = "MLFLOW_MODELKIT_KEY_PASSWORD"


def scan_run(tracking_uri: str, run_id: str) -> Work:
    def work(progress: Progress) -> dict[str, Any]:
        from mlflow_plugin import NotFoundError, scan

        _run, reference = views.draft_reference(tracking_uri, run_id)
        kits = [("run", reference)] if reference else []
        kits += views.model_drafts(tracking_uri, run_id)  # logged models have draft kits of their own
        if not kits:
            raise JobFailed(f"run {run_id} has no draft kit: its artifacts are not in a modelkit:// store")
        merged = None
        scanned = []
        for _name, ref in kits:
            try:
                report = scan(ref, progress=progress)
            except NotFoundError:
                continue  # the run's own draft exists once it logs an artifact
            scanned.append(report.target)  # the reference pinned to the digest that was scanned
            if merged is None:
                merged = report
            else:
                merged.files += report.files
                merged.findings += report.findings
        if merged is None:
            raise JobFailed(f"run {run_id} has no draft kit yet: it has logged no artifact or model")
        merged.target = ", ".join(scanned)
        result: dict[str, Any] = merged.to_json()
        return result

    return work


def publish(
    tracking_uri: str,
    run_id: str,
    tag: str,
    *,
    model: str | None,
    repository: str | None,
    key: str | None,
    password: bytes | None,
    register_as: str | None,
    accept: Sequence[str],
    reason: str | None,
) -> Work:
    """``publish_run`` with the passphrase kept in this closure only (never on the job)."""
    # no passphrase from the panel: the server's MLFLOW_MODELKIT_KEY_PASSWORD, never a prompt on
    # the server's terminal (b"" makes an encrypted key fail with one line instead)
    secret = password if password is not None else (None if KEY_PASSWORD_ENV in os.environ else b"")

    def work(progress: Progress) -> dict[str, Any]:
        from mlflow_plugin import PublishBlocked, load_config, publish_run

        cfg = load_config()
        try:
            r = publish_run(
                run_id,
                tag,
                key=key,
                password=secret,
                repository=repository,
                model=model,
                register_as=register_as,
                tracking_uri=tracking_uri,
                config=cfg,
                progress=progress,
                accept=list(accept),
                reason=reason,
            )
        except PublishBlocked as e:
            raise JobFailed(
                str(e), {"blocked": True, "report": e.report.to_json(), "threshold": cfg.scan_fail_on}
            ) from None
        run = views.get_run(tracking_uri, run_id)
        return {
            "reference": r.reference,
            "digest": r.digest,
            "pinned": r.pinned,
            "model_uri": r.model_uri,
            "verdict": r.verdict,
            "attachments": dict(r.attachments),
            "reused_signatures": r.reused_signatures,
            "accepted": [{"finding": f.to_json(), "acceptance": a.to_json()} for f, a in r.accepted],
            # the published kit's own signed scan report: what the verdict is made of
            "findings": r.scan.to_json()["findings"],
            "model_version": r.model_version,
            # recipient key ids when the admin's [encryption] recipients made this kit encrypted
            "encrypted_for": list(r.encrypted_for),
            "run_url": views.ui_url(tracking_uri, str(run.info.experiment_id), run_id),
        }

    return work


def verify(reference: str, deep: bool) -> Work:
    def work(progress: Progress) -> dict[str, Any]:
        from mlflow_plugin import verify as verify_kit

        result: dict[str, Any] = verify_kit(reference, deep=deep, progress=progress).to_json()
        return result

    return work
