"""fa-frames: sampling, container timestamps, rotation, images, bad inputs, pipes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from clips import looped_h264_clip, numbered_frame, probe_pts, rotated_copy, vfr_clip, write_clip
from hypothesis import given, settings
from hypothesis import strategies as st

from fatools.cli.frames import cli
from fatools.video import Sampler, Sampling

BIN = Path(sys.executable).parent


def run(*args: str) -> tuple[list[dict], str, int]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return lines, result.stderr, result.exit_code


def frames_of(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("type", "frame") == "frame"]


@pytest.fixture(scope="module")
def cfr(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("cfr") / "cfr.mp4", frames=50, fps=25)


VFR_PTS = [0.0, 0.1, 0.2, 0.5, 0.55, 0.6, 0.65, 0.7, 1.5, 1.6, 2.0, 2.04, 2.08, 3.0]


@pytest.fixture(scope="module")
def vfr(tmp_path_factory, ffmpeg) -> Path:
    return vfr_clip(tmp_path_factory.mktemp("vfr") / "vfr.mp4", VFR_PTS)


def test_header_then_every_frame_with_container_timestamps(cfr):
    records, _, code = run(cfr)
    assert code == 0
    header, frames = records[0], records[1:]
    assert header["type"] == "video" and header["schema"] == 1
    assert header["fps"] == pytest.approx(25.0)
    assert header["frame_count"] == 50
    assert header["duration"] == pytest.approx(2.0)
    assert (header["width"], header["height"], header["rotation"]) == (320, 240, 0)
    assert [f["frame"] for f in frames] == list(range(50))
    assert [f["t"] for f in frames] == pytest.approx([i / 25 for i in range(50)])
    assert all(f["video"] == str(cfr) and f["schema"] == 1 for f in frames)


def test_every_start_end_max_frames(cfr):
    frames = frames_of(run(cfr, "--every", 5)[0])
    assert [f["frame"] for f in frames] == list(range(0, 50, 5))
    frames = frames_of(run(cfr, "--every", 5, "--start", 0.5, "--end", 1.5)[0])
    # counted from the first frame at or after --start (frame 12 at 0.48 s is before it)
    assert [f["frame"] for f in frames] == [13, 18, 23, 28, 33]
    assert all(0.5 <= f["t"] < 1.5 for f in frames)
    frames = frames_of(run(cfr, "--max-frames", 3, "--every", 2)[0])
    assert [f["frame"] for f in frames] == [0, 2, 4]


def test_vfr_timestamps_come_from_the_container(vfr):
    assert probe_pts(vfr) == pytest.approx(VFR_PTS)
    frames = frames_of(run(vfr)[0])
    assert [f["t"] for f in frames] == pytest.approx(VFR_PTS, abs=1e-4)


def test_fps_sampling_is_even_in_time_on_vfr(vfr):
    frames = frames_of(run(vfr, "--fps", 2)[0])
    # Targets 0, .5, 1.0, 1.5, 2.0, 2.5, 3.0: the first frame at or after each, no repeats.
    assert [f["t"] for f in frames] == pytest.approx([0.0, 0.5, 1.5, 2.0, 3.0], abs=1e-4)
    # An index/fps clock would have picked other frames: the header's average rate is not 2 per step.
    frames = frames_of(run(vfr, "--fps", 10, "--start", 0.5, "--end", 0.7)[0])
    assert [f["t"] for f in frames] == pytest.approx([0.5, 0.6], abs=1e-4)


def test_fps_sampling_on_cfr_matches_every(cfr):
    by_fps = [f["frame"] for f in frames_of(run(cfr, "--fps", 5)[0])]
    by_every = [f["frame"] for f in frames_of(run(cfr, "--every", 5)[0])]
    assert by_fps == by_every


@given(
    gaps=st.lists(st.floats(min_value=0.001, max_value=0.7), min_size=1, max_size=60),
    rate=st.floats(min_value=0.5, max_value=30),
)
@settings(max_examples=200, deadline=None)
def test_fps_sampler_keeps_first_frame_of_every_period(gaps, rate):
    times = list(np.cumsum([0.0, *gaps]))
    sampler = Sampler(Sampling(fps=rate))
    kept = [t for i, t in enumerate(times) if sampler.keep(i, t)]
    period = 1 / rate
    buckets = [int(t / period + 1e-6) for t in times]
    expected = [t for i, t in enumerate(times) if i == 0 or buckets[i] != buckets[i - 1]]
    assert kept == expected


def test_rotation_is_applied(tmp_path, ffmpeg):
    src = write_clip(tmp_path / "land.mp4", frames=5, size=(320, 240))
    portrait = rotated_copy(src, tmp_path / "portrait.mp4", 90)
    records, _, code = run(portrait, "--images", tmp_path / "img")
    assert code == 0
    header, first = records[0], records[1]
    assert (header["width"], header["height"]) == (240, 320)
    assert header["rotation"] in (90, 270)
    assert (first["width"], first["height"]) == (240, 320)
    image = cv2.imread(first["image"])
    assert image.shape[:2] == (320, 240)
    # The display a player shows (OpenCV applies the same rotation) equals our frame.
    capture = cv2.VideoCapture(str(portrait))
    ok, shown = capture.read()
    assert ok and shown.shape == image.shape
    assert np.abs(shown.astype(int) - image.astype(int)).mean() < 2


def test_images_written_and_referenced(cfr, tmp_path):
    records, _, code = run(cfr, "--every", 10, "--images", tmp_path / "out")
    frames = frames_of(records)
    assert code == 0 and len(frames) == 5
    for f in frames:
        image = cv2.imread(f["image"])
        assert image.shape == (240, 320, 3)
        expected = numbered_frame(f["frame"])
        assert abs(float(image[120:, 160:].mean()) - float(expected[120:, 160:].mean())) < 4
    assert not list((tmp_path / "out").glob("*.part*"))


def test_image_file_and_folder_inputs(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, size in enumerate([(64, 48), (80, 60), (100, 50)]):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.zeros((size[1], size[0], 3), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    records, _, code = run(folder)
    assert code == 0
    assert [(r["frame"], r["width"], r["height"], Path(r["image"]).name) for r in records] == [
        (0, 64, 48, "00.png"),
        (1, 80, 60, "01.png"),
        (2, 100, 50, "02.png"),
    ]
    assert all(r["t"] is None and "type" not in r for r in records)
    records, _, _ = run(folder / "01.png")
    assert records == [
        {
            "schema": 1,
            "video": str(folder / "01.png"),
            "frame": 0,
            "t": None,
            "width": 80,
            "height": 60,
            "image": str(folder / "01.png"),
        }
    ]
    _, err, code = run(folder, "--fps", 2)
    assert code == 2 and "images have no clock" in err


def test_probe_and_no_header(cfr):
    records, _, _ = run("--probe", cfr)
    assert len(records) == 1 and records[0]["type"] == "video"
    records, _, _ = run("--no-header", "--max-frames", 2, cfr)
    assert [r["frame"] for r in records] == [0, 1]


def test_real_photo_frames(faces_dir):
    records, _, code = run(faces_dir / "family4.jpg")
    assert code == 0 and (records[0]["width"], records[0]["height"]) == (1920, 1280)


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "text", "audio", "corrupt"])
def test_bad_inputs_one_line_error_exit_1(kind, tmp_path, cfr):
    path = tmp_path / "bad.mp4"
    if kind == "directory":
        path = tmp_path / "emptydir"
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 20)
    elif kind == "audio":
        import shutil

        from conftest import require

        require(shutil.which("ffmpeg") is not None, "ffmpeg CLI not installed (make test installs it)")
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(path)],
            check=True,
        )
    elif kind == "corrupt":
        path.write_bytes(cfr.read_bytes()[:3000])
    proc = subprocess.run([BIN / "fa-frames", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fa-frames: error: ") and str(path) in lines[0], (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_on_error_skip_goes_on(tmp_path, cfr):
    missing = tmp_path / "gone.mp4"
    records, err, code = run("--on-error", "skip", "--max-frames", 1, missing, cfr)
    assert code == 0 and "gone.mp4" in err
    assert [r["frame"] for r in frames_of(records)] == [0]


def test_usage_errors_exit_2(cfr):
    assert run(cfr, "--every", 2, "--fps", 3)[2] == 2
    assert run(cfr, "--every", 0)[2] == 2
    assert run()[2] == 2
    assert run(cfr, "--start", 2, "--end", 1)[2] == 2


def test_broken_pipe_is_quiet(tmp_path, ffmpeg):
    clip = looped_h264_clip(tmp_path / "long.mp4", seconds=8)
    proc = subprocess.run(
        f"'{BIN / 'fa-frames'}' '{clip}' | head -1", shell=True, capture_output=True, text=True
    )
    assert json.loads(proc.stdout)["type"] == "video"
    assert proc.stderr == ""


def test_stream_is_flushed_per_line(tmp_path, ffmpeg):
    """The first record arrives before decoding ends (lines are flushed, not buffered)."""
    clip = looped_h264_clip(tmp_path / "long.mp4", seconds=40, size="640x480")
    proc = subprocess.Popen([BIN / "fa-frames", str(clip)], stdout=subprocess.PIPE)
    first = proc.stdout.readline()
    still_running = proc.poll() is None
    proc.kill()
    proc.wait()
    assert json.loads(first)["type"] == "video"
    assert still_running
