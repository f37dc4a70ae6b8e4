"""Tracks through short occlusions: two real faces cut from family4.jpg cross, one
passing in front of the other and hiding it for a third of a second or so; the clips are
encoded, decoded, sampled every 2nd frame, detected with the real RetinaFace-MobileNet
and tracked.  Identity switches and fragmented tracks are counted as MOT benchmarks do,
against the known paths of the two faces."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from fatools import track as track_module
from fatools.detect import DetectOptions, build_detector
from fatools.pipeline import analysed_records
from fatools.sample import write_video
from fatools.track import TrackOptions
from fatools.video import Sampling

SIDE = 200
WIDTH, HEIGHT, FPS = 960, 400, 25


@pytest.fixture(scope="module")
def detector(mnet_store):
    return build_detector("retinaface-mnet", DetectOptions(), "cpu", None, str(mnet_store))


@pytest.fixture(scope="module")
def two_faces(detector, faces_dir):
    photo = cv2.imread(str(faces_dir / "family4.jpg"))
    faces = sorted(detector.detect([photo])[0], key=lambda f: f["box"][0])
    assert len(faces) == 4

    def cut(face):
        x1, y1, x2, y2 = face["box"]
        cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.3
        crop = photo[int(cy - side / 2) : int(cy + side / 2), int(cx - side / 2) : int(cx + side / 2)]
        return cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA)

    return cut(faces[0]), cut(faces[2])


def paths(frames: int, dy: int):
    """Where each face's square is at frame i: A goes right in front, B left behind."""

    def a(i):
        x = int(40 + i / (frames - 1) * (WIDTH - 280))
        return [x, 100 + dy, x + SIDE, 100 + dy + SIDE]

    def b(i):
        x = int(WIDTH - 240 - i / (frames - 1) * (WIDTH - 280))
        return [x, 100, x + SIDE, 100 + SIDE]

    return {"A": a, "B": b}


def crossing_clip(path: Path, faces, frames: int, dy: int) -> Path:
    where = paths(frames, dy)

    def frame(i):
        image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        for who, face in (("B", faces[1]), ("A", faces[0])):  # A drawn last: in front
            x1, y1, x2, y2 = where[who](i)
            image[y1:y2, x1:x2] = face
        return image

    write_video((frame(i) for i in range(frames)), str(path), fps=FPS)
    return path


def mot_counts(records, frames: int, dy: int):
    """(identity switches, fragmented tracks, the sampled frames where B was not found,
    each face's track ids) against the known paths."""
    where = paths(frames, dy)
    assigned = {"A": [], "B": []}
    hidden = []
    for record in records:
        if record.get("type") == "video":
            continue
        i = record["frame"]
        seen = set()
        for face in record["faces"]:
            cx, cy = (face["box"][0] + face["box"][2]) / 2, (face["box"][1] + face["box"][3]) / 2
            for who in ("A", "B"):  # A is in front: a centre in both squares is A's
                x1, y1, x2, y2 = where[who](i)
                if x1 <= cx <= x2 and y1 <= cy <= y2 and who not in seen:
                    assigned[who].append(face["track"])
                    seen.add(who)
                    break
        if "B" not in seen:
            hidden.append(i)
    switches = sum(sum(1 for p, q in itertools.pairwise(ids) if p != q) for ids in assigned.values())
    fragmented = sum(len(set(ids)) - 1 for ids in assigned.values())
    return switches, fragmented, hidden, assigned


def run(clip: Path, detector, options=TrackOptions()):
    return list(analysed_records(str(clip), Sampling(every=2), detector, None, options, 1, 1))


@pytest.mark.parametrize("frames, dy", [(50, 0), (80, 0), (50, 30), (50, 60)])
def test_a_face_hidden_by_another_keeps_its_track(tmp_path, detector, two_faces, frames, dy):
    clip = crossing_clip(tmp_path / f"cross{frames}-{dy}.mp4", two_faces, frames, dy)
    switches, fragmented, hidden, assigned = mot_counts(run(clip, detector), frames, dy)
    assert len(assigned["A"]) >= frames // 2 - 1 and len(assigned["B"]) >= frames // 2 - 8
    # The hide happened: B was lost for 3 sampled frames or more (0.24 s and more; 3 measured
    # at 50 frames, whatever the offset), each while A covered a third of it or more, and found
    # before and after; else the track had nothing to keep through.
    assert len(hidden) >= 3, hidden
    assert all(covered(paths(frames, dy), i) >= 1 / 3 for i in hidden), hidden
    assert min(hidden) > 0 and max(hidden) < frames - 2
    assert (switches, fragmented) == (0, 0), assigned


def covered(where, i: int) -> float:
    """The part of B's square that A's covers at frame i."""
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = where["A"](i), where["B"](i)
    return max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1)) / SIDE**2


def test_without_motion_through_the_gap_the_hidden_face_fragments(tmp_path, detector, two_faces, monkeypatch):
    """The case above as the tracker did it before: the track is lost (the test can fail)."""
    monkeypatch.setattr(track_module, "REMATCH_DISTANCE", 0.0)
    clip = crossing_clip(tmp_path / "cross.mp4", two_faces, 50, 0)
    switches, fragmented, hidden, assigned = mot_counts(run(clip, detector), 50, 0)
    assert fragmented >= 1, assigned
