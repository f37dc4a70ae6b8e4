"""fa-frames on live inputs: records written as frames come, a summary line at the end,
SIGINT/SIGTERM ending the run cleanly (exit 130/143 as for files)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from fatools.live import LiveOptions
    from fatools.video import Sampling

log = logging.getLogger("fatools")


def frames_live(
    inputs: Iterable[str],
    sampling: Sampling,
    live_options: LiveOptions | None,
    no_header: bool,
    on_error: str,
) -> None:
    from fatools.errors import FatoolsError
    from fatools.frames import records_for
    from fatools.live import LiveOptions, LiveRun, is_live
    from fatools.records import RecordWriter
    from fatools.signals import StopSignals

    writer = RecordWriter()
    with StopSignals() as stop:
        for path in inputs:
            if stop():
                break
            try:
                if not is_live(path, live_options):
                    for record in records_for(path, sampling, header=not no_header):
                        writer.write(record)
                    continue
                run = LiveRun(live_options or LiveOptions(), should_stop=stop)
                try:
                    for record in records_for(path, sampling, header=not no_header, live=run):
                        writer.write(record)
                        run.latency.written(record)
                finally:
                    if run.stats.ended is None and stop():
                        run.stats.ended = "stopped"
                    click.echo(f"fa-frames: {path}: {run.stats.line()}", err=True)
            except FatoolsError as exc:
                if on_error != "skip":
                    raise
                log.warning("skipped: %s", exc)
    signum = stop()
    if signum:
        sys.exit(128 + signum)
