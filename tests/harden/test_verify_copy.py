"""Signatures survive a registry-to-registry copy; hostile referrers are skipped with a note.

Everything runs against real registries (Debian's ``docker-registry``, CNCF distribution 2.8, no
referrers API, so referrers live in the ``sha256-<hex>`` tag-schema index) and the real ``skopeo``:

* a kit published to registry A and copied to registry B with ``skopeo copy --all`` of its tag and of
  its ``sha256-<hex>`` index verifies on B through :func:`verify_kit` and ``mlflow-modelkit verify``,
  although skopeo dropped ``artifactType`` from every index entry (asserted);
* the same with index entries that also lost their annotations;
* hostile referrers listed next to the genuine ones -- bad JSON, a non-manifest media type, an index
  posing as a manifest, a validly signed bundle whose manifest ``subject`` is another manifest, an
  enormous declared size, no layers, an oversized bundle layer, an unknown artifact type -- are
  skipped with a note each and the kit still verifies; with only hostile referrers verification
  fails with a plain "no signature found", never an exception;
* more than 1,000 listed referrers: only the first 1,000 are considered, with a note.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
import requests
from _envhelpers import clean_env, end_runs, use_tracking
from _registries import RegistryServer, own_registry
from test_publish import PASSPHRASE, Keys, cli, failed_checks, log_run

from mlflow_plugin.harden.publish import PublishResult, publish_run
from mlflow_plugin.harden.verify import TrustPolicy, VerifyResult, verify_kit
from mlflow_plugin.storage.base import referrers_tag
from mlflow_plugin.storage.mediatypes import EMPTY_JSON, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST
from mlflow_plugin.storage.registry import RegistryRepository
from mlflow_plugin.trust import attach, cosign, dsse
from mlflow_plugin.trust.attach import MAX_REFERRERS
from mlflow_plugin.trust.keys import load_private_key

pytestmark = pytest.mark.registry

BUNDLE = dsse.BUNDLE_MEDIA_TYPE


# ---- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module state: environment without admin settings, a SQLite tracking store, a key pair."""
    root = tmp_path_factory.mktemp("verify-copy")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, PASSPHRASE)
        r = cli("keygen", "-o", str(root / "keys"))
        assert r.exit_code == 0, r.output
        yield root


@pytest.fixture(autouse=True)
def _env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_env(monkeypatch, PASSPHRASE)
    use_tracking(f"sqlite:///{home}/mlflow.db")
    yield
    end_runs()


@pytest.fixture(scope="module")
def keys(home: Path) -> Keys:
    pub, key = str(home / "keys" / "cosign.pub"), str(home / "keys" / "cosign.key")
    return Keys(key, pub, key, pub)


@pytest.fixture(scope="module")
def registry_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """The second registry the kit is copied to (started like the session's ``registry``)."""
    with own_registry(tmp_path_factory, "registry-copy-b") as server:
        yield server


@pytest.fixture(scope="module")
def skopeo() -> str:
    path = shutil.which("skopeo")
    if not path:
        pytest.skip("skopeo is not on PATH")
    return path


@pytest.fixture(scope="module")
def run_id(home: Path, registry: RegistryServer) -> str:
    """A small logged MLflow run (artifacts in registry A)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)
        uri = f"sqlite:///{home}/mlflow.db"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return log_run(registry.host, home, "copy").run_id


@pytest.fixture(scope="module")
def published(run_id: str, registry: RegistryServer, home: Path) -> PublishResult:
    """``run_id`` published as ``v1`` on registry A (signature and attestations as referrers)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)
        return publish_run(
            run_id, "v1", key=str(home / "keys" / "cosign.key"), repository=f"{registry.host}/copy/kit"
        )


@pytest.fixture
def fresh(run_id: str, registry: RegistryServer, keys: Keys) -> PublishResult:
    """``run_id`` published as ``v1`` into a repository of its own on registry A."""
    return publish_run(
        run_id, "v1", key=keys.private, repository=f"{registry.host}/hostile/{uuid.uuid4().hex[:10]}"
    )


# ---- helpers ------------------------------------------------------------------------------------------
def repo_name(store: str) -> str:
    """``team/x`` of ``host:port/team/x``."""
    return store.split("/", 1)[1]


