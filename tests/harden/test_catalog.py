"""The catalog calls a notebook UI lists runs and kits with (issue 9): ``list_runs``, ``list_kits``.

Against a real SQLite tracking store, real OCI layouts and (``registry`` marker) a real registry.
``list_runs`` must be one ``search_runs`` request per page whatever the number of runs: the
calls are counted, never timed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _registries import RegistryServer
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from mlflow_plugin import (
    KeyPair,
    ModelKitError,
    RunsPage,
    generate_keypair,
    list_kits,
    list_runs,
    publish_run,
    verify,
)
from mlflow_plugin.harden.catalog import KIT_COLUMNS


@dataclass
class Store:
    home: Path
    uri: str
    client: MlflowClient
    keys: KeyPair


@dataclass
class Fraud:
    """Experiment ``fraud``: one published run, one draft-only run, one run without artifacts."""

    experiment_id: str
    kits: str  # oci:DIR of the experiment's artifact store
    published: str
    draft_only: str
    empty: str
    reference: str
    digest: str


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    home = tmp_path_factory.mktemp("catalog")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("MLFLOW_MODELKIT_CONFIG", "MLFLOW_MODELKIT_SCAN_FAIL_ON", "MLFLOW_TRACKING_URI"):
            mp.delenv(var, raising=False)
        uri = f"sqlite:///{home}/mlflow.db"
        yield Store(
            home, uri, MlflowClient(tracking_uri=uri), generate_keypair(str(home / "keys"), password="")
        )


def _artifact(store: Store, run_id: str, name: str, text: str) -> None:
    path = store.home / f"{uuid.uuid4().hex[:8]}-{name}"
    path.write_text(text)
    store.client.log_artifact(run_id, str(path))


@pytest.fixture(scope="module")
def fraud(store: Store) -> Fraud:
    c = store.client
    exp = c.create_experiment("fraud", artifact_location=f"modelkit://{store.home}/kits/fraud")
    ids = []
    for i, (name, auc) in enumerate((("published", 0.93), ("draft-only", 0.71), ("empty", 0.55))):
        run = c.create_run(exp, run_name=name, start_time=1_700_000_000_000 + i * 1000)
        c.log_batch(
            run.info.run_id,
            metrics=[Metric("auc", auc, 0, 0)],
            params=[Param("C", str(i)), Param("penalty", "l2")],
        )
        ids.append(run.info.run_id)
    _artifact(store, ids[0], "model.txt", "weights")
    _artifact(store, ids[1], "notes.txt", "a draft")
    c.set_terminated(ids[0], end_time=1_700_000_100_000)
    result = publish_run(ids[0], "v1", key=store.keys.private, tracking_uri=store.uri)
    return Fraud(exp, f"oci:{store.home}/kits/fraud", *ids, result.reference, result.digest)


class Calls:
    """Counts the tracking requests ``list_runs`` makes (wrapping the real methods)."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        self.search: list[dict[str, Any]] = []
        self.get_run = 0
        search, get_run = MlflowClient.search_runs, SqlAlchemyStore.get_run

        def counting_search(client: MlflowClient, *args: Any, **kw: Any) -> Any:
            self.search.append(kw)
            return search(client, *args, **kw)

        def counting_get_run(s: SqlAlchemyStore, *args: Any, **kw: Any) -> Any:
            self.get_run += 1
            return get_run(s, *args, **kw)

        mp.setattr(MlflowClient, "search_runs", counting_search)
        mp.setattr(SqlAlchemyStore, "get_run", counting_get_run)


