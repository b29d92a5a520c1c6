"""Nothing secret leaks (issue 12, requirement 7): every command and MLflow flow, then one grep everywhere.

One module-scoped world runs, against the session's real TLS + htpasswd ``auth_registry`` and a
SQLite tracking store, every ``mlflow-modelkit`` command (``-v``, so debug details are printed too)
and the MLflow flows, with DISTINCTIVE secrets:

* the registry password (``login --password-stdin`` into a temp ``DOCKER_CONFIG``, then
  ``MLFLOW_MODELKIT_REGISTRY_PASSWORD``) and a wrong one;
* the signing-key passphrase (``MLFLOW_MODELKIT_KEY_PASSWORD``) and a wrong one;
* a param ``db_password`` and a tag ``hf_token`` (redacted by name when published);
* an AWS key id in a param under an innocent name (``note``): publishing that run is BLOCKED;
* the private key: a body line of the encrypted ``cosign.key``, a body line of its decrypted
  PKCS#8 PEM and its private scalar in hex.

Encrypted kits too: recipient keys from ``keygen --encryption`` (EC, its passphrase a secret) and
``--encryption-rsa`` (unprotected), and a stranger's; a confidential run (its drafts in a local
layout) published ``--encrypt-for`` into the registry; ``unpack``/``verify``/``scan``/
``provenance``/``serve --check-only``/``dockerfile``/``rescan`` with ``--decrypt-key``, the
MLflow ``modelkit://`` download with ``MLFLOW_MODELKIT_DECRYPT_KEYS``; a non-recipient, a wrong
and a missing key passphrase. Each recipient private key (a PEM body slice) is a secret, and so
is every AES layer key once the kit exists (opened as a recipient). No ``"symkey"`` field of
ocicrypt's private options is readable anywhere, and the run's file and directory names, file
content, param and tag values, run and experiment names are nowhere in the registry's storage or
in what a non-recipient is shown -- while the recipient gets them all.

Failing cases run too: wrong passphrase, wrong registry password, an unreachable registry, a
blocked publish, an unsigned draft under verify-on-load. Then every secret is looked for -- raw,
URL-encoded, and inside base64 runs two levels deep (``user:password`` basic auth included) -- in
every CLI output and exception, the ``serve`` subprocess output, every log record at DEBUG, the
published kit's Kitfile, provenance, ML-BOM and scan report, the runs as MLflow stores them, the
``dockerfile`` output, every file we wrote, the scan caches and every file of the registry's
workdir (storage and log). A leak fails naming the step and the place.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from _envhelpers import clean_env, end_runs, use_tracking
from _kithelpers import make_case0_context
from _registries import RegistryServer, free_port
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlflow_plugin.cli import main
from mlflow_plugin.config import load_config
from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.harden.publish import publish_run
from mlflow_plugin.storage.locations import open_location
from mlflow_plugin.storage.transport import reset_connections
from mlflow_plugin.trust import attach
from mlflow_plugin.trust.keys import load_private_key
from mlflow_plugin.trust.redact import REDACTED

pytestmark = pytest.mark.registry

CLI = str(Path(sys.executable).with_name("mlflow-modelkit"))
_rng = random.SystemRandom()

PASSPHRASE = "Quokka-passphrase-8c1f-Tangerine"
WRONG_PASSPHRASE = "Wombat-wrongphrase-3e7a-Pumice"
WRONG_REG_PASSWORD = "Axolotl-wrongregpw-77d1-Basalt"
ENC_PASSPHRASE = "Pangolin-encphrase-4b9d-Obsidian"  # protects the recipient key enc-a/enc.key
DB_PASSWORD = "Narwhal-dbpw-5f2c91ab-Lichen"
HF_TOKEN = "hf_" + "".join(
    _rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(34)
)
INNOCENT = "AKIA" + "".join(_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
# an index override: a HIGH finding the publisher accepts with --accept
REQS = b"--extra-index-url https://mirror.internal/simple\nscikit-learn\n"
ACCEPT = ("--accept", "env.index-override:extra/requirements.txt", "--reason", "our internal mirror")

# load a model in a fresh process; print the exception type and message (exit 3) if it fails
LOAD = """
import logging, sys, mlflow
logging.basicConfig(level=logging.DEBUG)
logging.getLogger("mlflow_plugin").setLevel(logging.DEBUG)
mlflow.set_tracking_uri("sqlite:///" + sys.argv[2] + "/../mlflow.db")
try:
    mlflow.pyfunc.load_model(sys.argv[1], dst_path=sys.argv[2])
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(3)
"""
_B64 = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
# the options that open or make encrypted kits: each must have been run (test_every_command_was_run)
ENC_OPTIONS = ("--decrypt-key", "--encrypt-for", "--encryption", "--encryption-rsa")
SYMKEY = b'"symkey"'  # the JSON field of ocicrypt's private layer options (the layer key)


# ---- where a secret could hide -----------------------------------------------------------------------
def layers(data: bytes, depth: int = 0) -> Iterator[bytes]:
    """``data`` and every base64 (or base64url) run of it, decoded, two levels deep."""
    yield data
    if depth >= 2:
        return
    for m in _B64.finditer(data):
        chunk = m.group(0).rstrip(b"=")
        for alt in (None, b"-_"):
            try:
                decoded = base64.b64decode(chunk + b"=" * (-len(chunk) % 4), altchars=alt)
            except (binascii.Error, ValueError):
                continue
            yield from layers(decoded, depth + 1)


def forms(value: str) -> dict[str, bytes]:
    """The raw and URL-encoded forms (base64 is found by decoding, see :func:`layers`)."""
    out = {"raw": value.encode()}
    for name, enc in (
        ("url-encoded", urllib.parse.quote(value, safe="")),
        ("form-encoded", urllib.parse.quote_plus(value)),
    ):
        if enc.encode() not in out.values():
            out[name] = enc.encode()
    return out


def find(data: bytes | str, secrets: dict[str, str]) -> list[str]:
    """``"<secret name> (<form>)"`` for every secret found in ``data`` in any form."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    found: set[str] = set()
    for layer in layers(raw):
        for name, value in secrets.items():
            for form, needle in forms(value).items():
                if needle in layer:
                    found.add(f"{name} ({form}{'' if layer is raw else ', inside base64'})")
    return sorted(found)


