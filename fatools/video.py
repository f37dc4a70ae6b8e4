"""Video and image inputs: probing, sequential sampled decoding, rotation.

Videos are decoded with PyAV (FFmpeg) strictly in order.  Frames that are not sampled
are decoded but never converted to pixels (the expensive colour conversion is skipped,
like OpenCV's grab/retrieve); nothing ever seeks per frame, which measured about 40x
slower than sequential decoding on 1080p H.264.  Timestamps are the container's
presentation timestamps, so sampling is correct on variable frame rate video.
Display rotation is applied, so frames, sizes and every coordinate downstream are in
the orientation a viewer sees.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fatools.errors import VideoError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (the header record's fields)."""

    video: str
    fps: float | None
    frame_count: int | None
    duration: float | None
    codec: str
    width: int
    height: int
    rotation: int

    def header(self) -> dict:
        from fatools.records import HEADER_TYPE, SCHEMA_VERSION

        return {"schema": SCHEMA_VERSION, "type": HEADER_TYPE, **asdict(self)}


@dataclass(frozen=True)
class Sampling:
    """Which frames to keep: every Nth, or evenly in time at F per second, within [start, end)."""

    every: int = 1
    fps: float | None = None
    start: float = 0.0
    end: float | None = None
    max_frames: int | None = None


class Sampler:
    """Streaming keep/skip decisions from (frame index, timestamp) in decode order."""

    def __init__(self, sampling: Sampling) -> None:
        self.sampling = sampling
        self.first_index: int | None = None
        self.next_time = sampling.start
        self.kept = 0

    def done(self, t: float) -> bool:
        """True once no later frame can be kept (past --end or --max-frames)."""
        s = self.sampling
        if s.max_frames is not None and self.kept >= s.max_frames:
            return True
        return s.end is not None and t >= s.end

    def keep(self, index: int, t: float) -> bool:
        s = self.sampling
        # A small tolerance so timestamps rounded by the container still hit the grid.
        if t < s.start - 1e-6:
            return False
        if s.fps is not None:
            if t < self.next_time - 1e-6:
                return False
            period = 1.0 / s.fps
            steps = math.floor((t - s.start) / period + 1e-6) + 1
            self.next_time = s.start + steps * period
        else:
            if self.first_index is None:
                self.first_index = index
            if (index - self.first_index) % s.every:
                return False
        self.kept += 1
        return True


def is_image_path(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise VideoError(
            f"{path}: is a directory with no images in it; give a video, an image or a folder of images"
        )
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file; give a video or an image")


def _open_container(path: str) -> InputContainer:
    import av

    _check_file(path)
    try:
        container = av.open(path)
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VideoError(
            f"{path}: not a readable video ({reason}); check the file is a video FFmpeg can decode"
        ) from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream (audio only?); give a video file")
    return container


def _rotation(stream: VideoStream, first_frame: VideoFrame | None = None) -> int:
    rotation = getattr(first_frame, "rotation", None) if first_frame is not None else None
    if rotation is None:
        rotation = -int(stream.metadata.get("rotate", 0) or 0)
    return round(rotation) % 360


def probe(path: str) -> VideoInfo:
    """Read the container metadata of a video (decodes only its first frame, for rotation)."""
    container = _open_container(path)
    with container:
        stream = container.streams.video[0]
        first = None
        try:
            first = next(container.decode(stream), None)
        except Exception as exc:
            raise VideoError(f"{path}: cannot decode video ({exc}); the file may be corrupt") from None
        if first is None:
            raise VideoError(f"{path}: the video stream has no frames")
        rotation = _rotation(stream, first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        frame_count = stream.frames or None
        if frame_count is None and fps and duration:
            frame_count = round(fps * duration)
        return VideoInfo(
            video=path,
            fps=fps,
            frame_count=frame_count,
            duration=duration,
            codec=stream.codec_context.name,
            width=width,
            height=height,
            rotation=rotation,
        )


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return image
    # FFmpeg's display rotation is counter-clockwise; np.rot90 turns counter-clockwise too.
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90))


@dataclass
class DecodedFrame:
    index: int
    t: float
    width: int
    height: int
    image: np.ndarray | None  # BGR uint8, rotated for display; None when pixels were not asked for


class _RawFrame:
    """A decoded frame whose pixels are converted only when asked for."""

    __slots__ = ("_frame", "_rotation", "height", "index", "t", "width")

    def __init__(self, index: int, t: float, frame: VideoFrame, rotation: int) -> None:
        self.index, self.t, self._frame, self._rotation = index, t, frame, rotation
        self.width, self.height = frame.width, frame.height
        if rotation in (90, 270):
            self.width, self.height = self.height, self.width

    def pixels(self) -> np.ndarray:
        return _rotate(self._frame.to_ndarray(format="bgr24"), self._rotation)


