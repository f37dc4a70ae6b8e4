"""Frames as they stream through the stages: the record, its pixels while a stage needs
them, and batching in input order.

Every stage is a function from an iterator of ``Frame`` to an iterator of ``Frame``.
fa-detect and fa-predict make Frames from JSON Lines records (``frames_from_records``
loads the pixels a record refers to); fa-run makes them from the decoder
(``fatools.frames.input_frames``, read ahead by ``prefetch``).  Records leave every
stage in the order they came, headers and records a stage does not act on included.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from fatools.errors import FatoolsError, RecordError, VideoError
from fatools.records import is_frame
from fatools.video import FrameSource, read_image

log = logging.getLogger("fatools")


@dataclass
class Frame:
    """A record on its way through the stages.

    ``image``: the frame's BGR uint8 pixels while a later stage needs them (None for
    headers, and once no stage does: frames without faces drop theirs after detection).
    ``det_input``: the detector's input for this frame (RGB 0..255, before its
    normaliser), kept for facetorch-exact crops so they are not padded and resized again.
    """

    record: dict
    image: np.ndarray | None = None
    det_input: Any = None

    def drop_pixels(self) -> None:
        self.image = None
        self.det_input = None


class PixelSource:
    """The pixels a frame record refers to: its ``image`` file, else its video frame."""

    def __init__(self) -> None:
        self.frames = FrameSource()

    def load(self, record: dict) -> np.ndarray:
        image_path = record.get("image")
        if image_path:
            image = read_image(image_path)
        else:
            video, frame = record.get("video"), record.get("frame")
            if not isinstance(video, str) or not isinstance(frame, int):
                raise RecordError(
                    f"frame record without 'video' and integer 'frame' (or 'image'): {str(record)[:120]}"
                )
            image = self.frames.image(video, frame)
        width, height = record.get("width"), record.get("height")
        if width is not None and height is not None and (image.shape[1], image.shape[0]) != (width, height):
            where = image_path or f"{record.get('video')} frame {record.get('frame')}"
            raise VideoError(
                f"{where}: decodes as {image.shape[1]}x{image.shape[0]} but the record says {width}x{height}; "
                "regenerate the records with fa-frames from this file"
            )
        return image

    def close(self) -> None:
        self.frames.close()


def frames_from_records(
    records: Iterable[dict],
    wants_pixels: Callable[[dict], bool] = is_frame,
    on_error: str = "fail",
) -> Iterator[Frame]:
    """Frames for a record stream, with the pixels of the records ``wants_pixels`` picks.

    A frame whose pixels cannot be loaded stops the stream, or with ``on_error="skip"`` is
    logged to stderr and left out.  Videos are decoded once, in order, as records ask.
    """
    pixels = PixelSource()
    try:
        for record in records:
            if not wants_pixels(record):
                yield Frame(record)
                continue
            try:
                image = pixels.load(record)
            except FatoolsError as exc:
                if on_error != "skip":
                    raise
                log.warning("skipped: %s", exc)
                continue
            yield Frame(record, image)
    finally:
        pixels.close()


def queue_full(frames: list[Frame], batch_size: int) -> bool:
    """True when frames waiting behind a batch must go out although it is not full.

    Frames without work (no pixels: no faces to predict) wait for the batch before them to
    keep their order; a long stretch of them must not pile up: memory stays constant and
    output streams.
    """
    return sum(1 for f in frames if is_frame(f.record)) >= 4 * batch_size


def batches(frames: Iterable[Frame], batch_size: int, same_shape: bool = False) -> Iterator[list[Frame]]:
    """Frames in input order, grouped so that each group holds up to ``batch_size`` frames
    with pixels (of one shape, with ``same_shape``: they stack into one tensor).

    When reading the input fails, the frames read before it are still handed on, then
    the error is raised.
    """
    batch: list[Frame] = []
    working = 0
    shape = None
    iterator = iter(frames)
    while True:
        try:
            frame = next(iterator)
        except StopIteration:
            break
        except FatoolsError:
            if batch:
                yield batch
            raise
        if frame.image is not None:
            if same_shape and working and frame.image.shape != shape:
                yield batch
                batch, working = [], 0
            shape = frame.image.shape
            working += 1
        batch.append(frame)
        if working >= batch_size or queue_full(batch, batch_size):
            yield batch
            batch, working = [], 0
    if batch:
        yield batch


_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[Any], size: int = 16) -> Iterator[Any]:
    """``items`` produced in a background thread, at most ``size`` ahead of the consumer.

    fa-run decodes the video this way while the models run; the bounded queue keeps
    memory constant.  An error in the producer is raised in the consumer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:
            buffer.put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)  # a generator's: its decoder closes in this thread
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    worker = threading.Thread(target=produce, name="fatools-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


class _Shape:
    """Stands in for a frame's pixels where only their shape matters (``resume_point``)."""

    def __init__(self, record: dict) -> None:
        self.shape = (record.get("height"), record.get("width"), 3)


def resume_point(records: list[dict], detect_batch: int, frame_batch: int) -> int:
    """How many of ``records`` (an analysis' first records, in order) a resumed analysis
    keeps: the longest prefix that ends where both the detector's and the predictors'
    batches ended in the analysis that wrote them.

    Batches group frames (and so round floats) the same way whatever came before them,
    so an analysis that goes on from such a point writes the records an uninterrupted
    one would have, byte for byte.  The records after it (at most a batch or two) are
    analysed again.
    """
    from fatools.records import has_faces

    def ends(frames: list[Frame], size: int, same_shape: bool) -> set[int]:
        cuts, total = set(), 0
        groups = list(batches(frames, size, same_shape))
        for group in groups[:-1]:  # the last may have been cut short by the interruption
            total += len(group)
            cuts.add(total)
        return cuts

    # batches reads only the shape of a frame's pixels: a _Shape stands in for them.
    detected = [Frame(r, cast(np.ndarray, _Shape(r)) if is_frame(r) else None) for r in records]
    predicted = [Frame(r, cast(np.ndarray, _Shape(r)) if has_faces(r) else None) for r in records]
    common = ends(detected, detect_batch, True) & ends(predicted, frame_batch, False)
    return max(common, default=0)
