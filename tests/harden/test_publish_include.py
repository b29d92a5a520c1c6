"""Publish shares only what the admin allows (issue 12, requirement 2), end to end.

* ``publish --exclude datasets`` to a real registry: the manifest has no dataset layer and the Kitfile
  no dataset entry, **the dataset's bytes are not reachable from the published manifest** (every blob
  the manifest, its referrers and its legacy signature reference is read back from the registry over
  HTTP, gzip/zstd layers and base64 payloads of attestations decoded, and no 64-byte window of the
  dataset file appears in any of them), the provenance carries the dataset file's SHA-256 with the note
  "excluded from the kit by policy", and ``verify`` passes; the same walk over a kit published
  without exclusions *does* find the bytes (the check can fail);
* the admin's ``[publish] include = ["model"]``: only the model layer; code, docs and dataset files are
  referenced by digest only;
* ``--exclude model`` and unknown kinds: one line; an invalid ``include`` in the TOML: one line naming
  the setting;
* publishing the same run with different exclusions gives different digests, and both verify.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from _envhelpers import clean_env, end_runs, use_tracking
from _registries import RegistryServer
from click.testing import CliRunner, Result

from mlflow_plugin.cli import main
from mlflow_plugin.config import load_config
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.publish import publish_run
from mlflow_plugin.harden.verify import TrustPolicy, verify_kit

pytestmark = pytest.mark.registry

PASSPHRASE = "publish-include passphrase 4e1d"
DOCS = b"# fraud model\n\nTrained on the confidential claims extract; see the data sheet.\n"
CODE = b"import pandas as pd\n\n\ndef features(df):\n    return df[['amount', 'age', 'score']]\n"
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("include")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))
        r = cli("keygen", "-o", str(root / "keys"))
        assert r.exit_code == 0, r.output
        yield root


@pytest.fixture(autouse=True)
def _env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch, PASSPHRASE)
    use_tracking(f"sqlite:///{home}/mlflow.db")
    yield
    end_runs()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def keyfiles(home: Path) -> tuple[str, str]:
    return str(home / "keys" / "cosign.key"), str(home / "keys" / "cosign.pub")


@dataclass
class Logged:
    run_id: str
    store: str  # HOST/REPO
    dataset: bytes  # the dataset file's bytes (logged as data/train.csv and as the run's input)


def log_run(host: str, tmp: Path) -> Logged:
    """A run with a dataset file (artifact ``data/train.csv`` and ``log_input``), docs, code, a model."""
    from sklearn.linear_model import LogisticRegression

    repo = f"include/r-{uuid.uuid4().hex[:8]}"
    exp = mlflow.create_experiment(
        f"incl-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{host}/{repo}"
    )
    rng = np.random.default_rng(int.from_bytes(uuid.uuid4().bytes[:4], "big"))
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["amount", "age", "score"])
    y = (X["amount"] + X["score"] > 0).astype(int)
    work = tmp / f"src-{uuid.uuid4().hex[:6]}"
    (work / "data").mkdir(parents=True)
    csv = work / "data" / "train.csv"
    X.assign(label=y).to_csv(csv, index=False)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("C", "1.0")
        mlflow.log_input(
            mlflow.data.from_pandas(X.assign(label=y), source=str(csv), name="train"), context="training"
        )
        mlflow.log_artifact(str(csv), "data")
        mlflow.log_text(DOCS.decode(), "notes/README.md")
        mlflow.log_text(CODE.decode(), "src/features.py")
        mlflow.sklearn.log_model(
            LogisticRegression(max_iter=200).fit(X, y), name="model", pip_requirements=["scikit-learn"]
        )
    return Logged(run.info.run_id, f"{host}/{repo}", csv.read_bytes())


# ---- reading a published kit back from the registry, independently of the plugin --------------------
def _get(reg: RegistryServer, repo: str, what: str, ref: str) -> requests.Response:
    headers = {"Accept": ACCEPT} if what == "manifests" else {}
    return requests.get(f"{reg.url}/v2/{repo}/{what}/{ref}", headers=headers, timeout=30)


def _referrers(reg: RegistryServer, repo: str, digest: str) -> list[str]:
    """Manifests that refer to ``digest``: referrers API, tag-schema index, legacy ``.sig`` tag."""
    out: list[str] = []
    r = requests.get(f"{reg.url}/v2/{repo}/referrers/{digest}", headers={"Accept": ACCEPT}, timeout=30)
    if r.status_code == 200:
        out += [m["digest"] for m in r.json().get("manifests") or []]
    tag = digest.replace(":", "-")
    for t in (tag, f"{tag}.sig"):
        r = _get(reg, repo, "manifests", t)
        if r.status_code == 200:
            doc = r.json()
            if "manifests" in doc:  # a tag-schema referrers index
                out += [m["digest"] for m in doc["manifests"]]
            else:
                out.append("sha256:" + hashlib.sha256(r.content).hexdigest())
        else:
            assert r.status_code == 404, (t, r.status_code)
    return out


def reachable(reg: RegistryServer, repo: str, digest: str) -> dict[str, bytes]:
    """Every manifest and blob reachable from manifest ``digest`` (layers, config, referrers, their
    blobs, recursively), as read from the registry: ``{digest: bytes}``."""
    seen: dict[str, bytes] = {}
    todo = [digest]
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        r = _get(reg, repo, "manifests", d)
        assert r.status_code == 200, (d, r.status_code)
        assert hashlib.sha256(r.content).hexdigest() == d.split(":", 1)[1]
        seen[d] = r.content
        doc = r.json()
        for desc in [doc.get("config") or {}, *(doc.get("layers") or [])]:
            b = desc.get("digest")
            if b and b not in seen:
                blob = _get(reg, repo, "blobs", b)
                assert blob.status_code == 200, (b, blob.status_code)
                seen[b] = blob.content
        todo += [m["digest"] for m in doc.get("manifests") or []]
        todo += _referrers(reg, repo, d)
    return seen


def _decoded(data: bytes, depth: int = 0) -> Iterator[bytes]:
    """``data`` and everything inside it: gzip/zstd decompressed, base64 strings of JSON decoded."""
    yield data
    if depth > 4:
        return
    if data[:2] == b"\x1f\x8b":
        yield from _decoded(gzip.decompress(data), depth + 1)
    elif data[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as f:
            yield from _decoded(f.read(), depth + 1)
    elif data[:1] in (b"{", b"["):
        try:
            doc = json.loads(data)
        except ValueError:
            return
        for s in _strings(doc):
            if len(s) >= 64:
                try:
                    raw = base64.b64decode(s, validate=True)
                except (binascii.Error, ValueError):
                    continue
                yield from _decoded(raw, depth + 1)


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)


def leaked_windows(secret: bytes, blobs: dict[str, bytes]) -> list[tuple[str, int]]:
    """``(blob, offset)`` of pieces of ``secret`` found in ``blobs`` (decoded as :func:`_decoded`).

    Every 64-byte window of ``secret`` contains one of its 32-byte blocks at an offset that is a
    multiple of 32; so if no such block appears anywhere, no 64-byte window does either."""
    blocks = [(i, secret[i : i + 32]) for i in range(0, len(secret) - 31, 32)]
    found = []
    for digest, data in blobs.items():
        for hay in _decoded(data):
            found += [(digest, i) for i, b in blocks if b in hay]
    return found


def statements(blobs: dict[str, bytes]) -> list[dict[str, Any]]:
    """The in-toto statements inside the reachable attestations (DSSE payloads)."""
    out = []
    for data in blobs.values():
        for hay in _decoded(data):
            if hay[:1] == b"{" and b'"_type"' in hay and b"in-toto.io/Statement" in hay:
                out.append(json.loads(hay))
    return out


def provenance_of(blobs: dict[str, bytes]) -> dict[str, Any]:
    (st,) = [s for s in statements(blobs) if s.get("predicateType") == "https://slsa.dev/provenance/v1"]
    return st


def layer_kinds(blobs: dict[str, bytes], digest: str) -> list[str]:
    """The kit kinds (``model``, ``code``, ``dataset``, ``docs`` …) of the manifest's layers."""
    return [layer["mediaType"].split(".")[-3] for layer in json.loads(blobs[digest])["layers"]]


