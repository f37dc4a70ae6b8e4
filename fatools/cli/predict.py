"""fa-predict: add facetorch predictions (action units, expression, valence-arousal,
3D landmarks and head pose, embeddings) to every face of a record stream."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@options.prediction_options
@options.facetorch_exact_option
@options.face_batch_option
@options.model_options
@options.int8_option
@options.bf16_option
@options.frame_batch_option("fa-predict")
@options.runtime_options
@options.on_error_option
@options.command("fa-predict")
def cli(
    inputs: tuple[str, ...],
    tasks: tuple[str, ...],
    au_threshold: float,
    facetorch_exact: bool,
    face_batch: int | None,
    optimize: bool,
    fp16: bool,
    backend: str,
    int8: bool,
    bf16: bool,
    frame_batch: int | None,
    threads: int | None,
    device: str,
    config_path: str | None,
    trust_config: bool,
    models_dir: str | None,
    verify: bool,
    on_error: str,
) -> None:
    """Predict facial actions for every detected face.

    Reads records with "faces" (from fa-detect), crops each face from its frame and adds
    per face: "au" (probabilities of 41 action units by FACS code, the active set,
    descriptions and intensity labels, AU45 blink derived from landmarks), "expression"
    (label, confidence, 8 class scores), "va" (valence, arousal, quadrant),
    "landmarks3d" and "pose" (68 3D landmarks in frame pixels; yaw, pitch, roll in
    degrees) and, with --tasks embed, "embedding". See fa-predict(1).
    """
    from fatools.models.loading import load_predictors
    from fatools.predict import predict_options, predict_records, predictors_request
    from fatools.records import RecordWriter, read_paths

    options.apply_threads(threads)
    predictor_options = predict_options(
        tasks=tasks,
        au_threshold=au_threshold,
        facetorch_exact=facetorch_exact,
        face_batch=face_batch,
        optimize=optimize,
        fp16=fp16,
        int8=int8,
        bf16=bf16,
        backend=backend,
    )
    request = predictors_request(
        predictor_options, device, config_path, models_dir, trust_config=trust_config, verify=verify
    )
    predictors = load_predictors(request, predictor_options)
    writer = RecordWriter()
    for record in predict_records(
        read_paths(options.input_paths(inputs), on_error), predictors, frame_batch, on_error
    ):
        writer.write(record)


def main() -> None:
    options.run_command(cli, "fa-predict")
