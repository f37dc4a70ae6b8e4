"""The action-unit timeline (``action_units_timeline_<timestamp>.csv``): one row per
action unit per face per frame, the long format that plotting and statistics tools
group by ``action_unit``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fatools.export.csv_export import CsvSink
from fatools.export.formatting import au_rows
from fatools.export.sinks import Video


class TimelineCsv(CsvSink):
    fmt = "au-timeline"
    prefix = "action_units_timeline"
    columns = (
        "video",
        "frame_index",
        "timestamp_seconds",
        "face_id",
        "track",
        "action_unit",
        "name",
        "description",
        "score",
        "active",
        "intensity",
    )

    def rows_of(self, video: Video, record: dict, faces: list[dict]) -> Iterable[list[Any]]:
        frame, t = record.get("frame"), record.get("t")
        for index, face in enumerate(faces):
            face_id, track = face.get("face", index), face.get("track")
            for row in au_rows(face):
                yield [
                    video.name,
                    frame,
                    t,
                    face_id,
                    track,
                    row.code,
                    row.name,
                    row.description,
                    row.score,
                    row.active,
                    row.intensity,
                ]
