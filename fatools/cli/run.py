"""fa-run: frames, detection, predictions, tracks, summary and exports in one process."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@options.output_dir_option("fa-run")
@options.sampling_options
@options.detector_options
@options.facetorch_exact_option
@options.prediction_options
@options.track_gap_option("fa-run")
@options.summary_options("fa-run")
@options.formats_option
@options.progress_option
@options.model_options
@options.int8_option
@options.detect_batch_option("fa-run")
@options.frame_batch_option("fa-run")
@options.face_batch_option
@options.device_option
@options.config_option
@options.models_dir_option
@options.command("fa-run")
def cli(inputs, output_dir, **values):
    """Analyse videos, images or folders of images in one process; write every result
    into a directory.

    Runs the same code as fa-frames | fa-detect | fa-predict | fa-track | fa-summarize |
    fa-export, without serialising between stages: a thread decodes while the models
    run. Writes OUTPUT_DIR/frames.jsonl (the records, streamed), OUTPUT_DIR/summary.json
    and the exports, and prints the paths written (one subdirectory per input when
    several are given). Samples every 5th frame of a video and every image unless
    --every or --fps says otherwise.
    """
    import os

    from fatools.frames import input_kind
    from fatools.run import VideoAnalyzer, run_options

    for path in inputs:
        if input_kind(path) != "video" and (values["sample_fps"] is not None or values["start"] or values["end"] is not None):
            raise click.UsageError(f"{path}: --fps, --start and --end need a video; images have no clock")
    values["fps"] = values.pop("sample_fps")
    try:
        run = run_options(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    analyzer = VideoAnalyzer(run)
    for path in inputs:
        out = output_dir
        if len(inputs) > 1:
            out = os.path.join(output_dir, os.path.splitext(os.path.basename(os.path.normpath(path)))[0])
        result = analyzer.analyze(path, out)
        for paths in result.files.values():
            for written in paths:
                click.echo(str(written))


def main() -> None:
    options.run_command(cli, "fa-run")
