"""fa-run and the Python API: the pipe's results, in one process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import copy_store

import fatools
from fatools.cli.run import cli as run_cli
from fatools.runtime.torch_engine import int8_supported
from fatools.sample import write_video
from tests.chains import WARNING, chain

BIN = Path(sys.executable).parent


def two_faces(i: int) -> np.ndarray:
    """Two bright 'faces' (stand-in detector) passing each other, different shades."""
    image = np.full((360, 640, 3), 15, np.uint8)
    image[30:150, 40 + 12 * i : 160 + 12 * i] = (250, 250, 250)
    image[200:310, 460 - 10 * i : 570 - 10 * i] = (235, 245, 225)
    return image


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "two.mp4"
    write_video((two_faces(i) for i in range(24)), str(path), fps=12)
    return path


def run_pipe(command: str, store: Path) -> bytes:
    """``command``'s standard output; under bash's pipefail, so a failing stage fails it,
    not only the last one, and under the strictest warning filter (every warning shown),
    so that a warning any stage prints reaches its standard error and fails it."""
    proc = subprocess.run(
        [shutil.which("bash"), "-c", f"set -o pipefail; {command}"],
        capture_output=True,
        env={"PATH": str(BIN), "FATOOLS_MODELS": str(store), "PYTHONWARNINGS": "always"},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert not WARNING.search(proc.stderr.decode()), proc.stderr.decode()
    return proc.stdout


def test_fa_run_equals_the_pipe(clip, standin_store, tmp_path):
    """The commands as processes joined by real pipes (the other tests that compare fa-run
    with the commands run them in this process: tests/chains.py), none of them printing a
    warning (the pipe of tests/test_stack.py's test_no_warning_reaches_the_terminal)."""
    out = tmp_path / "run"
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
            "--format",
            "json",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    written = result.stdout.split()
    assert str(out / "frames.jsonl") in written and str(out / "summary.json") in written
    # One pipe for both: tee keeps fa-track's records on their way to fa-summarize.
    tee, teed = shutil.which("tee"), tmp_path / "piped.jsonl"
    summary = run_pipe(
        f"fa-frames '{clip}' --every 2 | fa-detect | fa-predict | fa-track | '{tee}' '{teed}' | fa-summarize",
        standin_store,
    )
    piped = teed.read_bytes()
    assert (out / "frames.jsonl").read_bytes() == piped
    assert json.loads((out / "summary.json").read_bytes()) == json.loads(summary)
    records = [json.loads(x) for x in piped.splitlines()]
    assert len(records) == 13 and all(len(r["faces"]) == 2 for r in records[1:])
    assert {f["track"] for r in records[1:] for f in r["faces"]} == {0, 1}
    assert any(p.endswith(".json") and "facial_analysis" in p for p in written)
    assert any(p.endswith(".csv") for p in written)


def test_python_api_returns_the_json_export(clip, standin_store, tmp_path):
    analysis = fatools.analyze_video(
        str(clip), str(tmp_path / "api"), sample_rate=6, models_dir=str(standin_store), formats=["json"]
    )
    assert set(analysis) >= {"analysis_metadata", "video_metadata", "frame_analyses", "summary_statistics"}
    assert [f["frame_index"] for f in analysis["frame_analyses"]] == [0, 6, 12, 18]
    analyzer = fatools.FacialActionVideoAnalyzer(
        device="cpu", models_dir=str(standin_store), formats=["json"]
    )
    again = analyzer.analyze_video(str(clip), str(tmp_path / "api2"), sample_rate=6)
    assert again["frame_analyses"] == analysis["frame_analyses"]
    on_disk = sorted((tmp_path / "api").glob("facial_analysis*.json"))
    assert (
        len(on_disk) == 1
        and json.loads(on_disk[0].read_text())["frame_analyses"] == analysis["frame_analyses"]
    )


def test_missing_models_reported_before_work(clip, tmp_path):
    proc = subprocess.run(
        [BIN / "fa-run", str(clip), "-o", str(tmp_path / "o"), "--models-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "retinaface" in proc.stderr and "au" in proc.stderr and "fa-models fetch" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o" / "frames.jsonl").exists()


def _faces(path: Path) -> list[list[dict]]:
    records = [json.loads(x) for x in path.read_bytes().splitlines()]
    return [r["faces"] for r in records if r.get("type") != "video"]


def _flat(frames: list[list[dict]]) -> list[dict]:
    """Every face of every frame, in order."""
    return [face for faces in frames for face in faces]


def _assert_same_faces(a: list[list[dict]], b: list[list[dict]], tol: float) -> None:
    assert [len(f) for f in a] == [len(f) for f in b] and sum(map(len, a)) > 0
    for frame_a, frame_b in zip(a, b, strict=True):
        for fa, fb in zip(frame_a, frame_b, strict=True):
            assert fa["track"] == fb["track"]
            assert np.allclose(fa["box"], fb["box"], atol=0.05)
            assert np.allclose(list(fa["au"]["probs"].values()), list(fb["au"]["probs"].values()), atol=tol)
            assert np.allclose(
                list(fa["expression"]["scores"].values()), list(fb["expression"]["scores"].values()), atol=tol
            )
            assert np.allclose(fa["landmarks3d"], fb["landmarks3d"], atol=0.05)


def test_results_do_not_depend_on_batch_size(clip, standin_store, tmp_path):
    outputs = []
    for batch in ("1", "5"):
        out = tmp_path / f"b{batch}"
        result = CliRunner().invoke(
            run_cli,
            [
                str(clip),
                "-o",
                str(out),
                "--every",
                "3",
                "--detect-batch",
                batch,
                "--models-dir",
                str(standin_store),
                "--format",
                "csv",
            ],
        )
        assert result.exit_code == 0, result.output
        outputs.append(_faces(out / "frames.jsonl"))
    _assert_same_faces(outputs[0], outputs[1], 1e-5)


def test_auto_device_takes_the_gpu_when_there_is_one(monkeypatch):
    """--device auto is cuda (and torch) where torch sees a GPU, else the CPU (and ONNX Runtime).
    On a machine without one, a run with auto would be a run with cpu: the GPU is faked here
    to see auto choose it; test_results_do_not_depend_on_device compares the two devices' records."""
    from fatools.devices import resolve_device
    from fatools.runtime import resolve_backend

    for available, device, backend in ((True, "cuda", "torch"), (False, "cpu", "onnx")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda available=available: available)
        chosen = resolve_device("auto")
        assert chosen.type == device and resolve_backend("auto", chosen) == backend


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="one device here (--device auto is the CPU): no second device to compare with",
)
def test_results_do_not_depend_on_device(clip, standin_store, tmp_path):
    outputs = []
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        result = CliRunner().invoke(
            run_cli,
            [
                str(clip),
                "-o",
                str(out),
                "--every",
                "4",
                "--device",
                device,
                "--models-dir",
                str(standin_store),
                "--format",
                "csv",
            ],
        )
        assert result.exit_code == 0, result.output
        outputs.append(_faces(out / "frames.jsonl"))
    # GPU kernels round differently from the CPU's: equal within 1e-3.
    _assert_same_faces(outputs[0], outputs[1], 1e-3)


def test_optimized_models_give_the_results_of_the_loaded_ones(clip, standin_store, tmp_path):
    """On torch, where --optimize freezes the models (fatools.runtime.torch_engine; ONNX Runtime
    ignores it): the frozen models' records are the loaded ones'."""
    # A store of its own: no model set this process kept for another test is reused, so
    # each run readies its models and says how.
    store = tmp_path / "store"
    copy_store(standin_store, store)
    outputs = []
    for flag, frozen in (("--optimize", True), ("--no-optimize", False)):
        out = tmp_path / flag.strip("-")
        result = CliRunner().invoke(
            run_cli,
            [
                str(clip),
                "-o",
                str(out),
                "--every",
                "4",
                flag,
                "--backend",
                "torch",
                "-vv",
                "--models-dir",
                str(store),
                "--format",
                "csv",
            ],
        )
        assert result.exit_code == 0, result.output
        readied = re.findall(r"^fa-run: (\S+): frozen=(\w+)", result.output, re.M)
        assert sorted(name for name, _ in readied) == ["align", "au", "fer", "retinaface", "va"], (
            result.output
        )
        assert {state for _, state in readied} == {str(frozen)}, result.output
        outputs.append(_faces(out / "frames.jsonl"))
    _assert_same_faces(outputs[0], outputs[1], 1e-4)


def run_with_and_without(flag: str, clip: Path, store: Path, tmp_path: Path) -> list[Path]:
    """frames.jsonl of fa-run on CPU without, then with ``flag``."""
    paths = []
    for flags in ([], [flag]):
        out = tmp_path / (flag.strip("-") if flags else "plain")
        result = CliRunner().invoke(
            run_cli,
            [
                str(clip),
                "-o",
                str(out),
                "--every",
                "4",
                "--device",
                "cpu",
                *flags,
                "--models-dir",
                str(store),
                "--format",
                "csv",
            ],
        )
        assert result.exit_code == 0, result.output
        paths.append(out / "frames.jsonl")
    return paths


def test_fp16_runs_the_whole_analysis_and_says_so(clip, standin_store, tmp_path):
    outputs = []
    for flagged, path in enumerate(run_with_and_without("--fp16", clip, standin_store, tmp_path)):
        records = [json.loads(x) for x in path.read_bytes().splitlines()][1:]
        assert all(r["detection"].get("fp16", False) == bool(flagged) for r in records)
        outputs.append(_faces(path))
    # Half precision rounds to about 3 decimal digits: same faces, close values.
    assert [len(f) for f in outputs[0]] == [len(f) for f in outputs[1]]
    for fa, fb in zip(_flat(outputs[0]), _flat(outputs[1]), strict=True):
        assert np.allclose(fa["box"], fb["box"], atol=1.0)
        assert np.allclose(list(fa["au"]["probs"].values()), list(fb["au"]["probs"].values()), atol=2e-2)


@pytest.mark.skipif(not int8_supported(), reason="this torch has no TorchScript dynamic quantisation")
def test_int8_quantises_only_the_au_model_and_says_so(clip, standin_store, tmp_path):
    outputs = [_flat(_faces(path)) for path in run_with_and_without("--int8", clip, standin_store, tmp_path)]
    assert len(outputs[0]) == len(outputs[1]) > 0
    au_moved = False
    for fp32, int8 in zip(*outputs, strict=True):
        assert "int8" not in fp32["au"] and int8["au"]["int8"] is True
        a, b = np.array(list(fp32["au"]["probs"].values())), np.array(list(int8["au"]["probs"].values()))
        # ONNX Runtime's int8 (the CPU default) quantises activations per tensor, which the
        # stand-in's wide-ranged Linear input gets coarsely (tests/test_backend.py).
        assert np.allclose(a, b, atol=6e-2)
        au_moved |= not np.array_equal(a, b)
        # Only the AU model is quantised: every other field is float32's.
        for field in ("box", "expression", "va", "landmarks3d", "pose"):
            assert fp32[field] == int8[field], field
    assert au_moved  # the int8 model did run


def test_fa_run_facetorch_exact_equals_the_exact_pipe(clip, standin_store, tmp_path):
    # fa-run cuts exact crops from the frame as its detector saw it; the pipe pads and
    # resizes it again in fa-predict: both must give the same records.
    out = tmp_path / "exact"
    result = CliRunner().invoke(
        run_cli,
        [
            str(clip),
            "-o",
            str(out),
            "--every",
            "3",
            "--facetorch-exact",
            "--models-dir",
            str(standin_store),
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    piped = chain(
        f"fa-frames '{clip}' --every 3 | fa-detect --facetorch-exact | fa-predict --facetorch-exact | fa-track",
        standin_store,
    )
    assert (out / "frames.jsonl").read_bytes() == piped


@pytest.mark.parametrize(
    "exact,det_size", [(False, "0"), (False, "480"), (True, "0"), (True, "480"), (True, "1080")]
)
def test_fa_run_equals_the_pipe_for_every_geometry(clip, standin_store, tmp_path, exact, det_size):
    flag = " --facetorch-exact" if exact else ""
    out = tmp_path / "run"
    result = CliRunner().invoke(
        run_cli,
        [
            str(clip),
            "-o",
            str(out),
            "--every",
            "6",
            "--det-size",
            det_size,
            *flag.split(),
            "--models-dir",
            str(standin_store),
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    piped = chain(
        f"fa-frames '{clip}' --every 6 | fa-detect --det-size {det_size}{flag} | fa-predict{flag} | fa-track",
        standin_store,
    )
    assert (out / "frames.jsonl").read_bytes() == piped


def test_exact_crops_follow_the_detector_geometry(clip, standin_store, tmp_path):
    """--det-size 0 detects at the native size: on this 640x360 clip the square is 640 px,
    so the faces (and all their predictions) are those of --det-size 640, not of 1080."""
    faces = {}
    for det_size in ("0", "640", "1080"):
        out = tmp_path / det_size
        result = CliRunner().invoke(
            run_cli,
            [
                str(clip),
                "-o",
                str(out),
                "--every",
                "6",
                "--det-size",
                det_size,
                "--facetorch-exact",
                "--models-dir",
                str(standin_store),
                "--format",
                "csv",
            ],
        )
        assert result.exit_code == 0, result.output
        faces[det_size] = _faces(out / "frames.jsonl")
    assert faces["0"] == faces["640"]
    assert faces["0"] != faces["1080"]  # a different geometry gives different crops: the test can tell


def test_fa_run_takes_images_and_folders_as_the_pipe_does(standin_store, tmp_path):
    from conftest import squares_image

    photos = tmp_path / "photos"
    photos.mkdir()
    squares_image(photos / "a.png")
    squares_image(photos / "b.jpg", size=(800, 600), squares=((100, 100, 150), (500, 300, 120)))
    for target, name in ((photos, "folder"), (photos / "b.jpg", "image")):
        out = tmp_path / name
        result = CliRunner().invoke(
            run_cli, [str(target), "-o", str(out), "--models-dir", str(standin_store)]
        )
        assert result.exit_code == 0, result.output
        piped = chain(f"fa-frames '{target}' | fa-detect | fa-predict | fa-track", standin_store)
        assert (out / "frames.jsonl").read_bytes() == piped
        records = [json.loads(x) for x in piped.splitlines()]
        assert all(r["t"] is None and r["faces"] for r in records)
    report = next((tmp_path / "folder").glob("facial_analysis_report_*.txt")).read_text()
    assert "Duration 0.0 s" not in report
    folder = [json.loads(x) for x in (tmp_path / "folder" / "frames.jsonl").read_bytes().splitlines()]
    assert [r["frame"] for r in folder] == [0, 1]  # every image, not every 5th


def test_images_have_no_clock_in_fa_run(standin_store, tmp_path):
    from conftest import squares_image

    image = squares_image(tmp_path / "a.png")
    result = CliRunner().invoke(
        run_cli, [str(image), "-o", str(tmp_path / "o"), "--fps", "2", "--models-dir", str(standin_store)]
    )
    assert result.exit_code == 2 and "images have no clock" in result.output


def test_fa_run_takes_the_format_lists_fa_export_takes(clip, standin_store, tmp_path):
    for spec, expected in ((["-f", "json,csv"], {"json", "csv"}), (["--format", "all"], None)):
        out = tmp_path / spec[1].replace(",", "-")
        result = CliRunner().invoke(
            run_cli, [str(clip), "-o", str(out), "--every", "12", *spec, "--models-dir", str(standin_store)]
        )
        assert result.exit_code == 0, result.output
        names = {p.name for p in out.iterdir()}
        assert any(n.startswith("facial_analysis_") and n.endswith(".json") for n in names)
        assert any(n.startswith("facial_analysis_summary_") for n in names)
        plots = any(n.endswith(".png") for n in names)
        assert plots == (expected is None)


def test_python_api_sets_tracking_and_summary_options(clip, standin_store, tmp_path):
    from fatools.run import run_options
    from fatools.summary import SummaryOptions
    from fatools.track import TrackOptions

    options = run_options(every=3, track_gap=0.0, episode_gap=0.9, top=2, models_dir=str(standin_store))
    assert options.track == TrackOptions(max_gap=0.0) and options.summary == SummaryOptions(
        episode_gap=0.9, top=2
    )
    analysis = fatools.analyze_video(
        str(clip),
        str(tmp_path / "api"),
        sample_rate=3,
        track_gap=0.0,
        episode_gap=0.9,
        top=2,
        models_dir=str(standin_store),
        formats=["json"],
    )
    summary = json.loads((tmp_path / "api" / "summary.json").read_text())
    assert summary["options"]["episode_gap"] == 0.9 and summary["options"]["top"] == 2
    # --track-gap 0 with frames 0.25 s apart: no face is linked to an earlier one.
    tracks = [face["track"] for frame in analysis["frame_analyses"] for face in frame["faces"]]
    assert len(set(tracks)) == len(tracks)
    with pytest.raises(ValueError, match="alternatives"):
        run_options(every=2, fps=1.0)
