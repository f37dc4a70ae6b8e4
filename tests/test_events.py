"""--events and --baseline: statistics per event and per track, on the designed records
of test_export (track 0 smiles 2-4 s and blinks at 1, 5 and 8 s; track 1 frowns 4-6 s and
is away 6-7 s), in fa-summarize, fa-export and fa-run; bad event files."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from fatools.cli.export import cli as export_cli
from fatools.cli.summarize import cli as summarize_cli
from fatools.events import EventsError, read_events
from fatools.records import dumps
from fatools.summary import summarize
from tests.test_export import TS, stream

EVENTS = "onset,offset,label\n0,2,rest\n2,4,joke\n4,6,sad story\n6,7,break\n8,10,rest\n"


@pytest.fixture()
def events_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    return path


def by_label(summary, label, track):
    event = next(e for e in summary["videos"][0]["events"] if e["label"] == label)
    return next((t for t in event["tracks"] if t["track"] == track), None), event


def test_per_event_and_track_statistics(events_file):
    summary = summarize(stream(), events=str(events_file), baseline="rest")
    joke0, joke = by_label(summary, "joke", 0)
    assert (joke["onset"], joke["offset"], joke["frames"], joke["event"]) == (2.0, 4.0, 10, 3)
    assert joke0["visible_share"] == 1.0 and joke0["visible_seconds"] == pytest.approx(2.0)
    assert joke0["emotion"]["Happiness"] == 1.0 and joke0["valence"]["mean"] == pytest.approx(0.6)
    assert joke0["au"]["AU12"]["activation_rate"] == 1.0 and joke0["au"]["AU4"]["activation_rate"] == 0.0
    joke1, _ = by_label(summary, "joke", 1)
    assert joke1["emotion"]["Neutral"] == 1.0
    sad1, _ = by_label(summary, "sad story", 1)
    assert sad1["emotion"]["Sadness"] == 1.0 and sad1["valence"]["mean"] == pytest.approx(-0.5)
    assert sad1["au"]["AU4"]["activation_rate"] == 1.0
    # Track 1 is away during the break: no row for it; track 0 is seen throughout.
    brk1, brk = by_label(summary, "break", 1)
    assert brk1 is None and by_label(summary, "break", 0)[0]["visible_share"] == 1.0
    # Blinks: one at 1.0 s in the first rest (2 s of face: 30 per minute), one at 5.0 s, one at 8.0 s.
    rest0 = [
        t
        for e in summary["videos"][0]["events"]
        if e["label"] == "rest"
        for t in e["tracks"]
        if t["track"] == 0
    ]
    assert [t["blinks"]["count"] for t in rest0] == [1, 1]
    assert rest0[0]["blinks"]["per_minute"] == pytest.approx(30.0)
    # The second rest has no face at 9.0 s: 9 of its 10 frames show track 0.
    assert rest0[1]["visible_share"] == pytest.approx(0.9)
    # Differences from the pooled rest events (valence 0.05 for track 0 there, 0.6 in the joke).
    assert joke0["vs_baseline"]["valence_mean"] == pytest.approx(0.55)
    assert joke0["vs_baseline"]["au"]["AU12"]["activation_rate"] == pytest.approx(1.0)
    assert joke0["vs_baseline"]["emotion"]["Happiness"] == pytest.approx(1.0)
    assert "vs_baseline" not in rest0[0]


def test_duration_and_video_columns(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("label,onset,duration,video\njoke,2,2,interview.mp4\nother,1,1,elsewhere.mp4\nall,0,1,\n")
    events = read_events(str(path))
    assert [(e.label, e.onset, e.offset, e.line) for e in events] == [
        ("joke", 2, 4, 2),
        ("other", 1, 2, 3),
        ("all", 0, 1, 4),
    ]
    summary = summarize(stream(), events=str(path))
    assert [e["label"] for e in summary["videos"][0]["events"]] == [
        "all",
        "joke",
    ]  # by onset; other's video is not this


@pytest.mark.parametrize(
    "text, message",
    [
        ("start,label\n1,a\n", ":1: the header lacks onset, offset or duration"),
        ("onset,offset,label\n1,2,a\n3,2,b\n", ":3: offset 2 s is not after onset 3 s"),
        ("onset,offset,label\n1,x,a\n", ":2: offset 'x' is not a number of seconds"),
        ("onset,offset,label\n1,2,\n", ":2: the event has no label"),
        ("onset,duration,label\n1,-1,a\n", ":2: duration -1 s must be positive"),
        ("onset,offset,label\n", ": no events in the file"),
    ],
)
def test_bad_event_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(EventsError, match=message.replace("(", r"\(")):
        read_events(str(path))


def test_events_outside_the_video_are_refused(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("onset,offset,label\n1,2,a\n9,12,late\n")
    with pytest.raises(
        EventsError, match=r"late.csv:3: event 'late' \(9-12 s\) is outside clips/interview.mp4 \(10 s"
    ):
        summarize(stream(), events=str(path))


def test_cli_errors_are_one_line(tmp_path, events_file):
    records = tmp_path / "r.jsonl"
    records.write_bytes(b"".join(dumps(r) for r in stream()))
    bad = tmp_path / "bad.csv"
    bad.write_text("onset,offset,label\n5,4,oops\n")
    result = CliRunner().invoke(summarize_cli, [str(records), "--events", str(bad)])
    assert result.exit_code == 1 and result.stderr.strip().count("\n") == 0
    assert f"{bad}:2: offset 4 s is not after onset 5 s" in result.stderr
    result = CliRunner().invoke(summarize_cli, [str(records), "--baseline", "rest"])
    assert result.exit_code == 2 and "--baseline needs --events" in result.output
    result = CliRunner().invoke(
        summarize_cli, [str(records), "--events", str(events_file), "--baseline", "nope"]
    )
    assert (
        result.exit_code == 1 and "no event is labelled 'nope'" in result.stderr and "rest" in result.stderr
    )


def test_fa_summarize_and_fa_export_write_the_table_and_the_report(tmp_path, events_file):
    records = tmp_path / "r.jsonl"
    records.write_bytes(b"".join(dumps(r) for r in stream()))
    result = CliRunner().invoke(
        summarize_cli, [str(records), "--events", str(events_file), "--baseline", "rest"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["options"]["events"] == str(events_file) and len(summary["videos"][0]["events"]) == 5
    out = tmp_path / "out"
    result = CliRunner().invoke(
        export_cli,
        [
            str(records),
            "-o",
            str(out),
            "-f",
            "text",
            "--timestamp",
            TS,
            "--events",
            str(events_file),
            "--baseline",
            "rest",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / f"event_statistics_{TS}.csv")
    assert str(out / f"event_statistics_{TS}.csv") in result.stdout.split()
    joke = table[(table.label == "joke") & (table.track == 0)].iloc[0]
    assert joke.emotion_happiness == 1.0 and joke.AU12_rate == 1.0 and joke.valence_mean == pytest.approx(0.6)
    assert joke.valence_mean_vs_baseline == pytest.approx(
        0.55
    ) and joke.AU12_rate_vs_baseline == pytest.approx(1.0)
    assert len(table) == 2 + 2 + 2 + 1 + 2  # rest, joke, sad story: two tracks; break: one; rest: two
    report = (out / f"facial_analysis_report_{TS}.txt").read_text()
    section = report[report.index("\nEvents\n") :]
    assert "joke (line 3): 2.0 s to 4.0 s, 10 frames" in section
    assert "mostly Happiness (100.0%)" in section and "vs baseline: valence +0.55" in section
    # Given the summary, the export writes the same table without --events of its own.
    summary_path = tmp_path / "s.json"
    summary_path.write_text(json.dumps(summary))
    again = tmp_path / "again"
    result = CliRunner().invoke(
        export_cli,
        [str(records), "-o", str(again), "-f", "csv", "--timestamp", TS, "--summary", str(summary_path)],
    )
    assert result.exit_code == 0, result.output
    assert (again / f"event_statistics_{TS}.csv").read_text() == (
        out / f"event_statistics_{TS}.csv"
    ).read_text()


def test_fa_run_takes_events(tmp_path, standin_store):
    from fatools.sample import write_video
    from tests.test_run import two_faces

    clip = tmp_path / "two.mp4"
    write_video((two_faces(i) for i in range(24)), str(clip), fps=12)
    events = tmp_path / "events.csv"
    events.write_text("onset,duration,label\n0,1,first\n1,0.9,second\n")
    out = tmp_path / "run"
    from fatools.cli.run import cli as run_cli

    result = CliRunner().invoke(
        run_cli,
        [
            str(clip),
            "-o",
            str(out),
            "--every",
            "2",
            "--models-dir",
            str(standin_store),
            "-f",
            "text",
            "--events",
            str(events),
            "--baseline",
            "first",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(next(out.glob("event_statistics_*.csv")))
    assert list(table.label) == ["first", "first", "second", "second"] and set(table.track) == {0, 1}
    assert table.visible_share.tolist() == [1.0] * 4
    assert table[table.label == "second"].valence_mean_vs_baseline.notna().all()
    assert "\nEvents\n" in next(out.glob("facial_analysis_report_*.txt")).read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("onset,offset\n1,2\n")
    # A refused file as the command line shows it: one line, no traceback.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fatools.cli.run import main; main()",
            str(clip),
            "-o",
            str(tmp_path / "o2"),
            "--models-dir",
            str(standin_store),
            "--events",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        proc.returncode == 1
        and f"{bad}:1: the header lacks label" in proc.stderr
        and "Traceback" not in proc.stderr
    )
