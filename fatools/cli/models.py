"""fa-models: list, fetch, locate and import the model files fatools uses.

A thin layer over ``fatools.models.store`` and ``fatools.models.fetch``; torch and
facetorch load only in the subcommands that need them (fetch, import), so ``list`` and
``--help`` stay fast.
"""

from __future__ import annotations

import json

import click

from fatools.cli import options
from fatools.errors import FatoolsError
from fatools.models.catalogue import MODELS

PROG = "fa-models"

model_name = click.Choice(list(MODELS))

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON instead of the table (list, verify: one object per model per line, all "
    "fields; doctor: one object).",
)


def _human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{size}B"  # pragma: no cover - the loop always returns


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@options.version_option(PROG)
def cli() -> None:
    """Manage fatools' model store: one directory holding every model file.

    The store is --models-dir, else $FATOOLS_MODELS, else ~/.cache/fatools/models.
    Fill it with `fa-models fetch` on a machine with network, then copy the
    directory to machines without one; `fa-models verify` checks it.  The store is
    trusted input: its files are code.  See fa-models(1).
    """


@cli.command("list")
@options.models_dir_option
@json_option
@options.command(PROG, version=False)
def list_cmd(models_dir: str | None, as_json: bool) -> None:
    """List every model: task, present or missing, size, sha256, source, its ONNX export, path.

    ONNX: "ok(2e-07)" (the export exists; the largest difference from TorchScript found
    when it was checked), "failed" (it runs on torch; --json says why), "damaged" (changed
    since it was made: it runs on torch; `fa-models prepare NAME --force`), "-" (not made
    yet: the first run or `fa-models prepare` makes it).
    """
    from fatools.models import store
    from fatools.models.onnx_export import export_status

    rows = store.status(models_dir)
    for row in rows:  # the ONNX export beside each TorchScript model (the deriver's, not the store's)
        exported = row["present"] and row["sha256"] and store.spec(row["name"]).filename == "model.pt"
        row["onnx"] = export_status(row["path"], row["sha256"]) if exported else None
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=False))
        return
    table: list[tuple[str, ...]] = [("NAME", "TASK", "STATUS", "SIZE", "SHA256", "SOURCE", "ONNX", "PATH")]
    for row in rows:
        onnx = row.get("onnx") or {}
        onnx_cell = {
            "ok": f"ok({onnx.get('max_abs_diff') or 0:.0e})",
            "failed": "failed",
            "damaged": "damaged",
        }.get(str(onnx.get("state")), "-")
        table.append(
            (
                row["name"],
                row["task"],
                "present" if row["present"] else "missing",
                _human_size(row["size"]),
                (row["sha256"] or "-")[:12],
                row["source"] or "-",
                onnx_cell,
                row["path"],
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        click.echo("  ".join([*cells, line[-1]]))  # the last column unpadded


@cli.command("fetch")
@click.argument("names", nargs=-1, type=model_name, metavar="[NAME]...")
@click.option("--all", "fetch_all", is_flag=True, help="Every model in the catalogue.")
@options.force_option
@options.models_dir_option
@options.command(PROG, version=False)
def fetch_cmd(names: tuple[str, ...], fetch_all: bool, force: bool, models_dir: str | None) -> None:
    """Download models into the store; print their paths.

    Without NAMEs: what the default pipeline needs (RetinaFace, au, fer, va, align and
    the align 3DMM meta file).  Needs network; see fa-models(1) for machines without.
    """
    from fatools.models import fetch

    if fetch_all:
        wanted: list[str] = list(MODELS)
    elif names:
        wanted = list(names)
    else:
        from fatools.models.config import load_config, required_models

        wanted = required_models(load_config(root=models_dir))
    for path in fetch.fetch(wanted, models_dir, force=force):
        click.echo(str(path))


@cli.command("path")
@click.argument("name", type=model_name, metavar="NAME")
@click.option("--check", is_flag=True, help="Exit 1 with a message when the model is absent.")
@options.models_dir_option
@options.command(PROG, version=False)
def path_cmd(name: str, check: bool, models_dir: str | None) -> None:
    """Print where model NAME lives (or would live) in the store."""
    from fatools.models import store

    if check:
        store.require([name], models_dir, verify=False)  # presence only: `verify` checks content
    click.echo(str(store.model_path(name, models_dir)))


@cli.command("import")
@click.argument("name", type=model_name, metavar="NAME")
@click.argument("file", type=click.Path(dir_okay=False))
@options.models_dir_option
@options.command(PROG, version=False)
def import_cmd(name: str, file: str, models_dir: str | None) -> None:
    """Install FILE, carried over by hand, as model NAME; print its store path.

    The file is checked first (it must load as facetorch will load it).  For
    retinaface-mnet give the published mobilenet0.25_Final.pth; it is converted.
    """
    from fatools.models import store

    click.echo(str(store.import_model(name, file, models_dir)))


@cli.command("verify")
@click.argument("names", nargs=-1, type=model_name, metavar="[NAME]...")
@options.models_dir_option
@json_option
@options.command(PROG, version=False)
def verify_cmd(names: tuple[str, ...], models_dir: str | None, as_json: bool) -> None:
    """Rehash the store: each model ok, changed, missing, damaged or partial; exit 1 unless all ok.

    Without NAMEs: every model the store has anything of. Every file is read in full,
    the files derived from the models (ONNX exports) too (the check before each run is
    a stat); see fa-models(1), VERIFICATION.
    """
    from fatools.models import store, verify

    rows = []
    for row in verify.verify(names or None, models_dir):
        rows.append(row)
        if as_json:
            click.echo(json.dumps(row))
        else:
            detail = "; ".join(row["problems"]) or f"sha256 {row['sha256'][:12]}, source {row['source']}"
            click.echo(f"{row['name']:<16} {row['status']:<8} {detail}")
    if not rows:
        raise FatoolsError(
            f"{store.models_dir(models_dir)}: no models in this store; {store.what_to_do([], models_dir)}"
        )
    bad = [f"{row['name']} {row['status']}" for row in rows if row["status"] != "ok"]
    if bad:
        raise FatoolsError(
            f"{len(bad)} of {len(rows)} models not ok in {store.models_dir(models_dir)}: {', '.join(bad)}"
        )


@cli.command("prepare")
@click.argument("names", nargs=-1, type=model_name, metavar="[NAME]...")
@options.int8_option
@options.force_option
@options.models_dir_option
@options.verify_option
@options.command(PROG, version=False)
def prepare_cmd(
    names: tuple[str, ...], int8: bool, force: bool, models_dir: str | None, verify: bool
) -> None:
    """Make the files runs derive from the models (their checked ONNX exports), once; print their paths.

    Without NAMEs: every model present in the store. Run it where the store is
    writable, before it is made read-only: a read-only store is never written at run time.
    With --int8 also the AU model's int8 form that --int8 runs use; --force makes them
    again (after a failed export, for instance).
    """
    from fatools.models import derived, store

    wanted = list(names) or [name for name in MODELS if store.is_present(name, models_dir)]
    store.require(wanted, models_dir, verify=verify)
    made = 0
    for _, _, paths in derived.prepare(wanted, models_dir, int8=int8, force=force):
        for path in paths:
            click.echo(str(path))
            made += 1
    if not derived.DERIVERS:
        click.echo(f"{PROG}: nothing to prepare: no derived files are in use", err=True)
    elif not made:
        click.echo(f"{PROG}: nothing to prepare for {', '.join(wanted) or 'an empty store'}", err=True)


@cli.command("doctor")
@options.device_option
@json_option
@options.command(PROG, version=False)
def doctor_cmd(device: str, as_json: bool) -> None:
    """Print the software stack in one place, for a bug report.

    Python, torch and the CUDA it was built for, numpy, facetorch, PyAV, OpenCV, ONNX
    Runtime when present, the GPUs torch sees and the device fatools would use with
    --device.  Exits 1 when facetorch or torch is missing or broken, saying what to do.
    """
    from fatools import stack

    info = stack.describe(device)
    if as_json:
        click.echo(json.dumps(info))
    else:
        for key, value in info.items():
            if isinstance(value, list):
                value = ", ".join(value) or "none"
            click.echo(f"{key + ':':<16} {'not installed' if value is None else value}")
    if info.get("torch_error"):
        raise FatoolsError(f"torch does not import ({info['torch_error']}); see the README's Install section")
    stack.require_facetorch()


def main() -> None:
    """Console-script entry point."""
    options.run_command(cli, PROG)
