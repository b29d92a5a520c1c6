"""The ModelKits panel in a real JupyterLab, driven in Debian's Chromium with Python Playwright.

No mocks: a ``jupyter lab`` subprocess (its own port, token, root dir, settings and caches) serves
the built labextension and ``jupyter_ext``; its MLflow tracking store (SQLite) holds runs logged
*before* it starts into the session's real ``docker-registry``; publishes scan, attest, sign and
tag for real, with a key pair whose passphrase is typed into the Publish dialog.

The steps share one browser page and run in file order (each test needs the state the previous
ones made): open the panel from the command palette, the runs of the experiment, a run detail with
its logged model's draft kit, Publish (every stage done, the digest the registry stores, scan
clean), the Kits view's verified badge, a malicious pickle blocked with its finding and threshold,
a notebook-defined model published with its ``pickle.embedded-code`` finding, a tampered layer
blob failing deep verification, the Policy view; no passphrase in the page or the server's log.

Each step saves a screenshot under ``tests/jupyter/ui-screenshots/`` (gitignored). Skipped only
when Chromium, ``jupyter`` or ``docker-registry`` is missing (CI installs them: ``make
system-deps``). Run alone: ``pytest tests/jupyter/test_ui.py`` (or ``-m ui``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pytest
from _envhelpers import ADMIN_ENV_VARS
from _registries import RegistryServer, free_port
from mlflow import MlflowClient

from mlflow_plugin import generate_keypair, inspect

CHROMIUM = Path("/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parent / "ui-screenshots"
PASSPHRASE = "ui-passphrase-Zq8Lm3Rt6Wy1"
EVIL_PICKLE = b"cos\nsystem\n(S'true'\ntR."  # calls os.system when unpickled; never unpickled here
STAGES = ["compose", "scan", "attest", "sign", "tag", "record"]
TIMEOUT_MS = 90_000
NOTEBOOK_MODEL = """
import mlflow.pyfunc
import pandas as pd

