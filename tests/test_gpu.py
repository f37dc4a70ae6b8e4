"""The CUDA path for real: CUDA float32 against the CPU's, facetorch-exact parity on CUDA,
and out of memory under a real memory cap.  Marked ``gpu``; skipped where torch sees no
CUDA device (CI has none: benchmarks/gpu/run.sh runs them on a lent GPU machine).

The out-of-memory path itself is tested everywhere with an injected error
(tests/test_out_of_memory.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from compare import differences
from test_predict_parity import assert_parity, facetorch_run, fatools_run

from fatools.run import VideoAnalyzer, run_options
from fatools.sample import pan_zoom_clip

# FATOOLS_GPU_TEST_DEVICE=cpu rehearses these tests' own code on a CPU (benchmarks/gpu/run.sh cpu).
DEVICE = os.environ.get("FATOOLS_GPU_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"),
]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# Twins of the real models (benchmarks/twins.py), when the run that built them says where.
TWIN_STORE = os.environ.get("FATOOLS_TWIN_STORE")


@pytest.fixture(scope="module")
def clip(faces_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gpu") / "family4-pan.mp4"
    pan_zoom_clip(str(faces_dir / "family4.jpg"), str(path), seconds=2.0, fps=12, size=(1920, 1080))
    return path


def _records(clip: Path, store: Path, out: Path, device: str, **options) -> list[dict]:
    run = run_options(
        every=3, detector="retinaface-mnet", device=device, models_dir=str(store), formats=["csv"], **options
    )
    VideoAnalyzer(run).analyze(str(clip), out)
    return [json.loads(line) for line in (out / "frames.jsonl").read_bytes().splitlines()]


def _stores(mixed_store: Path) -> list[Path]:
    return [mixed_store] + ([Path(TWIN_STORE)] if TWIN_STORE else [])


def test_cuda_float32_equals_the_cpu(clip, mixed_store, tmp_path):
    """fatools turns TF32 off (fatools.devices.configure_cuda): CUDA float32 records agree
    with the CPU's within the parity tolerances, with stand-ins and with the twins."""
    for i, store in enumerate(_stores(mixed_store)):
        cpu = _records(clip, store, tmp_path / f"cpu{i}", "cpu")
        cuda = _records(clip, store, tmp_path / f"cuda{i}", DEVICE)
        assert sum(len(r.get("faces", [])) for r in cpu) >= 8
        problems = differences(cuda, cpu, pixels=1.0, values=1e-4)
        assert not problems, f"{store}:\n" + "\n".join(problems[:20])
    if DEVICE == "cuda":
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("photo", ["family4.jpg", "grid25.jpg"])
def test_facetorch_exact_parity_on_cuda(mixed_store, faces_dir, photo):
    data, scale, pad_x, pad_y = facetorch_run(
        mixed_store, "retinaface-mnet", faces_dir / photo, device=DEVICE
    )
    record = fatools_run(mixed_store, "retinaface-mnet", faces_dir / photo, device=DEVICE)
    assert len(record["faces"]) == {"family4.jpg": 4, "grid25.jpg": 25}[photo]
    assert_parity(data, scale, pad_x, pad_y, record)


def test_fp16_runs_on_cuda_and_says_so(clip, mixed_store, tmp_path):
    fp32 = _records(clip, mixed_store, tmp_path / "fp32", DEVICE)
    fp16 = _records(clip, mixed_store, tmp_path / "fp16", DEVICE, fp16=True)
    assert all(r["detection"].get("fp16") for r in fp16[1:])
    assert [len(r["faces"]) for r in fp16[1:]] == [len(r["faces"]) for r in fp32[1:]]


@needs_cuda
def test_out_of_memory_under_a_real_memory_cap(mixed_store, faces_dir, tmp_path):
    """A detector batch that does not fit under a cap on this process's GPU memory is
    halved (said once on stderr) and the records are those of the uncapped run."""
    clip = tmp_path / "long.mp4"
    pan_zoom_clip(str(faces_dir / "family4.jpg"), str(clip), seconds=2.0, fps=16, size=(1920, 1080))
    args = [
        str(clip),
        "--every",
        "1",
        "--detector",
        "retinaface-mnet",
        "--device",
        "cuda",
        "--detect-batch",
        "32",
        "--det-size",
        "0",
        "--tasks",
        "va",
        "-f",
        "csv",
        "--models-dir",
        str(mixed_store),
    ]
    # Each run in its own process: the cap (and the allocator's cache) is per process.
    code = (
        "import sys, torch; cap = float(sys.argv.pop(1)); torch.cuda.init(); "
        "cap and torch.cuda.set_per_process_memory_fraction(cap); "
        "from fatools.cli.run import cli; "
        "cli.main(sys.argv[1:], prog_name='fa-run', standalone_mode=False); "
        "print('peak', torch.cuda.max_memory_reserved(), torch.cuda.get_device_properties(0).total_memory, "
        "file=sys.stderr)"
    )

    def run(cap: float, out: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, str(cap), *args, "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    free = run(0.0, tmp_path / "free")
    assert free.returncode == 0, free.stderr
    peak, total = (int(v) for v in free.stderr.strip().splitlines()[-1].split()[1:])
    capped = run(0.5 * peak / total, tmp_path / "capped")
    assert capped.returncode == 0, capped.stderr
    assert "out of GPU memory with a batch of 32; going on with 16" in capped.stderr, capped.stderr
    records = [
        [json.loads(x) for x in (tmp_path / d / "frames.jsonl").read_bytes().splitlines()]
        for d in ("capped", "free")
    ]
    assert not differences(*records, pixels=0.05, values=1e-4)
