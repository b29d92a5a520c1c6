"""``mlflow-modelkit`` command line: the only module that prints.

mlflow-modelkit pack ./my-model -t oci:./kits/fraud:v1
mlflow-modelkit push oci:./kits/fraud:v1 localhost:5000/team/fraud:v1
mlflow-modelkit unpack localhost:5000/team/fraud:v1 -d ./out --filter model
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import click

from . import __version__, ops
from .errors import ModelKitError


def _progress_enabled() -> bool:
    if os.environ.get("CI") or os.environ.get("MLFLOW_MODELKIT_NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


class _Bars:
    """A tqdm progress factory (one bar per call) that is silent off-terminal."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.enabled = _progress_enabled()

    def __call__(self, desc: str, total: int | None) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from tqdm import tqdm

        bar = self.stack.enter_context(
            tqdm(
                total=total,
                desc=desc[:40],
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        )
        return bar.update


def _fail(e: Exception) -> None:
    click.echo(f"error: {e}", err=True)
    sys.exit(2)


def _human(n: int) -> str:
    f = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if f < 1024 or unit == "TiB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return str(n)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelKitError as e:
            _fail(e)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


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
        r = ops.pack(context, target, kitfile=kitfile, compression=compression, progress=_Bars(stack))
    for w in r.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{r.target}@{r.digest}")


@main.command()
@click.argument("source")
@click.argument("dest")
def push(source: str, dest: str) -> None:
    """Copy a kit from SOURCE to DEST (layout or registry); existing blobs are skipped."""
    with ExitStack() as stack:
        digest = ops.copy(source, dest, progress=_Bars(stack))
    click.echo(f"{dest}@{digest}")


@main.command()
@click.argument("source")
@click.option("-t", "--tag", "dest", required=True, help="Destination, e.g. oci:./kits/fraud:v1.")
def pull(source: str, dest: str) -> None:
    """Copy a kit from a registry (or layout) SOURCE into DEST."""
    with ExitStack() as stack:
        digest = ops.copy(source, dest, progress=_Bars(stack))
    click.echo(f"{dest}@{digest}")


@main.command()
@click.argument("ref")
@click.option("-d", "--dir", "directory", default=".", show_default=True, help="Directory to unpack into.")
@click.option(
    "--filter", "filters", multiple=True, help="model, datasets, code, docs, prompts, kitfile (TYPE:NAME)."
)
@click.option("-o", "--overwrite", is_flag=True, help="Replace existing files.")
@click.option("-i", "--ignore-existing", is_flag=True, help="Keep existing files, write the rest.")
def unpack(
    ref: str, directory: str, filters: tuple[str, ...], overwrite: bool, ignore_existing: bool
) -> None:
    """Extract kit REF into a directory (verified; nothing is written if a check fails)."""
    with ExitStack() as stack:
        files = ops.unpack(
            ref,
            directory,
            filters=list(filters),
            overwrite=overwrite,
            ignore_existing=ignore_existing,
            progress=_Bars(stack),
        )
    click.echo(f"unpacked {len(files)} files into {directory}")


@main.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print {digest, manifest, config} as JSON.")
def inspect(ref: str, as_json: bool) -> None:
    """Show a kit's manifest and config (the Kitfile as JSON)."""
    info = ops.inspect(ref)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reference": info.reference,
                    "digest": info.digest,
                    "mediaType": info.media_type,
                    "manifest": info.manifest,
                    "config": info.config,
                },
                indent=2,
            )
        )
        return
    click.echo(f"Reference: {info.reference}")
    click.echo(f"Digest:    {info.digest}")
    click.echo(f"Type:      {info.media_type}")
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
@click.option("--sarif", "sarif", type=click.Path(dir_okay=False, allow_dash=True),
              help="Also write a SARIF 2.1.0 report to this file ('-' for stdout).")
@click.option("--fail-on", default="high", show_default=True,
              type=click.Choice(["critical", "high", "medium", "low", "info"], case_sensitive=False),
              help="Exit 1 if any finding is at or above this severity.")
@click.option("--allow-global", "allow_globals", multiple=True, metavar="MODULE.NAME",
              help="Trust this pickle global (repeatable), e.g. mypkg.MyEstimator.")
@click.option("--allow-module", "allow_modules", multiple=True, metavar="MODULE",
              help="Trust every global of this module (repeatable; prefer --allow-global).")
def scan(target: str, as_json: bool, sarif: str | None, fail_on: str, allow_globals: tuple[str, ...],
         allow_modules: tuple[str, ...]) -> None:
    """Scan a file, a directory or a kit (oci:DIR:TAG, HOST/REPO:TAG) without executing anything.

    Exit status: 0 clean, 1 findings at or above --fail-on, 2 error.
    """
    from .scan.api import scan as run_scan
    from .scan.context import Policy
    from .scan.report import Severity

    policy = Policy(allow_globals=frozenset(allow_globals), allow_modules=frozenset(allow_modules))
    report = run_scan(target, policy=policy)
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
    counts = report.counts()
    formats: dict[str, int] = {}
    for f in report.files:
        formats[f.format] = formats.get(f.format, 0) + 1
    fmt = ", ".join(f"{n} {k}" for k, n in sorted(formats.items(), key=lambda kv: -kv[1]))
    click.echo(f"Scanned {report.target}: {len(report.files)} files ({fmt or 'none'})")
    if not report.findings:
        click.echo("No findings.")
        return
    w = max(len(f.path) for f in report.findings)
    w = min(max(w, 4), 60)
    click.echo(f"{'SEVERITY':<9} {'PATH':<{w}}  {'RULE':<28} MESSAGE")
    for f in report.sorted_findings():
        path = f.path if len(f.path) <= w else "…" + f.path[-(w - 1):]
        ev = f" [{f.evidence}]" if f.evidence else ""
        click.echo(f"{str(f.severity).upper():<9} {path:<{w}}  {f.rule:<28} {f.message}{ev}")
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    click.echo(f"{len(report.findings)} findings: {summary}")


@main.command(name="list")
@click.argument("repository")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(repository: str, as_json: bool) -> None:
    """List the tags of REPOSITORY (registry repo or oci:DIR) with digests and sizes."""
    rows = ops.list_tags(repository)
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


if __name__ == "__main__":
    main()
