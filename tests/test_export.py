"""fa-export: every format against the records it came from, atomic writes, the CLI.

The records are synthetic (no models): two tracks over 50 sampled frames of a 25 fps
video, with designed episodes: track 0 smiles (AU6 + AU12, Happiness, positive
valence) from 2.0 to 4.0 s and blinks three times; track 1 frowns (AU1 + AU4 + AU15,
Sadness, negative valence) from 4.0 to 6.0 s and is not seen from 6.0 to 7.0 s; no
face is found at 9.0 s.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fatools.cli.export import cli
from fatools.errors import FatoolsError
from fatools.export import DEFAULT_FORMATS, export
from fatools.export.wide import AU_COLUMNS, MAIN_AUS
from fatools.facs import AU45, BY_CODE, CODES, intensity
from fatools.records import dumps
from fatools.versions import __version__

LABELS = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
VIDEO = "clips/interview.mp4"
TS = "20260102_030405"
N = 50
SMILE = range(10, 20)  # samples 10..19: 2.0 .. 3.8 s
FROWN = range(20, 30)
TRACK1_AWAY = range(30, 35)
NO_FACES = 45
BLINKS = (5, 25, 40)
QUADRANTS = {
    (True, True): "Happy/Excited",
    (False, True): "Angry/Stressed",
    (False, False): "Sad/Depressed",
    (True, False): "Calm/Relaxed",
}


def header(video=VIDEO, fps=25.0, frames=250):
    return {
        "schema": 1,
        "type": "video",
        "video": video,
        "fps": fps,
        "frame_count": frames,
        "duration": frames / fps,
        "codec": "h264",
        "width": 1280,
        "height": 720,
        "rotation": 0,
    }


def make_face(
    rng, index, track, k, box, probs_override, label, valence, arousal, blink=False, with_track=True
):
    probs = {code: round(float(rng.uniform(0.02, 0.3)), 6) for code in CODES}
    probs.update(probs_override)
    active = [c for c in CODES if probs[c] > 0.5]
    details = {
        c: {
            "name": BY_CODE[c].name,
            "description": BY_CODE[c].description,
            "intensity": intensity(probs[c], 0.5),
        }
        for c in active
    }
    scores = {name: (0.72 if name == label else 0.04) for name in LABELS}
    landmarks = [[float(box[0] + i), float(box[1] + (i * 7) % 60), float(i % 5)] for i in range(68)]
    face = {
        "face": index,
        "box": box,
        "score": round(0.9 + 0.001 * k, 6),
        "landmarks5": [[box[0] + 10.5, box[1] + 20.25]] * 5,
        "au": {
            "probs": probs,
            "active": active + (["AU45"] if blink else []),
            "threshold": 0.5,
            "details": details,
            "derived": {
                "AU45": {
                    "active": blink,
                    "ear": 0.12 if blink else 0.31,
                    "derived": True,
                    "method": "mean eye aspect ratio of the 68 landmarks below 0.2",
                }
            },
        },
        "expression": {"label": label, "confidence": 0.72, "scores": scores},
        "va": {"valence": valence, "arousal": arousal, "quadrant": QUADRANTS[(valence >= 0, arousal >= 0)]},
        "landmarks3d": landmarks,
        "pose": {
            "yaw": round(-10 + 0.3 * k, 6),
            "pitch": 2.5,
            "roll": round(0.1 * k * (1 if track else -1), 6),
        },
    }
    if with_track:
        face["track"] = track
    return face


def stream(video=VIDEO, n=N, seed=7):
    """A header and n frame records, every 5th frame of a 25 fps video (0.2 s apart)."""
    return list(generate(video, n, seed))


def generate(video=VIDEO, n=N, seed=7):
    rng = np.random.default_rng(seed)
    yield header(video)
    for k in range(n):
        faces = []
        if k != NO_FACES:
            smile = k in SMILE
            overrides = {"AU6": 0.78, "AU12": round(0.85 + 0.01 * (k - 10), 6), "AU25": 0.62} if smile else {}
            faces.append(
                make_face(
                    rng,
                    0,
                    0,
                    k,
                    [100.0 + k, 200.0, 300.5 + k, 420.25],
                    overrides,
                    "Happiness" if smile else "Neutral",
                    0.6 if smile else 0.05,
                    0.3 if smile else -0.1,
                    blink=k in BLINKS,
                )
            )
            if k not in TRACK1_AWAY:
                frown = k in FROWN
                overrides = {"AU1": 0.7, "AU4": 0.81, "AU15": 0.66} if frown else {}
                faces.append(
                    make_face(
                        rng,
                        1,
                        1,
                        k,
                        [800.0, 210.5, 990.0, 430.0],
                        overrides,
                        "Sadness" if frown else "Neutral",
                        -0.5 if frown else 0.1,
                        -0.3 if frown else 0.05,
                    )
                )
        yield {
            "schema": 1,
            "video": video,
            "frame": 5 * k,
            "t": round(0.2 * k, 6),
            "width": 1280,
            "height": 720,
            "detection": {
                "detector": "retinaface",
                "det_size": 1080,
                "square_pad": False,
                "score_threshold": 0.6,
            },
            "faces": faces,
        }


def faces_of(records):
    """(record, index, face) for every face of every frame record, in stream order."""
    return [(r, i, f) for r in records if r.get("type") is None for i, f in enumerate(r.get("faces") or [])]


@pytest.fixture(scope="module")
def records():
    return stream()


@pytest.fixture(scope="module")
def exported(records, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    result = export(iter(records), out, timestamp=TS, keep_analysis=True)
    return out, result


def only(result, fmt):
    (path,) = result.files[fmt]
    return path


def same(a, b):
    """Equal numbers (exactly: exports must round-trip), or both missing."""
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    return a == b


# ---------------------------------------------------------------------------- files


def test_every_format_written_under_its_documented_name(exported):
    out, result = exported
    assert list(result.files) == list(DEFAULT_FORMATS) and "overlay" not in DEFAULT_FORMATS
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            f"facial_analysis_{TS}.json",
            f"facial_analysis_summary_{TS}.csv",
            f"action_units_timeline_{TS}.csv",
            f"facial_analysis_wide_{TS}.csv",
            f"facial_analysis_report_{TS}.txt",
            f"facial_analysis_{TS}.eaf",
            f"facial_analysis_{TS}.vtt",
            f"au_heatmap_track0_{TS}.png",
            f"au_heatmap_track1_{TS}.png",
            f"valence_arousal_{TS}.png",
            f"emotions_{TS}.png",
            "report.html",
            "plotly.min.js",
        ]
    )
    assert all(p.parent == out for p in result.paths())


# ---------------------------------------------------------------------------- json


def test_json_has_the_seed_structure_and_matches_the_records(exported, records):
    out, result = exported
    doc = json.loads(only(result, "json").read_text())
    assert list(doc) == ["analysis_metadata", "video_metadata", "frame_analyses", "summary_statistics"]
    meta = doc["analysis_metadata"]
    for key in (
        "video_path",
        "start_time",
        "processing_duration_seconds",
        "frames_processed",
        "fatools_version",
        "facetorch_version",
        "models",
        "options",
    ):
        assert key in meta, key
    assert meta["video_path"] == VIDEO and meta["frames_processed"] == N
    assert meta["fatools_version"] == __version__ and meta["facetorch_version"]
    assert [m["name"] for m in meta["models"]] == ["retinaface", "au", "fer", "va", "align", "align-meta"]
    assert all("sha256" in m for m in meta["models"])
    assert meta["options"]["detection"]["det_size"] == 1080 and meta["options"]["au_threshold"] == 0.5
    assert_analysis_of(doc, records)


def assert_analysis_of(doc, records):
    """The JSON document's video metadata, frame analyses and statistics, each computed
    again here from the records it was made from."""
    assert doc["video_metadata"] == {
        "total_frames": 250,
        "fps": 25.0,
        "width": 1280,
        "height": 720,
        "duration_seconds": 10.0,
        "codec": "h264",
        "rotation": 0,
    }
    frames = doc["frame_analyses"]
    frame_records = [r for r in records if r.get("type") is None]
    assert len(frames) == len(frame_records) == N
    for entry, record in zip(frames, frame_records, strict=True):
        assert entry["frame_index"] == record["frame"] and entry["timestamp_seconds"] == record["t"]
        assert entry["faces_detected"] == len(record["faces"]) == len(entry["faces"])
        for out_face, face in zip(entry["faces"], record["faces"], strict=True):
            assert out_face["face_id"] == face["face"] and out_face["track"] == face["track"]
            assert out_face["detection_confidence"] == face["score"] and out_face["box"] == face["box"]
            au = out_face["action_units"]
            assert au["active_action_units"] == face["au"]["active"] and au["total_active"] == len(
                face["au"]["active"]
            )
            assert list(au["interpretations"]) == [*CODES, "AU45"]
            for code, p in face["au"]["probs"].items():
                item = au["interpretations"][code]
                assert item["score"] == p and item["active"] == (p > 0.5)
                assert item["description"] == BY_CODE[code].description
                assert item["intensity"] == (face["au"]["details"][code]["intensity"] if p > 0.5 else None)
            assert au["interpretations"]["AU45"]["active"] == face["au"]["derived"]["AU45"]["active"]
            assert out_face["expression"] == {
                "predicted_emotion": face["expression"]["label"],
                "confidence": face["expression"]["confidence"],
                "scores": face["expression"]["scores"],
            }
            assert out_face["valence_arousal"] == {
                "valence": face["va"]["valence"],
                "arousal": face["va"]["arousal"],
                "emotional_quadrant": face["va"]["quadrant"],
            }
            assert out_face["landmarks"] == face["landmarks3d"] and out_face["pose"] == face["pose"]
    stats = doc["summary_statistics"]
    for key in (
        "total_frames",
        "frames_with_faces",
        "total_faces_detected",
        "average_faces_per_frame",
        "most_common_emotion",
        "average_valence",
        "average_arousal",
        "most_active_action_units",
    ):
        assert key in stats, key
    assert stats["total_frames"] == N and stats["frames_with_faces"] == N - 1
    assert stats["total_faces_detected"] == len(faces_of(records))
    assert stats["most_common_emotion"] == "Neutral" and stats["tracks"] == 2
    # The summary is fatools.summary's, kept whole; its episodes include the designed smile.
    events = stats["summary"]["tracks"][0]["au_events"]
    smile = [e for e in events if e["au"] == "AU12"]
    assert len(smile) == 1 and smile[0]["onset"] == 2.0 and smile[0]["offset"] == 4.0


def test_kept_analysis_is_the_records_analysis(exported, records):
    """What keep_analysis returns (fatools.analyze_video's result) against the records, not
    only against the file (the sink builds the two apart: the file from its scratch file)."""
    out, result = exported
    assert result.analysis is not None
    kept = json.loads(json.dumps(result.analysis))
    assert list(kept) == ["analysis_metadata", "video_metadata", "frame_analyses", "summary_statistics"]
    assert (
        kept["analysis_metadata"]["video_path"] == VIDEO
        and kept["analysis_metadata"]["frames_processed"] == N
    )
    assert_analysis_of(kept, records)
    assert kept == json.loads(only(result, "json").read_text())


def test_analysis_metadata_from_the_caller_is_merged_over(records, tmp_path):
    meta = {
        "processing_duration_seconds": 12.5,
        "start_time": "2026-01-02T03:04:05+00:00",
        "models": [{"name": "au", "task": "au", "sha256": "ab" * 32, "path": "/m/au/model.pt"}],
    }
    result = export(records, tmp_path, ["json", "text"], analysis_metadata=meta, timestamp=TS)
    doc = json.loads(only(result, "json").read_text())
    assert doc["analysis_metadata"]["processing_duration_seconds"] == 12.5
    assert doc["analysis_metadata"]["models"] == meta["models"]
    assert doc["analysis_metadata"]["frames_processed"] == N  # still inferred
    report = only(result, "text").read_text()
    assert "Processing time:   12.5 s" in report and "sha256 abababababab" in report


# ---------------------------------------------------------------------------- tables


def test_csv_one_row_per_face_per_frame(exported, records):
    out, result = exported
    df = pd.read_csv(only(result, "csv"))
    assert list(df.columns) == [
        "video",
        "frame_index",
        "timestamp_seconds",
        "faces_detected",
        "face_id",
        "track",
        "detection_confidence",
        "emotion",
        "emotion_confidence",
        "valence",
        "arousal",
        "emotional_quadrant",
        "active_aus_count",
        "active_aus",
    ]
    faces = faces_of(records)
    assert len(df) == len(faces)
    for row, (record, index, face) in zip(df.itertuples(index=False), faces, strict=True):
        assert (
            row.video == VIDEO and row.frame_index == record["frame"] and row.timestamp_seconds == record["t"]
        )
        assert (
            row.faces_detected == len(record["faces"]) and row.face_id == index and row.track == face["track"]
        )
        assert row.detection_confidence == face["score"]
        assert row.emotion == face["expression"]["label"] and row.emotion_confidence == 0.72
        assert row.valence == face["va"]["valence"] and row.arousal == face["va"]["arousal"]
        assert row.emotional_quadrant == face["va"]["quadrant"]
        assert row.active_aus_count == len(face["au"]["active"])
        assert (row.active_aus.split() if isinstance(row.active_aus, str) else []) == face["au"]["active"]


def test_au_timeline_one_row_per_au_per_face_per_frame(exported, records):
    out, result = exported
    df = pd.read_csv(only(result, "au-timeline"))
    assert list(df.columns) == [
        "video",
        "frame_index",
        "timestamp_seconds",
        "face_id",
        "track",
        "action_unit",
        "name",
        "description",
        "score",
        "active",
        "intensity",
    ]
    faces = faces_of(records)
    assert len(df) == len(faces) * (len(CODES) + 1)
    rows = df.itertuples(index=False)
    for record, index, face in faces:
        for code in [*CODES, "AU45"]:
            row = next(rows)
            assert (row.frame_index, row.timestamp_seconds, row.face_id, row.track, row.action_unit) == (
                record["frame"],
                record["t"],
                index,
                face["track"],
                code,
            )
            if code == "AU45":
                assert math.isnan(row.score) and row.active == face["au"]["derived"]["AU45"]["active"]
                assert row.description == AU45.description
                continue
            p = face["au"]["probs"][code]
            assert row.score == p and row.active == (p > 0.5) and row.description == BY_CODE[code].description
            expected = face["au"]["details"][code]["intensity"] if p > 0.5 else None
            assert same(row.intensity, expected)
    # The designed smile reads back from the timeline.
    smile = df[(df.track == 0) & (df.action_unit == "AU12") & df.active]
    assert list(smile.timestamp_seconds) == [round(0.2 * k, 6) for k in SMILE]


def test_wide_has_the_records_values(exported, records):
    out, result = exported
    df = pd.read_csv(only(result, "wide"))
    au_main = [f"AU{int(c[2:]):02d}" for c in MAIN_AUS]
    assert au_main[:4] == ["AU01", "AU02", "AU04", "AU05"] and au_main[-1] == "AU39" and len(au_main) == 27
    assert AU_COLUMNS["L1"] == "AU01_left" and AU_COLUMNS["R14"] == "AU14_right"
    faces = faces_of(records)
    assert len(df) == len(faces)
    for row, (record, index, face) in zip(df.to_dict("records"), faces, strict=True):
        assert (row["frame"], row["approx_time"], row["input"], row["face"], row["track"]) == (
            record["frame"],
            record["t"],
            VIDEO,
            index,
            face["track"],
        )
        x1, y1, x2, y2 = face["box"]
        assert [row["FaceRectX"], row["FaceRectY"]] == [x1, y1] and row["FaceScore"] == face["score"]
        assert row["FaceRectWidth"] == pytest.approx(x2 - x1) and row["FaceRectHeight"] == pytest.approx(
            y2 - y1
        )
        for i, (x, y, z) in enumerate(face["landmarks3d"]):
            assert (row[f"x_{i}"], row[f"y_{i}"], row[f"X_{i}"], row[f"Y_{i}"], row[f"Z_{i}"]) == (
                x,
                y,
                x,
                y,
                z,
            )
        for code, column in AU_COLUMNS.items():
            assert row[column] == face["au"]["probs"][code], column
        assert row["AU45"] == int(face["au"]["derived"]["AU45"]["active"])
        for label in LABELS:
            assert row[label.lower()] == face["expression"]["scores"][label]
        assert row["Valence"] == face["va"]["valence"] and row["Arousal"] == face["va"]["arousal"]
        assert (row["Yaw"], row["Pitch"], row["Roll"]) == (
            face["pose"]["yaw"],
            face["pose"]["pitch"],
            face["pose"]["roll"],
        )
        # No head position in the records: py-feat 2's X, Y, Z are there, empty (fa-export(1)).
        assert all(math.isnan(row[axis]) for axis in "XYZ")
    # Whether py-feat reads all this as its own is tests/test_pyfeat.py's (the real py-feat).
    assert list(df.columns[:3]) == ["frame", "approx_time", "input"]


# ---------------------------------------------------------------------------- text


def test_text_report_tells_what_matters(exported):
    out, result = exported
    text = only(result, "text").read_text()
    assert VIDEO in text and "10.0 s, 250 frames at 25 fps, 1280x720 (h264)" in text
    assert "Frames analysed:   50, one every 0.2 s" in text
    assert "Tracks:            2" in text and "track 0" in text and "track 1" in text
    assert "Processing time:   not recorded" in text and f"fatools {__version__}, facetorch 0.6" in text
    # Dominant emotions, overall and per track.
    assert "Neutral" in text and "Happiness" in text and "Sadness" in text
    # The most active AUs, with what they mean.
    assert "AU12  Lip corner puller (zygomaticus major)" in text
    assert "AU6   Cheek raiser (orbicularis oculi, pars orbitalis)" in text
    # The designed events.
    assert "2.0 s to 4.0 s (2.0 s): AU12 Lip corner puller, peak 0.94 at 3.8 s" in text
    assert "never predicted: Anger, Contempt, Disgust, Fear, Surprise" in text
    assert "AU4 Brow lowerer" in text
    assert "blinks (AU45): 3" in text


# ---------------------------------------------------------------------------- plots


def test_plots_render_at_their_size_and_are_not_blank(exported):
    import matplotlib.image

    from fatools.export.plots import EMOTIONS_SIZE, HEATMAP_SIZE, VA_SIZE

    out, result = exported
    sizes = {"au_heatmap": HEATMAP_SIZE, "valence_arousal": VA_SIZE, "emotions": EMOTIONS_SIZE}
    assert len(result.files["plots"]) == 4
    for path in result.files["plots"]:
        image = matplotlib.image.imread(path)
        kind = next(k for k in sizes if path.name.startswith(k))
        assert image.shape[:2] == (sizes[kind][1], sizes[kind][0]), path.name
        assert image[..., :3].var() > 0.01, f"{path.name} is (nearly) blank"
        # Not mostly background: a real figure puts ink on a good share of its pixels.
        assert (image[..., :3].min(axis=-1) < 0.9).mean() > 0.02, path.name


def test_heatmap_shows_the_smile_where_it_was(exported):
    """Active cells are warm (red-orange), inactive ones pale blue: track 0's smile shows in red."""
    from PIL import Image

    out, result = exported
    path = next(p for p in result.files["plots"] if "track0" in p.name)
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(float)
    warm = (pixels[..., 0] > 150) & (pixels[..., 2] < 100)
    assert warm.sum() > 5000


def test_a_heatmap_redrawn_for_another_track_is_the_one_drawn_afresh():
    """A video's heatmaps share one figure, redrawn per track over its kept frame: the same
    pixels as matplotlib's drawing of a new figure, nothing of the last track left (its
    cells, its time span), and a figure drawn for another threshold is not reused."""
    from array import array

    from fatools.export import plots
    from fatools.export.series import HEAT_CODES, TrackArrays, TrackSeries

    def track(times):
        series = TrackSeries()
        rng = np.random.default_rng(len(times))
        for t in times:
            series.t.append(t)
            series.frame.append(t * 25)
            series.au.extend(array("f", rng.random(len(HEAT_CODES))))
            series.valence.append(0.0)
            series.arousal.append(0.0)
            series.labels.append(-1)
        return TrackArrays(series, timed=True)

    def pixels(canvas):
        return np.asarray(canvas.buffer_rgba()).copy()

    long, short = track([0.2 * k for k in range(60)]), track([2.0 + 0.2 * k for k in range(10)] + [6.0, 6.2])
    fresh = plots.heatmap(short, 0.2, "track 1", True, 0.5)
    fresh.canvas.draw()  # all of it, as savefig would
    shared = plots.heatmap(long, 0.2, "track 0", True, 0.5)
    plots._draw(shared)
    assert plots.heatmap(short, 0.2, "track 1", True, 0.5, reuse=shared) is shared
    assert np.array_equal(pixels(plots._draw(shared)), pixels(fresh.canvas))
    assert plots.heatmap(short, 0.2, "track 1", True, 0.6, reuse=shared) is not shared


def test_content_is_deterministic_apart_from_the_start_time(exported, records, tmp_path):
    out, first = exported
    second = export(iter(records), tmp_path, timestamp=TS, keep_analysis=True)
    for fmt, paths in first.files.items():
        for a, b in zip(paths, second.files[fmt], strict=True):
            if fmt in ("json", "text", "elan"):

                def timeless(path):  # the start time, and the ELAN link to the video from each directory
                    return [
                        line
                        for line in path.read_text().splitlines()
                        if "start_time" not in line
                        and "Started:" not in line
                        and "DATE=" not in line
                        and "MEDIA_DESCRIPTOR" not in line
                    ]

                assert timeless(a) == timeless(b), a.name
            else:
                assert a.read_bytes() == b.read_bytes(), a.name


# ---------------------------------------------------------------------------- streams


@pytest.fixture()
def quick_plots(monkeypatch):
    """Tiny figures instead of the real ones, where a test is about names, not drawings."""
    from matplotlib.figure import Figure

    import fatools.export.plots as plots

    for name in ("heatmap", "va_figure", "emotions_figure"):
        monkeypatch.setattr(plots, name, lambda *args, **kwargs: Figure(figsize=(0.5, 0.5)))


def test_several_videos_share_the_tables_and_get_their_own_files(tmp_path, quick_plots):
    records = stream("a/v.mp4", n=12) + stream("b/v.mp4", n=8, seed=3) + stream("c/other.mov", n=6, seed=4)
    result = export(records, tmp_path, timestamp=TS)
    assert [p.name for p in result.files["json"]] == [
        f"facial_analysis_v_{TS}.json",
        f"facial_analysis_v-2_{TS}.json",
        f"facial_analysis_other_{TS}.json",
    ]
    assert [p.name for p in result.files["text"]] == [
        f"facial_analysis_report_{stem}_{TS}.txt" for stem in ("v", "v-2", "other")
    ]
    assert f"au_heatmap_v-2_track1_{TS}.png" in {p.name for p in result.files["plots"]}
    df = pd.read_csv(only(result, "csv"))
    assert list(df.video.unique()) == ["a/v.mp4", "b/v.mp4", "c/other.mov"]
    docs = [json.loads(p.read_text()) for p in result.files["json"]]
    assert [d["analysis_metadata"]["frames_processed"] for d in docs] == [12, 8, 6]
    assert result.analysis is None  # only kept on request, and only one when one video


def test_sparse_records_missing_fields_and_no_tracks(tmp_path):
    """Detection only, no track, null times (images), a frame never analysed: every format copes."""
    records = [
        {
            "schema": 1,
            "video": "photos",
            "frame": 0,
            "t": None,
            "width": 640,
            "height": 480,
            "faces": [{"face": 0, "box": [1.0, 2.0, 30.0, 40.0], "score": 0.8}],
        },
        {"schema": 1, "video": "photos", "frame": 1, "t": None, "width": 640, "height": 480},
        {
            "schema": 1,
            "video": "photos",
            "frame": 2,
            "t": None,
            "width": 640,
            "height": 480,
            "faces": [
                {
                    "face": 0,
                    "box": [3.0, 4.0, 50.0, 60.0],
                    "score": 0.7,
                    "expression": {"label": "Happiness", "confidence": 0.9},
                    "va": {"valence": 0.2, "arousal": -0.4},
                }
            ],
        },
    ]
    result = export(records, tmp_path, timestamp=TS, keep_analysis=True)
    doc = result.analysis
    assert doc["video_metadata"]["width"] == 640 and doc["video_metadata"]["fps"] is None
    assert [f["faces_detected"] for f in doc["frame_analyses"]] == [1, None, 1]
    first = doc["frame_analyses"][0]["faces"][0]
    assert "action_units" not in first and "expression" not in first and first["track"] is None
    assert doc["frame_analyses"][2]["faces"][0]["valence_arousal"]["emotional_quadrant"] == "Calm/Relaxed"
    wide = pd.read_csv(only(result, "wide"))
    assert len(wide) == 2 and wide["AU12"].isna().all() and wide.happiness.isna().all()
    assert pd.read_csv(only(result, "au-timeline")).empty
    assert "untracked faces" in only(result, "text").read_text()
    # No action units, so no heatmap; valence and emotions are drawn against frame indices.
    assert {p.name for p in result.files["plots"]} == {f"valence_arousal_{TS}.png", f"emotions_{TS}.png"}


def test_no_frame_records_is_an_error(tmp_path):
    with pytest.raises(FatoolsError, match="no frame records"):
        export([header()], tmp_path / "out", timestamp=TS)
    assert list((tmp_path / "out").iterdir()) == []


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'xlsx'"):
        export(stream(n=3), tmp_path, ["csv", "xlsx"])


def test_reads_the_records_once_and_writes_as_they_arrive(tmp_path, quick_plots):
    """One pass over a generator; the streaming formats' files grow while records still come."""
    seen, sizes = [], []

    def once():
        for record in generate(n=60):
            seen.append(record.get("frame"))
            if len(seen) % 20 == 0:
                sizes.append(sum(p.stat().st_size for p in tmp_path.glob(".fa-export-*.part")))
            yield record

    export(once(), tmp_path, timestamp=TS)
    assert len(seen) == 61
    assert 0 < sizes[0] < sizes[1] < sizes[2]


def test_memory_does_not_grow_with_the_number_of_frames(tmp_path):
    """Peak memory of the frame-by-frame formats over 80 and over 400 frames is about the same."""
    import tracemalloc

    def peak(n):
        records = generate(n=n)  # made lazily, so only the exporter's own memory is measured
        tracemalloc.start()
        export(records, tmp_path / str(n), ["json", "csv", "au-timeline", "wide"], timestamp=TS)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    peak(10)  # first use: imports and caches
    small, large = peak(80), peak(400)
    assert large < 1.25 * small, (small, large)


# ---------------------------------------------------------------------------- atomicity


def _left(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_a_failing_record_stream_leaves_no_file(tmp_path):
    def broken():
        yield from stream(n=20)
        raise FatoolsError("records.jsonl:22: malformed JSON record")

    with pytest.raises(FatoolsError, match="malformed"):
        export(broken(), tmp_path, timestamp=TS)
    assert _left(tmp_path) == []


def test_a_writer_failing_midway_leaves_no_final_file_and_no_temp(tmp_path, monkeypatch):
    """The CSVs are written as records arrive, the plots at the end: failing in either leaves nothing."""
    import fatools.export.plots as plots
    import fatools.export.wide as wide

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "emotions_figure", fail)
    with pytest.raises(OSError, match="No space"):
        export(stream(n=10), tmp_path, timestamp=TS)
    assert _left(tmp_path) == []

    calls = []
    original = wide.WideCsv.rows_of

    def half(self, *args):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return original(self, *args)

    monkeypatch.setattr(wide.WideCsv, "rows_of", half)
    with pytest.raises(OSError):
        export(stream(n=10), tmp_path, ["csv", "wide", "json"], timestamp=TS)
    assert _left(tmp_path) == []


def test_an_existing_file_is_replaced_only_when_complete(tmp_path, monkeypatch):
    import fatools.export.text as text

    first = export(stream(n=5), tmp_path, ["csv", "text"], timestamp=TS)
    before = {p: p.read_bytes() for p in first.paths()}
    monkeypatch.setattr(text, "report", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        export(stream(n=9), tmp_path, ["csv", "text"], timestamp=TS)
    assert {p: p.read_bytes() for p in first.paths()} == before
    assert len(_left(tmp_path)) == 2


# ---------------------------------------------------------------------------- CLI


@pytest.fixture()
def jsonl(tmp_path):
    path = tmp_path / "analysis.jsonl"
    path.write_bytes(b"".join(dumps(r) for r in stream(n=12)))
    return path


def test_cli_repeatable_format_prints_paths(jsonl, tmp_path):
    out = tmp_path / "new" / "dir"
    result = CliRunner().invoke(
        cli, [str(jsonl), "-o", str(out), "--format", "csv", "-f", "wide,text", "--timestamp", TS]
    )
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    assert printed == [
        str(out / f"facial_analysis_summary_{TS}.csv"),
        str(out / f"facial_analysis_wide_{TS}.csv"),
        str(out / f"facial_analysis_report_{TS}.txt"),
    ]
    assert all(Path(p).is_file() for p in printed)


def test_cli_default_is_every_format(jsonl, tmp_path):
    result = CliRunner().invoke(cli, [str(jsonl), "-o", str(tmp_path / "all"), "--timestamp", TS])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 13 and _left(tmp_path / "all") == sorted(
        Path(p).name for p in result.stdout.splitlines()
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "xlsx"], "unknown export format 'xlsx'"),
        (["--timestamp", "2026-01-01"], "YYYYmmdd_HHMMSS"),
        (["--on-threshold", "0.3", "--off-threshold", "0.4"], "--off-threshold"),
    ],
)
def test_cli_usage_errors(jsonl, tmp_path, args, message):
    result = CliRunner().invoke(cli, [str(jsonl), "-o", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and message in result.output


def test_cli_needs_an_output_dir(jsonl):
    result = CliRunner().invoke(cli, [str(jsonl)])
    assert result.exit_code == 2 and "--output-dir" in result.output


def test_cli_bad_line_exits_1_naming_it_and_writes_nothing(jsonl, tmp_path):
    lines = jsonl.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines[:6]) + b"{not json\n" + b"".join(lines[6:]))
    out = tmp_path / "o"
    result = CliRunner().invoke(cli, [str(bad), "-o", str(out), "--timestamp", TS])
    assert result.exit_code == 1
    assert f"{bad}:7: malformed JSON record" in result.stderr and result.stdout == ""
    assert _left(out) == []


