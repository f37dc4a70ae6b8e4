"""fa-track on synthetic motion with known identities, its assignment solver and its CLI."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fatools.cli.track import cli as track_cli
from fatools.track import Tracker, TrackOptions, max_weight_assignment, track_records
from tests.chains import chain

BIN = Path(sys.executable).parent
FPS = 25.0
SIZE = 120

# An identity's box at frame i, or None when it is not in the frame.
Path_ = Callable[[int], "list[float] | None"]


def moving(x0: float, y0: float, vx: float, vy: float = 0.0, size: float = SIZE) -> Path_:
    return lambda i: [x0 + vx * i, y0 + vy * i, x0 + vx * i + size, y0 + vy * i + size]


def only(frames: range | set, path: Path_) -> Path_:
    return lambda i: path(i) if i in frames else None


def identity_embeddings(names: list[str], seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(512) for name in names}


def scene(
    paths: dict[str, Path_],
    frames: int,
    *,
    embed: bool = False,
    video: str = "v.mp4",
    header: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Frame records at 25 fps whose faces carry their true identity in a user field "who".

    Faces come in a shuffled order (a detector orders them by score, not by identity), and
    embeddings, when asked for, are each identity's vector plus fresh noise every frame
    (cosine about 0.9 to the identity, 0.8 between two sightings).
    """
    rng = np.random.default_rng(seed)
    bases = identity_embeddings(sorted(paths))
    records: list[dict] = []
    if header:
        records.append(
            {
                "schema": 1,
                "type": "video",
                "video": video,
                "fps": FPS,
                "frame_count": frames,
                "duration": frames / FPS,
                "codec": "h264",
                "width": 1280,
                "height": 720,
                "rotation": 0,
            }
        )
    for i in range(frames):
        faces = []
        for who in sorted(paths):
            box = paths[who](i)
            if box is None:
                continue
            face = {"box": [round(v, 2) for v in box], "score": 0.99, "who": who}
            if embed:
                noise = rng.standard_normal(512)
                vector = bases[who] / np.linalg.norm(bases[who]) + 0.5 * noise / np.linalg.norm(noise)
                face["embedding"] = [round(float(v), 6) for v in vector]
            faces.append(face)
        order = rng.permutation(len(faces))
        faces = [dict(face=k, **faces[o]) for k, o in enumerate(order)]
        records.append(
            {
                "schema": 1,
                "video": video,
                "frame": i,
                "t": round(i / FPS, 6),
                "width": 1280,
                "height": 720,
                "faces": faces,
            }
        )
    return records


def run(records: list[dict], **options) -> list[dict]:
    return list(track_records(json.loads(json.dumps(records)), TrackOptions(**options)))


def tracks_of(records: list[dict]) -> dict[str, list[int]]:
    """Each identity's track ids in frame order, repeats collapsed."""
    seen: dict[str, list[int]] = {}
    for record in records:
        for face in record.get("faces") or [] if not record.get("type") else []:
            ids = seen.setdefault(face["who"], [])
            if not ids or ids[-1] != face["track"]:
                ids.append(face["track"])
    return seen


# Two faces crossing at 30 px per frame: the last boxes of the two are often closer to
# the other face than to their own, so matching on last positions swaps them.
CROSSING = {"a": moving(100, 300, 30), "b": moving(1015, 300, -30)}


@pytest.mark.parametrize("embed", [False, True])
def test_crossing_faces_keep_their_ids(embed):
    out = run(scene(CROSSING, 40, embed=embed))
    assert tracks_of(out) == {"a": [0], "b": [1]} or tracks_of(out) == {"a": [1], "b": [0]}


def test_crossing_needs_the_motion_prediction(monkeypatch):
    # Without the constant-velocity prediction the same scene swaps ids: the test above
    # holds because of the prediction, not because the scene is easy.
    from fatools import track

    monkeypatch.setattr(track._Track, "expected", lambda self, t: self.box)
    ids = tracks_of(run(scene(CROSSING, 40)))
    assert len(ids["a"]) > 1 or len(ids["b"]) > 1


