"""fa-detect with the real RetinaFace-MobileNet0.25 weights on real photos and clips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fatools.cli.detect import cli as detect_cli
from fatools.detect import DetectOptions, build_detector, detect_records
from fatools.records import frame_record
from fatools.sample import pan_zoom_clip
from tests.chains import chain

BIN = Path(sys.executable).parent


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def detector(mnet_store):
    return build_detector("retinaface-mnet", DetectOptions(), "cpu", None, str(mnet_store))


def detect_image(detector, path: Path) -> list[dict]:
    image = cv2.imread(str(path))
    record = frame_record(str(path), 0, None, image.shape[1], image.shape[0], image=str(path))
    return next(detect_records([record], detector))["faces"]


@pytest.mark.parametrize("name,count", [("family4.jpg", 4), ("grid25.jpg", 25), ("noface.jpg", 0)])
@pytest.mark.parametrize("exact", [False, True])
def test_real_photos_face_counts(mnet_store, faces_dir, name, count, exact):
    det = build_detector("retinaface-mnet", DetectOptions(square_pad=exact), "cpu", None, str(mnet_store))
    faces = detect_image(det, faces_dir / name)
    assert len(faces) == count
    for face in faces:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= 1920 and 0 <= y1 < y2 <= 1920 and face["score"] > 0.6
        # The five landmarks (eyes, nose, mouth corners) lie in or near their box.
        for x, y in face["landmarks5"]:
            assert x1 - 5 <= x <= x2 + 5 and y1 - 5 <= y <= y2 + 5
        (lx, ly), (rx, ry) = face["landmarks5"][:2]
        assert lx < rx  # left eye left of right eye, as seen in the image


def test_grid25_one_face_per_cell(detector, faces_dir):
    faces = detect_image(detector, faces_dir / "grid25.jpg")
    cells = sorted(
        (int((f["box"][1] + f["box"][3]) / 2 // 384), int((f["box"][0] + f["box"][2]) / 2 // 384))
        for f in faces
    )
    assert cells == [(r, c) for r in range(5) for c in range(5)]


def test_square_pad_and_default_agree(mnet_store, faces_dir):
    """Same detection scale with or without padding: the same faces, boxes within a few pixels."""
    plain = detect_image(
        build_detector("retinaface-mnet", DetectOptions(), "cpu", None, str(mnet_store)),
        faces_dir / "family4.jpg",
    )
    exact = detect_image(
        build_detector("retinaface-mnet", DetectOptions(square_pad=True), "cpu", None, str(mnet_store)),
        faces_dir / "family4.jpg",
    )
    for a in plain:
        assert max(iou(a["box"], b["box"]) for b in exact) > 0.9


def test_boxes_follow_camera_motion(detector, faces_dir, tmp_path):
    """Pan and zoom over family4: every frame's boxes are the still boxes moved by the camera."""
    still = detect_image(detector, faces_dir / "family4.jpg")
    clip = tmp_path / "pan.mp4"
    views = pan_zoom_clip(str(faces_dir / "family4.jpg"), str(clip), seconds=3, fps=10, size=(960, 540))
    root = detector_root(detector)
    piped = chain(
        f"fa-frames '{clip}' --every 3 | fa-detect --detector retinaface-mnet --models-dir '{root}' --device cpu",
        root,
    )
    records = [json.loads(line) for line in piped.splitlines()]
    assert records[0]["type"] == "video"
    frame_records = records[1:]
    assert len(frame_records) == 10
    for record in frame_records:
        view = views[record["frame"]]
        expected = [view.box(f["box"]) for f in still]
        assert len(record["faces"]) == 4, record["frame"]
        for face in record["faces"]:
            assert max(iou(face["box"], e) for e in expected) >= 0.7


def detector_root(det) -> Path:
    return Path(det.face_detector.path_local).parents[1]


