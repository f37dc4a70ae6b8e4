"""fa-detect: add the faces of each frame record (RetinaFace via facetorch)."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@options.detector_options
@click.option("--facetorch-exact", is_flag=True,
              help="Pad frames to a square as facetorch's reader does, so faces match FaceAnalyzer.run exactly.")
@options.model_options
@options.batch_size_option
@options.device_option
@options.config_option
@options.models_dir_option
@options.on_error_option
@options.command("fa-detect")
def cli(inputs, detector, det_size, score_threshold, min_face, facetorch_exact, optimize, fp16, batch_size, device, config_path, models_dir, on_error):
    """Find faces in the frames of a record stream.

    Reads frame records (files or standard input), decodes the frames they refer to
    (sequentially per video, or their image files) and writes each record with
    "faces": [{"face", "box": [x1, y1, x2, y2], "score", "landmarks5"}], all in the
    original frame's pixels. Other records pass through unchanged.
    """
    from fatools.detect import DetectOptions, build_detector, detect_records
    from fatools.devices import default_batch_size
    from fatools.records import RecordWriter, read_paths

    det_options = DetectOptions(det_size=det_size or None, square_pad=facetorch_exact,
                                score_threshold=score_threshold, min_face=min_face, optimize=optimize, half=fp16)
    batch_detector = build_detector(detector, det_options, device, config_path, models_dir)
    batch = batch_size or default_batch_size(batch_detector.device, "detector")
    writer = RecordWriter()
    records = read_paths(options.input_paths(inputs), on_error)
    for record in detect_records(records, batch_detector, batch, on_error):
        writer.write(record)


def main() -> None:
    options.run_command(cli, "fa-detect")
