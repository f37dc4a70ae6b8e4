"""ELAN (.eaf) and WebVTT (.vtt) exports, parsed with the real libraries (pympi-ling,
webvtt-py) and checked against the summary's episodes and the records they came from."""

from __future__ import annotations

import itertools

import pympi
import pytest
import webvtt

from fatools.export import export
from fatools.summary import summarize
from tests.test_export import BLINKS, FROWN, SMILE, TS, VIDEO, stream


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    out = tmp_path_factory.mktemp("annotations")
    records = stream()
    result = export(iter(records), out, ["elan", "webvtt"], timestamp=TS)
    return out, result, summarize(records)["videos"][0], records


def test_elan_file_parses_and_links_the_video(annotated):
    out, result, summary, _ = annotated
    (path,) = result.files["elan"]
    assert path.name == f"facial_analysis_{TS}.eaf"
    eaf = pympi.Elan.Eaf(str(path))
    (media,) = eaf.media_descriptors
    assert media["MEDIA_URL"].startswith("file://") and media["MEDIA_URL"].endswith(VIDEO)
    assert media["MIME_TYPE"] == "video/mp4" and media["RELATIVE_MEDIA_URL"].endswith("interview.mp4")
    tiers = eaf.get_tier_names()
    for track in (0, 1):
        assert f"track {track} expression" in tiers and f"track {track} blinks" in tiers
    assert {"track 0 AU6", "track 0 AU12", "track 1 AU4", "track 1 AU15"} <= set(tiers)


def test_elan_au_tiers_are_the_summary_episodes(annotated):
    out, result, summary, _ = annotated
    eaf = pympi.Elan.Eaf(str(result.files["elan"][0]))
    checked = 0
    for track in summary["tracks"]:
        events = [e for e in track["au_events"] if e["au"] != "AU45"]
        for code in {e["au"] for e in events}:
            got = sorted(eaf.get_annotation_data_for_tier(f"track {track['track']} {code}"))
            want = sorted(
                (round(e["onset"] * 1000), round(e["offset"] * 1000)) for e in events if e["au"] == code
            )
            assert [(a[0], a[1]) for a in got] == want, code
            for annotation, event in zip(
                got, sorted((e for e in events if e["au"] == code), key=lambda e: e["onset"]), strict=True
            ):
                assert annotation[2].startswith(code) and f"peak {event['peak']:.2f}" in annotation[2]
            checked += len(want)
        blinks = sorted(eaf.get_annotation_data_for_tier(f"track {track['track']} blinks"))
        assert [(a[0], a[1]) for a in blinks] == sorted(
            (round(e["onset"] * 1000), round(e["offset"] * 1000))
            for e in track["au_events"]
            if e["au"] == "AU45"
        )
    assert checked >= 5
    # The designed episodes: track 0 smiles 2.0-4.0 s, blinks three times; track 1 frowns 4.0-6.0 s.
    assert [(a[0], a[1]) for a in eaf.get_annotation_data_for_tier("track 0 AU12")] == [
        (SMILE[0] * 200, (SMILE[-1] + 1) * 200)
    ]
    assert len(eaf.get_annotation_data_for_tier("track 0 blinks")) == len(BLINKS)
    assert [(a[0], a[1]) for a in eaf.get_annotation_data_for_tier("track 1 AU4")] == [
        (FROWN[0] * 200, (FROWN[-1] + 1) * 200)
    ]


def test_elan_expression_segments_follow_the_labels(annotated):
    out, result, summary, records = annotated
    eaf = pympi.Elan.Eaf(str(result.files["elan"][0]))
    segments = sorted(eaf.get_annotation_data_for_tier("track 0 expression"))
    labels = [s[2].split(" ")[0] for s in segments]
    assert labels == ["Neutral", "Happiness", "Neutral"]
    assert (segments[1][0], segments[1][1]) == (SMILE[0] * 200, (SMILE[-1] + 1) * 200)
    assert segments[0][0] == 0 and segments[-1][1] == 50 * 200  # the last sample stands for one interval
    # Track 1 is away from 6.0 to 7.0 s (longer than the gap): its Neutral run is cut there.
    spans = [(s[0], s[1]) for s in sorted(eaf.get_annotation_data_for_tier("track 1 expression"))]
    assert (6000, 7000) not in spans and any(end == 6000 for _, end in spans)
    assert any(start == 7000 for start, _ in spans)


def test_webvtt_parses_and_its_cues_carry_the_episodes(annotated):
    out, result, summary, records = annotated
    (path,) = result.files["webvtt"]
    assert path.name == f"facial_analysis_{TS}.vtt"
    captions = webvtt.read(str(path))
    assert len(captions) > 3
    # webvtt-py's *_in_seconds drop the milliseconds: times are read in milliseconds.
    spans = [(c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), c.text) for c in captions]
    assert [s for s, _, _ in spans] == sorted(s for s, _, _ in spans)
    for a, b in itertools.pairwise(spans):
        assert a[0] < a[1] <= b[0]  # cues do not overlap

    def text_at(seconds):
        at = round(seconds * 1000)
        hits = [text for start, end, text in spans if start <= at < end]
        return hits[0] if hits else None

    track0 = summary["tracks"][0]
    smile = next(e for e in track0["au_events"] if e["au"] == "AU12")
    t = smile["onset"]
    while t < smile["offset"] - 1e-9:
        line = next(line for line in text_at(t).splitlines() if line.startswith("track 0:"))
        assert "Happiness" in line and "AU12" in line.split(", ")[1].split(), (t, line)
        t += 0.2
    assert "AU12" not in (text_at(smile["offset"] + 0.01) or "")
    # Every blink of the summary shows as AU45 on track 0's line at its onset.
    for event in (e for e in track0["au_events"] if e["au"] == "AU45"):
        assert "AU45" in next(
            line for line in text_at(event["onset"]).splitlines() if line.startswith("track 0:")
        )
    # No face at 9.0 s: no cue there; the cue before ends at 9.0 s.
    assert text_at(9.0) is None and any(end == 9000 for _, end, _ in spans)
    assert "track 1" not in text_at(6.2)  # track 1 is away 6.0-7.0 s


def test_cli_writes_both_from_a_pipe(tmp_path):
    import subprocess
    import sys

    from fatools.records import dumps

    data = b"".join(dumps(r) for r in stream(n=20))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fatools.cli.export import main; main()",
            "-o",
            str(tmp_path),
            "-f",
            "elan,webvtt",
            "--timestamp",
            TS,
        ],
        input=data,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    names = [line.rsplit("/", 1)[-1] for line in proc.stdout.decode().splitlines()]
    assert names == [f"facial_analysis_{TS}.eaf", f"facial_analysis_{TS}.vtt"]
    assert webvtt.read(str(tmp_path / names[1])) and pympi.Elan.Eaf(str(tmp_path / names[0])).get_tier_names()
