"""The wide table (``facial_analysis_wide_<timestamp>.csv``): one row per face per frame
with the column names of OpenFace and py-feat, so that their users can line fatools'
output up with theirs.

Choices, documented in fa-export(1): AU columns are two-digit (``AU01``) and hold
OpenGraphAU's score (0..1, like py-feat's AU probabilities, not OpenFace's 0..5
``_r`` intensities); the one-sided units are ``AU01_left``/``AU01_right`` (spelled out
so they cannot be taken for OpenFace's ``_r``/``_c`` suffixes); ``AU45`` is 1/0 from
the derived blink.  Pose stays in facetorch's degrees and names: OpenFace's
``pose_Rx/Ry/Rz`` are radians in a camera frame whose signs facetorch does not share,
so a conversion would look comparable and not be.
"""

from __future__ import annotations

from typing import Any, Iterable

from fatools.export.sinks import Job, Video
from fatools.records import blink_of, box_of, expression_of, number, pose_of, va_of
from fatools.export.csv_export import CsvSink
from fatools.facs import ACTION_UNITS


def _column(code: str) -> str:
    """AU12 -> AU12, AU1 -> AU01, L1 -> AU01_left."""
    if code.startswith("AU"):
        return f"AU{int(code[2:]):02d}"
    side = {"L": "left", "R": "right"}[code[0]]
    return f"AU{int(code[1:]):02d}_{side}"


MAIN_AUS = [u.code for u in ACTION_UNITS if u.code.startswith("AU")]
SIDED_AUS = [u.code for u in ACTION_UNITS if not u.code.startswith("AU")]
AU_COLUMNS = {code: _column(code) for code in MAIN_AUS + SIDED_AUS}


class WideCsv(CsvSink):
    fmt = "wide"
    prefix = "facial_analysis_wide"

    def __init__(self, job: Job) -> None:
        # One column per expression class of the configuration, lower-case as py-feat's.
        self.emotions = [label.lower() for label in job.expression_labels]
        self.columns = ("frame", "timestamp", "video", "face", "track", "confidence", "x1", "y1", "x2", "y2",
                        *(AU_COLUMNS[c] for c in MAIN_AUS), "AU45", *(AU_COLUMNS[c] for c in SIDED_AUS),
                        *self.emotions, "valence", "arousal", "pose_yaw", "pose_pitch", "pose_roll")
        super().__init__(job)

    def rows_of(self, video: Video, record: dict, faces: list[dict]) -> Iterable[list[Any]]:
        for index, face in enumerate(faces):
            au = face.get("au")
            probs = au.get("probs") if isinstance(au, dict) and isinstance(au.get("probs"), dict) else {}
            blink = blink_of(face)
            scores = expression_of(face).get("scores")
            # Labels matched without case, so "happiness" or "HAPPINESS" from other tools also land.
            scores = {str(k).lower(): v for k, v in scores.items()} if isinstance(scores, dict) else {}
            valence, arousal, _ = va_of(face)
            yield [record.get("frame"), record.get("t"), video.name, face.get("face", index), face.get("track"),
                   face.get("score"), *box_of(face),
                   *(number(probs.get(c)) for c in MAIN_AUS), None if blink is None else int(blink),
                   *(number(probs.get(c)) for c in SIDED_AUS),
                   *(number(scores.get(col)) for col in self.emotions),
                   valence, arousal, *pose_of(face)]
