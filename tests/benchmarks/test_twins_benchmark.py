"""Compute twins (benchmarks.twins) and the speed benchmark's plumbing; never timings.

The twins come from tests/conftest.py's ``twin_store``: built once per machine (about
15 s, most of it tracing the Swin-Base AU model) and cached outside the checkout.  The
end-to-end ``python -m benchmarks.speed --smoke`` run is opt-in (FATOOLS_BENCH_SMOKE=1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import report, twins
from fatools.models import config, store

ROOT = Path(__file__).resolve().parents[2]
SPEED = [sys.executable, "-m", "benchmarks.speed"]


def test_twin_store_is_cached_outside_the_checkout(twin_store: Path) -> None:
    assert ROOT.resolve() not in twin_store.resolve().parents


def test_twins_are_recorded_as_twins(twin_store: Path) -> None:
    for name in ("au", "fer", "va", "align", "align-meta", "retinaface"):
        info = store.read_source(name, twin_store)
        assert info is not None and info["source"] == "twin" and info["seed"] == twins.SEED, name
    assert twins.is_twin_store(
        twin_store, ["au", "fer", "va", "align", "align-meta", "retinaface", "retinaface-mnet"]
    )
    assert not twins.is_twin_store(twin_store, ["embed"])


@pytest.mark.parametrize("task", ["au", "fer", "va", "align"])
def test_predictor_twin_loads_through_facetorch(twin_store: Path, task: str) -> None:
    from hydra.utils import instantiate

    size, outputs = twins.CONTRACTS[task]
    cfg = config.load_config(root=twin_store, tasks=[task])
    predictor = instantiate(cfg.analyzer.predictor[task])
    # build_twins already checked that each trace follows the batch size.
    faces = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.jit.optimized_execution(False):  # one call: the profiling executor would only add time
        out = predictor.inference(predictor.preprocessor.run(faces))
    assert tuple(out.shape) == (2, outputs)
    assert torch.isfinite(out).all()
    if task == "au":
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    if task == "va":
        assert float(out.abs().max()) <= 1.0


def test_meta_twin_has_the_real_vertex_count(twin_store: Path) -> None:
    from hydra.utils import instantiate

    cfg = config.load_config(root=twin_store, tasks=["align"])
    utilizer = instantiate(cfg.analyzer.utilizer.align)
    assert utilizer.dim == twins.BFM_VERTICES
    assert utilizer.keypoints.numel() == 68 * 3


def test_mnet_finds_the_real_faces(twin_store: Path, faces_dir: Path) -> None:
    """The real MobileNet0.25 of the twin store (and so the ResNet-50 twin, below) finds family4's 4 faces."""
    from fatools.detect import DetectOptions, build_detector
    from fatools.video import read_image

    image = read_image(str(faces_dir / "family4.jpg"))
    detector = build_detector("retinaface-mnet", DetectOptions(det_size=640), "cpu", None, str(twin_store))
    assert len(detector.detect([image])[0]) == 4


def test_r50_twin_is_the_mobilenet_plus_zero(twin_store: Path) -> None:
    r50 = torch.jit.load(str(store.model_path("retinaface", twin_store)))
    mnet = torch.jit.load(str(store.model_path("retinaface-mnet", twin_store)))
    x = torch.rand(2, 3, 96, 160, generator=torch.Generator().manual_seed(1)) * 255 - 117
    with torch.no_grad(), torch.jit.optimized_execution(False):
        for a, b in zip(r50(x), mnet(x), strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b)
    # The ResNet-50 branch is really there: about 27M parameters against the MobileNet's 0.4M.
    assert sum(p.numel() for p in r50.parameters()) > 25_000_000


def test_build_twins_refuses_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        twins.build_twins(tmp_path, "mnet", tasks=["embed"])
    with pytest.raises(ValueError):
        twins.build_twins(tmp_path, "vgg")


def test_speed_help_runs() -> None:
    proc = subprocess.run([*SPEED, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for option in ("--quick", "--device", "--json", "--smoke"):
        assert option in proc.stdout


@pytest.mark.skipif(
    os.environ.get("FATOOLS_BENCH_SMOKE") != "1", reason="set FATOOLS_BENCH_SMOKE=1 (about 30 s)"
)
def test_speed_smoke_runs_both_sides(tmp_path: Path, mnet_weights: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [*SPEED, "--smoke", "--work", str(tmp_path), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    sides = result["cases"]["mnet"]["sides"]
    assert set(sides) == {"seed", "exact", "default"}
    for name, row in sides.items():
        assert row["frames"] == 2, name
        assert row["faces"] >= 6, name  # 4 real faces per frame (a border face may come and go)
        assert row["fps_median"] > 0
    assert sides["exact"]["overhead_median"] >= 1.0
    assert "fatools / ffmpeg" in result["decode"]
    assert "targets" in result


def test_summary_ratios_and_ceiling_per_round() -> None:
    """Ratios are medians of per-round ratios; the ceiling is the seed's wall over the side's model time."""

    def run(side: str, r: int, wall: float, forward: float) -> dict:
        return {
            "side": side,
            "round": r,
            "wall_s": wall,
            "frames": 10,
            "faces": 40,
            "faces_per_frame": [4] * 10,
            "fps": 10 / wall,
            "faces_per_s": 40 / wall,
            "forward_s": forward,
            "overhead": wall / forward,
            "stages": {},
        }

    runs = [
        run("seed", 0, 20.0, 16.0),
        run("default", 0, 12.5, 12.0),
        run("seed", 1, 30.0, 24.0),
        run("default", 1, 15.0, 14.0),
        run("seed", 2, 21.0, 17.0),
        run("default", 2, 14.0, 10.0),
    ]
    sides = report.summarise(runs, ["seed", "default"], 3)["sides"]
    default = sides["default"]
    assert default["speedup_per_round"] == [1.6, 2.0, 1.5]
    assert default["speedup_median"] == 1.6
    # 20/12, 30/14, 21/10: the median is 2.1 (round 3), not a ratio of medians.
    assert default["speedup_ceiling_median"] == 2.1
    printed = report.table(
        {
            "machine": {"cpu": "x", "cores": 2},
            "date": "d",
            "device": "cpu",
            "targets": {},
            "cases": {"mnet": {"description": "t", "sides": sides}},
        }
    )
    default_row = next(line for line in printed.splitlines() if line.startswith("default"))
    assert default_row.split()[1:3] == ["0.714", "1.60x"] and default_row.endswith("2.10x")
