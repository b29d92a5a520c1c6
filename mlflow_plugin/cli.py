"""``mlflow-modelkit`` command line: the only module that prints.

mlflow-modelkit pack ./my-model -t oci:./kits/fraud:v1
mlflow-modelkit push oci:./kits/fraud:v1 localhost:5000/team/fraud:v1
mlflow-modelkit unpack localhost:5000/team/fraud:v1 -d ./out --filter model
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sys
import traceback
from contextlib import ExitStack
from typing import Any

import click

from mlflow_plugin import packaging
from mlflow_plugin._version import __version__
from mlflow_plugin.errors import ModelKitError


def _progress_enabled() -> bool:
    if os.environ.get("CI") or os.environ.get("MLFLOW_MODELKIT_NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


class _Bars:
    """``progress(stage, done, total)`` (:mod:`mlflow_plugin.progress`) drawn as tqdm byte bars:
    one bar per stage, closed when the next stage starts or the stack closes; silent off-terminal."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.enabled = _progress_enabled()
        self.stage: str | None = None
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            from tqdm import tqdm

            if self.bar is not None:
                self.bar.close()
            self.stage = stage
            self.bar = self.stack.enter_context(
                tqdm(
                    total=total or None,
                    desc=stage[:40],
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    leave=False,
                    file=sys.stderr,
                    dynamic_ncols=True,
                )
            )
        self.bar.update(done - self.bar.n)


def _one_line(text: str) -> str:
    """``text`` on one line: its non-empty lines joined by a space."""
    return " ".join(ln.strip() for ln in str(text).splitlines() if ln.strip())


# credentials in URLs (``https://user:password@host``), e.g. a tracking URI quoted by MLflow
_URL_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")


def _redact(text: str) -> str:
    return _URL_USERINFO.sub(r"\1***@", text)


def _fail(e: BaseException, verbose: bool = False, code: int = 2, line: str | None = None) -> None:
    """Print ``error: <line>`` (default: the exception's message) and exit; ``-v`` adds the traceback."""
    if verbose:
        click.echo(_redact("".join(traceback.format_exception(e)).rstrip()), err=True)
    click.echo(f"error: {_redact(_one_line(line if line is not None else str(e)))}", err=True)
    sys.exit(code)


# staging directories (unpack, MLflow downloads) live inside the user's target: never show them
_STAGING = re.compile(r"[/\\]\.modelkit-[^/\\]*")
_OS_HINTS = {
    errno.ENOSPC: "free up space or choose another directory",
    errno.EDQUOT: "free up space or choose another directory",
    errno.EROFS: "the file system is read-only: choose a writable directory",
    errno.EACCES: "check the permissions or choose another directory",
    errno.EPERM: "check the permissions or choose another directory",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a directory: fix the path",
    errno.EISDIR: "a directory is in the way: move it or choose another directory",
    errno.EEXIST: "move the existing file away or choose another directory",
    errno.ENAMETOOLONG: "use a shorter path",
}
# where each command writes: named when the OSError itself names no file
_OUTPUT_PARAMS = ("directory", "dest", "target", "out_dir", "sarif", "context", "source", "ref")


def _user_path(path: Any) -> str:
    """A path as the user knows it: the ``.modelkit-*`` staging component removed."""
    text = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else str(path)
    return _STAGING.sub("", text)


def _os_error_line(e: OSError, op: str, params: dict[str, Any]) -> str:
    """``<op>: <strerror> (<path>): <fix>`` for a file system failure, without staging paths."""
    what = e.strerror or _one_line(str(e)) or type(e).__name__
    paths = [_user_path(p) for p in (e.filename, e.filename2) if p is not None]
    if not paths:  # e.g. a write() that ran out of space: name where the command was writing
        paths = [str(params[k]) for k in _OUTPUT_PARAMS if params.get(k)][:1]
    line = f"{op}: {what}" if op else what
    if paths:
        line += f" ({' -> '.join(paths)})"
    hint = _OS_HINTS.get(e.errno or 0)
    return f"{line}: {hint}" if hint else line


class _Command(click.Command):
    """Records the command's parameters for the group's error line (``ctx.meta`` is shared)."""

    def invoke(self, ctx: click.Context) -> Any:
        ctx.meta["mlflow_modelkit.params"] = dict(ctx.params)
        return super().invoke(ctx)


def _human(n: int) -> str:
    f = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if f < 1024 or unit == "TiB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return str(n)