class NotebookRules(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"score": (model_input["x"] > 0.5).astype(float)})
"""


def _jupyter() -> str | None:
    beside = Path(sys.executable).parent / "jupyter"
    if beside.exists():
        return str(beside)
    import shutil

    return shutil.which("jupyter")


def _playwright_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright is not installed (pip install '.[test]')"
    return None


UI_MARK = pytest.mark.ui  # registered in pyproject.toml (select with -m ui)

pytestmark = [
    pytest.mark.registry,
    UI_MARK,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed ({CHROMIUM})"),
    pytest.mark.skipif(_jupyter() is None, reason="jupyter is not installed"),
    pytest.mark.skipif(_playwright_missing() is not None, reason=str(_playwright_missing())),
]


# ---- pytest-jupyter's autouse fixtures (tests/jupyter/conftest.py) do not apply here ---------------
@pytest.fixture
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private loop, never the current one: Playwright's sync API runs its own loop in this
    thread, which pytest-jupyter's fixture would pick up as "the" loop and try to close."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def jp_server_cleanup() -> None:
    """No in-process ServerApp here: the server is a ``jupyter lab`` subprocess."""


# ---- the world: runs logged into the registry before the server starts --------------------------
@dataclass
class World:
    home: Path
    uri: str
    config: Path
    private: str
    public: str
    experiment: str
    repository: str  # HOST/REPO the experiment's runs are stored in
    clean: str
    evil: str
    notebook: str


@dataclass
class Steps:
    """What earlier steps made, for the later ones."""

    published: dict[str, tuple[str, str]] = field(default_factory=dict)  # run -> (reference, digest)


def _log_runs(client: MlflowClient, exp_id: str, home: Path) -> tuple[str, str, str]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    with mlflow.start_run(experiment_id=exp_id, run_name="clean-logreg") as run:
        mlflow.log_params({"C": 0.5, "model": "logistic-regression"})
        mlflow.log_metric("auc", 0.93)
        X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
        model = LogisticRegression(C=0.5).fit(X, [0, 1, 0, 1])
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    clean = run.info.run_id

    evil = client.create_run(exp_id, run_name="evil-pickle").info.run_id
    src = home / "evil" / "model.pkl"
    src.parent.mkdir()
    src.write_bytes(EVIL_PICKLE)
    client.log_artifact(evil, str(src), "model")
    client.log_metric(evil, "auc", 0.5)
    client.set_terminated(evil)

    with mlflow.start_run(experiment_id=exp_id, run_name="notebook-rules") as run:
        ns: dict[str, Any] = {"__name__": "__main__"}  # a class defined in a notebook: pickled by value
        exec(NOTEBOOK_MODEL, ns)
        mlflow.log_metric("auc", 0.71)
        mlflow.pyfunc.log_model(name="model", python_model=ns["NotebookRules"](), pip_requirements=["mlflow"])
    return clean, evil, run.info.run_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer) -> Iterator[World]:
    home = tmp_path_factory.mktemp("jupyter-ui")
    uri = f"sqlite:///{home}/mlflow.db"
    keys = generate_keypair(str(home / "keys"), password=PASSPHRASE)
    config = home / "modelkit.toml"
    config.write_text(
        f"[signing]\nkey = {json.dumps(keys.private)}\ntrusted_keys = [{json.dumps(keys.public)}]\n"
    )
    name = f"ui-{uuid.uuid4().hex[:8]}"
    repository = f"{registry.host}/ui/{name}"
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's notes about signatures and type hints
        for var in (*ADMIN_ENV_VARS, "MLFLOW_MODELKIT_KEY_PASSWORD", "MLFLOW_TRACKING_URI"):
            mp.delenv(var, raising=False)
        mp.setenv("MLFLOW_MODELKIT_NO_PROGRESS", "1")
        mlflow.set_tracking_uri(uri)
        try:
            client = MlflowClient(tracking_uri=uri)
            exp_id = client.create_experiment(name, artifact_location=f"modelkit://{repository}")
            clean, evil, notebook = _log_runs(client, exp_id, home)
        finally:
            while mlflow.active_run():
                mlflow.end_run()
            mlflow.set_tracking_uri(previous)
    yield World(home, uri, config, keys.private, keys.public, name, repository, clean, evil, notebook)


# ---- the JupyterLab server ----------------------------------------------------------------------
@dataclass
class Lab:
    url: str
    token: str
    log: Path


def _wait_ready(lab: Lab, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(f"{lab.url}/api/status", headers={"Authorization": f"token {lab.token}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    tail = lab.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"jupyter lab did not answer /api/status within {timeout}s; log tail:\n{tail}")


@pytest.fixture(scope="module")
def lab(world: World) -> Iterator[Lab]:
    home = world.home / "lab"
    root, settings = home / "root", home / "settings"
    for d in (root, settings, home / "config", home / "data", home / "runtime", home / "workspaces"):
        d.mkdir(parents=True)
    # the user's settings: no news toast over the page; metric/param columns in the runs table
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (settings / "mlflow-modelkit").mkdir()
    (settings / "mlflow-modelkit" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"metricColumns": ["auc"], "paramColumns": ["C"]})
    )
    env = {k: v for k, v in os.environ.items() if k not in ADMIN_ENV_VARS}
    env.pop("MLFLOW_MODELKIT_KEY_PASSWORD", None)
    env.update(
        MLFLOW_TRACKING_URI=world.uri,
        MLFLOW_MODELKIT_CONFIG=str(world.config),
        MLFLOW_MODELKIT_NO_PROGRESS="1",
        XDG_CACHE_HOME=str(home / "cache"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    port, token = free_port(), secrets.token_hex(24)
    cmd = [
        str(_jupyter()), "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = home / "jupyter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    server = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        _wait_ready(server, proc)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# ---- the browser --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            pg = context.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            yield pg
        finally:
            browser.close()


@pytest.fixture(scope="module")
def steps() -> Steps:
    return Steps()


def shot(page: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), scale="css")
    return path


def tid(page_or_locator: Any, testid: str) -> Any:
    return page_or_locator.get_by_test_id(testid)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as _expect

    _expect.set_options(timeout=TIMEOUT_MS)
    return _expect(locator)


def run_row(page: Any, run_id: str) -> Any:
    return page.locator(f'[data-testid="mk-run-row"][data-run-id="{run_id}"]')


def open_publish(page: Any, run_id: str) -> Any:
    """Select ``run_id`` in the runs table and open the Publish dialog for it."""
    tid(page, "mk-tab-runs").click()
    row = run_row(page, run_id)
    row.click()
    expect(row).to_have_attribute("aria-selected", "true")
    tid(page, "mk-runs-publish").click()
    dialog = tid(page, "mk-publish-dialog")
    expect(tid(dialog, "mk-publish-run")).to_have_value(run_id)
    return dialog


def submit_publish(dialog: Any, tag: str) -> None:
    tid(dialog, "mk-publish-tag").fill(tag)
    tid(dialog, "mk-publish-passphrase").fill(PASSPHRASE)
    tid(dialog, "mk-publish-submit").click()


def assert_no_passphrase(page: Any, lab: Lab) -> None:
    assert PASSPHRASE not in page.content()
    for field_ in page.locator('[data-testid="mk-publish-passphrase"]').all():
        assert field_.input_value() == ""  # cleared once sent
    assert PASSPHRASE not in lab.log.read_text(errors="replace")


# ---- the steps ----------------------------------------------------------------------------------
def test_open_panel_and_runs(page: Any, lab: Lab, world: World) -> None:
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator("#jp-main-dock-panel").wait_for()
    page.locator(".jp-LauncherCard").first.wait_for()
    shot(page, "01-lab")

    # the command palette's "ModelKits: Open panel"
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette")
    palette.locator("input").fill("ModelKits: Open panel")
    palette.locator(".lm-CommandPalette-item", has_text="ModelKits: Open panel").first.click()
    panel = tid(page, "mk-panel")
    expect(panel).to_be_visible()

    # widen the sidebar so the tables read well (drag the split handle next to it)
    handle = page.locator(
        "#jp-left-stack + .lm-SplitPanel-handle, #jp-main-split-panel > .lm-SplitPanel-handle"
    )
    box = handle.first.bounding_box()
    if box:
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 300)
        page.mouse.down()
        page.mouse.move(760, box["y"] + 300, steps=5)
        page.mouse.up()

    tid(page, "mk-experiment-select").select_option(label=world.experiment)
    for run_id in (world.clean, world.evil, world.notebook):
        expect(run_row(page, run_id)).to_be_visible()
    clean = run_row(page, world.clean)
    expect(clean).to_contain_text("clean-logreg")
    expect(clean).to_contain_text("0.93")  # the metric column from the user's settings
    expect(tid(page, "mk-runs-header-metrics.auc")).to_be_visible()
    expect(tid(clean, "mk-badge-draft")).to_be_visible()
    shot(page, "02-runs")


def test_run_detail_shows_the_model_draft(page: Any, world: World) -> None:
    run_row(page, world.clean).dblclick()
    detail = tid(page, "mk-run-detail")
    expect(detail).to_have_attribute("data-run-id", world.clean)
    expect(detail.locator(".jp-ModelKits-title").first).to_have_text("clean-logreg")  # the run's name
    # MLflow 3: the logged model lives in its own draft kit (m-<id>), listed with its files
    model_draft = detail.locator('[data-testid="mk-draft"][data-kind="model"]')
    expect(model_draft).to_have_count(1)
    ref = model_draft.get_attribute("data-reference")
    assert ref and ref.startswith(f"{world.repository}:m-"), ref
    files = [t.strip() for t in tid(model_draft, "mk-file-row").locator("td:first-child").all_inner_texts()]
    assert {"MLmodel", "model.skops", "requirements.txt"} <= set(files), files
    expect(tid(detail, "mk-no-draft")).to_have_count(0)
    expect(tid(detail, "mk-models")).to_contain_text("sklearn")

    tid(detail, "mk-scan-button").click()
    summary = tid(detail, "mk-scan-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text(re.compile(r"highest severity: (none|info)$"))
    # only notes (unpinned requirements); nothing that would make the scan unclean
    notes = detail.locator('[data-testid="mk-finding-row"]:not([data-severity="info"])')
    expect(notes).to_have_count(0)
    shot(page, "03-run-detail")
    tid(detail, "mk-detail-back").click()
    expect(tid(page, "mk-runs-table")).to_be_visible()


def test_publish_clean_run(page: Any, lab: Lab, world: World, steps: Steps) -> None:
    dialog = open_publish(page, world.clean)
    submit_publish(dialog, "v1")
    result = tid(dialog, "mk-publish-result")
    expect(result).to_be_visible()
    for stage in STAGES:
        expect(tid(dialog, f"mk-stage-{stage}")).to_have_attribute("data-status", "done")
    reference = f"{world.repository}:v1"
    digest = inspect(reference).digest  # what the registry stores under the tag
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    expect(tid(dialog, "mk-publish-digest")).to_have_text(f"{world.repository}@{digest}")  # pinned
    expect(tid(dialog, "mk-publish-verdict")).to_have_text("scan: clean")
    expect(tid(dialog, "mk-publish-load-uri")).to_contain_text(f"modelkit://{world.repository}@{digest}")
    steps.published[world.clean] = (reference, digest)
    shot(page, "04-publish-clean")
    assert_no_passphrase(page, lab)
    tid(dialog, "mk-publish-close").click()
    expect(tid(page, "mk-publish-dialog")).to_have_count(0)


def test_kits_view_verified_badge(page: Any, world: World, steps: Steps) -> None:
    assert world.clean in steps.published, "needs test_publish_clean_run"
    _ref, digest = steps.published[world.clean]
    tid(page, "mk-tab-kits").click()
    expect(tid(page, "mk-kits-repository")).to_have_value(world.repository)  # the experiment's
    row = page.locator(f'[data-testid="mk-kit-row"][data-digest="{digest}"]')
    try:
        expect(row).to_contain_text("v1")
    except AssertionError as e:
        raise AssertionError(f"{e}\nthe kits view reads:\n{tid(page, 'mk-kits-view').inner_text()}") from None
    expect(tid(row, "mk-kit-badge")).to_have_attribute("data-kind", "verified")
    row.click()
    checks = tid(page, "mk-kit-checks")
    expect(checks).to_be_visible()
    expect(checks.locator('[data-testid="mk-check-row"][data-status="FAIL"]')).to_have_count(0)
    expect(checks).to_contain_text("signature")
    shot(page, "05-kits-verified")


def test_publish_malicious_run_is_blocked(page: Any, lab: Lab, world: World) -> None:
    dialog = open_publish(page, world.evil)
    submit_publish(dialog, "evil-v1")
    blocked = tid(dialog, "mk-publish-blocked")
    expect(blocked).to_be_visible()
    expect(tid(dialog, f"mk-stage-{STAGES[-1]}")).not_to_have_attribute("data-status", "done")
    expect(tid(blocked, "mk-publish-threshold")).to_have_text("blocked at threshold: high")
    expect(tid(blocked, "mk-error")).to_contain_text("publishing blocked by the scan")
    finding = blocked.locator('[data-testid="mk-finding-row"]', has_text="model/model.pkl").first
    expect(finding).to_have_attribute("data-severity", "critical")
    expect(finding).to_contain_text("pickle.unsafe-global")
    expect(finding).to_contain_text("os.system")
    expect(tid(dialog, "mk-publish-result")).to_have_count(0)
    shot(page, "06-publish-blocked")
    assert_no_passphrase(page, lab)
    with pytest.raises(Exception, match=r"(?i)not.?found|unknown|404|manifest"):
        inspect(f"{world.repository}:evil-v1")  # nothing was tagged
    tid(dialog, "mk-publish-close").click()


def test_publish_notebook_model_with_finding(page: Any, lab: Lab, world: World, steps: Steps) -> None:
    dialog = open_publish(page, world.notebook)
    submit_publish(dialog, "nb-v1")
    expect(tid(dialog, "mk-publish-result")).to_be_visible()
    reference = f"{world.repository}:nb-v1"
    digest = inspect(reference).digest
    expect(tid(dialog, "mk-publish-digest")).to_have_text(f"{world.repository}@{digest}")  # pinned
    verdict = tid(dialog, "mk-publish-verdict").inner_text()
    assert verdict.startswith("scan: medium"), verdict  # below the threshold: published
    # the result lists the findings of the published bytes: the class pickled by value
    finding = tid(dialog, "mk-publish-result").locator(
        '[data-testid="mk-finding-row"]', has_text="pickle.embedded-code"
    )
    expect(finding.first).to_have_attribute("data-severity", "medium")
    expect(finding.first).to_contain_text("NotebookRules")
    steps.published[world.notebook] = (reference, digest)
    shot(page, "07-publish-notebook")
    assert_no_passphrase(page, lab)
    tid(dialog, "mk-publish-close").click()


@contextlib.contextmanager
def rewritten(reg: RegistryServer, digest: str) -> Iterator[Path]:
    """Change one byte of blob ``digest`` in the registry's storage (same size); restore it afterwards."""
    path = reg.blob_path(digest)
    original = path.read_bytes()
    data = bytearray(original)
    i = len(data) // 2
    data[i] = (
        ord("1") if data[i] == ord("0") else ord("0") if chr(data[i]) in "123456789abcdef" else data[i] ^ 1
    )
    path.write_bytes(bytes(data))
    try:
        yield path
    finally:
        path.write_bytes(original)


