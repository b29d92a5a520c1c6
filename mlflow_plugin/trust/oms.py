"""OpenSSF Model Signing (OMS) v1.0 bundles over a model directory, compatible with ``model_signing``.

The signed statement lists every file (``files`` method, sha256), component-wise sorted, with
``subject[0].digest.sha256`` = sha256 of the concatenated raw file digests.

>>> st = oms_statement([("b.txt", "00" * 32), ("a/x.bin", "11" * 32)], "model")
>>> [r["name"] for r in st["predicate"]["resources"]]
['a/x.bin', 'b.txt']
>>> st["subject"][0]["digest"]["sha256"] == root_digest(["11" * 32, "00" * 32])
True

Signing is :class:`mlflow_plugin.trust.signer.Signer`'s job (kind ``model_signing``): the statement is
signed as a DSSE bundle whose key hint is model_signing's own (hex sha256 of the PEM public key),
so ``model_signing verify key`` accepts it without a warning.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable

from mlflow_plugin._internal.hashing import file_sha256
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.trust import dsse
from mlflow_plugin.trust.dsse import VerificationError

OMS_PREDICATE = "https://model_signing/signature/v1.0"
SIGNATURE_NAME = "model.sig"
DEFAULT_IGNORE_PATHS = [".git", ".gitattributes", ".github", ".gitignore", SIGNATURE_NAME]
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


def _check_name(name: str) -> str:
    parts = name.split("/") if isinstance(name, str) else [""]
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in name:
        raise ModelKitError(f"invalid model file path {name!r}: use a relative POSIX path without '..'")
    return name


def _is_ignored(name: str, ignore_paths: Iterable[str]) -> bool:
    parts = name.split("/")
    for ign in ignore_paths:
        ip = [p for p in ign.strip("/").split("/") if p not in ("", ".")]
        if ip and parts[: len(ip)] == ip:
            return True
    return False


def _ignore_list(extra: list[str] | None) -> list[str]:
    out = list(DEFAULT_IGNORE_PATHS)
    for p in extra or []:
        p = p.strip("/")
        if p and p not in out:
            out.append(p)
    return out


def signable_files(
    files: list[tuple[str, str]], ignore_paths: list[str] | None = None
) -> list[tuple[str, str]]:
    """``files`` without those under the ignore list (git paths, ``model.sig``), which verifiers never hash.

    >>> files = [(".gitignore", "0" * 64), ("w.bin", "1" * 64), ("sub/.git/x", "2" * 64)]
    >>> [n for n, _ in signable_files(files)]
    ['w.bin', 'sub/.git/x']
    """
    ignores = _ignore_list(ignore_paths)
    return [(n, d) for n, d in files if not _is_ignored(n, ignores)]


def root_digest(hex_digests: Iterable[str]) -> str:
    """The OMS root digest: hex sha256 of the concatenated raw digests, in the order given.

    >>> root_digest([]) == hashlib.sha256(b"").hexdigest()
    True
    """
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in hex_digests)).hexdigest()


def oms_statement(
    files: list[tuple[str, str]], model_name: str, ignore_paths: list[str] | None = None
) -> dict:
    """The OMS v1.0 in-toto statement for ``(relative posix path, sha256 hex)`` pairs.

    ``ignore_paths`` are added to the default ignore list (git paths and ``model.sig``); a file
    under an ignored path cannot be listed (the verifier would never hash it).

    >>> oms_statement([(".git/HEAD", "00" * 32)], "m")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: model file '.git/HEAD' is under an ignored path ...
    """
    ignores = _ignore_list(ignore_paths)
    seen: set[str] = set()
    for name, digest in files:
        _check_name(name)
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ModelKitError(f"model file {name!r} has an invalid sha256 digest {digest!r}")
        if name in seen:
            raise ModelKitError(f"model file {name!r} is listed twice")
        if _is_ignored(name, ignores):
            raise ModelKitError(
                f"model file {name!r} is under an ignored path and cannot be signed "
                "(drop it with signable_files())"
            )
        seen.add(name)
    if not files:
        raise ModelKitError("an OMS signature needs at least one file")
    ordered = sorted(files, key=lambda f: f[0].split("/"))
    resources = [{"name": n, "algorithm": "sha256", "digest": d} for n, d in ordered]
    serialization = {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": ignores,
    }
    return dsse.statement(
        [{"name": model_name, "digest": {"sha256": root_digest(d for _, d in ordered)}}],
        OMS_PREDICATE,
        {"serialization": serialization, "resources": resources},
    )


def hash_model_dir(model_dir: str, ignore_paths: list[str] | None = None) -> list[tuple[str, str]]:
    """``(relative posix path, sha256 hex)`` of every regular file under ``model_dir``, minus ignored paths.

    Symbolic links and special files are refused (model_signing does not follow them either).

    >>> hash_model_dir("/nonexistent")
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: model directory /nonexistent not found
    """
    ignores = list(ignore_paths) if ignore_paths is not None else list(DEFAULT_IGNORE_PATHS)
    if not os.path.isdir(model_dir):
        raise ModelKitError(f"model directory {model_dir} not found")
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(model_dir, followlinks=False):
        rel_dir = os.path.relpath(dirpath, model_dir).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(rel_dir + d, ignores))
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                raise ModelKitError(
                    f"model file {rel_dir + d!r} is a symbolic link: symlinks cannot be signed"
                )
        for name in sorted(filenames):
            rel = rel_dir + name
            if _is_ignored(rel, ignores):
                continue
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                raise ModelKitError(f"model file {rel!r} is a symbolic link: symlinks cannot be signed")
            if not stat.S_ISREG(st.st_mode):
                raise ModelKitError(f"model file {rel!r} is not a regular file")
            out.append((rel, file_sha256(full)))
    return out


def _signed_manifest(bundle: bytes, public_keys: list) -> tuple[dict, dict[str, str], list[str]]:
    """Verify an OMS bundle's signature and internal consistency; return (statement, files, ignore_paths)."""
    st, _key = dsse.verify_bundle(bundle, public_keys)
    files, ignores = signed_files(st)
    return st, files, ignores


