"""The JSON Lines record contract shared by every stage (documented in fatools-records(5)).

One JSON object per line, UTF-8.  Two kinds of record travel in a stream:

* a video header, ``{"schema": 1, "type": "video", "video": PATH, "fps": ..., ...}``,
  written once per input by ``fa-frames`` before its frames (see ``video.probe``);
* a frame record, ``{"schema": 1, "video": PATH, "frame": N, "t": SECONDS, "width": W,
  "height": H}``; later stages add ``faces`` and per-face fields.

Records are plain dicts.  Readers never drop or rewrite fields they do not know, so
stages can be recombined and users can add their own fields.

The readers of fields (``record_time``, ``faces_of``, ``blink_of``, ``va_of``, ...) are
the one place every stage and export reads records through: a field may be missing or
of the wrong type in records from elsewhere, and every reader treats that the same way.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from fatools.errors import RecordError
from fatools.facs import AU45, BLINK_EAR, QUADRANTS, eye_aspect_ratio

SCHEMA_VERSION = 1
HEADER_TYPE = "video"
FRAME_TYPE = "frame"

log = logging.getLogger("fatools")


def is_header(record: dict) -> bool:
    """True for a video header record."""
    return record.get("type") == HEADER_TYPE


def is_frame(record: dict) -> bool:
    """True for a frame record (records without a ``type`` are frames)."""
    return record.get("type", FRAME_TYPE) == FRAME_TYPE


def has_faces(record: dict) -> bool:
    """True for a frame record with at least one face."""
    return bool(record.get("faces")) and is_frame(record)


# -- reading fields -------------------------------------------------------------------


def number(value: Any) -> int | float | None:
    """A finite number as given, or None (bools, strings, NaN and missing values are not numbers)."""
    # The exact types first: called for every value of every record (an export of a long
    # video, ~50 times a record), where the general test below took most of its time.
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def object_of(value: Any) -> dict[str, Any]:
    """The value when it is an object (a dict), else an empty one: a missing or malformed
    object reads as empty."""
    return value if isinstance(value, dict) else {}


def where(record: dict) -> str:
    """How messages name a record: its video and frame."""
    return f"{record.get('video')}: frame {record.get('frame')}"


def record_time(record: dict, fps: float | None = None, strict: bool = False) -> int | float | None:
    """A frame record's time in seconds: its ``t``, else ``frame / fps`` (the header's fps),
    else None.  ``strict`` refuses a ``t`` that is present but not a number of seconds."""
    t = record.get("t")
    seconds = number(t)
    if seconds is not None:
        return seconds
    if t is not None and strict:
        raise RecordError(f"{where(record)}: 't' is not a number of seconds: {t!r}")
    frame = record.get("frame")
    if isinstance(frame, int) and not isinstance(frame, bool) and fps:
        return frame / fps
    return None


def header_fps(header: dict | None) -> float | None:
    """The frame rate a header record gives, when it is a positive number."""
    fps = number((header or {}).get("fps"))
    return float(fps) if fps and fps > 0 else None


def faces_of(record: dict) -> list[dict] | None:
    """The record's faces; None when it was not run through a detector."""
    if "faces" not in record:
        return None
    faces = record["faces"]
    if not isinstance(faces, list) or not all(isinstance(face, dict) for face in faces):
        raise RecordError(
            f"{where(record)}: 'faces' must be a list of objects (records from fa-detect or fa-predict)"
        )
    return faces


def _derived_blink(face: dict) -> dict | None:
    au = face.get("au")
    derived = au.get("derived") if isinstance(au, dict) else None
    blink = derived.get(AU45.code) if isinstance(derived, dict) else None
    return blink if isinstance(blink, dict) else None


def blink_of(face: dict) -> bool | None:
    """AU45 (a blink): fa-predict's derived flag, else the eye aspect ratio of the 68 3D
    landmarks below facs.BLINK_EAR (records without the flag), else None."""
    blink = _derived_blink(face)
    if blink is not None and isinstance(blink.get("active"), bool):
        return blink["active"]
    landmarks = face.get("landmarks3d")
    if isinstance(landmarks, list) and len(landmarks) == 68:
        try:
            return bool(eye_aspect_ratio(landmarks) < BLINK_EAR)
        except (TypeError, ValueError, IndexError):
            return None
    return None


def blink_ear(face: dict) -> float | None:
    """The eye aspect ratio fa-predict's blink was decided on, when it says."""
    blink = _derived_blink(face)
    return number(blink.get("ear")) if blink is not None else None