class _Group(click.Group):
    """Every failure of a command becomes one ``error: …`` line on stderr (``-v`` adds the traceback).

    Exit status: 2 for errors a user can cause or fix (bad input, unreachable or refusing
    registries, files that cannot be written), 1 for an internal error (a bug: please report it),
    130 for Ctrl-C. Commands that document another status (``verify``, ``scan``, ``publish``
    blocked by the scan) exit with it themselves.
    """

    command_class = _Command

    def invoke(self, ctx: click.Context) -> Any:
        verbose = bool(ctx.params.get("verbose"))
        try:
            return super().invoke(ctx)
        except ModelKitError as e:
            _fail(e, verbose)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as e:
            where = f" (see '{e.ctx.command_path} -h')" if e.ctx is not None else ""
            _fail(e, verbose, e.exit_code, f"{e.format_message()}{where}")
        except click.ClickException as e:
            _fail(e, verbose, e.exit_code, e.format_message())
        except OSError as e:
            if e.errno == errno.EPIPE:
                raise  # the reader went away (``| head``): click exits quietly
            params = ctx.meta.get("mlflow_modelkit.params") or {}
            _fail(e, verbose, 2, _os_error_line(e, ctx.invoked_subcommand or "", params))
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0]
            mlflow_errors = sys.modules.get("mlflow.exceptions")
            if mlflow_errors is not None and isinstance(e, mlflow_errors.MlflowException):
                # the tracking server or store refused or failed: the user's setup, not our bug
                _fail(e, verbose, 2, f"MLflow: {first} (check MLFLOW_TRACKING_URI)")
            what = f"{type(e).__name__}: {first}" if first else type(e).__name__
            _fail(e, verbose, 1, f"internal error: {what} (run with -v for the traceback)")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlflow-modelkit")
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
def main(verbose: bool) -> None:
    """Pack, move and inspect KitOps ModelKits in OCI registries and local OCI layouts.

    References: HOST[:PORT]/REPO[:TAG|@DIGEST] for a registry, oci:DIR[:TAG] for a local layout.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )


@main.command()
@click.argument("context", type=click.Path(file_okay=False))
@click.option("-t", "--tag", "target", required=True, help="Target: oci:DIR:TAG or HOST/REPO:TAG.")
@click.option("-f", "--file", "kitfile", help="Kitfile path ('-' for stdin); default CONTEXT/Kitfile.")
@click.option(
    "--compression",
    type=click.Choice(["none", "gzip", "zstd"]),
    default="none",
    show_default=True,
    help="Layer compression; only 'none' gives kit-identical digests.",
)
def pack(context: str, target: str, kitfile: str | None, compression: str) -> None:
    """Pack CONTEXT (a directory with a Kitfile) into a ModelKit."""
    with ExitStack() as stack:
        r = packaging.pack(context, target, kitfile=kitfile, compression=compression, progress=_Bars(stack))
    for w in r.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{r.target}@{r.digest}")


@main.command()
@click.argument("source")
@click.argument("dest")
def push(source: str, dest: str) -> None:
    """Copy a kit from SOURCE to DEST (layout or registry); existing blobs are skipped."""
    with ExitStack() as stack:
        digest = packaging.copy(source, dest, progress=_Bars(stack))
    click.echo(f"{dest}@{digest}")


@main.command()
@click.argument("source")
@click.option("-t", "--tag", "dest", required=True, help="Destination, e.g. oci:./kits/fraud:v1.")
def pull(source: str, dest: str) -> None:
    """Copy a kit from a registry (or layout) SOURCE into DEST."""
    with ExitStack() as stack:
        digest = packaging.copy(source, dest, progress=_Bars(stack))
    click.echo(f"{dest}@{digest}")


def _decrypt_option(fn: Any) -> Any:
    """``--decrypt-key`` (repeatable): recipient private keys of encrypted kits."""
    return click.option(
        "--decrypt-key",
        "decrypt_keys",
        multiple=True,
        metavar="KEY",
        help="Recipient private key (enc.key) of an encrypted kit (repeatable; default: "
        "[encryption] decrypt_keys / MLFLOW_MODELKIT_DECRYPT_KEYS).",
    )(fn)


@main.command()
@click.argument("ref")
@click.option("-d", "--dir", "directory", default=".", show_default=True, help="Directory to unpack into.")
@click.option(
    "--filter", "filters", multiple=True, help="model, datasets, code, docs, prompts, kitfile (TYPE:NAME)."
)
@click.option("-o", "--overwrite", is_flag=True, help="Replace existing files.")
@click.option("-i", "--ignore-existing", is_flag=True, help="Keep existing files, write the rest.")
@_decrypt_option
def unpack(
    ref: str,
    directory: str,
    filters: tuple[str, ...],
    overwrite: bool,
    ignore_existing: bool,
    decrypt_keys: tuple[str, ...],
) -> None:
    """Extract kit REF into a directory (verified; nothing is written if a check fails).

    Output size, compression ratio and entries are bounded by the admin's ``[limits]``
    (``MLFLOW_MODELKIT_MAX_UNPACK_BYTES``/``_RATIO``/``_ENTRIES``)."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.kit.limits import UnpackLimits

    limits = UnpackLimits.from_config(load_config())
    with ExitStack() as stack:
        files = packaging.unpack(
            ref,
            directory,
            filters=list(filters),
            overwrite=overwrite,
            ignore_existing=ignore_existing,
            progress=_Bars(stack),
            limits=limits,
            decrypt_keys=list(decrypt_keys) or None,
        )
    click.echo(f"unpacked {len(files)} files into {directory}")
    if not filters:
        sig = _write_model_sig(ref, directory, overwrite, list(decrypt_keys) or None)
        if sig:
            click.echo(
                f"wrote {sig} (check it: model_signing verify key {directory} --signature {sig} "
                "--public_key cosign.pub)"
            )


