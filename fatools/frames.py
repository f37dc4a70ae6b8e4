"""Frame records from videos, images and folders of images (the library behind fa-frames)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from fatools.errors import VideoError
from fatools.records import frame_record
from fatools.video import (
    IMAGE_EXTENSIONS,
    Sampling,
    is_image_path,
    iter_frames,
    list_images,
    probe,
    read_image,
    write_image,
)


def input_kind(path: str) -> str:
    """'images' for a folder, 'image' for an image file, else 'video'."""
    if os.path.isdir(path):
        return "images"
    if is_image_path(path):
        return "image"
    return "video"


def video_records(
    path: str,
    sampling: Sampling = Sampling(),
    images_dir: str | None = None,
    image_format: str = "png",
    header: bool = True,
) -> Iterator[dict]:
    """A header record, then one record per sampled frame of a video.

    Pixels travel by reference (the video path and frame index); with ``images_dir``
    each sampled frame is also written there and its path put in the record.
    """
    info = probe(path)
    if header:
        yield info.header()
    stem = Path(path).stem
    for decoded in iter_frames(path, sampling, want_pixels=images_dir is not None):
        extra = {}
        if images_dir is not None:
            image_path = os.path.join(images_dir, f"{stem}-{decoded.index:06d}.{image_format}")
            write_image(image_path, decoded.image)
            extra["image"] = image_path
        yield frame_record(path, decoded.index, decoded.t, decoded.width, decoded.height, **extra)


def image_records(path: str, sampling: Sampling = Sampling()) -> Iterator[dict]:
    """One record per image of a file or folder (``every``/``max_frames`` apply; no clock)."""
    if os.path.isdir(path):
        images = list_images(path)
        if not images:
            raise VideoError(f"{path}: directory has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); give a video, an image or a folder of images")
    else:
        images = [path]
    kept = 0
    for index, image_path in enumerate(images):
        if index % sampling.every:
            continue
        if sampling.max_frames is not None and kept >= sampling.max_frames:
            break
        height, width = read_image(image_path).shape[:2]
        kept += 1
        yield frame_record(path, index, None, width, height, image=image_path)


def records_for(
    path: str,
    sampling: Sampling = Sampling(),
    images_dir: str | None = None,
    image_format: str = "png",
    header: bool = True,
) -> Iterator[dict]:
    """Records for any supported input."""
    if input_kind(path) == "video":
        return video_records(path, sampling, images_dir, image_format, header)
    return image_records(path, sampling)
