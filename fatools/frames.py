"""Frame records from videos, images and folders of images (the library behind fa-frames)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fatools.errors import VideoError
from fatools.records import frame_record
from fatools.stream import Frame
from fatools.study.inputs import input_kind
from fatools.video import (
    IMAGE_EXTENSIONS,
    Sampling,
    iter_frames,
    list_images,
    probe,
    read_image,
    write_image,
)

if TYPE_CHECKING:
    from fatools.live import LiveRun


def input_frames(
    path: str,
    sampling: Sampling = Sampling(),
    pixels: bool = False,
    images_dir: str | None = None,
    image_format: str = "png",
    header: bool = True,
    skip_through: int | None = None,
    live: LiveRun | None = None,
) -> Iterator[Frame]:
    """The frames of any supported input (a video, an image, a folder of images, or a live
    source: standard input, a URL, a device), as fa-frames' records, with their pixels
    when ``pixels`` (fa-run's way in).

    ``skip_through``: frames up to this index are left out (a resumed analysis has them).
    ``live``: a ``fatools.live.LiveRun`` for a live source (its options, counts, stop check).
    """
    from fatools.live import LiveRun, is_live

    if is_live(path, live.options if live is not None else None):
        return (live or LiveRun()).frames(path, sampling, pixels, header)
    if input_kind(path) == "video":
        return _video_frames(path, sampling, pixels, images_dir, image_format, header, skip_through)
    return _image_frames(path, sampling, pixels, skip_through)


def records_for(
    path: str,
    sampling: Sampling = Sampling(),
    images_dir: str | None = None,
    image_format: str = "png",
    header: bool = True,
    live: LiveRun | None = None,
) -> Iterator[dict]:
    """fa-frames' records for any supported input (``live``: as ``input_frames``)."""
    return (
        frame.record
        for frame in input_frames(path, sampling, False, images_dir, image_format, header, live=live)
    )


def _video_frames(
    path: str,
    sampling: Sampling,
    pixels: bool,
    images_dir: str | None,
    image_format: str,
    header: bool,
    skip_through: int | None = None,
) -> Iterator[Frame]:
    """A header, then one frame per sampled frame of a video.

    Pixels travel by reference in the record (the video path and frame index); with
    ``images_dir`` each sampled frame is also written there and its path put in the record.
    """
    info = probe(path)
    if header:
        yield Frame(info.header())
    stem = Path(path).stem
    for decoded in iter_frames(
        path, sampling, want_pixels=pixels or images_dir is not None, skip_through=skip_through
    ):
        extra = {}
        if images_dir is not None:
            assert decoded.image is not None  # asked for: want_pixels
            image_path = os.path.join(images_dir, f"{stem}-{decoded.index:06d}.{image_format}")
            write_image(image_path, decoded.image)
            extra["image"] = image_path
        record = frame_record(path, decoded.index, decoded.t, decoded.width, decoded.height, **extra)
        yield Frame(record, decoded.image if pixels else None)


def _image_frames(
    path: str, sampling: Sampling, pixels: bool, skip_through: int | None = None
) -> Iterator[Frame]:
    """One frame per image of a file or folder (``every``/``max_frames`` apply; no clock)."""
    if os.path.isdir(path):
        images = list_images(path)
        if not images:
            raise VideoError(
                f"{path}: directory has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); give a video, an image or a folder of images"
            )
    else:
        images = [path]
    kept = 0
    for index, image_path in enumerate(images):
        if index % sampling.every:
            continue
        if sampling.max_frames is not None and kept >= sampling.max_frames:
            break
        if skip_through is not None and index <= skip_through:
            kept += 1
            continue
        image = read_image(image_path)
        height, width = image.shape[:2]
        kept += 1
        yield Frame(
            frame_record(path, index, None, width, height, image=image_path), image if pixels else None
        )