def _write_model_sig(ref: str, directory: str, overwrite: bool, decrypt_keys: list[str] | None) -> str | None:
    """Write the kit's OpenSSF model_signing bundle (if it has one; an encrypted kit's decrypted)
    as DIR/model.sig."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.storage.locations import open_location
    from mlflow_plugin.trust.attach import PRED_OMS, list_attachments
    from mlflow_plugin.trust.sealed import Decryptor

    cfg = load_config()
    repo, loc = open_location(ref, default_tag="latest", settings=cfg.storage_settings())
    try:
        digest = repo.resolve(loc.reference or "latest").digest
        oms = [a for a in list_attachments(repo, digest) if a.predicate_type == PRED_OMS]
        bundle = Decryptor(decrypt_keys or cfg.decrypt_keys).attachment(oms[0]) if oms else None
    finally:
        repo.close()
    if bundle is None:
        return None
    path = os.path.join(directory, "model.sig")
    if os.path.exists(path) and not overwrite:
        raise ModelKitError(f"{path} already exists; use --overwrite")
    with open(path, "wb") as f:
        f.write(bundle)
    return path


@main.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print {digest, manifest, config} as JSON.")
@_decrypt_option
def inspect(ref: str, as_json: bool, decrypt_keys: tuple[str, ...]) -> None:
    """Show a kit's manifest and config (the Kitfile as JSON; an encrypted kit's real Kitfile with
    --decrypt-key, else its redacted one)."""
    info = packaging.inspect(ref, decrypt_keys=list(decrypt_keys) or None)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reference": info.reference,
                    "digest": info.digest,
                    "mediaType": info.media_type,
                    "manifest": info.manifest,
                    "config": info.config,
                    "encrypted": info.encrypted,
                    "sealed": info.sealed,
                },
                indent=2,
            )
        )
        return
    click.echo(f"Reference: {info.reference}")
    click.echo(f"Digest:    {info.digest}")
    click.echo(f"Type:      {info.media_type}")
    if info.encrypted:
        how = (
            "the Kitfile below is the redacted one; the real one is sealed (pass --decrypt-key)"
            if info.sealed
            else "the Kitfile below was opened with a recipient key"
        )
        click.echo(f"Encrypted: for its recipients; {how}")
    layers = info.manifest.get("layers") or []
    total = sum(d.get("size", 0) for d in layers)
    click.echo(f"Layers:    {len(layers)} ({_human(total)})")
    for d in layers:
        path = (d.get("annotations") or {}).get("org.cncf.model.filepath", "")
        mt = d.get("mediaType", "").replace("application/vnd.kitops.modelkit.", "")
        click.echo(f"  {d.get('digest', '')[:19]}  {_human(d.get('size', 0)):>10}  {mt:<18} {path}")
    click.echo("Manifest:")
    click.echo(json.dumps(info.manifest, indent=2))
    if info.config is not None:
        click.echo("Config (Kitfile):")
        click.echo(json.dumps(info.config, indent=2))


@main.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the machine report (JSON) on stdout.")
@click.option(
    "--sarif",
    "sarif",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write a SARIF 2.1.0 report to this file ('-' for stdout).",
)
@click.option(
    "--fail-on",
    default="high",
    show_default=True,
    type=click.Choice(["critical", "high", "medium", "low", "info"], case_sensitive=False),
    help="Exit 1 if any finding is at or above this severity.",
)
@click.option(
    "--allow-global",
    "allow_globals",
    multiple=True,
    metavar="MODULE.NAME",
    help="Trust this pickle global (repeatable), e.g. mypkg.MyEstimator.",
)
@click.option(
    "--allow-module",
    "allow_modules",
    multiple=True,
    metavar="MODULE",
    help="Trust every global of this module (repeatable; prefer --allow-global).",
)
@_decrypt_option
def scan(
    target: str,
    as_json: bool,
    sarif: str | None,
    fail_on: str,
    allow_globals: tuple[str, ...],
    allow_modules: tuple[str, ...],
    decrypt_keys: tuple[str, ...],
) -> None:
    """Scan a file, a directory or a kit (oci:DIR:TAG, HOST/REPO:TAG) without executing anything.

    Exit status: 0 clean, 1 findings at or above --fail-on, 2 error.
    """
    from mlflow_plugin.config import load_config
    from mlflow_plugin.kit.limits import UnpackLimits
    from mlflow_plugin.scanner.api import scan as run_scan
    from mlflow_plugin.scanner.report import Severity
    from mlflow_plugin.trust.sealed import Decryptor

    cfg = load_config()  # the admin's allowlist extensions apply to every scan
    policy = cfg.scan_policy(allow_globals, allow_modules)
    dec = Decryptor(list(decrypt_keys) or cfg.decrypt_keys)
    report = run_scan(
        target,
        policy=policy,
        unpack_limits=UnpackLimits.from_config(cfg),
        settings=cfg.storage_settings(),
        decrypt=dec.decrypt_to_temp if dec.paths else None,
    )
    if sarif:
        data = json.dumps(report.to_sarif(), indent=2)
        if sarif == "-":
            click.echo(data)
        else:
            with open(sarif, "w", encoding="utf-8") as f:
                f.write(data + "\n")
    if as_json:
        click.echo(report.dumps())
    elif sarif != "-":
        _print_report(report)
    sys.exit(1 if report.failed(Severity.parse(fail_on)) else 0)


def _print_report(report: Any) -> None:
    """The findings table, each finding followed by what it means, when it bites and the fix."""
    from mlflow_plugin.scanner.render import render_text

    for line in render_text(report):
        click.echo(line)


@main.command()
@click.option(
    "-o", "--output", "out_dir", default=".", show_default=True, help="Directory for cosign.key/.pub."
)
@click.option(
    "--encryption",
    "kind",
    flag_value="ec",
    default=None,
    help="Create a recipient key pair for encrypted kits instead: enc.pub / enc.key (EC P-256).",
)
@click.option("--encryption-rsa", "kind", flag_value="rsa", help="Like --encryption, with RSA-3072.")
def keygen(out_dir: str, kind: str | None) -> None:
    """Create an ECDSA P-256 key pair: cosign.key (encrypted PKCS8, 0600) and cosign.pub.

    The passphrase comes from MLFLOW_MODELKIT_KEY_PASSWORD or a prompt. With --encryption,
    a recipient key pair enc.pub (give it to publishers: publish --encrypt-for) and enc.key (0600,
    unencrypted unless MLFLOW_MODELKIT_KEY_PASSWORD is set; unpack --decrypt-key).
    """
    from mlflow_plugin.trust import keys

    if kind:
        from mlflow_plugin.trust import ocicrypt

        pub_path, priv_path = ocicrypt.generate_recipient_keypair(
            out_dir, kind, keys.passphrase_from_env(prompt=False)
        )
        click.echo(f"private key: {priv_path} (mode 0600; keep it with whoever unpacks)")
        click.echo(f"public key:  {pub_path} (publish --encrypt-for {pub_path})")
        return

    password = keys.passphrase_from_env(confirm=True)
    if not password:
        raise ModelKitError("a passphrase is required: set MLFLOW_MODELKIT_KEY_PASSWORD or run in a terminal")
    priv, pub = keys.generate_keypair(out_dir, password)
    click.echo(f"private key: {priv} (encrypted, mode 0600)")
    click.echo(f"public key:  {pub}  key id {keys.key_id(keys.load_public_key(pub))[:16]}")


@main.command()
@click.argument("run")
@click.option("--tag", "tag", required=True, help="Tag of the published kit, e.g. v1.")
@click.option("--key", "key", help="Signing key (cosign.key); default: signing.key from the admin config.")
@click.option(
    "--repository", help="Publish into another repository (HOST/REPO or oci:DIR); default: the run's."
)
@click.option(
    "--model", "model", help="Name or id of the logged model to publish (default: the run's first)."
)
@click.option("--register", "register_as", help="Also register a model version under this name.")
@click.option(
    "--accept",
    "accept",
    multiple=True,
    metavar="RULE[:PATH]",
    help="Accept matching findings (globs, repeatable) up to the admin's [accept] max_severity.",
)
@click.option("--reason", help="Why the accepted findings are acceptable (signed into the scan attestation).")
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    metavar="KIND",
    help="Leave code, docs or datasets out of the kit (repeatable; within the admin's [publish] include): "
    "referenced by SHA-256 in the provenance only.",
)
@click.option(
    "--encrypt-for",
    "encrypt_for",
    multiple=True,
    metavar="PUB",
    help="Encrypt every layer for this recipient public key (enc.pub from keygen --encryption; repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def publish(
    run: str,
    tag: str,
    key: str | None,
    repository: str | None,
    model: str | None,
    register_as: str | None,
    accept: tuple[str, ...],
    reason: str | None,
    exclude: tuple[str, ...],
    encrypt_for: tuple[str, ...],
    as_json: bool,
) -> None:
    """Publish RUN (runs:/<id> or the run id) as a hardened kit: scanned, attested, signed, tagged.

    A finding you have reviewed can be accepted: --accept pickle.embedded-code:model/* --reason
    'our notebook class'. The acceptance (who, when, why) is signed into the scan attestation and
    shown by verify."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.harden.publish import STAGES, PublishBlocked, publish_run
    from mlflow_plugin.scanner.report import Severity

    run_id = run.removeprefix("runs:/").strip("/").split("/")[0]
    cfg = load_config()
    bar = None
    if _progress_enabled():
        from tqdm import tqdm

        bar = tqdm(total=len(STAGES), desc="publish", leave=False, file=sys.stderr)

    def progress(stage: str, done: int, total: int) -> None:
        if bar is not None:
            bar.set_description(stage)
            if done == total:
                bar.update(1)

    try:
        r = publish_run(
            run_id,
            tag=tag,
            key=key,
            repository=repository,
            model=model,
            register_as=register_as,
            config=cfg,
            progress=progress,
            accept=accept,
            reason=reason,
            exclude=exclude,
            encrypt_for=encrypt_for,
        )
    except PublishBlocked as e:
        if as_json:
            click.echo(
                json.dumps({"published": False, "reason": str(e), "scan": e.report.to_json()}, indent=2)
            )
        else:
            _print_report(e.report)
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        out = {
            "published": True,
            "reference": r.reference,
            "digest": r.digest,
            "model_uri": r.model_uri,
            "scan": r.scan.to_json()["summary"],
            "verdict": r.verdict,
            "accepted": [
                {"rule": f.rule, "path": f.path, "severity": str(f.severity), "acceptance": a.spec}
                for f, a in r.accepted
            ],
            "attachments": r.attachments,
            "reused_signatures": r.reused_signatures,
            "model_version": r.model_version,
            "encrypted_for": r.encrypted_for,
        }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{r.reference}@{r.digest}")
    notes = sum(f.severity == Severity.INFO for f in r.scan.findings)
    info = f", {notes} informational notes" if notes else ""
    click.echo(f"  scan:         {r.verdict} ({len(r.scan.files)} files{info})")
    if r.encrypted_for:
        ids = ", ".join(i[:16] for i in r.encrypted_for)
        click.echo(f"  encrypted:    for {len(r.encrypted_for)} recipient(s): {ids} (unpack --decrypt-key)")
    for f, a in r.accepted[:10]:
        click.echo(f"  accepted:     {f.severity} {f.rule} at {f.path} ({a.reason})")
    if len(r.accepted) > 10:
        click.echo(f"  accepted:     and {len(r.accepted) - 10} more (--json lists all)")
    click.echo(f"  signed:       yes{' (existing signatures reused)' if r.reused_signatures else ''}")
    click.echo(
        f"  attestations: {', '.join(sorted(k for k in r.attachments if k != 'signature')) or 'reused'}"
    )
    click.echo(f"  load with:    mlflow.pyfunc.load_model({r.model_uri!r})")
    if r.model_version:
        click.echo(f"  registered:   models:/{register_as}/{r.model_version}")


@main.command()
@click.argument("ref")
@click.option("--key", "keys_", multiple=True, help="Trusted public key (repeatable); default: the config's.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-deep", is_flag=True, help="Skip re-hashing every blob.")
@_decrypt_option
def verify(
    ref: str, keys_: tuple[str, ...], as_json: bool, no_deep: bool, decrypt_keys: tuple[str, ...]
) -> None:
    """Verify signatures, attestations, scan verdict and every digest of REF. Exit 0 only if all hold.

    An encrypted kit's attestations and plaintext digests need its recipient key (--decrypt-key)."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.harden.verify import TrustPolicy, verify_kit

    policy = TrustPolicy.from_config(load_config(), keys=list(keys_) or None, decrypt_keys=list(decrypt_keys))
    with ExitStack() as stack:
        result = verify_kit(ref, policy, deep=not no_deep, progress=_Bars(stack))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(f"{result.reference}  {result.digest}")
        for c in result.checks:
            click.echo(f"  {'PASS' if c.ok else 'FAIL'}  {c.name:<24} {c.detail}")
        for a in result.acceptances:
            click.echo(f"  ACCEPTED {a.describe()}")
        for n in result.notes[:5]:
            click.echo(f"  NOTE  {n}")
        if len(result.notes) > 5:
            click.echo(f"  NOTE  and {len(result.notes) - 5} more (--json lists all)")
        click.echo("verified" if result.ok else "NOT verified")
    if not result.ok:
        failed = result.failures()
        more = f" (and {len(failed) - 1} more failed checks)" if len(failed) > 1 else ""
        hint = (
            ": is --key the public key of the kit's signer?"
            if any(c.name == "signature" for c in failed)
            else ""
        )
        click.echo(
            f"error: {result.reference} is NOT verified: {failed[0].name}: "
            f"{_one_line(failed[0].detail)}{more}{hint}",
            err=True,
        )
    sys.exit(0 if result.ok else 1)


@main.command()
@click.argument("repository")
@click.option("--key", "key", help="Signing key for new scan attestations; default: signing.key.")
@click.option("--dry-run", is_flag=True, help="Scan and compare only; attach nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per kit.")
@_decrypt_option
@click.option(
    "--encrypt-for",
    "encrypt_for",
    multiple=True,
    metavar="PUB",
    help="Recipients (enc.pub) a new scan attestation of an encrypted kit is encrypted for (repeatable).",
)
def rescan(
    repository: str,
    key: str | None,
    dry_run: bool,
    as_json: bool,
    decrypt_keys: tuple[str, ...],
    encrypt_for: tuple[str, ...],
) -> None:
    """Re-scan every published kit of REPOSITORY with today's scanner and policy.

    Where the findings changed, a new signed scan attestation is attached (the old ones stay) and
    verify judges by the newest. Exit 1 when a kit no longer passes the trust policy's
    max_severity."""
    from mlflow_plugin.harden.rescan import rescan as run_rescan

    results = run_rescan(
        repository,
        key=key,
        dry_run=dry_run,
        decrypt_keys=list(decrypt_keys) or None,
        encrypt_for=list(encrypt_for) or None,
    )
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        if not results:
            click.echo(f"{repository}: no published kits")
        for r in results:
            tags = ",".join(r.tags)
            if r.action == "skipped":
                click.echo(f"{tags:<16} {r.digest[:19]}…  skipped: {r.reason}")
                continue
            before = r.previous or "no scan attestation"
            click.echo(f"{tags:<16} {r.digest[:19]}…  {before} -> {r.current}  [{r.action}]")
            for line in r.added[:5]:
                click.echo(f"    new:      {line}")
            for line in r.resolved[:5]:
                click.echo(f"    resolved: {line}")
    failing = [r for r in results if r.fails_policy]
    if failing:
        click.echo(
            f"error: {len(failing)} kit(s) in {repository} no longer pass the trust policy's max_severity "
            f"({', '.join(','.join(r.tags) for r in failing[:3])}): fix and re-publish them",
            err=True,
        )
        sys.exit(1)


@main.command()
@click.argument("ref")
@click.option("--key", "keys_", multiple=True, help="Trusted public key (repeatable); default: the config's.")
@click.option("--json", "as_json", is_flag=True, help="Print the in-toto statement as JSON.")
@_decrypt_option
def provenance(ref: str, keys_: tuple[str, ...], as_json: bool, decrypt_keys: tuple[str, ...]) -> None:
    """Show the verified SLSA provenance of REF."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.harden.verify import TrustPolicy, verify_kit

    policy = TrustPolicy.from_config(load_config(), keys=list(keys_) or None, decrypt_keys=list(decrypt_keys))
    policy.required_attestations = ["provenance"]
    result = verify_kit(ref, policy, deep=False)
    if result.provenance is None or not result.ok:
        why = "; ".join(f"{c.name}: {c.detail}" for c in result.failures()) or "no provenance"
        raise ModelKitError(f"no verified provenance for {ref}: {why}")
    if as_json:
        click.echo(json.dumps(result.provenance, indent=2))
        return
    from mlflow_plugin.trust.provenance import summarize

    click.echo(summarize(result.provenance))


@main.group()
def config() -> None:
    """Admin configuration (MLFLOW_MODELKIT_CONFIG TOML file + MLFLOW_MODELKIT_* env)."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
def config_show(as_json: bool) -> None:
    """Print the effective configuration with the source of each value (secrets masked)."""
    from mlflow_plugin.config import load_config

    rows = load_config().show()
    if as_json:
        click.echo(json.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
        return
    w = max(len(k) for k, _, _ in rows)
    for k, v, s in rows:
        click.echo(f"{k:<{w}}  {v}  [{s}]")


@main.command()
@click.argument("host")
@click.option("-u", "--username", help="User name (prompted for when missing).")
@click.option("-p", "--password", help="Password (insecure: visible in process lists; use --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def login(host: str, username: str | None, password: str | None, password_stdin: bool) -> None:
    """Check credentials against registry HOST, then store them as docker does (a credential
    helper if the Docker config names one, else config.json)."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.storage.login import login as do_login

    if password is not None and password_stdin:
        raise click.UsageError("use either --password or --password-stdin")
    if password is not None:
        click.echo(
            "WARNING! Using --password is insecure (process lists, shell history): use --password-stdin.",
            err=True,
        )
    if password_stdin:
        if not username:
            raise click.UsageError("--password-stdin needs --username")
        password = sys.stdin.read(64 * 1024 + 1)
        if password.endswith("\n"):
            password = password[:-1]
        if password.endswith("\r"):
            password = password[:-1]
    if not username:
        username = click.prompt("Username", err=True)
    if password is None:
        password = click.prompt("Password", hide_input=True, err=True)
    result = do_login(host, str(username), str(password), settings=load_config().storage_settings())
    click.echo(f"Login succeeded: {result.username}@{result.host}, stored in {result.stored_in}")


@main.command()
@click.argument("host")
def logout(host: str) -> None:
    """Remove the stored credentials for registry HOST."""
    from mlflow_plugin.storage.login import logout as do_logout

    removed = do_logout(host)
    if not removed:
        click.echo(f"Not logged in to {host.strip()}: no stored credentials")
        return
    click.echo(f"Removed the credentials for {host.strip()} from {', '.join(removed)}")


@main.command(name="list")
@click.argument("repository")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(repository: str, as_json: bool) -> None:
    """List the tags of REPOSITORY (registry repo or oci:DIR) with digests and sizes."""
    rows = packaging.list_tags(repository)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no tags in {repository}")
        return
    w = max(3, *(len(r["tag"]) for r in rows))
    click.echo(f"{'TAG':<{w}}  {'DIGEST':<71}  {'SIZE':>10}  TYPE")
    for r in rows:
        click.echo(f"{r['tag']:<{w}}  {r['digest']:<71}  {_human(r['size']):>10}  {r['type']}")


# ---- serving what verifies (issue 12, requirements 4 and 5) ---------------------------------------
@main.command()
@click.argument("ref")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--key", "keys_", multiple=True, help="Trusted public key (repeatable); default: the config's.")
@click.option("--workers", type=click.IntRange(1, 64), help="Model server workers (default: MLflow's).")
@click.option("--model", "model", help="The MLflow model directory inside the kit, if it holds several.")
@click.option(
    "--from-dir",
    "from_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Serve this read-only unpacked kit (e.g. baked into an image), checked against REF.",
)
@click.option("--check-only", is_flag=True, help="Verify and check the files, then exit without serving.")
@_decrypt_option
def serve(
    ref: str,
    port: int,
    host: str,
    keys_: tuple[str, ...],
    workers: int | None,
    model: str | None,
    from_dir: str | None,
    check_only: bool,
    decrypt_keys: tuple[str, ...],
) -> None:
    """Verify REF, unpack it read-only, check every file against the signed index, then serve it.

    The tag is resolved to a digest once; that digest is printed and sent with every response as
    the X-ModelKit-Digest header. A kit that fails a check never starts (exit 1)."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.harden.serve import ServeRefused, prepare, run_server
    from mlflow_plugin.harden.verify import TrustPolicy
    from mlflow_plugin.kit.limits import UnpackLimits

    cfg = load_config()
    policy = TrustPolicy.from_config(cfg, keys=list(keys_) or None, decrypt_keys=list(decrypt_keys))
    try:
        served = prepare(
            ref,
            policy,
            model=model,
            limits=UnpackLimits.from_config(cfg),
            directory=from_dir,
            settings=cfg.storage_settings(),
        )
    except ServeRefused as e:
        click.echo(f"error: {_one_line(str(e))}", err=True)
        sys.exit(1)
    if check_only:
        served.cleanup()
        click.echo(f"verified {served.reference}: every file of {served.kit_dir} matches the signed index")
        return
    click.echo(f"serving {served.reference} from {served.model_dir}", err=True)
    sys.exit(run_server(served, host, port, workers))


@main.command()
@click.argument("ref")
@click.option(
    "--base",
    default=None,
    help="Base image, IMAGE[:TAG][@sha256:…] (default python:3.11-slim; pin it by digest).",
)
@click.option("--key", "key", help="Public key baked into the image; default: the config's only trusted key.")
@click.option(
    "-o",
    "--output",
    "out_dir",
    default=None,
    help="Write Dockerfile, modelkit-entry.sh and the key into this directory "
    "(default: print one self-contained Dockerfile to stdout).",
)
@click.option("--model", "model", help="The MLflow model directory inside the kit, if it holds several.")
@_decrypt_option
def dockerfile(
    ref: str,
    base: str | None,
    key: str | None,
    out_dir: str | None,
    model: str | None,
    decrypt_keys: tuple[str, ...],
) -> None:
    """Print a Dockerfile serving REF, pinned by digest (or, with -o DIR, write the recipe's files).

    Without -o, stdout is exactly one Dockerfile with the entry script and the public key embedded
    (BuildKit heredocs): `mlflow-modelkit dockerfile REF > Dockerfile` then `docker build - <
    Dockerfile`. With -o DIR: Dockerfile, modelkit-entry.sh and <sha256>.pub. The image unpacks the
    kit read-only at build time, runs as a non-root user, and re-verifies the kit with the baked key
    at start-up before serving. Encrypted kits need --decrypt-key here (to check their sealed
    attestations), `--secret id=modelkit_decrypt_key,src=enc.key` at build time and
    MLFLOW_MODELKIT_DECRYPT_KEYS in the container; the key never enters the image. Warnings go to
    stderr."""
    from mlflow_plugin.config import load_config
    from mlflow_plugin.harden.dockerfile import DEFAULT_BASE, write_recipe
    from mlflow_plugin.harden.serve import ServeRefused

    cfg = load_config()
    if key is None:
        if len(cfg.trusted_keys) != 1:
            raise click.UsageError("--key PUB is required: the public key the image verifies with")
        key = cfg.trusted_keys[0]
    try:
        r = write_recipe(
            ref,
            out_dir,
            key,
            base=base or DEFAULT_BASE,
            model=model,
            decrypt_keys=list(decrypt_keys) or cfg.decrypt_keys,
            settings=cfg.storage_settings(),
        )
    except ServeRefused as e:
        click.echo(f"error: {_one_line(str(e))}", err=True)
        sys.exit(1)
    for w in r.warnings:
        click.echo(f"warning: {_one_line(w)}", err=True)
    if base is None or "@sha256:" not in base:
        click.echo(
            f"warning: the base image is a tag ({base or DEFAULT_BASE}): pin it with --base IMAGE@sha256:…",
            err=True,
        )
    if out_dir is None:
        click.echo(r.single_file(), nl=False)  # stdout is the Dockerfile and nothing else
        return
    for name in ("Dockerfile", "modelkit-entry.sh", r.key_name):
        click.echo(os.path.join(out_dir, name))
    click.echo(f"serves {r.reference}")


if __name__ == "__main__":
    main()
