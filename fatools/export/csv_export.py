"""The per-face summary CSV (``facial_analysis_summary_<timestamp>.csv``), and the
streaming CSV writer the other table formats share.

Rows are written as records arrive, so memory does not grow with the video.  Floats are
written with Python's shortest repr, which reads back to the same double; missing values
are empty cells, booleans True/False (pandas reads both back as they were).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from fatools.export.formatting import active_list
from fatools.export.sinks import Job, Sink, Video
from fatools.records import expression_of, va_of


class CsvSink(Sink):
    """One CSV file for the whole stream, every video in it (the ``video`` column tells them apart)."""

    prefix = ""
    columns: tuple[str, ...] = ()

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.path, self.handle = job.staging.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle, lineterminator="\n")
        self.writer.writerow(self.columns)
        self.rows = 0

    def rows_of(self, video: Video, record: dict, faces: list[dict]) -> Iterable[list[Any]]:
        raise NotImplementedError

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        if not faces:
            return
        for row in self.rows_of(video, record, faces):
            self.writer.writerow(row)
            self.rows += 1

    def abort(self) -> None:
        self.handle.close()

    def finish(self) -> None:
        self.handle.close()
        self.job.staging.stage(self.fmt, self.path, f"{self.prefix}_{self.job.timestamp}.csv")


class SummaryCsv(CsvSink):
    """One row per face per frame with the key metrics, as the seed's summary CSV."""

    fmt = "csv"
    prefix = "facial_analysis_summary"
    columns = (
        "video",
        "frame_index",
        "timestamp_seconds",
        "faces_detected",
        "face_id",
        "track",
        "detection_confidence",
        "emotion",
        "emotion_confidence",
        "valence",
        "arousal",
        "emotional_quadrant",
        "active_aus_count",
        "active_aus",
    )

    def rows_of(self, video: Video, record: dict, faces: list[dict]) -> Iterable[list[Any]]:
        for index, face in enumerate(faces):
            expression = expression_of(face)
            valence, arousal, quadrant = va_of(face)
            active = active_list(face)
            yield [
                video.name,
                record.get("frame"),
                record.get("t"),
                len(faces),
                face.get("face", index),
                face.get("track"),
                face.get("score"),
                expression.get("label"),
                expression.get("confidence"),
                valence,
                arousal,
                quadrant,
                None if active is None else len(active),
                None if active is None else " ".join(active),
            ]
