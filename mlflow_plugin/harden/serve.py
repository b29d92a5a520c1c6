"""Serve only what verifies: pin, verify, unpack read-only, check every file, then ``mlflow models serve``.

>>> policy = TrustPolicy(trusted_keys=["cosign.pub"])
>>> served = prepare("localhost:5000/team/fraud:v1", policy)    # doctest: +SKIP
>>> served.reference                                           # doctest: +SKIP
'localhost:5000/team/fraud@sha256:…'

The steps, each of which refuses the kit with a :class:`ServeRefused` naming the failed check:

1. the tag is resolved to a manifest digest **once**; everything after uses ``HOST/REPO@digest``
   (moving the tag later changes nothing that is served);
2. :func:`~mlflow_plugin.harden.verify.verify_kit` under the trust policy (signature, required
   attestations, scan verdict, every blob re-hashed);
3. :func:`~mlflow_plugin.packaging.unpack` into a private directory (parent mode 0700), which checks
   each layer's digest and each file against the signed manifest's file index while extracting;
4. the tree is made read-only (files 0444, directories 0555) and then re-hashed once
   (:func:`~mlflow_plugin.trust.oms.hash_model_dir`): every file must match the signed file index,
   and the kit's model_signing bundle (when attached) must verify over the tree with a trusted key;
5. the MLflow model directory (the one holding ``MLmodel``) is served by ``mlflow models serve
   --env-manager local`` as a child process in its own session.

The served digest is printed (``serving HOST/REPO@sha256:… from DIR``) and sent with every
response as the header ``X-ModelKit-Digest`` (MLflow's scoring server has no hook for it; uvicorn,
which ``mlflow models serve`` runs, adds default response headers from ``UVICORN_HEADERS``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.verify import TrustPolicy, verify_kit
from mlflow_plugin.kit.fileindex import parse_file_index
from mlflow_plugin.storage.reference import LayoutLocation, Reference, RegistryLocation

DIGEST_HEADER = "X-ModelKit-Digest"
# never handed to the model server: it needs no registry, signing or tracking credentials
_SECRET_ENV_WORDS = ("PASSWORD", "TOKEN", "SECRET", "CREDENTIAL")
# written by ``unpack`` from signed data: the Kitfile (from the config blob), model.sig (the bundle)
_WRITTEN_BY_UNPACK = ("Kitfile", "model.sig")


class ServeRefused(ModelKitError):
    """The kit failed a check: it is not served (the message names the check)."""


@dataclass
class Prepared:
    """A verified kit unpacked read-only: ``root`` (mode 0700) holds ``kit_dir``; serve ``model_dir``."""

    reference: str  # HOST/REPO@sha256:… (or oci:DIR@sha256:…)
    digest: str
    root: str
    kit_dir: str
    model_dir: str
    owned: bool = True  # the private directory is ours to remove (not a --from-dir tree)

    def cleanup(self) -> None:
        """Remove the private directory (read-only parts made writable first)."""
        if self.owned:
            remove_tree(self.root)


def pin(ref: str, **registry_options: Any) -> tuple[str, str]:
    """Resolve ``ref``'s tag to its manifest digest once: ``(pinned reference, digest)``.

    >>> import pathlib, tempfile
    >>> from mlflow_plugin import pack
    >>> ctx, kits = pathlib.Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    >>> _ = (ctx / "model.bin").write_bytes(b"weights")
    >>> _ = (ctx / "Kitfile").write_text("manifestVersion: 1.0.0\\nmodel: {path: model.bin}\\n")
    >>> _ = pack(str(ctx), f"oci:{kits}/fraud:v1")
    >>> pinned, digest = pin(f"oci:{kits}/fraud:v1")
    >>> pinned == f"oci:{kits}/fraud@{digest}", digest.startswith("sha256:")
    (True, True)
    """
    from mlflow_plugin.storage.locations import open_location

    repo, loc = open_location(ref, default_tag="latest", **registry_options)
    try:
        digest = repo.resolve(loc.reference or "latest").digest
    finally:
        repo.close()
    if isinstance(loc, RegistryLocation):
        pinned = str(Reference(loc.ref.registry, loc.ref.repository, None, digest))
    else:
        assert isinstance(loc, LayoutLocation)
        pinned = str(LayoutLocation(loc.path, None, digest))
    return pinned, digest


def remove_tree(path: str) -> None:
    """``shutil.rmtree`` for a tree made read-only (directories are made writable on the way)."""
    if not os.path.isdir(path):
        return
    for dirpath, dirnames, _files in os.walk(path):
        os.chmod(dirpath, 0o700)
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def make_read_only(directory: str) -> None:
    """Files 0444, directories 0555 (the top included); symbolic links are refused."""
    for dirpath, dirnames, filenames in os.walk(directory, topdown=False):
        for name in filenames + dirnames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                raise ServeRefused(
                    f"refusing to serve: {os.path.relpath(full, directory)} is a symbolic link"
                )
            os.chmod(full, 0o555 if stat.S_ISDIR(st.st_mode) else 0o444)
    os.chmod(directory, 0o555)


def check_tree(
    pinned: str, directory: str, policy: TrustPolicy, require_read_only: bool = True, **registry_options: Any
) -> int:
    """Check ``directory`` (an unpacked kit) against the signed manifest ``pinned``; returns the file count.

    Every file is hashed once and must equal its entry in the manifest's file index (no file
    missing, none extra but the Kitfile), and the model_signing bundle, when the kit carries one,
    must verify over the same hashes with a trusted key. With ``require_read_only`` a writable file
    or directory is refused too. The manifest is read by digest, so it is the one that was verified.
    """
    from mlflow_plugin.storage.locations import open_location
    from mlflow_plugin.trust.attach import PRED_OMS, list_attachments
    from mlflow_plugin.trust.oms import hash_model_dir, verify_oms_files

    if require_read_only:
        _check_read_only(directory)
    try:
        actual = dict(hash_model_dir(directory, ignore_paths=[]))
    except OSError as e:
        raise ServeRefused(f"refusing to serve: cannot read {directory}: {e.strerror}") from None
    repo, loc = open_location(pinned, **registry_options)
    try:
        data, _mt, digest = repo.get_manifest(loc.reference or "")
        oms = [a for a in list_attachments(repo, digest) if a.predicate_type == PRED_OMS]
        bundles = [policy.decryptor().attachment(a) for a in oms]  # an encrypted kit's are encrypted
    except ModelKitError as e:
        raise ServeRefused(f"refusing to serve {pinned}: model_signing: {_line(str(e))}") from None
    finally:
        repo.close()
    indexed: dict[str, str] = {}
    for layer in json.loads(data).get("layers") or []:
        for path, _size, sha, _off in parse_file_index(layer):
            if not path.endswith("/"):
                indexed[path] = sha
    if indexed:
        for path in sorted(indexed.keys() | actual.keys()):
            if path in _WRITTEN_BY_UNPACK and path not in indexed:
                if path == "model.sig" and _sha256_of(directory, path) not in _digests(bundles):
                    raise ServeRefused(f"refusing to serve {pinned}: model.sig is not the kit's bundle")
                continue
            if path not in actual:
                raise ServeRefused(f"refusing to serve {pinned}: file index: {path!r} is missing")
            if path not in indexed:
                raise ServeRefused(
                    f"refusing to serve {pinned}: file index: extra file {path!r} is not signed"
                )
            if actual[path] != indexed[path]:
                raise ServeRefused(
                    f"refusing to serve {pinned}: file index: {path!r} changed "
                    f"(sha256 {actual[path][:12]}…, signed {indexed[path][:12]}…)"
                )
    elif not bundles:
        raise ServeRefused(
            f"refusing to serve {pinned}: the kit has neither a file index nor a model_signing bundle "
            "to check its files against"
        )
    if bundles:
        try:  # the same hashes, judged by model_signing's rules (its ignore_paths, model.sig)
            verify_oms_files(bundles[-1], list(actual.items()), list(policy.trusted_keys))
        except ModelKitError as e:
            raise ServeRefused(f"refusing to serve {pinned}: model_signing: {_line(str(e))}") from None
    return len(actual)


def _sha256_of(directory: str, rel: str) -> str:
    from mlflow_plugin._internal.hashing import file_sha256

    return file_sha256(os.path.join(directory, rel))


def _digests(bundles: list[bytes]) -> set[str]:
    import hashlib

    return {hashlib.sha256(b).hexdigest() for b in bundles}


def _check_read_only(directory: str) -> None:
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in [".", *dirnames, *filenames]:
            full = os.path.normpath(os.path.join(dirpath, name))
            if os.lstat(full).st_mode & 0o222:
                rel = os.path.relpath(full, directory)
                raise ServeRefused(
                    f"refusing to serve: {rel!r} in {directory} is writable (expected 0444/0555)"
                )


def find_model_dir(kit_dir: str, model: str | None = None) -> str:
    """The directory holding ``MLmodel`` (``model``, relative to the kit, picks one of several)."""
    if model:
        cand = os.path.normpath(os.path.join(kit_dir, model))
        if os.path.commonpath([cand, kit_dir]) != os.path.normpath(kit_dir) or not os.path.isfile(
            os.path.join(cand, "MLmodel")
        ):
            raise ServeRefused(f"--model {model}: no MLmodel there in the kit")
        return cand
    found = sorted(d for d, _dirs, files in os.walk(kit_dir) if "MLmodel" in files)
    if not found:
        raise ServeRefused("the kit holds no MLflow model (no MLmodel file)")
    if len(found) > 1:
        rels = ", ".join(os.path.relpath(d, kit_dir) for d in found[:5])
        raise ServeRefused(f"the kit holds several MLflow models ({rels}): choose one with --model PATH")
    return found[0]


def verify_pinned(pinned: str, policy: TrustPolicy, deep: bool = True, **registry_options: Any) -> None:
    """:func:`verify_kit` of a pinned reference; the first failed check raises :class:`ServeRefused`."""
    result = verify_kit(pinned, policy, deep=deep, **registry_options)
    if not result.ok:
        c = result.failures()[0]
        raise ServeRefused(f"refusing to serve {pinned}: {c.name}: {_line(c.detail)}")


def prepare(
    ref: str,
    policy: TrustPolicy,
    model: str | None = None,
    limits: Any = None,
    directory: str | None = None,
    **registry_options: Any,
) -> Prepared:
    """Pin ``ref``, verify it deeply under ``policy``, unpack it read-only and check every file.

    With ``directory`` (a kit unpacked and made read-only beforehand, e.g. at image build time)
    nothing is unpacked: the signatures are verified and the tree is checked against the signed
    index. Raises :class:`ServeRefused` (one line, naming the check) and leaves nothing behind if
    any step fails.
    """
    from mlflow_plugin.packaging import unpack

    pinned, digest = pin(ref, **registry_options)
    if directory is not None:
        directory = os.path.abspath(directory)
        verify_pinned(pinned, policy, deep=False, **registry_options)  # the files are checked below
        check_tree(pinned, directory, policy, **registry_options)
        return Prepared(pinned, digest, directory, directory, find_model_dir(directory, model), owned=False)
    verify_pinned(pinned, policy, deep=True, **registry_options)
    root = tempfile.mkdtemp(prefix="modelkit-serve-")  # mode 0700
    try:
        kit_dir = os.path.join(root, "kit")
        try:
            unpack(pinned, kit_dir, limits=limits, decrypt_keys=policy.decrypt_keys, **registry_options)
        except ModelKitError as e:
            raise ServeRefused(f"refusing to serve {pinned}: unpack: {_line(str(e))}") from None
        make_read_only(kit_dir)
        check_tree(pinned, kit_dir, policy, **registry_options)
        return Prepared(pinned, digest, root, kit_dir, find_model_dir(kit_dir, model))
    except BaseException:
        remove_tree(root)
        raise


def child_env(digest: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The model server's environment: no credentials, the digest as a default response header.

    >>> env = child_env("sha256:" + "ab" * 32, {"PATH": "/bin", "MLFLOW_MODELKIT_REGISTRY_PASSWORD": "x"})
    >>> env["PATH"].endswith(":/bin")
    True
    >>> sorted(env), env["UVICORN_HEADERS"][:26]
    (['PATH', 'UVICORN_HEADERS'], 'X-ModelKit-Digest:sha256:a')
    """
    env = dict(os.environ if environ is None else environ)
    for k in list(env):
        if any(w in k.upper() for w in _SECRET_ENV_WORDS) and k.upper().startswith(("MLFLOW", "DOCKER")):
            del env[k]
    # ``mlflow models serve`` runs ``uvicorn`` from PATH: the one next to this Python first
    here = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(
        [here, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != here)]
    )
    header = f"{DIGEST_HEADER}:{digest}"
    env["UVICORN_HEADERS"] = f"{env['UVICORN_HEADERS']} {header}" if env.get("UVICORN_HEADERS") else header
    return env


