"""fa-collect's study side (issue 32) on a synthetic results tree written as fa-run writes
it (run.json, summary.json, frames.jsonl; the shape copied from a stand-in fa-run): 3
participants x 2 sessions, one video with two people (the participant larger), and the
second sessions of P02 and P03 swapped.  Embeddings are ones the test controls (a unit
vector per person plus noise): the stand-in embedding model is no face recogniser, so
the identity check's logic is tested here, not a model's ability to recognise faces."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fatools.cli.collect import cli as collect_cli
from fatools.facs import CODES
from fatools.study.design import fits, match, pattern_design, read_design
from fatools.study.tidy import parse_duration

LABELS = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
FRAMES = 10
INTERVAL = 0.5  # seconds between sampled frames; a 5 s video
PEOPLE = {"P01": 0, "P02": 1, "P03": 2, "interviewer": 3}
# What each file really shows: the file names say P02_s2 and P03_s2, their faces are swapped.
SHOWS = {
    "P01_s1": ["P01"],
    "P01_s2": ["interviewer", "P01"],
    "P02_s1": ["P02"],
    "P02_s2": ["P03"],
    "P03_s1": ["P03"],
    "P03_s2": ["P02"],
}
MEASURES = len(CODES) + len(LABELS) + 2


def au1(person: str, video: str, i: int) -> float:
    """AU1's probability of ``person`` in frame i of ``video``: known, so medians are hand-computable."""
    return round(0.1 + 0.05 * PEOPLE[person] + 0.01 * i + (0.2 if video.endswith("s2") else 0.0), 6)


def embedding(person: str, i: int) -> list[float]:
    vector = np.zeros(8)
    vector[PEOPLE[person]] = 1.0
    vector += np.random.default_rng(PEOPLE[person] * 100 + i).normal(0, 0.05, 8)
    return [round(float(v), 6) for v in vector]


def face(person: str, video: str, i: int, track: int, large: bool) -> dict:
    size = 200 if large else 80
    x = 50 + 300 * track
    probs = dict.fromkeys(CODES, 0.1)
    probs["AU1"] = au1(person, video, i)
    scores = dict.fromkeys(LABELS, 0.1)
    return {
        "face": track,
        "track": track,
        "box": [x, 40.0, x + size, 40.0 + size],
        "score": 0.99,
        "au": {"probs": probs, "active": [], "threshold": 0.5},
        "expression": {"label": "Happiness", "confidence": 0.3, "scores": scores},
        "va": {"valence": 0.1 * PEOPLE[person], "arousal": -0.1, "quadrant": "Calm/Relaxed"},
        "embedding": embedding(person, i),
    }


