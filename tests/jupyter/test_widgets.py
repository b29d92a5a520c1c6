"""The notebook widgets, headless (no kernel): a real SQLite tracking store, runs logged into a local
OCI layout through ``modelkit://``, real keys, real publish and verify. Nothing is mocked.

ipywidgets work without a kernel (the comm is a ``DummyComm``), ``Button.click()`` fires the
handlers, and the widgets write to their ``Output`` explicitly, so the tests read traits and
``Output.outputs``.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

from mlflow_plugin import generate_keypair, list_kits, list_runs
from mlflow_plugin.harden.publish import STAGES

try:
    from jupyter_ext.widgets import PublishWidget, VerifyWidget
except ImportError:  # a checkout whose editable install predates jupyter_ext
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from jupyter_ext.widgets import PublishWidget, VerifyWidget

from _envhelpers import ADMIN_ENV_VARS

PASSPHRASE = "widget-s3cret-passphrase"
EVIL_PICKLE = b"cos\nsystem\n(S'true'\ntR."  # os.system('true'): only ever scanned, never unpickled
NOTEBOOK_MODEL = textwrap.dedent(
    """
    import mlflow.pyfunc

    class NotebookModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input.sum(axis=1)
    """
)


class Store:
    """One tracking store for the module: runs logged once, published by the tests."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.uri = f"sqlite:///{home}/mlflow.db"
        self.experiment = "widgets"
        self.kits = home / "kits" / self.experiment
        self.runs: dict[str, str] = {}
        self.keys = generate_keypair(str(home / "keys"), password=PASSPHRASE)

    def widget(self, **kw: Any) -> PublishWidget:
        return PublishWidget(self.experiment, tracking_uri=self.uri, key=self.keys.private, **kw)


def _log_runs(store: Store) -> None:
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(store.uri)
    exp = mlflow.create_experiment(store.experiment, artifact_location=f"modelkit://{store.kits}")
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    with mlflow.start_run(experiment_id=exp, run_name="good") as run:
        mlflow.log_params({"C": 1.0})
        mlflow.log_metrics({"auc": 0.91, "accuracy": 0.88})
        model = LogisticRegression(C=1.0).fit(X, y)
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        store.runs["good"] = run.info.run_id
    with mlflow.start_run(experiment_id=exp, run_name="evil") as run:
        mlflow.log_metric("auc", 0.5)
        (store.home / "evil.pkl").write_bytes(EVIL_PICKLE)
        mlflow.log_artifact(str(store.home / "evil.pkl"))
        store.runs["evil"] = run.info.run_id
    with mlflow.start_run(experiment_id=exp, run_name="notebook") as run:
        ns: dict[str, Any] = {"__name__": "__main__"}  # a class defined in a notebook: pickled by value
        exec(NOTEBOOK_MODEL, ns)
        mlflow.pyfunc.log_model(name="model", python_model=ns["NotebookModel"](), pip_requirements=["mlflow"])
        store.runs["notebook"] = run.info.run_id
    with mlflow.start_run(experiment_id=exp, run_name="to-tamper") as run:
        (store.home / "weights.txt").write_text("weights only this run has: 0.1 0.2 0.3\n")
        mlflow.log_artifact(str(store.home / "weights.txt"))
        store.runs["tamper"] = run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    mp = pytest.MonkeyPatch()
    for var in (*ADMIN_ENV_VARS, "MLFLOW_MODELKIT_KEY_PASSWORD", "MLFLOW_TRACKING_URI"):
        mp.delenv(var, raising=False)
    mp.setenv("MLFLOW_MODELKIT_NO_PROGRESS", "1")
    before = mlflow.get_tracking_uri()
    try:
        s = Store(tmp_path_factory.mktemp("widgets"))
        _log_runs(s)
        yield s
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(before)
        mp.undo()


@pytest.fixture(scope="module")
def published(store: Store) -> PublishWidget:
    """The good run, published through the widget's button (once for the module)."""
    w = store.widget(metrics=["auc"])
    w.run_select.value = store.runs["good"]
    w.passphrase.value = PASSPHRASE
    seen: list[tuple[str, int, int, bool]] = []

    def watch(change: dict[str, Any]) -> None:
        bar = change["owner"]
        seen.append((bar.description, bar.value, bar.max, w.publish_button.disabled))
        if len(seen) == 1:  # a second click while the first publish runs does nothing
            first = w._thread
            w.publish_button.click()
            assert w._thread is first

    for bar in w.bars.values():
        bar.observe(watch, names="value")
    w.publish_button.click()
    w.wait(120)
    w.seen = seen  # type: ignore[attr-defined]
    return w


def _all_state(widget: Any) -> Iterator[dict[str, Any]]:
    """``get_state()`` of ``widget`` and of every widget below it."""
    import ipywidgets

    state = widget.get_state()
    yield state
    for name in widget.keys:
        value = getattr(widget, name, None)
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, ipywidgets.Widget) and item is not widget:
                yield from _all_state(item)


