"""The stages chained in one process, as fa-run runs them: the functions fa-detect,
fa-predict and fa-track run, on frames from a decode thread, without JSON in between."""

from __future__ import annotations

from typing import Iterator

from fatools.detect import BatchDetector, detect_frames
from fatools.frames import input_frames
from fatools.predict import FacePredictors, predict_frames
from fatools.stream import prefetch
from fatools.track import TrackOptions, track_records
from fatools.video import Sampling


def analysed_records(
    path: str,
    sampling: Sampling,
    detector: BatchDetector,
    predictors: FacePredictors | None,
    track: TrackOptions = TrackOptions(),
    detect_batch: int = 1,
    frame_batch: int | None = None,
) -> Iterator[dict]:
    """fa-frames | fa-detect | fa-predict | fa-track, on ``path``: its records, one by one."""
    exact = predictors is not None and predictors.options.facetorch_exact
    frames = detect_frames(prefetch(input_frames(path, sampling, pixels=True)), detector, detect_batch, keep_inputs=exact)
    if predictors is not None:
        frames = predict_frames(frames, predictors, frame_batch)
    return track_records((frame.record for frame in frames), track)
