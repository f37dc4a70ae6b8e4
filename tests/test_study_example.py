"""examples/study/ run for real (issue 32): clips -> fa-run --design -> fa-collect --design
--normalize person --long -> a statsmodels mixed model on the long table, with the
stand-in models; and fa-run refusing a design that does not fit its inputs before any
model loads."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from fatools.cli.run import cli as run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "study"
BIN = Path(sys.executable).parent


def test_worked_example(standin_store, tmp_path):
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "FATOOLS_MODELS": str(standin_store),
        "FA_RUN_OPTIONS": "--threads 1 --det-size 0",
    }
    proc = subprocess.run(
        ["sh", str(EXAMPLE / "run.sh"), str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = tmp_path / "work"
    with open(work / "study.csv", newline="") as handle:
        videos = {Path(r["input"]).stem: r for r in csv.DictReader(handle) if r["level"] == "video"}
    assert {k: (v["participant"], v["condition"]) for k, v in videos.items()} == {
        f"P0{p}_s{s}": (f"P0{p}", "neutral" if s == 1 else "funny") for p in (1, 2, 3) for s in (1, 2)
    }
    # P01's second session has the interviewer's small face too: the participant's track is the large one.
    assert videos["P01_s2"]["tracks"] == "2" and videos["P01_s2"]["track_rule"] == "rule"
    long = pd.read_parquet(work / "long.parquet")
    chosen = long[(long.input.str.endswith("P01_s2.mp4")) & (long.role == "participant")]
    other = long[(long.input.str.endswith("P01_s2.mp4")) & (long.role == "other")]
    assert len(other) and set(chosen.track) == {videos["P01_s2"]["participant_track"]}
    assert (long[long.role == "participant"].reference == "person").all()
    # fa-run --design kept each input's design row in its run.json.
    record = json.loads((work / "results" / "P01_s2" / "run.json").read_text())
    assert record["design"] == {
        "source": str(EXAMPLE / "design.csv"),
        "row": {"participant": "P01", "session": "s2", "condition": "funny", "group": "A"},
    }
    assert "effect condition[T.neutral]" in proc.stdout and "MixedLM" in proc.stdout
    # The funny session's faces are tinted (make_clips.py): the model finds the condition's effect.
    effect = float(proc.stdout.split("effect condition[T.neutral]: ", 1)[1].split()[0])
    assert abs(effect) > 0.01, proc.stdout[-2000:]
    assert (work / "participants.parquet").is_file() and (work / "index.html").is_file()


def test_fa_run_refuses_a_design_that_does_not_fit(tmp_path):
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_clips.py"), str(tmp_path / "videos")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    design = tmp_path / "design.csv"
    lines = (EXAMPLE / "design.csv").read_text().splitlines()
    design.write_text("\n".join(lines[:-1]) + "\nP07_s1.mp4,P07,s1,neutral,B\n")
    result = CliRunner().invoke(
        run_cli,
        [
            str(tmp_path / "videos"),
            "-o",
            str(tmp_path / "out"),
            "--design",
            str(design),
            "--models-dir",
            str(tmp_path / "no-models"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "P07_s1.mp4: no such input in the study" in result.output
    assert "P03_s2.mp4: no row in" in result.output
    assert not (tmp_path / "out").exists()  # nothing analysed, no model looked for
