"""The wide table (``facial_analysis_wide_<timestamp>.csv``): one row per face per frame
with py-feat's column names (and OpenFace's for the 3D landmarks), so that
``feat.utils.io.read_feat`` of py-feat 0.6 and of py-feat 2 loads it as a ``Fex`` whose
accessors (``aus``, ``emotions``, ``faceboxes``, ``poses``, ``landmarks``, ``time``) hold
fatools' values, and their users' code runs unchanged.  tests/test_pyfeat.py runs both
releases on it (``make feat-envs`` installs them).

The names are those of py-feat's ``feat/utils/__init__.py``: ``FEAT_TIME_COLUMNS``
(``frame``), ``FEAT_FACEBOX_COLUMNS`` (``FaceRectX, FaceRectY, FaceRectWidth,
FaceRectHeight, FaceScore``), the 2D landmark columns ``x_0..x_67, y_0..y_67``, OpenFace's
3D ``X_0..Z_67``, ``FEAT_FACEPOSE_COLUMNS_6D`` (``Pitch, Roll, Yaw, X, Y, Z``),
``FEAT_EMOTION_COLUMNS`` in its order, and py-feat's ``approx_time`` and ``input``
(detect_video's).  Wherever a concept is py-feat's, the column is too; what py-feat has
no name for comes after (fatools' extras, fa-export(1) lists them).

One layout serves both releases, without a switch, because it is the table of py-feat's
first detector (Detectorv1, which py-feat 2 still has), the one both read the same way:

* py-feat 2's read_feat takes a table with columns named exactly ``valence`` and
  ``arousal`` for its Detectorv2's and then looks for Detectorv2's capitalised emotion
  names (``Happy``, ``Sad``, ...); py-feat 0.6 knows only the lowercase ones.  So
  valence and arousal are ``Valence`` and ``Arousal`` here (capitalised like py-feat's
  other non-emotion columns, FaceScore, Pitch), and both releases find the lowercase
  emotions.
* py-feat 2 reads the pose as six columns, the three angles and the head's position
  ``X, Y, Z``, on either detector's table; 0.6 reads the three angles.  fatools has the
  angles only (facetorch's 3DMM translation is in the face crop's scale, not a position
  in the camera's space), so ``X, Y, Z`` are there and empty.

Choices, documented in fa-export(1): AU columns are two-digit (``AU01``) and hold
OpenGraphAU's score (0..1, like py-feat's AU probabilities, not OpenFace's 0..5
``_r`` intensities); ``AU45`` is 0/1 from the derived blink, not a score; the one-sided
units are ``AU01_left``/``AU01_right`` (read_feat takes every column with ``AU`` in its
name as an AU, and these are AU scores too).  All seven py-feat emotion columns are
always written (empty when the configuration lacks the class), so that ``read_feat``
finds each of them; ``contempt`` and any other class of the configuration follow.  The
table is not an OpenFace CSV (py-feat's read_openface finds none of its AU, pose or time
columns): it borrows OpenFace's names for the 3D landmarks only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fatools.export.csv_export import CsvSink
from fatools.export.sinks import Job, Video
from fatools.facs import ACTION_UNITS
from fatools.records import au_probs, blink_of, box_of, expression_of, number, pose_of, va_of


def _column(code: str) -> str:
    """AU12 -> AU12, AU1 -> AU01, L1 -> AU01_left."""
    if code.startswith("AU"):
        return f"AU{int(code[2:]):02d}"
    side = {"L": "left", "R": "right"}[code[0]]
    return f"AU{int(code[1:]):02d}_{side}"


MAIN_AUS = [u.code for u in ACTION_UNITS if u.code.startswith("AU")]
SIDED_AUS = [u.code for u in ACTION_UNITS if not u.code.startswith("AU")]
AU_COLUMNS = {code: _column(code) for code in MAIN_AUS + SIDED_AUS}

# py-feat's own lists (feat/utils/__init__.py), copied: py-feat is not a dependency.
FEAT_TIME_COLUMNS = ["frame"]
FEAT_FACEBOX_COLUMNS = ["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight", "FaceScore"]
# FEAT_FACEPOSE_COLUMNS_6D: py-feat 2 reads these six on every table (a KeyError without
# X, Y, Z); fatools fills the angles and leaves the position empty.
FEAT_FACEPOSE_COLUMNS = ["Pitch", "Roll", "Yaw", "X", "Y", "Z"]
FEAT_EMOTION_COLUMNS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
LANDMARKS = 68
LANDMARK_2D_COLUMNS = [f"x_{i}" for i in range(LANDMARKS)] + [f"y_{i}" for i in range(LANDMARKS)]
LANDMARK_3D_COLUMNS = [f"{axis}_{i}" for axis in "XYZ" for i in range(LANDMARKS)]
TIME_COLUMN = "approx_time"  # py-feat's detect_video names its seconds so
INPUT_COLUMN = "input"
QUALITY_COLUMNS = ["quality", "quality_sharpness", "quality_pose"]
# Not "valence", "arousal": py-feat 2 takes a table with those two names for its Detectorv2's
# and then finds none of the lowercase emotions (module docstring).
VA_COLUMNS = ["Valence", "Arousal"]
EXTRA_COLUMNS = ["face", "track", *(AU_COLUMNS[c] for c in SIDED_AUS), *VA_COLUMNS, *QUALITY_COLUMNS]


def emotion_columns(labels: Iterable[str]) -> list[str]:
    """py-feat's seven in its order, then the configuration's other classes (contempt)."""
    lowered = [label.lower() for label in labels]
    return FEAT_EMOTION_COLUMNS + [label for label in lowered if label not in FEAT_EMOTION_COLUMNS]


def _landmarks(face: dict) -> tuple[list, list]:
    """(x_0..x_67, y_0..y_67) and (X_.., Y_.., Z_..) of the 68 landmarks, or empty cells."""
    points = face.get("landmarks3d")
    if not (
        isinstance(points, list)
        and len(points) == LANDMARKS
        and all(isinstance(p, list) and len(p) >= 2 for p in points)
    ):
        return [None] * (2 * LANDMARKS), [None] * (3 * LANDMARKS)
    xs, ys = [number(p[0]) for p in points], [number(p[1]) for p in points]
    zs = [number(p[2]) if len(p) > 2 else None for p in points]
    return xs + ys, xs + ys + zs


def _quality(face: dict) -> list:
    quality = face.get("quality")
    if not isinstance(quality, dict):
        return [None] * len(QUALITY_COLUMNS)
    verdict = quality.get("verdict")
    return [
        verdict if isinstance(verdict, str) else None,
        number(quality.get("sharpness")),
        number(quality.get("pose")),
    ]


class WideCsv(CsvSink):
    fmt = "wide"
    prefix = "facial_analysis_wide"

    def __init__(self, job: Job) -> None:
        self.emotions = emotion_columns(job.expression_labels)
        self.columns = (
            *FEAT_TIME_COLUMNS,
            TIME_COLUMN,
            INPUT_COLUMN,
            *FEAT_FACEBOX_COLUMNS,
            *LANDMARK_2D_COLUMNS,
            *LANDMARK_3D_COLUMNS,
            *(AU_COLUMNS[c] for c in MAIN_AUS),
            "AU45",
            *FEAT_FACEPOSE_COLUMNS,
            *self.emotions,
            *EXTRA_COLUMNS,
        )
        super().__init__(job)

    def rows_of(self, video: Video, record: dict, faces: list[dict]) -> Iterable[list[Any]]:
        for index, face in enumerate(faces):
            probs = au_probs(face) or {}
            blink = blink_of(face)
            scores = expression_of(face).get("scores")
            # Labels matched without case, so "happiness" or "HAPPINESS" from other tools also land.
            scores = {str(k).lower(): v for k, v in scores.items()} if isinstance(scores, dict) else {}
            valence, arousal, _ = va_of(face)
            x1, y1, x2, y2 = (number(v) for v in box_of(face))
            width = x2 - x1 if x1 is not None and x2 is not None else None
            height = y2 - y1 if y1 is not None and y2 is not None else None
            yaw, pitch, roll = pose_of(face)
            flat2d, flat3d = _landmarks(face)
            yield [
                record.get("frame"),
                record.get("t"),
                video.name,
                x1,
                y1,
                width,
                height,
                face.get("score"),
                *flat2d,
                *flat3d,
                *(number(probs.get(c)) for c in MAIN_AUS),
                None if blink is None else int(blink),
                pitch,
                roll,
                yaw,
                None,
                None,
                None,  # X, Y, Z: no head position (module docstring)
                *(number(scores.get(col)) for col in self.emotions),
                face.get("face", index),
                face.get("track"),
                *(number(probs.get(c)) for c in SIDED_AUS),
                valence,
                arousal,
                *_quality(face),
            ]