def skopeo_copy(skopeo: str, src: str, dst: str) -> None:
    """``skopeo copy --all`` between two plain-HTTP registries, as a user would run it."""
    out = subprocess.run(
        [
            skopeo,
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{src}",
            f"docker://{dst}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


def copy_kit(skopeo: str, r: PublishResult, dst_store: str) -> str:
    """Copy the kit's tag and its referrers index to ``dst_store``; returns ``dst_store:v1``."""
    skopeo_copy(skopeo, f"{r.store}:{r.tag}", f"{dst_store}:{r.tag}")
    index_tag = referrers_tag(r.digest)
    skopeo_copy(skopeo, f"{r.store}:{index_tag}", f"{dst_store}:{index_tag}")
    return f"{dst_store}:{r.tag}"


def index_entries(store: str, digest: str) -> list[dict[str, Any]]:
    host, name = store.split("/", 1)
    data, media_type, _ = RegistryRepository(host, name).get_manifest(referrers_tag(digest))
    assert media_type == OCI_INDEX
    return json.loads(data)["manifests"]


def put_index(server: RegistryServer, name: str, digest: str, entries: list[dict[str, Any]]) -> None:
    """Overwrite the kit's ``sha256-<hex>`` referrers index with ``entries`` (in this order)."""
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    put_raw(server, name, referrers_tag(digest), json.dumps(index).encode(), OCI_INDEX)


def put_raw(server: RegistryServer, name: str, ref: str, data: bytes, media_type: str) -> str:
    """PUT manifest bytes as they are (our client refuses to push bad JSON); returns the digest."""
    resp = requests.put(
        f"{server.url}/v2/{name}/manifests/{ref}", data=data, headers={"Content-Type": media_type}, timeout=30
    )
    assert resp.status_code == 201, resp.text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def policy(keys: Keys) -> TrustPolicy:
    return TrustPolicy(trusted_keys=[keys.public], required_attestations=["provenance", "scan", "sbom"])


def passed(result: VerifyResult) -> set[str]:
    return {c.name for c in result.checks if c.ok}


def note_about(result: VerifyResult, digest: str) -> str:
    """The one note naming referrer ``digest``."""
    (note,) = [n for n in result.notes if digest[:19] in n]
    return note


@dataclass
class Hostile:
    """A hostile index entry and a fragment of the note it must produce."""

    entry: dict[str, Any]
    note: str


def hostile_referrers(server: RegistryServer, r: PublishResult, keys: Keys) -> list[Hostile]:
    """Push hostile referrer manifests of the kit ``r`` into its repository; their index entries."""
    name = repo_name(r.store)
    repo = RegistryRepository(server.host, name)
    empty = repo.push_bytes(EMPTY_JSON, OCI_EMPTY).to_json()
    bundle_blob = repo.push_bytes(b'{"not": "a bundle"}', BUNDLE).to_json()
    kit = repo.resolve(r.digest).to_json()

    def manifest(**fields: Any) -> dict[str, Any]:
        return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "subject": kit, **fields}

    def push(m: dict[str, Any] | bytes, media_type: str = OCI_MANIFEST) -> tuple[str, int]:
        data = m if isinstance(m, bytes) else json.dumps(m).encode()
        return put_raw(server, name, "sha256:" + hashlib.sha256(data).hexdigest(), data, media_type), len(
            data
        )

    def entry(digest_size: tuple[str, int], media_type: str = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": digest_size[0], "size": digest_size[1], **extra}

    # invalid UTF-8: Go (the registry) accepts it as JSON, Python's json does not
    bad_json = json.dumps(manifest(artifactType=BUNDLE, layers=[bundle_blob])).encode()
    bad_json = bad_json[:-1] + b',"annotations":{"x":"\xff\xfe"}}'
    # a genuine bundle signed by the trusted key, statement about this kit, manifest subject elsewhere
    elsewhere = repo.push_bytes(b"{}", "application/vnd.example.other+json")
    other = push(manifest(artifactType="application/vnd.example.other+json", layers=[elsewhere.to_json()]))
    signed = dsse.sign_bundle(
        cosign.cosign_sign_statement(r.digest), load_private_key(keys.private, PASSPHRASE.encode())
    )
    sub = attach.attach_bundle(repo, repo.resolve(other[0]), signed, attach.PRED_SIGN)
    a_index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [kit]}
    huge_layer = {**bundle_blob, "size": 1 << 40}
    genuine = index_entries(r.store, r.digest)[0]
    return [
        Hostile(entry(push(bad_json), artifactType=BUNDLE), "not valid JSON"),
        # a non-manifest media type in front of the genuine entry for the same digest
        Hostile({**genuine, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}, "media type"),
        Hostile(entry(push(a_index, OCI_INDEX), artifactType=BUNDLE), "not an OCI image manifest"),
        Hostile(entry((sub, len(repo.get_manifest(sub)[0]))), "not this kit"),
        Hostile({**genuine, "size": 1 << 50}, "over the"),
        Hostile(entry(push(manifest(artifactType=BUNDLE, layers=[]))), "no layers"),
        Hostile(
            entry(push(manifest(artifactType=BUNDLE, layers=[huge_layer]))), "bundle layer declares size"
        ),
        Hostile(
            entry(push(manifest(artifactType="application/vnd.example.sbom+json", layers=[bundle_blob]))),
            "is not a Sigstore bundle",
        ),
    ]


# ---- a copied kit verifies on the second registry -----------------------------------------------------
def test_skopeo_copied_kit_verifies_on_second_registry(
    published: PublishResult, registry_b: RegistryServer, keys: Keys, skopeo: str
) -> None:
    ref_b = copy_kit(skopeo, published, f"{registry_b.host}/copied/kit")
    store_b = ref_b.rsplit(":", 1)[0]
    # what the test claims: on A the entries carry artifactType, on B skopeo dropped it
    on_a, on_b = index_entries(published.store, published.digest), index_entries(store_b, published.digest)
    assert len(on_a) == len(on_b) == 5
    assert all(e.get("artifactType") == BUNDLE for e in on_a)
    assert all("artifactType" not in e for e in on_b), on_b
    assert {e["digest"] for e in on_a} == {e["digest"] for e in on_b}
    result = verify_kit(ref_b, policy(keys))
    assert result.ok, failed_checks(result)
    assert result.digest == published.digest
    assert {"signature", "attestation:provenance", "attestation:scan", "attestation:sbom"} <= passed(result)
    assert "model_signing bundle" in passed(result)
    assert result.notes == [] and "skipped referrers" not in {c.name for c in result.checks}
    out = cli("verify", ref_b, "--key", keys.public)
    assert out.exit_code == 0, out.output
    assert "PASS  signature" in out.output and out.output.rstrip().endswith("verified"), out.output
    doc = json.loads(cli("verify", ref_b, "--key", keys.public, "--json", "--no-deep").stdout)
    assert doc["verified"] is True and doc["digest"] == published.digest and doc["notes"] == []


def test_index_entries_without_annotations_or_artifact_type(
    published: PublishResult, registry_b: RegistryServer, keys: Keys, skopeo: str
) -> None:
    """Entries reduced to mediaType/digest/size: every referrer is judged by its manifest alone."""
    ref_b = copy_kit(skopeo, published, f"{registry_b.host}/copied/bare")
    name = repo_name(ref_b.rsplit(":", 1)[0])
    bare = [
        {k: e[k] for k in ("mediaType", "digest", "size")}
        for e in index_entries(published.store, published.digest)
    ]
    put_index(registry_b, name, published.digest, bare)
    assert all(
        set(e) == {"mediaType", "digest", "size"}
        for e in index_entries(f"{registry_b.host}/{name}", published.digest)
    )
    result = verify_kit(ref_b, policy(keys), deep=False)
    assert result.ok, failed_checks(result)
    assert result.notes == []


# ---- hostile referrers --------------------------------------------------------------------------------
def test_hostile_referrers_are_skipped_and_good_signature_still_verifies(
    fresh: PublishResult, registry: RegistryServer, keys: Keys
) -> None:
    hostile = hostile_referrers(registry, fresh, keys)
    genuine = index_entries(fresh.store, fresh.digest)
    put_index(registry, repo_name(fresh.store), fresh.digest, [h.entry for h in hostile] + genuine)
    result = verify_kit(fresh.reference, policy(keys), deep=False)
    assert result.ok, failed_checks(result)
    assert {"signature", "attestation:provenance", "attestation:scan", "attestation:sbom"} <= passed(result)
    assert len(result.notes) == len(hostile), result.notes
    for h, note in zip(hostile, result.notes, strict=True):
        assert h.entry["digest"][:19] in note and "skipped" in note and h.note in note, (h.note, note)
    assert all("\n" not in n and len(n) < 300 for n in result.notes), result.notes
    assert "skipped referrers" not in {c.name for c in result.checks}  # notes never decide the verdict
    out = cli("verify", fresh.reference, "--key", keys.public, "--no-deep")
    assert out.exit_code == 0, out.output
    assert "PASS  signature" in out.output, out.output
    assert out.output.count("  NOTE  ") == min(len(hostile), 5) + (len(hostile) > 5), out.output
    doc = json.loads(cli("verify", fresh.reference, "--key", keys.public, "--json", "--no-deep").stdout)
    assert doc["verified"] is True and doc["notes"] == result.notes


def test_only_hostile_referrers_fail_with_no_signature(
    fresh: PublishResult, registry: RegistryServer, keys: Keys
) -> None:
    hostile = hostile_referrers(registry, fresh, keys)
    # drop the genuine referrers: the two hostile entries that name a genuine digest go too
    kept = [h for h in hostile if h.note not in ("media type", "over the")]
    put_index(registry, repo_name(fresh.store), fresh.digest, [h.entry for h in kept])
    result = verify_kit(fresh.reference, policy(keys), deep=False)
    failed = failed_checks(result)
    assert not result.ok
    assert failed["signature"] == "no signature found for this digest", failed
    assert {"attestation:provenance", "attestation:scan", "attestation:sbom"} <= set(failed), failed
    assert len(result.notes) == len(kept), result.notes
    # the bundle signed by the trusted key for this kit, but attached to another subject, was not used
    (sub,) = [h for h in kept if h.note == "not this kit"]
    assert "not this kit" in note_about(result, sub.entry["digest"])
    out = cli("verify", fresh.reference, "--key", keys.public, "--no-deep")
    assert out.exit_code == 1, out.output
    assert "FAIL  signature" in out.output and "no signature found" in out.output, out.output
    assert "NOT verified" in out.output


def test_referrer_count_is_capped_with_a_note(
    fresh: PublishResult, registry: RegistryServer, keys: Keys
) -> None:
    """Genuine referrers first, then enough duplicate junk entries to pass the cap."""
    genuine = index_entries(fresh.store, fresh.digest)
    junk = {**genuine[0], "size": 1 << 40}  # refused from the entry alone: no fetch per duplicate
    put_index(registry, repo_name(fresh.store), fresh.digest, genuine + [junk] * MAX_REFERRERS)
    result = verify_kit(fresh.reference, policy(keys), deep=False)
    assert result.ok, failed_checks(result)
    total = len(genuine) + MAX_REFERRERS
    assert result.notes[0] == f"{total} referrers listed; only the first {MAX_REFERRERS} were considered"
    assert len(result.notes) == 2 and "over the" in result.notes[1], result.notes  # the junk, noted once


def test_unannotated_referrer_judged_by_its_layers_and_statement(
    fresh: PublishResult, registry: RegistryServer, keys: Keys
) -> None:
    """A signature referrer without artifactType or annotations (config = empty, one bundle layer)."""
    name = repo_name(fresh.store)
    repo = RegistryRepository(registry.host, name)
    signature = json.loads(repo.get_manifest(fresh.attachments["signature"])[0])
    plain = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": signature["config"],
        "layers": [{k: signature["layers"][0][k] for k in ("mediaType", "digest", "size")}],
        "subject": signature["subject"],
    }
    plain_digest = repo.put_manifest(json.dumps(plain).encode(), OCI_MANIFEST)
    entries = index_entries(fresh.store, fresh.digest)
    (listed,) = [e for e in entries if e["digest"] == plain_digest]
    assert (
        listed.get("artifactType") == OCI_EMPTY and "annotations" not in listed
    )  # not a bundle, says the entry
    kept = [e for e in entries if e["digest"] != fresh.attachments["signature"]]
    put_index(registry, name, fresh.digest, kept)
    result = verify_kit(fresh.reference, policy(keys), deep=False)
    assert result.ok, failed_checks(result)
    assert {c.name: c.detail for c in result.checks}["signature"] == "signed by a trusted key"
    assert result.notes == []
