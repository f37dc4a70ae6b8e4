"""fa-summarize: one JSON summary of a record stream: per video and per track statistics
and action-unit episodes (onset, apex, offset)."""

from __future__ import annotations

import logging

import click

from fatools.cli import options

log = logging.getLogger("fatools")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@options.summary_options("fa-summarize")
@click.option("--pretty", is_flag=True, help="Indent the JSON (default: one line).")
@options.on_error_option
@options.command("fa-summarize")
def cli(
    inputs: tuple[str, ...],
    on_threshold: float | None,
    off_threshold: float,
    min_duration: float,
    episode_gap: float | None,
    top: int,
    events: str | None,
    baseline: str | None,
    min_quality: str | None,
    pretty: bool,
    on_error: str,
) -> None:
    """Summarize a record stream as one JSON object.

    Reads records (from fa-predict, ideally after fa-track) and writes per video and per
    track: frame and face counts, the emotion distribution, valence and arousal mean and
    standard deviation, seconds in each circumplex quadrant, each AU's activation rate
    and mean probability, the most active AUs, blink count and rate, and per track every
    AU episode with onset, apex, offset, duration and peak; with --events, the same per
    event of the experiment and per track. See fa-summarize(1).
    """
    import sys

    import orjson

    from fatools.errors import FatoolsError
    from fatools.records import read_paths
    from fatools.summary import Summarizer

    summarizer = Summarizer(
        options.summary_from(
            on_threshold, off_threshold, min_duration, episode_gap, top, events, baseline, min_quality
        )
    )
    count = 0
    for record in read_paths(options.input_paths(inputs), on_error):
        try:
            summarizer.add(record)
        except FatoolsError as exc:
            if on_error != "skip":
                raise
            log.warning("skipped: %s", exc)
            continue
        count += 1
    summary = summarizer.result()
    log.info("summarized %d records of %d videos", count, len(summary["videos"]))
    flags = orjson.OPT_INDENT_2 if pretty else 0
    sys.stdout.buffer.write(orjson.dumps(summary, option=flags) + b"\n")
    sys.stdout.buffer.flush()


def main() -> None:
    options.run_command(cli, "fa-summarize")
