"""Sample clips made from a still photo with a known camera motion.

The demo, the tests and the benchmarks need real faces in a real video, and need to
know where every face is in every frame: panning and zooming over a photo gives both,
since each frame is an affine view ``frame = scale * photo + offset`` of the photo.

    python -m fatools.sample PHOTO OUT.mp4 [--seconds 4] [--fps 25] [--size 1280x720]
    python -m fatools.sample builtin:grace_hopper OUT.mp4   # a portrait matplotlib ships
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class View:
    """Photo-to-frame mapping of one frame: frame_xy = scale * photo_xy + (dx, dy)."""

    scale: float
    dx: float
    dy: float

    def matrix(self) -> np.ndarray:
        return np.array([[self.scale, 0.0, self.dx], [0.0, self.scale, self.dy]])

    def box(self, box: list[float]) -> list[float]:
        """A photo box [x1, y1, x2, y2] as it appears in the frame."""
        x1, y1, x2, y2 = box
        s = self.scale
        return [s * x1 + self.dx, s * y1 + self.dy, s * x2 + self.dx, s * y2 + self.dy]


def camera_path(
    photo_size: tuple[int, int],
    frame_size: tuple[int, int],
    frames: int,
    zoom: float = 1.25,
    pan: float = 0.06,
) -> list[View]:
    """A smooth pan (a fraction of the photo width, left to right) with a zoom in.

    The first frame shows the whole photo fitted inside the frame; by the last the view
    has zoomed in by ``zoom`` around a centre that drifted by ``pan`` of the width.
    """
    pw, ph = photo_size
    fw, fh = frame_size
    fit = min(fw / pw, fh / ph)
    views = []
    for i in range(frames):
        u = i / max(frames - 1, 1)
        scale = fit * (1 + (zoom - 1) * u)
        cx = pw / 2 + (u - 0.5) * pan * pw
        cy = ph / 2
        views.append(View(scale, fw / 2 - scale * cx, fh / 2 - scale * cy))
    return views


def render(photo: np.ndarray, views: list[View], frame_size: tuple[int, int]) -> Iterator[np.ndarray]:
    import cv2

    for view in views:
        yield cv2.warpAffine(photo, view.matrix(), frame_size, flags=cv2.INTER_AREA, borderValue=(0, 0, 0))


def write_video(
    frames: Iterator[np.ndarray], path: str, fps: float = 25.0, codec: str = "libx264", gop: int = 12
) -> None:
    """Encode BGR frames to a video file with PyAV (H.264 by default)."""
    import av

    container = av.open(path, mode="w")
    stream: av.VideoStream | None = None
    try:
        for frame in frames:
            if stream is None:
                # A Fraction: PyAV takes a rate's numerator and denominator, which a float
                # has not (29.97 failed); 1001 keeps NTSC's 30000/1001 exact.
                added = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                if not isinstance(added, av.VideoStream):
                    raise ValueError(f"{codec}: not a video codec")
                stream = added
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.gop_size = gop
                if codec == "libx264":
                    stream.options = {"crf": "18", "preset": "veryfast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    finally:
        container.close()


def pan_zoom_clip(
    photo_path: str,
    out_path: str,
    seconds: float = 4.0,
    fps: float = 25.0,
    size: tuple[int, int] = (1280, 720),
    zoom: float = 1.25,
    pan: float = 0.06,
) -> list[View]:
    """Write a clip panning and zooming over a photo; return each frame's View."""
    from fatools.video import read_image

    photo = read_image(photo_path)
    frames = max(round(seconds * fps), 1)
    views = camera_path((photo.shape[1], photo.shape[0]), size, frames, zoom, pan)
    write_video(render(photo, views, size), out_path, fps)
    return views


# Photos with a real face that every installation has, for a demo without ../shared:
# matplotlib (a dependency) ships this public-domain portrait of Grace Hopper (US Navy)
# in its sample data, so it needs no network; the sha256 pins the very file.
BUILTIN_PREFIX = "builtin:"
BUILTIN_PHOTOS = {
    "grace_hopper": (
        "grace_hopper.jpg",
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
        "https://github.com/matplotlib/matplotlib/raw/v3.11.2/lib/matplotlib/mpl-data/sample_data/"
        "grace_hopper.jpg",
    ),
}


def builtin_photo(name: str) -> str:
    """The path of a built-in photo, checked against its sha256; FatoolsError otherwise."""
    import hashlib

    from fatools.errors import FatoolsError

    if name not in BUILTIN_PHOTOS:
        raise FatoolsError(
            f"{BUILTIN_PREFIX}{name}: no such built-in photo; choose from "
            f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_PHOTOS)}"
        )
    filename, sha256, url = BUILTIN_PHOTOS[name]
    from matplotlib import cbook

    path = str(cbook.get_sample_data(filename, asfileobj=False))
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if digest != sha256:
        raise FatoolsError(
            f"{path}: not the pinned {filename} (sha256 {digest[:12]}..., expected {sha256[:12]}...); "
            f"get it from {url}, or give a photo of your own"
        )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fatools.sample",
        description="Write a video clip that pans and zooms over a photo (a known camera path over real faces), "
        "for demos and tests.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "photo",
        help="the photo (JPEG, PNG, ...) to pan over, or builtin:grace_hopper (a portrait "
        "that ships with matplotlib)",
    )
    parser.add_argument("out", help="the clip to write (.mp4, H.264)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the clip in seconds")
    parser.add_argument("--fps", type=float, default=25.0, help="frames per second")
    parser.add_argument("--size", default="1280x720", help="frame size, WIDTHxHEIGHT pixels")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    photo = args.photo
    if photo.startswith(BUILTIN_PREFIX):
        from fatools.errors import FatoolsError

        try:
            photo = builtin_photo(photo[len(BUILTIN_PREFIX) :])
        except FatoolsError as exc:
            parser.exit(1, f"python -m fatools.sample: error: {exc}\n")
    pan_zoom_clip(photo, args.out, args.seconds, args.fps, (width, height))


if __name__ == "__main__":
    main()
