"""fa-summarize: one JSON summary of a record stream: per video and per track statistics
and action-unit episodes (onset, apex, offset)."""

from __future__ import annotations

import logging

import click

from fatools.cli import options

log = logging.getLogger("fatools")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@click.option("--on-threshold", type=click.FloatRange(0, 1), default=None,
              help="An AU is active, and an episode starts, above this probability [default: each record's au.threshold].")
@click.option("--off-threshold", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="An episode goes on while the probability stays at or above this (hysteresis).")
@click.option("--min-duration", type=click.FloatRange(min=0), default=0.2, show_default=True,
              help="Drop episodes shorter than this many seconds (not blinks).")
@click.option("--max-gap", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a track may go unseen and an episode still continue [default: 2.5 sampling intervals, at least 0.5].")
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many AUs most_active_aus lists (0: all active ones).")
@click.option("--pretty", is_flag=True, help="Indent the JSON (default: one line).")
@options.on_error_option
@options.command("fa-summarize")
def cli(inputs, on_threshold, off_threshold, min_duration, max_gap, top, pretty, on_error):
    """Summarize a record stream as one JSON object.

    Reads records (from fa-predict, ideally after fa-track) and writes per video and per
    track: frame and face counts, the emotion distribution, valence and arousal mean and
    standard deviation, seconds in each circumplex quadrant, each AU's activation rate
    and mean probability, the most active AUs, blink count and rate, and per track every
    AU episode with onset, apex, offset, duration and peak. See fa-summarize(1).
    """
    import sys

    import orjson

    from fatools.errors import FatoolsError
    from fatools.records import read_paths
    from fatools.summary import Summarizer

    if on_threshold is not None and off_threshold > on_threshold:
        raise click.UsageError("--off-threshold must not be above --on-threshold")
    summarizer = Summarizer(on_threshold=on_threshold, off_threshold=off_threshold,
                            min_duration=min_duration, max_gap=max_gap, top=top)
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
