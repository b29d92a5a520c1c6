"""The ``modelkit://`` MLflow artifact repository: every run is a draft ModelKit.

Registered under the ``mlflow.artifact_repository`` entry point, so once installed::

    mlflow.create_experiment("fraud", artifact_location="modelkit://localhost:5000/team/fraud")
    mlflow.create_experiment("fraud", artifact_location="modelkit:///srv/kits/team/fraud")
    # or: mlflow server --artifacts-destination modelkit://localhost:5000/ml   (proxy mode)

MLflow builds a new instance for every call, so construction only parses the URI; stores
(and their HTTP sessions and credentials) are cached per process.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
import threading
from collections.abc import AsyncIterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.artifact.artifact_repo import ArtifactRepository, StreamUploadMixin

from mlflow_plugin.drafts.download import download_file
from mlflow_plugin.drafts.draft import DraftKit
from mlflow_plugin.drafts.uri import ArtifactLocation, parse_artifact_uri
from mlflow_plugin.errors import ModelKitError, NotFoundError, ReferenceFormatError
from mlflow_plugin.kit.unpack import Staging
from mlflow_plugin.storage.base import Repository
from mlflow_plugin.storage.locations import open_repository
from mlflow_plugin.storage.reference import LayoutLocation, Reference, RegistryLocation
from mlflow_plugin.tracking import encrypted
from mlflow_plugin.tracking.server_policy import check_allowed
from mlflow_plugin.trust.sealed import is_encrypted_manifest

log = logging.getLogger(__name__)
_REPOS: dict[str, Repository] = {}
_REPOS_LOCK = threading.Lock()


def _repository(loc: ArtifactLocation) -> Repository:
    check_allowed(loc)  # inside mlflow server: only the admin's registries and directories
    key = loc.store
    with _REPOS_LOCK:
        repo = _REPOS.get(key)
        if repo is None:
            if loc.layout:
                target = LayoutLocation(loc.layout)
                repo = open_repository(target, create=not loc.read_only)
            else:
                assert loc.registry is not None
                from mlflow_plugin.config import load_config  # read once per repository, at the edge

                repo = open_repository(
                    RegistryLocation(Reference(loc.registry, loc.repository)),
                    settings=load_config().storage_settings(),
                )
            _REPOS[key] = repo
        return repo


def _mlflow_error(e: Exception, what: str = "") -> MlflowException:
    """The one-line ``MlflowException`` for a ModelKitError (``what`` names the artifact)."""
    code = RESOURCE_DOES_NOT_EXIST if isinstance(e, NotFoundError) else INVALID_PARAMETER_VALUE
    return MlflowException(f"{what}: {e}" if what else str(e), error_code=code)


def _write_error(what: str, dest: str, e: OSError) -> MlflowException:
    """A file system failure while writing downloaded artifacts, without internal staging paths."""
    return MlflowException(
        f"cannot write {what} into {dest}: {e.strerror or type(e).__name__}; check the directory's "
        "free space and permissions",
        error_code=INVALID_PARAMETER_VALUE,
    )


def _verifier_for(loc: ArtifactLocation, repo: Repository) -> Any:
    """Verify-on-load: published kits must satisfy the admin's trust policy before any byte is written.

    Drafts (runs being logged) are not checked. With ``policy.require_signature`` (config file or
    ``MLFLOW_MODELKIT_REQUIRE_SIGNATURE``), the manifest's digest must carry a signature and the
    required attestations by a trusted key, and the scan verdict must be within the policy; every
    file is then checked against the SHA-256 in the signed manifest's file index as it downloads.
    """
    if not loc.read_only:
        return None
    from mlflow_plugin.config import load_config

    cfg = load_config()
    if not cfg.require_signature:
        return None
    from mlflow_plugin.harden.verify import TrustPolicy, load_verifier

    if not cfg.trusted_keys:
        raise ModelKitError(
            f"refusing to load {loc}: require_signature is on but no trusted keys are configured "
            "(signing.trusted_keys / MLFLOW_MODELKIT_TRUSTED_KEYS)"
        )
    return load_verifier(repo, TrustPolicy.from_config(cfg), str(loc))


class ModelKitArtifactRepository(ArtifactRepository, StreamUploadMixin):
    """Stores MLflow artifacts as kit-compatible layers of a draft ModelKit."""

    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        try:
            self.location = parse_artifact_uri(artifact_uri)
        except ReferenceFormatError as e:
            raise MlflowException(str(e), error_code=INVALID_PARAMETER_VALUE) from None
        super().__init__(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        self._kits: dict[tuple[str, str], DraftKit] = {}
        self._stores: dict[int, str] = {}  # id(kit) -> its store (an encrypted kit is read by unpack)
        self._kits_lock = threading.Lock()

    # ---- helpers ---------------------------------------------------------------------------
    def _resolve(self, path: str | None) -> tuple[DraftKit, str]:
        """The draft kit a path belongs to and the path inside it."""
        try:
            loc = self.location.child(path)
        except ReferenceFormatError as e:
            raise _mlflow_error(e) from None
        if loc.is_root:
            raise MlflowException(
                f"{self.artifact_uri}/{path or ''}: not inside a run, model or trace "
                "(expected <experiment>/<run_id>/artifacts/...)",
                error_code=INVALID_PARAMETER_VALUE,
            )
        key = (loc.store, loc.reference or "")
        with self._kits_lock:
            kit = self._kits.get(key)
            if kit is None:
                try:
                    repo = _repository(loc)
                except ModelKitError as e:
                    raise _mlflow_error(e) from None
                kit = DraftKit(
                    repo,
                    loc.reference or "",
                    read_only=loc.read_only,
                    verify_manifest=self._call(_verifier_for, loc, repo),
                )
                self._kits[key] = kit
                self._stores[id(kit)] = loc.store
        return kit, loc.path

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except MlflowException:
            raise
        except ModelKitError as e:
            raise _mlflow_error(e) from None

    # ---- writing ---------------------------------------------------------------------------
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        kit, base = self._resolve(artifact_path)
        self._call(kit.add, local_file, base or None)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        kit, base = self._resolve(artifact_path)
        if not os.path.isdir(local_dir):
            raise MlflowException(f"{local_dir} is not a directory", error_code=INVALID_PARAMETER_VALUE)
        # an empty directory is logged too (at ``artifact_path`` it lists as a directory, like
        # MLflow's local store; at the root it adds nothing)
        self._call(kit.add, local_dir, base or None)

    def log_artifact_from_stream(
        self, stream: IO[bytes], artifact_file_name: str, artifact_path: str | None = None
    ) -> None:
        """Proxy uploads: spool the request body (a tar header needs the size first), then log it."""
        name = posixpath.basename(artifact_file_name)
        with tempfile.TemporaryDirectory(prefix="modelkit-up-") as tmp:
            dest = os.path.join(tmp, name)
            with open(dest, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            self.log_artifact(dest, artifact_path)

    async def log_artifact_from_async_stream(
        self, chunks: AsyncIterable[bytes], artifact_file_name: str, artifact_path: str | None = None
    ) -> None:
        import asyncio

        name = posixpath.basename(artifact_file_name)
        tmp = tempfile.mkdtemp(prefix="modelkit-up-")
        try:
            dest = os.path.join(tmp, name)
            with open(dest, "wb") as out:
                async for c in chunks:
                    out.write(c)
            await asyncio.to_thread(self.log_artifact, dest, artifact_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        kit, base = self._resolve(artifact_path)
        self._call(kit.delete, base or None)

    # ---- reading ---------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        if self.location.is_root and not path:
            return []
        kit, inner = self._resolve(path)
        # Reads start from the current manifest: ``mlflow server`` keeps one repository per worker
        # for its whole life, and other workers or clients write the same drafts meanwhile.
        m, digest = self._call(kit.manifest, refresh=True)
        if m is not None and digest and is_encrypted_manifest(m):
            return self._list_encrypted(kit, digest, inner, (path or "").strip("/"))
        listing = self._call(kit.listdir, inner)
        prefix = (path or "").strip("/")
        out = []
        for item in listing:
            rel = item.path[len(inner) :].lstrip("/") if inner else item.path
            full = f"{prefix}/{rel}" if prefix else rel
            out.append(FileInfo(full, item.is_dir, item.size))
        return out

    def _list_encrypted(self, kit: DraftKit, digest: str, inner: str, prefix: str) -> list[FileInfo]:
        """One level of an encrypted kit, named by its (decrypted) model_signing statement."""
        files = self._call(encrypted.listing, kit.repo, digest)
        pre = f"{inner}/" if inner else ""
        seen: dict[str, bool] = {}
        for p in files:
            if p.startswith(pre):
                head, sep, _rest = p[len(pre) :].partition("/")
                seen[head] = seen.get(head, False) or bool(sep)
        return [
            FileInfo(f"{prefix}/{name}" if prefix else name, is_dir, None)
            for name, is_dir in sorted(seen.items())
        ]

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        kit, inner = self._resolve(remote_file_path)
        what = f"artifact {remote_file_path!r} of {self.artifact_uri}"
        m, digest = self._call(kit.manifest)
        if m is not None and digest and is_encrypted_manifest(m):
            self._download_encrypted(kit, digest, inner, local_path, what)
            return
        try:
            try:  # the manifest read by the listing that preceded this call (no request per file)
                kit.read_file(inner, local_path)
            except NotFoundError:  # logged since then, maybe by another process: look again once
                kit.manifest(refresh=True)
                kit.read_file(inner, local_path)
        except ModelKitError as e:
            raise _mlflow_error(e, what) from None
        except OSError as e:
            raise _write_error(what, os.path.dirname(os.path.abspath(local_path)), e) from None

    def _download_encrypted(self, kit: DraftKit, digest: str, inner: str, dest: str, what: str) -> None:
        try:
            encrypted.download(self._stores[id(kit)], digest, inner, dest)
        except ModelKitError as e:
            raise _mlflow_error(e, what) from None
        except OSError as e:
            raise _write_error(what, os.path.dirname(os.path.abspath(dest)), e) from None

    def download_artifacts(self, artifact_path: str | None = None, dst_path: str | None = None) -> str:
        """One manifest read, then parallel verified range downloads (instead of a listing per dir)."""
        if self.location.is_root and not artifact_path:
            return super().download_artifacts(artifact_path, dst_path)
        kit, inner = self._resolve(artifact_path)
        what = f"artifact {artifact_path or '/'!r} of {self.artifact_uri}"
        try:
            m, digest = kit.manifest(refresh=True)
            files = kit.files()
        except ModelKitError as e:
            raise _mlflow_error(e, what) from None
        if dst_path:
            dst_path = os.path.abspath(dst_path)
            if not os.path.isdir(dst_path):
                raise MlflowException(
                    f"The destination path for downloaded artifacts does not exist or is not a "
                    f"directory: {dst_path}",
                    error_code=RESOURCE_DOES_NOT_EXIST,
                )
        else:
            dst_path = tempfile.mkdtemp()
        prefix = (artifact_path or "").strip("/")
        if m is not None and digest and is_encrypted_manifest(m):
            dest = os.path.join(dst_path, *prefix.split("/")) if prefix else dst_path
            self._download_encrypted(kit, digest, inner, dest, what)
            return dest
        empty: list[str] = []
        if inner in files:
            targets = {inner: files[inner]}
        else:
            pre = f"{inner}/" if inner else ""
            targets = {p: f for p, f in files.items() if p.startswith(pre)}
            empty = [d for d in self._call(kit.empty_dirs) if d == inner or d.startswith(pre)]
            if not targets and not empty and inner:
                raise MlflowException(
                    f"artifact {artifact_path!r} not found in {self.artifact_uri}",
                    error_code=RESOURCE_DOES_NOT_EXIST,
                )
        # Files are verified into a staging directory inside ``dst_path`` (same file system) and
        # moved into place only when every one of them matched the signed index and every
        # destination is safe (the one safe-path rule of ``unpack``): a hostile or tampered kit
        # leaves nothing behind.
        try:
            with Staging(dst_path, overwrite=True) as st:
                jobs = []
                for p, f in targets.items():
                    rel = p[len(inner) :].lstrip("/") if inner else p
                    staged = st.reserve(posixpath.join(prefix, rel) if rel else prefix, f.size)
                    if staged is not None:
                        jobs.append((f, staged))
                for d in empty:  # directories logged empty are recreated, as MLflow's download does
                    rel = d[len(inner) :].lstrip("/") if inner else d
                    st.add_dir(posixpath.join(prefix, rel).strip("/"), 0o755)
                with ThreadPoolExecutor(max_workers=min(8, max(1, len(jobs)))) as pool:
                    for fut in [pool.submit(download_file, kit.repo, f, staged) for f, staged in jobs]:
                        fut.result()
                st.commit()
        except ModelKitError as e:
            raise _mlflow_error(e, what) from None
        except OSError as e:
            raise _write_error(what, dst_path, e) from None
        return os.path.join(dst_path, *prefix.split("/")) if prefix else dst_path
