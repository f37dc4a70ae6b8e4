"""facetorch's way against fa-run, side by side, on the same clip, sampling and models.

    python benchmarks/speed.py [--quick] [--device cpu|cuda] [--json FILE]
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
(``fatools.twins``: random weights, real architectures and input sizes) and the real
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
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import memory  # benchmarks/memory.py, beside this file (hence after the sys.path insert)

PHOTO = memory.PHOTO
MNET_PTH = memory.MNET_PTH
TASKS = ["au", "fer", "va", "align"]
EVERY = 5  # default sampling (--every): every 5th frame
FPS = 25
DETECTORS = {"mnet": "retinaface-mnet", "r50": "retinaface"}
TARGETS = {
    "overhead": 1.15,  # fa-run wall / sum of model forward time, at most
    "speedup_exact": 1.2,  # fa-run --facetorch-exact / seed, at least
    "speedup_default": 1.6,  # fa-run defaults / seed, at least
    "memory": 1.10,  # 10-minute / 1-minute peak RSS, at most
}
GPU_TARGETS = {  # evaluated on CUDA only
    "fps_every_frame": 200.0,  # fa-run defaults, sampled frames/s with --every 1, at least
    "speedup": 20.0,  # fa-run defaults / seed on the same GPU, at least
    "decode_bound": 0.9,  # fa-run frames/s / iter_frames' sampled frames/s (--every > 1), at least
}

# --------------------------------------------------------------------------- timing


@dataclass
class Stat:
    seconds: float = 0.0
    calls: int = 0
    items: int = 0


@dataclass
class Clock:
    """Accumulated seconds per label, for one timed run."""

    stats: dict[str, Stat] = field(default_factory=lambda: defaultdict(Stat))
    sync: Callable[[], None] = lambda: None

    def reset(self) -> None:
        self.stats = defaultdict(Stat)

    def add(self, label: str, seconds: float, items: int = 0) -> None:
        stat = self.stats[label]
        stat.seconds += seconds
        stat.calls += 1
        stat.items += items

    def snapshot(self) -> dict[str, dict]:
        return {k: {"seconds": round(v.seconds, 4), "calls": v.calls, "items": v.items} for k, v in self.stats.items()}


class _TimedModel:
    """Stands in for a facetorch model's ``.model`` (the TorchScript module): times each forward."""

    def __init__(self, module: Any, clock: Clock, label: str) -> None:
        self._module, self._clock, self._label = module, clock, label

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self._clock.sync()
        start = time.perf_counter()
        out = self._module(x, *args, **kwargs)
        self._clock.sync()
        self._clock.add(self._label, time.perf_counter() - start, int(getattr(x, "shape", [0])[0]))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _find_models(root: Any, depth: int = 5) -> list[Any]:
    """Every facetorch BaseModel (detector, predictors) reachable from ``root``'s attributes."""
    import numpy as np
    import torch
    from facetorch.base import BaseModel
    from omegaconf import DictConfig, ListConfig

    found: list[Any] = []
    seen: set[int] = set()

    def walk(obj: Any, left: int) -> None:
        if left < 0 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, BaseModel):
            found.append(obj)
            return
        if isinstance(obj, (torch.nn.Module, torch.Tensor, np.ndarray, DictConfig, ListConfig, type, str, bytes)):
            return
        if isinstance(obj, dict):
            children = list(obj.values())
        elif isinstance(obj, (list, tuple)):
            children = list(obj)
        elif hasattr(obj, "__dict__"):
            children = list(vars(obj).values())
        else:
            return
        for child in children:
            walk(child, left - 1)

    walk(root, depth)
    return found


def instrument_models(root: Any, clock: Clock) -> list[str]:
    """Time every model forward under ``root``; labels are the store names (``au``, ``retinaface-mnet``...)."""
    labels = []
    for model in _find_models(root):
        if isinstance(model.model, _TimedModel):
            continue
        label = Path(str(model.path_local)).parent.name
        model.model = _TimedModel(model.model, clock, label)
        labels.append(label)
    return labels


