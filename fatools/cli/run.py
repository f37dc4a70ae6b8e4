"""fa-run: frames, detection, predictions, tracks, summary and exports in one process."""

from __future__ import annotations

import click

from fatools.cli import options

FORMATS = ("json", "csv", "au-timeline", "wide", "text", "plots")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("videos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the results (one subdirectory per video when several are given).")
@options.sampling_options
@options.detector_options
@click.option("--facetorch-exact", is_flag=True, help="Detect and crop exactly as facetorch's FaceAnalyzer.run does.")
@options.prediction_options
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS),
              help="Export format; repeat for several [default: all].")
@click.option("--max-gap", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds a face may go unseen and keep its track.")
@click.option("--progress/--no-progress", default=None, help="Progress line on stderr [default: when stderr is a terminal].")
@options.model_options
@options.int8_option
@options.batch_size_option
@options.device_option
@options.config_option
@options.models_dir_option
@options.command("fa-run")
def cli(videos, output_dir, every, sample_fps, start, end, max_frames, detector, det_size, score_threshold, min_face,
        facetorch_exact, tasks, au_threshold, formats, max_gap, progress, optimize, fp16, int8, batch_size, device, config_path, models_dir):
    """Analyse videos in one process and write every result into a directory.

    Runs the same code as fa-frames | fa-detect | fa-predict | fa-track | fa-summarize |
    fa-export, without serialising between stages: a thread decodes while the models
    run. Writes OUTPUT/frames.jsonl (the records, streamed), OUTPUT/summary.json and
    the exports, and prints the paths written. Samples every 5th frame unless --every
    or --fps says otherwise.
    """
    import os

    from fatools.detect import DetectOptions
    from fatools.predict import PredictOptions
    from fatools.run import RunOptions, VideoAnalyzer

    if every is None and sample_fps is None:
        every = 5
    sampling = options.sampling_from(every, sample_fps, start, end, max_frames)
    run_options = RunOptions(
        sampling=sampling,
        detector=detector,
        detect=DetectOptions(det_size=det_size or None, square_pad=facetorch_exact,
                             score_threshold=score_threshold, min_face=min_face, optimize=optimize, half=fp16),
        predict=PredictOptions(tasks=tasks, au_threshold=au_threshold, facetorch_exact=facetorch_exact,
                               det_size=det_size or 1080, optimize=optimize, half=fp16, int8=int8),
        device=device, batch_size=batch_size, config_path=config_path, models_dir=models_dir,
        formats=tuple(formats) or None, track={"max_gap": max_gap}, progress=progress,
    )
    analyzer = VideoAnalyzer(run_options)
    for video in videos:
        out = output_dir
        if len(videos) > 1:
            out = os.path.join(output_dir, os.path.splitext(os.path.basename(video))[0])
        result = analyzer.analyze(video, out)
        for paths in result.files.values():
            for path in paths:
                click.echo(str(path))


def main() -> None:
    options.run_command(cli, "fa-run")