def signed_files(st: dict) -> tuple[dict[str, str], list[str]]:
    """The ``{path: sha256 hex}`` files and the ``ignore_paths`` an OMS v1.0 statement lists, checked.

    Raises :class:`VerificationError` unless the statement is an OMS v1.0 ``files``/sha256 manifest
    whose subject is the root digest of its resources (the checks model_signing makes before hashing).

    >>> files, ignores = signed_files(oms_statement([("w.bin", "00" * 32)], "m"))
    >>> files, ignores[-1]
    ({'w.bin': '0000000000000000000000000000000000000000000000000000000000000000'}, 'model.sig')
    """
    if not isinstance(st, dict) or st.get("predicateType") != OMS_PREDICATE:
        got = st.get("predicateType") if isinstance(st, dict) else None
        raise VerificationError(f"not an OMS v1.0 signature: predicateType {got!r}")
    pred = st.get("predicate")
    ser = pred.get("serialization") if isinstance(pred, dict) else None
    if not isinstance(ser, dict) or ser.get("method") != "files" or ser.get("hash_type") != "sha256":
        raise VerificationError("OMS signature must use the 'files' method with sha256")
    ignores = ser.get("ignore_paths") or []
    if not isinstance(ignores, list) or not all(isinstance(p, str) for p in ignores):
        raise VerificationError("OMS signature has a malformed ignore_paths list")
    resources = pred.get("resources")
    if not isinstance(resources, list) or not resources:
        raise VerificationError("OMS signature lists no files")
    files: dict[str, str] = {}
    for r in resources:
        name = r.get("name") if isinstance(r, dict) else None
        digest = r.get("digest") if isinstance(r, dict) else None
        if not isinstance(name, str) or not isinstance(digest, str) or not _HEX64.match(digest):
            raise VerificationError(f"OMS signature has a malformed resource {r!r:.80}")
        if r.get("algorithm") != "sha256":
            raise VerificationError(
                f"OMS resource {name!r} uses algorithm {r.get('algorithm')!r}, not sha256"
            )
        if name in files:
            raise VerificationError(f"OMS signature lists {name!r} twice")
        files[name] = digest
    root = root_digest(r["digest"] for r in resources)
    if dsse.subject_digests(st)[:1] != [root]:
        raise VerificationError(
            f"OMS manifest is inconsistent: root digest is {root}, the subject says otherwise"
        )
    return files, ignores


def _compare(signed: dict[str, str], actual: dict[str, str], where: str) -> None:
    problems: list[tuple[str, str]] = []
    for name in signed.keys() | actual.keys():
        if name not in actual:
            problems.append((name, f"file {name!r} is missing from {where}"))
        elif name not in signed:
            problems.append((name, f"extra file {name!r} in {where} is not covered by the signature"))
        elif signed[name] != actual[name]:
            got, want = actual[name][:12], signed[name][:12]
            problems.append((name, f"file {name!r} in {where} changed: sha256 {got}…, signed {want}…"))
    if problems:
        problems.sort(key=lambda p: p[0].split("/"))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationError(f"model signature mismatch: {problems[0][1]}{more}")


def verify_oms_files(bundle: bytes, files: list[tuple[str, str]], public_keys: list) -> dict:
    """Verify an OMS bundle against already computed ``(path, sha256 hex)`` pairs; return the statement.

    Use this to check a kit's files before writing them; :func:`verify_oms` re-hashes a directory.

    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> k = ec.generate_private_key(ec.SECP256R1())
    >>> bundle = dsse.sign_bundle(oms_statement([("w.bin", "00" * 32)], "m"), k, hint="model_signing")
    >>> verify_oms_files(bundle, [("w.bin", "00" * 32)], [k.public_key()])["predicateType"]
    'https://model_signing/signature/v1.0'

    >>> verify_oms_files(b"{}", [], [])
    Traceback (most recent call last):
    ...
    mlflow_plugin.trust.dsse.VerificationError: not a Sigstore bundle v0.1-v0.3: mediaType None
    """
    st, signed, ignores = _signed_manifest(bundle, public_keys)
    actual = {n: d for n, d in files if not _is_ignored(n, [*ignores, SIGNATURE_NAME])}
    _compare(signed, actual, "the model")
    return st


def verify_oms(bundle: bytes, model_dir: str, public_keys: list) -> None:
    """Verify an OMS bundle with the trusted keys and require ``model_dir`` to match it exactly.

    The directory is re-hashed, skipping the signed ``ignore_paths`` and ``model.sig``; the first
    missing, extra or changed file is named in the :class:`VerificationError`.

    >>> verify_oms(open("out/model.sig", "rb").read(), "out", ["keys/cosign.pub"])  # doctest: +SKIP
    """
    _st, signed, ignores = _signed_manifest(bundle, public_keys)
    try:
        actual = dict(hash_model_dir(model_dir, [*ignores, SIGNATURE_NAME]))
    except VerificationError:
        raise
    except ModelKitError as e:
        raise VerificationError(str(e)) from None
    except OSError as e:
        raise VerificationError(f"cannot read {model_dir}: {e.strerror} ({e.filename})") from None
    _compare(signed, actual, model_dir)