# Two faces that meet and turn back: motion predicts they pass through each other.
def bounce(x0: float, v: float, turn: int = 15) -> Path_:
    return lambda i: moving(x0, 300, v)(i if i <= turn else 2 * turn - i)


BOUNCING = {"a": bounce(100, 25), "b": bounce(100 + 2 * 15 * 25 + 20, -25)}


def test_bouncing_faces_are_told_apart_by_embeddings():
    ids = tracks_of(run(scene(BOUNCING, 30, embed=True)))
    assert sorted(ids.values()) == [[0], [1]]


def test_bouncing_faces_without_embeddings_follow_the_motion():
    # The documented limit: same-size faces that meet and turn back swap ids.
    out = run(scene(BOUNCING, 30))
    ids = tracks_of(out)
    assert ids["a"] == ids["b"][::-1] and len(ids["a"]) == 2


# A face walking slowly right, hidden for exactly one second (frames 25..49).
HIDDEN = {"a": only(set(range(25)) | set(range(50, 100)), moving(200, 200, 3)), "b": moving(900, 400, -1)}


@pytest.mark.parametrize("embed", [False, True])
def test_face_hidden_for_a_second_keeps_its_id_within_max_gap(embed):
    records = scene(HIDDEN, 100, embed=embed)
    assert sum(1 for r in records[1:] if all(f["who"] != "a" for f in r["faces"])) == 25
    ids = tracks_of(run(records, max_gap=2.0))
    assert sorted(ids.values()) == [[0], [1]]


@pytest.mark.parametrize("embed", [False, True])
def test_face_hidden_longer_than_max_gap_gets_a_new_id(embed):
    ids = tracks_of(run(scene(HIDDEN, 100, embed=embed), max_gap=0.5))
    assert len(ids["a"]) == 2 and ids["a"][1] == 2 and len(ids["b"]) == 1


def test_face_that_stops_while_hidden_keeps_its_id():
    # Moving fast, hidden for half a second, back where it vanished: the expected box has
    # moved on 250 px, the last box has not.
    walk = moving(100, 300, 20)
    paths = {"a": lambda i: walk(min(i, 9)) if not 10 <= i < 22 else None}
    assert tracks_of(run(scene(paths, 40))) == {"a": [0]}


def test_frames_without_any_face_age_tracks():
    # "faces": [] is an analysed frame with nobody in it; time still runs for the tracks.
    paths = {"a": only(set(range(10)) | set(range(40, 50)), moving(300, 300, 0))}
    assert tracks_of(run(scene(paths, 50), max_gap=1.0)) == {"a": [0, 1]}
    assert tracks_of(run(scene(paths, 50), max_gap=1.3)) == {"a": [0]}


def test_new_face_gets_the_next_id_in_order_of_appearance():
    paths = {
        "a": moving(100, 100, 2),
        "b": only(range(20, 60), moving(700, 300, -2)),
        "c": only(range(40, 60), moving(400, 500, 0)),
    }
    out = run(scene(paths, 60))
    assert tracks_of(out) == {"a": [0], "b": [1], "c": [2]}
    first = next(r for r in out if r.get("frame") == 20)
    assert {f["who"]: f["track"] for f in first["faces"]} == {"a": 0, "b": 1}


def test_face_that_comes_back_elsewhere_is_found_by_its_embedding():
    # Leaves on the right, is away for 1.2 s, comes back on the left: no overlap at all.
    paths = {
        "a": lambda i: (
            moving(1000, 200, 4)(i) if i < 20 else (moving(0, 200, 4)(i - 50) if i >= 50 else None)
        ),
        "b": moving(500, 450, 0),
    }
    assert tracks_of(run(scene(paths, 80, embed=True))) in ({"a": [0], "b": [1]}, {"a": [1], "b": [0]})
    assert sorted(map(len, tracks_of(run(scene(paths, 80))).values())) == [1, 2]


