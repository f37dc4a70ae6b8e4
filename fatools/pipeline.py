"""The stages chained in one process, as fa-run runs them: the functions fa-detect,
fa-predict and fa-track run, on frames from a decode thread, without JSON in between."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from fatools.detect import BatchDetector, detect_frames
from fatools.frames import input_frames
from fatools.predict import FacePredictors, predict_frames
from fatools.stream import Frame, prefetch
from fatools.track import TrackOptions, track_records
from fatools.video import Sampling

if TYPE_CHECKING:
    from fatools.live import LiveRun


def analysed_records(
    path: str,
    sampling: Sampling,
    detector: BatchDetector,
    predictors: FacePredictors | None,
    track: TrackOptions = TrackOptions(),
    detect_batch: int = 1,
    frame_batch: int | None = None,
    replay: Iterable[dict] = (),
    skip_through: int | None = None,
    live: LiveRun | None = None,
    on_pixels: Callable[[dict, Any], None] | None = None,
) -> Iterator[dict]:
    """fa-frames | fa-detect | fa-predict | fa-track, on ``path``: its records, one by one.

    A resumed analysis gives the records it has (``replay``, header first, read lazily)
    and the last frame they cover (``skip_through``; -1 when they are only the header): the
    stages go on from the next sampled frame, and tracking runs over the whole stream again.
    ``live``: a ``fatools.live.LiveRun`` for a live input.  ``on_pixels(record, image)``
    is told of each frame's pixels as it is read (fa-run --serve's picture of it).
    """
    exact = predictors is not None and predictors.options.facetorch_exact
    source = input_frames(
        path, sampling, pixels=True, header=skip_through is None, skip_through=skip_through, live=live
    )
    # A live source has its own reader thread and newest-wins queue; a file is read ahead here.
    source = source if live is not None else prefetch(source)
    if on_pixels is not None:  # as the frames reach the detector: not the read-ahead's
        source = _tapped(source, on_pixels)
    frames = detect_frames(source, detector, detect_batch, keep_inputs=exact)
    if predictors is not None:
        frames = predict_frames(frames, predictors, frame_batch)
    return track_records(chain(replay, (frame.record for frame in frames)), track)


def _tapped(frames: Iterable[Frame], on_pixels: Callable[[dict, Any], None]) -> Iterator[Frame]:
    for frame in frames:
        if frame.image is not None:
            on_pixels(frame.record, frame.image)
        yield frame