def _text(outputs: Any) -> str:
    return json.dumps(list(outputs), default=str)


# ---- runs table -----------------------------------------------------------------------------------


def test_runs_table_rows_match_list_runs(store: Store) -> None:
    w = store.widget(metrics=["auc"])
    frame = list_runs(store.experiment, metrics=["auc"], tracking_uri=store.uri).frame
    assert list(w.frame["run_id"]) == list(frame["run_id"]) and len(frame) == 4
    assert [value for _label, value in w.run_select.options] == list(frame["run_id"])
    for row in frame.to_dict("records"):
        assert f'data-run-id="{row["run_id"]}"' in w.runs_table.value
        label = dict((v, k) for k, v in w.run_select.options)[row["run_id"]]
        assert label.startswith(row["run_name"]) and row["status"] in label
    assert "auc=0.91" in dict((v, k) for k, v in w.run_select.options)[store.runs["good"]]
    assert w.runs_table.value.count("<tr data-run-id") == 4


def test_paging_follows_the_page_token(store: Store) -> None:
    w = store.widget(page_size=3)
    first = list(w.frame["run_id"])
    assert len(first) == 3 and not w.next_button.disabled and w.prev_button.disabled
    w.next_button.click()
    second = list(w.frame["run_id"])
    assert len(second) == 1 and not set(first) & set(second)
    assert w.next_button.disabled and not w.prev_button.disabled
    w.prev_button.click()
    assert list(w.frame["run_id"]) == first


def test_unknown_experiment_is_one_line_in_the_table(store: Store) -> None:
    w = PublishWidget("no-such-experiment", tracking_uri=store.uri)
    assert "no experiment named" in w.runs_table.value and "Traceback" not in w.runs_table.value


# ---- publish --------------------------------------------------------------------------------------


def test_publish_button_goes_through_every_stage(store: Store, published: PublishWidget) -> None:
    w = published
    assert w.error is None, w.error
    stages = [s for s, *_ in w.seen]  # type: ignore[attr-defined]
    assert sorted(set(stages), key=stages.index) == list(STAGES)
    assert all(disabled for *_, disabled in w.seen), "the button must be disabled while publishing"
    assert not w.publish_button.disabled
    assert all(b.bar_style == "success" and b.value == b.max for b in w.bars.values())
    assert [b.description for b in w.bars.values()] == list(STAGES)
    kits = list_kits(f"oci:{store.kits}")
    digest = kits.loc[kits["tag"] == "v1", "digest"].item()
    text = _text(w.output.outputs)
    assert f"oci:{store.kits}:v1@{digest}" in text
    assert w.result.digest == digest and f"modelkit://{store.kits}@{digest}" in text
    assert "scan:       clean" in text
    assert w.passphrase.value == ""
    row = w.frame.set_index("run_id").loc[store.runs["good"]]
    assert row["signed"] and row["published"] == f"oci:{store.kits}:v1"
    assert "signed ✓" in w.runs_table.value  # the table was refreshed after publishing


def test_malicious_pickle_is_blocked_with_findings(store: Store) -> None:
    w = store.widget()
    w.tag.value = "evil"
    assert w.publish(store.runs["evil"], password=PASSPHRASE) is None
    assert w.error.startswith("publishing blocked by the scan") and "\n" not in w.error
    assert w.bars["scan"].bar_style == "danger"
    assert all(w.bars[s].value == 0 for s in ("attest", "sign", "tag", "record"))
    html = [o["data"]["text/html"] for o in w.output.outputs if o["output_type"] == "display_data"]
    assert len(html) == 1
    assert "pickle.unsafe-global" in html[0] and "critical" in html[0] and "evil.pkl" in html[0]
    assert "on load:" in html[0]  # the explanation line
    assert "threshold" in html[0] and "<b>high</b>" in html[0]
    assert "Traceback" not in _text(w.output.outputs)
    assert "evil" not in set(list_kits(f"oci:{store.kits}")["tag"])  # nothing was tagged


def test_wrong_passphrase_is_one_line_and_never_kept(store: Store) -> None:
    w = store.widget()
    wrong = "this-is-the-wrong-passphrase-4711"
    w.passphrase.value = wrong
    w.run_select.value = store.runs["good"]
    w.tag.value = "v9"
    w.publish_button.click()
    assert w.passphrase.value == ""  # cleared when the job starts, before it ends
    w.wait(60)
    assert w.result is None
    assert w.error.startswith("wrong passphrase for ") and "\n" not in w.error
    assert w.bars[STAGES[0]].bar_style == "danger"
    outputs = _text(w.output.outputs)
    assert "Traceback" not in outputs and outputs.count("error:") == 1
    states = [json.dumps(state, default=str) for state in _all_state(w)]
    assert len(states) > 20  # every widget below the VBox was looked at
    for secret in (wrong, PASSPHRASE):
        assert secret not in outputs and secret not in w.error
        assert not any(secret in state for state in states)
        assert secret not in json.dumps(vars(w), default=str)


