"""fa-summarize: exact statistics, AU episodes with hysteresis, tracks, bounded memory, CLI."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fatools.cli.summarize import cli
from fatools.summary import Summarizer, summarize
from tests.chains import chain

BIN = Path(sys.executable).parent
LABELS = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]


def header(video="v.mp4", fps=5.0):
    return {
        "schema": 1,
        "type": "video",
        "video": video,
        "fps": fps,
        "frame_count": 100,
        "duration": 20.0,
        "codec": "h264",
        "width": 64,
        "height": 48,
        "rotation": 0,
    }


def frame(k, faces=None, t="auto", video="v.mp4", dt=0.2):
    record = {
        "schema": 1,
        "video": video,
        "frame": k,
        "t": round(k * dt, 6) if t == "auto" else t,
        "width": 64,
        "height": 48,
    }
    if faces is not None:
        record["faces"] = faces
    return record


def face(
    track=1,
    probs=None,
    blink=None,
    ear=None,
    label=None,
    valence=None,
    arousal=None,
    quadrant=True,
    threshold=0.5,
):
    out = {"face": 0, "box": [0, 0, 10, 10], "score": 0.99}
    if track is not None:
        out["track"] = track
    if probs is not None or blink is not None:
        out["au"] = {
            "probs": probs or {},
            "active": [c for c, p in (probs or {}).items() if p > threshold],
            "threshold": threshold,
        }
        if blink is not None:
            out["au"]["derived"] = {
                "AU45": {
                    "active": blink,
                    "ear": ear if ear is not None else (0.1 if blink else 0.3),
                    "derived": True,
                }
            }
    if label is not None:
        out["expression"] = {
            "label": label,
            "confidence": 0.8,
            "scores": {name: (0.8 if name == label else 0.2 / 7) for name in LABELS},
        }
    if valence is not None:
        out["va"] = {"valence": valence, "arousal": arousal}
        if quadrant:
            out["va"]["quadrant"] = {
                (True, True): "Happy/Excited",
                (False, True): "Angry/Stressed",
                (False, False): "Sad/Depressed",
                (True, False): "Calm/Relaxed",
            }[(valence >= 0, arousal >= 0)]
    return out


# One person, 6 samples 0.2 s apart.
VALENCE = [0.5, 0.3, -0.2, -0.4, 0.1, 0.1]
AROUSAL = [0.2, 0.4, 0.1, -0.3, -0.1, 0.6]
EMOTIONS = ["Happiness", "Happiness", "Neutral", "Sadness", "Happiness", "Neutral"]
AU12 = [0.7, 0.8, 0.45, 0.9, 0.2, 0.1]  # one episode: the dip to 0.45 stays above the off threshold
AU6 = [0.6, 0.55, 0.3, 0.1, 0.1, 0.1]
BLINKS = [False, True, False, False, True, True]


def hand_made():
    records = [header()]
    for k in range(6):
        records.append(
            frame(
                k,
                [
                    face(
                        probs={"AU1": 0.1, "AU6": AU6[k], "AU12": AU12[k]},
                        blink=BLINKS[k],
                        ear=0.05 if k == 5 else None,
                        label=EMOTIONS[k],
                        valence=VALENCE[k],
                        arousal=AROUSAL[k],
                        quadrant=k % 2 == 0,
                    )
                ],
            )
        )
    return records


def test_exact_statistics_on_a_hand_made_stream():
    video = summarize(hand_made())["videos"][0]
    assert video["video"] == "v.mp4" and video["metadata"]["fps"] == 5.0 and "type" not in video["metadata"]
    assert video["frames"] == {
        "sampled": 6,
        "with_faces": 6,
        "without_faces": 0,
        "not_analysed": 0,
        "faces": 6,
        "faces_per_frame": {"mean": 1.0, "max": 1},
    }
    assert video["time"] == {"first": 0.0, "last": 1.0, "sampling_interval": 0.2, "seconds": 1.2}
    [track] = video["tracks"]
    assert (track["track"], track["first"], track["last"], track["first_frame"], track["last_frame"]) == (
        1,
        0.0,
        1.0,
        0,
        5,
    )
    assert track["faces"] == 6 and track["seconds"] == 1.2
    assert track["emotion"]["faces"] == 6 and track["emotion"]["most_common"] == "Happiness"
    assert track["emotion"]["distribution"] == {
        "Anger": 0.0,
        "Contempt": 0.0,
        "Disgust": 0.0,
        "Fear": 0.0,
        "Happiness": 0.5,
        "Neutral": 0.333333,
        "Sadness": 0.166667,
        "Surprise": 0.0,
    }
    assert track["valence"] == {"faces": 6, "mean": 0.066667, "std": round(statistics.pstdev(VALENCE), 6)}
    assert track["arousal"] == {"faces": 6, "mean": 0.15, "std": round(statistics.pstdev(AROUSAL), 6)}
    assert track["valence"]["std"] == 0.298142
    # Odd samples carry no quadrant label: it comes from the signs.  The last stands for 0.2 s.
    assert track["quadrant_seconds"] == {
        "Angry/Stressed": 0.2,
        "Calm/Relaxed": 0.2,
        "Happy/Excited": 0.6,
        "Sad/Depressed": 0.2,
    }
    assert list(track["au"]) == ["AU1", "AU6", "AU12", "AU45"]  # catalogue order
    assert track["au"]["AU12"] == {"faces": 6, "active": 3, "activation_rate": 0.5, "mean_probability": 0.525}
    assert track["au"]["AU6"] == {
        "faces": 6,
        "active": 2,
        "activation_rate": 0.333333,
        "mean_probability": 0.291667,
    }
    assert track["au"]["AU1"]["active"] == 0 and track["au"]["AU1"]["mean_probability"] == 0.1
    assert track["au"]["AU45"] == {"faces": 6, "active": 3, "activation_rate": 0.5, "mean_probability": None}
    # Ties (AU12 and AU45, 3 each) go in catalogue order; never-active AU1 is left out.
    assert track["most_active_aus"] == [["AU12", 3], ["AU45", 3], ["AU6", 2]]
    assert track["blinks"] == {"count": 2, "per_minute": 100.0}  # 2 blinks in 1.2 s
    overall = video["overall"]
    for key in (
        "faces",
        "seconds",
        "emotion",
        "valence",
        "arousal",
        "quadrant_seconds",
        "au",
        "most_active_aus",
        "blinks",
    ):
        assert overall[key] == track[key], key


def test_events_onset_apex_offset_duration_peak():
    events = summarize(hand_made())["videos"][0]["tracks"][0]["au_events"]
    assert events == [
        {
            "au": "AU6",
            "onset": 0.0,
            "apex": 0.0,
            "offset": 0.4,
            "duration": 0.4,
            "peak": 0.6,
            "frames": 2,
            "first_frame": 0,
            "apex_frame": 0,
            "last_frame": 1,
            "end": "below",
        },
        # The dip to 0.45 (between off 0.4 and on 0.5) does not split the episode.
        {
            "au": "AU12",
            "onset": 0.0,
            "apex": 0.6,
            "offset": 0.8,
            "duration": 0.8,
            "peak": 0.9,
            "frames": 4,
            "first_frame": 0,
            "apex_frame": 3,
            "last_frame": 3,
            "end": "below",
        },
        # A one-sample blink is kept (blinks are exempt from --min-duration): 0.2 s.
        {
            "au": "AU45",
            "onset": 0.2,
            "apex": 0.2,
            "offset": 0.4,
            "duration": 0.2,
            "peak": None,
            "frames": 1,
            "first_frame": 1,
            "apex_frame": 1,
            "last_frame": 1,
            "end": "below",
        },
        # Open at the end: offset = last sample + sampling interval; apex = lowest eye aspect ratio.
        {
            "au": "AU45",
            "onset": 0.8,
            "apex": 1.0,
            "offset": 1.2,
            "duration": 0.4,
            "peak": None,
            "frames": 2,
            "first_frame": 4,
            "apex_frame": 5,
            "last_frame": 5,
            "end": "end",
        },
    ]


def run_au(values, dt=0.04, **options):
    records = [frame(k, [face(probs={"AU12": p})], dt=dt) for k, p in enumerate(values)]
    return summarize(records, **options)["videos"][0]["tracks"][0]["au_events"]


def test_hysteresis_and_flicker():
    # At 25 fps: a dip exactly to the off threshold continues; one below it splits.
    assert [(e["onset"], e["offset"]) for e in run_au([0.6] * 5 + [0.4] + [0.6] * 5 + [0.0])] == [(0.0, 0.44)]
    split = run_au([0.6] * 5 + [0.39] + [0.6] * 5 + [0.0])
    assert [(e["onset"], e["offset"], e["frames"]) for e in split] == [(0.0, 0.2, 5), (0.24, 0.44, 5)]
    # A one-frame flicker (0.04 s) is dropped by --min-duration 0.2; 0 keeps it.
    flicker = [0.1, 0.1, 0.9, 0.1, 0.1]
    assert run_au(flicker) == []
    [kept] = run_au(flicker, min_duration=0)
    assert (kept["onset"], kept["duration"], kept["peak"], kept["frames"]) == (0.08, 0.04, 0.9, 1)
    # Starting needs more than the on threshold; a value at it only continues.
    assert run_au([0.5] * 10 + [0.0]) == []
    # Explicit thresholds replace the record's.
    [e] = run_au([0.3, 0.35, 0.32, 0.0], dt=0.2, on_threshold=0.3, off_threshold=0.25)
    assert (e["onset"], e["apex"], e["offset"], e["peak"]) == (0.2, 0.2, 0.6, 0.35)


def test_a_gap_ends_an_episode_and_the_last_interval_is_the_median():
    records = [frame(k, [face(probs={"AU12": 0.9})]) for k in range(4)]
    records += [frame(k, []) for k in range(4, 8)]  # the track is unseen for 1.0 s > 0.5 s
    records += [frame(k, [face(probs={"AU12": 0.9})]) for k in range(8, 11)]
    track = summarize(records)["videos"][0]["tracks"][0]
    assert [(e["onset"], e["offset"], e["duration"], e["end"]) for e in track["au_events"]] == [
        (0.0, 0.8, 0.8, "gap"),
        (1.6, 2.2, 0.6, "end"),
    ]
    assert track["seconds"] == 1.4  # 7 samples of 0.2 s: the unseen frames count nowhere
    # With --episode-gap 2 the episode bridges the gap.
    [e] = summarize(records, episode_gap=2.0)["videos"][0]["tracks"][0]["au_events"]
    assert (e["onset"], e["offset"], e["frames"], e["end"]) == (0.0, 2.2, 7, "end")


def test_irregular_intervals_and_a_sampling_hole():
    # Each sample stands for the time to the next frame; the one before the 3 s hole, and
    # the last, stand for the median interval (0.1 s) instead.
    times = [0.0, 0.1, 0.3, 0.4, 3.4, 3.5]
    records = [
        frame(k, [face(probs={"AU12": 0.9}, valence=-0.1 if k == 1 else 0.1, arousal=0.1)], t=t)
        for k, t in enumerate(times)
    ]
    video = summarize(records)["videos"][0]
    assert video["time"] == {"first": 0.0, "last": 3.5, "sampling_interval": 0.1, "seconds": 0.7}
    track = video["tracks"][0]
    assert track["seconds"] == 0.7
    assert track["quadrant_seconds"] == {
        "Angry/Stressed": 0.2,
        "Calm/Relaxed": 0.0,
        "Happy/Excited": 0.5,
        "Sad/Depressed": 0.0,
    }
    assert [(e["onset"], e["offset"], e["end"]) for e in track["au_events"]] == [
        (0.0, 0.5, "gap"),
        (3.4, 3.6, "end"),
    ]


def test_tracks_are_separate_and_overall_pools_them():
    records = [header()]
    for k in range(10):
        records.append(
            frame(
                k,
                [
                    face(
                        track=7,
                        probs={"AU12": 0.9 if k < 5 else 0.1},
                        blink=k == 3,
                        label="Happiness",
                        valence=0.5,
                        arousal=0.5,
                    ),
                    face(track=2, probs={"AU4": 0.8}, blink=False, label="Anger", valence=-0.5, arousal=0.5),
                ],
            )
        )
    video = summarize(records)["videos"][0]
    assert [t["track"] for t in video["tracks"]] == [2, 7]
    two, seven = video["tracks"]
    assert two["emotion"]["most_common"] == "Anger" and seven["emotion"]["most_common"] == "Happiness"
    assert [e["au"] for e in two["au_events"]] == ["AU4"] and two["au_events"][0]["duration"] == 2.0
    assert [(e["au"], e["offset"]) for e in seven["au_events"]] == [("AU12", 1.0), ("AU45", 0.8)]
    assert "AU12" not in two["au"] and "AU4" not in seven["au"]
    assert two["blinks"] == {"count": 0, "per_minute": 0.0} and seven["blinks"] == {
        "count": 1,
        "per_minute": 30.0,
    }
    overall = video["overall"]
    assert overall["faces"] == 20 and overall["seconds"] == 4.0
    assert overall["valence"] == {"faces": 20, "mean": 0.0, "std": 0.5}
    assert overall["emotion"]["distribution"]["Anger"] == 0.5
    assert (
        overall["quadrant_seconds"]["Angry/Stressed"] == 2.0
        and overall["quadrant_seconds"]["Happy/Excited"] == 2.0
    )
    assert overall["blinks"] == {"count": 1, "per_minute": 15.0}  # 1 blink in 4 person-seconds
    assert video["frames"]["faces_per_frame"] == {"mean": 2.0, "max": 2}


def test_untracked_faces_follow_the_first_face_as_track_null(caplog):
    records = [
        frame(k, [face(track=None, probs={"AU12": 0.9}), face(track=None, probs={"AU12": 0.1})])
        for k in range(5)
    ]
    with caplog.at_level(logging.WARNING, logger="fatools"):
        video = summarize(records)["videos"][0]
    [track] = video["tracks"]
    assert track["track"] is None and track["faces"] == 5 and track["au"]["AU12"]["active"] == 5
    assert [(e["onset"], e["offset"]) for e in track["au_events"]] == [(0.0, 1.0)]
    assert video["overall"]["faces"] == 10 and video["overall"]["au"]["AU12"]["activation_rate"] == 0.5
    assert caplog.text.count("run fa-track") == 1


def test_missing_fields_are_tolerated():
    records = [
        header(fps=5.0),
        frame(0, None),  # not analysed
        frame(1, []),  # analysed, no face
        frame(2, [{"face": 0, "track": 1}]),  # a face without predictions
        frame(3, [face(label="Fear")], t=None),  # no t: frame / header fps = 0.6
        frame(4, [face(valence=0.2, arousal=-0.1, quadrant=False)]),
        {"schema": 1, "type": "something-else", "video": "v.mp4"},
    ]
    video = summarize(records)["videos"][0]
    assert video["frames"] == {
        "sampled": 5,
        "with_faces": 3,
        "without_faces": 1,
        "not_analysed": 1,
        "faces": 3,
        "faces_per_frame": {"mean": 0.75, "max": 1},
    }
    assert video["time"]["last"] == 0.8 and video["time"]["sampling_interval"] == 0.2
    [track] = video["tracks"]
    assert track["faces"] == 3 and track["au"] == {} and track["au_events"] == []
    assert track["emotion"]["faces"] == 1 and track["valence"]["faces"] == 1
    assert track["blinks"] == {"count": None, "per_minute": None}  # AU45 never seen: unknown, not zero
    assert track["quadrant_seconds"]["Calm/Relaxed"] == 0.2
    assert summarize([])["videos"] == []


def test_images_without_any_time_give_null_seconds_but_keep_episodes():
    records = [
        frame(k, [face(probs={"AU12": p}, valence=0.1, arousal=0.1)], t=None, video="dir")
        for k, p in enumerate([0.9, 0.9, 0.1, 0.9])
    ]
    video = summarize(records)["videos"][0]
    assert video["time"] == {"first": None, "last": None, "sampling_interval": None, "seconds": None}
    track = video["tracks"][0]
    assert track["seconds"] is None and track["quadrant_seconds"]["Happy/Excited"] is None
    assert [
        (e["first_frame"], e["last_frame"], e["onset"], e["duration"], e["end"]) for e in track["au_events"]
    ] == [(0, 1, None, None, "below"), (3, 3, None, None, "end")]


def test_result_does_not_end_the_stream():
    summarizer = Summarizer()
    for record in hand_made()[:4]:
        summarizer.add(record)
    first = summarizer.result()
    assert summarizer.result() == first
    for record in hand_made()[4:]:
        summarizer.add(record)
    assert summarizer.result() == summarize(hand_made())


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="off_threshold"):
        Summarizer(on_threshold=0.3, off_threshold=0.4)
    with pytest.raises(ValueError, match="episode_gap"):
        Summarizer(episode_gap=0)


def deep_size(root) -> int:
    """Bytes of every object reachable from root (containers, slots, instance dicts)."""
    seen, stack, total = set(), [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, logging.Logger)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        if hasattr(obj, "__dict__"):
            stack.append(vars(obj))
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                stack.append(getattr(obj, slot))
    return total


def synthetic(n: int):
    faces_cycle = []
    for k in range(50):
        faces_cycle.append(
            face(
                probs={"AU12": 0.9, "AU6": 0.9 if k % 10 == 0 else 0.1, "AU4": 0.2},
                blink=False,
                label=LABELS[k % 8],
                valence=(k - 25) / 30,
                arousal=(k % 7 - 3) / 4,
            )
        )
    for k in range(n):
        yield {"video": "long.mp4", "frame": k, "t": k * 0.04, "faces": [faces_cycle[k % 50]]}


def test_memory_does_not_grow_with_frames():
    sizes = {}
    for n in (20_000, 200_000):
        summarizer = Summarizer()
        for record in synthetic(n):
            summarizer.add(record)
        sizes[n] = deep_size(summarizer)
        track = summarizer.result()["videos"][0]["tracks"][0]
        assert track["faces"] == n and track["au"]["AU6"]["active"] == n // 10
        assert [e["au"] for e in track["au_events"]] == ["AU12"]  # the AU6 flickers were dropped
    assert sizes[200_000] <= sizes[20_000] * 1.10, sizes


def write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_cli_options_pretty_and_top(tmp_path):
    path = write(tmp_path / "a.jsonl", hand_made())
    result = CliRunner().invoke(cli, [str(path), "--top", "1", "--pretty", "--min-duration", "0.5"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("{\n  ")
    summary = json.loads(result.stdout)
    assert summary["type"] == "summary" and summary["options"]["top"] == 1
    track = summary["videos"][0]["tracks"][0]
    assert track["most_active_aus"] == [["AU12", 3]]
    assert [e["au"] for e in track["au_events"]] == [
        "AU12",
        "AU45",
        "AU45",
    ]  # AU6 (0.4 s) dropped, blinks kept
    every = json.loads(CliRunner().invoke(cli, [str(path), "--top", "0"]).stdout)
    assert every["videos"][0]["overall"]["most_active_aus"] == [["AU12", 3], ["AU45", 3], ["AU6", 2]]
    plain = CliRunner().invoke(cli, [str(path)])
    assert plain.stdout.count("\n") == 1 and json.loads(plain.stdout)["videos"][0]["tracks"][0][
        "most_active_aus"
    ][2] == ["AU6", 2]


def test_cli_errors(tmp_path):
    lines = (
        [json.dumps(r) for r in hand_made()[:3]] + ["{not json"] + [json.dumps(r) for r in hand_made()[3:]]
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, [str(bad)])
    assert result.exit_code == 1 and result.stdout == ""
    assert f"fa-summarize: error: {bad}:4: malformed JSON record" in result.stderr
    skipped = CliRunner().invoke(cli, [str(bad), "--on-error", "skip"])
    assert skipped.exit_code == 0 and "bad.jsonl:4" in skipped.stderr
    assert json.loads(skipped.stdout)["videos"][0]["frames"]["sampled"] == 6
    usage = CliRunner().invoke(cli, [str(bad), "--on-threshold", "0.3", "--off-threshold", "0.4"])
    assert usage.exit_code == 2 and "--off-threshold" in usage.stderr
    not_list = write(tmp_path / "nl.jsonl", [frame(0, faces="x")])
    result = CliRunner().invoke(cli, [str(not_list)])
    assert result.exit_code == 1 and "'faces' must be a list" in result.stderr
    write(not_list, [frame(0, [face()]), frame(1, faces=[1, 2]), frame(2, [face()])])
    skipped = CliRunner().invoke(cli, [str(not_list), "--on-error", "skip"])
    assert skipped.exit_code == 0 and "skipped: v.mp4: frame 1: 'faces' must be a list" in skipped.stderr
    assert json.loads(skipped.stdout)["videos"][0]["frames"]["sampled"] == 2


def test_pipeline_after_fa_predict(standin_store, tmp_path):
    """fa-frames | fa-detect | fa-predict | fa-summarize on stand-in models (in this process:
    tests/chains.py; as processes in tests/test_run.py's test_fa_run_equals_the_pipe)."""
    import numpy as np

    from fatools.sample import write_video

    def picture(i):
        image = np.full((360, 640, 3), 20, np.uint8)
        image[100:220, 50 + 20 * i : 170 + 20 * i] = 250
        return image

    clip = tmp_path / "moving.mp4"
    write_video((picture(i) for i in range(10)), str(clip), fps=10)
    stages: list[bytes] = []
    summary = chain(
        f"fa-frames '{clip}' --every 3 | fa-detect | fa-predict | fa-summarize --top 0", standin_store, stages
    )
    records = [json.loads(line) for line in stages[2].splitlines()][
        1:
    ]  # fa-predict's, as a tee would keep them
    [video] = json.loads(summary)["videos"]
    assert video["video"] == str(clip) and video["metadata"]["fps"] == pytest.approx(10)
    assert video["frames"]["sampled"] == 4 and video["frames"]["with_faces"] == 4
    assert video["time"]["sampling_interval"] == pytest.approx(0.3)
    [track] = video["tracks"]  # no fa-track: the one face per frame is followed as track null
    assert track["track"] is None and track["faces"] == 4 and track["seconds"] == pytest.approx(1.2)
    # The counts agree with the records' own active lists, AU45 included.
    faces = [r["faces"][0] for r in records]
    assert len(track["au"]) == 42 and list(track["au"])[-1] == "AU45"
    for code, stats in track["au"].items():
        assert stats["active"] == sum(code in f["au"]["active"] for f in faces), code
    assert track["emotion"]["faces"] == 4 and sum(track["emotion"]["distribution"].values()) == pytest.approx(
        1
    )
    assert track["valence"]["mean"] == pytest.approx(np.mean([f["va"]["valence"] for f in faces]), abs=1e-6)
    assert sum(track["quadrant_seconds"].values()) == pytest.approx(1.2)


def test_subprocess_pipeline_from_stdin():
    data = "".join(json.dumps(r) + "\n" for r in hand_made())
    proc = subprocess.run(
        [str(BIN / "fa-summarize"), "-", "--off-threshold", "0.5"],
        input=data,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["options"]["off_threshold"] == 0.5
    events = summary["videos"][0]["tracks"][0]["au_events"]
    # Without hysteresis the dip to 0.45 splits AU12 into two episodes; the second is 0.2 s long.
    assert [(e["onset"], e["offset"]) for e in events if e["au"] == "AU12"] == [(0.0, 0.4), (0.6, 0.8)]
