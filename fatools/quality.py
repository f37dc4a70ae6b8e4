"""Which faces to trust: each face's ``quality`` and its verdict (fatools-records(5)).

``quality`` holds the measures a verdict is made of: ``size`` (the box's shorter side in
original pixels), ``score`` (the detector's), ``sharpness`` (variance of the Laplacian of
the face crop in grey, resized to 112x112 so that faces of every size are measured on
one scale: a blurred or upscaled-from-tiny face has little high-frequency detail),
``pose`` (head-pose extremity, the larger of |yaw| and |pitch| in degrees, once fa-predict
adds the pose) and ``verdict``: ``good``, ``fair`` or ``poor``, the worst of the
measures against the thresholds below, with ``reasons`` naming the measures that lowered it.

``--min-quality fair`` (or ``good``) on fa-summarize, fa-export and fa-run leaves faces
below it out of the statistics, episodes, events and plots; the records keep them.
Faces without ``quality`` (records made before it existed) are kept.
"""

from __future__ import annotations

import numpy as np

from fatools.records import number, object_of

VERDICTS = ("poor", "fair", "good")
CROP = 112  # the side the crop is resized to before its Laplacian is measured
# (poor below, fair below): a measure under its first value makes the face poor, under
# its second fair.  Chosen on the shared test photos: sharp faces measure 300-800, a face
# blurred by a 3 px Gaussian about 25, one upscaled from 20 px under 10.
SIZE = (24.0, 48.0)  # px, shorter box side
SCORE = (0.7, 0.85)
SHARPNESS = (15.0, 50.0)
POSE = (60.0, 35.0)  # degrees; larger is worse, so these are upper bounds: poor above 60, fair above 35


def sharpness(image_bgr: np.ndarray, box: list[float]) -> float | None:
    """Variance of the Laplacian of the face crop (grey, 112x112), or None for an empty crop."""
    import cv2

    height, width = image_bgr.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(round(box[2]), width), min(round(box[3]), height)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    crop = cv2.cvtColor(image_bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    interpolation = cv2.INTER_AREA if min(crop.shape) >= CROP else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (CROP, CROP), interpolation=interpolation)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())


def assess(face: dict, sharp: float | None = None) -> dict:
    """The face's quality: its measures and their verdict (``sharp`` when newly measured,
    else the one the face's ``quality`` already has)."""
    previous = object_of(face.get("quality"))
    box = face.get("box")
    size = None
    if isinstance(box, list) and len(box) == 4 and all(number(v) is not None for v in box):
        size = round(min(box[2] - box[0], box[3] - box[1]), 1)
    score = number(face.get("score"))
    if sharp is None:
        sharp = number(previous.get("sharpness"))
    pose = face.get("pose")
    extremity = None
    if isinstance(pose, dict):
        angles = [abs(v) for v in (number(pose.get("yaw")), number(pose.get("pitch"))) if v is not None]
        extremity = round(max(angles), 1) if angles else None
    level = 2
    reasons = []
    for name, value, (poor, fair), worse_when_low in (
        ("small", size, SIZE, True),
        ("low score", score, SCORE, True),
        ("blurred", sharp, SHARPNESS, True),
        ("turned away", extremity, POSE, False),
    ):
        if value is None:
            continue
        bad = (value < poor, value < fair) if worse_when_low else (value > poor, value > fair)
        here = 0 if bad[0] else 1 if bad[1] else 2
        if here < 2:
            reasons.append(name)
        level = min(level, here)
    return {
        "size": size,
        "score": score,
        "sharpness": None if sharp is None else round(sharp, 1),
        "pose": extremity,
        "verdict": VERDICTS[level],
        "reasons": reasons,
    }


def kept(face: dict, min_quality: str | None) -> bool:
    """Whether a face passes ``--min-quality`` (faces without a verdict always do)."""
    if min_quality is None:
        return True
    quality = face.get("quality")
    verdict = quality.get("verdict") if isinstance(quality, dict) else None
    if verdict not in VERDICTS:
        return True
    return VERDICTS.index(verdict) >= VERDICTS.index(min_quality)


def split(faces: list[dict], min_quality: str | None) -> tuple[list[dict], int]:
    """The faces kept, and how many were left out."""
    if min_quality is None:
        return faces, 0
    kept_faces = [face for face in faces if kept(face, min_quality)]
    return kept_faces, len(faces) - len(kept_faces)
