"""fa-predict: add facetorch predictions (action units, expression, valence-arousal,
3D landmarks and head pose, embeddings) to every face of a record stream."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@options.prediction_options
@click.option("--facetorch-exact", is_flag=True,
              help="Crop faces as facetorch does (square-padded detector input, 380 px unifier): outputs equal FaceAnalyzer.run.")
@click.option("--det-size", type=click.IntRange(min=1), default=None,
              help="With --facetorch-exact: the detector size the faces were found at [default: from the records, else 1080].")
@click.option("--face-batch", type=click.IntRange(min=1), default=None,
              help="Faces per predictor batch, for every predictor [default: chosen per model and device].")
@options.model_options
@options.int8_option
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Frames whose faces go through the predictors together [default: 8 on CPU, 32 on CUDA].")
@options.device_option
@options.config_option
@options.models_dir_option
@options.on_error_option
@options.command("fa-predict")
def cli(inputs, tasks, au_threshold, facetorch_exact, det_size, face_batch, optimize, fp16, int8, batch_size, device, config_path, models_dir, on_error):
    """Predict facial actions for every detected face.

    Reads records with "faces" (from fa-detect), crops each face from its frame and adds
    per face: "au" (probabilities of 41 action units by FACS code, the active set,
    descriptions and intensity labels, AU45 blink derived from landmarks), "expression"
    (label, confidence, 8 class scores), "va" (valence, arousal, quadrant),
    "landmarks3d" and "pose" (68 3D landmarks in frame pixels; yaw, pitch, roll in
    degrees) and, with --tasks embed, "embedding". See fa-predict(1).
    """
    from itertools import chain

    from fatools.predict import PredictOptions, build_predictors, predict_records
    from fatools.records import RecordWriter, read_paths

    records = read_paths(options.input_paths(inputs), on_error)
    if facetorch_exact and det_size is None:
        # The detector geometry travels with the records; peek at the first frame with faces.
        head = []
        for record in records:
            head.append(record)
            if record.get("detection"):
                det_size = record["detection"].get("det_size")
                if not record["detection"].get("square_pad"):
                    raise click.UsageError("--facetorch-exact needs faces found with fa-detect --facetorch-exact")
                break
        records = chain(head, records)
    predict_options = PredictOptions(tasks=tasks, au_threshold=au_threshold, facetorch_exact=facetorch_exact,
                                     det_size=det_size or 1080, face_batch=face_batch,
                                     optimize=optimize, half=fp16, int8=int8)
    predictors = build_predictors(predict_options, device, config_path, models_dir)
    writer = RecordWriter()
    for record in predict_records(records, predictors, batch_size, on_error):
        writer.write(record)


def main() -> None:
    options.run_command(cli, "fa-predict")
