"""Live inputs (issue 33): standard input, UDP with a reconnect, drops under a slow
consumer, --no-drop, --duration, and SIGINT on a live fa-run. Real ffmpeg senders on
127.0.0.1, small frames (320x240), stand-in models; every process bounded in time."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require

from fatools.live import LiveOptions, LiveReader, is_live, parse_duration, parse_input_options
from fatools.video import Sampling


@pytest.fixture(autouse=True)
def _ffmpeg() -> None:
    require(shutil.which("ffmpeg") is not None, "needs the ffmpeg command (make system-deps)")


BIN = Path(sys.executable).parent
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEND = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi"]
TS = ["-pix_fmt", "yuv420p", "-f", "mpegts", "-flush_packets", "1"]


def lavfi(seconds: float, rate: int = 25) -> list[str]:
    return ["-i", f"testsrc=size=320x240:rate={rate}", "-t", str(seconds)]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_options_and_sources():
    assert is_live("-") and is_live("rtsp://cam/stream") and is_live("srt://127.0.0.1:9000")
    assert is_live("udp://127.0.0.1:1234") and is_live("https://host/live.m3u8") and is_live("/dev/video0")
    assert is_live("0", LiveOptions(input_format="avfoundation")) and is_live(
        "video=Cam", LiveOptions(input_format="dshow")
    )
    assert (
        not is_live("clip.mp4")
        and not is_live("folder/")
        and not is_live("clip.mp4", LiveOptions(input_format="mp4"))
    )
    assert parse_duration("10m") == 600 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    assert parse_duration("500ms") == 0.5
    with pytest.raises(ValueError):
        parse_duration("ten")
    assert parse_input_options(["rtsp_transport=tcp"]) == (("rtsp_transport", "tcp"),)
    with pytest.raises(ValueError):
        parse_input_options(["rtsp_transport"])
    # No webcam here: a v4l2 device that is not there is one line and exit 1; a bad option is a usage error.
    done = subprocess.run(
        [BIN / "fa-frames", "/dev/video99", "--input-format", "v4l2", "--input-option", "video_size=320x240"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "/dev/video99: cannot open the live source" in done.stderr
    done = subprocess.run(
        [BIN / "fa-frames", "-", "--input-option", "novalue"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "KEY=VALUE" in done.stderr


def test_stdin_pipe(tmp_path):
    """ffmpeg -re writing MPEG-TS into `fa-frames -`, as a shell pipeline with pipefail."""
    command = (
        f"set -o pipefail; {' '.join(SEND)} {' '.join(lavfi(2))} {' '.join(TS)} - "
        f"| {BIN / 'fa-frames'} - --every 5"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    records = lines(done.stdout)
    header, frames = records[0], records[1:]
    assert header["type"] == "video" and header["live"] is True and header["video"] == "-"
    assert header["width"] == 320 and header["height"] == 240 and header["frame_count"] is None
    assert [f["frame"] for f in frames] == list(range(0, 50, 5))
    assert [f["t"] for f in frames] == pytest.approx([i * 0.2 for i in range(10)], abs=1e-3)
    assert all(ISO.match(f["wallclock"]) and f["dropped"] == 0 for f in frames)
    assert [f["wallclock"] for f in frames] == sorted(f["wallclock"] for f in frames)
    assert "live: 10 frames, 0 dropped" in done.stderr and "ended: end of stream" in done.stderr


def test_clock_going_back_goes_on(tmp_path):
    """Two MPEG-TS clips one after the other on standard input: the second's timestamps
    start again (as RTSP's do when its first sender report re-bases them): t goes on,
    one frame at a time, instead of going back."""
    clip = tmp_path / "one.ts"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", *lavfi(1)[:2], "-t", "1", *TS, str(clip)],
        check=True,
        timeout=30,
    )
    done = subprocess.run(
        ["bash", "-c", f"cat {clip} {clip} | {BIN / 'fa-frames'} - --no-drop"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    ts = [f["t"] for f in lines(done.stdout)[1:]]
    assert len(ts) == 50 and ts[0] == 0.0, ts
    assert [round(b - a, 3) for a, b in itertools.pairwise(ts)] == [0.04] * 49


def udp_bound(port: int) -> bool:
    with open("/proc/net/udp") as table:
        return any(f":{port:04X} " in line.split()[1] + " " for line in table.readlines()[1:])


def wait_bound(port: int, process: subprocess.Popen, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not udp_bound(port):
        assert process.poll() is None and time.monotonic() < deadline, "the reader never listened"
        time.sleep(0.05)


def test_udp_reconnect_marks_the_gap_and_sigint_ends_it():
    """Two ffmpeg senders on a UDP port, a pause between them: the stall is a reconnect, the
    first frame after it says so; SIGINT ends fa-frames cleanly (exit 130, summary line)."""
    port = free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    reader = subprocess.Popen(
        [BIN / "fa-frames", url, "--every", "5", "--reconnect", "3", "--stall-timeout", "0.5s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_bound(port, reader)
        target = f"{url}?pkt_size=1316"
        subprocess.run(SEND + lavfi(1.5) + TS + [target], timeout=20, check=True)
        time.sleep(
            2.0
        )  # the reader stalls after 0.5 s, reopens after 0.5 s more, and waits up to 5 s for data
        wait_bound(port, reader)
        subprocess.run(SEND + lavfi(1.5) + TS + [target], timeout=20, check=True)
        time.sleep(0.3)
        os.kill(reader.pid, signal.SIGINT)
        out, err = reader.communicate(timeout=20)
    finally:
        if reader.poll() is None:
            os.kill(reader.pid, signal.SIGKILL)
            reader.wait()
    assert reader.returncode == 130, err
    frames = lines(out)[1:]
    after = [f for f in frames if "reconnected" in f]
    assert len(after) == 1 and after[0]["reconnected"] == 1 and after[0]["gap"] > 0.5, err
    ts = [f["t"] for f in frames]
    assert ts == sorted(ts)  # the clock goes on across the gap
    assert after[0]["t"] - frames[frames.index(after[0]) - 1]["t"] >= 0.5
    assert "1 reconnects" in err and "ended: " in err


def test_duration_stops_a_live_run():
    """--duration 1s on an endless sender: a clean end (exit 0) a second after the first
    frame (connecting is not counted)."""
    sender = subprocess.Popen(
        SEND + lavfi(60) + TS + ["-"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        done = subprocess.run(
            [BIN / "fa-frames", "-", "--every", "5", "--duration", "1s"],
            stdin=sender.stdout,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        sender.stdout.close()
        os.kill(sender.pid, signal.SIGKILL)
        sender.wait()
    assert done.returncode == 0, done.stderr
    frames = lines(done.stdout)[1:]
    # Every 5th of 25 fps for a second of wall time, and what the pipe held when it began.
    assert len(frames) >= 4 and frames[-1]["t"] < 3, frames
    assert "ended: duration" in done.stderr


def _fifo_sender(tmp_path: Path, seconds: float):
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    sender = subprocess.Popen(SEND + lavfi(seconds) + TS + ["-y", str(fifo)])
    return str(fifo), sender


@pytest.mark.parametrize("drop", [True, False])
def test_slow_consumer(tmp_path, drop, caplog):
    """A consumer slower than capture (0.15 s a frame at 25 fps): the newest frame wins and
    the drops are counted per record and in total; --no-drop keeps every frame and warns."""
    fifo, sender = _fifo_sender(tmp_path, 1.2 if drop else 0.6)
    try:
        reader = LiveReader(fifo, Sampling(), LiveOptions(drop=drop, queue_size=2), want_pixels=True).start()
        got = []
        for item in reader.frames():
            got.append(item)
            time.sleep(0.15)
    finally:
        sender.wait(timeout=20)
    stats = reader.stats
    if drop:
        assert stats.dropped > 10 and sum(f.dropped for f in got) == stats.dropped
        assert len(got) + stats.dropped == stats.frames
        assert [f.index for f in got] == sorted(f.index for f in got)
    else:
        assert (
            stats.dropped == 0 and [f.index for f in got] == list(range(stats.frames)) and stats.frames >= 14
        )
        assert "analysis is slower than capture" in caplog.text
    assert got[0].image.shape == (240, 320, 3)


def test_duration_analyses_what_came_before_it_and_nothing_after(tmp_path):
    """--duration with a consumer slower than capture (0.15 s a frame at 25 fps, the queue
    full at the deadline): no frame decoded after the deadline is handed on; the frames
    decoded before it and still waiting are (the run ends at most the queue's few analysis
    times late, and the last second of the stream is not thrown away)."""
    fifo, sender = _fifo_sender(tmp_path, 4)
    options = LiveOptions(duration=0.5, input_options=(("analyzeduration", "200000"),))
    try:
        reader = LiveReader(fifo, Sampling(), options, want_pixels=False).start()
        got = []
        for item in reader.frames():
            got.append((item, time.monotonic()))
            time.sleep(0.15)
    finally:
        sender.kill()
        sender.wait()
    assert reader.stats.ended == "duration" and reader.deadline is not None
    assert all(item.captured < reader.deadline for item, _ in got)
    late = [item for item, handed in got if handed >= reader.deadline]
    assert 1 <= len(late) <= options.queue_size, [(i.index, h - reader.deadline) for i, h in got]


def test_fa_run_live_sigint(tmp_path, standin_store):
    """fa-run on standard input: frames.jsonl grows while it runs, --checkpoint writes
    summary.json, SIGINT ends it with every output written and exit 130."""
    out = tmp_path / "out"
    # A black picture at its own size: the stand-in detector finds no faces in it (a grey one
    # is a face filling the frame), so each frame is quick.
    sender = subprocess.Popen(
        [*SEND, "-i", "color=c=black:size=320x240:rate=10", "-t", "60", *TS, "-"], stdout=subprocess.PIPE
    )
    env = {**os.environ, "FATOOLS_MODELS": str(standin_store)}
    run = subprocess.Popen(
        [
            BIN / "fa-run",
            "-",
            "-o",
            out,
            "--every",
            "2",
            "-f",
            "json,csv",
            "--checkpoint",
            "1s",
            "--backend",
            "torch",
            "--det-size",
            "0",
            "--no-progress",
        ],
        stdin=sender.stdout,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    sender.stdout.close()
    try:
        deadline = time.monotonic() + 60
        records = out / "frames.jsonl"
        while time.monotonic() < deadline:
            if records.exists() and records.read_text().count("\n") >= 4 and (out / "summary.json").exists():
                break
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.2)
        growing = records.read_text().count("\n")
        assert growing >= 4, "frames.jsonl did not grow while the run went on"
        assert json.loads((out / "summary.json").read_text())["live"]["frames"] > 0  # the checkpoint
        os.kill(run.pid, signal.SIGINT)
        stdout, stderr = run.communicate(timeout=30)
    finally:
        for proc in (run, sender):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
    assert run.returncode == 130, stderr
    frames = lines(records.read_text())
    assert frames[0]["live"] is True and len(frames) > growing - 1
    assert all(ISO.match(f["wallclock"]) for f in frames[1:]) and all("faces" in f for f in frames[1:])
    summary = json.loads((out / "summary.json").read_text())
    live = summary["live"]
    assert (
        live["ended"] == "stopped"
        and live["latency_ms"]["p50"] is not None
        and live["latency_ms"]["p95"] >= live["latency_ms"]["p50"]
    )
    assert list(out.glob("facial_analysis_*.json")) and list(out.glob("facial_analysis_summary_*.csv"))
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