def time_method(obj: Any, name: str, clock: Clock, label: str, items: Callable[[Any], int] | None = None) -> bool:
    """Wrap ``obj.name`` (an instance method) to add its wall time to ``clock[label]``; False if absent."""
    method = getattr(obj, name, None)
    if method is None or not callable(method):
        return False

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            clock.add(label, time.perf_counter() - start, items(args[0]) if items and args else 0)

    setattr(obj, name, timed)
    return True


def _sync_for(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


# --------------------------------------------------------------------------- inputs


def twin_store(path: Path | None, detectors: list[str]) -> Path:
    """A model store with the twins (built once, reused while complete)."""
    from fatools import twins

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


# --------------------------------------------------------------------------- the sides


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

    def __init__(self, name: str, detector: str, store: Path, device: str, clock: Clock, exact: bool,
                 every: int = EVERY, half: bool = False, int8: bool = False) -> None:
        from fatools.detect import DetectOptions
        from fatools.predict import PredictOptions
        from fatools.run import RunOptions, VideoAnalyzer
        from fatools.video import Sampling

        self.name = name
        options = RunOptions(
            sampling=Sampling(every=every),
            detector=detector,
            detect=DetectOptions(square_pad=exact, half=half),
            predict=PredictOptions(facetorch_exact=exact, half=half, int8=int8),
            device=device,
            models_dir=str(store),
            formats=("json",),
            progress=False,
        )
        self.analyzer = VideoAnalyzer(options)
        self.clock = clock
        self.models = instrument_models(self.analyzer, clock)
        # Totals of the detection and prediction stages, where fatools exposes them.
        time_method(getattr(self.analyzer, "detector", None), "detect_with_inputs", clock, "detect (pre+model+post)")
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
        order = sides[r % len(sides):] + sides[: r % len(sides)]
        for side in order:
            result = timed_run(side, clip)
            result["round"] = r
            runs.append(result)
            print(f"  [{label}] round {r + 1}/{rounds} {side.name:8s} {result['wall_s']:8.2f} s "
                  f"{result['fps']:.3f} frames/s, {result['faces']} faces", file=sys.stderr)
    return summarise(runs, [s.name for s in sides], rounds)


def profile_side(side: Any, clip: Path, device: str, path: Path) -> dict:
    """One more run of ``side`` under torch.profiler: its key averages as a table in ``path``
    and a Chrome trace beside it (``path`` with the suffix ``.trace.json``)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort_by = "cuda_time_total" if cuda else "cpu_time_total"
    print(f"  profiling {side.name} under torch.profiler ({', '.join(a.name for a in activities)})", file=sys.stderr)
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
    return {"side": side.name, "table": str(path), "trace": str(trace), "sort_by": sort_by,
            "wall_s_profiled": round(wall, 3)}


def summarise(runs: list[dict], names: list[str], rounds: int) -> dict:
    by = {(run["side"], run["round"]): run for run in runs}
    out: dict[str, Any] = {"runs": runs, "sides": {}}
    for name in names:
        mine = [by[(name, r)] for r in range(rounds)]
        out["sides"][name] = {
            "fps_median": round(statistics.median(run["fps"] for run in mine), 4),
            "faces_per_s_median": round(statistics.median(run["faces_per_s"] for run in mine), 4),
            "wall_s_median": round(statistics.median(run["wall_s"] for run in mine), 3),
            "frames": mine[0]["frames"],
            "faces": mine[0]["faces"],
            "overhead_median": _median([run["overhead"] for run in mine]),
            "stages_median": _median_stages([run["stages"] for run in mine]),
        }
    for name in names:
        if name == "seed":
            continue
        ratios = [by[(name, r)]["fps"] / by[("seed", r)]["fps"] for r in range(rounds)]
        out["sides"][name]["speedup_per_round"] = [round(x, 3) for x in ratios]
        out["sides"][name]["speedup_median"] = round(statistics.median(ratios), 3)
        # The ratio this side would reach if nothing but its models ran (no decoding, no
        # pre/post-processing, no tracking or writing): the models' own floor.
        ceilings = [by[(name, r)]["frames"] / by[(name, r)]["forward_s"] / by[("seed", r)]["fps"]
                    for r in range(rounds) if by[(name, r)]["forward_s"]]
        out["sides"][name]["speedup_ceiling_median"] = round(statistics.median(ceilings), 3) if ceilings else None
        # Per face too: a side that finds a face more or less does more or less work.
        per_face = [by[(name, r)]["faces_per_s"] / by[("seed", r)]["faces_per_s"] for r in range(rounds)]
        out["sides"][name]["speedup_per_face_median"] = round(statistics.median(per_face), 3)
        seed_counts = by[("seed", 0)]["faces_per_frame"]
        mine = by[(name, 0)]["faces_per_frame"]
        out["sides"][name]["frames_with_other_face_count_than_seed"] = sum(a != b for a, b in zip(seed_counts, mine))
    return out


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _median_stages(all_stats: list[dict]) -> dict:
    labels = sorted({label for stats in all_stats for label in stats})
    result = {}
    for label in labels:
        rows = [stats[label] for stats in all_stats if label in stats]
        result[label] = {
            "seconds": round(statistics.median(r["seconds"] for r in rows), 3),
            "calls": rows[0]["calls"],
            "items": rows[0]["items"],
        }
    return result


# --------------------------------------------------------------------------- decoding


def nth(every: int) -> str:
    """``every 5th``, ``every 2nd``, ``every frame``..."""
    if every == 1:
        return "every frame"
    suffix = "th" if every % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(every % 10, "th")
    return f"every {every}{suffix}"


def fatools_decode_label(every: int) -> str:
    return f"fatools iter_frames ({nth(every)}, BGR pixels)"


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
    for _ in range(repeats):
        for name, fn in ((fatools_label, fatools_decode),
                         (f"seed OpenCV read (every frame) + RGB of {nth(every)}", opencv_decode),
                         ("ffmpeg -i CLIP -f null -", ffmpeg_null)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    result = {name: round(statistics.median(values), 3) for name, values in times.items()}
    ffmpeg = result["ffmpeg -i CLIP -f null -"]
    result["fatools / ffmpeg"] = round(result[fatools_label] / ffmpeg, 3)
    return result


# --------------------------------------------------------------------------- report


def machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    with contextlib.suppress(Exception):  # metadata is a nicety
        from importlib.metadata import version

        info["facetorch"] = version("facetorch")
        info["fatools"] = version("fatools")
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:  # which fatools was measured: the commit, and whether its library had local changes
        head = subprocess.run(["git", "-C", str(HERE), "log", "-1", "--format=%h %cI"], check=False, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no", "--",
                                "../fatools"], check=False, capture_output=True, text=True, timeout=10).stdout.strip()
        if head:
            info["commit"] = head + (" + uncommitted changes in fatools/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def table(result: dict) -> str:
    lines = []
    gpu = f" ({result['machine']['gpu']})" if result["device"].startswith("cuda") and "gpu" in result["machine"] else ""
    lines.append(f"fatools speed benchmark, {result['date']}, {result['machine']['cpu']} "
                 f"({result['machine']['cores']} cores), device {result['device']}{gpu}, "
                 f"commit {result['machine'].get('commit', '?')}")
    for key, case in result["cases"].items():
        sides = case["sides"]
        width = max([10] + [len(name) + 2 for name in sides])
        lines.append("")
        lines.append(f"== {key}: {case['description']}")
        lines.append(f"{'side':<{width}}{'frames/s':>10}{'vs seed':>9}{'faces/s':>9}{'vs seed':>9}{'wall s':>9}"
                     f"{'faces':>7}{'overhead':>10}{'ceiling':>9}")
        for name, row in sides.items():
            speed = f"{row['speedup_median']:.2f}x" if "speedup_median" in row else ""
            per_face = f"{row['speedup_per_face_median']:.2f}x" if "speedup_per_face_median" in row else ""
            over = f"{row['overhead_median']:.2f}x" if row.get("overhead_median") else ""
            ceiling = f"{row['speedup_ceiling_median']:.2f}x" if row.get("speedup_ceiling_median") else ""
            lines.append(f"{name:<{width}}{row['fps_median']:>10.3f}{speed:>9}{row['faces_per_s_median']:>9.3f}{per_face:>9}"
                         f"{row['wall_s_median']:>9.2f}{row['faces']:>7}{over:>10}{ceiling:>9}")
        lines.append("  (overhead: wall time / sum of the models' forward time in the same run;")
        lines.append("   ceiling: the 'vs seed' ratio if the side's models were all it ran, median over rounds)")
        for name, row in sides.items():
            lines.append(f"  where {name}'s time goes (median seconds per run):")
            for label, stat in row["stages_median"].items():
                per = ""
                if stat["items"]:
                    unit = "frame" if label.startswith("retinaface") else "face"
                    per = f"  {1000 * stat['seconds'] / stat['items']:7.1f} ms/{unit}, {stat['calls']} calls"
                lines.append(f"    {label:<48}{stat['seconds']:8.2f}{per}")
    if "decode" in result:
        lines.append("")
        lines.append("== decoding the 1080p clip (median seconds)")
        for name, value in result["decode"].items():
            lines.append(f"  {name:<52}{value:8.3f}")
    if "decode_bound" in result:
        bound = result["decode_bound"]
        lines.append(f"  {'decode-bound: sampled frames/s of iter_frames':<52}{bound['decode_fps'] or 0:8.3f}")
        for name, ratio in bound["ratio"].items():
            lines.append(f"  {'fa-run ' + name + ' frames/s / decode-bound':<52}{ratio:8.3f}")
    if "memory" in result:
        lines.append("")
        lines.append("== " + memory.report(result["memory"]))
    lines.append("")
    lines.append("== targets")
    for name, row in result["targets"].items():
        lines.append(f"  {name:<44}{row['measured']!s:>8}  target {row['target']:<10} {row['verdict']}")
    return "\n".join(lines)


def targets(result: dict) -> dict:
    out = {}
    mnet = result["cases"].get("mnet", {}).get("sides", {})

    def verdict(value: float | None, target: float, at_most: bool, missing: str = "not measured") -> dict:
        if value is None:
            return {"measured": None, "target": f"{'<=' if at_most else '>='} {target}", "verdict": missing}
        ok = value <= target if at_most else value >= target
        margin = value / target
        return {"measured": value, "target": f"{'<=' if at_most else '>='} {target}",
                "verdict": ("met" if ok else "MISSED") + f" ({margin:.2f} of target)"}

    out["pipeline overhead, fa-run defaults (wall/forward)"] = verdict(
        mnet.get("default", {}).get("overhead_median"), TARGETS["overhead"], True)
    out["pipeline overhead, fa-run exact (wall/forward)"] = verdict(
        mnet.get("exact", {}).get("overhead_median"), TARGETS["overhead"], True)
    out["fa-run --facetorch-exact vs seed"] = verdict(
        mnet.get("exact", {}).get("speedup_median"), TARGETS["speedup_exact"], False)
    out["fa-run defaults vs seed"] = verdict(
        mnet.get("default", {}).get("speedup_median"), TARGETS["speedup_default"], False)
    mem = result.get("memory", {})
    out["peak RSS 10-min / 1-min"] = verdict(mem.get("ratio_10min_to_1min"), TARGETS["memory"], True)
    if result["device"].startswith("cuda"):
        every_frame = result["clip"]["every"] == 1
        bound = result.get("decode_bound", {}).get("ratio", {})
        labels = {"default": "fa-run defaults", "default-fp16": "fa-run defaults fp16"}
        for name in ["default"] + (["default-fp16"] if "default-fp16" in mnet else []):
            label, row = labels[name], mnet.get(name, {})
            out[f"{label} frames/s when sampling every frame"] = verdict(
                row.get("fps_median") if every_frame else None, GPU_TARGETS["fps_every_frame"], False,
                "not measured (needs --every 1)")
            out[f"{label} vs seed on the same GPU"] = verdict(
                row.get("speedup_median"), GPU_TARGETS["speedup"], False)
            if name in bound:
                out[f"{label} frames/s / decode-bound frames/s"] = verdict(
                    bound[name], GPU_TARGETS["decode_bound"], False)
    return out


def decode_bound(result: dict) -> dict:
    """fa-run's sampled frames/s against the rate at which fatools' iter_frames alone decodes and
    samples the same clip (its median seconds in ``result["decode"]``; the sampled frames are the
    frames fa-run analysed)."""
    sides = result["cases"]["mnet"]["sides"]
    seconds = result["decode"][fatools_decode_label(result["clip"]["every"])]
    sampled = sides["default"]["frames"]
    decode_fps = sampled / seconds if seconds else None
    out: dict[str, Any] = {"sampled_frames": sampled, "decode_s": seconds,
                           "decode_fps": round(decode_fps, 3) if decode_fps else None, "fps": {}, "ratio": {}}
    for name in ("default", "default-fp16"):
        if name in sides and decode_fps:
            out["fps"][name] = sides[name]["fps_median"]
            out["ratio"][name] = round(sides[name]["fps_median"] / decode_fps, 3)
    return out


# --------------------------------------------------------------------------- main


def run_case(key: str, detector: str, store: Path, device: str, clip: Path, warm_clip: Path, rounds: int,
             description: str, every: int = EVERY, fp16: bool = False, int8: bool = False,
             profile: Path | None = None) -> dict:
    """The sides on one detector; with ``profile``, the default side once more under torch.profiler."""
    clock = Clock(sync=_sync_for(device))
    print(f"loading the models for {key}", file=sys.stderr)
    sides = [
        SeedSide(detector, store, device, clock, every),
        FaRunSide("exact", detector, store, device, clock, exact=True, every=every),
        FaRunSide("default", detector, store, device, clock, exact=False, every=every),
    ]
    if fp16:
        sides.append(FaRunSide("default-fp16", detector, store, device, clock, exact=False, every=every, half=True))
    if int8:
        sides.append(FaRunSide("default-int8", detector, store, device, clock, exact=False, every=every, int8=True))
    case = compare(sides, clip, warm_clip, rounds, key)
    case["description"] = description
    case["models_timed"] = {side.name: sorted(set(side.models)) for side in sides}
    if profile is not None:
        default = next(side for side in sides if side.name == "default")
        case["profile"] = profile_side(default, clip, device, profile)
    del sides
    gc.collect()
    return case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/speed.py", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Figures and how to read them: benchmarks/README.md.")
    parser.add_argument("--quick", action="store_true",
                        help="3 frames per run, no ResNet-50 case, sparse memory runs: under 3 minutes on 2 cores")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds-long end-to-end check on a 2-frame 640x360 clip with stand-in predictors")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", type=Path, help="write every figure and raw run here")
    parser.add_argument("--frames", type=int, help="sampled frames per run, MobileNet case (default 10; quick 3)")
    parser.add_argument("--rounds", type=int, help="alternating rounds, MobileNet case (default 3)")
    parser.add_argument("--r50", action=argparse.BooleanOptionalAction, default=None,
                        help="run the ResNet-50 (detector-bound) case (default: yes, but not with --quick or --smoke)")
    parser.add_argument("--r50-frames", type=int, help="sampled frames per run, ResNet-50 case (default 3)")
    parser.add_argument("--r50-rounds", type=int, help="rounds, ResNet-50 case (default 3)")
    parser.add_argument("--every", type=int, default=EVERY, metavar="N",
                        help=f"analyse every Nth frame of the clip, on every side and in the decode benchmark "
                             f"(default {EVERY}; 1: every frame, the GPU throughput target); clips are "
                             f"frames x N long")
    parser.add_argument("--fp16", action="store_true",
                        help="add a fourth side to every case, default-fp16: fa-run defaults with "
                             "DetectOptions(half=True) and PredictOptions(half=True) (meant for CUDA; slow on CPU)")
    parser.add_argument("--int8", action="store_true",
                        help="add a side to every case, default-int8: fa-run defaults with PredictOptions(int8=True) "
                             "(the AU model's Linear layers in int8; CPU only; changes AU outputs, opt-in in fa-run)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="after the MobileNet case's timed rounds, run the default side once more under "
                             "torch.profiler (CPU, and CUDA on cuda): key averages table (sorted by CUDA time on "
                             "cuda, else CPU time; 30 rows) to FILE, Chrome trace to FILE with suffix .trace.json")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS runs")
    parser.add_argument("--memory-every", type=int, help="sampling of the memory runs (default 5; quick 100)")
    parser.add_argument("--store", type=Path, help="twin model store (default ~/.cache/fatools/bench/twin-store)")
    parser.add_argument("--work", type=Path, help="where clips are kept (default ~/.cache/fatools/bench)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be 1 or more")
    every = args.every

    if not PHOTO.is_file() or not MNET_PTH.is_file():
        print(f"speed.py: error: needs {PHOTO} and {MNET_PTH} (../shared beside the checkout, or FATOOLS_SHARED)",
              file=sys.stderr)
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
        "models": "stand-in predictors (smoke)" if args.smoke else "compute twins (fatools.twins)",
        "clip": {"path": str(clip), "size": f"{size[0]}x{size[1]}", "frames": frames * every, "every": every,
                 "sampled": frames},
        "cases": {},
        "phases_s": {"setup (twins, clips)": round(time.monotonic() - started, 1)},
    }

    def phase(name: str, since: float) -> None:
        result["phases_s"][name] = round(time.monotonic() - since, 1)

    sampling = "" if every == EVERY else f" ({nth(every)})"
    mark = time.monotonic()
    result["cases"]["mnet"] = run_case(
        "mnet", DETECTORS["mnet"], store, args.device, clip, warm_clip, rounds,
        f"real RetinaFace-MobileNet0.25, {frames} sampled frames{sampling}, {rounds} rounds",
        every=every, fp16=args.fp16, int8=args.int8, profile=args.profile)
    if "profile" in result["cases"]["mnet"]:
        result["profile"] = result["cases"]["mnet"].pop("profile")
    phase("mnet case", mark)
    mark = time.monotonic()
    result["decode"] = decode_benchmark(clip, 3, every)
    if args.device.startswith("cuda") and every > 1:
        result["decode_bound"] = decode_bound(result)
    phase("decode", mark)
    mark = time.monotonic()
    if with_r50:
        r50_clip = make_clip(work, r50_frames * every, size, "main")
        result["cases"]["r50"] = run_case(
            "r50", DETECTORS["r50"], store, args.device, r50_clip, warm_clip, r50_rounds,
            f"RetinaFace-ResNet-50 twin (detector-bound), {r50_frames} sampled frames{sampling}, {r50_rounds} rounds",
            every=every, fp16=args.fp16, int8=args.int8)
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
        print(f"profile of fa-run {prof['side']} (MobileNet case, one more run under torch.profiler, "
              f"{prof['wall_s_profiled']:.2f} s): table {prof['table']}, Chrome trace {prof['trace']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
