"""fa-export: write a record stream as the seed's JSON, CSV tables, a text report and
PNG figures, into one directory."""

from __future__ import annotations

import logging
import re

import click

from fatools.cli import options

log = logging.getLogger("fatools")


def _timestamp(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d{8}_\d{6}", value):
        raise click.BadParameter("give it as YYYYmmdd_HHMMSS, e.g. 20260101_120000")
    return value


def _json_object(path: str, what: str) -> dict:
    import orjson

    from fatools.errors import FatoolsError

    try:
        with open(path, "rb") as handle:
            data = orjson.loads(handle.read())
    except OSError as exc:
        raise FatoolsError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise FatoolsError(f"{path}: the {what} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FatoolsError(f"{path}: the {what} must be a JSON object")
    return data


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@options.output_dir_option("fa-export")
@options.formats_option
@click.option(
    "--timestamp",
    callback=_timestamp,
    default=None,
    metavar="YYYYmmdd_HHMMSS",
    help="The timestamp in the file names [default: now, local time].",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Use this fa-summarize output instead of summarizing the records again.",
)
@click.option(
    "--metadata",
    "metadata_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A JSON object merged over the JSON export's analysis_metadata (e.g. processing_duration_seconds).",
)
@options.summary_options("fa-export")
@options.on_error_option
@options.command("fa-export")
def cli(
    inputs: tuple[str, ...],
    output_dir: str,
    formats: tuple[str, ...],
    timestamp: str | None,
    summary_path: str | None,
    metadata_path: str | None,
    on_threshold: float | None,
    off_threshold: float,
    min_duration: float,
    episode_gap: float | None,
    top: int,
    events: str | None,
    baseline: str | None,
    min_quality: str | None,
    on_error: str,
) -> None:
    """Export records as files people and other tools read.

    Reads records (from fa-predict, ideally after fa-track) once and writes into
    OUTPUT_DIR: the complete analysis as JSON (json), a row per face (csv), a row per
    action unit per face (au-timeline), py-feat's columns (wide), a report (text), PNG
    figures (plots), ELAN tiers (elan), WebVTT captions (webvtt) and, when named, the
    annotated video (overlay); with --events, statistics per event. Every file is
    written under a temporary name and renamed when the export has succeeded. Prints
    the files written, one per line. See fa-export(1).
    """
    from fatools.errors import FatoolsError
    from fatools.export import NoFramesError, export
    from fatools.records import read_paths

    summary_options = options.summary_from(
        on_threshold, off_threshold, min_duration, episode_gap, top, events, baseline, min_quality
    )
    summary = _json_object(summary_path, "summary") if summary_path else None
    metadata = _json_object(metadata_path, "metadata") if metadata_path else None
    paths = options.input_paths(inputs)
    try:
        result = export(
            read_paths(paths, on_error),
            output_dir,
            formats,
            summary=summary,
            summary_options=summary_options,
            analysis_metadata=metadata,
            timestamp=timestamp,
        )
    except NoFramesError:
        names = ", ".join("<stdin>" if p == "-" else p for p in paths)
        raise FatoolsError(
            f"{names}: no frame records, nothing to export (give the records of fa-predict, or of fa-detect)"
        ) from None
    for path in result.paths():
        click.echo(str(path))


def main() -> None:
    options.run_command(cli, "fa-export")
