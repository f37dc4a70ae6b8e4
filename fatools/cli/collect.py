"""fa-collect: one table (CSV) of a whole study from fa-run's results trees."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("roots", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--table", "output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="The table's file ('-': standard output); written under a temporary name first.")
@options.config_option
@options.trust_config_option
@options.command("fa-collect")
def cli(roots, output, config_path, trust_config):
    """Collect fa-run's results below ROOTS into one CSV table.

    One row per input (level "video": status, duration, frames analysed, faces, tracks,
    expression shares, valence and arousal mean and sd, each AU's activation rate and
    mean probability, blinks per minute, the options fingerprint and model hashes) and
    one per track (level "track", the same figures). Failed and partial inputs get their
    row with their status and error. Streams: thousands of directories in constant
    memory. See fa-collect(1).
    """
    import os
    import sys

    from fatools.collect import collect
    from fatools.errors import FatoolsError
    from fatools.models.config import expression_labels

    labels = expression_labels(config_path, trust_config)
    if output == "-":
        counts = collect(roots, sys.stdout, labels)
    else:
        tmp = os.path.join(os.path.dirname(os.path.abspath(output)), f".{os.path.basename(output)}.part")
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                counts = collect(roots, handle, labels)
            os.replace(tmp, output)
        except OSError as exc:
            raise FatoolsError(f"{output}: cannot write the table ({exc.strerror}); choose another -o") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no results found"
    click.echo(f"fa-collect: {summary}", err=True)


def main() -> None:
    options.run_command(cli, "fa-collect")
