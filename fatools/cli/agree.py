"""fa-agree: fatools' results against human coders' codings (and other tools' tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fatools.cli import options


def _named(values: tuple[str, ...], what: str) -> dict[str, list[str | Path]]:
    """``NAME=PATH`` or ``PATH`` (named after the file) into {name: [paths]}; a name repeated gathers its files."""
    out: dict[str, list[str | Path]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).stem or value, value
        if not Path(path).exists():
            raise click.BadParameter(f"{path}: no such file or directory", param_hint=what)
        out.setdefault(name, []).append(path)
    return out


def _threshold(ctx: click.Context, param: click.Parameter, value: str) -> str | float:
    if value in ("default", "best"):
        return value
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter("default, best, or a number between 0 and 1") from None
    if not 0 <= number <= 1:
        raise click.BadParameter("default, best, or a number between 0 and 1")
    return number


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "-r",
    "--reference",
    "references",
    multiple=True,
    required=True,
    metavar="[NAME=]PATH",
    help="A human coding: an ELAN .eaf, a per-frame table (DISFA's file per AU and BP4D's included), an "
    "interval table, or a directory of them (matched to videos by file name). NAME names the coder "
    "(default: the file name); repeat for more coders, or a NAME for more files of one coder.",
)
@click.option(
    "--rater",
    "raters",
    multiple=True,
    metavar="[NAME=]PATH",
    help="Another tool's table (py-feat's Fex CSV, OpenFace's CSV) scored beside fatools as one more rater.",
)
@click.option(
    "--protocol",
    type=click.Choice(sorted(__import__("fatools.agree.codes", fromlist=["x"]).PROTOCOLS)),
    help="A published protocol: its AUs, presence level and frame numbering (disfa-plus: py-feat's 12 AUs "
    "present at intensity >= 2; bp4d: its 12 AUs, occurrence).",
)
@click.option(
    "--aus", help="Only these AUs, comma-separated (AU1,AU12 or 1,12) [default: all the coders coded]."
)
@click.option(
    "--threshold",
    default="default",
    show_default=True,
    callback=_threshold,
    help="fatools' AU threshold: default (the records' own), a number, or best (chosen per AU on half the "
    "videos, or half the video, and scored on the other half, both ways).",
)
@click.option(
    "--track", help="The track compared in every video [default: the main track, seen in most frames]."
)
@click.option(
    "--tracks",
    "tracks_path",
    type=click.Path(exists=True, dir_okay=False),
    help="A CSV of video,track: the track per video (by file name without extension).",
)
@click.option(
    "--reference-fps",
    type=click.FloatRange(min=0, min_open=True),
    help="The rate of per-frame references without a time column [default: the video's].",
)
@click.option(
    "--first-frame",
    type=int,
    help="The references' number for the video's first frame [default: 0; 1 for DISFA's files and with "
    "a --protocol]; other tools' tables keep their own (py-feat's: 0).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds an onset or offset may differ and still match, for event agreement.",
)
@click.option(
    "--block",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per time block, the bootstrap's unit within one video [default: 10, or a tenth of a "
    "shorter video]; with several videos the unit is the video.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the 95%% intervals (0: none).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="The bootstrap's random seed.")
@click.option(
    "-o",
    "--table",
    "output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="The table's file ('-': standard output); written under a temporary name first.",
)
@click.option(
    "--json-file",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Also write the figures, alignment and confusion matrices as JSON.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Also write a page: the table, each AU's "
    "figure beside coder against coder, and a timeline per AU that seeks the video (plotly.min.js is "
    "written beside it).",
)
@options.command("fa-agree")
def cli(
    results: tuple[str, ...],
    references: tuple[str, ...],
    raters: tuple[str, ...],
    protocol: str | None,
    aus: str | None,
    threshold: str | float,
    track: str | None,
    tracks_path: str | None,
    reference_fps: float | None,
    first_frame: int | None,
    tolerance: float,
    block: float | None,
    resamples: int,
    seed: int,
    output: str,
    json_path: str | None,
    html_path: str | None,
) -> None:
    """Agreement of fatools' RESULTS (fa-run's directories, a study tree, or frames.jsonl) with
    human coders: occurrence F1, precision, recall, kappa; intensity ICC(3,1), Pearson, MAE;
    expression accuracy and macro-F1; valence/arousal CCC; onset/offset event F1; each AU
    per video and pooled with 95% bootstrap intervals, beside coder-against-coder
    agreement. See fa-agree(1)."""
    import sys

    import pandas as pd

    from fatools.agree import agree
    from fatools.agree.codes import parse_au
    from fatools.agree.output import save
    from fatools.errors import FatoolsError

    keep: list[str] | None = None
    if aus:
        parsed = [parse_au(a) for a in aus.split(",") if a.strip()]
        keep = [p[0] for p in parsed if p is not None]
        if len(keep) < len(parsed) or not keep:
            raise click.BadParameter(f"{aus}: not AU codes", param_hint="--aus")
    tracks: dict[Any, Any] | None = None
    if tracks_path:
        table = pd.read_csv(tracks_path, dtype=str)
        if not {"video", "track"} <= set(table.columns):
            raise click.BadParameter("needs columns video and track", param_hint="--tracks")
        tracks = dict(zip(table.video, table.track, strict=True))
    result = agree(
        list(results),
        _named(references, "--reference"),
        _named(raters, "--rater"),
        protocol=protocol,
        aus=keep,
        threshold=threshold,
        track=track,
        tracks=tracks,
        reference_fps=reference_fps,
        first_frame=first_frame,
        tolerance=tolerance,
        block=block,
        resamples=resamples,
        seed=seed,
    )
    for row in result.alignment.to_dict("records"):
        unknown = ", ".join(f"{k} ({v})" for k, v in (row.get("unknown_codes") or {}).items())
        click.echo(
            f"fa-agree: {row['video']} / {row['source']}: {row['face_rule']} {row['track']}, "
            f"{row['frames_with_face']} of {row['fatools_frames']} sampled frames with the face"
            + (
                f"; {int(row['fatools_frames_without_reference'])} without a reference sample, "
                f"{int(row['reference_samples_not_sampled'])} reference samples not sampled"
                if "reference_samples" in row and pd.notna(row.get("reference_samples"))
                else ""
            )
            + (f"; {row['extent']}" if isinstance(row.get("extent"), str) else "")
            + (f"; codes fatools does not have: {unknown}" if unknown else ""),
            err=True,
        )
    if output == "-":
        result.table.to_csv(sys.stdout, index=False)
    try:
        save(result, table=None if output == "-" else output, json_file=json_path, html=html_path)
    except OSError as exc:
        raise FatoolsError(
            f"{exc.filename or output}: cannot write ({exc.strerror}); choose a writable path"
        ) from None


def main() -> None:
    options.run_command(cli, "fa-agree")
