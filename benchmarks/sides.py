"""The sides of the speed benchmark (facetorch's per-frame way, as the seed ran it, and
fa-run through its Python API), the stores and clips they run on, and decoding alone."""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks import memory
from benchmarks.instrument import Clock, instrument_models, sync_for, time_method
from benchmarks.report import fatools_decode_label, nth, summarise

PHOTO = memory.PHOTO
MNET_PTH = memory.MNET_PTH
TASKS = ["au", "fer", "va", "align"]
EVERY = 5  # default sampling (--every): every 5th frame
FPS = 25
DETECTORS = {"mnet": "retinaface-mnet", "r50": "retinaface"}


def twin_store(path: Path | None, detectors: list[str]) -> Path:
    """A model store with the twins (built once, reused while complete)."""
    from benchmarks import twins

    store = path or memory.default_work_dir() / "twin-store"
    wanted = TASKS + ["align-meta"] + [DETECTORS[d] for d in detectors]
    if not twins.is_twin_store(store, wanted):
        print(f"building compute twins into {store} (once; about half a minute)", file=sys.stderr)
        which = "both" if len(detectors) > 1 else detectors[0]
        twins.build_twins(store, which, MNET_PTH)
    return store


def smoke_store(work: Path) -> Path:
    """Stand-in predictors and the real MobileNet0.25: --smoke runs both sides in seconds."""
    return memory.standin_store(work)


def make_clip(work: Path, frames: int, size: tuple[int, int], tag: str) -> Path:
    """A pan/zoom clip over family4.jpg with ``frames`` frames (made once per shape)."""
    from fatools.sample import pan_zoom_clip

    work.mkdir(parents=True, exist_ok=True)
    path = work / f"family4-{size[0]}x{size[1]}-{frames}f-{tag}.mp4"
    if not path.is_file():
        tmp = work / f".{path.name}.tmp.mp4"
        pan_zoom_clip(str(PHOTO), str(tmp), seconds=frames / FPS, fps=FPS, size=size)
        os.replace(tmp, path)
    return path


class SeedSide:
    """facetorch's FaceAnalyzer.run on every 5th (``every``) frame that OpenCV reads, as the seed did."""

    name = "seed"

    def __init__(self, detector: str, store: Path, device: str, clock: Clock, every: int = EVERY) -> None:
        import facetorch

        from fatools.models.config import load_config

        cfg = load_config(None, device=device, tasks=TASKS, detector=detector, root=store)
        self.analyzer = facetorch.FaceAnalyzer(cfg.analyzer)
        self.clock = clock
        self.every = every
        self.models = instrument_models(self.analyzer, clock)
        an = self.analyzer
        time_method(an.reader, "run", clock, "reader (pad+resize)")
        time_method(an.detector, "run", clock, "detector.run")
        time_method(an.unifier, "run", clock, "unifier (380 px)")
        for task, predictor in an.predictors.items():
            time_method(predictor, "run", clock, f"predictor.run {task}")
        for task, utilizer in an.utilizers.items():
            time_method(utilizer, "run", clock, f"utilizer {task}")

    def run(self, clip: Path) -> dict:
        import cv2

        counts = []
        capture = cv2.VideoCapture(str(clip))
        index = 0
        decode = 0.0
        try:
            while True:
                start = time.perf_counter()
                ok, frame = capture.read()
                if not ok:
                    break
                if index % self.every == 0:
                    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    decode += time.perf_counter() - start
                    response = self.analyzer.run(image_source=rgb, fix_img_size=True, batch_size=8)
                    counts.append(len(response.faces))
                else:
                    decode += time.perf_counter() - start
                index += 1
        finally:
            capture.release()
        self.clock.add("decode (OpenCV, every frame)", decode)
        return {"faces_per_frame": counts}


