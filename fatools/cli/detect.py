"""fa-detect: add the faces of each frame record (RetinaFace via facetorch)."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@options.detector_options
@options.facetorch_exact_option
@options.model_options
@options.detect_batch_option("fa-detect")
@options.runtime_options
@options.on_error_option
@options.command("fa-detect")
def cli(
    inputs: tuple[str, ...],
    detector: str | None,
    det_size: int,
    score_threshold: float | None,
    min_face: float,
    facetorch_exact: bool,
    optimize: bool,
    fp16: bool,
    backend: str,
    detect_batch: int | None,
    threads: int | None,
    device: str,
    config_path: str | None,
    trust_config: bool,
    models_dir: str | None,
    verify: bool,
    on_error: str,
) -> None:
    """Find faces in the frames of a record stream.

    Reads frame records (files or standard input), decodes the frames they refer to
    (sequentially per video, or their image files) and writes each record with
    "faces": [{"face", "box": [x1, y1, x2, y2], "score", "landmarks5"}], all in the
    original frame's pixels. Other records pass through unchanged.
    """
    from fatools.detect import detect_options, detect_records, detector_request
    from fatools.devices import default_batch_size
    from fatools.models.loading import load_detector
    from fatools.records import RecordWriter, read_paths

    options.apply_threads(threads)
    det_options = detect_options(
        det_size, facetorch_exact, score_threshold, min_face, optimize, fp16, backend
    )
    request = detector_request(
        detector, det_options, device, config_path, models_dir, trust_config=trust_config, verify=verify
    )
    batch_detector = load_detector(request, det_options)
    batch = detect_batch or default_batch_size(batch_detector.device, "detector")
    writer = RecordWriter()
    for record in detect_records(
        read_paths(options.input_paths(inputs), on_error), batch_detector, batch, on_error
    ):
        writer.write(record)


def main() -> None:
    options.run_command(cli, "fa-detect")