def test_published_run_shows_reference_digest_signed_scan(store: Store, fraud: Fraud) -> None:
    page = list_runs("fraud", metrics=["auc"], params=["C"], tracking_uri=store.uri)
    assert isinstance(page, RunsPage) and page.next_page_token is None
    df = page.frame.set_index("run_id")
    assert list(page.frame.columns) == [
        "run_id",
        "run_name",
        "status",
        "start_time",
        "end_time",
        "metrics.auc",
        "params.C",
        "draft",
        "draft_ref",
        "published",
        "digest",
        "signed",
        "scan",
    ]
    pub = df.loc[fraud.published]
    assert pub["published"] == fraud.reference and pub["digest"] == fraud.digest
    assert bool(pub["signed"])
    assert pub["scan"] == "clean" and pub["status"] == "FINISHED"
    assert pub["end_time"] == pd.Timestamp(1_700_000_100_000, unit="ms", tz="UTC")
    assert pub["metrics.auc"] == 0.93 and pub["params.C"] == "0"
    # the published reference is what verify takes
    assert verify(pub["published"], keys=[store.keys.public]).ok
    for rid in (fraud.draft_only, fraud.empty):
        row = df.loc[rid]
        assert row["published"] is None and row["digest"] is None and row["scan"] is None
        assert not row["signed"]
    # the draft reference, derived from the artifact URI (no request), names the run's draft kit
    for rid in (fraud.published, fraud.draft_only, fraud.empty):
        assert df.loc[rid, "draft"] == f"modelkit://{store.home}/kits/fraud:run-{rid}"
        assert df.loc[rid, "draft_ref"] == f"{fraud.kits}:run-{rid}"
    # dtypes hold whatever a page contains
    assert str(page.frame["start_time"].dtype) == "datetime64[ms, UTC]"
    assert page.frame["signed"].dtype == bool and page.frame["metrics.auc"].dtype == "float64"


def test_experiment_by_name_or_id_and_errors(store: Store, fraud: Fraud) -> None:
    by_id = list_runs(fraud.experiment_id, tracking_uri=store.uri).frame
    assert set(by_id["run_id"]) == {fraud.published, fraud.draft_only, fraud.empty}
    with pytest.raises(ModelKitError, match="no experiment named 'nope'"):
        list_runs("nope", tracking_uri=store.uri)
    with pytest.raises(ModelKitError, match="cannot list the runs of experiment 'fraud': ") as e:
        list_runs("fraud", filter_string="metrics.auc >>> 1", tracking_uri=store.uri)
    assert "\n" not in str(e.value)


