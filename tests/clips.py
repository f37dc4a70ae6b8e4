"""Small test videos made on the fly (no binaries in the repository)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

Painter = Callable[[int], np.ndarray]


def numbered_frame(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A frame whose mean grey level encodes its index (robust to compression)."""
    level = 20 + (index * 7) % 200
    frame = np.full((height, width, 3), level, np.uint8)
    # A white marker in the top-left corner shows orientation after rotation.
    frame[: height // 6, : width // 6] = 255
    return frame


def write_clip(
    path: Path, frames: int, fps: float = 25.0, size=(320, 240), paint: Painter | None = None
) -> Path:
    """A constant frame rate MPEG-4 clip written by OpenCV."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for i in range(frames):
        writer.write(paint(i) if paint else numbered_frame(i, width, height))
    writer.release()
    return path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def h264_clip(path: Path, seconds: float, fps: int = 25, size: str = "320x240") -> Path:
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={size}:rate={fps}",
        "-t",
        str(seconds),
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-g",
        "12",
        str(path),
    )
    return path


def looped_h264_clip(path: Path, seconds: int, size: str = "320x240") -> Path:
    """An H.264 clip of ``seconds`` one-second pieces copied end to end (``-stream_loop``,
    no re-encoding): as long to decode as ``h264_clip``'s, a fraction of its cost to make."""
    piece = h264_clip(path.with_name(f"{path.stem}-piece{path.suffix}"), 1, size=size)
    ffmpeg("-stream_loop", str(seconds - 1), "-i", str(piece), "-c", "copy", str(path))
    return path


def vfr_clip(path: Path, pts: list[float], size: str = "320x240") -> Path:
    """An H.264 clip whose frame i is presented at pts[i] seconds (variable frame rate)."""
    expr = "+".join(f"eq(N\\,{i})*{t}" for i, t in enumerate(pts))
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={size}:rate=100",
        "-frames:v",
        str(len(pts)),
        "-vf",
        f"setpts=({expr})/TB",
        "-fps_mode",
        "vfr",
        "-video_track_timescale",
        "90000",
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        str(path),
    )
    return path


def rotated_copy(src: Path, dst: Path, degrees: int) -> Path:
    """The same stream with display rotation metadata (as phones record portrait video)."""
    ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(dst))
    return dst


def probe_pts(path: Path) -> list[float]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [float(x.split(",")[0]) for x in out.split()]
