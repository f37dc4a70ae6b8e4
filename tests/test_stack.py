"""The software stack: install honesty, the doctor, no deprecation noise, and the same
records on every supported stack (current torch, facetorch's pinned torch, Python 3.13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chains import WARNING
from click.testing import CliRunner
from compare import differences
from conftest import copy_store

from fatools import stack
from fatools.cli.models import cli as models_cli
from fatools.runtime.torch_engine import int8_supported
from fatools.sample import pan_zoom_clip, write_video

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# The reference stack's Python (the Makefile's default venv), set by `make test-stacks`.
REFERENCE_PYTHON = os.environ.get("FATOOLS_REFERENCE_PYTHON")
PIXEL_TOLERANCE = 1.0  # boxes and landmarks, in original pixels
VALUE_TOLERANCE = 1e-4  # probabilities, scores, valence/arousal


def test_pip_check_has_at_most_the_known_facetorch_complaint():
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    complaints = [
        line for line in proc.stdout.splitlines() if line.strip() and "No broken requirements" not in line
    ]
    # The one explained in the README: facetorch 0.6.2's stale torch<2.4, on the current stack only.
    known = [line for line in complaints if line.startswith("facetorch 0.6.2 has requirement torch<2.4")]
    assert complaints == known, proc.stdout
    if stack.describe()["stack"] == "pinned":
        assert not complaints, proc.stdout


def test_doctor_prints_the_stack():
    import numpy
    import torch

    result = CliRunner().invoke(models_cli, ["doctor", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["torch"] == torch.__version__.split("+")[0] or info["torch"] == torch.__version__
    assert info["numpy"] == numpy.__version__
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["device"] == "cpu" and info["facetorch"] == "0.6.2"
    assert {"torchvision", "PyAV", "OpenCV", "ONNX Runtime", "torch_cuda", "gpus", "stack"} <= set(info)
    table = CliRunner().invoke(models_cli, ["doctor"])
    assert table.exit_code == 0 and "torch:" in table.stdout and "device:" in table.stdout


def test_missing_facetorch_is_one_line_saying_what_to_install(tmp_path):
    # sys.modules[...] = None makes `import facetorch` fail as if it were not installed.
    (tmp_path / "v.mp4").write_bytes(b"")
    code = (
        "import sys; sys.modules['facetorch'] = None; sys.argv = ['fa-run', sys.argv[1], '-o', sys.argv[2]]; "
        "from fatools.cli.run import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "v.mp4"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install --no-deps 'facetorch==0.6.2'" in lines[0], proc.stderr
    api = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['facetorch'] = None; import fatools; "
            "fatools.analyze_video('v.mp4', 'out')",
        ],
        capture_output=True,
        text=True,
    )
    assert (
        api.returncode == 1
        and "FacetorchMissingError" in api.stderr
        and "--no-deps" in api.stderr.splitlines()[-1]
    )


def _squares(i: int) -> np.ndarray:
    image = np.full((240, 320, 3), 15, np.uint8)
    image[30:130, 20 + 4 * i : 120 + 4 * i] = 250
    return image


def test_no_warning_reaches_the_terminal(standin_store, tmp_path):
    """An ordinary first fa-run (the ONNX exports made then too) and fa-models, under the
    strictest filter (every warning shown), each stage's exit status checked (pipefail).
    The pipe of the stage commands is checked so by tests/test_run.py's
    test_fa_run_equals_the_pipe (run_pipe), the one real pipe of them all."""

    clip = tmp_path / "sq.mp4"
    write_video((_squares(i) for i in range(6)), str(clip), fps=6)
    store = tmp_path / "store"
    copy_store(standin_store, store)
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "FATOOLS_MODELS": str(store),
        "PYTHONWARNINGS": "always",
    }
    int8 = " --int8" if int8_supported() else ""
    commands = [
        f"fa-run '{clip}' -o '{tmp_path / 'out'}' --format json{int8}",
        f"fa-models list --models-dir '{store}' > /dev/null",
    ]
    assert not WARNING.search("fatools: a face named Warning: fine\n")  # the word alone is no warning
    for command in commands:
        proc = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stderr
        assert not WARNING.search(proc.stderr), f"{command}:\n{proc.stderr}"
    assert list(store.glob("*/derived/model-*.onnx"))  # the exports were made, and said nothing


def _fa_run(python: str, clip: Path, out: Path, store: Path) -> list[dict]:
    code = "import sys; from fatools.cli.run import main; sys.argv[0] = 'fa-run'; main()"
    proc = subprocess.run(
        [
            python,
            "-c",
            code,
            str(clip),
            "-o",
            str(out),
            "--detector",
            "retinaface-mnet",
            "--every",
            "4",
            "--format",
            "json",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "FATOOLS_MODELS": str(store)},
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"{python}: {proc.stderr}"
    return [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]


def test_records_agree_with_the_reference_stack(mixed_store, faces_dir, tmp_path):
    """This stack's fa-run records equal the reference stack's on a clip of real faces
    (the real RetinaFace-MobileNet0.25, stand-in predictors), within the parity tolerances.

    The store is written by this stack: TorchScript files load on newer torch, not older."""
    if not REFERENCE_PYTHON:
        pytest.skip("compares two stacks: `make test-stacks` sets FATOOLS_REFERENCE_PYTHON")
    clip = tmp_path / "family4-pan.mp4"
    pan_zoom_clip(str(faces_dir / "family4.jpg"), str(clip), seconds=1.0, fps=12)
    ours = _fa_run(sys.executable, clip, tmp_path / "ours", mixed_store)
    theirs = _fa_run(REFERENCE_PYTHON, clip, tmp_path / "theirs", mixed_store)
    assert sum(len(r.get("faces", [])) for r in ours) >= 8  # 3 frames x 4 faces, most of them found
    problems = differences(ours, theirs, PIXEL_TOLERANCE, VALUE_TOLERANCE)
    assert not problems, "\n".join(problems[:20])


def test_the_comparison_sees_differences_beyond_the_tolerances():
    record = {
        "frame": 3,
        "faces": [
            {
                "box": [10.0, 20.0, 50.0, 60.0],
                "landmarks5": [[1.0, 2.0]],
                "au": {"probs": {"AU1": 0.25}, "active": ["AU1"]},
            }
        ],
    }
    within = json.loads(json.dumps(record))
    within["faces"][0]["box"][0] += 0.9
    within["faces"][0]["au"]["probs"]["AU1"] += 0.00009
    assert differences([record], [within], PIXEL_TOLERANCE, VALUE_TOLERANCE) == []
    beyond = json.loads(json.dumps(record))
    beyond["faces"][0]["landmarks5"][0][1] += 1.5
    beyond["faces"][0]["au"]["probs"]["AU1"] += 0.0002
    beyond["faces"][0]["au"]["active"] = []
    problems = differences([record], [beyond], PIXEL_TOLERANCE, VALUE_TOLERANCE)
    assert (
        len(problems) == 3 and any("landmarks5" in p for p in problems) and any("AU1" in p for p in problems)
    )
