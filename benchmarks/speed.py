"""facetorch's way against fa-run, side by side, on the same clip, sampling and models.

    python -m benchmarks.speed [--quick] [--device cpu|cuda] [--json FILE]
                               [--every N] [--fp16] [--int8] [--profile FILE]

Sides, run alternately in one process (the order rotates every round, so machine
drift falls on every side alike):

* ``seed``: what the seed tool did: OpenCV reads every frame, every 5th (``--every``)
  goes, as an RGB array, through
  ``facetorch.FaceAnalyzer.run(fix_img_size=True, batch_size=8)`` with fatools'
  facetorch configuration (facetorch's reader, detector, unifier, predictors and align
  utilizer);
* ``exact``: fa-run (``fatools.run.VideoAnalyzer``) with ``--facetorch-exact``;
* ``default``: fa-run with its defaults (no square padding; faces cropped from the
  original frame), detecting at the same scale (longer side 1080);
* ``default-fp16`` (only with ``--fp16``): the defaults with fp16 models
  (``DetectOptions(half=True)``, ``PredictOptions(half=True)``; meant for CUDA);
* ``default-int8`` (only with ``--int8``): the defaults with the AU model's Linear
  layers in int8 (``PredictOptions(int8=True)``, fa-run ``--int8``; CPU only).

All sides use the same models: compute twins of facetorch's defaults
(``benchmarks.twins``: random weights, real architectures and input sizes) and the real
RetinaFace-MobileNet0.25 detector; then the detector-bound case with the ResNet-50
RetinaFace twin (not with ``--quick``, which keeps to 3 minutes on 2 cores).  The clip
is a 1920x1080 H.264 pan and zoom over ``../shared/testdata/faces/family4.jpg`` (4 real
faces in every frame).

Reported: sampled frames per second of each side and the ratios fa-run/seed (median
over the rounds); fa-run's wall time against the sum of its models' forward time in
the same run (pipeline overhead) and the ratio it would reach if its models were all it
ran (ceiling); where the time goes on each side; decode-and-sample
time against ``ffmpeg -i CLIP -f null -``; peak RSS of fa-run on a 1-minute and a
10-minute low-resolution clip (``benchmarks/memory.py``).  On CUDA also the GPU
targets (fa-run's frames/s with ``--every 1``, its ratio to the seed, and with sparse
sampling how close it comes to the decode-bound rate).  ``--profile FILE`` runs the
``default`` side once more under ``torch.profiler`` and writes its table and a Chrome
trace.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import memory
from benchmarks.report import decode_bound, machine, nth, table, targets
from benchmarks.sides import (
    DETECTORS,
    EVERY,
    MNET_PTH,
    PHOTO,
    decode_benchmark,
    make_clip,
    run_case,
    smoke_store,
    twin_store,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Figures and how to read them: benchmarks/README.md.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 frames per run, no ResNet-50 case, sparse memory runs: under 3 minutes on 2 cores",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long end-to-end check on a 2-frame 640x360 clip with stand-in predictors",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", type=Path, help="write every figure and raw run here")
    parser.add_argument(
        "--frames", type=int, help="sampled frames per run, MobileNet case (default 10; quick 3)"
    )
    parser.add_argument("--rounds", type=int, help="alternating rounds, MobileNet case (default 3)")
    parser.add_argument(
        "--r50",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the ResNet-50 (detector-bound) case (default: yes, but not with --quick or --smoke)",
    )
    parser.add_argument("--r50-frames", type=int, help="sampled frames per run, ResNet-50 case (default 3)")
    parser.add_argument("--r50-rounds", type=int, help="rounds, ResNet-50 case (default 3)")
    parser.add_argument(
        "--every",
        type=int,
        default=EVERY,
        metavar="N",
        help=f"analyse every Nth frame of the clip, on every side and in the decode benchmark "
        f"(default {EVERY}; 1: every frame, the GPU throughput target); clips are "
        f"frames x N long",
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="add a fourth side to every case, default-fp16: fa-run defaults with "
        "DetectOptions(half=True) and PredictOptions(half=True) (meant for CUDA; slow on CPU)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="add a side to every case, default-int8: fa-run defaults with PredictOptions(int8=True) "
        "(the AU model's Linear layers in int8; CPU only; changes AU outputs, opt-in in fa-run)",
    )
    parser.add_argument(
        "--torch",
        action="store_true",
        help="add a side to every case, default-torch: fa-run defaults with --backend torch "
        "(what the ONNX Runtime backend gains, side by side)",
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="add a side to every case, default-bf16: fa-run defaults with --bf16 (predictors in "
        "bfloat16 on torch; only where the CPU has AMX or AVX512_BF16, else it equals torch fp32)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="after the MobileNet case's timed rounds, run the default side once more under "
        "torch.profiler (CPU, and CUDA on cuda): key averages table (sorted by CUDA time on "
        "cuda, else CPU time; 30 rows) to FILE, Chrome trace to FILE with suffix .trace.json",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS runs")
    parser.add_argument("--memory-every", type=int, help="sampling of the memory runs (default 5; quick 100)")
    parser.add_argument(
        "--store", type=Path, help="twin model store (default ~/.cache/fatools/bench/twin-store)"
    )
    parser.add_argument("--work", type=Path, help="where clips are kept (default ~/.cache/fatools/bench)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be 1 or more")
    every = args.every

    if not PHOTO.is_file() or not MNET_PTH.is_file():
        print(
            f"speed.py: error: needs {PHOTO} and {MNET_PTH} (../shared beside the checkout, or FATOOLS_SHARED)",
            file=sys.stderr,
        )
        return 1
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("speed.py: error: --device cuda but CUDA is not available here", file=sys.stderr)
            return 1
    quick = args.quick or args.smoke
    frames = args.frames or (2 if args.smoke else 3 if quick else 10)
    rounds = args.rounds or (1 if args.smoke else 3)
    # Sampled frames of the warm-up run: TorchScript profiles a model's first call and
    # optimises on its second, so every model needs two calls before the timed runs.
    warm = 1 if args.smoke else 2
    r50_frames = args.r50_frames or 3
    r50_rounds = args.r50_rounds or 3
    with_r50 = (args.r50 if args.r50 is not None else not quick) and not args.smoke
    with_memory = not (args.no_memory or args.smoke)
    work = args.work or memory.default_work_dir()
    started = time.monotonic()

    detectors = ["mnet"] + (["r50"] if with_r50 else [])
    store = smoke_store(work) if args.smoke else twin_store(args.store, detectors)
    size = (640, 360) if args.smoke else (1920, 1080)
    clip = make_clip(work, frames * every, size, "main")
    warm_clip = make_clip(work, warm * every, size, "warm")
    result: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": args.device,
        "machine": machine(),
        "mode": "smoke" if args.smoke else "quick" if quick else "full",
        "store": str(store),
        "models": "stand-in predictors (smoke)" if args.smoke else "compute twins (benchmarks.twins)",
        "clip": {
            "path": str(clip),
            "size": f"{size[0]}x{size[1]}",
            "frames": frames * every,
            "every": every,
            "sampled": frames,
        },
        "cases": {},
        "phases_s": {"setup (twins, clips)": round(time.monotonic() - started, 1)},
    }

    def phase(name: str, since: float) -> None:
        result["phases_s"][name] = round(time.monotonic() - since, 1)

    sampling = "" if every == EVERY else f" ({nth(every)})"
    mark = time.monotonic()
    peak = None
    if not args.device.startswith("cuda"):
        import torch

        from benchmarks.rates import gemm_peak

        result["gemm"] = gemm_peak(torch.get_num_threads())
        peak = result["gemm"]["peak_gflops"]
        phase("gemm peak", mark)
        mark = time.monotonic()
    extra = {"torch_side": args.torch, "bf16": args.bf16, "peak": peak}
    result["cases"]["mnet"] = run_case(
        "mnet",
        DETECTORS["mnet"],
        store,
        args.device,
        clip,
        warm_clip,
        rounds,
        f"real RetinaFace-MobileNet0.25, {frames} sampled frames{sampling}, {rounds} rounds",
        every=every,
        fp16=args.fp16,
        int8=args.int8,
        profile=args.profile,
        **extra,
    )
    if "profile" in result["cases"]["mnet"]:
        result["profile"] = result["cases"]["mnet"].pop("profile")
    phase("mnet case", mark)
    if args.json:  # what is measured so far, in case a later part fails
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    mark = time.monotonic()
    result["decode"] = decode_benchmark(clip, 3, every)
    if args.device.startswith("cuda") and every > 1:
        result["decode_bound"] = decode_bound(result)
    phase("decode", mark)
    mark = time.monotonic()
    if with_r50:
        r50_clip = make_clip(work, r50_frames * every, size, "main")
        result["cases"]["r50"] = run_case(
            "r50",
            DETECTORS["r50"],
            store,
            args.device,
            r50_clip,
            warm_clip,
            r50_rounds,
            f"RetinaFace-ResNet-50 twin (detector-bound), {r50_frames} sampled frames{sampling}, {r50_rounds} rounds",
            every=every,
            fp16=args.fp16,
            int8=args.int8,
            **extra,
        )
        phase("r50 case", mark)
        mark = time.monotonic()
    if with_memory:
        print("memory: fa-run on the 1-minute and 10-minute low-resolution clips", file=sys.stderr)
        every = args.memory_every or (100 if quick else 5)
        result["memory"] = memory.measure(every, work, twins=None if quick else store)
        phase("memory", mark)
    result["targets"] = targets(result)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(table(result))
    print(f"\n(total {result['elapsed_s']:.0f} s)")
    if "profile" in result:
        prof = result["profile"]
        print(
            f"profile of fa-run {prof['side']} (MobileNet case, one more run under torch.profiler, "
            f"{prof['wall_s_profiled']:.2f} s): table {prof['table']}, Chrome trace {prof['trace']}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