class FaRunSide:
    """fa-run through its Python API, writing frames.jsonl, summary.json and the JSON export."""

    def __init__(
        self,
        name: str,
        detector: str,
        store: Path,
        device: str,
        clock: Clock,
        exact: bool,
        every: int = EVERY,
        half: bool = False,
        int8: bool = False,
        backend: str = "auto",
        bf16: bool = False,
    ) -> None:
        from fatools.run import VideoAnalyzer, run_options

        self.name = name
        options = run_options(
            every=every,
            detector=detector,
            facetorch_exact=exact,
            fp16=half,
            int8=int8,
            backend=backend,
            bf16=bf16,
            device=device,
            models_dir=str(store),
            formats=["json"],
            progress=False,
        )
        self.analyzer = VideoAnalyzer(options)
        self.clock = clock
        self.models = instrument_models(self.analyzer, clock)
        # Totals of the detection and prediction stages, where fatools exposes them.
        time_method(
            getattr(self.analyzer, "detector", None), "detect_with_inputs", clock, "detect (pre+model+post)"
        )
        time_method(getattr(self.analyzer, "predictors", None), "predict", clock, "predict (crops+models)")

    def run(self, clip: Path) -> dict:
        out = Path(tempfile.mkdtemp(prefix="fatools-speed-"))
        try:
            self.analyzer.analyze(str(clip), out)
            counts = []
            with open(out / "frames.jsonl", encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    if record.get("type", "frame") == "frame":
                        counts.append(len(record.get("faces") or []))
            return {"faces_per_frame": counts}
        finally:
            shutil.rmtree(out, ignore_errors=True)


def timed_run(side: Any, clip: Path) -> dict:
    side.clock.reset()
    side.clock.sync()
    start = time.perf_counter()
    result = side.run(clip)
    side.clock.sync()
    wall = time.perf_counter() - start
    stats = side.clock.snapshot()
    forward = sum(stats[m]["seconds"] for m in set(side.models) if m in stats)
    frames = len(result["faces_per_frame"])
    return {
        "side": side.name,
        "wall_s": round(wall, 3),
        "frames": frames,
        "faces": sum(result["faces_per_frame"]),
        "faces_per_frame": result["faces_per_frame"],
        "fps": round(frames / wall, 4) if wall else None,
        "faces_per_s": round(sum(result["faces_per_frame"]) / wall, 4) if wall else None,
        "forward_s": round(forward, 3),
        "overhead": round(wall / forward, 3) if forward else None,
        "stages": stats,
    }


def compare(sides: list[Any], clip: Path, warm_clip: Path, rounds: int, label: str) -> dict:
    """Warm every side up, then ``rounds`` rounds, the order rotating each round."""
    for side in sides:
        print(f"  [{label}] warm-up {side.name}", file=sys.stderr)
        timed_run(side, warm_clip)
    runs: list[dict] = []
    for r in range(rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]
        for side in order:
            result = timed_run(side, clip)
            result["round"] = r
            runs.append(result)
            print(
                f"  [{label}] round {r + 1}/{rounds} {side.name:8s} {result['wall_s']:8.2f} s "
                f"{result['fps']:.3f} frames/s, {result['faces']} faces",
                file=sys.stderr,
            )
    return summarise(runs, [s.name for s in sides], rounds)


def profile_side(side: Any, clip: Path, device: str, path: Path) -> dict:
    """One more run of ``side`` under torch.profiler: its key averages as a table in ``path``
    and a Chrome trace beside it (``path`` with the suffix ``.trace.json``)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort_by = "cuda_time_total" if cuda else "cpu_time_total"
    print(
        f"  profiling {side.name} under torch.profiler ({', '.join(a.name for a in activities)})",
        file=sys.stderr,
    )
    side.clock.sync()
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        side.run(clip)
        side.clock.sync()
    wall = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(prof.key_averages().table(sort_by=sort_by, row_limit=30) + "\n", encoding="utf-8")
    trace = path.with_suffix(".trace.json")
    prof.export_chrome_trace(str(trace))
    print(f"  wrote {path} (table, by {sort_by}) and {trace} (Chrome trace)", file=sys.stderr)
    return {
        "side": side.name,
        "table": str(path),
        "trace": str(trace),
        "sort_by": sort_by,
        "wall_s_profiled": round(wall, 3),
    }


def run_case(
    key: str,
    detector: str,
    store: Path,
    device: str,
    clip: Path,
    warm_clip: Path,
    rounds: int,
    description: str,
    every: int = EVERY,
    fp16: bool = False,
    int8: bool = False,
    profile: Path | None = None,
    torch_side: bool = False,
    bf16: bool = False,
    peak: float | None = None,
) -> dict:
    """The sides on one detector; with ``profile``, the default side once more under torch.profiler."""
    clock = Clock(sync=sync_for(device))
    print(f"loading the models for {key}", file=sys.stderr)
    sides = [
        SeedSide(detector, store, device, clock, every),
        FaRunSide("exact", detector, store, device, clock, exact=True, every=every),
        FaRunSide("default", detector, store, device, clock, exact=False, every=every),
    ]
    if fp16:
        sides.append(
            FaRunSide("default-fp16", detector, store, device, clock, exact=False, every=every, half=True)
        )
    if int8:
        sides.append(
            FaRunSide("default-int8", detector, store, device, clock, exact=False, every=every, int8=True)
        )
    if torch_side:
        sides.append(
            FaRunSide(
                "default-torch", detector, store, device, clock, exact=False, every=every, backend="torch"
            )
        )
    if bf16:
        sides.append(
            FaRunSide("default-bf16", detector, store, device, clock, exact=False, every=every, bf16=True)
        )
    case = compare(sides, clip, warm_clip, rounds, key)
    case["description"] = description
    case["models_timed"] = {side.name: sorted(set(side.models)) for side in sides}
    case["rates"] = side_rates(sides, case, clip, peak)
    if profile is not None:
        default = next(side for side in sides if side.name == "default")
        case["profile"] = profile_side(default, clip, device, profile)
    del sides
    gc.collect()
    return case


def side_rates(sides: list[Any], case: dict, clip: Path, peak: float | None) -> dict:
    """Each fa-run side's models' achieved GFLOP/s (benchmarks.rates) over its median stages."""
    import cv2

    from benchmarks import rates

    capture = cv2.VideoCapture(str(clip))
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    out = {}
    for side in sides:
        if isinstance(side, FaRunSide):
            gflop = rates.model_gflop(side.analyzer, width, height)
            out[side.name] = rates.achieved(case["sides"][side.name]["stages_median"], gflop, peak)
    return out


def decode_benchmark(clip: Path, repeats: int, every: int = EVERY) -> dict:
    """fatools' decode-and-sample, the seed's OpenCV loop, and ``ffmpeg -f null``, alternating."""
    import cv2

    from fatools.video import Sampling, iter_frames

    def fatools_decode() -> int:
        return sum(1 for _ in iter_frames(str(clip), Sampling(every=every), want_pixels=True))

    def opencv_decode() -> int:
        capture = cv2.VideoCapture(str(clip))
        kept = index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                kept += 1
            index += 1
        capture.release()
        return kept

    def ffmpeg_null() -> int:
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(clip), "-f", "null", "-"], check=True)
        return 0

    times: dict[str, list[float]] = defaultdict(list)
    fatools_label = fatools_decode_label(every)
    steps = [
        (fatools_label, fatools_decode),
        (f"seed OpenCV read (every frame) + RGB of {nth(every)}", opencv_decode),
    ]
    if shutil.which("ffmpeg"):  # the CLI is a reference point, not a requirement
        steps.append(("ffmpeg -i CLIP -f null -", ffmpeg_null))
    for _ in range(repeats):
        for name, fn in steps:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    result = {name: round(statistics.median(values), 3) for name, values in times.items()}
    ffmpeg = result["ffmpeg -i CLIP -f null -"]
    result["fatools / ffmpeg"] = round(result[fatools_label] / ffmpeg, 3)
    return result