def serve_command(model_dir: str, host: str, port: int, workers: int | None = None) -> list[str]:
    """``mlflow models serve`` for ``model_dir`` with the local environment (no downloads).

    >>> serve_command("/m", "127.0.0.1", 8080)[1:6]
    ['-m', 'mlflow', 'models', 'serve', '-m']
    """
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_dir, "--env-manager", "local"]
    cmd += ["--host", host, "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    return cmd


def run_server(served: Prepared, host: str, port: int, workers: int | None = None) -> int:
    """Run the model server in its own session until it exits; SIGTERM/SIGINT are forwarded to its
    process group. The private directory is removed afterwards. Returns the server's exit status."""
    proc = subprocess.Popen(
        serve_command(served.model_dir, host, port, workers),
        env=child_env(served.digest),
        cwd=served.root,
        start_new_session=True,
    )

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - the handler forwards instead
                forward(signal.SIGINT, None)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):  # workers left in the group
            os.killpg(proc.pid, signal.SIGTERM)
        _reap_group(proc.pid)
        served.cleanup()
    return 0 if code in (-signal.SIGTERM, -signal.SIGINT) else code


def _reap_group(pgid: int, grace: float = 10.0) -> None:
    """Wait until every process of the server's group (uvicorn workers too) is gone, so nothing
    listens once ``serve`` returns; SIGKILL whatever is left after ``grace`` seconds."""
    import time

    deadline = time.monotonic() + grace
    killed = False
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() > deadline:
            if killed:
                return  # only zombies nobody reaps are left: they hold no socket
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 5
        time.sleep(0.05)


def _line(text: str) -> str:
    return " ".join(text.split())


__all__ = [
    "DIGEST_HEADER",
    "Prepared",
    "ServeRefused",
    "check_tree",
    "child_env",
    "find_model_dir",
    "make_read_only",
    "pin",
    "prepare",
    "remove_tree",
    "run_server",
    "serve_command",
    "verify_pinned",
]
