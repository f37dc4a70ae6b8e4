"""fa-frames: sample frames from videos or images as JSON Lines frame records."""

from __future__ import annotations

import logging
import os

import click

from fatools.cli import options

log = logging.getLogger("fatools")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(allow_dash=True))
@options.sampling_options("fa-frames")
@click.option(
    "--images",
    "images_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write each sampled video frame as an image into DIR and put its path in the record.",
)
@click.option(
    "--image-format",
    type=click.Choice(["png", "jpg"]),
    default="png",
    show_default=True,
    help="Format of --images files (png is lossless).",
)
@click.option(
    "--probe",
    "probe_only",
    is_flag=True,
    help="Only print each video's header record (metadata), decode nothing.",
)
@click.option("--no-header", is_flag=True, help="Omit the video header record before the frames.")
@options.live_options("fa-frames")
@options.on_error_option
@options.command("fa-frames")
def cli(
    inputs: tuple[str, ...],
    every: int | None,
    sample_fps: float | None,
    start: float,
    end: float | None,
    max_frames: int | None,
    images_dir: str | None,
    image_format: str,
    probe_only: bool,
    no_header: bool,
    on_error: str,
    input_format: str | None,
    input_options: tuple[str, ...],
    no_drop: bool,
    reconnect: int,
    stall_timeout: str,
    live_duration: str | None,
) -> None:
    """Sample frames from videos, images or folders of images.

    Writes one JSON frame record per sampled frame to stdout
    ({"schema", "video", "frame", "t", "width", "height"}), preceded for each video by a
    header record ({"type": "video", "fps", "frame_count", "duration", "codec", "width",
    "height", "rotation"}). Pixels travel by reference: later stages decode the frame
    from the video. A live input ('-' for standard input, an rtsp/rtmp/srt/udp/http URL,
    /dev/videoN or --input-format v4l2|avfoundation|dshow) is read in real time: its
    records add 'wallclock' and 'dropped', and a summary line goes to stderr at the end.
    See fatools-records(5).
    """
    from fatools.errors import FatoolsError
    from fatools.frames import records_for
    from fatools.live import is_live
    from fatools.records import RecordWriter
    from fatools.study.inputs import input_kind
    from fatools.video import probe

    sampling = options.sampling_from(every, sample_fps, start, end, max_frames)
    if images_dir is not None:
        os.makedirs(images_dir, exist_ok=True)

    live = options.live_from(input_format, input_options, no_drop, reconnect, stall_timeout, live_duration)
    if any(is_live(path, live) for path in inputs):
        from fatools.cli.live import frames_live

        return frames_live(inputs, sampling, live, no_header, on_error)

    writer = RecordWriter()
    for path in inputs:
        try:
            kind = input_kind(path)
            options.refuse_clock_for_stills(path, kind, sample_fps, start, end)
            if probe_only:
                if kind == "video":
                    writer.write(probe(path).header())
                continue
            for record in records_for(path, sampling, images_dir, image_format, header=not no_header):
                writer.write(record)
        except FatoolsError as exc:
            if on_error != "skip":
                raise
            log.warning("skipped: %s", exc)


def main() -> None:
    options.run_command(cli, "fa-frames")
