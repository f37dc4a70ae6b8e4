"""fa-collect: one table (CSV) of a whole study from fa-run's results trees."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("roots", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--table", "output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="The table's file ('-': standard output); written under a temporary name first.")
@click.option("--index", "index_path", type=click.Path(dir_okay=False),
              help="Write the study's index page (a sortable row per input, linking to its report) to FILE "
                   "[default: index.html beside the -o table; none when the table goes to standard output].")
@click.option("--no-index", is_flag=True, help="Write no index page.")
@options.config_option
@options.trust_config_option
@options.command("fa-collect")
def cli(roots, output, index_path, no_index, config_path, trust_config):
    """Collect fa-run's results below ROOTS into one CSV table.

    One row per input (level "video": status, duration, frames analysed, faces, tracks,
    expression shares, valence and arousal mean and sd, each AU's activation rate and
    mean probability, blinks per minute, the options fingerprint and model hashes) and
    one per track (level "track", the same figures). Failed and partial inputs get their
    row with their status and error. Streams: thousands of directories in constant
    memory. Beside a table written with -o, index.html lists every input with its
    status, error and main figures, sortable and filterable, each linking to its
    interactive report. See fa-collect(1).
    """
    import os
    import sys

    from fatools.study.collect import collect
    from fatools.errors import FatoolsError
    from fatools.models.config import expression_labels

    from fatools.study.index import StudyIndex

    if no_index and index_path:
        raise click.UsageError("--index and --no-index contradict each other; give one")
    labels = expression_labels(config_path, trust_config)
    if index_path is None and output != "-" and not no_index:
        index_path = os.path.join(os.path.dirname(os.path.abspath(output)), "index.html")
    index = None
    if index_path:
        try:
            index = StudyIndex(index_path)
        except OSError as exc:
            raise FatoolsError(f"{index_path}: cannot write the index page ({exc.strerror}); "
                               "choose another --index") from None
    try:
        if output == "-":
            counts = collect(roots, sys.stdout, labels, index)
        else:
            tmp = os.path.join(os.path.dirname(os.path.abspath(output)), f".{os.path.basename(output)}.part")
            try:
                with open(tmp, "w", encoding="utf-8", newline="") as handle:
                    counts = collect(roots, handle, labels, index)
                os.replace(tmp, output)
            except OSError as exc:
                raise FatoolsError(f"{output}: cannot write the table ({exc.strerror}); choose another -o") from None
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        if index is not None:
            index.close()
            index = None
    finally:
        if index is not None:
            index.abort()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no results found"
    click.echo(f"fa-collect: {summary}", err=True)


def main() -> None:
    options.run_command(cli, "fa-collect")
