"""fa-predict's record fields, CLI behaviour and invariances, with stand-in models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import squares_image

from fatools import facs
from fatools.cli.predict import cli as predict_cli
from fatools.detect import DetectOptions, build_detector, detect_records
from fatools.geometry import square_box
from fatools.predict import PredictOptions, build_predictors, predict_records
from fatools.records import frame_record
from fatools.sample import write_video
from tests.chains import chain


@pytest.fixture(scope="module")
def detected(standin_store, tmp_path_factory):
    image = squares_image(tmp_path_factory.mktemp("sq") / "squares.png")
    record = frame_record(str(image), 0, None, 1280, 720, image=str(image), mine={"kept": True})
    det = build_detector("retinaface", DetectOptions(), "cpu", None, str(standin_store))
    out = next(detect_records([record], det))
    for face in out["faces"]:
        face["note"] = "user field"
    return out


def predict(store, record, **kw):
    predictors = build_predictors(PredictOptions(**kw), "cpu", None, str(store))
    return next(predict_records([json.loads(json.dumps(record))], predictors))


def test_fields_of_every_task(standin_store, detected):
    out = predict(standin_store, detected, tasks=("au", "fer", "va", "align", "embed"))
    assert out["mine"] == {"kept": True}
    assert len(out["faces"]) == 3
    for face in out["faces"]:
        assert face["note"] == "user field"
        au = face["au"]
        assert list(au["probs"]) == facs.CODES and len(au["probs"]) == 41
        assert all(0 <= p <= 1 for p in au["probs"].values())
        main_active = [c for c in au["active"] if c != "AU45"]
        assert main_active == [c for c, p in au["probs"].items() if p > 0.5]
        for code in main_active:
            detail = au["details"][code]
            assert (
                detail["intensity"] in facs.INTENSITY_LABELS
                and facs.BY_CODE[code].name in detail["description"]
            )
        assert au["derived"]["AU45"]["derived"] is True and 0 < au["derived"]["AU45"]["ear"] < 1
        expr = face["expression"]
        assert list(expr["scores"]) == [
            "Anger",
            "Contempt",
            "Disgust",
            "Fear",
            "Happiness",
            "Neutral",
            "Sadness",
            "Surprise",
        ]
        assert sum(expr["scores"].values()) == pytest.approx(1, abs=1e-4)
        assert (
            expr["confidence"] == max(expr["scores"].values())
            and expr["scores"][expr["label"]] == expr["confidence"]
        )
        va = face["va"]
        assert -1 <= va["valence"] <= 1 and -1 <= va["arousal"] <= 1
        assert (
            va["quadrant"]
            == {
                (True, True): "Happy/Excited",
                (False, True): "Angry/Stressed",
                (False, False): "Sad/Depressed",
                (True, False): "Calm/Relaxed",
            }[(va["valence"] >= 0, va["arousal"] >= 0)]
        )
        points = np.array(face["landmarks3d"])
        assert points.shape == (68, 3)
        x1, y1, x2, y2 = face["box"]
        pad = 0.25 * (x2 - x1)
        assert (points[:, 0] > x1 - pad).all() and (points[:, 0] < x2 + pad).all()
        assert (points[:, 1] > y1 - pad).all() and (points[:, 1] < y2 + pad).all()
        assert set(face["pose"]) == {"yaw", "pitch", "roll"} and all(
            abs(v) < 30 for v in face["pose"].values()
        )
        assert len(face["embedding"]) == 512


def test_threshold_and_task_selection(standin_store, detected):
    out = predict(standin_store, detected, tasks=("au",), au_threshold=0.9)
    face = out["faces"][0]
    assert set(face) >= {"au"} and not {"expression", "va", "landmarks3d", "embedding"} & set(face)
    assert face["au"]["active"] == [c for c, p in face["au"]["probs"].items() if p > 0.9]
    assert "derived" not in face["au"]  # AU45 needs align


def test_blink_from_closed_eyes():
    open_eyes = facs.eye_aspect_ratio(np.array(_eye_landmarks(opening=6)))
    closed = facs.eye_aspect_ratio(np.array(_eye_landmarks(opening=1)))
    assert open_eyes > facs.BLINK_EAR > closed
    assert (
        facs.intensity(0.95) == "Extreme" and facs.intensity(0.51) == "Trace" and facs.intensity(0.4) is None
    )


def _eye_landmarks(opening: float) -> list:
    points = [[0.0, 0.0]] * 68
    for start, cx in ((36, 30.0), (42, 70.0)):
        eye = [
            [cx - 10, 50],
            [cx - 4, 50 - opening],
            [cx + 4, 50 - opening],
            [cx + 10, 50],
            [cx + 4, 50 + opening],
            [cx - 4, 50 + opening],
        ]
        points = points[:start] + eye + points[start + 6 :]
    return points


def test_face_batch_and_frame_batch_do_not_change_results(standin_store, tmp_path):
    # Three frames with the squares in different places.
    frames = [
        squares_image(tmp_path / f"f{i}.png", squares=((100 + 40 * i, 80, 150), (600, 300 + 20 * i, 90)))
        for i in range(3)
    ]
    det = build_detector("retinaface", DetectOptions(), "cpu", None, str(standin_store))
    records = list(
        detect_records(
            [frame_record(str(f), i, None, 1280, 720, image=str(f)) for i, f in enumerate(frames)], det
        )
    )
    results = []
    for face_batch, frame_batch in ((1, 1), (8, 8), (3, 2)):
        predictors = build_predictors(
            PredictOptions(tasks=("au", "fer", "va", "align"), face_batch=face_batch),
            "cpu",
            None,
            str(standin_store),
        )
        results.append(list(predict_records(json.loads(json.dumps(records)), predictors, frame_batch)))
    assert [len(r["faces"]) for r in results[0]] == [2, 2, 2]
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            for fa, fb in zip(a["faces"], b["faces"], strict=True):
                pa, pb = (
                    np.array(list(fa["au"]["probs"].values())),
                    np.array(list(fb["au"]["probs"].values())),
                )
                assert np.abs(pa - pb).max() < 1e-5
                assert fa["expression"]["scores"] == pytest.approx(fb["expression"]["scores"], abs=1e-5)
                assert np.allclose(fa["landmarks3d"], fb["landmarks3d"], atol=0.02)


def test_square_box_keeps_centre_and_longer_side():
    assert square_box([10, 20, 50, 100]) == (-10, 20, 70, 100)
    x1, y1, x2, y2 = square_box([0.4, 0.6, 30.2, 20.1])
    assert x2 - x1 == y2 - y1 == 30


def test_pipeline_on_a_video_through_pipes(standin_store, tmp_path):
    """fa-frames | fa-detect | fa-predict on a video with moving squares (in this process:
    tests/chains.py; as processes in tests/test_run.py's test_fa_run_equals_the_pipe)."""

    def frame(i):
        image = np.full((360, 640, 3), 20, np.uint8)
        x = 50 + 20 * i
        image[100:220, x : x + 120] = 250
        return image

    clip = tmp_path / "moving.mp4"
    write_video((frame(i) for i in range(10)), str(clip), fps=10)
    piped = chain(f"fa-frames '{clip}' --every 3 | fa-detect | fa-predict --tasks au,fer", standin_store)
    records = [json.loads(line) for line in piped.splitlines()]
    assert records[0]["type"] == "video"
    frames = records[1:]
    assert [r["frame"] for r in frames] == [0, 3, 6, 9]
    for r in frames:
        assert len(r["faces"]) == 1
        x1 = r["faces"][0]["box"][0]
        assert abs(x1 - (50 + 20 * r["frame"])) < 3
        assert "au" in r["faces"][0] and "expression" in r["faces"][0]


def test_cli_usage_and_missing_models(standin_store, tmp_path, detected):
    line = json.dumps(detected) + "\n"
    result = CliRunner().invoke(predict_cli, ["--tasks", "au,smile"], input=line)
    assert result.exit_code == 2 and "smile" in result.output
    partial = tmp_path / "partial"
    from fatools.testing import build_standins

    build_standins(partial, ["retinaface", "fer"])
    result = CliRunner().invoke(predict_cli, ["--models-dir", str(partial)], input=line)
    assert result.exit_code == 1
    for name in ("au", "va", "align", "align-meta"):
        assert name in result.stderr
    assert "fa-models fetch" in result.stderr
    result = CliRunner().invoke(
        predict_cli, ["--models-dir", str(standin_store), "--tasks", "va"], input=line + "{broken\n"
    )
    assert result.exit_code == 1 and "<stdin>:2: malformed JSON record" in result.stderr
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(out) == 1 and "va" in out[0]["faces"][0]


def test_exact_mode_needs_exact_detection(standin_store, detected):
    result = CliRunner().invoke(
        predict_cli,
        ["--models-dir", str(standin_store), "--facetorch-exact"],
        input=json.dumps(detected) + "\n",
    )
    # The geometry travels in each record: a record found without square padding is refused, naming it.
    assert (
        result.exit_code == 1
        and "frame 0: --facetorch-exact needs faces found with fa-detect --facetorch-exact" in result.stderr
    )


def test_frames_without_faces_stream_out(standin_store, detected):
    """A long stretch of frames without faces is written as it comes, not held back."""
    predictors = build_predictors(PredictOptions(tasks=("va",)), "cpu", None, str(standin_store))

    def records():
        yield json.loads(json.dumps(detected))
        for i in range(1, 1000):
            yield {
                "schema": 1,
                "video": "v.mp4",
                "frame": i,
                "t": i / 25,
                "width": 1280,
                "height": 720,
                "faces": [],
            }
        raise AssertionError("read the whole input before writing")

    out = predict_records(records(), predictors, frame_batch=8)
    first = [next(out) for _ in range(40)]
    assert "va" in first[0]["faces"][0] and [r["frame"] for r in first] == list(range(40))
