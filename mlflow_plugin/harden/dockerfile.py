"""A container recipe that serves one kit, pinned by digest, verified at start-up, as a non-root user.

>>> r = recipe("localhost:5000/team/fraud@sha256:" + "ab" * 32, KEY_EXAMPLE, base="python:3.11-slim")
>>> [ln for ln in r.dockerfile.splitlines() if ln.startswith(("FROM", "USER"))]
['FROM python:3.11-slim', 'USER 10001:10001']
>>> "exec \\"$MLFLOW\\" models serve" in r.entry and r.key_name.endswith(".pub")
True

The same recipe as ONE self-contained Dockerfile (what ``mlflow-modelkit dockerfile REF`` prints
without ``-o``): the entry script and the key are embedded as BuildKit heredocs, byte for byte, so
``docker build - < Dockerfile`` needs no build context:

>>> single = r.single_file()
>>> single.splitlines()[0]
'# syntax=docker/dockerfile:1.10'
>>> for ln in single.splitlines():
...     if ln.startswith("COPY"):
...         print(ln)
COPY --chown=0:0 --chmod=0444 <<'MODELKIT_KEY' /etc/modelkit/7e8d1d87...9f.pub
COPY --chown=0:0 --chmod=0555 <<'MODELKIT_ENTRY' /usr/local/bin/modelkit-entry.sh
>>> heredoc(single, "MODELKIT_ENTRY") == r.entry and heredoc(single, "MODELKIT_KEY") == KEY_EXAMPLE.decode()
True

What the generated files do (``write_recipe`` writes ``Dockerfile``, ``modelkit-entry.sh`` and
``<sha256 of the key>.pub`` into one directory):

* **build**: installs ``mlflow-modelkit``, verifies the kit (deep) against the baked public key,
  unpacks it into ``/opt/modelkit/model`` owned by root with files 0444 and directories 0555,
  installs the model's ``requirements.txt`` (``--require-hashes`` when it carries hashes), creates
  the user ``modelkit`` (UID/GID 10001) and switches to it;
* **start** (``modelkit-entry.sh``): checks the key file is the one the image was made with (its
  SHA-256), re-verifies ``HOST/REPO@sha256:…`` with it, checks every unpacked file against the
  signed file index and model_signing bundle (``mlflow-modelkit serve … --from-dir … --check-only``),
  then ``exec mlflow models serve --env-manager local -h 0.0.0.0`` with the digest in the
  ``X-ModelKit-Digest`` response header.

Registry credentials are never written into the recipe: the build reads the password from a
BuildKit secret (``--secret id=registry_password``), the running container from its environment.

**Encrypted kits** (layers ``…+encrypted``, containers/ocicrypt's format, ``publish --encrypt-for``):
the verify-and-unpack build step mounts the recipient's private key as the BuildKit secret
``modelkit_decrypt_key`` and sets ``MLFLOW_MODELKIT_DECRYPT_KEYS=/run/secrets/modelkit_decrypt_key``
for that one command only (never ``ENV``), so the key is never copied into any image layer::

    docker build --secret id=modelkit_decrypt_key,src=enc.key - < Dockerfile
    docker run -v "$PWD/enc.key:/run/secrets/enc.key:ro" \
        -e MLFLOW_MODELKIT_DECRYPT_KEYS=/run/secrets/enc.key IMAGE

The entry script refuses to start (one line on stderr, exit 1) when ``MLFLOW_MODELKIT_DECRYPT_KEYS``
is unset, and unsets it before the model server starts. Encrypted layers carry no file index, so the
recipe cannot see where the MLflow model is: it serves the kit root unless ``--model PATH`` is given
(a warning says so) and installs ``requirements.txt`` if the unpacked model has one.

>>> e = recipe("localhost:5000/team/fraud@sha256:" + "ab" * 32, KEY_EXAMPLE, encrypted=True)
>>> "--mount=type=secret,id=modelkit_decrypt_key,required=true" in e.dockerfile
True
>>> "ENV MLFLOW_MODELKIT_DECRYPT_KEYS" in e.dockerfile
False
>>> 'if [ -z "${MLFLOW_MODELKIT_DECRYPT_KEYS:-}" ]' in e.entry
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugin._version import __version__
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.serve import DIGEST_HEADER
from mlflow_plugin.kit.fileindex import parse_file_index
from mlflow_plugin.trust.keys import EXAMPLE_PUB_PEM

DEFAULT_BASE = "python:3.11-slim"  # a tag: pass --base python:3.11-slim@sha256:… to pin it
MODEL_DIR = "/opt/modelkit/model"
KEY_DIR = "/etc/modelkit"
UID = 10001
ENTRY = "modelkit-entry.sh"
_IMAGE = re.compile(
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@sha256:[0-9a-f]{64})?\Z"
)
_PINNED = re.compile(r"@sha256:[0-9a-f]{64}\Z")
KEY_EXAMPLE = EXAMPLE_PUB_PEM.encode()  # for the examples
DECRYPT_SECRET = "modelkit_decrypt_key"  # BuildKit secret id of an encrypted kit's private key
DECRYPT_ENV = "MLFLOW_MODELKIT_DECRYPT_KEYS"
_PEM_PUBLIC = re.compile(
    rb"-----BEGIN PUBLIC KEY-----\n(?:[A-Za-z0-9+/=]{1,76}\n){1,64}-----END PUBLIC KEY-----\n"
)


@dataclass
class Recipe:
    """The generated files: ``dockerfile``, ``entry`` (shell), the key as ``key_name`` (``key_pem``)."""

    reference: str  # HOST/REPO@sha256:…
    dockerfile: str
    entry: str
    key_name: str
    key_pem: bytes
    model_path: str = "."  # the MLflow model directory inside the kit
    warnings: list[str] = field(default_factory=list)
    encrypted: bool = False  # the kit has ocicrypt layers: the build needs the decryption-key secret

    def single_file(self) -> str:
        """One self-contained Dockerfile embedding the key and entry script (:func:`inline_dockerfile`)."""
        return inline_dockerfile(self)


def check_base(base: str) -> str:
    """``base`` if it is a plain image reference (``NAME[:TAG][@sha256:…]``), else one-line error.

    >>> check_base("python:3.11-slim@sha256:" + "0" * 64)[-8:]
    '00000000'
    >>> check_base("python:3.11 AS x\\nRUN curl evil")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: invalid --base 'python:3.11 AS x\\nRUN curl evil': expected ...
    """
    if not isinstance(base, str) or not _IMAGE.match(base):
        raise ModelKitError(f"invalid --base {base!r}: expected IMAGE[:TAG][@sha256:<64 hex>]")
    return base


def check_pinned(reference: str) -> tuple[str, str]:
    """``(HOST/REPO, sha256:…)`` of a registry reference pinned by digest (one-line error otherwise)."""
    from mlflow_plugin.storage.reference import Reference

    ref = Reference.parse(reference)
    if not ref.digest or ref.tag:
        raise ModelKitError(f"{reference}: expected HOST/REPO@sha256:<digest>")
    return f"{ref.registry}/{ref.repository}", ref.digest


def public_key_file(key_pem: bytes) -> tuple[str, bytes]:
    """``(<sha256 hex>.pub, PEM)`` for ONE P-256 public key in PEM form; anything else is refused.

    The PEM is returned canonical (``\\n`` line ends, one final newline), the bytes baked into the
    image; text around the block, a second block or a private key is refused with one line.

    >>> public_key_file(KEY_EXAMPLE)[0][:8]
    '7e8d1d87'
    >>> public_key_file(KEY_EXAMPLE.replace(b"\\n", b"\\r\\n").rstrip()) == public_key_file(KEY_EXAMPLE)
    True
    >>> public_key_file(KEY_EXAMPLE + KEY_EXAMPLE)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlflow_plugin.errors.ModelKitError: --key must hold exactly one PEM public key (...) and nothing else
    """
    from mlflow_plugin.trust.keys import load_public_key

    if b"PRIVATE KEY" in key_pem:
        raise ModelKitError("--key must be a public key (cosign.pub), not a private key")
    pem = key_pem.replace(b"\r\n", b"\n").strip() + b"\n"
    if not _PEM_PUBLIC.fullmatch(pem):
        raise ModelKitError("--key must hold exactly one PEM public key (cosign.pub) and nothing else")
    try:
        load_public_key(pem)
    except (ModelKitError, ValueError):
        raise ModelKitError("--key is not an ECDSA P-256 public key in PEM form") from None
    return hashlib.sha256(pem).hexdigest() + ".pub", pem


def delimiter(name: str, content: str) -> str:
    """A heredoc delimiter, ``name`` or ``name_2``, ``name_3``…, that is no line of ``content``.

    >>> delimiter("MODELKIT_KEY", "a\\nMODELKIT_KEY\\nMODELKIT_KEY_2\\n")
    'MODELKIT_KEY_3'
    """
    lines = set(content.splitlines())
    candidate, n = name, 1
    while candidate in lines:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def heredoc(dockerfile: str, name: str) -> str:
    """The content of the heredoc ``<<'name'`` in ``dockerfile`` (for checks and tests), '' if absent.

    >>> heredoc("COPY <<'X' /f\\nhello\\nX\\n", "X")
    'hello\\n'
    """
    lines = dockerfile.splitlines(keepends=True)
    opener = f"<<'{name}' "
    for i, line in enumerate(lines):
        if line.startswith(("COPY ", "RUN ")) and opener in line:
            body: list[str] = []
            for ln in lines[i + 1 :]:
                if ln.rstrip("\n") == name:
                    return "".join(body)
                body.append(ln)
    return ""


_VERIFY_NOTE = (
    "# verify (signature, attestations, scan verdict, every blob) and unpack, root-owned and read-only"
)


def _copies_from_context(key_name: str) -> str:
    return (
        f"COPY --chown=0:0 --chmod=0444 {key_name} {KEY_DIR}/{key_name}\n"
        f"COPY --chown=0:0 --chmod=0555 {ENTRY} /usr/local/bin/{ENTRY}\n"
    )


def _build_hint(encrypted: bool, single: bool) -> str:
    secrets = "[--secret id=registry_password,env=MLFLOW_MODELKIT_REGISTRY_PASSWORD]"
    if encrypted:
        secrets = f"--secret id={DECRYPT_SECRET},src=enc.key {secrets}"
    return f"# Build: docker build {secrets} {'- < Dockerfile' if single else '.'}\n"


def inline_dockerfile(r: Recipe) -> str:
    """``r`` as one self-contained Dockerfile: the key and the entry script embedded as heredocs.

    The delimiters (``MODELKIT_KEY``, ``MODELKIT_ENTRY``) are quoted, so BuildKit copies the
    content byte for byte without expanding ``$``; a delimiter that is a line of its content is
    replaced by another (:func:`delimiter`). The result needs no build context (``docker build -``).
    """
    if not r.entry.endswith("\n") or not r.key_pem.endswith(b"\n"):
        raise ModelKitError("internal: heredoc content must end with a newline")
    key_text = r.key_pem.decode("ascii")
    kd = delimiter("MODELKIT_KEY", key_text)
    ed = delimiter("MODELKIT_ENTRY", r.entry)
    embedded = (
        f"# the public key the image verifies with (sha256 {r.key_name.removesuffix('.pub')})\n"
        f"COPY --chown=0:0 --chmod=0444 <<'{kd}' {KEY_DIR}/{r.key_name}\n{key_text}{kd}\n"
        f"# the entry script: re-verify the pinned kit and its unpacked files, then serve\n"
        f"COPY --chown=0:0 --chmod=0555 <<'{ed}' /usr/local/bin/{ENTRY}\n{r.entry}{ed}\n"
    )
    text = r.dockerfile
    for old, new in (
        (_copies_from_context(r.key_name), embedded),
        (_build_hint(r.encrypted, False), _build_hint(r.encrypted, True)),
    ):
        if text.count(old) != 1:
            raise ModelKitError("internal: the recipe's Dockerfile is not the one recipe() wrote")
        text = text.replace(old, new)
    return text


def recipe(
    reference: str,
    key_pem: bytes,
    base: str = DEFAULT_BASE,
    model_path: str = ".",
    require_hashes: bool = False,
    encrypted: bool = False,
) -> Recipe:
    """The Dockerfile and entry script for the pinned ``reference`` (see the module's docstring).

    ``encrypted`` (the kit has ``+encrypted`` layers) adds the decryption-key secret to the build
    step that verifies and unpacks, and the start-up check for ``MLFLOW_MODELKIT_DECRYPT_KEYS``.
    """
    check_base(base)
    _store, digest = check_pinned(reference)
    key_name, pem = public_key_file(key_pem)
    key_sha = key_name.removesuffix(".pub")
    model = MODEL_DIR if model_path in ("", ".") else f"{MODEL_DIR}/{model_path.strip('/')}"
    q = shlex.quote
    pin_note = (
        "# base image pinned by digest"
        if _PINNED.search(base)
        else f"# base image by tag: pin it (--base {base}@sha256:<digest>) for reproducible builds"
    )
    req = f"{model}/requirements.txt"
    pip_req = (
        f"pip install --no-cache-dir --require-hashes -r {q(req)}"
        if require_hashes
        else f"pip install --no-cache-dir -r {q(req)}"
    )
    if encrypted:
        mounts = (
            f"RUN --mount=type=secret,id=registry_password,env=MLFLOW_MODELKIT_REGISTRY_PASSWORD \\\n"
            f"    --mount=type=secret,id={DECRYPT_SECRET},required=true \\\n"
        )
        keys = f"{DECRYPT_ENV}=/run/secrets/{DECRYPT_SECRET} "
        enc_note = (
            "# the kit's layers are encrypted (ocicrypt): the recipient's private key is a BuildKit\n"
            f"# secret, mounted only for this step and never stored in the image:\n"
            f"#   docker build --secret id={DECRYPT_SECRET},src=enc.key ...\n"
            "# the container needs it at start-up too (the entry script refuses to start without it):\n"
            f'#   docker run -v "$PWD/enc.key:/run/secrets/enc.key:ro" \\\n'
            f"#       -e {DECRYPT_ENV}=/run/secrets/enc.key IMAGE\n"
        )
    else:
        mounts = "RUN --mount=type=secret,id=registry_password,env=MLFLOW_MODELKIT_REGISTRY_PASSWORD \\\n"
        keys = enc_note = ""
    dockerfile = f"""# syntax=docker/dockerfile:1.10
# Generated by mlflow-modelkit {__version__} dockerfile: serves {reference}
{_build_hint(encrypted, False)}{pin_note}
FROM {base}
ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\
    MODELKIT_REF={reference} \\
    MODELKIT_KEY={KEY_DIR}/{key_name} \\
    MODELKIT_MODEL_DIR={MODEL_DIR}
ARG MLFLOW_MODELKIT_REGISTRY_USERNAME=
RUN pip install --no-cache-dir "mlflow-modelkit=={__version__}"
{_copies_from_context(key_name)}{_VERIFY_NOTE}
{enc_note}{mounts}    {keys}mlflow-modelkit verify {reference} --key {KEY_DIR}/{key_name} \\
 && {keys}mlflow-modelkit unpack {reference} -d {MODEL_DIR} \\
 && chown -R 0:0 {MODEL_DIR} \\
 && find {MODEL_DIR} -type d -exec chmod 0555 {{}} + \\
 && find {MODEL_DIR} -type f -exec chmod 0444 {{}} +
# the model's own requirements, from the verified kit
RUN if [ -f {q(req)} ]; then {pip_req}; fi
RUN groupadd --system --gid {UID} modelkit \\
 && useradd --system --uid {UID} --gid {UID} --no-create-home --home-dir /nonexistent \\
    --shell /usr/sbin/nologin modelkit
USER {UID}:{UID}
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/{ENTRY}"]
"""
    enc_check = (
        f"""if [ -z "${{{DECRYPT_ENV}:-}}" ]; then
    echo "error: $REF is encrypted: mount the decryption key and set {DECRYPT_ENV} (docker run \
-v enc.key:/run/secrets/enc.key:ro -e {DECRYPT_ENV}=/run/secrets/enc.key)" >&2
    exit 1
fi
"""
        if encrypted
        else ""
    )
    entry = f"""#!/bin/sh
# Generated by mlflow-modelkit {__version__}: verify {reference} with the baked key, check the
# unpacked model against the signed file index, then serve it. The kit is pinned; paths may be
# overridden (MODELKIT_KEY, MODELKIT_MODEL_DIR, MODELKIT_HOST, MODELKIT_PORT, MODELKIT_CLI, MODELKIT_MLFLOW).
set -eu
REF={q(reference)}
KEY_SHA256={key_sha}
KEY="${{MODELKIT_KEY:-{KEY_DIR}/{key_name}}}"
MODEL_DIR="${{MODELKIT_MODEL_DIR:-{MODEL_DIR}}}"
MODEL_PATH={q(model_path)}
HOST="${{MODELKIT_HOST:-0.0.0.0}}"
PORT="${{MODELKIT_PORT:-8080}}"
CLI="${{MODELKIT_CLI:-mlflow-modelkit}}"
MLFLOW="${{MODELKIT_MLFLOW:-mlflow}}"
{enc_check}
got=$(sha256sum "$KEY" 2>/dev/null | cut -d' ' -f1) || got=
if [ "$got" != "$KEY_SHA256" ]; then
    echo "error: $KEY is not the public key this image was made for (sha256 $KEY_SHA256)" >&2
    exit 1
fi
"$CLI" verify "$REF" --key "$KEY" >&2 || exit 1
"$CLI" serve "$REF" --key "$KEY" --from-dir "$MODEL_DIR" --model "$MODEL_PATH" --check-only >&2 || exit 1
# the model server needs no credentials and no decryption key
unset MLFLOW_MODELKIT_REGISTRY_PASSWORD MLFLOW_MODELKIT_KEY_PASSWORD \\
    MLFLOW_TRACKING_PASSWORD MLFLOW_TRACKING_TOKEN {DECRYPT_ENV}
UVICORN_HEADERS="{DIGEST_HEADER}:{digest}${{UVICORN_HEADERS:+ $UVICORN_HEADERS}}"
export UVICORN_HEADERS
echo "serving $REF from $MODEL_DIR/$MODEL_PATH" >&2
exec "$MLFLOW" models serve -m "$MODEL_DIR/$MODEL_PATH" --env-manager local -h "$HOST" -p "$PORT"
"""
    return Recipe(reference, dockerfile, entry, key_name, pem, model_path, encrypted=encrypted)


def is_encrypted(manifest: dict[str, Any]) -> bool:
    """Whether any layer of ``manifest`` is encrypted (ocicrypt: a media type ending ``+encrypted``).

    >>> is_encrypted({"layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"}]})
    True
    """
    return any(
        str(layer.get("mediaType", "")).endswith("+encrypted")
        for layer in manifest.get("layers") or []
        if isinstance(layer, dict)
    )


def write_recipe(
    ref: str,
    out_dir: str | None,
    key: str,
    base: str = DEFAULT_BASE,
    model: str | None = None,
    decrypt_keys: list[str] | None = None,
    **registry_options: Any,
) -> Recipe:
    """Pin ``ref`` (resolved once), check it verifies with ``key``, and write the recipe to ``out_dir``.

    ``decrypt_keys`` (recipient private keys) open an encrypted kit's attestations for that check;
    they are read here only and never written into the recipe.

    With ``out_dir=None`` nothing is written anywhere: the caller prints :meth:`Recipe.single_file`.
    Raises :class:`~mlflow_plugin.errors.ModelKitError` (one line) for bad input, and
    :class:`~mlflow_plugin.harden.serve.ServeRefused` for a kit that does not verify with ``key``.
    """
    from mlflow_plugin.drafts.draft import DraftKit
    from mlflow_plugin.harden.serve import pin, verify_pinned
    from mlflow_plugin.harden.verify import TrustPolicy
    from mlflow_plugin.storage.locations import open_location

    check_base(base)
    try:
        with open(key, "rb") as f:
            key_pem = f.read(1 << 16)
    except OSError as e:
        raise ModelKitError(f"--key {key}: {e.strerror}") from None
    public_key_file(key_pem)
    if ref.startswith("oci:"):
        raise ModelKitError(f"{ref}: a container recipe needs a registry reference (HOST/REPO:TAG)")
    pinned, digest = pin(ref, **registry_options)
    policy = TrustPolicy(trusted_keys=[key_pem], decrypt_keys=list(decrypt_keys or []))
    verify_pinned(pinned, policy, deep=False, **registry_options)
    repo, loc = open_location(pinned, **registry_options)
    warnings: list[str] = []
    try:
        data, _mt, _d = repo.get_manifest(loc.reference or "")
        manifest = json.loads(data)
        encrypted = is_encrypted(manifest)
        paths = [rec[0] for layer in manifest.get("layers") or [] for rec in parse_file_index(layer)]
        models = sorted(os.path.dirname(p) or "." for p in paths if os.path.basename(p) == "MLmodel")
        hashes = False
        if encrypted and not paths:
            model_path = os.path.normpath((model or ".").strip("/") or ".")
            if model_path.startswith(".."):
                raise ModelKitError(f"--model {model}: must be a path inside the kit")
            warnings.append(
                f"{pinned} is encrypted: its layers carry no file index, so the MLflow model cannot be "
                + (
                    f"checked here; serving --model {model_path}"
                    if model
                    else "located here; serving the kit root (pass --model PATH if MLmodel is elsewhere)"
                )
            )
        elif model is not None:
            model_path = os.path.normpath(model.strip("/") or ".")
            if model_path not in models:
                raise ModelKitError(f"--model {model}: no MLmodel there in {pinned}")
        elif len(models) > 1:
            raise ModelKitError(f"{pinned} holds several MLflow models ({', '.join(models)}): use --model")
        else:
            model_path = models[0] if models else "."
        req_path = "requirements.txt" if model_path == "." else f"{model_path}/requirements.txt"
        if req_path in paths:
            kit = DraftKit(repo, digest, read_only=True)
            tmpdir = tempfile.mkdtemp(prefix="modelkit-recipe-")  # never the output directory or cwd
            tmp = os.path.join(tmpdir, "requirements.txt")
            try:
                kit.read_file(req_path, tmp)  # checked against the signed file index
                with open(tmp, encoding="utf-8", errors="replace") as f:
                    lines = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
            finally:
                shutil.rmtree(tmpdir, ignore_errors=True)
            hashes = any("--hash=" in ln for ln in lines)
            loose = [ln for ln in lines if not ln.startswith("-") and "==" not in ln and "@" not in ln]
            if loose:
                warnings.append(
                    f"{req_path} has unpinned requirements ({', '.join(loose[:5])}): the image installs "
                    "whatever versions are current at build time; pin them (==) or add --hash"
                )
        elif not encrypted:
            warnings.append(
                "the kit has no requirements.txt next to MLmodel: only mlflow-modelkit is installed"
            )
    finally:
        repo.close()
    r = recipe(pinned, key_pem, base=base, model_path=model_path, require_hashes=hashes, encrypted=encrypted)
    r.warnings = warnings
    if out_dir is None:
        r.single_file()  # built (and its heredoc delimiters checked) before anything is printed
        return r
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "Dockerfile"), "w", encoding="utf-8") as f:
        f.write(r.dockerfile)
    entry = os.path.join(out_dir, ENTRY)
    with open(entry, "w", encoding="utf-8") as f:
        f.write(r.entry)
    os.chmod(entry, 0o755)
    with open(os.path.join(out_dir, r.key_name), "wb") as fb:
        fb.write(r.key_pem)
    return r


__all__ = [
    "DEFAULT_BASE",
    "Recipe",
    "check_base",
    "check_pinned",
    "delimiter",
    "heredoc",
    "inline_dockerfile",
    "is_encrypted",
    "public_key_file",
    "recipe",
    "write_recipe",
]
