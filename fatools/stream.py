"""Streaming helpers shared by the stages: pixels for frame records, batching in order.

Records stream through in input order; frame records are grouped into batches of one
frame size (a batch must stack into one tensor), and every record, including headers
and records the stage does not act on, leaves in the order it came.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from fatools.errors import FatoolsError, RecordError, VideoError
from fatools.records import is_frame
from fatools.video import FrameSource, read_image

log = logging.getLogger("fatools")


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
                raise RecordError(f"frame record without 'video' and integer 'frame' (or 'image'): {str(record)[:120]}")
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


def queue_full(records: list[dict], batch_size: int) -> bool:
    """True when records waiting behind a batch must go out although it is not full.

    Frames without work (no faces) wait for the batch before them to keep their order;
    a long stretch of them must not pile up: memory stays constant and output streams.
    fa-run applies the same rule, so both group frames alike.
    """
    return sum(1 for r in records if is_frame(r)) >= 4 * batch_size


@dataclass
class Batch:
    """Records in input order; ``images[i]`` is None for records passed through untouched."""

    records: list[dict] = field(default_factory=list)
    images: list[np.ndarray | None] = field(default_factory=list)

    def frames(self) -> list[tuple[int, np.ndarray]]:
        return [(i, im) for i, im in enumerate(self.images) if im is not None]

    def __len__(self) -> int:
        return sum(im is not None for im in self.images)


def frame_batches(
    records: Iterable[dict],
    pixels: PixelSource,
    batch_size: int,
    on_error: str = "fail",
    wants_pixels=is_frame,
) -> Iterator[Batch]:
    """Group frame records (with their pixels) into same-size batches, keeping order.

    A frame that cannot be loaded stops the stage, or with ``on_error="skip"`` is logged
    to stderr and left out of the output.  When reading the input fails, the records
    before the bad line are still processed and written.
    """
    batch = Batch()
    shape = None
    iterator = iter(records)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            break
        except FatoolsError:
            # A bad input line: first write out everything read before it.
            if batch.records:
                yield batch
                batch = Batch()
            raise
        if not wants_pixels(record):
            batch.records.append(record)
            batch.images.append(None)
            if queue_full(batch.records, batch_size):
                yield batch
                batch = Batch()
            continue
        try:
            image = pixels.load(record)
        except FatoolsError as exc:
            if on_error != "skip":
                raise
            log.warning("skipped: %s", exc)
            continue
        if len(batch) and image.shape != shape:
            yield batch
            batch = Batch()
        shape = image.shape
        batch.records.append(record)
        batch.images.append(image)
        if len(batch) >= batch_size or queue_full(batch.records, batch_size):
            yield batch
            batch = Batch()
    if batch.records:
        yield batch