def symkey_forms(needle: bytes = SYMKEY) -> list[bytes]:
    """``needle`` as it reads inside any base64 text: for each of the three alignments, the
    characters that depend on its bytes only (standard and URL-safe alphabets)."""
    out: list[bytes] = []
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + needle + b"\0\0")
        core = enc[-(-8 * shift // 6) : 8 * (shift + len(needle)) // 6]
        out += [core, core.translate(bytes.maketrans(b"+/", b"-_"))]
    return out


def plain_symkey(data: bytes | str) -> list[str]:
    """Where a ``"symkey"`` JSON field is readable in ``data``: raw, as base64 at any alignment,
    or inside decoded base64 (two levels deep)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    hits = ["raw"] if SYMKEY in raw else []
    if any(form in raw for form in symkey_forms()):
        hits.append("base64")
    if any(SYMKEY in layer for layer in itertools.islice(layers(raw), 1, None)):
        hits.append("inside base64")
    return hits


def test_symkey_detector_sees_every_form(tmp_path: Path) -> None:
    """Positive control of :func:`plain_symkey`; and a real encrypted descriptor's annotations are clean."""
    from mlflow_plugin.trust import ocicrypt

    opts = json.dumps({"symkey": base64.b64encode(os.urandom(32)).decode(), "digest": "sha256:0"}).encode()
    assert plain_symkey(opts) == ["raw"]
    for prefix in (b"", b"a", b"ab", b'{"x":1,'):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            assert "base64" in plain_symkey(b"pubopts=" + enc(prefix + opts)[:-4]), (prefix, enc)
    nested = base64.b64encode(json.dumps({"p": base64.b64encode(opts).decode()}).encode())
    assert plain_symkey(nested) == ["inside base64"]
    pub, key = ocicrypt.generate_recipient_keypair(str(tmp_path))
    _ct, layer = ocicrypt.encrypt_bytes(b"weights", [ocicrypt.load_recipient(pub)])
    assert plain_symkey(json.dumps(layer.annotations)) == []  # the JWE hides the layer key
    opened = ocicrypt.open_layer(layer.annotations, [ocicrypt.load_decryption_key(key)], layer="x")
    assert len(opened.symkey) == 32


def test_detector_sees_every_form() -> None:
    """Positive control: raw, URL-encoded, basic auth, base64 in a JSON payload, two levels deep."""
    s = {"pw": "S3cr3t/pa55+word=Q"}
    assert find("x S3cr3t/pa55+word=Q y", s) == ["pw (raw)"]
    assert find("x=S3cr3t%2Fpa55%2Bword%3DQ", s) == ["pw (url-encoded)"]
    auth = base64.b64encode(b"alice:S3cr3t/pa55+word=Q").decode()
    assert find(f"Authorization: Basic {auth}", s) == ["pw (raw, inside base64)"]
    inner = base64.b64encode(json.dumps({"auth": auth}).encode()).decode()
    assert find(json.dumps({"payload": inner}), s) == ["pw (raw, inside base64)"]
    assert find("nothing here " + base64.b64encode(b"nothing at all here").decode(), s) == []


# ---- the world ---------------------------------------------------------------------------------------
@dataclass
class World:
    home: Path
    reg: RegistryServer
    secrets: dict[str, str] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (step, text): CLI and subprocesses
    exceptions: list[tuple[str, str]] = field(default_factory=list)  # (step, message + traceback)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (logger level, message + exc text)
    commands: set[str] = field(default_factory=set)
    step: str = ""
    good_run: str = ""
    blocked_run: str = ""
    store: str = ""
    digest: str = ""
    dockerfile_dir: Path | None = None
    # the encrypted kit: what must stay with its recipients, and where they got it
    enc_run: str = ""
    enc_store: str = ""
    enc_digest: str = ""
    confidential: dict[str, str] = field(default_factory=dict)
    public_steps: set[str] = field(default_factory=set)  # steps that ran without a recipient key
    recipient_got: list[tuple[str, str]] = field(default_factory=list)
    secret_homes: set[Path] = field(default_factory=set)  # the private key files themselves

    @property
    def host(self) -> str:
        return self.reg.host

    def cli(self, step: str, *args: str, code: int | tuple[int, ...] = 0, input: str | None = None) -> Result:
        """Run ``mlflow-modelkit -v ARGS`` in process; record everything it printed or raised."""
        self.step = step
        self.commands.add(f"config {args[1]}" if args[0] == "config" else args[0])
        self.commands.update(f"{args[0]} {opt}" for opt in ENC_OPTIONS if opt in args)
        reset_connections()
        r = CliRunner().invoke(main, ["-v", *args], input=input)
        self.outputs.append((f"{step}: stdout", r.stdout))
        self.outputs.append((f"{step}: stderr", r.stderr))
        if r.exc_info is not None and r.exception is not None and not isinstance(r.exception, SystemExit):
            self.exceptions.append((step, "".join(traceback.format_exception(*r.exc_info))))
        codes = (code,) if isinstance(code, int) else code
        assert r.exit_code in codes, f"{step}: exit {r.exit_code}\n{r.output}\n{self.exceptions[-1:]}"
        return r

    def raises(self, step: str, exc: type[BaseException], fn: Any, *args: Any, **kw: Any) -> str:
        """Call ``fn``, which must raise ``exc``; record its message and traceback."""
        self.step = step
        reset_connections()
        with pytest.raises(exc) as ei:
            fn(*args, **kw)
        self.exceptions.append((step, "".join(traceback.format_exception(ei.value))))
        return str(ei.value)


class _Collect(logging.Handler):
    """Every log record at DEBUG, with the step that emitted it (caplog is per test; this is per module)."""

    def __init__(self, world: World) -> None:
        super().__init__(logging.DEBUG)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is still grepped
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.world.logs.append((f"{self.world.step}: {record.name} {record.levelname}", text))


def unreachable() -> str:
    return f"127.0.0.1:{free_port()}"


def log_good_run(w: World, repo: str) -> None:
    from sklearn.linear_model import LogisticRegression

    exp = mlflow.create_experiment(
        f"sec-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{w.host}/{repo}"
    )
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["amount", "age", "score"])
    y = (X["amount"] + X["score"] > 0).astype(int)
    work = Path(tempfile.mkdtemp(dir=w.home))
    (work / "train.csv").write_text(X.assign(label=y).to_csv(index=False))
    (work / "requirements.txt").write_bytes(REQS)
    w.step = "mlflow: log params, tag, artifacts, model"
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_params({"C": "1.0", "db_password": DB_PASSWORD})
        mlflow.set_tag("hf_token", HF_TOKEN)
        mlflow.log_metric("accuracy", 0.9)
        mlflow.log_input(
            mlflow.data.from_pandas(X.assign(label=y), source=str(work / "train.csv"), name="train"),
            context="training",
        )
        mlflow.log_text("# fraud model\n", "notes/README.md")
        mlflow.log_artifact(str(work / "requirements.txt"), "extra")
        mlflow.sklearn.log_model(LogisticRegression(max_iter=100).fit(X, y), name="model")
    w.good_run = run.info.run_id
    w.store = f"{w.host}/{repo}"


def log_blocked_run(w: World, repo: str) -> None:
    exp = mlflow.create_experiment(
        f"blk-{uuid.uuid4().hex[:8]}", artifact_location=f"modelkit://{w.host}/{repo}"
    )
    w.step = "mlflow: log a secret under an innocent name"
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_params({"C": "1.0", "note": INNOCENT})
        mlflow.log_text("hello\n", "notes/a.txt")
    w.blocked_run = run.info.run_id


def log_confidential_run(w: World) -> None:
    """A run whose file names, content and a param value are confidential; its drafts live in a
    local layout, so the registry only ever receives the encrypted kit."""
    from sklearn.linear_model import LogisticRegression

    u = uuid.uuid4().hex[:12]
    w.confidential = {
        "file name": f"confidential-{u}.bin",
        "directory name": f"vault-{u}",
        "param value": f"Confidential-segment-{u}",
        "file content": f"Confidential-content-{u}",
        "tag value": f"Confidential-tag-{u}",
        "run name": f"confidential-run-{u}",
        "experiment name": f"Confidential-experiment-{u}",
    }
    exp = mlflow.create_experiment(
        w.confidential["experiment name"],
        artifact_location=f"modelkit://{w.home / 'enc-drafts' / 'sealed'}",
    )
    src = w.home / "enc-src" / w.confidential["directory name"]
    src.mkdir(parents=True)
    blob = (w.confidential["file content"] + "\n").encode() * 8 + os.urandom(2048)
    (src / w.confidential["file name"]).write_bytes(blob)
    X = pd.DataFrame(np.random.default_rng(5).normal(size=(20, 2)), columns=["a", "b"])
    w.step = "mlflow: log the confidential run"
    with mlflow.start_run(experiment_id=exp, run_name=w.confidential["run name"]) as run:
        mlflow.log_params({"C": "1.0", "segment": w.confidential["param value"]})
        mlflow.set_tag("customer", w.confidential["tag value"])
        mlflow.log_artifact(str(src / w.confidential["file name"]), w.confidential["directory name"])
        mlflow.sklearn.log_model(LogisticRegression().fit(X, (X["a"] > 0).astype(int)), name="model")
    w.enc_run = run.info.run_id


def pem_needle(pem: str | bytes) -> str:
    """40 characters from the middle line of a PEM body: a leak of the key shows them verbatim."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    body = [ln for ln in text.strip().splitlines() if not ln.startswith("-----") and ":" not in ln]
    return body[len(body) // 2][12:52]


def layer_keys(w: World, key: str) -> dict[str, str]:
    """Every AES key of the encrypted kit (its layers and its encrypted attestations), opened as a
    recipient: unknown before publish, secrets from then on (base64 as in the JWE, and hex)."""
    from mlflow_plugin.trust import ocicrypt

    keys = [ocicrypt.load_decryption_key(key)]
    repo, _ = open_location(w.enc_store, settings=load_config().storage_settings())
    try:
        manifest = json.loads(repo.get_manifest(w.enc_digest)[0])
        sealed = [(f"layer {i}", d["annotations"]) for i, d in enumerate(manifest["layers"])]
        sealed += [
            (f"{a.kind} attestation", a.encryption)
            for a in attach.list_attachments(repo, w.enc_digest)
            if a.encryption is not None
        ]
    finally:
        repo.close()
    assert len(sealed) >= len(manifest["layers"]) + 3, sealed  # provenance, scan, ML-BOM, ...
    out: dict[str, str] = {}
    for what, ann in sealed:
        k = ocicrypt.open_layer(ann, keys, layer=what).symkey
        out[f"AES key of the {what} (base64)"] = base64.b64encode(k).decode()
        out[f"AES key of the {what} (base64url)"] = base64.urlsafe_b64encode(k).decode().rstrip("=")
        out[f"AES key of the {what} (hex)"] = k.hex()
    return out


def run_encrypted(w: World, mp: pytest.MonkeyPatch, key: str, pub: str) -> None:
    """Recipient keys, ``publish --encrypt-for`` into the registry, every reader as a recipient, a
    stranger, a wrong or missing passphrase and nobody; the MLflow download as a recipient."""
    from mlflow_plugin.trust import ocicrypt

    home, host = w.home, w.host
    a_dir, b_dir, c_dir = home / "enc-a", home / "enc-b", home / "enc-stranger"
    a_key, b_key, c_key = (str(d / "enc.key") for d in (a_dir, b_dir, c_dir))
    a_pub, b_pub = str(a_dir / "enc.pub"), str(b_dir / "enc.pub")
    w.secret_homes |= {Path(a_key), Path(b_key), Path(c_key)}

    # -- recipient keys: A (EC, passphrase), B (RSA, none), C (EC, none, a stranger)
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", ENC_PASSPHRASE)
    w.cli("keygen --encryption (passphrase)", "keygen", "--encryption", "-o", str(a_dir))
    mp.delenv("MLFLOW_MODELKIT_KEY_PASSWORD")
    w.cli("keygen --encryption-rsa (no passphrase)", "keygen", "--encryption-rsa", "-o", str(b_dir))
    w.cli("keygen --encryption (stranger)", "keygen", "--encryption", "-o", str(c_dir))
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in Path(a_key).read_bytes()
    assert b"ENCRYPTED" not in Path(b_key).read_bytes() + Path(c_key).read_bytes()
    a_priv = ocicrypt.load_decryption_key(a_key, ENC_PASSPHRASE.encode())
    a_plain = a_priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    b_priv = ocicrypt.load_decryption_key(b_key)
    w.secrets.update(
        {
            "recipient key passphrase": ENC_PASSPHRASE,
            "recipient key A (encrypted PEM)": pem_needle(Path(a_key).read_bytes()),
            "recipient key A (PKCS#8 PEM)": pem_needle(a_plain),
            "recipient key A scalar (hex)": format(a_priv.private_numbers().private_value, "064x"),
            "recipient key B (RSA PEM)": pem_needle(Path(b_key).read_bytes()),
            "recipient key B prime p (hex)": format(b_priv.private_numbers().p, "x"),  # type: ignore[union-attr]
            "stranger key C (PEM)": pem_needle(Path(c_key).read_bytes()),
        }
    )

    # -- publish the confidential run, encrypted for A and B, into the auth registry
    log_confidential_run(w)
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)  # the signing key's
    w.enc_store = f"{host}/secrets/sealed-{uuid.uuid4().hex[:6]}"
    r = w.cli(
        "publish --encrypt-for", "publish", w.enc_run, "--tag", "v1", "--key", key,
        "--repository", w.enc_store, "--encrypt-for", a_pub, "--encrypt-for", b_pub, "--json",
    )  # fmt: skip
    w.enc_digest = json.loads(r.stdout)["digest"]
    ref = f"{w.enc_store}:v1"
    mp.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", pub)  # rescan tells published kits by their signer

    # -- what everybody sees (no recipient key): none of the confidential names
    public = [
        ("inspect --json (encrypted)", ("inspect", ref, "--json"), 0),
        ("inspect (encrypted)", ("inspect", ref), 0),
        ("list (encrypted)", ("list", w.enc_store, "--json"), 0),
        ("verify --json (encrypted, no recipient key)", ("verify", ref, "--key", pub, "--json"), 1),
        ("unpack (encrypted, no recipient key)", ("unpack", ref, "-d", str(home / "enc-none")), 2),
        ("scan (encrypted, no recipient key)", ("scan", ref, "--json"), 2),
        ("rescan --dry-run (encrypted, no recipient key)", ("rescan", w.enc_store, "--dry-run"), 0),
    ]
    for step, args, code in public:
        w.cli(step, *args, code=code)
        w.public_steps.add(step)
    assert not (home / "enc-none").exists()

    # -- B (RSA, no passphrase): scan, serve, dockerfile, rescan with a new encrypted attestation
    w.cli("scan --decrypt-key", "scan", ref, "--decrypt-key", b_key, "--json", code=(0, 1))
    w.cli(
        "serve --check-only --decrypt-key", "serve", ref, "--key", pub, "--check-only", "--decrypt-key", b_key
    )
    w.cli(
        "dockerfile --decrypt-key", "dockerfile", ref, "--key", pub, "-o", str(home / "enc-dockerfile"),
        "--decrypt-key", b_key,
    )  # fmt: skip
    w.cli(
        "rescan --decrypt-key --encrypt-for", "rescan", w.enc_store, "--key", key, "--decrypt-key", b_key,
        "--encrypt-for", b_pub, "--json", code=(0, 1),
    )  # fmt: skip

    # -- C, a stranger: not a recipient
    r = w.cli(
        "unpack --decrypt-key (not a recipient)", "unpack", ref, "-d", str(home / "enc-c"),
        "--decrypt-key", c_key, code=2,
    )  # fmt: skip
    assert "error: not a recipient of this kit" in r.stderr and not (home / "enc-c").exists()
    w.cli(
        "provenance --decrypt-key (not a recipient)", "provenance", ref, "--key", pub,
        "--decrypt-key", c_key, code=2,
    )  # fmt: skip
    w.cli(
        "verify --decrypt-key (not a recipient)", "verify", ref, "--key", pub, "--decrypt-key", c_key,
        code=1,
    )  # fmt: skip
    w.public_steps |= {
        "unpack --decrypt-key (not a recipient)",
        "provenance --decrypt-key (not a recipient)",
        "verify --decrypt-key (not a recipient)",
    }

    # -- A, whose key needs its passphrase: wrong, missing, then right
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", WRONG_PASSPHRASE)
    r = w.cli(
        "unpack --decrypt-key (wrong key passphrase)", "unpack", ref, "-d", str(home / "enc-wrong"),
        "--decrypt-key", a_key, code=2,
    )  # fmt: skip
    assert "wrong passphrase for" in r.stderr, r.stderr[-500:]
    w.cli(
        "verify --decrypt-key (wrong key passphrase)", "verify", ref, "--key", pub, "--decrypt-key", a_key,
        code=1,
    )  # fmt: skip
    mp.delenv("MLFLOW_MODELKIT_KEY_PASSWORD")
    r = w.cli(
        "unpack --decrypt-key (no key passphrase)", "unpack", ref, "-d", str(home / "enc-nopass"),
        "--decrypt-key", a_key, code=2,
    )  # fmt: skip
    assert "no passphrase was given" in r.stderr, r.stderr[-500:]
    w.public_steps |= {
        "unpack --decrypt-key (wrong key passphrase)",
        "verify --decrypt-key (wrong key passphrase)",
        "unpack --decrypt-key (no key passphrase)",
    }
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", ENC_PASSPHRASE)
    w.cli("unpack --decrypt-key", "unpack", ref, "-d", str(home / "enc-unpacked"), "--decrypt-key", a_key)
    w.cli("verify --decrypt-key", "verify", ref, "--key", pub, "--decrypt-key", a_key)
    w.cli("provenance --decrypt-key", "provenance", ref, "--key", pub, "--decrypt-key", a_key)
    r = w.cli(
        "provenance --decrypt-key --json", "provenance", ref, "--key", pub, "--decrypt-key", a_key, "--json"
    )
    w.recipient_got.append(("provenance --decrypt-key --json", r.stdout))
    r = w.cli("inspect --decrypt-key --json", "inspect", ref, "--decrypt-key", a_key, "--json")
    w.recipient_got.append(("inspect --decrypt-key --json", r.stdout))
    unpacked = sorted(home.joinpath("enc-unpacked").rglob("*"))
    w.recipient_got.append(("unpacked paths", "\n".join(str(p) for p in unpacked)))
    w.recipient_got += [(str(p), p.read_bytes().decode("latin-1")) for p in unpacked if p.is_file()]

    # -- MLflow: a modelkit:// download under verify-on-load, with MLFLOW_MODELKIT_DECRYPT_KEYS
    uri = f"modelkit://{w.enc_store}@{w.enc_digest}"
    mp.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    mp.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", pub)
    for step, keyfile, phrase in (
        ("download_artifacts (not a recipient)", c_key, ENC_PASSPHRASE),
        ("download_artifacts (wrong key passphrase)", a_key, WRONG_PASSPHRASE),
    ):
        mp.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", keyfile)
        mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", phrase)
        dst = home / step.replace(" ", "-").replace("(", "").replace(")", "")
        w.raises(
            step, MlflowException, mlflow.artifacts.download_artifacts, artifact_uri=uri, dst_path=str(dst)
        )
        assert not dst.exists() or not any(dst.rglob("*")), f"{step}: files were written"
        assert ("not a recipient" if "recipient" in step else "wrong passphrase") in w.exceptions[-1][1]
        w.public_steps.add(step)
    mp.setenv("MLFLOW_MODELKIT_DECRYPT_KEYS", a_key)
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", ENC_PASSPHRASE)
    mp.setenv("MLFLOW_MODELKIT_ENCRYPT_FOR", b_pub)
    w.cli("config show (encryption env)", "config", "show")
    w.step = "mlflow.artifacts.download_artifacts (decrypt keys)"
    reset_connections()
    got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(home / "enc-downloaded")))
    listed = mlflow.artifacts.list_artifacts(artifact_uri=uri)
    conf_file = got / w.confidential["directory name"] / w.confidential["file name"]
    assert conf_file.read_bytes().startswith(w.confidential["file content"].encode())
    w.recipient_got.append(("downloaded paths", "\n".join(str(p) for p in sorted(got.rglob("*")))))
    w.recipient_got.append(("listed", " ".join(f.path for f in listed)))
    for var in ("REQUIRE_SIGNATURE", "TRUSTED_KEYS", "DECRYPT_KEYS", "ENCRYPT_FOR"):
        mp.delenv(f"MLFLOW_MODELKIT_{var}")
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)

    # -- the layer keys, now known: secrets like the others, looked for everywhere
    w.secrets.update(layer_keys(w, b_key))


def serve_once(w: World, ref: str, pub: str) -> None:
    """``serve`` as a real process: start, one ``/ping``, SIGTERM; its output is recorded."""
    w.step = "serve (subprocess)"
    w.commands.add("serve")
    port = free_port()
    err = w.home / "serve.out"
    with open(err, "wb") as f:
        proc = subprocess.Popen(
            [CLI, "-v", "serve", ref, "--key", pub, "--port", str(port)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
        )
    try:
        deadline, ok = time.monotonic() + 60, False
        while time.monotonic() < deadline and proc.poll() is None and not ok:
            with contextlib.suppress(requests.RequestException):
                ok = requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200
            time.sleep(0.2)
        assert ok, f"serve did not answer /ping: {err.read_text(errors='replace')[-3000:]}"
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        w.outputs.append(("serve (subprocess): stdout+stderr", err.read_text(errors="replace")))


@pytest.fixture(scope="module", autouse=True)
def _start_server_early(request: pytest.FixtureRequest) -> None:
    """Launch the session's mlflow server now if a selected test needs it: it starts while we work."""
    if any("mlflow_server" in getattr(item, "fixturenames", ()) for item in request.session.items):
        with contextlib.suppress(pytest.skip.Exception):
            request.getfixturevalue("mlflow_server_started")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, auth_registry: RegistryServer) -> Iterator[World]:
    home = tmp_path_factory.mktemp("secrets-everywhere")
    w = World(home, auth_registry)
    handler = _Collect(w)
    root, plugin = logging.getLogger(), logging.getLogger("mlflow_plugin")
    old_levels = root.level, plugin.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    plugin.setLevel(logging.DEBUG)
    reg = auth_registry
    assert reg.ca
    try:
        with pytest.MonkeyPatch.context() as mp:
            clean_env(mp, PASSPHRASE)
            mp.delenv("MLFLOW_MODELKIT_ENCRYPT_FOR", raising=False)
            mp.setenv("DOCKER_CONFIG", str(home / "docker"))
            mp.setenv("MLFLOW_MODELKIT_CA_BUNDLE", reg.ca)
            mp.setenv("MLFLOW_TRACKING_USERNAME", "alice")
            mp.setenv("TMPDIR", str(home / "tmp"))
            (home / "tmp").mkdir()
            use_tracking(f"sqlite:///{home}/mlflow.db")
            run_everything(w, mp)
            yield w
    finally:
        end_runs()
        root.removeHandler(handler)
        root.setLevel(old_levels[0])
        plugin.setLevel(old_levels[1])
        reset_connections()