def au_probs(face: dict) -> dict | None:
    """The face's AU probabilities by code, or None."""
    au = face.get("au")
    probs = au.get("probs") if isinstance(au, dict) else None
    return probs if isinstance(probs, dict) else None


def au_threshold(face: dict, default: float = 0.5) -> float:
    """The threshold above which fa-predict called the face's AUs active."""
    au = face.get("au")
    threshold = number(au.get("threshold")) if isinstance(au, dict) else None
    return default if threshold is None else threshold


def expression_of(face: dict) -> dict:
    expression = face.get("expression")
    return expression if isinstance(expression, dict) else {}


def va_of(face: dict) -> tuple[float | None, float | None, str | None]:
    """Valence, arousal and their circumplex quadrant (computed when not given)."""
    va = face.get("va")
    if not isinstance(va, dict):
        return None, None, None
    valence, arousal = number(va.get("valence")), number(va.get("arousal"))
    quadrant = va.get("quadrant")
    if not isinstance(quadrant, str):
        quadrant = (
            QUADRANTS[(valence >= 0, arousal >= 0)] if valence is not None and arousal is not None else None
        )
    return valence, arousal, quadrant


def track_order(track: Any) -> tuple:
    """The sort key of track ids, for every list of tracks: untracked first, then numeric
    ids by value (2 before 10), then others by their text."""
    if track is None:
        return (0, 0, "")
    if isinstance(track, (int, float)) and not isinstance(track, bool):
        return (1, track, "")
    return (2, 0, str(track))


def box_of(face: dict) -> list:
    box = face.get("box")
    return list(box) if isinstance(box, list) and len(box) == 4 else [None] * 4


def pose_of(face: dict) -> tuple[Any, Any, Any]:
    """Yaw, pitch and roll in degrees, or Nones."""
    pose = face.get("pose")
    if not isinstance(pose, dict):
        return None, None, None
    return number(pose.get("yaw")), number(pose.get("pitch")), number(pose.get("roll"))


# -- writing ----------------------------------------------------------------------------


def frame_record(video: str, frame: int, t: float | None, width: int, height: int, **extra: Any) -> dict:
    """A new frame record with the fields every stage can rely on."""
    record = {
        "schema": SCHEMA_VERSION,
        "video": video,
        "frame": frame,
        "t": t,
        "width": width,
        "height": height,
    }
    record.update(extra)
    return record


def _parse_line(line: bytes, source: str, lineno: int) -> dict:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"{source}:{lineno}: malformed JSON record ({exc})") from None
    if not isinstance(record, dict):
        raise RecordError(f"{source}:{lineno}: expected a JSON object, got {type(record).__name__}")
    schema = record.get("schema", SCHEMA_VERSION)
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise RecordError(
            f"{source}:{lineno}: record schema {schema!r} is newer than this fatools "
            f"understands ({SCHEMA_VERSION}); upgrade fatools"
        )
    return record


def read_records(stream: IO[bytes], source: str = "<stdin>", on_error: str = "fail") -> Iterator[dict]:
    """Yield records from a binary JSON Lines stream, one line at a time.

    ``on_error="fail"`` raises RecordError naming ``source`` and the line number;
    ``"skip"`` logs the same message to stderr and goes on.  Blank lines are ignored.
    """
    for lineno, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield _parse_line(line, source, lineno)
        except RecordError as exc:
            if on_error != "skip":
                raise
            log.warning("skipped: %s", exc)


def _open_records(path: str) -> IO[bytes]:
    # Opened apart from the reading, so that only a failed open becomes this message.
    try:
        return open(path, "rb")
    except OSError as exc:
        raise RecordError(f"{path}: cannot open records ({exc.strerror})") from None


def read_paths(paths: Iterable[str], on_error: str = "fail") -> Iterator[dict]:
    """Records from each path in turn; ``-`` is standard input."""
    for path in paths:
        if path == "-":
            yield from read_records(sys.stdin.buffer, "<stdin>", on_error)
            continue
        with _open_records(path) as handle:
            yield from read_records(handle, path, on_error)


def dumps(record: dict) -> bytes:
    """One record as a JSON line (numpy scalars and arrays allowed)."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


class RecordWriter:
    """Writes records as JSON Lines, flushing each line so pipelines stream."""

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.count = 0

    def write(self, record: dict) -> None:
        self.stream.write(dumps(record))
        self.stream.flush()
        self.count += 1