def test_notebook_class_publishes_with_an_embedded_code_finding(store: Store) -> None:
    w = store.widget()
    w.tag.value = "notebook"
    r = w.publish(store.runs["notebook"], password=PASSPHRASE)
    assert r is not None, w.error
    assert r.verdict.startswith("medium"), r.verdict
    assert all(b.bar_style == "success" for b in w.bars.values())
    html = [o["data"]["text/html"] for o in w.output.outputs if o["output_type"] == "display_data"]
    assert len(html) == 1 and "pickle.embedded-code" in html[0] and "medium" in html[0]
    assert f"{r.reference}@{r.digest}" in _text(w.output.outputs)


# ---- verify ---------------------------------------------------------------------------------------


def test_verify_published_kit_all_pass(store: Store, published: PublishWidget) -> None:
    v = VerifyWidget(published.result.reference, keys=[store.keys.public])
    result = v.verify()
    assert result is not None and result.ok, v.error
    text = "".join(o.get("text", "") for o in v.output.outputs)
    rows = [line for line in text.splitlines() if line.startswith("  PASS") or line.startswith("  FAIL")]
    assert len(rows) == len(result.checks) >= 5 and all(r.startswith("  PASS") for r in rows)
    assert text.rstrip().endswith("verified") and "NOT verified" not in text
    assert v.bar.bar_style == "success" and "FAIL" not in v.checks.value
    assert not v.verify_button.disabled


def test_verify_unsigned_draft_fails(store: Store) -> None:
    draft = list_runs(store.experiment, tracking_uri=store.uri).frame.set_index("run_id")
    v = VerifyWidget(draft.loc[store.runs["evil"], "draft_ref"], keys=[store.keys.public])
    v.verify_button.click()
    v.wait(60)
    assert v.result is not None and not v.result.ok
    text = "".join(o.get("text", "") for o in v.output.outputs)
    assert "  FAIL  signature" in text and text.rstrip().endswith("NOT verified")
    assert v.bar.bar_style == "danger" and v.error.startswith(draft.loc[store.runs["evil"], "draft_ref"])


def test_verify_tampered_kit_fails(store: Store) -> None:
    w = store.widget()
    w.tag.value = "tampered"
    r = w.publish(store.runs["tamper"], password=PASSPHRASE)
    assert r is not None, w.error
    layers = json.loads((store.kits / "blobs" / "sha256" / r.digest.split(":")[1]).read_bytes())["layers"]
    blob = store.kits / "blobs" / "sha256" / layers[0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[600] ^= 0x01  # one bit of the file's content (after its tar header)
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    v = VerifyWidget(r.reference, keys=[store.keys.public])
    result = v.verify()
    assert result is not None and not result.ok
    assert "blob digests" in [c.name for c in result.failures()]
    text = "".join(o.get("text", "") for o in v.output.outputs)
    assert "  FAIL  blob digests" in text and "NOT verified" in text


def test_verify_error_is_one_line(tmp_path: Path, store: Store) -> None:
    v = VerifyWidget(f"oci:{tmp_path}/nothing:v1", keys=[store.keys.public])
    assert v.verify() is None
    assert v.error and "\n" not in v.error
    outputs = _text(v.output.outputs)
    assert "Traceback" not in outputs and outputs.count("error:") == 1
    assert v.bar.bar_style == "danger" and not v.verify_button.disabled


def test_verify_runs_in_a_thread(store: Store, published: PublishWidget) -> None:
    v = VerifyWidget(published.result.reference, keys=[store.keys.public])
    gate = threading.Event()
    states: list[bool] = []

    def slow(change: dict[str, Any]) -> None:  # called in the worker thread
        states.append(v.verify_button.disabled)
        gate.wait(10)

    v.bar.observe(slow, names="max")
    assert v.verify(wait=False) is None
    assert v.running and v.verify_button.disabled  # the caller got control back while it runs
    v.verify_button.click()  # ignored while running
    gate.set()
    v.wait(60)
    assert v.result.ok and states and all(states) and not v.verify_button.disabled


def test_module_doctests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The docstring examples of ``jupyter_ext.widgets`` run (isolated, as tests/test_doctests.py does)."""
    import doctest
    import io

    import jupyter_ext.widgets as module

    for var in (*ADMIN_ENV_VARS, "MLFLOW_TRACKING_URI", "MLFLOW_MODELKIT_KEY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    tests = doctest.DocTestFinder().find(module, module.__name__)
    for test in tests:
        runner.run(test, out=out.write)
    assert runner.tries >= 10 and runner.failures == 0, out.getvalue()
