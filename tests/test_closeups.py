"""Close-ups: a face inside a face is never two faces.  Real close-ups are cut from the
shared photos (each face of family4.jpg and grid25.jpg, with a margin, resized to a small
square) and detected at the default det-size of 1080, which enlarges them."""

from __future__ import annotations

import cv2
import pytest

from fatools.detect import DetectOptions, build_detector, detect_options, inside_stronger


@pytest.fixture(scope="module")
def closeups(mnet_store, faces_dir):
    """(name, the face's box in the close-up, close-up image) for every face of both photos."""
    finder = build_detector("retinaface-mnet", DetectOptions(), "cpu", None, str(mnet_store))
    out = []
    for name in ("family4.jpg", "grid25.jpg"):
        image = cv2.imread(str(faces_dir / name))
        for i, face in enumerate(finder.detect([image])[0]):
            x1, y1, x2, y2 = face["box"]
            cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.6
            X1, Y1 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
            X2, Y2 = int(min(cx + side / 2, image.shape[1])), int(min(cy + side / 2, image.shape[0]))
            # Every size for family4's four faces; grid25's 25 smaller faces at 256 px, where
            # their second boxes appear (fewer detector runs: this is the slow part).
            for size in (512, 384, 256) if name == "family4.jpg" else (256,):
                crop = cv2.resize(image[Y1:Y2, X1:X2], (size, size), interpolation=cv2.INTER_AREA)
                sx, sy = size / (X2 - X1), size / (Y2 - Y1)
                out.append(
                    (
                        f"{name} face {i} at {size}px",
                        [(x1 - X1) * sx, (y1 - Y1) * sy, (x2 - X1) * sx, (y2 - Y1) * sy],
                        crop,
                    )
                )
    assert len(out) == 3 * 4 + 25
    return out


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy)


def test_every_close_up_is_one_face(closeups, mnet_store):
    detector = build_detector("retinaface-mnet", DetectOptions(det_size=1080), "cpu", None, str(mnet_store))
    found = 0
    for name, truth, crop in closeups:
        faces = detector.detect([crop])[0]
        # The face is found once: no other box has its centre inside the face's (a part of
        # a neighbour's face at the crop's edge may be found, beside it, not in it).
        main = [f for f in faces if iou(f["box"], truth) > 0.5]
        assert len(main) <= 1, (name, faces)
        found += len(main)
        for face in faces:
            cx, cy = (face["box"][0] + face["box"][2]) / 2, (face["box"][1] + face["box"][3]) / 2
            inner = [
                o
                for o in faces
                if o is not face and o["box"][0] <= cx <= o["box"][2] and o["box"][1] <= cy <= o["box"][3]
            ]
            assert not inner, (name, [(f["box"], f["score"]) for f in faces])
    assert found >= len(closeups) - 3  # a face cut at a photo's edge may be lost at 256 px, never doubled


def test_without_the_rule_some_close_ups_get_a_second_box(closeups, mnet_store):
    """What the rule fixes: enlarged close-ups get boxes of part of the face (this is
    also what facetorch-exact mode returns, and must keep returning)."""
    plain = build_detector(
        "retinaface-mnet", DetectOptions(det_size=1080, suppress_inner=False), "cpu", None, str(mnet_store)
    )
    doubled = [
        name
        for name, truth, crop in closeups
        if sum(iou(f["box"], truth) > 0.2 for f in plain.detect([crop])[0]) > 1
    ]
    assert doubled, "no close-up gets a second box without the rule: the test would not test it"


def test_facetorch_exact_keeps_every_box():
    assert detect_options(facetorch_exact=True).suppress_inner is False
    assert detect_options().suppress_inner is True


def test_inside_stronger_rule():
    face = [100.0, 100.0, 300.0, 340.0]
    assert inside_stronger([125.0, 70.0, 327.0, 329.0], [face])  # part of the face, shifted up
    assert not inside_stronger(
        [150.0, 200.0, 420.0, 480.0], [face]
    )  # centre inside, a third of it: another face
    assert not inside_stronger([280.0, 120.0, 480.0, 360.0], [face])  # a neighbour touching it
    assert not inside_stronger([90.0, 300.0, 190.0, 420.0], [face])  # centre outside
    assert not inside_stronger([125.0, 70.0, 327.0, 329.0], [])