def run_everything(w: World, mp: pytest.MonkeyPatch) -> None:
    reg, home, host = w.reg, w.home, w.host
    keydir = home / "keys"
    key, pub = str(keydir / "cosign.key"), str(keydir / "cosign.pub")

    # -- keys: the private key's text is a secret from now on
    w.cli("keygen", "keygen", "-o", str(keydir))
    pem_lines = (keydir / "cosign.key").read_text().strip().splitlines()
    body = [ln for ln in pem_lines if not ln.startswith("-----")]
    priv = load_private_key(key, PASSPHRASE.encode())
    plain = priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    plain_body = [ln for ln in plain.strip().splitlines() if not ln.startswith("-----")]
    w.secrets.update(
        {
            "registry password": reg.password,
            "wrong registry password": WRONG_REG_PASSWORD,
            "key passphrase": PASSPHRASE,
            "wrong key passphrase": WRONG_PASSPHRASE,
            "param db_password": DB_PASSWORD,
            "tag hf_token": HF_TOKEN,
            "param note (AWS key id)": INNOCENT,
            "cosign.key body line": body[len(body) // 2],
            "private key PKCS#8 body line": plain_body[len(plain_body) // 2],
            "private scalar (hex)": format(priv.private_numbers().private_value, "064x"),
        }
    )

    # -- login / logout into a temp DOCKER_CONFIG; registry commands use the stored credentials
    w.cli(
        "login (wrong password)",
        "login",
        host,
        "-u",
        reg.username,
        "--password-stdin",
        code=2,
        input=WRONG_REG_PASSWORD,
    )
    w.cli(
        "login (unreachable)",
        "login",
        unreachable(),
        "-u",
        reg.username,
        "--password-stdin",
        code=2,
        input=reg.password,
    )
    w.cli("login", "login", host, "-u", reg.username, "--password-stdin", input=reg.password + "\n")
    w.cli("config show (logged in)", "config", "show")
    w.cli("config show --json (logged in)", "config", "show", "--json")

    ctx = make_case0_context(home / "ctx")
    layout = f"oci:{home / 'layout'}:v1"
    packed = f"{host}/secrets/packed-{uuid.uuid4().hex[:6]}"
    w.cli("pack", "pack", str(ctx), "-t", layout)
    w.cli("pack (to the registry)", "pack", str(ctx), "-t", f"{packed}:direct")
    w.cli("push", "push", layout, f"{packed}:v1")
    w.cli("pull", "pull", f"{packed}:v1", "-t", f"oci:{home / 'pulled'}:v1")
    w.cli("inspect", "inspect", f"{packed}:v1")
    w.cli("inspect --json", "inspect", f"{packed}:v1", "--json")
    w.cli("scan (kit)", "scan", f"{packed}:v1", "--json", code=(0, 1))
    w.cli("scan (directory)", "scan", str(ctx), code=(0, 1))
    w.cli(
        "unpack (unsigned)", "unpack", f"{packed}:v1", "-d", str(home / "unpacked-unsigned"), code=(0, 1, 2)
    )
    w.cli("list", "list", packed, "--json")
    w.cli("logout", "logout", host)
    w.cli("push (logged out)", "push", layout, f"{packed}:v2", code=2)

    # -- from here the password comes from the environment
    mp.setenv("MLFLOW_MODELKIT_REGISTRY_USERNAME", reg.username)
    mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", WRONG_REG_PASSWORD)
    w.cli("pull (wrong registry password)", "pull", f"{packed}:v1", "-t", f"oci:{home / 'x'}:v1", code=2)
    w.cli("list (wrong registry password)", "list", packed, code=2)
    mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", reg.password)
    w.cli("push (unreachable registry)", "push", layout, f"{unreachable()}/x/y:v1", code=2)
    w.cli("config show (env password)", "config", "show")

    # -- MLflow: log into modelkit://, publish (blocked, wrong passphrase, accepted, excluded)
    repo = f"secrets/fraud-{uuid.uuid4().hex[:6]}"
    log_good_run(w, repo)
    log_blocked_run(w, f"secrets/blocked-{uuid.uuid4().hex[:6]}")
    blocked = f"runs:/{w.blocked_run}"
    r = w.cli(
        "publish (secret under an innocent name)", "publish", blocked, "--tag", "v1", "--key", key, code=1
    )
    assert "publishing blocked" in r.stderr and "'note'" in r.stderr and "redact_params" in r.stderr, r.stderr
    w.cli(
        "publish --json (secret under an innocent name)",
        "publish",
        blocked,
        "--tag",
        "v1",
        "--key",
        key,
        "--json",
        code=1,
    )
    w.cli(
        "publish (index override, not accepted)", "publish", w.good_run, "--tag", "v1", "--key", key, code=1
    )
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", WRONG_PASSPHRASE)
    w.cli(
        "publish (wrong passphrase)", "publish", w.good_run, "--tag", "v1", "--key", key, *ACCEPT, code=(1, 2)
    )
    w.raises(
        "publish_run API (wrong passphrase)", ModelKitError, publish_run, w.good_run, "v1", key=key,
        accept=[ACCEPT[1]], reason=ACCEPT[3], password=WRONG_PASSPHRASE,
    )  # fmt: skip
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)
    r = w.cli("publish --accept", "publish", w.good_run, "--tag", "v1", "--key", key, *ACCEPT, "--json")
    w.digest = json.loads(r.stdout)["digest"]
    w.cli(
        "publish --exclude datasets",
        "publish",
        w.good_run,
        "--tag",
        "v2",
        "--key",
        key,
        *ACCEPT,
        "--exclude",
        "datasets",
    )
    ref = f"{w.store}:v1"

    # -- what verifies
    w.cli("verify", "verify", ref, "--key", pub)
    w.cli("verify --json", "verify", ref, "--key", pub, "--json")
    w.cli("verify (unreachable registry)", "verify", f"{unreachable()}/x/y:v1", "--key", pub, code=2)
    w.cli("provenance", "provenance", ref, "--key", pub)
    w.cli("provenance --json", "provenance", ref, "--key", pub, "--json")
    w.cli("inspect (published)", "inspect", ref, "--json")
    w.cli("scan (published)", "scan", ref, "--json", code=(0, 1))
    w.cli("unpack (published)", "unpack", ref, "-d", str(home / "unpacked"))
    w.cli("pull (published)", "pull", ref, "-t", f"oci:{home / 'pulled-published'}:v1")
    w.cli("list (published)", "list", w.store, "--json")
    mp.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", pub)
    w.cli("rescan --dry-run", "rescan", w.store, "--dry-run", "--json", code=(0, 1))
    w.cli("rescan", "rescan", w.store, "--key", key, "--json", code=(0, 1))
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", WRONG_PASSPHRASE)
    w.cli("keygen (wrong passphrase env, new dir)", "keygen", "-o", str(home / "keys2"))
    mp.setenv("MLFLOW_MODELKIT_KEY_PASSWORD", PASSPHRASE)

    # -- verify-on-load: the published kit loads, the unsigned draft and a wrong password do not
    mp.setenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE", "true")
    mp.setenv("MLFLOW_MODELKIT_TRUSTED_KEYS", pub)
    w.step = "mlflow.pyfunc.load_model (verify-on-load)"
    reset_connections()
    for d in ("loaded", "loaded-draft", "loaded-wrong"):
        (home / d).mkdir()
    model = mlflow.pyfunc.load_model(f"modelkit://{ref}", dst_path=str(home / "loaded"))
    assert model.metadata is not None
    w.raises(
        "load_model (unsigned draft)", MlflowException, mlflow.pyfunc.load_model,
        f"modelkit://{w.store}:run-{w.good_run}", dst_path=str(home / "loaded-draft"),
    )  # fmt: skip
    w.raises(
        "load_model (unreachable registry)", MlflowException, mlflow.pyfunc.load_model,
        f"modelkit://{unreachable()}/x/y:v1", dst_path=str(home / "loaded-wrong"),
    )  # fmt: skip
    # a fresh process: an in-process MLflow artifact repository keeps the session it authenticated
    mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", WRONG_REG_PASSWORD)
    w.step = "load_model (wrong registry password, subprocess)"
    p = subprocess.run(
        [sys.executable, "-c", LOAD, f"modelkit://{w.store}:v2", str(home / "loaded-wrong")],
        capture_output=True, text=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    w.outputs.append((f"{w.step}: stdout", p.stdout))
    w.outputs.append((f"{w.step}: stderr", p.stderr))
    assert p.returncode == 3 and "MlflowException" in p.stdout, (p.returncode, p.stdout, p.stderr[-3000:])
    w.cli("verify (wrong registry password)", "verify", ref, "--key", pub, code=2)
    mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", reg.password)
    mp.delenv("MLFLOW_MODELKIT_REQUIRE_SIGNATURE")
    mp.delenv("MLFLOW_MODELKIT_TRUSTED_KEYS")

    # -- serving what verifies, and the container recipe
    w.dockerfile_dir = home / "dockerfile-out"
    w.cli("dockerfile", "dockerfile", ref, "--key", pub, "-o", str(w.dockerfile_dir))
    serve_once(w, ref, pub)
    w.cli("serve --check-only", "serve", ref, "--key", pub, "--check-only")
    mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", WRONG_REG_PASSWORD)
    w.cli("serve --check-only (wrong registry password)", "serve", ref, "--key", pub, "--check-only", code=2)
    w.cli(
        "dockerfile (wrong registry password)",
        "dockerfile",
        ref,
        "--key",
        pub,
        "-o",
        str(home / "df-x"),
        code=2,
    )
    mp.setenv("MLFLOW_MODELKIT_REGISTRY_PASSWORD", reg.password)

    # -- encrypted kits
    run_encrypted(w, mp, key, pub)
    end_runs()


# ---- every command ran -------------------------------------------------------------------------------
def test_every_command_was_run(world: World) -> None:
    wanted = {name for name in main.commands if name != "config"} | {"config show"}
    # and every option that makes or opens an encrypted kit, on every command that has it
    wanted |= {
        f"{name} {opt}"
        for name, cmd in main.commands.items()
        for param in cmd.params
        for opt in param.opts
        if opt in ENC_OPTIONS
    }
    assert {"unpack --decrypt-key", "publish --encrypt-for", "keygen --encryption"} <= wanted
    assert wanted - world.commands == set(), "commands never run by this module"


# ---- the greps ---------------------------------------------------------------------------------------
def assert_clean(
    place: str, items: list[tuple[str, str]] | list[tuple[str, bytes]], secrets: dict[str, str]
) -> None:
    """Fail naming the place, the step or file and the secret for every leak (the first 40)."""
    leaks = [f"{where}: {hit}" for where, text in items for hit in find(text, secrets)]
    assert not leaks, f"{len(leaks)} secret(s) leaked into {place}:\n" + "\n".join(leaks[:40])


def test_no_secret_in_any_output(world: World) -> None:
    """stdout and stderr of every CLI call and of the ``serve`` process."""
    assert len(world.outputs) > 80
    assert_clean("CLI and subprocess stdout/stderr", world.outputs, world.secrets)


def test_no_secret_in_any_exception(world: World) -> None:
    assert world.exceptions, "the failing flows raised nothing?"
    assert_clean("exception messages and tracebacks", world.exceptions, world.secrets)


def test_no_secret_in_any_log_record(world: World) -> None:
    assert any("DEBUG" in where for where, _ in world.logs), "no DEBUG record was captured"
    assert_clean("log records (DEBUG)", world.logs, world.secrets)


def _documents(world: World) -> dict[str, Any]:
    """The published kit's Kitfile and every attestation statement (provenance, ML-BOM, scan, ...)."""
    repo, _ = open_location(world.store, settings=load_config().storage_settings())
    try:
        manifest = json.loads(repo.get_manifest(world.digest)[0])
        docs: dict[str, Any] = {"kitfile": json.loads(repo.read_blob(manifest["config"]["digest"]))}
        for i, a in enumerate(attach.list_attachments(repo, world.digest)):
            env = json.loads(a.bundle)["dsseEnvelope"]
            docs[f"{a.kind}#{i}"] = json.loads(base64.b64decode(env["payload"]))
    finally:
        repo.close()
    return docs


def test_published_documents_are_redacted(world: World) -> None:
    docs = _documents(world)
    assert {k.split("#")[0] for k in docs} >= {"kitfile", "provenance", "sbom", "scan"}, list(docs)
    assert docs["kitfile"]["model"]["parameters"]["mlflow"]["params"]["db_password"] == REDACTED
    prov = next(v for k, v in docs.items() if k.startswith("provenance"))["predicate"]["buildDefinition"]
    assert prov["externalParameters"]["hyperparameters"]["db_password"] == REDACTED
    assert prov["internalParameters"]["tags"]["hf_token"] == REDACTED
    items = [(where, json.dumps(doc)) for where, doc in docs.items()]
    assert_clean("the Kitfile and attestations of the published kit", items, world.secrets)


def test_mlflow_keeps_what_it_was_given_and_our_tags_are_clean(world: World) -> None:
    """MLflow stores the params and tags it was given (its business); every tag WE set is clean."""
    client = MlflowClient()
    good, blocked = client.get_run(world.good_run).data, client.get_run(world.blocked_run).data
    sealed = client.get_run(world.enc_run).data
    assert good.params["db_password"] == DB_PASSWORD and good.tags["hf_token"] == HF_TOKEN
    assert blocked.params["note"] == INNOCENT
    assert good.tags["modelkit.signed"] == "true"
    assert blocked.tags["modelkit.scan"].startswith("blocked: high")
    given = {("good", "param", "db_password"), ("good", "tag", "hf_token"), ("blocked", "param", "note")}
    items: list[tuple[str, str | bytes]] = []
    assert sealed.tags["modelkit.signed"] == "true"
    given |= {("sealed", "param", "segment"), ("sealed", "tag", "customer")}
    for name, data in (("good", good), ("blocked", blocked), ("sealed", sealed)):
        items += [
            (f"{name} run param {k}", v) for k, v in data.params.items() if (name, "param", k) not in given
        ]
        items += [(f"{name} run tag {k}", v) for k, v in data.tags.items() if (name, "tag", k) not in given]
    assert_clean("the tags and params we set on MLflow runs", items, world.secrets)


def _files(root: Path, skip: frozenset[Path] = frozenset()) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file() and p not in skip]


def test_no_secret_in_the_dockerfile_output(world: World) -> None:
    assert world.dockerfile_dir is not None
    files = _files(world.dockerfile_dir)
    assert any(Path(f).name == "Dockerfile" for f, _ in files)
    assert_clean("the dockerfile output", files, world.secrets)


def test_no_secret_in_any_file_we_wrote(world: World) -> None:
    """Unpacked and pulled kits, loaded models, serve's temp dir, the docker config after logout,
    caches -- all but the secrets' own homes."""
    assert (world.home / "docker" / "config.json").is_file()
    own = frozenset(
        {
            world.home / "mlflow.db",  # MLflow's tracking store keeps params and tags as given
            world.home / "keys" / "cosign.key",
            world.home / "keys2" / "cosign.key",
            *world.secret_homes,  # the recipient private keys
        }
    )  # $DOCKER_CONFIG/config.json is grepped: `logout` ran, so the password must be gone
    files = _files(world.home, own)
    assert any("unpacked" in f for f, _ in files) and any("loaded" in f for f, _ in files)
    assert any("enc-unpacked" in f for f, _ in files) and any("enc-downloaded" in f for f, _ in files)
    cache = os.environ.get("XDG_CACHE_HOME")
    if cache:
        files += _files(Path(cache))
    assert_clean("files written by the commands and flows (and the scan caches)", files, world.secrets)
    # the control: the tracking store does hold what MLflow was given
    assert DB_PASSWORD.encode() in (world.home / "mlflow.db").read_bytes()


def test_no_secret_in_registry_storage_or_log(world: World) -> None:
    """Every file of the registry's workdir: blobs, manifests, links, uploads, its log."""
    files = [(f, d) for f, d in _files(world.reg.workdir) if not f.endswith(("htpasswd", "tls.key"))]
    assert any("/blobs/" in f for f, _ in files)
    assert_clean("the storage and log of the registry", files, world.secrets)


# ---- the real tracking server (proxy mode: the server's plugin writes the registry) -------------------
def test_logging_through_the_mlflow_server(world: World, mlflow_server: Any) -> None:
    """Params, a tag, an artifact and a model logged through ``mlflow server`` into modelkit://: no
    secret in the client's logs or exceptions, the server's log or the server's registry."""
    from sklearn.linear_model import LogisticRegression

    n_logs, n_exc = len(world.logs), len(world.exceptions)
    world.step = "mlflow server: log params, tag, artifact, model (proxy mode)"
    use_tracking(mlflow_server.url)
    try:
        exp = mlflow.create_experiment(f"srv-secrets-{uuid.uuid4().hex[:8]}")
        X = pd.DataFrame(np.random.default_rng(1).normal(size=(20, 2)), columns=["a", "b"])
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.log_params({"C": "1.0", "db_password": DB_PASSWORD})
            mlflow.set_tag("hf_token", HF_TOKEN)
            mlflow.log_text("# notes\n", "notes/README.md")
            mlflow.sklearn.log_model(LogisticRegression().fit(X, (X["a"] > 0).astype(int)), name="model")
        data = MlflowClient().get_run(run.info.run_id).data
        assert data.params["db_password"] == DB_PASSWORD and data.tags["hf_token"] == HF_TOKEN  # MLflow's
        items = [(f"run tag {k}", v) for k, v in data.tags.items() if k != "hf_token"]
        items += [(f"run param {k}", v) for k, v in data.params.items() if k != "db_password"]
        assert_clean("the tags and params we set on the server's run", items, world.secrets)
    finally:
        end_runs()
        use_tracking(f"sqlite:///{world.home}/mlflow.db")
    assert_clean("client log records (server flow)", world.logs[n_logs:], world.secrets)
    assert_clean("exceptions (server flow)", world.exceptions[n_exc:], world.secrets)
    assert_clean(
        "the mlflow server's log",
        [(str(mlflow_server.log_path), mlflow_server.log_path.read_bytes())],
        world.secrets,
    )
    reg = mlflow_server.registry
    files = _files(reg.workdir)
    assert any("/blobs/" in f for f, _ in files)
    assert_clean("the storage and log of the server's registry", files, world.secrets)


# ---- the encrypted kit: no layer key readable, no plaintext metadata in the registry ---------------
def _storage(world: World) -> list[tuple[str, bytes]]:
    return [(f, d) for f, d in _files(world.reg.workdir) if not f.endswith(("htpasswd", "tls.key"))]


def test_no_readable_layer_key_anywhere(world: World) -> None:
    """No annotation, blob or manifest of the registry -- nor any output, log, exception or file
    we wrote -- holds ocicrypt's private options (``"symkey"``) in plaintext, raw or base64."""
    assert any(k.startswith("AES key of the layer") for k in world.secrets)  # the keys themselves
    places: list[tuple[str, list[tuple[str, str]] | list[tuple[str, bytes]]]] = [
        ("registry storage", _storage(world)),
        ("outputs", world.outputs),
        ("exceptions", world.exceptions),
        ("log records", world.logs),
        ("files we wrote", _files(world.home, frozenset(world.secret_homes))),
    ]
    leaks = [
        f"{place}: {where}: {hit}"
        for place, items in places
        for where, text in items
        for hit in plain_symkey(text)
    ]
    assert not leaks, "the layer key's JSON field is readable:\n" + "\n".join(leaks[:40])


def test_encrypted_kit_metadata_stays_with_its_recipients(world: World) -> None:
    """The confidential file and directory names, a file's content and a param value of the run
    are nowhere in the registry's storage nor in what a non-recipient is shown; the recipient
    gets all of them, and the very same detector finds them in the plaintext drafts."""
    conf = world.confidential
    assert len(conf) == 7
    storage = _storage(world)
    assert any(world.enc_digest.split(":")[1] in f for f, _ in storage)  # the encrypted kit is there
    assert_clean("the registry's storage (encrypted kit metadata)", storage, conf)
    public = [(step, text) for step, text in world.outputs if step.split(": ")[0] in world.public_steps]
    public += [(step, text) for step, text in world.exceptions if step in world.public_steps]
    assert len(public) >= 2 * 12, sorted(world.public_steps)
    assert_clean("what a non-recipient is shown", public, conf)
    # the controls: the recipient gets every one of them, and the drafts (plaintext) hold them all
    got = {hit.split(" (")[0] for _, text in world.recipient_got for hit in find(text, conf)}
    assert got == set(conf), f"the recipient did not get: {set(conf) - got}"
    prov = dict(world.recipient_got)["provenance --decrypt-key --json"]
    assert find(prov, {"param value": conf["param value"]}), "the decrypted provenance lacks the param"
    drafts = {hit.split(" (")[0] for _, data in _files(world.home / "enc-drafts") for hit in find(data, conf)}
    in_kit = {"file name", "directory name", "file content", "param value"}  # what a plain kit carries
    assert drafts >= in_kit, f"the detector misses in plaintext storage: {in_kit - drafts}"