def _decode(path: str, threads: int = 0) -> Iterator[_RawFrame]:
    """Every frame of a video in presentation order, with container timestamps."""
    import av

    container = _open_container(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if not threads:
            from fatools.threads import decode_threads

            threads = decode_threads()  # --threads, else FFmpeg's own choice
        if threads:
            stream.thread_count = threads
        time_base = stream.time_base
        start_pts = stream.start_time or 0
        period = 1.0 / float(stream.average_rate) if stream.average_rate else 0.0
        t = -period
        rotation = None
        finished = False
        frames = container.decode(stream)
        try:
            for index, frame in enumerate(frames):
                if rotation is None:
                    rotation = _rotation(stream, frame)
                # A frame without a timestamp (rare, broken muxers) continues the clock.
                if frame.pts is not None and time_base is not None:
                    t = float((frame.pts - start_pts) * time_base)
                else:
                    t += period
                yield _RawFrame(index, t, frame, rotation)
            finished = True
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"{path}: decoding failed ({exc}); the file may be truncated or corrupt"
            ) from None
        finally:
            if not finished:
                _drain(stream)
            frames.close()  # type: ignore[attr-defined]  # a generator; PyAV's stub says Iterator


def _drain(stream: VideoStream) -> None:
    """Flush a decoder left mid-stream before its container closes.

    With frame threading, closing a decoder whose threads still hold frames can hang
    forever once torch/torchvision are loaded (PyAV issues 1849 and 1861; reproduced
    here); sending it end-of-stream first lets the threads finish.
    """
    try:
        for _ in stream.codec_context.decode(None):
            pass
    except Exception:
        pass


def iter_frames(
    path: str,
    sampling: Sampling = Sampling(),
    want_pixels: bool = True,
    threads: int = 0,
    skip_through: int | None = None,
) -> Iterator[DecodedFrame]:
    """Yield the sampled frames of a video in order, decoding sequentially.

    Frames that are not kept are decoded (the codec needs them) but not converted.
    ``skip_through``: sampled frames up to this index are not yielded either (a resumed
    run has their records); the sampling counts them as before.
    """
    sampler = Sampler(sampling)
    for raw in _decode(path, threads):
        if sampler.done(raw.t):
            break
        if not sampler.keep(raw.index, raw.t):
            continue
        if skip_through is not None and raw.index <= skip_through:
            continue
        image = raw.pixels() if want_pixels else None
        yield DecodedFrame(raw.index, round(raw.t, 6), raw.width, raw.height, image)


class FrameSource:
    """The pixels of frames that records refer to, decoding each video once, in order.

    Records of a video normally arrive in increasing frame order; asking for an earlier
    frame than the last restarts that video's decoder (counted in ``restarts``).
    """

    def __init__(self) -> None:
        self._video: str | None = None
        self._frames: Iterator[_RawFrame] | None = None
        self._last: _RawFrame | None = None
        self._last_pixels: np.ndarray | None = None
        self.restarts = 0

    def image(self, video: str, frame: int) -> np.ndarray:
        """BGR pixels of frame ``frame`` (decode order index) of ``video``."""
        if self._video != video or self._last is None or frame < self._last.index:
            if self._video == video and self._last is not None:
                self.restarts += 1
            self._open(video)
        if self._last is not None and self._last.index == frame:
            if self._last_pixels is None:
                self._last_pixels = self._last.pixels()
            return self._last_pixels
        assert self._frames is not None
        for raw in self._frames:
            self._last, self._last_pixels = raw, None
            if raw.index == frame:
                self._last_pixels = raw.pixels()
                return self._last_pixels
        raise VideoError(
            f"{video}: frame {frame} is past the end of the video; check the records belong to this file"
        )

    def _open(self, video: str) -> None:
        self.close()
        self._video = video
        self._frames = _decode(video)

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]
        self._video, self._frames, self._last, self._last_pixels = None, None, None, None


def list_images(directory: str) -> list[str]:
    """Image files of a directory in name order."""
    names = sorted(n for n in os.listdir(directory) if is_image_path(n))
    return [os.path.join(directory, n) for n in names]


def read_image(path: str) -> np.ndarray:
    """An image file as BGR uint8, EXIF orientation applied."""
    import cv2

    _check_file(path)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"{path}: not a readable image; check the file format")
    return image


def write_image(path: str, image: np.ndarray) -> None:
    """Write an image atomically (temporary name, then rename)."""
    import cv2

    root, ext = os.path.splitext(path)
    tmp = f"{root}.part{ext}"
    if not cv2.imwrite(tmp, image):
        raise VideoError(f"{path}: cannot write image; check the directory is writable")
    os.replace(tmp, path)
