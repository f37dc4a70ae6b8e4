"""A closed pipe ends every command that writes to standard output quietly (README,
Conventions; fa-frames(1): "as cat(1) does (status 141 in the shell)").

Each command runs as the console script a shell runs, its standard output a pipe whose
reader is already gone: what `| head -n 1` leaves once head has its line.  Made so
deterministically (the read end closed before the command starts), the command's first
write meets the closed pipe, whatever the machine's speed; a real `| head -n 1` meets
it only when the command writes after head ends (tests/test_frames.py's
test_broken_pipe_is_quiet pipes fa-frames into head for real).  Each must die of
SIGPIPE, as cat does, with nothing on standard error: no BrokenPipeError, no traceback,
no "Exception ignored".  The stand-in models (fatools.testing) make the inputs in this
process (tests/chains.py); the commands run side by side to keep the wall time short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chains import chain
from click.testing import CliRunner
from clips import write_clip

BIN = Path(sys.executable).parent


def _squares(i: int) -> np.ndarray:
    image = np.full((240, 320, 3), 20, np.uint8)
    image[40:120, 30 + i : 110 + i] = 250  # a stand-in face (the stand-in detector finds bright squares)
    return image


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, standin_store) -> dict[str, Path]:
    from fatools.cli.run import cli as run_cli

    root = tmp_path_factory.mktemp("closed-pipe")
    video = write_clip(root / "v.mp4", 12, paint=_squares)
    stages: list[bytes] = []
    chain(
        f"fa-frames {video} --every 3 | fa-detect --det-size 0 | fa-predict | fa-track", standin_store, stages
    )
    files = {"video": video}
    for name, data in zip(("frames", "detected", "predicted", "tracked"), stages, strict=True):
        files[name] = root / f"{name}.jsonl"
        files[name].write_bytes(data)
    result = CliRunner().invoke(
        run_cli,
        [
            str(video),
            "-o",
            str(root / "results"),
            "--every",
            "6",
            "-f",
            "csv",
            "--det-size",
            "0",
            "--models-dir",
            str(standin_store),
        ],
    )
    assert result.exit_code == 0, result.output
    files["results"] = root / "results"
    files["scratch"] = root
    return files


def _commands(files: dict[str, Path]) -> dict[str, tuple[list, Path | None]]:
    """Each command that writes to standard output: its arguments and its standard input."""
    out = files["scratch"]
    return {
        "fa-frames": (["fa-frames", files["video"]], None),
        "fa-detect": (["fa-detect", "--det-size", "0"], files["frames"]),
        "fa-predict": (["fa-predict"], files["detected"]),
        "fa-track": (["fa-track"], files["predicted"]),
        "fa-summarize": (["fa-summarize"], files["tracked"]),
        "fa-export": (
            ["fa-export", files["tracked"], "-o", out / "export", "-f", "csv"],
            None,
        ),  # the files' paths
        "fa-run": (
            ["fa-run", files["video"], "-o", out / "run", "--every", "6", "-f", "csv", "--det-size", "0"],
            None,
        ),
        "fa-collect": (["fa-collect", files["results"], "-o", "-"], None),
        "fa-models list": (["fa-models", "list"], None),
        "fa-models path": (["fa-models", "path", "va"], None),
    }


def test_a_closed_pipe_ends_every_command_quietly(inputs, standin_store, tmp_path):
    env = dict(os.environ, FATOOLS_MODELS=str(standin_store))
    jobs = {}
    for name, (args, stdin) in _commands(inputs).items():
        read, write = os.pipe()
        os.close(read)  # the reader has gone: the first write meets a closed pipe
        stderr = open(tmp_path / f"{name}.err", "w+")
        with open(stdin or os.devnull, "rb") as source:
            jobs[name] = (
                subprocess.Popen(
                    [BIN / args[0], *map(str, args[1:])], stdin=source, stdout=write, stderr=stderr, env=env
                ),
                stderr,
            )
        os.close(write)
    ended = {}
    for name, (job, stderr) in jobs.items():
        job.wait(timeout=600)
        stderr.seek(0)
        ended[name] = (job.returncode, stderr.read())
        stderr.close()
    # -SIGPIPE: killed by it, as cat is (141 in the shell); an empty standard error.
    assert {name: result for name, result in ended.items() if result != (-signal.SIGPIPE, "")} == {}


def test_a_real_head_takes_the_first_record(inputs, standin_store):
    """`fa-track | head -n 1` under pipefail: head gets the header, fa-track's own status is
    0 (done before head left) or 141 (the documented SIGPIPE), and it says nothing."""
    script = f"set -o pipefail; '{BIN / 'fa-track'}' '{inputs['tracked']}' | head -n 1; echo \"${{PIPESTATUS[0]}}\" >&2"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.stdout.count("\n") == 1 and json.loads(proc.stdout)["type"] == "video"
    assert proc.stderr.strip() in ("0", "141"), proc.stderr