def test_face_on_border_many_faces_4k_and_portrait(detector, faces_dir, tmp_path, ffmpeg):
    grid = cv2.imread(str(faces_dir / "grid25.jpg"))
    cell = 384
    # A face cut by the left edge: shift grid cell (0, 0) so a third of it is outside.
    border = np.zeros((720, 1280, 3), np.uint8)
    border[100 : 100 + cell, 0 : cell - 190] = grid[0:cell, 190:cell]
    cv2.imwrite(str(tmp_path / "border.png"), border)
    faces = detect_image(detector, tmp_path / "border.png")
    assert len(faces) == 1 and 0 <= faces[0]["box"][0] < 2  # found although cut by the edge
    # 36 faces: a 6x6 mosaic of grid cells.
    cells = [grid[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] for r in range(5) for c in range(5)]
    mosaic = np.vstack([np.hstack([cells[(r * 6 + c) % 25] for c in range(6)]) for r in range(6)])
    mosaic = cv2.resize(mosaic, (1920, 1920), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "mosaic.png"), mosaic)
    assert len(detect_image(detector, tmp_path / "mosaic.png")) == 36
    # A 4K frame: the same faces as the photo, in 4K pixels.
    photo = cv2.imread(str(faces_dir / "family4.jpg"))
    uhd = cv2.resize(photo, (3240, 2160), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((2160, 3840, 3), np.uint8)
    canvas[:, 300:3540] = uhd
    cv2.imwrite(str(tmp_path / "uhd.png"), canvas)
    faces = detect_image(detector, tmp_path / "uhd.png")
    still = detect_image(detector, faces_dir / "family4.jpg")
    assert len(faces) == 4
    for f in still:
        moved = [v * 1.6875 for v in f["box"]]
        moved[0] += 300
        moved[2] += 300
        assert max(iou(moved, g["box"]) for g in faces) > 0.8
    # A portrait (rotated) video: boxes in the displayed orientation.
    land = tmp_path / "land.mp4"
    small = cv2.resize(photo, (960, 640))
    from fatools.sample import write_video

    write_video(iter([small] * 3), str(land), fps=10)
    portrait = tmp_path / "portrait.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(land),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(portrait),
        ],
        check=True,
    )
    frames = subprocess.run(
        [BIN / "fa-frames", str(portrait), "--max-frames", "1", "--images", str(tmp_path / "imgs")],
        capture_output=True,
        check=True,
    ).stdout
    records = [json.loads(x) for x in frames.splitlines()]
    shown = cv2.imread(records[1]["image"])
    assert shown.shape[:2] == (960, 640)
    by_video = list(detect_records([dict(records[1], image=None)], detector))[0]["faces"]
    by_image = detect_image(detector, Path(records[1]["image"]))
    assert len(by_video) == 4
    for a, b in zip(by_video, by_image, strict=True):
        assert iou(a["box"], b["box"]) > 0.95
        assert a["box"][2] <= 640 and a["box"][3] <= 960


def test_batch_size_does_not_change_results(mnet_store, tmp_path, faces_dir):
    clip = tmp_path / "pan.mp4"
    pan_zoom_clip(str(faces_dir / "family4.jpg"), str(clip), seconds=1, fps=8, size=(640, 360))
    frames = subprocess.run([BIN / "fa-frames", str(clip)], capture_output=True, check=True).stdout.decode()
    outputs = []
    for batch in ("1", "3", "8"):
        result = CliRunner().invoke(
            detect_cli,
            ["--detector", "retinaface-mnet", "--models-dir", str(mnet_store), "--batch-size", batch],
            input=frames,
        )
        assert result.exit_code == 0, result.output
        outputs.append([json.loads(x) for x in result.stdout.splitlines()])
    assert sum(len(r.get("faces", [])) for r in outputs[0]) >= 8  # the four faces, in frame after frame
    for other in outputs[1:]:
        for ra, rb in zip(outputs[0], other, strict=True):
            assert ra.get("frame") == rb.get("frame")
            for fa, fb in zip(ra.get("faces", []), rb.get("faces", []), strict=True):
                assert np.allclose(fa["box"], fb["box"], atol=0.05) and abs(fa["score"] - fb["score"]) < 1e-4


def test_bad_frame_references(mnet_store, tmp_path, faces_dir):
    clip = tmp_path / "c.mp4"
    pan_zoom_clip(str(faces_dir / "family4.jpg"), str(clip), seconds=0.5, fps=4, size=(320, 180))
    good = frame_record(str(clip), 0, 0.0, 320, 180)
    past_end = frame_record(str(clip), 99, 24.75, 320, 180)
    missing = frame_record(str(tmp_path / "gone.mp4"), 0, 0.0, 320, 180)
    lines = "\n".join(json.dumps(r) for r in (good, past_end, missing)) + "\n"
    args = ["--detector", "retinaface-mnet", "--models-dir", str(mnet_store)]
    result = CliRunner().invoke(detect_cli, args, input=lines)
    assert result.exit_code == 1
    assert "frame 99 is past the end" in result.stderr and str(clip) in result.stderr
    result = CliRunner().invoke(detect_cli, [*args, "--on-error", "skip"], input=lines)
    assert result.exit_code == 0
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["frame"] for r in out] == [0]
    assert "gone.mp4" in result.stderr and "past the end" in result.stderr


def test_missing_model_is_reported_before_any_work(tmp_path):
    proc = subprocess.run(
        [BIN / "fa-detect", "--models-dir", str(tmp_path / "empty")],
        input=b"this line is never read\n",
        capture_output=True,
    )
    assert proc.returncode == 1
    message = proc.stderr.decode()
    assert "retinaface" in message and "fa-models fetch" in message and str(tmp_path / "empty") in message
    assert "Traceback" not in message and len(message.strip().splitlines()) == 1
