"""The JSON Lines record contract shared by every stage (documented in fatools-records(5)).

One JSON object per line, UTF-8.  Two kinds of record travel in a stream:

* a video header, ``{"schema": 1, "type": "video", "video": PATH, "fps": ..., ...}``,
  written once per input by ``fa-frames`` before its frames (see ``video.probe``);
* a frame record, ``{"schema": 1, "video": PATH, "frame": N, "t": SECONDS, "width": W,
  "height": H}``; later stages add ``faces`` and per-face fields.

Records are plain dicts.  Readers never drop or rewrite fields they do not know, so
stages can be recombined and users can add their own fields.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any, Iterable, Iterator

import orjson

from fatools.errors import RecordError

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


def frame_record(
    video: str, frame: int, t: float | None, width: int, height: int, **extra: Any
) -> dict:
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
        raise RecordError(
            f"{source}:{lineno}: expected a JSON object, got {type(record).__name__}"
        )
    schema = record.get("schema", SCHEMA_VERSION)
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise RecordError(
            f"{source}:{lineno}: record schema {schema!r} is newer than this fatools "
            f"understands ({SCHEMA_VERSION}); upgrade fatools"
        )
    return record


def read_records(
    stream: IO[bytes], source: str = "<stdin>", on_error: str = "fail"
) -> Iterator[dict]:
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


def read_paths(paths: Iterable[str], on_error: str = "fail") -> Iterator[dict]:
    """Records from each path in turn; ``-`` is standard input."""
    for path in paths:
        if path == "-":
            yield from read_records(sys.stdin.buffer, "<stdin>", on_error)
            continue
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise RecordError(f"{path}: cannot open records ({exc.strerror})") from None
        with handle:
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