def test_running_embedding_follows_slowly_changing_appearance():
    # The face's embedding turns 60 degrees while it is in view (light, pose), then it
    # leaves and comes back elsewhere looking as it did last: only a track embedding
    # that follows the sightings re-identifies it (the first sighting scores 0.5).
    rng = np.random.default_rng(5)
    base, other = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 512)))
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    records = scene(
        {"a": lambda i: moving(1000, 200, 4)(i) if i < 40 else (moving(0, 200, 4)(i) if i >= 60 else None)},
        80,
    )
    for record in records[1:]:
        angle = np.radians(60) * min(record["frame"], 39) / 39
        for face in record["faces"]:
            face["embedding"] = list(np.cos(angle) * base + np.sin(angle) * other)
    assert tracks_of(run(records)) == {"a": [0]}


CUT = 20
SHOTS = {  # two people, and at a cut the camera shows them from the other side
    "a": lambda i: moving(200, 200, 1)(i) if i < CUT else moving(900, 250, -1)(i),
    "b": lambda i: moving(800, 200, -1)(i) if i < CUT else moving(150, 250, 1)(i),
}


def test_cut_starts_new_tracks_without_embeddings():
    ids = tracks_of(run(scene(SHOTS, 40)))
    assert sorted(ids.values()) == [[0, 2], [1, 3]] or sorted(ids.values()) == [[0, 3], [1, 2]]


def test_cut_keeps_ids_with_embeddings():
    assert sorted(tracks_of(run(scene(SHOTS, 40, embed=True))).values()) == [[0], [1]]


def test_other_person_at_the_same_place_after_a_cut():
    # Without embeddings the boxes decide (documented); embeddings veto the link.
    paths = {"a": only(range(CUT), moving(400, 200, 0)), "b": only(range(CUT, 40), moving(405, 205, 0))}
    assert tracks_of(run(scene(paths, 40))) == {"a": [0], "b": [0]}
    assert tracks_of(run(scene(paths, 40, embed=True))) == {"a": [0], "b": [1]}


def test_images_without_t_use_header_fps_or_frames():
    records = scene(HIDDEN, 100)
    for record in records[1:]:
        record["t"] = None
    # With the header's 25 fps the 26-frame gap is 1.04 s, within 2 s.
    assert sorted(tracks_of(run(records, max_gap=2.0)).values()) == [[0], [1]]
    # Without a header time counts in frames: 26 frames is more than a gap of 2.
    assert len(tracks_of(run(records[1:], max_gap=2.0))["a"]) == 2
    assert len(tracks_of(run(records[1:], max_gap=26))["a"]) == 1


def test_each_video_has_its_own_ids_and_everything_else_passes_through():
    first = scene({"a": moving(100, 100, 1)}, 5, video="one.mp4")
    second = scene({"b": moving(100, 100, 1), "c": moving(600, 100, 1)}, 5, video="two.mp4")
    first[2]["faces"][0]["track"] = 99  # re-tracking overwrites old ids
    first[3]["mine"] = {"kept": [1, 2]}
    first[3]["faces"][0]["note"] = "user field"
    other = {"schema": 1, "type": "summary", "faces": [{"box": [0, 0, 1, 1]}]}
    undetected = {"schema": 1, "video": "two.mp4", "frame": 5, "t": 0.2, "width": 1280, "height": 720}
    records = [*first, other, *second, undetected]
    out = run(records)
    assert len(out) == len(records)
    for before, after in zip(records, out, strict=True):
        if "faces" not in before or before.get("type"):
            assert after == before
        else:
            assert [{k: v for k, v in f.items() if k != "track"} for f in after["faces"]] == [
                {k: v for k, v in f.items() if k != "track"} for f in before["faces"]
            ]
            assert {k: v for k, v in after.items() if k != "faces"} == {
                k: v for k, v in before.items() if k != "faces"
            }
            assert all(list(f)[:2] == ["face", "track"] for f in after["faces"])
    assert tracks_of(out) == {"a": [0], "b": [0], "c": [1]} or tracks_of(out) == {
        "a": [0],
        "b": [1],
        "c": [0],
    }


def test_a_header_starts_its_video_afresh():
    stream = scene({"a": moving(100, 100, 1), "b": moving(600, 100, 1)}, 5)
    out = run(stream + stream)
    assert out[6:] == out[:6] and {f["track"] for f in out[1]["faces"]} == {0, 1}


