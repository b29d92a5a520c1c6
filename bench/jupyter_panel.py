#!/usr/bin/env python3
"""JupyterLab panel benchmark: the runs route, panel open → first rows, publish via panel vs CLI.

    .venv/bin/python bench/jupyter_panel.py   # 2,000 runs, N=20 / 5 / 3 pairs

Sets up, in a temp dir (not timed): a SQLite tracking store with an experiment of ``--runs`` runs
(params and metrics through ``MlflowClient.log_batch``; a few runs log a small artifact into
``modelkit://<tmp>/kits/...``, a local OCI layout), a key pair with an empty passphrase, an admin
TOML (``MLFLOW_MODELKIT_CONFIG``), and ``2 × --pairs`` runs logging the same small sklearn model.
Starts a real ``jupyter lab`` subprocess on a free port, then measures:

(a) ``GET /mlflow-modelkit/runs`` (50 and 100 rows, 2 metric columns, sorted by a metric, pages
    1-5 through ``next_page_token``): median/p90/max over ``--n`` calls after a warm-up, against
    ``mlflow_plugin.list_runs`` and ``MlflowClient.search_runs`` in this process for the same page.
(b) Chromium (Playwright), fresh contexts loading ``/lab?reset``: the baseline is the same page
    listing the root dir in its file browser; then the ModelKits sidebar tab is clicked and the
    time to the first visible ``[data-testid="mk-run-row"]`` is taken with ``performance.now()``
    in the page. Two modes, ``--loads`` each: ``ready`` (click once the file browser is listed;
    the hidden panel has usually fetched its runs by then) and ``early`` (click as soon as the
    tab shows). Also: when the first runs answer arrived relative to the click, and the panel's
    own load (its experiments request starts → its first row is in the DOM), which is what a
    user who opens it at exactly the wrong moment waits.
(c) Publish of two identical runs, one with ``mlflow-modelkit publish`` (a subprocess: wall time
    includes Python start-up and imports, shown apart: ``mlflow-modelkit --version`` and a
    ``python -c 'import mlflow, …'`` of what publish imports)
    and one through ``POST /mlflow-modelkit/publish`` + polling ``GET jobs/<id>`` every 100 ms;
    order alternates per pair.

Targets (issue 11, req. 4): first rows ≤ 1 s after opening; runs route ≤ 150 ms per page;
publish through the panel ≤ CLI + 1 s. Not a test: numbers vary by machine. Writes
``bench/out/jupyter-panel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXPERIMENT = "bench-panel"
PUBLISH_EXPERIMENT = "bench-publish"
PANEL_TAB = 'li[data-id="mlflow-modelkit-panel"]'
ROW = '[data-testid="mk-run-row"]'
# from document start: when the first run row enters the DOM (visible or not)
INIT_SCRIPT = """
window.__mkRowInDom = null;
new MutationObserver((_m, obs) => {
  if (document.querySelector('[data-testid="mk-run-row"]')) {
    window.__mkRowInDom = performance.now();
    obs.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""
# the panel's own load: its experiments request starts → its first run row is in the DOM
PIPELINE_JS = """() => {
  const e = performance.getEntriesByType('resource')
    .find(r => r.name.includes('/mlflow-modelkit/experiments'));
  return e && window.__mkRowInDom ? window.__mkRowInDom - e.startTime : null;
}"""


# ---------------------------------------------------------------------------------------------- setup


def stats(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    p90 = s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]
    return {"median": statistics.median(s), "p90": p90, "max": s[-1], "n": len(s)}


def populate(tmp: Path, n_runs: int, pairs: int) -> dict[str, Any]:
    """The tracking store, keys and config; returns what the measurements need."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from mlflow_plugin import generate_keypair

    keys = tmp / "keys"
    keys.mkdir()
    generate_keypair(str(keys), password="")
    private, public = keys / "cosign.key", keys / "cosign.pub"
    config = tmp / "modelkit.toml"
    config.write_text(
        f"[signing]\nkey = {json.dumps(str(private))}\ntrusted_keys = [{json.dumps(str(public))}]\n"
    )
    os.environ["MLFLOW_MODELKIT_CONFIG"] = str(config)
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    (tmp / "kits").mkdir()
    exp = client.create_experiment(EXPERIMENT, artifact_location=f"modelkit://{tmp}/kits/{EXPERIMENT}")
    t = time.perf_counter()
    now = int(time.time() * 1000)
    small = tmp / "small-artifact"
    small.mkdir()
    (small / "notes.txt").write_text("a small artifact\n")
    with_artifact = set(range(0, n_runs, max(1, n_runs // 3)))  # 3 runs
    for i in range(n_runs):
        run = client.create_run(exp, start_time=now - (n_runs - i) * 1000, run_name=f"run-{i:04d}")
        rid = run.info.run_id
        ts = now - (n_runs - i) * 1000
        client.log_batch(
            rid,
            metrics=[
                Metric("auc", 0.5 + (i * 7919 % 5000) / 10000, ts, 0),
                Metric("loss", 1.0 / (1 + i % 97), ts, 0),
                Metric("accuracy", 0.6 + (i % 400) / 1000, ts, 0),
            ],
            params=[
                Param("lr", str(10 ** -(1 + i % 4))),
                Param("epochs", str(1 + i % 20)),
                Param("model", ("logreg", "forest", "mlp")[i % 3]),
            ],
            tags=[RunTag("bench", "jupyter_panel")],
        )
        if i in with_artifact:
            client.log_artifacts(rid, str(small), "notes")
        client.set_terminated(rid, end_time=ts + 500)
    t_runs = time.perf_counter() - t
    print(f"  {n_runs} runs logged in {t_runs:.1f} s (create_run + log_batch + set_terminated)", flush=True)

    # identical runs to publish: the same small sklearn model, fitted the same way
    import warnings

    import mlflow.sklearn
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=300, n_features=6, random_state=7)
    model = LogisticRegression(C=1.0, max_iter=500).fit(X, y)
    pexp = client.create_experiment(
        PUBLISH_EXPERIMENT, artifact_location=f"modelkit://{tmp}/kits/{PUBLISH_EXPERIMENT}"
    )
    t = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    publish_runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(2 * pairs):
            with mlflow.start_run(experiment_id=pexp, run_name=f"pub-{i}") as r:
                mlflow.log_params({"C": 1.0})
                mlflow.log_metric("auc", 0.9)
                mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
            publish_runs.append(r.info.run_id)
    print(f"  {2 * pairs} sklearn-model runs logged in {time.perf_counter() - t:.1f} s", flush=True)
    return {
        "uri": uri,
        "config": str(config),
        "key": str(private),
        "experiment_id": str(exp),
        "publish_runs": publish_runs,
        "populate_s": t_runs,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A ``jupyter lab`` subprocess in its own process group."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        import requests

        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.base = f"http://127.0.0.1:{self.port}"
        root = tmp / "lab-root"
        root.mkdir()
        for name in ("train.py", "README.md", "data.csv"):
            (root / name).write_text("x\n")
        cmd = [
            str(VENV_BIN / "jupyter"),
            "lab",
            "--no-browser",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            f"--LabApp.user_settings_dir={tmp / 'user-settings'}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.open_browser=False",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = open(tmp / "jupyter.log", "wb")  # noqa: SIM115
        full_env = {
            **os.environ,
            **env,
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            "MLFLOW_MODELKIT_NO_PROGRESS": "1",
        }
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"jupyter lab exited ({self.proc.returncode}); see {tmp / 'jupyter.log'}")
            try:
                if self.session.get(f"{self.base}/api/status", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"jupyter lab did not answer in 90 s; see {tmp / 'jupyter.log'}")
            time.sleep(0.2)
        # the _xsrf cookie for POSTs
        self.session.get(f"{self.base}/lab?token={self.token}", timeout=30)
        xsrf = self.session.cookies.get("_xsrf")
        if xsrf:
            self.session.headers["X-XSRFToken"] = xsrf

    def url(self, route: str) -> str:
        return f"{self.base}/mlflow-modelkit/{route}"

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------------- (a) the route


def bench_route(lab: Lab, info: dict[str, Any], n: int) -> dict[str, Any]:
    from mlflow import MlflowClient

    from mlflow_plugin import list_runs

    uri = info["uri"]
    exp = info["experiment_id"]
    client = MlflowClient(tracking_uri=uri)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("50 rows", {"max_results": 50}),
        ("100 rows", {"max_results": 100}),
        ("50 rows, 2 metric cols", {"max_results": 50, "metrics": ["auc", "loss"]}),
        ("50 rows, by metric", {"max_results": 50, "metrics": ["auc"], "order_by": ["metrics.auc DESC"]}),
    ]

    def route(kw: dict[str, Any], token: str | None = None) -> tuple[float, dict[str, Any]]:
        q: dict[str, Any] = {"experiment": exp, "max_results": kw["max_results"]}
        if kw.get("metrics"):
            q["metrics"] = ",".join(kw["metrics"])
        if kw.get("order_by"):
            q["order_by"] = ",".join(kw["order_by"])
        if token:
            q["page_token"] = token
        t = time.perf_counter()
        r = lab.session.get(lab.url("runs"), params=q, timeout=60)
        dt = time.perf_counter() - t
        if r.status_code != 200:
            raise SystemExit(f"GET runs {q}: {r.status_code} {r.text[:300]}")
        return dt, r.json()

    def ours(kw: dict[str, Any], token: str | None = None) -> tuple[float, Any]:
        t = time.perf_counter()
        page = list_runs(
            exp,
            metrics=kw.get("metrics", ()),
            order_by=kw.get("order_by"),
            max_results=kw["max_results"],
            page_token=token,
            tracking_uri=uri,
        )
        return time.perf_counter() - t, page

    def raw(kw: dict[str, Any], token: str | None = None) -> tuple[float, Any]:
        t = time.perf_counter()
        page = client.search_runs(
            [exp], order_by=kw.get("order_by"), max_results=kw["max_results"], page_token=token
        )
        return time.perf_counter() - t, page

    out: dict[str, Any] = {}
    for name, kw in cases:
        for fn in (route, ours, raw):  # warm-up
            fn(kw)
        times: dict[str, list[float]] = {"route": [], "list_runs": [], "search_runs": []}
        rows = 0
        for _ in range(n):  # interleaved
            dt, body = route(kw)
            times["route"].append(dt)
            rows = len(body["runs"])
            times["list_runs"].append(ours(kw)[0])
            times["search_runs"].append(raw(kw)[0])
        out[name] = {k: stats(v) for k, v in times.items()} | {"rows": rows}
        print(f"  {name:28s} route {out[name]['route']['median'] * 1000:6.1f} ms", flush=True)

    # pages 1-5 through next_page_token
    kw = {"max_results": 50}
    per_page: dict[str, list[list[float]]] = {
        k: [[] for _ in range(5)] for k in ("route", "list_runs", "search_runs")
    }
    for rep in range(n + 1):
        tokens: dict[str, str | None] = {"route": None, "list_runs": None, "search_runs": None}
        for p in range(5):
            dt_r, body = route(kw, tokens["route"])
            dt_o, page_o = ours(kw, tokens["list_runs"])
            dt_s, page_s = raw(kw, tokens["search_runs"])
            tokens = {
                "route": body["next_page_token"],
                "list_runs": page_o.next_page_token,
                "search_runs": page_s.token,
            }
            if rep:  # the first chain is the warm-up
                per_page["route"][p].append(dt_r)
                per_page["list_runs"][p].append(dt_o)
                per_page["search_runs"][p].append(dt_s)
    out["pages 1-5 (50 rows)"] = {
        k: stats([x for page in v for x in page]) | {"per_page_median": [statistics.median(pg) for pg in v]}
        for k, v in per_page.items()
    } | {"rows": 50}
    print(
        f"  {'pages 1-5 (50 rows)':28s} route {out['pages 1-5 (50 rows)']['route']['median'] * 1000:6.1f} ms"
    )
    return out


# ------------------------------------------------------------------------------- (b) panel in chromium


def bench_panel(lab: Lab, loads: int) -> dict[str, Any]:
    """Per fresh load: ``ready`` = open the panel once the file browser lists the root (what a
    user does; the hidden panel may have fetched its runs by then), ``early`` = open it as soon
    as its sidebar tab is shown (the fetch of experiments and runs happens after the click)."""
    from playwright.sync_api import sync_playwright

    res: dict[str, dict[str, list[float]]] = {
        mode: {"shell_ready": [], "file_browser": [], "open_to_rows": [], "open_wall": [], "panel_load": []}
        for mode in ("ready", "early")
    }
    offsets: dict[str, list[float | None]] = {"ready": [], "early": []}
    in_browser: dict[str, list[float]] = {"ready": [], "early": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # the first load of each mode warms the server's and the disk's caches (not counted)
            for i in range(2 * (loads + 1)):
                mode = ("ready", "early")[i % 2]
                ctx = browser.new_context(viewport={"width": 1400, "height": 900})
                page = ctx.new_page()
                page.add_init_script(INIT_SCRIPT)
                seen: list[tuple[float, Any]] = []
                page.on(
                    "requestfinished",
                    lambda req, seen=seen: (
                        seen.append((time.perf_counter(), req))
                        if "/mlflow-modelkit/runs?" in req.url
                        else None
                    ),
                )
                t0 = time.perf_counter()
                page.goto(f"{lab.base}/lab?reset&token={lab.token}", wait_until="domcontentloaded")
                if mode == "early":
                    page.wait_for_selector(PANEL_TAB, state="visible", timeout=60000)
                else:
                    page.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60000)
                    page.wait_for_function("window.jupyterapp !== undefined", timeout=60000)
                    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
                    t_shell = time.perf_counter() - t0
                    page.wait_for_selector(".jp-DirListing-item", state="visible", timeout=60000)
                    t_fb = time.perf_counter() - t0
                if page.is_visible(ROW):
                    raise SystemExit("the panel is already open after a reset load: cannot time opening it")
                # in-page clock: from just before the click to the first visible row (rAF polling)
                page.evaluate(
                    """(sel) => {
                        window.__mkT0 = performance.now();
                        window.__mkT1 = null;
                        const tick = () => {
                            const el = document.querySelector(sel);
                            if (el && el.offsetParent !== null) { window.__mkT1 = performance.now(); return; }
                            requestAnimationFrame(tick);
                        };
                        requestAnimationFrame(tick);
                    }""",
                    ROW,
                )
                t_click = time.perf_counter()
                page.click(PANEL_TAB)
                page.wait_for_function("window.__mkT1 !== null", timeout=30000, polling="raf")
                t_wall = time.perf_counter() - t_click
                in_page = page.evaluate("window.__mkT1 - window.__mkT0") / 1000
                pipeline = page.evaluate(PIPELINE_JS)
                first = seen[0] if seen else None
                # when the first runs answer arrived, relative to the click (negative: before it)
                offset = (first[0] - t_click) if first else None
                timing = first[1].timing if first else None
                ctx.close()
                if i < 2:
                    continue
                r = res[mode]
                if mode == "ready":
                    r["shell_ready"].append(t_shell)
                    r["file_browser"].append(t_fb)
                r["open_to_rows"].append(in_page)
                r["open_wall"].append(t_wall)
                if pipeline is not None:
                    r["panel_load"].append(pipeline / 1000)
                offsets[mode].append(offset)
                if timing and timing.get("responseEnd", -1) > 0:
                    in_browser[mode].append(timing["responseEnd"] - max(timing.get("requestStart", 0), 0))
                off = "n/a" if offset is None else f"{offset * 1000:+.0f} ms"
                pre = f"shell {t_shell:.2f} s, file browser {t_fb:.2f} s, " if mode == "ready" else ""
                print(
                    f"  load {i // 2} ({mode}): {pre}open → first row {in_page * 1000:.0f} ms "
                    f"(wall {t_wall * 1000:.0f} ms); first runs answer {off} from the click; "
                    f"panel's own load {pipeline or 0:.0f} ms",
                    flush=True,
                )
        finally:
            browser.close()
    all_loads = res["ready"]["panel_load"] + res["early"]["panel_load"]
    out: dict[str, Any] = {"panel_load_all": stats(all_loads) if all_loads else None}
    for mode, r in res.items():
        out[mode] = {k: stats(v) for k, v in r.items() if v}
        out[mode]["runs_answer_offset_s"] = offsets[mode]
        out[mode]["runs_request_in_browser_ms"] = in_browser[mode]
    return out


# --------------------------------------------------------------------------------------- (c) publish


def bench_publish(lab: Lab, info: dict[str, Any], pairs: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": info["uri"],
        "MLFLOW_MODELKIT_CONFIG": info["config"],
        "MLFLOW_MODELKIT_NO_PROGRESS": "1",
    }
    cli = str(VENV_BIN / "mlflow-modelkit")

    def by_cli(run_id: str, tag: str) -> float:
        t = time.perf_counter()
        r = subprocess.run(
            [cli, "publish", run_id, "--tag", tag, "--key", info["key"]],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        dt = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(f"CLI publish failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
        return dt

    def by_route(run_id: str, tag: str) -> float:
        t = time.perf_counter()
        r = lab.session.post(
            lab.url("publish"), json={"run_id": run_id, "tag": tag, "key": info["key"]}, timeout=60
        )
        if r.status_code != 202:
            raise SystemExit(f"POST publish: {r.status_code} {r.text[:500]}")
        job = r.json()["id"]
        while True:
            body = lab.session.get(lab.url(f"jobs/{job}"), timeout=60).json()
            if body["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        dt = time.perf_counter() - t
        if body["state"] != "done":
            raise SystemExit(f"publish job failed: {body.get('error')}")
        res = body.get("result") or {}
        if not (res.get("reference") and res.get("digest")):
            raise SystemExit(f"publish job done without a reference: {body}")
        published.append(f"{res['reference']}@{res['digest'][:19]}… verdict {res.get('verdict')}")
        return dt

    published: list[str] = []
    startup = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([cli, "--version"], env=env, capture_output=True, check=True)
        startup.append(time.perf_counter() - t)
    imports = []
    probe = "import mlflow, mlflow.store.tracking.sqlalchemy_store, mlflow_plugin.harden.publish"
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, check=True)
        imports.append(time.perf_counter() - t)
    runs = info["publish_runs"]
    cli_t: list[float] = []
    route_t: list[float] = []
    for i in range(pairs):
        a, b = runs[2 * i], runs[2 * i + 1]
        if i % 2 == 0:
            cli_t.append(by_cli(a, f"p{i}-cli"))
            route_t.append(by_route(b, f"p{i}-panel"))
            order = "CLI first"
        else:
            route_t.append(by_route(a, f"p{i}-panel"))
            cli_t.append(by_cli(b, f"p{i}-cli"))
            order = "panel first"
        print(
            f"  pair {i + 1} ({order}): CLI {cli_t[-1]:.2f} s, panel {route_t[-1]:.2f} s ({published[-1]})",
            flush=True,
        )
    return {
        "cli": stats(cli_t),
        "panel": stats(route_t),
        "cli_startup": stats(startup),
        "cli_imports": stats(imports),
        "cli_s": cli_t,
        "panel_s": route_t,
    }


# ------------------------------------------------------------------------------------------ report


def report(out: dict[str, Any]) -> None:
    ms = 1000
    print(f"\n== runs route, {out['runs']} runs, N={out['n']} (ms: median / p90 / max) ==")
    print(
        f"{'page':28s} {'route':>22s} {'list_runs':>10s} {'search_runs':>11s} {'route/lr':>9s} {'lr/sr':>6s}"
    )
    worst = 0.0
    for name, r in out["route"].items():
        rt, lr, sr = r["route"], r["list_runs"], r["search_runs"]
        worst = max(worst, rt["median"])
        print(
            f"{name:28s} {rt['median'] * ms:6.1f} /{rt['p90'] * ms:6.1f} /{rt['max'] * ms:6.1f}"
            f" {lr['median'] * ms:10.1f} {sr['median'] * ms:11.1f}"
            f" {rt['median'] / lr['median']:8.2f}x {lr['median'] / sr['median']:5.2f}x"
        )
    pages = out["route"]["pages 1-5 (50 rows)"]["route"]["per_page_median"]
    print(f"  route median per page 1..5: {' '.join(f'{p * ms:.0f}' for p in pages)} ms")
    print(f"worst route median: {worst * ms:.0f} ms (target ≤ 150 ms per page)")

    p, e = out["panel"]["ready"], out["panel"]["early"]
    print(f"\n== panel in chromium, {out['loads']} fresh loads per mode (s: median / max) ==")

    def line(label: str, st: dict[str, float], extra: str = "") -> None:
        print(f"{label:42s} {st['median']:6.2f} / {st['max']:5.2f}{extra}")

    line("load → JupyterLab shell restored", p["shell_ready"])
    line("load → file browser listed (baseline)", p["file_browser"])
    line("open after the file browser → 1st row", p["open_to_rows"], "  (target ≤ 1 s)")
    line("open as soon as its tab shows → 1st row", e["open_to_rows"], "  (target ≤ 1 s)")
    if out["panel"]["panel_load_all"]:
        line("panel's own load (experiments req → row)", out["panel"]["panel_load_all"], "  (both modes)")
    for mode, m in (("after file browser", p), ("as soon as tab shows", e)):
        offs = [o for o in m["runs_answer_offset_s"] if o is not None]
        if offs:
            med = statistics.median(offs) * 1000
            print(f"  {mode}: first runs answer {med:+.0f} ms from the click (negative: prefetched)")
    inb = p["runs_request_in_browser_ms"] + e["runs_request_in_browser_ms"]
    if inb:
        print(
            f"  runs request in the browser (request → response end): median {statistics.median(inb):.0f} ms"
        )
    ratio = e["open_to_rows"]["median"] / p["file_browser"]["median"]
    print(f"  early open / file-browser time: {ratio:.2f}x")

    c = out["publish"]
    diff = c["panel"]["median"] - c["cli"]["median"]
    print(f"\n== publish, {len(c['cli_s'])} pairs, alternating order (s, medians) ==")
    print(f"CLI  (subprocess, wall)           {c['cli']['median']:6.2f}")
    print(f"panel (POST publish → job done)   {c['panel']['median']:6.2f}")
    print(f"panel - CLI                       {diff:+6.2f}  (target ≤ +1.00 s)")
    up = c["cli_startup"]["median"]
    print(f"  the CLI pays start-up: `mlflow-modelkit --version` {up:.2f} s (lazy imports)")
    imp = c["cli_imports"]["median"]
    print(f"  and its imports: python -c 'import mlflow, …sqlalchemy_store, …harden.publish' {imp:.2f} s")
    print(f"  panel - (CLI - imports)         {diff + imp:+6.2f}  (the work itself, roughly)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--n", type=int, default=20, help="calls per route case")
    ap.add_argument("--loads", type=int, default=5, help="fresh page loads in chromium")
    ap.add_argument("--pairs", type=int, default=3, help="publish pairs (CLI, panel)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "jupyter-panel.json"))
    args = ap.parse_args()
    os.environ["MLFLOW_MODELKIT_NO_PROGRESS"] = "1"
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-jupyter-panel-"))
    lab = None
    try:
        print(f"setting up in {tmp} (not timed) ...", flush=True)
        info = populate(tmp, args.runs, args.pairs)
        print("starting jupyter lab ...", flush=True)
        t = time.perf_counter()
        lab = Lab(tmp, {"MLFLOW_TRACKING_URI": info["uri"], "MLFLOW_MODELKIT_CONFIG": info["config"]})
        print(f"  up in {time.perf_counter() - t:.1f} s on port {lab.port}", flush=True)
        out: dict[str, Any] = {"runs": args.runs, "n": args.n, "loads": args.loads}
        print("(a) runs route ...", flush=True)
        out["route"] = bench_route(lab, info, args.n)
        print("(b) panel in chromium ...", flush=True)
        out["panel"] = bench_panel(lab, args.loads)
        print("(c) publish: CLI vs panel ...", flush=True)
        out["publish"] = bench_publish(lab, info, args.pairs)
    finally:
        if lab is not None:
            lab.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out["populate_s"] = info["populate_s"]
    out["total_s"] = time.perf_counter() - started
    report(out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nbench took {out['total_s']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
