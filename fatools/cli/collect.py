"""fa-collect: one table (CSV) of a whole study from fa-run's results trees."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fatools.cli import options

if TYPE_CHECKING:
    from fatools.study.tidy import Reference, Video


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("roots", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
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
    "--index",
    "index_path",
    type=click.Path(dir_okay=False),
    help="Write the study's index page (a sortable row per input, linking to its report) to FILE "
    "[default: index.html beside the -o table; none when the table goes to standard output].",
)
@click.option("--no-index", is_flag=True, help="Write no index page.")
@options.design_options
@click.option(
    "--long",
    "long_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.csv",
    help="Write the long (tidy) table: a row per participant x video x segment x measure, as CSV to FILE.csv "
    "and Parquet to FILE.parquet (needs --design or --participant-from).",
)
@click.option(
    "--participants",
    "participants_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.csv",
    help="Write a row per participant (videos, minutes with a face, each measure's mean and median) as CSV "
    "and Parquet (needs --design or --participant-from).",
)
@click.option(
    "--window",
    default=None,
    metavar="DURATION",
    help="Also cut each video into fixed windows of DURATION (10s, 500ms, 2min) in the long table.",
)
@options.events_option
@options.baseline_option
@click.option(
    "--normalize",
    type=click.Choice(["none", "person", "baseline"]),
    default="none",
    show_default=True,
    help="Each measure also as the difference from (delta) and z-score against the participant's own "
    "median over all their videos (person) or over their --baseline events (baseline): in the long "
    "table, and for the participant's track rows of the table (AU means, valence and arousal means); "
    "the raw values stay.",
)
@click.option(
    "--identity-threshold",
    type=click.FloatRange(-1, 1),
    default=0.5,
    show_default=True,
    help="Embedding cosine similarity below which a participant's track is reported as not the person "
    "of their other videos.",
)
@options.config_option
@options.trust_config_option
@options.command("fa-collect")
def cli(
    roots: tuple[str, ...],
    output: str,
    index_path: str | None,
    no_index: bool,
    design_path: str | None,
    participant_from: str | None,
    allow_partial: bool,
    long_path: str | None,
    participants_path: str | None,
    window: str | None,
    events: str | None,
    baseline: str | None,
    normalize: str,
    identity_threshold: float,
    config_path: str | None,
    trust_config: bool,
) -> None:
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

    from fatools.errors import FatoolsError
    from fatools.models.config import expression_labels
    from fatools.study.collect import collect
    from fatools.study.index import StudyIndex

    if no_index and index_path:
        raise click.UsageError("--index and --no-index contradict each other; give one")
    labels = expression_labels(config_path, trust_config)
    study = prepare_study(
        roots,
        design_path,
        participant_from,
        allow_partial,
        long_path,
        participants_path,
        window,
        events,
        baseline,
        normalize,
        identity_threshold,
        labels,
    )
    if index_path is None and output != "-" and not no_index:
        index_path = os.path.join(os.path.dirname(os.path.abspath(output)), "index.html")
    index = None
    if index_path:
        try:
            shown = study.design_columns if study is not None else []
            index = StudyIndex(
                index_path,
                design=[*shown, "participant_track", "identity"] if shown else None,
                filters=[*shown, "identity"],
            )
        except OSError as exc:
            raise FatoolsError(
                f"{index_path}: cannot write the index page ({exc.strerror}); choose another --index"
            ) from None
    try:
        if output == "-":
            counts = collect(roots, sys.stdout, labels, index, **study.collect_args() if study else {})
        else:
            tmp = os.path.join(os.path.dirname(os.path.abspath(output)), f".{os.path.basename(output)}.part")
            try:
                with open(tmp, "w", encoding="utf-8", newline="") as handle:
                    counts = collect(roots, handle, labels, index, **study.collect_args() if study else {})
                os.replace(tmp, output)
            except OSError as exc:
                raise FatoolsError(
                    f"{output}: cannot write the table ({exc.strerror}); choose another -o"
                ) from None
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        if index is not None:
            index.close()
            index = None
    finally:
        if index is not None:
            index.abort()
    if study is not None and (long_path or participants_path):
        for path in study.write_tables():
            click.echo(path)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no results found"
    click.echo(f"fa-collect: {summary}", err=True)


class Study:
    """The results with their design: each directory's cells, the participant's track and
    the identity check (pass one over the records), ready for the tables."""

    def __init__(
        self,
        videos: list[Video],
        design_columns: list[str],
        labels: list[str],
        refs: dict[str, Reference] | None,
        **table_options: Any,
    ) -> None:
        self.videos = videos
        self.design_columns = design_columns
        self.labels = labels
        self.refs = refs  # each participant's reference (--normalize), for both tables
        self.table_options = table_options
        self.by_dir = {video.directory: video for video in videos}

    def cells(self, directory: Path) -> dict[str, Any]:
        video = self.by_dir.get(directory)
        if video is None:
            return {}
        cells = {c: video.cells.get(c) for c in self.design_columns}
        if video.identity is not None:
            cells.update(
                participant_track=video.identity.track,
                track_rule=getattr(video.identity, "rule", None),
                identity=video.identity.status,
                identity_similarity=video.identity.similarity,
            )
        return cells

    def collect_args(self) -> dict[str, Any]:
        extra = [
            *self.design_columns,
            "participant_track",
            "track_rule",
            "role",
            "identity",
            "identity_similarity",
        ]
        args: dict[str, Any] = {
            "design": (extra, self.cells),
            "directories": [video.directory for video in self.videos],
        }
        if self.refs is not None:
            from fatools.study.tidy import main_table_columns

            args["normalise"] = (main_table_columns(), self.normalised)
        return args

    def normalised(self, directory: Path, row: dict) -> dict:
        """The participant's track row's figures against their reference (--normalize)."""
        from fatools.study.tidy import normalise_row

        video = self.by_dir.get(directory)
        ref = self.refs.get(video.participant or "") if video is not None and self.refs else None
        return normalise_row(row, ref, self.labels)

    def write_tables(self) -> list[str]:
        from fatools.study.tidy import write_tables

        return write_tables(
            self.videos, self.labels, self.design_columns, warn=_warn, refs=self.refs, **self.table_options
        )


def _warn(line: str) -> None:
    click.echo(f"fa-collect: warning: {line}", err=True)


def prepare_study(
    roots: tuple[str, ...],
    design_path: str | None,
    participant_from: str | None,
    allow_partial: bool,
    long_path: str | None,
    participants_path: str | None,
    window: str | None,
    events: str | None,
    baseline: str | None,
    normalize: str,
    identity_threshold: float,
    labels: Iterable[str],
) -> Study | None:
    """Every option of the study side checked, the design joined to the results and their
    tracks read, before anything is written.  Without --design or --participant-from, the
    design rows fa-run --design kept in the results' run.json; None without any design."""
    from fatools import events as events_module
    from fatools.study import design as design_module
    from fatools.study import outdir
    from fatools.study.collect import result_dirs
    from fatools.study.participants import check_identity
    from fatools.study.tidy import parse_duration, references, scan

    try:
        table = design_module.load(design_path, participant_from)
        events_module.require_events_for_baseline(events, baseline)
        seconds = parse_duration(window) if window else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if normalize == "baseline" and baseline is None:
        raise click.UsageError("--normalize baseline needs --events and --baseline LABEL")
    if (window or events) and not (long_path or participants_path):
        raise click.UsageError("--window and --events cut the long table; give --long")
    event_list = []
    if events:
        event_list = events_module.read_events(events)
        events_module.check_baseline(event_list, baseline, events)
    directories = list(result_dirs(roots))
    inputs, kept = {}, {}
    for directory in directories:
        try:
            record = outdir.load_record(directory)
            inputs[directory] = str(record.get("input", {}).get("path"))
            kept[inputs[directory]] = record.get("design")
        except (OSError, ValueError, AttributeError):
            inputs[directory] = str(directory)
    if table is not None:
        found = design_module.validate(table, inputs.values(), allow_partial, _warn)
        columns = ["participant", *[c for c in table.columns if c != "participant"]]
    else:
        columns, found = design_module.from_runs(kept, _warn)
    if not columns:
        if long_path or participants_path or normalize != "none":
            raise click.UsageError(
                "--long, --participants and --normalize need --design or --participant-from "
                "(who each video's participant is), or results of fa-run --design"
            )
        return None
    videos = [scan(directory, found.get(inputs[directory], {})) for directory in directories]
    for video in videos:
        if video.error and video.status == "complete":
            _warn(video.error)
    for line in check_identity([v.identity for v in videos if v.identity is not None], identity_threshold):
        click.echo(f"fa-collect: {line}", err=True)
    refs = None
    if normalize != "none":
        refs = references(videos, list(labels), normalize, baseline, event_list, _warn)
    return Study(
        videos,
        columns,
        list(labels),
        refs,
        long_path=long_path,
        participants_path=participants_path,
        window=seconds,
        events=event_list,
        normalize=normalize,
        baseline=baseline,
    )


def main() -> None:
    options.run_command(cli, "fa-collect")