def test_filter_and_order_are_done_by_the_server(
    store: Store, fraud: Fraud, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    page = list_runs(
        "fraud",
        metrics=["auc"],
        filter_string="metrics.auc > 0.6",
        order_by=["metrics.auc ASC"],
        tracking_uri=store.uri,
    )
    assert page.frame["run_id"].tolist() == [fraud.draft_only, fraud.published]
    assert len(calls.search) == 1 and calls.get_run == 0
    assert calls.search[0]["filter_string"] == "metrics.auc > 0.6"
    assert calls.search[0]["order_by"] == ["metrics.auc ASC"]
    assert calls.search[0]["experiment_ids"] == [fraud.experiment_id]
    # the publish tags are filterable server-side
    signed = list_runs("fraud", filter_string="tags.modelkit.signed = 'true'", tracking_uri=store.uri)
    assert signed.frame["run_id"].tolist() == [fraud.published]
    assert calls.search[1]["filter_string"] == "tags.modelkit.signed = 'true'"
    # default order: newest first (MLflow's)
    assert list_runs("fraud", tracking_uri=store.uri).frame["run_name"].tolist() == [
        "empty",
        "draft-only",
        "published",
    ]


def test_paging_returns_disjoint_pages(store: Store, fraud: Fraud, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = store.client.create_experiment("paged", artifact_location=f"modelkit://{store.home}/kits/paged")
    made = {store.client.create_run(exp, start_time=1_700_000_000_000 + i).info.run_id for i in range(7)}
    calls = Calls(monkeypatch)
    pages: list[list[str]] = []
    token = None
    while True:
        page = list_runs("paged", max_results=3, page_token=token, tracking_uri=store.uri)
        pages.append(page.frame["run_id"].tolist())
        token = page.next_page_token
        if token is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    seen = [r for p in pages for r in p]
    assert len(seen) == len(set(seen)) == 7 and set(seen) == made
    assert len(calls.search) == 3 and calls.get_run == 0
    tokens = [c["page_token"] for c in calls.search]
    assert tokens[0] is None and all(tokens[1:])


def test_two_thousand_runs_page_one_is_one_request(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    c = store.client
    exp = c.create_experiment("many", artifact_location=f"modelkit://{store.home}/kits/many")
    for i in range(2000):
        run = c.create_run(exp, run_name=f"r{i:04d}", start_time=1_700_000_000_000 + i)
        c.log_batch(
            run.info.run_id,
            metrics=[Metric("auc", i / 2000, 0, 0)],
            params=[Param("i", str(i))],
            tags=[RunTag("modelkit.scan", "clean")] if i % 2 else [],
        )
    calls = Calls(monkeypatch)
    page = list_runs(
        "many", metrics=["auc"], params=["i"], order_by=["metrics.auc DESC"], tracking_uri=store.uri
    )
    assert len(calls.search) == 1 and calls.get_run == 0
    assert len(page.frame) == 100 and page.next_page_token is not None
    assert page.frame["params.i"].tolist()[:3] == ["1999", "1998", "1997"]
    assert page.frame["scan"].tolist()[:2] == ["clean", None]
    big = list_runs("many", max_results=2000, tracking_uri=store.uri)
    assert len(big.frame) == 2000 and big.next_page_token is None
    assert len(calls.search) == 2 and calls.get_run == 0


def test_list_kits_layout(store: Store, fraud: Fraud) -> None:
    kits = list_kits(fraud.kits)
    assert list(kits.columns) == list(KIT_COLUMNS)
    by_tag = kits.set_index("tag")
    # the two runs with artifacts have drafts; the published kit is v1; no signature tags listed
    assert set(by_tag.index) == {f"run-{fraud.published}", f"run-{fraud.draft_only}", "v1"}
    v1 = by_tag.loc["v1"]
    assert v1["digest"] == fraud.digest and v1["type"] == "modelkit"
    assert not v1["draft"] and v1["signed"] and v1["run_id"] == fraud.published
    assert v1["size"] > 0 and v1["created"] == pd.Timestamp(1_700_000_100_000, unit="ms", tz="UTC")
    for rid in (fraud.published, fraud.draft_only):
        row = by_tag.loc[f"run-{rid}"]
        assert row["draft"] and not row["signed"] and row["run_id"] == rid
    assert kits["draft"].dtype == bool and kits["size"].dtype == "int64"


def test_list_kits_unsigned_and_empty(store: Store, tmp_path: Path) -> None:
    from mlflow_plugin import pack
    from mlflow_plugin.storage.layout import LayoutRepository

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "model.bin").write_bytes(b"weights")
    (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\nmodel: {path: model.bin}\n")
    pack(str(ctx), f"oci:{tmp_path}/kits:v1")
    kits = list_kits(f"oci:{tmp_path}/kits")
    assert kits[["tag", "draft", "signed", "run_id"]].values.tolist() == [["v1", False, False, None]]
    LayoutRepository(str(tmp_path / "empty"), create=True)
    empty = list_kits(f"oci:{tmp_path}/empty")
    assert len(empty) == 0 and list(empty.columns) == list(KIT_COLUMNS)


@pytest.mark.registry
def test_catalog_on_a_registry(store: Store, registry: RegistryServer) -> None:
    repo = f"catalog/{uuid.uuid4().hex[:8]}"
    c = store.client
    exp = c.create_experiment(f"reg-{repo[-8:]}", artifact_location=f"modelkit://{registry.host}/{repo}")
    run = c.create_run(exp, run_name="on-registry")
    _artifact(store, run.info.run_id, "model.txt", "weights")
    result = publish_run(run.info.run_id, "v1", key=store.keys.private, tracking_uri=store.uri)
    row = list_runs(f"reg-{repo[-8:]}", tracking_uri=store.uri).frame.iloc[0]
    assert row["published"] == f"{registry.host}/{repo}:v1" == result.reference
    assert row["draft"] == f"modelkit://{registry.host}/{repo}:run-{run.info.run_id}"
    assert row["draft_ref"] == f"{registry.host}/{repo}:run-{run.info.run_id}"
    kits = list_kits(f"{registry.host}/{repo}").set_index("tag")
    # the legacy cosign signature tag (sha256-….sig) is not a kit
    assert set(kits.index) == {f"run-{run.info.run_id}", "v1"}
    assert kits.loc["v1", "signed"] and kits.loc["v1", "digest"] == result.digest
    assert not kits.loc[f"run-{run.info.run_id}", "signed"]