def test_time_going_back_ends_the_tracks():
    stream = scene({"a": moving(100, 100, 1), "b": moving(600, 100, 1)}, 5, header=False)
    out = run(stream + stream)
    assert [sorted(f["track"] for f in r["faces"]) for r in out] == [[0, 1]] * 5 + [[2, 3]] * 5


def test_interleaved_videos_never_reuse_an_id():
    a = scene({"a": moving(100, 100, 1)}, 4, video="one.mp4", header=False)
    b = scene({"b": moving(100, 100, 1)}, 4, video="two.mp4", header=False)
    out = run(a[:2] + b + a[2:])
    ids = [(r["video"], r["faces"][0]["track"]) for r in out]
    assert ids == [("one.mp4", 0)] * 2 + [("two.mp4", 0)] * 4 + [("one.mp4", 1)] * 2


def test_tracker_is_deterministic_and_streams():
    records = scene({**CROSSING, "c": only(range(10, 30), moving(500, 50, 0))}, 40, embed=True)
    assert run(records) == run(records)
    snapshot = json.loads(json.dumps(records))
    consumed = []

    def source():
        for record in records:
            consumed.append(record)
            yield record

    # Each record comes out before the next one is read, and the input is not modified.
    for k, out in enumerate(track_records(source()), start=1):
        assert len(consumed) == k and out["frame" if k > 1 else "video"] is not None
    assert records == snapshot
    tracker = Tracker()
    for record in records:
        tracker.update(record)
    assert tracker.live_tracks == 3


def test_options_are_checked():
    with pytest.raises(ValueError):
        TrackOptions(iou_threshold=0)
    with pytest.raises(ValueError):
        TrackOptions(max_gap=-1)


def brute_force_best(weights: np.ndarray) -> float:
    n, m = weights.shape
    best = 0.0
    for cols in itertools.permutations(list(range(m)) + [None] * n, n):
        best = max(
            best, sum(weights[i, j] for i, j in enumerate(cols) if j is not None and weights[i, j] > 0)
        )
    return best


def test_assignment_is_exact():
    rng = np.random.default_rng(3)
    for trial in range(200):
        n, m = rng.integers(0, 5, 2)
        weights = rng.random((n, m)) * (rng.random((n, m)) < 0.6) - 0.2 * (trial % 3 == 0)
        if trial % 2:
            weights = np.round(weights, 1)  # ties
        pairs = max_weight_assignment(weights)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        assert all(weights[p] > 0 for p in pairs)
        assert sum(weights[p] for p in pairs) == pytest.approx(brute_force_best(weights))
    # Greedy would take the 0.9 and leave 0.8 + 0.8 on the table.
    assert max_weight_assignment(np.array([[0.9, 0.8], [0.8, 0.0]])) == [(0, 1), (1, 0)]


def lines(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_cli_options_and_output():
    records = scene(HIDDEN, 100)
    result = CliRunner().invoke(
        track_cli,
        [
            "--track-gap",
            "0.5",
            "--iou-threshold",
            "0.2",
            "--embed-threshold",
            "0.7",
            "--min-similarity",
            "0.1",
        ],
        input=lines(records),
    )
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines()]
    assert len(out) == len(records) and out[0] == records[0]
    assert len(tracks_of(out)["a"]) == 2
    result = CliRunner().invoke(track_cli, [], input=lines(records))
    assert len(tracks_of([json.loads(line) for line in result.output.splitlines()])["a"]) == 1


def test_cli_bad_line_exits_1_naming_it_after_writing_what_came_before():
    text = lines(scene(HIDDEN, 2)) + "{not json\n" + lines(scene(HIDDEN, 2)[1:])
    result = CliRunner().invoke(track_cli, [], input=text)
    assert result.exit_code == 1
    assert "<stdin>:4" in result.output and "fa-track: error" in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("{")]) == 3
    result = CliRunner().invoke(track_cli, ["--on-error", "skip"], input=text)
    assert result.exit_code == 0 and "skipped: <stdin>:4" in result.output


