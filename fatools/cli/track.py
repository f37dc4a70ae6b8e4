"""fa-track: link the faces of a record stream into tracks, writing ``track`` into every face."""

from __future__ import annotations

import click

from fatools.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.records_argument
@options.track_gap_option("fa-track")
@click.option(
    "--iou-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.3,
    show_default=True,
    help="Box overlap (IoU) with a track's expected box that links a face to it.",
)
@click.option(
    "--embed-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.6,
    show_default=True,
    help="Embedding cosine similarity that links a face to a track wherever it is (faces with 'embedding').",
)
@click.option(
    "--min-similarity",
    type=click.FloatRange(-1, 1),
    default=0.3,
    show_default=True,
    help="With embeddings on both sides, never link below this similarity, however much the boxes overlap.",
)
@options.on_error_option
@options.command("fa-track")
def cli(
    inputs: tuple[str, ...],
    track_gap: float,
    iou_threshold: float,
    embed_threshold: float,
    min_similarity: float,
    on_error: str,
) -> None:
    """Link faces across frames into tracks.

    Reads records with "faces" (from fa-detect or fa-predict) and writes each again
    with "track" in every face: an integer id, from 0 per video in order of first
    appearance, shared by the faces found to be the same person in different frames.
    Faces are linked by box overlap with where each track is expected (its last box
    moved at its recent velocity) and, when faces carry an "embedding" (fa-predict
    --tasks embed), by embedding similarity, which also finds a face that left and
    came back. See fa-track(1).
    """
    from fatools.records import RecordWriter, read_paths
    from fatools.track import TrackOptions, track_records

    track_options = TrackOptions(
        iou_threshold=iou_threshold,
        embed_threshold=embed_threshold,
        min_similarity=min_similarity,
        max_gap=track_gap,
    )
    writer = RecordWriter()
    for record in track_records(read_paths(options.input_paths(inputs), on_error), track_options, on_error):
        writer.write(record)


def main() -> None:
    options.run_command(cli, "fa-track")