def test_cli_input_without_frames_exits_1_naming_it(tmp_path):
    empty = tmp_path / "headers.jsonl"
    empty.write_bytes(dumps(header()))
    result = CliRunner().invoke(cli, [str(empty), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and f"{empty}: no frame records" in result.stderr


def test_cli_uses_a_given_summary_and_metadata(jsonl, tmp_path):
    from fatools.records import read_paths
    from fatools.summary import summarize

    summary = summarize(read_paths([str(jsonl)]), top=2)
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "meta.json").write_text(json.dumps({"processing_duration_seconds": 3.25}))
    result = CliRunner().invoke(
        cli,
        [
            str(jsonl),
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--timestamp",
            TS,
            "--summary",
            str(tmp_path / "summary.json"),
            "--metadata",
            str(tmp_path / "meta.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(Path(result.stdout.strip()).read_text())
    assert doc["analysis_metadata"]["processing_duration_seconds"] == 3.25
    assert doc["summary_statistics"]["summary"] == summary["videos"][0]
    assert len(doc["summary_statistics"]["most_active_action_units"]) == 2


def test_entry_point_in_a_subprocess_reads_stdin(jsonl, tmp_path):
    code = "from fatools.cli.export import main; main()"
    with jsonl.open("rb") as stdin:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "-o",
                str(tmp_path / "o"),
                "-f",
                "csv",
                "-f",
                "text",
                "--timestamp",
                TS,
            ],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert [Path(p).name for p in proc.stdout.split()] == [
        f"facial_analysis_summary_{TS}.csv",
        f"facial_analysis_report_{TS}.txt",
    ]


def _eyes(landmarks: list, closed: bool) -> list:
    """68 landmarks whose eyes are open (aspect ratio 0.4) or closed (0.1)."""
    h = 0.5 if closed else 2.0
    eye = [(0, 0), (3, -h), (7, -h), (10, 0), (7, h), (3, h)]
    out = [list(p) for p in landmarks]
    for start, dx in ((36, 0.0), (42, 40.0)):
        for i, (x, y) in enumerate(eye):
            out[start + i] = [x + dx + 500.0, y + 300.0, 0.0]
    return out


def test_summary_and_exports_agree_on_blinks_without_the_derived_flag(tmp_path):
    """Records without fa-predict's AU45 flag (older or other tools' records): blinks come
    from the landmarks' eye aspect ratio, the same way in the summary and every export."""
    from fatools.summary import summarize

    records = stream()
    for record in records[1:]:
        for face in record["faces"]:
            face["au"].pop("derived")
            face["au"]["active"] = [c for c in face["au"]["active"] if c != "AU45"]
            face["landmarks3d"] = _eyes(
                face["landmarks3d"], closed=face["track"] == 0 and record["frame"] // 5 in BLINKS
            )
    summary = summarize(records)
    track0 = summary["videos"][0]["tracks"][0]
    assert track0["blinks"]["count"] == len(BLINKS)
    assert summary["videos"][0]["tracks"][1]["blinks"]["count"] == 0
    result = export(records, tmp_path, ["wide", "au-timeline"], timestamp=TS)
    wide = pd.read_csv(result.files["wide"][0])
    blinked = sorted(wide.loc[(wide["track"] == 0) & (wide["AU45"] == 1), "frame"] // 5)
    assert blinked == list(BLINKS)
    timeline = pd.read_csv(result.files["au-timeline"][0])
    au45 = timeline[(timeline["action_unit"] == "AU45") & timeline["active"]]
    assert sorted(au45["frame_index"] // 5) == list(BLINKS)