def test_cli_face_without_box():
    records = scene(HIDDEN, 3)
    del records[2]["faces"][0]["box"]
    result = CliRunner().invoke(track_cli, [], input=lines(records))
    assert result.exit_code == 1 and "v.mp4: frame 1: face 0 has no valid 'box'" in result.output
    result = CliRunner().invoke(track_cli, ["--on-error", "skip"], input=lines(records))
    assert result.exit_code == 0
    out = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r.get("frame") for r in out] == [None, 0, 2]
    # The skipped record left the tracks as they were.
    assert {f["who"]: f["track"] for f in out[1]["faces"]} == {f["who"]: f["track"] for f in out[2]["faces"]}


def test_cli_warns_when_frames_are_further_apart_than_max_gap():
    records = scene({"a": moving(100, 100, 0)}, 3)
    records[3]["t"] = 5.0
    result = CliRunner().invoke(track_cli, [], input=lines(records))
    assert result.exit_code == 0 and "more than --track-gap 2" in result.output
    out = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r["faces"][0]["track"] for r in out if "faces" in r] == [0, 0, 1]
    assert (
        "more than --track-gap"
        not in CliRunner().invoke(track_cli, ["--track-gap", "5"], input=lines(records)).output
    )


def test_cli_usage_errors():
    for args in (["--iou-threshold", "0"], ["--track-gap", "-1"], ["--min-similarity", "2"]):
        assert CliRunner().invoke(track_cli, args, input="").exit_code == 2


def test_subprocess_pipeline_is_deterministic_and_idempotent(tmp_path):
    path = tmp_path / "faces.jsonl"
    path.write_text(lines(scene({**CROSSING, "c": only(range(10, 40), moving(500, 600, 1))}, 40, embed=True)))
    # Under pipefail: the first fa-track failing fails the pipe, not only the last one.
    once = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; '{BIN / 'fa-track'}' '{path}' --track-gap 1 "
            f"| tee '{tmp_path / 'once.jsonl'}' | '{BIN / 'fa-track'}'",
        ],
        capture_output=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stderr
    again = subprocess.run([BIN / "fa-track", "--track-gap", "1", path], capture_output=True, timeout=60)
    assert again.stdout == (tmp_path / "once.jsonl").read_bytes() == once.stdout
    out = [json.loads(line) for line in once.stdout.splitlines()]
    assert sorted(tracks_of(out).values()) == [[0], [1], [2]]


def test_frames_detect_track_pipeline(standin_store, tmp_path):
    """Bright squares on video through fa-frames | fa-detect (stand-in detector) | fa-track (in
    this process: tests/chains.py; as processes in tests/test_run.py's test_fa_run_equals_the_pipe)."""
    import cv2

    def paint(i: int) -> np.ndarray:
        image = np.full((240, 320, 3), 20, np.uint8)
        x = 20 + 6 * i
        image[60:110, x : x + 50] = 250  # walks right
        if not 10 <= i < 20:
            image[150:200, 250:300] = 250  # hidden for one second
        if i >= 25:
            image[10:50, 150:190] = 250  # comes in at 2.5 s
        return image

    video = tmp_path / "squares.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(30):
        writer.write(paint(i))
    writer.release()
    piped = chain(f"fa-frames '{video}' | fa-detect --det-size 0 | fa-track", standin_store)
    out = [json.loads(line) for line in piped.splitlines()]
    assert out[0]["type"] == "video" and len(out) == 31
    by_track: dict[int, list[int]] = {}
    for record in out[1:]:
        for face in record["faces"]:
            by_track.setdefault(face["track"], []).append(record["frame"])
    walker = next(f["track"] for f in out[1]["faces"] if f["box"][0] < 100)
    hidden = next(f["track"] for f in out[1]["faces"] if f["box"][0] >= 200)
    assert by_track[walker] == list(range(30))
    assert by_track[hidden] == list(range(10)) + list(range(20, 30))
    assert by_track[2] == list(range(25, 30))
    assert set(by_track) == {0, 1, 2}
