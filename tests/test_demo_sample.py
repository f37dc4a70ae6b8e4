"""The demo's sample clip in a clone without ../shared: a pinned portrait that matplotlib
ships, checked by its sha256; the Makefile picks it when ../shared is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fatools.errors import FatoolsError
from fatools.sample import BUILTIN_PHOTOS, builtin_photo

ROOT = Path(__file__).resolve().parents[1]


def test_builtin_photo_is_the_pinned_file():
    import hashlib

    path = builtin_photo("grace_hopper")
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == BUILTIN_PHOTOS["grace_hopper"][1]
    with pytest.raises(FatoolsError, match="no such built-in photo; choose from builtin:grace_hopper"):
        builtin_photo("nobody")


def test_a_changed_file_is_refused(monkeypatch, tmp_path):
    import fatools.sample as sample

    monkeypatch.setitem(
        sample.BUILTIN_PHOTOS, "grace_hopper", ("grace_hopper.jpg", "0" * 64, "https://example")
    )
    with pytest.raises(FatoolsError, match=r"not the pinned grace_hopper\.jpg"):
        builtin_photo("grace_hopper")


def test_sample_tool_makes_a_clip_from_it(tmp_path):
    out = tmp_path / "clip.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fatools.sample",
            "builtin:grace_hopper",
            str(out),
            "--seconds",
            "0.4",
            "--size",
            "320x240",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    from fatools.video import probe

    info = probe(str(out))
    assert info.frame_count == 10 and (info.width, info.height) == (320, 240)
    bad = subprocess.run(
        [sys.executable, "-m", "fatools.sample", "builtin:nobody", str(tmp_path / "x.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "builtin:grace_hopper" in bad.stderr


@pytest.mark.parametrize("fps, rate", [(29.97, "2997/100"), (30000 / 1001, "30000/1001"), (25.0, "25")])
def test_write_video_takes_a_fractional_frame_rate(tmp_path, fps, rate):
    # PyAV reads a rate's numerator and denominator: a float such as 29.97 used to fail.
    import av
    import numpy as np

    from fatools.sample import write_video

    out = tmp_path / "clip.mp4"
    write_video(iter([np.zeros((32, 32, 3), np.uint8)] * 2), str(out), fps=fps)
    with av.open(str(out)) as container:
        assert str(container.streams.video[0].average_rate) == rate


@pytest.mark.parametrize(
    "shared, photo", [("/nonexistent-shared", "builtin:grace_hopper"), (None, "family4.jpg")]
)
def test_makefile_uses_the_builtin_photo_without_shared(shared, photo, tmp_path):
    from conftest import SHARED, require

    require(shutil.which("make") is not None, "make not installed")
    if shared is None:
        require(
            (SHARED / "testdata" / "faces" / "family4.jpg").is_file(),
            f"{SHARED}/testdata/faces/family4.jpg not found (the ../shared data beside the checkout)",
        )
        shared = str(SHARED)
    # -n prints the recipe and runs nothing, as long as no makefile has a rule: GNU make
    # remakes its makefiles even under -n. So everything the rule touches is under tmp_path,
    # whatever the checkout holds (a demo/ from `make demo`, its .venv): the demo's folder
    # (the clip is never there, so the recipe is printed), the environment, and the set-up
    # stamp, an ordinary file newer than what it depends on.
    demo, venv, stamp = tmp_path / "demo", tmp_path / "venv", tmp_path / "installed"
    newest = max(p.stat().st_mtime for p in [ROOT / "pyproject.toml", *(ROOT / "constraints").glob("*.txt")])
    stamp.touch()
    when = max(stamp.stat().st_mtime, newest + 1)  # now, unless a dependency's clock is ahead
    os.utime(stamp, (when, when))
    proc = subprocess.run(
        [
            "make",
            "-n",
            "-C",
            str(ROOT),
            f"{demo}/sample-pan.mp4",
            f"SHARED={shared}",
            f"STAMP={stamp}",
            f"DEMO_DIR={demo}",
            f"VENV={venv}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip" not in proc.stdout, proc.stdout  # the set-up is not even printed
    line = next(line for line in proc.stdout.splitlines() if "fatools.sample" in line)
    assert line.startswith(f"{venv}/bin/python ") and photo in line
    assert line.endswith(f"{demo}/sample-pan.mp4 --seconds 4")
    assert not demo.exists() and not venv.exists()