def kitfile(blobs: dict[str, bytes], digest: str) -> dict[str, Any]:
    return json.loads(blobs[json.loads(blobs[digest])["config"]["digest"]])


def excluded_refs(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    return {d["annotations"]["path"]: d for d in deps if str(d.get("name", "")).startswith("excluded:")}


# ---- tests ------------------------------------------------------------------------------------------------
def test_exclude_datasets_keeps_the_bytes_out_and_references_them(
    home: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    key, pub = keyfiles(home)
    logged = log_run(registry.host, tmp_path)
    sha = hashlib.sha256(logged.dataset).hexdigest()
    repo = logged.store.split("/", 1)[1]

    # control: published with everything, the walk finds the dataset's bytes (the check can fail)
    full = cli("publish", logged.run_id, "--tag", "full", "--key", key, "--json")
    assert full.exit_code == 0, full.output
    full_digest = json.loads(full.stdout)["digest"]
    full_blobs = reachable(registry, repo, full_digest)
    assert "dataset" in layer_kinds(full_blobs, full_digest)
    assert leaked_windows(logged.dataset, full_blobs)

    # shared into another repository without the datasets
    shared = f"{registry.host}/include/shared-{uuid.uuid4().hex[:8]}"
    out = cli(
        "publish", logged.run_id, "--tag", "v1", "--key", key,
        "--repository", shared, "--exclude", "datasets", "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    digest = json.loads(out.stdout)["digest"]
    assert digest != full_digest
    shared_repo = shared.split("/", 1)[1]
    blobs = reachable(registry, shared_repo, digest)
    kinds = layer_kinds(blobs, digest)
    assert "dataset" not in kinds and {"model", "code", "docs"} <= set(kinds), kinds
    kf = kitfile(blobs, digest)
    assert not kf.get("datasets"), kf
    assert "data/train.csv" not in json.dumps(json.loads(blobs[digest]))  # no file index entry either
    assert len(blobs) > 6  # manifest, config, layers, attestations, signatures: the walk saw them
    assert leaked_windows(logged.dataset, blobs) == []
    # nor is the dataset's layer blob in the repository the kit was shared into
    (data_layer,) = [
        layer["digest"]
        for layer in json.loads(full_blobs[full_digest])["layers"]
        if layer["mediaType"].split(".")[-3] == "dataset"
    ]
    assert requests.head(f"{registry.url}/v2/{shared_repo}/blobs/{data_layer}", timeout=30).status_code == 404

    # the provenance references the excluded file by SHA-256 (and the dataset input by its re-hash)
    st = provenance_of(blobs)
    ref = excluded_refs(st)["data/train.csv"]
    assert ref["digest"] == {"sha256": sha}
    assert ref["annotations"]["note"] == "excluded from the kit by policy"
    assert ref["annotations"]["kind"] == "datasets" and ref["annotations"]["size"] == len(logged.dataset)
    assert set(excluded_refs(st)) == {"data/train.csv"}
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"sha256": sha} in [d.get("digest") for d in deps if d.get("name") == "train"]
    assert excluded_refs(provenance_of(full_blobs)) == {}

    # the scan covered what was published: no dataset files in its report
    (scan,) = [s for s in statements(blobs) if "scan" in s.get("predicateType", "")]
    assert "data/train.csv" not in json.dumps(scan)

    for ref_ in (f"{shared}:v1", f"{logged.store}:full"):
        result = verify_kit(ref_, TrustPolicy(trusted_keys=[pub]))
        assert result.ok, (ref_, result.to_json())


def test_admin_include_model_only(
    home: Path, registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, pub = keyfiles(home)
    toml = tmp_path / "modelkit.toml"
    toml.write_text('[publish]\ninclude = ["model"]\n')
    monkeypatch.setenv("MLFLOW_MODELKIT_CONFIG", str(toml))
    logged = log_run(registry.host, tmp_path)
    shown = cli("config", "show")
    assert shown.exit_code == 0 and "publish_include" in shown.output, shown.output

    r = publish_run(logged.run_id, "model-only", key=key, exclude=["datasets"])  # narrowing again is fine
    blobs = reachable(registry, logged.store.split("/", 1)[1], r.digest)
    assert layer_kinds(blobs, r.digest) == ["model"]
    kf = kitfile(blobs, r.digest)
    assert not kf.get("datasets") and not kf.get("docs") and not kf.get("code") and kf["model"]
    assert leaked_windows(logged.dataset, blobs) == []
    assert leaked_windows(DOCS, blobs) == [] and leaked_windows(CODE, blobs) == []
    refs = excluded_refs(provenance_of(blobs))
    assert set(refs) == {"data/train.csv", "notes/README.md", "src/features.py"}
    assert refs["notes/README.md"]["digest"] == {"sha256": hashlib.sha256(DOCS).hexdigest()}
    assert refs["src/features.py"]["annotations"]["kind"] == "code"
    assert verify_kit(f"{logged.store}@{r.digest}", TrustPolicy(trusted_keys=[pub])).ok

    # the environment overrides the file: docs come back, and a second publish has another digest
    monkeypatch.setenv("MLFLOW_MODELKIT_PUBLISH_INCLUDE", "model,docs")
    r2 = publish_run(logged.run_id, "with-docs", key=key)
    assert r2.digest != r.digest
    blobs2 = reachable(registry, logged.store.split("/", 1)[1], r2.digest)
    assert sorted(layer_kinds(blobs2, r2.digest)) == ["docs", "model"]
    assert set(excluded_refs(provenance_of(blobs2))) == {"data/train.csv", "src/features.py"}
    assert verify_kit(f"{logged.store}:with-docs", TrustPolicy(trusted_keys=[pub])).ok
    assert verify_kit(f"{logged.store}:model-only", TrustPolicy(trusted_keys=[pub])).ok


def test_exclude_model_and_unknown_kinds_are_one_line_errors(home: Path) -> None:
    key, _ = keyfiles(home)
    run_id = uuid.uuid4().hex  # refused before the run is read
    for kind, words in (
        ("model", "the model can not be excluded"),
        ("weights", "use code, docs or datasets"),
    ):
        out = cli("publish", run_id, "--tag", "v1", "--key", key, "--exclude", kind)
        assert out.exit_code == 2, out.output
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], out.stderr
        assert "Traceback" not in out.output
    with pytest.raises(ModelKitError, match="the model can not be excluded"):
        publish_run(run_id, "v1", key=key, exclude=["model"])


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('["model", "weights"]', "unknown kind 'weights'; use model, code, docs, datasets"),
        ('["code", "docs"]', "must include 'model'"),
        ("5", "expected a list of strings"),
    ],
)
def test_invalid_include_in_the_toml_is_one_line_naming_the_setting(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    key, _ = keyfiles(home)
    toml = tmp_path / "modelkit.toml"
    toml.write_text(f"[publish]\ninclude = {value}\n")
    monkeypatch.setenv("MLFLOW_MODELKIT_CONFIG", str(toml))
    with pytest.raises(ModelKitError) as ei:
        load_config()
    assert "publish.include" in str(ei.value) and words in str(ei.value), str(ei.value)
    out = cli("publish", uuid.uuid4().hex, "--tag", "v1", "--key", key)
    assert out.exit_code == 2, out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "publish.include" in lines[0] and words in lines[0], out.stderr


def test_include_default_and_env() -> None:
    assert load_config({}).publish_include == ["model", "code", "docs", "datasets"]
    cfg = load_config({"MLFLOW_MODELKIT_PUBLISH_INCLUDE": "datasets, model"})
    assert cfg.publish_include == ["model", "datasets"]
    assert cfg.source("publish_include") == "env MLFLOW_MODELKIT_PUBLISH_INCLUDE"
    with pytest.raises(ModelKitError, match=r"publish.include \(env MLFLOW_MODELKIT_PUBLISH_INCLUDE\)"):
        load_config({"MLFLOW_MODELKIT_PUBLISH_INCLUDE": "model,secrets"})


# ---- docs/admin.md --------------------------------------------------------------------------------------
ADMIN_MD = Path(__file__).resolve().parents[2] / "docs" / "admin.md"


def test_admin_doc_lists_every_setting() -> None:
    """docs/admin.md's table names every file setting and every environment variable of the config."""
    from mlflow_plugin.config import _ENV, _FILE

    rows = [line for line in ADMIN_MD.read_text().splitlines() if line.startswith("| `")]
    documented = {line.split("`")[1] for line in rows}
    assert {f"{s}.{k}" for s, k in _FILE} - documented == set()
    text = "\n".join(rows)
    assert [v for v in _ENV if f"`{v}`" not in text] == []


def test_rotation_as_documented(home: Path, registry: RegistryServer, tmp_path: Path) -> None:
    """docs/admin.md's rotation: old kits verify while the old key is listed; re-publishing the same run
    with the new key gives the same digest, which then verifies with the new key alone."""
    old_key, old_pub = keyfiles(home)
    r = cli("keygen", "-o", str(tmp_path / "2027"))
    assert r.exit_code == 0, r.output
    new_key, new_pub = str(tmp_path / "2027" / "cosign.key"), str(tmp_path / "2027" / "cosign.pub")
    logged = log_run(registry.host, tmp_path)
    before = publish_run(logged.run_id, "v1", key=old_key, exclude=["datasets"])
    ref = f"{logged.store}:v1"
    assert verify_kit(ref, TrustPolicy(trusted_keys=[old_pub, new_pub])).ok
    only_new = verify_kit(ref, TrustPolicy(trusted_keys=[new_pub]))
    assert not only_new.ok and "signature" in {c.name for c in only_new.failures()}
    out = cli("verify", "--key", new_pub, ref)
    assert out.exit_code == 1, out.output

    after = publish_run(logged.run_id, "v1", key=new_key, exclude=["datasets"])
    assert after.digest == before.digest and not after.reused_signatures
    assert verify_kit(ref, TrustPolicy(trusted_keys=[new_pub])).ok
    assert verify_kit(ref, TrustPolicy(trusted_keys=[old_pub])).ok  # the old signatures stay
