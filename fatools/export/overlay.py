"""The annotated video (``facial_analysis_<timestamp>.mp4``), one per video: the source
video with, on every frame, each face's box and track id, its 68 landmarks, the
expression and its confidence, the active action units and a small valence/arousal
marker.  Frames between two sampled frames show the last sampled frame's annotations.

Same resolution (after the display rotation, which is applied), frame rate and
timestamps as the source: every decoded frame is encoded with its own presentation
timestamp in the source's time base (H.264, so variable-rate video stays variable).
The audio is copied when MP4 can hold its codec, else re-encoded to AAC.

Constant memory: while the records stream by, each sampled frame's annotations go to a
scratch file, one line per frame; at the end the video is decoded once, frame by frame,
and the scratch file is read alongside it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from fatools.errors import FatoolsError
from fatools.export.formatting import active_list
from fatools.export.sinks import Job, Sink, Video
from fatools.export.staging import ScratchFiles
from fatools.records import expression_of, number, va_of

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import OutputContainer
    from av.video.stream import VideoStream

Colour = tuple[int, int, int]  # BGR, as OpenCV draws

log = logging.getLogger("fatools")

# Track colours (BGR), distinct on faces and backgrounds; untracked faces are white.
PALETTE = [
    (0, 200, 255),
    (255, 160, 0),
    (80, 220, 80),
    (220, 80, 220),
    (60, 60, 255),
    (255, 255, 0),
    (0, 140, 255),
    (180, 120, 255),
    (120, 255, 200),
    (255, 90, 140),
]
UNTRACKED = (255, 255, 255)
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"}


def colour(track: Any) -> Colour:
    if isinstance(track, int) and not isinstance(track, bool):
        return PALETTE[track % len(PALETTE)]
    return UNTRACKED if track is None else PALETTE[hash(str(track)) % len(PALETTE)]


def compact(face: dict, index: int) -> dict:
    """What the overlay draws of a face."""
    points = face.get("landmarks3d")
    landmarks = (
        [
            [round(float(p[0])), round(float(p[1]))]
            for p in points
            if isinstance(p, list) and len(p) >= 2 and number(p[0]) is not None and number(p[1]) is not None
        ]
        if isinstance(points, list)
        else []
    )
    expression = expression_of(face)
    valence, arousal, _ = va_of(face)
    return {
        "box": face.get("box"),
        "track": face.get("track"),
        "face": face.get("face", index),
        "landmarks": landmarks,
        "label": expression.get("label"),
        "confidence": number(expression.get("confidence")),
        "aus": active_list(face) or [],
        "va": [valence, arousal] if valence is not None and arousal is not None else None,
    }


def draw(image: np.ndarray, faces: list[dict]) -> None:
    """Draw every face's annotations onto ``image`` (BGR, in place)."""
    import cv2

    for face in faces:
        box = face.get("box")
        if not (isinstance(box, list) and len(box) == 4 and all(number(v) is not None for v in box)):
            continue
        x1, y1, x2, y2 = (round(v) for v in box)
        col = colour(face.get("track"))
        size = max(x2 - x1, 1)
        thick = max(2, size // 90)
        cv2.rectangle(image, (x1, y1), (x2, y2), col, thick)
        for x, y in face.get("landmarks") or []:
            cv2.circle(image, (int(x), int(y)), max(1, size // 120), col, -1)
        scale = min(max(size / 220, 0.45), 1.2)
        who = f"#{face['track']}" if face.get("track") is not None else f"face {face.get('face')}"
        text = who
        if face.get("label"):
            text += f" {face['label']}"
            if face.get("confidence") is not None:
                text += f" {100 * face['confidence']:.0f}%"
        _label(image, text, (x1, y1 - 4), col, scale, above=True)
        aus = list(face.get("aus") or [])[:8]
        if aus:
            _label(image, " ".join(aus), (x1, y2 + 4), col, scale * 0.85, above=False)
        if face.get("va") is not None:
            _va_marker(image, face["va"], (x2 + 4, y1), max(24, size // 4), col)


def _label(
    image: np.ndarray, text: str, origin: tuple[int, int], col: Colour, scale: float, above: bool
) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    x, y = origin
    top = y - th - base if above else y
    top = min(max(top, 0), max(image.shape[0] - th - base, 0))
    cv2.rectangle(image, (x, top), (x + tw + 4, top + th + base), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 2, top + th), font, scale, col, 1, cv2.LINE_AA)


def _va_marker(image: np.ndarray, va: list, corner: tuple[int, int], side: int, col: Colour) -> None:
    """A small square: valence across (-1..1), arousal up, a dot where the face is."""
    import cv2

    x, y = corner
    x = min(x, image.shape[1] - side - 1)
    cv2.rectangle(image, (x, y), (x + side, y + side), (0, 0, 0), -1)
    cv2.rectangle(image, (x, y), (x + side, y + side), col, 1)
    mid = side // 2
    cv2.line(image, (x + mid, y), (x + mid, y + side), (128, 128, 128), 1)
    cv2.line(image, (x, y + mid), (x + side, y + mid), (128, 128, 128), 1)
    valence = min(max(float(va[0]), -1.0), 1.0)
    arousal = min(max(float(va[1]), -1.0), 1.0)
    cv2.circle(
        image, (int(x + mid + valence * mid), int(y + mid - arousal * mid)), max(2, side // 10), col, -1
    )


class OverlaySink(Sink):
    fmt = "overlay"
    trusted_faces = True

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.scratch = ScratchFiles(job.staging)  # per video: one line of annotations per frame

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        frame = record.get("frame")
        if not isinstance(frame, int) or isinstance(frame, bool):
            return
        line = {"frame": frame, "faces": [compact(face, i) for i, face in enumerate(faces or [])]}
        self.scratch.writer(video.name).write(orjson.dumps(line) + b"\n")

    def abort(self) -> None:
        self.scratch.close()

    def finish(self) -> None:
        self.abort()
        job = self.job
        for video in job.videos.values():
            source = video.name
            if (
                video.header is None
                or not isinstance(source, str)
                or not os.path.isfile(source)
                or video.name not in self.scratch.paths
            ):
                log.warning(
                    "%s: no video file to draw on (images, or records without fa-frames' header): no overlay",
                    source,
                )
                continue
            path = job.staging.temp()
            write_overlay(
                source,
                str(self.scratch.paths[video.name]),
                str(path),
                number(video.header.get("frame_count")),
            )
            job.staging.stage(self.fmt, path, f"facial_analysis{job.suffix(video)}_{job.timestamp}.mp4")


def _annotations(path: str) -> Iterator[tuple[int, list[dict]]]:
    """(frame, faces) of each sampled frame, in order, read one line at a time."""
    with open(path, "rb") as handle:
        for line in handle:
            item = orjson.loads(line)
            yield item["frame"], item["faces"]


def write_overlay(
    source: str, annotations: str, out_path: str, total: float | None = None, progress: bool | None = None
) -> None:
    """Decode ``source`` once and write it to ``out_path`` (MP4) with the annotations drawn."""
    import av

    from fatools.progress import Progress
    from fatools.video import _rotate, probe

    # The display size and rotation first: the muxer's header (written with the first
    # packet) must know every stream.
    info = probe(source)
    try:
        container = av.open(source)
    except (av.error.FFmpegError, OSError) as exc:
        raise FatoolsError(f"{source}: cannot open the video to draw the overlay on ({exc})") from None
    progress_line = Progress(int(total) if total else None, progress)
    with container:
        vin = container.streams.video[0]
        vin.thread_type = "AUTO"
        ain = container.streams.audio[0] if container.streams.audio else None
        out = av.open(out_path, "w", format="mp4")
        try:
            vout = _video_stream(out, vin, info.width, info.height)
            audio: tuple[AudioStream, AudioStream] | None = None  # (in, out)
            transcode_audio = ain is not None and ain.codec_context.name not in MP4_AUDIO
            if ain is not None:
                if transcode_audio:
                    audio = (ain, out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000))
                else:
                    audio = (ain, out.add_stream_from_template(ain))
            items = _annotations(annotations)
            pending = next(items, None)
            faces: list[dict] = []
            index = 0
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    if audio is None:
                        continue  # never: the audio stream is demuxed only when it has an output
                    if transcode_audio:
                        for sound in audio[0].decode(packet):
                            sound.pts = None
                            for encoded in audio[1].encode(sound):
                                out.mux(encoded)
                    elif packet.dts is not None:
                        packet.stream = audio[1]
                        out.mux(packet)
                    continue
                for frame in vin.decode(packet):
                    image = _rotate(frame.to_ndarray(format="bgr24"), info.rotation)
                    while pending is not None and pending[0] <= index:
                        faces = pending[1]
                        pending = next(items, None)
                    draw(image, faces)
                    new = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
                    new.pts = frame.pts
                    new.time_base = vin.time_base
                    for encoded in vout.encode(new):
                        out.mux(encoded)
                    index += 1
                    progress_line.update()
            for encoded in vout.encode():
                out.mux(encoded)
            if audio is not None and transcode_audio:
                for encoded in audio[1].encode():
                    out.mux(encoded)
        except av.error.FFmpegError as exc:
            raise FatoolsError(f"{source}: drawing the overlay failed ({exc})") from None
        finally:
            out.close()
            progress_line.close()


def _video_stream(out: OutputContainer, vin: VideoStream, width: int, height: int) -> VideoStream:
    stream = out.add_stream("libx264", rate=vin.average_rate or 25)
    stream.width, stream.height = width, height
    # 4:2:0 needs even sizes; an odd-sized video keeps its size in 4:4:4.
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    if vin.time_base is not None:  # always, for a demuxed stream; the encoder's default otherwise
        stream.time_base = vin.time_base
        stream.codec_context.time_base = vin.time_base
    stream.options = {"crf": "20", "preset": "veryfast"}
    return stream
