"""GPU figures that benchmarks.speed does not give: batch sizes by measurement, the
25-face photo as faces per second, peak GPU memory, and the models' FLOPs at fa-run's
rate as a fraction of the GPU's peak.

    python -m benchmarks.gpu.measure --store TWIN_STORE --photos DIR [--device cuda]
                                     [--speed-json speed.json] [--json OUT] [--quick]

Every figure is measured on fa-run's own code (``fatools.run.VideoAnalyzer``) with the
compute twins of facetorch's models and the real RetinaFace-MobileNet0.25 (the store
``benchmarks.twins`` writes).  Each part is guarded: one that fails is reported with its
error and the others still run.  ``--quick`` shrinks every size, for a rehearsal on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

# Dense peak rates (FLOP/s) by GPU name, from the vendors' data sheets: half precision on
# tensor cores, float32 without them.  Unknown GPUs get no fraction.
PEAKS = {
    "H200": {"fp16": 989.4e12, "fp32": 66.9e12},
    "H100": {"fp16": 989.4e12, "fp32": 66.9e12},
    "A100": {"fp16": 312e12, "fp32": 19.5e12},
    "L40S": {"fp16": 362e12, "fp32": 91.6e12},
    "T4": {"fp16": 65e12, "fp32": 8.1e12},
}


def guarded(results: dict, name: str, part: Callable[[], Any]) -> None:
    started = time.monotonic()
    print(f"measure: {name}", file=sys.stderr, flush=True)
    try:
        results[name] = part()
    except Exception as exc:
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
    results.setdefault("seconds", {})[name] = round(time.monotonic() - started, 1)


def analyzer(store: Path, device: str, **options: Any):
    from fatools.run import VideoAnalyzer, run_options

    return VideoAnalyzer(
        run_options(
            every=1,
            detector="retinaface-mnet",
            device=device,
            models_dir=str(store),
            formats=["csv"],
            progress=False,
            **options,
        )
    )


def timed_run(an, path: str, out: Path) -> tuple[float, int, int]:
    """Seconds, frames and faces of one fa-run analysis (records file, summary and csv written)."""
    import torch

    if an.detector.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = an.analyze(path, out)
    if an.detector.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    frames = faces = 0
    with open(result.files["records"][0], "rb") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("type", "frame") == "frame":
                frames += 1
                faces += len(record.get("faces") or [])
    return seconds, frames, faces


def batch_sweep(an, clip: str, work: Path, detect_batches: list[int], face_batches: list[int]) -> dict:
    """fa-run frames/s at each detector batch (face batch as chosen), then at each face batch."""
    chosen = dict(an.predictors.face_batches)
    base = an.options
    out: dict[str, Any] = {
        "detect_batch": {},
        "face_batch": {},
        "defaults": {"detect_batch": base.detect_batch, "face_batch": chosen},
    }
    timed_run(an, clip, work / "warm")  # cuDNN's algorithm search and the allocator settle first
    for size in detect_batches:
        an.options = replace(base, detect_batch=size)
        seconds, frames, _ = timed_run(an, clip, work / f"d{size}")
        out["detect_batch"][size] = round(frames / seconds, 2)
    an.options = base
    for size in face_batches:
        an.predictors.face_batches = dict.fromkeys(chosen, size)
        seconds, frames, _ = timed_run(an, clip, work / f"f{size}")
        out["face_batch"][size] = round(frames / seconds, 2)
    an.predictors.face_batches = chosen
    out["best_detect_batch"] = max(out["detect_batch"], key=out["detect_batch"].get)
    out["best_face_batch"] = max(out["face_batch"], key=out["face_batch"].get)
    return out


def faces_per_second(an, photos: Path, copies: int, work: Path) -> dict:
    """fa-run on a folder of ``copies`` of the 25-face photo: faces per second."""
    folder = work / "grid25"
    folder.mkdir(exist_ok=True)
    for i in range(copies):
        link = folder / f"grid25-{i:03d}.jpg"
        if not link.exists():
            os.symlink(photos / "grid25.jpg", link)
    timed_run(an, str(folder), work / "grid-warm")
    seconds, frames, faces = timed_run(an, str(folder), work / "grid")
    return {
        "images": frames,
        "faces": faces,
        "seconds": round(seconds, 3),
        "faces_per_s": round(faces / seconds, 1),
        "images_per_s": round(frames / seconds, 2),
    }


def peak_memory(an, clip: str, work: Path) -> dict:
    import torch

    if an.detector.device.type != "cuda":
        return {"skipped": "not on CUDA"}
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    timed_run(an, clip, work / "memory")
    gib = 1024**3
    return {
        "max_allocated_gib": round(torch.cuda.max_memory_allocated() / gib, 3),
        "max_reserved_gib": round(torch.cuda.max_memory_reserved() / gib, 3),
        "detect_batch": an.options.detect_batch,
        "face_batch": dict(an.predictors.face_batches),
    }


def flops(an, faces_per_frame: int, width: int, height: int) -> dict:
    """FLOPs of each model for one sampled frame of fa-run defaults (torch's FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fatools.geometry import detector_geometry

    device = an.detector.device
    geo = detector_geometry(width, height, an.options.detect.det_size, an.options.detect.square_pad)
    shapes = {
        "detector": (
            an.detector.face_detector,
            an.detector.input_format,
            (1, 3, geo.det_height, geo.det_width),
        )
    }
    for task, predictor in an.predictors.predictors.items():
        size = an.predictors.sizes[task]
        shapes[task] = (predictor, an.predictors.input_formats[task], (1, 3, size, size))
    out: dict[str, Any] = {}
    for name, (owner, fmt, shape) in shapes.items():
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            owner.model(fmt.apply(torch.zeros(shape, device=device)))
        out[name] = counter.get_total_flops()
    per_frame = out["detector"] + faces_per_frame * sum(v for k, v in out.items() if k != "detector")
    return {
        "per_model_gflop": {k: round(v / 1e9, 3) for k, v in out.items()},
        "faces_per_frame": faces_per_frame,
        "per_frame_gflop": round(per_frame / 1e9, 3),
    }


def gpu_rate(report: dict, speed_json: Path | None) -> dict:
    """The models' FLOP/s at fa-run's measured frames/s, against the GPU's peak."""
    import torch

    if speed_json is None or not speed_json.is_file() or "flops" not in report or "error" in report["flops"]:
        return {"skipped": "needs --speed-json and the flop count"}
    speed = json.loads(speed_json.read_text())
    rates = {}
    for side, row in speed.get("cases", {}).get("mnet", {}).get("sides", {}).items():
        fps = row.get("fps_median") if isinstance(row, dict) else None
        if fps:
            rates[side] = fps
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAKS.items() if k in name), None)
    per_frame = report["flops"]["per_frame_gflop"] * 1e9
    out = {"gpu": name, "peak": peak, "sides": {}}
    for side, fps in rates.items():
        achieved = fps * per_frame
        out["sides"][side] = {"frames_per_s": fps, "tflop_per_s": round(achieved / 1e12, 3)}
        if peak:
            key = "fp16" if "fp16" in side else "fp32"
            out["sides"][side][f"fraction_of_{key}_peak"] = round(achieved / peak[key], 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu.measure", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--store", type=Path, required=True, help="the twin store (python -m benchmarks.twins DIR)"
    )
    parser.add_argument("--photos", type=Path, required=True, help="folder with grid25.jpg and family4.jpg")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--speed-json", type=Path, help="benchmarks.speed's --json of the same run (for the FLOP rate)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a rehearsal on a CPU")
    args = parser.parse_args(argv)

    from fatools.sample import pan_zoom_clip

    work = Path(tempfile.mkdtemp(prefix="fatools-gpu-measure-"))
    frames = 6 if args.quick else 96
    clip = work / "family4-1080p.mp4"
    pan_zoom_clip(str(args.photos / "family4.jpg"), str(clip), seconds=frames / 24, fps=24, size=(1920, 1080))
    report: dict[str, Any] = {
        "device": args.device,
        "clip": {"frames": frames, "size": "1920x1080", "every": 1},
    }
    an = analyzer(args.store, args.device)
    report["chosen_batches"] = {
        "detect_batch": an.options.detect_batch or "default",
        "face_batch": dict(an.predictors.face_batches),
    }
    detect_sizes = [1, 2] if args.quick else [4, 8, 16, 32, 64]
    face_sizes = [4, 8] if args.quick else [16, 32, 64, 128, 256]
    guarded(report, "batch_sweep", lambda: batch_sweep(an, str(clip), work, detect_sizes, face_sizes))
    guarded(report, "grid25", lambda: faces_per_second(an, args.photos, 2 if args.quick else 40, work))
    guarded(report, "peak_memory", lambda: peak_memory(an, str(clip), work))
    guarded(report, "flops", lambda: flops(an, 4, 1920, 1080))
    guarded(report, "gpu_rate", lambda: gpu_rate(report, args.speed_json))
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
