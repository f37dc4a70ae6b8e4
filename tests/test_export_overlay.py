"""--format overlay: the annotated MP4, decoded again and checked against its source:
duration, frame count, timestamps, size, rotation, audio, and annotation pixels at the
boxes; from fa-export (a pipe) and from fa-run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from clips import ffmpeg as run_ffmpeg
from clips import probe_pts, rotated_copy, vfr_clip

from fatools.export import export
from fatools.export.overlay import PALETTE
from fatools.records import dumps
from fatools.video import probe

TS = "20260101_000000"
BOX = [60.0, 50.0, 180.0, 190.0]  # in display pixels


@pytest.fixture(scope="module")
def source(tmp_path_factory, ffmpeg):
    """A 2 s clip, 25 fps, 320x240, with a 440 Hz tone (AAC)."""
    path = tmp_path_factory.mktemp("overlay") / "talk.mp4"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "12",
        "-c:a",
        "aac",
        "-shortest",
        str(path),
    )
    return path


def records_for(path: Path, every: int = 5, box=BOX) -> list[dict]:
    info = probe(str(path))
    records = [info.header()]
    for k in range(0, info.frame_count, every):
        records.append(
            {
                "schema": 1,
                "video": str(path),
                "frame": k,
                "t": None,
                "width": info.width,
                "height": info.height,
                "faces": [
                    {
                        "face": 0,
                        "track": 0,
                        "box": list(box),
                        "score": 0.99,
                        "expression": {"label": "Happiness", "confidence": 0.8},
                        "va": {"valence": 0.5, "arousal": 0.2},
                        "au": {"probs": {"AU12": 0.9}, "active": ["AU12"], "threshold": 0.5},
                        "landmarks3d": [[100.0 + i, 120.0, 0.0] for i in range(68)],
                    }
                ],
            }
        )
    return records


def decoded(path: Path) -> tuple[list, list[np.ndarray], dict]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        streams = {s.type: s.codec_context.name for s in container.streams}
        duration = container.duration
        pts, images = [], []
        for frame in container.decode(video):
            pts.append(float(frame.pts * frame.time_base))
            images.append(frame.to_ndarray(format="bgr24"))
    streams["duration"] = duration / 1e6
    return pts, images, streams


def edge_matches(image: np.ndarray, box, colour, tolerance: int = 60) -> float:
    """Share of the box's outline pixels (top and left edges) in the track's colour."""
    x1, y1, x2, y2 = (int(v) for v in box)
    edge = np.concatenate([image[y1, x1 + 5 : x2 - 5], image[y1 + 5 : y2 - 5, x1]])
    return float((np.abs(edge.astype(int) - np.array(colour)).max(axis=1) < tolerance).mean())


def test_overlay_keeps_the_timing_and_the_audio_and_draws_at_the_boxes(tmp_path, source):
    result = export(records_for(source), tmp_path, ["overlay"], timestamp=TS)
    (path,) = result.files["overlay"]
    assert path.name == f"facial_analysis_{TS}.mp4"
    src_pts, src_images, src_streams = decoded(source)
    pts, images, streams = decoded(path)
    assert streams["video"] == "h264" and streams["audio"] == "aac"
    assert len(images) == len(src_images) == 50
    assert (
        pts == pytest.approx(src_pts, abs=1e-3) and abs(streams["duration"] - src_streams["duration"]) < 0.05
    )
    assert images[0].shape == src_images[0].shape == (240, 320, 3)
    for i in (0, 3, 7, 49):  # sampled frames and frames between them show the box
        assert edge_matches(images[i], BOX, PALETTE[0]) > 0.8, i
        assert edge_matches(src_images[i], BOX, PALETTE[0]) < 0.2
    # Away from the annotations the picture is the source's.
    assert np.abs(images[10][200:, 250:].astype(int) - src_images[10][200:, 250:].astype(int)).mean() < 6
    with av.open(str(path)) as out, av.open(str(source)) as src:
        assert sum(1 for _ in out.demux(out.streams.audio[0])) == sum(
            1 for _ in src.demux(src.streams.audio[0])
        )


def test_rotated_and_variable_rate_video(tmp_path, ffmpeg):
    timings = [0.0, 0.04, 0.12, 0.16, 0.3, 0.34, 0.5]
    vfr = vfr_clip(tmp_path / "vfr.mp4", timings)
    portrait = rotated_copy(vfr, tmp_path / "portrait.mp4", 90)
    info = probe(str(portrait))
    assert (info.width, info.height) == (240, 320)
    box = [30.0, 100.0, 150.0, 240.0]
    result = export(records_for(portrait, every=2, box=box), tmp_path / "out", ["overlay"], timestamp=TS)
    pts, images, _ = decoded(result.files["overlay"][0])
    assert images[0].shape == (320, 240, 3)  # rotation applied: the display's size
    assert pts == pytest.approx(probe_pts(portrait), abs=1e-3) and len(pts) == len(timings)
    assert all(edge_matches(image, box, PALETTE[0]) > 0.8 for image in images)


def test_from_a_pipe_and_images_get_none(tmp_path, source):
    data = b"".join(dumps(r) for r in records_for(source))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fatools.cli.export import main; main()",
            "-o",
            str(tmp_path / "o"),
            "-f",
            "overlay,csv",
            "--timestamp",
            TS,
        ],
        input=data,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert [Path(p).name for p in proc.stdout.decode().split()] == [
        f"facial_analysis_summary_{TS}.csv",
        f"facial_analysis_{TS}.mp4",
    ]
    # Records of images (no header, no video file) get no overlay, and say so.
    still = [{"schema": 1, "video": "photos", "frame": 0, "t": None, "width": 64, "height": 64, "faces": []}]
    result = export(still, tmp_path / "s", ["overlay"], timestamp=TS)
    assert "overlay" not in result.files


def test_fa_run_writes_the_overlay(tmp_path, standin_store):
    from fatools.sample import write_video
    from tests.test_run import two_faces

    clip = tmp_path / "two.mp4"
    write_video((two_faces(i) for i in range(24)), str(clip), fps=12)
    out = tmp_path / "run"
    from click.testing import CliRunner

    from fatools.cli.run import cli as run_cli

    result = CliRunner().invoke(
        run_cli,
        [str(clip), "-o", str(out), "--every", "3", "-f", "overlay", "--models-dir", str(standin_store)],
    )
    assert result.exit_code == 0, result.output
    (path,) = out.glob("facial_analysis_*.mp4")
    pts, images, _ = decoded(path)
    assert len(images) == 24
    import json

    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    frame6 = next(r for r in records if r.get("frame") == 6)
    for face in frame6["faces"]:
        colour = PALETTE[face["track"] % len(PALETTE)]
        assert edge_matches(images[7], face["box"], colour) > 0.6, face  # frame 7 shows frame 6's annotations
