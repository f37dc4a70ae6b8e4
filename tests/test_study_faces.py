"""A study of real faces through fa-run --design and fa-collect (issue 32): 3 participants x
2 sessions, each clip showing faces cut from family4.jpg (../shared) with the people known
per clip; P01's second session has a second, smaller face (an interviewer at the edge), and
the files of P02's and P03's second sessions are swapped.  The real RetinaFace-MobileNet0.25
finds and fa-run tracks the faces; the predictors are the stand-ins.

The stand-in embedding model is no face recogniser, so the identity check's input is set
here: after fa-run, each face's embedding is replaced by a vector for the person drawn at
its box (a unit vector per person plus noise).  What is tested is the check's logic on
real detections and tracks, not a model's ability to recognise faces.  The hand-computed
baselines pick the participant's faces by where they were drawn, not by track."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fatools.sample import write_video

W, H, FPS, FRAMES = 320, 240, 10.0, 6
BIG, SMALL = 120, 64  # the participant's and the interviewer's face squares, in pixels
PEOPLE = ["P01", "P02", "P03", "interviewer"]  # family4.jpg's faces, left to right
# What each file shows (the file names say P02_s2 and P03_s2; their people are swapped).
SHOWS = {
    "P01_s1": ["P01"],
    "P01_s2": ["P01", "interviewer"],
    "P02_s1": ["P02"],
    "P02_s2": ["P03"],
    "P03_s1": ["P03"],
    "P03_s2": ["P02"],
}


def square(person: str, i: int) -> tuple[int, int, int, int]:
    """Where ``person``'s face is drawn in frame i: the participant large and drifting
    right, the interviewer small at the right edge."""
    if person == "interviewer":
        return (W - SMALL - 8, 20, W - 8, 20 + SMALL)
    x = 40 + 4 * i
    return (x, 60, x + BIG, 60 + BIG)


@pytest.fixture(scope="module")
def photo_faces(faces_dir, mixed_store) -> dict[str, np.ndarray]:
    """Each person's face, a square crop of family4.jpg around the real detector's box."""
    from fatools.detect import DetectOptions, build_detector

    photo = cv2.imread(str(faces_dir / "family4.jpg"))
    detector = build_detector("retinaface-mnet", DetectOptions(), "cpu", None, str(mixed_store))
    found = sorted(detector.detect([photo])[0], key=lambda f: f["box"][0])
    assert len(found) == 4
    crops = {}
    for person, face in zip(PEOPLE, found, strict=True):
        x1, y1, x2, y2 = face["box"]
        cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.4
        crops[person] = photo[
            int(cy - side / 2) : int(cy + side / 2), int(cx - side / 2) : int(cx + side / 2)
        ]
    return crops


def clip(path: Path, people: list[str], crops: dict[str, np.ndarray]) -> None:
    def frame(i: int) -> np.ndarray:
        image = np.full((H, W, 3), 60, np.uint8)
        for person in people:
            x1, y1, x2, y2 = square(person, i)
            image[y1:y2, x1:x2] = cv2.resize(crops[person], (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
        return image

    write_video((frame(i) for i in range(FRAMES)), str(path), fps=FPS)


def iou(a: list[float], b: tuple[int, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def drawn(name: str, box: list[float], i: int) -> str:
    """The person drawn where the detector found ``box`` in frame i of clip ``name``."""
    best = max(SHOWS[name], key=lambda person: iou(box, square(person, i)))
    assert iou(box, square(best, i)) > 0.3, (name, box)
    return best


def embedding(person: str, seed: int) -> list[float]:
    vector = np.zeros(8)
    vector[PEOPLE.index(person)] = 1.0
    vector += np.random.default_rng(seed).normal(0, 0.05, 8)
    return [float(v) for v in vector]


@pytest.fixture(scope="module")
def study(tmp_path_factory, photo_faces, mixed_store) -> Path:
    """fa-run --design over the six clips, the controlled embeddings set, then fa-collect
    --design --normalize person --window 0.2s --long --participants."""
    from fatools.cli.collect import cli as collect_cli
    from fatools.cli.run import cli as run_cli

    root = tmp_path_factory.mktemp("faces-study")
    (root / "videos").mkdir()
    for name, people in SHOWS.items():
        clip(root / "videos" / f"{name}.mp4", people, photo_faces)
    design = root / "design.csv"
    design.write_text(
        "video,participant,session,condition\n"
        + "".join(f"{n}.mp4,{n[:3]},{n[4:]},{'rest' if n.endswith('1') else 'task'}\n" for n in SHOWS)
    )
    done = CliRunner().invoke(
        run_cli,
        [
            str(root / "videos"),
            "-o",
            str(root / "results"),
            "--design",
            str(design),
            "--models-dir",
            str(mixed_store),
            "--detector",
            "retinaface-mnet",
            "--device",
            "cpu",
            "--backend",
            "torch",
            "--det-size",
            "0",
            "--every",
            "1",
            "--threads",
            "1",
            "--tasks",
            "au,fer,va",
            "-f",
            "json",
            "-q",
        ],
    )
    assert done.exit_code == 0, done.output
    truth: dict[str, dict] = {}
    for name in SHOWS:
        records = root / "results" / name / "frames.jsonl"
        lines = [json.loads(line) for line in records.read_text().splitlines()]
        for k, record in enumerate(lines):
            for face in record.get("faces") or []:
                person = drawn(name, face["box"], record["frame"])
                face["embedding"] = embedding(person, 1000 * k + face["track"])
                truth.setdefault(name, {})[face["track"]] = person
        records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (root / "truth.json").write_text(json.dumps(truth))
    collected = CliRunner().invoke(
        collect_cli,
        [
            str(root / "results"),
            "-o",
            str(root / "study.csv"),
            "--design",
            str(design),
            "--normalize",
            "person",
            "--window",
            "0.2s",
            "--long",
            str(root / "long.csv"),
            "--participants",
            str(root / "people.csv"),
        ],
    )
    assert collected.exit_code == 0, collected.output
    (root / "stderr.txt").write_text(collected.stderr)
    return root


def videos(study: Path) -> dict[str, dict]:
    table = pd.read_csv(study / "study.csv", dtype=str, keep_default_na=False)
    return {Path(r["input"]).stem: r for r in table.to_dict("records") if r["level"] == "video"}


def test_design_joins_and_the_participants_track_is_theirs(study):
    truth = json.loads((study / "truth.json").read_text())
    rows = videos(study)
    assert {k: (v["participant"], v["session"], v["condition"]) for k, v in rows.items()} == {
        n: (n[:3], n[4:], "rest" if n.endswith("1") else "task") for n in SHOWS
    }
    # Every clip's people were found and tracked as one track each.
    assert {n: sorted(truth[n].values()) for n in SHOWS} == {n: sorted(p) for n, p in SHOWS.items()}
    # The rule picks the large face that is always there, not the interviewer's.
    for name, row in rows.items():
        assert row["track_rule"] == "rule"
        assert truth[name][row["participant_track"]] == SHOWS[name][0], name
    two = rows["P01_s2"]
    assert two["tracks"] == "2" and truth["P01_s2"][two["participant_track"]] == "P01"
    long = pd.read_parquet(study / "long.parquet")
    roles = long[long.input.str.endswith("P01_s2.mp4")].groupby("track").role.first().to_dict()
    assert {truth["P01_s2"][t]: role for t, role in roles.items()} == {
        "P01": "participant",
        "interviewer": "other",
    }
    # fa-run --design kept each video's design row in its run.json.
    record = json.loads((study / "results" / "P03_s2" / "run.json").read_text())
    assert record["design"]["row"] == {"participant": "P03", "session": "s2", "condition": "task"}


def test_swapped_files_are_reported(study):
    rows = videos(study)
    assert {k: v["identity"] for k, v in rows.items()} == {
        "P01_s1": "ok",
        "P01_s2": "ok",
        "P02_s1": "mismatch",
        "P02_s2": "mismatch",
        "P03_s1": "mismatch",
        "P03_s2": "mismatch",
    }
    lines = [line for line in (study / "stderr.txt").read_text().splitlines() if "identity mismatch" in line]
    assert len(lines) == 4
    swapped = next(line for line in lines if "P02_s2.mp4: identity" in line)
    assert "looks like P03 in" in swapped and "P03_s1.mp4" in swapped and "swapped files?" in swapped


def test_person_baseline_is_the_median_of_their_faces(study):
    """P01's reference: every face drawn as P01 in P01's two videos (found by where it
    was drawn), each measure's median and sd; each row's delta and z follow from it."""
    frames = []
    for name in ("P01_s1", "P01_s2"):
        for line in (study / "results" / name / "frames.jsonl").read_text().splitlines():
            record = json.loads(line)
            for face in record.get("faces") or []:
                if drawn(name, face["box"], record["frame"]) == "P01":
                    frames.append(face["au"]["probs"]["AU12"])
    assert len(frames) == 2 * FRAMES
    long = pd.read_csv(study / "long.csv")
    rows = long[(long.participant == "P01") & (long.measure == "AU12")]
    assert (rows.reference == "person").all() and (rows.reference_faces == len(frames)).all()
    assert np.allclose(rows.reference_median, statistics.median(frames), atol=1e-6)
    assert np.allclose(rows.reference_sd, statistics.stdev(frames), atol=1e-6)
    whole = rows[(rows.segment == "all") & rows.input.str.endswith("P01_s1.mp4")].iloc[0]
    assert whole.value == pytest.approx(statistics.mean(frames[:FRAMES]), abs=1e-6)
    assert whole.delta == pytest.approx(whole.value - statistics.median(frames), abs=2e-6)
    # From the unrounded difference: the table's delta is rounded to 6 decimals, and with a
    # small delta that rounding alone moves delta / sd by ~1e-3 of its value.
    expected_z = (statistics.mean(frames[:FRAMES]) - statistics.median(frames)) / statistics.stdev(frames)
    assert whole.z == pytest.approx(expected_z, abs=2e-6)
    # fa-collect's own table: the participant's track row gets its means against the same
    # reference (delta, z); the interviewer's row and the video rows get none.
    table = pd.read_csv(study / "study.csv")
    tracks = table[(table.level == "track") & table.input.str.startswith(str(study / "videos" / "P01_"))]
    mine = tracks[tracks.role == "participant"]
    assert (
        len(mine) == 2 and (mine.reference == "person").all() and (mine.reference_faces == len(frames)).all()
    )
    median, sd = statistics.median(frames), statistics.stdev(frames)
    assert np.allclose(mine.AU12_mean_delta, mine.AU12_mean - median, atol=2e-6)
    assert np.allclose(mine.AU12_mean_z, (mine.AU12_mean - median) / sd, atol=1e-4)
    assert tracks[tracks.role == "other"].AU12_mean_delta.isna().all()
    assert table[table.level == "video"].AU12_mean_delta.isna().all()
    people = pd.read_parquet(study / "people.parquet")
    assert people.set_index("participant").loc["P01", "AU12_median"] == pytest.approx(
        statistics.median(frames), abs=1e-6
    )


def test_long_table_rows_columns_and_parquet(study):
    from fatools.models.config import expression_labels
    from fatools.study.tidy import long_columns, measures

    names = measures(expression_labels(None, False))
    table = pd.read_csv(study / "long.csv", keep_default_na=False, na_values=[""])
    parquet = pd.read_parquet(study / "long.parquet")
    assert list(table.columns) == long_columns(["participant", "session", "condition"])
    # 7 tracks; each: the whole video and its 0.2 s windows (2 sampled frames each at 10 fps:
    # 3 windows of a 6-frame clip), every measure.
    assert len(table) == 7 * (1 + 3) * len(names)
    assert list(parquet.columns) == list(table.columns) and len(parquet) == len(table)
    for column in table.columns:
        a, b = table[column], parquet[column]
        if a.dtype.kind in "fi":
            assert np.allclose(a.astype(float), b.astype(float), equal_nan=True, rtol=0, atol=1e-12), column
        else:
            assert (a.fillna("").astype(str) == b.fillna("").astype(str)).all(), column


def test_collect_takes_the_design_fa_run_kept(study, tmp_path):
    """Without --design, fa-collect joins the rows fa-run --design kept in run.json."""
    from fatools.cli.collect import cli as collect_cli

    done = CliRunner().invoke(
        collect_cli, [str(study / "results"), "-o", str(tmp_path / "t.csv"), "--no-index"]
    )
    assert done.exit_code == 0, done.output
    assert "the design fa-run --design kept in run.json" in done.stderr
    table = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    assert list(table.columns[:3]) == ["participant", "session", "condition"]
    assert table.drop(columns="output_dir").equals(videos_table(study).drop(columns="output_dir"))


def videos_table(study: Path) -> pd.DataFrame:
    table = pd.read_csv(study / "study.csv", dtype=str, keep_default_na=False)
    return table[
        [c for c in table.columns if not c.startswith("reference") and not c.endswith(("_delta", "_z"))]
    ]