def test_verify_box_fails_on_a_tampered_kit(
    page: Any, world: World, steps: Steps, registry: RegistryServer
) -> None:
    assert world.clean in steps.published, "needs test_publish_clean_run"
    reference, digest = steps.published[world.clean]
    layers = inspect(reference).manifest["layers"]
    biggest = max(layers, key=lambda d: d["size"])["digest"]
    tid(page, "mk-tab-verify").click()
    box = tid(page, "mk-verify-view")
    tid(box, "mk-verify-input").fill(reference)
    expect(tid(box, "mk-verify-deep")).to_be_checked()

    # untouched: verified, deep (every blob re-hashed)
    tid(box, "mk-verify-button").click()
    expect(tid(box, "mk-verify-result")).to_have_attribute("data-verified", "true")
    expect(tid(box, "mk-verify-verdict")).to_have_text("verified")

    with rewritten(registry, biggest):
        tid(box, "mk-verify-button").click()
        result = tid(box, "mk-verify-result")
        expect(result).to_have_attribute("data-verified", "false")
        expect(tid(box, "mk-verify-verdict")).to_have_text("NOT verified")
        failed = result.locator('[data-testid="mk-check-row"][data-status="FAIL"]')
        expect(failed).to_have_count(1)
        expect(failed).to_contain_text("blob digests")
        expect(failed).to_contain_text(biggest)  # the blob that was changed
        expect(result).to_contain_text(digest)
        shot(page, "08-verify-tampered")


def test_policy_view_and_no_secret(page: Any, lab: Lab, world: World) -> None:
    tid(page, "mk-tab-policy").click()
    view = tid(page, "mk-policy-view")
    expect(tid(view, "mk-policy-tracking")).to_contain_text(world.uri)
    table = tid(view, "mk-policy-table")
    expect(table).to_contain_text(world.public)
    expect(table).to_contain_text(str(world.config))
    shot(page, "09-policy")
    assert_no_passphrase(page, lab)
    # every screenshot is small enough to look at (and to commit one as docs/panel.png)
    sizes = {p.name: p.stat().st_size for p in SHOTS.glob("*.png")}
    assert len(sizes) >= 9 and max(sizes.values()) < 200_000, sizes


def test_screenshot_dir_is_ignored() -> None:
    """The screenshots are run-time output: git must ignore them."""
    out = subprocess.run(
        ["git", "check-ignore", "-q", str(SHOTS / "01-lab.png")],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
    )
    # 1: not ignored; 128: not a git checkout (the tests run from a clone: CI clones main)
    assert out.returncode == 0, f"tests/jupyter/ui-screenshots/ is not ignored by git: {out.stderr!r}"
