"""MLflow reads of an encrypted kit (``publish --encrypt-for``) through ``modelkit://``.

An encrypted kit has no readable file index: its layers are whole ocicrypt ciphertexts, so the
range reads of a draft do not apply. A download decrypts the kit once with the admin's recipient
keys (``[encryption] decrypt_keys`` / ``MLFLOW_MODELKIT_DECRYPT_KEYS``) through
:func:`mlflow_plugin.packaging.unpack` -- the same checks as the CLI: ciphertext digest, HMAC and
plaintext digest before any byte is released, safe paths, the admin's ``[limits]`` -- into a
private staging directory next to the destination, then moves what was asked for into place. A
listing names the files of the kit's model_signing statement (decrypted; paths checked), without
sizes. Whoever holds no recipient key gets one line: not a recipient of this kit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.kit.unpack import safe_member_path

_KINDS = ["model", "datasets", "code", "docs", "prompts"]  # everything but the Kitfile


def _config() -> Any:
    from mlflow_plugin.config import load_config

    return load_config()


def download(store: str, digest: str, inner: str, dest: str) -> None:
    """Decrypt the kit ``store@digest`` and place its file or directory ``inner`` ("" = all) at
    ``dest`` (a file path or a directory, which may exist: files are replaced, as MLflow does).
    Nothing reaches ``dest`` unless the whole kit decrypted and unpacked cleanly."""
    from mlflow_plugin.kit.limits import UnpackLimits
    from mlflow_plugin.packaging import unpack

    cfg = _config()
    parent = os.path.dirname(os.path.abspath(dest)) or "."
    os.makedirs(parent, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=".modelkit-decrypt-", dir=parent)  # 0700, same file system
    try:
        tree = os.path.join(stage, "kit")
        unpack(
            f"{store}@{digest}",
            tree,
            filters=list(_KINDS),
            limits=UnpackLimits.from_config(cfg),
            decrypt_keys=list(cfg.decrypt_keys),
            settings=cfg.storage_settings(),
        )
        src = os.path.join(tree, *inner.split("/")) if inner else tree
        if not os.path.lexists(src):
            raise ModelKitError(f"{inner!r} is not in the kit")
        _move(src, os.path.abspath(dest))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move(src: str, dest: str) -> None:
    """Move the tree (or file) ``src`` onto ``dest``. Every destination is checked first -- never
    through a symlink already there (as unpack's staging does: a link in the destination must not
    carry files elsewhere), never a file over a directory -- so a refusal moves nothing."""
    moves: list[tuple[str, str]] = []
    dirs: list[str] = []

    def plan(s: str, d: str) -> None:
        if os.path.islink(d):
            raise ModelKitError(f"{d} is a symbolic link: refusing to write through it")
        if os.path.isdir(s):
            if os.path.lexists(d) and not os.path.isdir(d):
                raise ModelKitError(f"cannot replace the file {d} with a directory")
            dirs.append(d)
            for name in sorted(os.listdir(s)):
                plan(os.path.join(s, name), os.path.join(d, name))
        else:
            if os.path.isdir(d):
                raise ModelKitError(f"cannot replace the directory {d} with a file")
            moves.append((s, d))

    plan(src, dest)
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    for s, d in moves:
        os.replace(s, d)


def listing(repo: Any, digest: str) -> dict[str, str]:
    """``{path: sha256 hex}`` of the encrypted kit's files, from its model_signing statement
    (decrypted with the admin's recipient keys); ``{}`` when the kit carries none."""
    from mlflow_plugin.trust import dsse, oms
    from mlflow_plugin.trust.attach import PRED_OMS, list_attachments
    from mlflow_plugin.trust.sealed import Decryptor

    found = [a for a in list_attachments(repo, digest) if a.predicate_type == PRED_OMS]
    if not found:
        return {}
    bundle = Decryptor(_config().decrypt_keys).attachment(found[0])
    stmt = dsse.unverified_statement(bundle)
    files, _ignored = oms.signed_files(stmt)
    return {safe_member_path(p): sha for p, sha in files.items()}


__all__ = ["download", "listing"]
