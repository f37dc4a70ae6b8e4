"""Per-face quality: its measures on real faces (sharp, blurred, tiny), the verdict, and
--min-quality leaving poor faces out of statistics and plots while records keep them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fatools.quality import assess, kept, sharpness, split


@pytest.fixture(scope="module")
def family(faces_dir):
    import cv2

    return cv2.imread(str(faces_dir / "family4.jpg"))


def test_sharpness_tells_a_blurred_face_from_a_sharp_one(family):
    import cv2

    h, w = family.shape[:2]
    box = [w * 0.2, h * 0.15, w * 0.2 + 300, h * 0.15 + 300]
    sharp = sharpness(family, box)
    blurred = sharpness(cv2.GaussianBlur(family, (0, 0), 4), box)
    tiny = cv2.resize(cv2.resize(family, (w // 15, h // 15), interpolation=cv2.INTER_AREA), (w, h))
    upscaled = sharpness(tiny, box)
    assert sharp > 100 and blurred < 50 and upscaled < 15
    assert sharpness(family, [10, 10, 11, 11]) is None


def test_verdict_is_the_worst_measure():
    face = {"box": [0, 0, 100, 120], "score": 0.99, "pose": {"yaw": 5.0, "pitch": -3.0, "roll": 40.0}}
    assert assess(face, 300.0)["verdict"] == "good" and assess(face, 300.0)["reasons"] == []
    assert assess(face, 30.0) == {
        "size": 100,
        "score": 0.99,
        "sharpness": 30.0,
        "pose": 5.0,
        "verdict": "fair",
        "reasons": ["blurred"],
    }
    small = assess({**face, "box": [0, 0, 20, 20]}, 300.0)
    assert small["verdict"] == "poor" and small["reasons"] == ["small"]
    turned = assess({**face, "pose": {"yaw": -70.0, "pitch": 0.0}}, 300.0)
    assert turned["verdict"] == "poor" and turned["pose"] == 70.0 and turned["reasons"] == ["turned away"]
    assert assess({**face, "score": 0.8}, 300.0)["verdict"] == "fair"
    # The sharpness measured at detection is kept when the pose comes later.
    later = assess({**face, "quality": {"sharpness": 12.0}})
    assert later["sharpness"] == 12.0 and later["verdict"] == "poor"


def test_min_quality_keeps_faces_without_a_verdict():
    faces = [
        {"quality": {"verdict": "good"}},
        {"quality": {"verdict": "fair"}},
        {"quality": {"verdict": "poor"}},
        {},
    ]
    assert [kept(f, "fair") for f in faces] == [True, True, False, True]
    assert split(faces, "good") == ([faces[0], faces[3]], 2) and split(faces, None) == (faces, 0)


def test_detect_and_predict_write_quality(mixed_store, faces_dir):
    """The stage commands, in this process (tests/chains.py): each stage's exit status is
    checked, as pipefail would, and its models are the process's loaded ones."""
    from chains import chain

    out = chain(
        f"fa-frames '{faces_dir / 'family4.jpg'}' | fa-detect --detector retinaface-mnet "
        "| fa-predict --tasks align",
        mixed_store,
    )
    record = [json.loads(line) for line in out.splitlines()][-1]
    assert len(record["faces"]) == 4
    for face in record["faces"]:
        quality = face["quality"]
        assert list(face)[-1] == "quality"  # after every prediction field
        assert quality["size"] > 100 and quality["sharpness"] > 50 and quality["pose"] is not None
        assert quality["verdict"] in ("good", "fair", "poor")


def records_with_quality():
    from tests.test_export import stream

    records = stream()
    for record in records[1:]:
        for face in record["faces"]:
            # Track 1's faces are blurred: poor; track 0's are good.
            face["quality"] = assess(face, 10.0 if face["track"] == 1 else 300.0)
    return records


def test_min_quality_in_summary_plots_and_report(tmp_path):
    from fatools.export import export
    from fatools.summary import summarize
    from tests.test_export import TS

    records = records_with_quality()
    every = summarize(records)["videos"][0]
    trusted = summarize(records, min_quality="fair")["videos"][0]
    assert [t["track"] for t in every["tracks"]] == [0, 1] and [t["track"] for t in trusted["tracks"]] == [0]
    left_out = every["frames"]["faces"] - trusted["frames"]["faces"]
    assert (
        left_out == 44
        and trusted["frames"]["faces_left_out"] == 44
        and "faces_left_out" not in every["frames"]
    )
    from fatools.summary import SummaryOptions

    result = export(
        records,
        tmp_path,
        ["text", "plots", "wide"],
        timestamp=TS,
        summary_options=SummaryOptions(min_quality="fair"),
    )
    names = {p.name for p in result.files["plots"]}
    assert f"au_heatmap_track0_{TS}.png" in names and f"au_heatmap_track1_{TS}.png" not in names
    text = result.files["text"][0].read_text()
    assert "Left out:          44 faces below --min-quality fair" in text
    import pandas as pd

    wide = pd.read_csv(result.files["wide"][0])
    assert set(wide.track) == {0, 1} and set(wide.quality) == {"good", "poor"}  # the table keeps every face


def test_cli_option_on_summarize(tmp_path):
    from fatools.cli.summarize import cli
    from fatools.records import dumps

    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(dumps(r) for r in records_with_quality()))
    result = CliRunner().invoke(cli, [str(path), "--min-quality", "good"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (
        summary["options"]["min_quality"] == "good" and summary["videos"][0]["frames"]["faces_left_out"] == 44
    )
    assert CliRunner().invoke(cli, [str(path), "--min-quality", "great"]).exit_code == 2