def result(root: Path, name: str, status: str = "complete") -> Path:
    out = root / name
    out.mkdir(parents=True)
    path = f"videos/{name}.mp4"
    (out / "run.json").write_text(
        json.dumps(
            {
                "schema": 1,
                "type": "run",
                "input": {"path": path, "kind": "video"},
                "options_fingerprint": "f",
                "models": [],
                "status": status,
            }
        )
    )
    if status != "complete":
        return out
    lines = [
        {
            "schema": 1,
            "type": "video",
            "video": path,
            "fps": 10.0,
            "duration": FRAMES * INTERVAL,
            "width": 640,
            "height": 360,
        }
    ]
    people = SHOWS[name]
    for i in range(FRAMES):
        faces = [
            face(person, name, i, track, large=person != "interviewer") for track, person in enumerate(people)
        ]
        lines.append(
            {
                "schema": 1,
                "video": path,
                "frame": i * 5,
                "t": i * INTERVAL,
                "width": 640,
                "height": 360,
                "faces": faces,
            }
        )
    (out / "frames.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    tracks = [{"track": t, "faces": FRAMES, "seconds": FRAMES * INTERVAL} for t in range(len(people))]
    (out / "summary.json").write_text(
        json.dumps(
            {
                "schema": 1,
                "type": "summary",
                "videos": [
                    {
                        "video": path,
                        "metadata": {"duration": FRAMES * INTERVAL},
                        "frames": {"sampled": FRAMES, "with_faces": FRAMES},
                        "time": {"sampling_interval": INTERVAL},
                        "overall": {"faces": FRAMES * len(people)},
                        "tracks": tracks,
                    }
                ],
            }
        )
    )
    return out


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    for name in SHOWS:
        result(root / "results", name)
    with open(root / "design.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "participant", "session", "condition", "group", "site"])
        for name in SHOWS:
            p, s = name.split("_")
            writer.writerow(
                [f"{name}.mp4", p, s, "rest" if s == "s1" else "task", "A" if p != "P03" else "B", "lab1"]
            )
    (root / "events.csv").write_text("onset,offset,label\n0,1,baseline\n1,5,task\n")
    return root


def collect(*args) -> tuple:
    result = CliRunner().invoke(collect_cli, [str(a) for a in args])
    return result.exit_code, result.output


def read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def person(study, tmp_path_factory) -> Path:
    """fa-collect --design --normalize person --window 2s --events: its tables' folder."""
    out = tmp_path_factory.mktemp("person")
    code, output = collect(
        study / "results",
        "-o",
        out / "study.csv",
        "--design",
        study / "design.csv",
        "--long",
        out / "long.csv",
        "--participants",
        out / "people.csv",
        "--window",
        "2s",
        "--events",
        study / "events.csv",
        "--normalize",
        "person",
    )
    assert code == 0, output
    (out / "stderr.txt").write_text(output)
    return out


def test_design_joins_and_track_rule(person):
    rows = read(person / "study.csv")
    videos = {Path(r["input"]).stem: r for r in rows if r["level"] == "video"}
    assert {
        k: (v["participant"], v["session"], v["condition"], v["group"], v["site"]) for k, v in videos.items()
    } == {
        name: (
            name[:3],
            name[4:],
            "rest" if name.endswith("s1") else "task",
            "B" if name.startswith("P03") else "A",
            "lab1",
        )
        for name in SHOWS
    }
    # The video with two people: the participant (larger, always there) is track 1, chosen by the rule;
    # the interviewer's track is kept, as another person.
    assert videos["P01_s2"]["participant_track"] == "1" and videos["P01_s2"]["track_rule"] == "rule"
    roles = {(Path(r["input"]).stem, r["track"]): r["role"] for r in rows if r["level"] == "track"}
    assert roles[("P01_s2", "1")] == "participant" and roles[("P01_s2", "0")] == "other"
    page = (person / "index.html").read_text()
    assert all(
        f'tabindex="0">{name}</th>' in page
        for name in ("participant", "session", "condition", "group", "site", "participant track", "identity")
    )
    assert "<td>P02</td><td>s2</td><td>task</td><td>A</td><td>lab1</td><td>0</td><td>mismatch</td>" in page


def test_identity_check_reports_swapped_files(person):
    rows = {Path(r["input"]).stem: r for r in read(person / "study.csv") if r["level"] == "video"}
    assert {k: v["identity"] for k, v in rows.items()} == {
        "P01_s1": "ok",
        "P01_s2": "ok",
        "P02_s1": "mismatch",
        "P02_s2": "mismatch",
        "P03_s1": "mismatch",
        "P03_s2": "mismatch",
    }
    log = (person / "stderr.txt").read_text()
    lines = [line for line in log.splitlines() if "identity mismatch" in line]
    assert len(lines) == 4  # one per video; with two videos a person's two disagree, the hint tells which
    swapped = next(line for line in lines if "P02_s2.mp4: identity" in line)
    assert "looks like P03 in videos/P03_s1.mp4" in swapped and "swapped files?" in swapped


def test_interviewer_picked_by_design_is_reported(study, tmp_path):
    design = tmp_path / "design.csv"
    design.write_text("input,participant,participant_track\nP01_s1.mp4,P01,\nP01_s2.mp4,P01,0\n")
    code, output = collect(
        study / "results" / "P01_s1",
        study / "results" / "P01_s2",
        "-o",
        tmp_path / "t.csv",
        "--design",
        design,
        "--no-index",
    )
    assert code == 0, output
    rows = {Path(r["input"]).stem: r for r in read(tmp_path / "t.csv") if r["level"] == "video"}
    assert rows["P01_s2"]["participant_track"] == "0" and rows["P01_s2"]["track_rule"] == "design"
    assert rows["P01_s2"]["identity"] == "mismatch"
    assert "its track 1 looks like them" in output


def test_design_validation_one_line_each(study, tmp_path):
    design = tmp_path / "bad.csv"
    lines = (study / "design.csv").read_text().splitlines()
    # P03_s2 has no row, P01_s1 has two, and a row names a video that is not in the study.
    design.write_text("\n".join([*lines[:-1], lines[1], "P09_s1.mp4,P09,s1,rest,A,lab1"]) + "\n")
    code, output = collect(study / "results", "-o", tmp_path / "t.csv", "--design", design)
    assert code == 1
    assert "P09_s1.mp4: no such input in the study" in output
    assert "a second row for videos/P01_s1.mp4 (the first is line 2)" in output
    assert "videos/P03_s2.mp4: no row in" in output
    assert not (tmp_path / "t.csv").exists()
    code, output = collect(study / "results", "-o", tmp_path / "t.csv", "--design", design, "--allow-partial")
    assert code == 0 and output.count("warning:") >= 3
    rows = {Path(r["input"]).stem: r for r in read(tmp_path / "t.csv") if r["level"] == "video"}
    assert rows["P03_s2"]["participant"] == "" and rows["P01_s1"]["participant"] == "P01"


def test_participant_from_pattern(study, tmp_path):
    code, output = collect(
        study / "results",
        "-o",
        tmp_path / "t.csv",
        "--no-index",
        "--participant-from",
        r"(?P<participant>P\d+)_(?P<session>s\d)",
    )
    assert code == 0, output
    rows = [r for r in read(tmp_path / "t.csv") if r["level"] == "video"]
    assert [(r["participant"], r["session"]) for r in rows] == [(n[:3], n[4:]) for n in SHOWS]
    code, output = collect(study / "results", "--participant-from", r"(?P<person>P\d+)")
    assert code == 2 and "(?P<participant>" in output


def test_design_matching_rules(tmp_path):
    assert fits("P01_s1.mp4", "/data/videos/P01_s1.mp4") and fits(
        "videos/P01_s1.mp4", "/data/videos/P01_s1.mp4"
    )
    assert fits("P01_s1", "/data/videos/P01_s1.mp4") and not fits("s1.mp4", "/data/videos/P01_s1.mp4")
    design = tmp_path / "d.csv"
    design.write_text("file,participant\nclip.mp4,P01\n")
    found, problems = match(read_design(str(design)), ["a/clip.mp4", "b/clip.mp4"])
    assert not found and problems[0].endswith("give more of the path") and len(problems) == 3
    found, problems = match(pattern_design(r"(?P<participant>P\d+)"), ["P1.mp4", "x.mp4"])
    assert found == {"P1.mp4": {"participant": "P1"}} and problems == [
        "x.mp4: --participant-from '(?P<participant>P\\\\d+)' does not match the path: no participant"
    ]
    assert parse_duration("10s") == 10 and parse_duration("500ms") == 0.5 and parse_duration("2min") == 120
    with pytest.raises(ValueError):
        parse_duration("ten")


def test_long_table_rows_columns_and_parquet(person):
    table = pd.read_csv(person / "long.csv", keep_default_na=False, na_values=[""])
    parquet = pd.read_parquet(person / "long.parquet")
    # 7 tracks (6 participants' and the interviewer's) x (the video, 3 windows of 2 s, 2 events) x every measure.
    assert len(table) == 7 * 6 * MEASURES
    assert list(table.columns)[:6] == ["participant", "session", "condition", "group", "site", "input"]
    assert {
        "track",
        "role",
        "segment_type",
        "segment",
        "measure",
        "value",
        "reference_median",
        "delta",
        "z",
    } <= set(table.columns)
    assert sorted(set(table.segment)) == sorted(["all", "0-2", "2-4", "4-6", "baseline", "task"])
    assert list(parquet.columns) == list(table.columns) and len(parquet) == len(table)
    for column in table.columns:
        a, b = table[column], parquet[column]
        if a.dtype.kind in "fi":
            assert np.allclose(a.astype(float), b.astype(float), equal_nan=True, rtol=0, atol=0), column
        else:
            assert (a.fillna("").astype(str) == b.fillna("").astype(str)).all(), column
    others = table[table.role == "other"]
    assert set(others.input) == {"videos/P01_s2.mp4"} and others.participant.isna().all()
    assert (others.reference == "none").all()


def test_person_baseline_is_the_hand_computed_median(person):
    table = pd.read_csv(person / "long.csv")
    p01 = table[(table.participant == "P01") & (table.measure == "AU1")]
    frames = [au1("P01", video, i) for video in ("P01_s1", "P01_s2") for i in range(FRAMES)]
    assert (p01.reference_faces == 2 * FRAMES).all()
    assert np.allclose(p01.reference_median, statistics.median(frames))
    assert np.allclose(p01.reference_sd, statistics.stdev(frames), atol=1e-6)
    whole = p01[(p01.segment == "all") & (p01.input == "videos/P01_s1.mp4")].iloc[0]
    assert whole.value == pytest.approx(statistics.mean(frames[:FRAMES]), abs=1e-6)
    assert whole.delta == pytest.approx(whole.value - statistics.median(frames), abs=2e-6)
    assert whole.z == pytest.approx(whole.delta / statistics.stdev(frames), abs=1e-4)
    people = pd.read_parquet(person / "people.parquet")
    row = people[people.participant == "P01"].iloc[0]
    assert (
        row.videos == 2
        and row.faces == 2 * FRAMES
        and row.minutes_with_face == pytest.approx(10 / 60, abs=1e-6)
    )
    assert (
        row.group == "A" and row.site == "lab1" and row.AU1_median == pytest.approx(statistics.median(frames))
    )


def test_baseline_normalisation(study, tmp_path):
    code, output = collect(
        study / "results",
        "-o",
        tmp_path / "t.csv",
        "--no-index",
        "--design",
        study / "design.csv",
        "--long",
        tmp_path / "long.csv",
        "--events",
        study / "events.csv",
        "--baseline",
        "baseline",
        "--normalize",
        "baseline",
    )
    assert code == 0, output
    table = pd.read_csv(tmp_path / "long.csv")
    p02 = table[(table.participant == "P02") & (table.measure == "AU1")]
    # The baseline events (0-1 s) hold frames 0 and 1 of each of P02's two files (whoever they show).
    frames = [au1(shows, video, i) for video, shows in (("P02_s1", "P02"), ("P02_s2", "P03")) for i in (0, 1)]
    assert (p02.reference_faces == 4).all() and (p02.reference == "baseline").all()
    assert np.allclose(p02.reference_median, statistics.median(frames))
    code, output = collect(
        study / "results",
        "--design",
        study / "design.csv",
        "--long",
        tmp_path / "l.csv",
        "--normalize",
        "baseline",
    )
    assert code == 2 and "--normalize baseline needs --events and --baseline" in output


def _documented_terms(section: str) -> list[str]:
    """The column names a section of fatools-study(5) sets as its entries' terms, in order
    (``.B x`` and ``.BR x ", " y`` after ``.TP``; ``.IB`` patterns as written)."""
    import itertools
    import shlex

    page = (Path(__file__).resolve().parents[1] / "man" / "fatools-study.5").read_text()
    text = page.split(f".SH {section}\n", 1)[1].split("\n.SH ", 1)[0].replace("\\-", "-")
    lines = text.splitlines()
    terms = []
    for previous, line in itertools.pairwise(lines):
        if previous == ".TP" and line.startswith((".B ", ".BR ")):
            terms += shlex.split(line)[1::2]
        elif previous == ".TP" and line.startswith(".IB "):
            parts = shlex.split(line)[1:]
            terms.append(" ".join(p.strip() for p in "".join(parts).replace("measure", "{m}").split(",")))
    return terms


def test_documented_columns_are_the_written_ones(person):
    """fatools-study(5) names every column of the long and participants tables, in the order
    they are written, and no other: the header fa-collect wrote is compared with the page."""
    long = next(csv.reader(open(person / "long.csv")))
    design = ["participant", "session", "condition", "group", "site"]
    assert long[: len(design)] == design
    assert _documented_terms("LONG TABLE") == long[len(design) :]
    people = next(csv.reader(open(person / "people.csv")))
    terms = _documented_terms("PARTICIPANTS TABLE")
    assert terms[0] == "participant" and terms[-1] == "{m}_mean {m}_median"
    fixed = terms[1:-1]
    assert people[:3] == ["participant", "group", "site"]  # session and condition are per video
    assert people[3 : 3 + len(fixed)] == fixed
    names = [c[: -len("_mean")] for c in people[3 + len(fixed) :: 2]]
    assert people[3 + len(fixed) :] == [f"{m}_{s}" for m in names for s in ("mean", "median")]
    assert names[0] == "AU1" and names[-2:] == ["valence", "arousal"] and len(names) == MEASURES
    assert set(_documented_terms("DESIGN TABLE")) == {
        "participant",
        "session",
        "condition",
        "group",
        "participant_track",
    }
