"""Start-up cost of fa-run: one process on a 1-frame clip, from launch to exit.

    python -m benchmarks.startup [--rounds N] [--before ROOT] [--store DIR] [--inputs N] [--json FILE]

What a SLURM array of many short clips pays per task.  Each run is a fresh
``fa-run CLIP -o OUT -f json`` process on a 1-frame 640x360 clip of the real photo,
with fatools' stand-in models (the real MobileNet0.25 detector and the stand-in
predictors: model compute is a few milliseconds, so what is measured is imports, model
loading and set-up).  Reported per side: median wall seconds and CPU seconds (user +
system, the child's own), and the median seconds of ``import`` of what a run imports.
With ``--before ROOT`` (another checkout of fatools, e.g. ``git worktree add /tmp/before
<commit>``) the same runs alternate between that checkout's code and this one's, in one
environment, so the two are measured side by side.  With ``--inputs N`` each round also
runs one fa-run over N copies of the clip, a batch's way: the per-input cost is
(wall of N - wall of 1) / (N - 1), what every further input of a batch adds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Runs a fatools command from a given checkout, bypassing the editable install's finder.
LAUNCH = """
import importlib, sys
root, module = sys.argv[1], sys.argv[2]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f) and "editable" not in getattr(f, "__module__", "")]
sys.path.insert(0, root)
sys.argv = [module] + sys.argv[3:]
mod = importlib.import_module(module)
assert mod.__file__.startswith(root), mod.__file__
mod.main()
"""
# What a fa-run batch imports; checkouts from before fatools/study/ (--before) had the
# batch at fatools.batch.
IMPORTS = (
    "import importlib, fatools.cli.run, fatools.run\n"
    "try:\n    importlib.import_module('fatools.study.batch')\n"
    "except ModuleNotFoundError:\n    importlib.import_module('fatools.batch')\n"
    "from fatools.models.torchscript import import_facetorch; import_facetorch()\n"
)


def _child(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"startup.py: {' '.join(argv[:6])}... failed: {proc.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _setup(work: Path, store: Path | None) -> tuple[Path, Path]:
    from benchmarks.sides import MNET_PTH, PHOTO

    clip = work / "one-frame.mp4"
    if not clip.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fatools.sample",
                str(PHOTO),
                str(clip),
                "--seconds",
                "0.04",
                "--size",
                "640x360",
            ],
            check=True,
            capture_output=True,
        )
    if store is None:
        store = work / "startup-store"
        source = store / "retinaface-mnet" / "source.json"
        if not source.is_file() or json.loads(source.read_text()).get("source") == "standin":
            subprocess.run(
                [sys.executable, "-m", "fatools.testing", str(store)], check=True, capture_output=True
            )
            # The stand-ins include a MobileNet0.25 that finds bright squares: the real one replaces it.
            shutil.rmtree(store / "retinaface-mnet")
            # (fatools.cli.models has no __main__ guard: `-m` would import it and do nothing.)
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from fatools.cli.models import main; main()",
                    "import",
                    "retinaface-mnet",
                    str(MNET_PTH),
                    "--models-dir",
                    str(store),
                ],
                check=True,
                capture_output=True,
            )
    return clip, store


def _copies(work: Path, clip: Path, count: int) -> list[Path]:
    """``count`` copies of the clip, each its own input of one batch."""
    folder = work / f"startup-{count}-inputs"
    folder.mkdir(exist_ok=True)
    paths = [folder / f"clip{i:03d}.mp4" for i in range(count)]
    for path in paths:
        if not path.is_file():
            shutil.copyfile(clip, path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another fatools checkout, run alternately with this one")
    parser.add_argument(
        "--store", type=Path, help="model store (default: stand-ins + the real MobileNet0.25)"
    )
    parser.add_argument(
        "--work", type=Path, help="where the clip and store are kept (default ~/.cache/fatools/bench)"
    )
    parser.add_argument(
        "--inputs", type=int, default=1, help="also time one fa-run over N copies of the clip"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from benchmarks import memory
    from benchmarks.report import machine

    work = args.work or memory.default_work_dir()
    work.mkdir(parents=True, exist_ok=True)
    clip, store = _setup(work, args.store)
    sides = {"this": ROOT}
    if args.before:
        sides = {"before": args.before.resolve(), "this": ROOT}
    env_threads = os.environ.get("OMP_NUM_THREADS")
    results: dict = {
        "machine": machine(),
        "clip": str(clip),
        "store": str(store),
        "rounds": args.rounds,
        "omp_num_threads": env_threads,
        "sides": {},
    }
    runs: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "cpu": [], "import": [], "per_input": []} for name in sides
    }
    copies = _copies(work, clip, args.inputs) if args.inputs > 1 else []
    for root in sides.values():  # warm the page cache and any first-use files (ONNX exports)
        out = Path(tempfile.mkdtemp(prefix="fatools-startup-"))
        _child(
            [
                sys.executable,
                "-c",
                LAUNCH,
                str(root),
                "fatools.cli.run",
                str(clip),
                "-o",
                str(out),
                "-f",
                "json",
                "--models-dir",
                str(store),
                "--detector",
                "retinaface-mnet",
            ]
        )
        shutil.rmtree(out, ignore_errors=True)
    for r in range(args.rounds):
        order = list(sides.items()) if r % 2 == 0 else list(reversed(sides.items()))
        for name, root in order:
            out = Path(tempfile.mkdtemp(prefix="fatools-startup-"))
            wall, cpu = _child(
                [
                    sys.executable,
                    "-c",
                    LAUNCH,
                    str(root),
                    "fatools.cli.run",
                    str(clip),
                    "-o",
                    str(out),
                    "-f",
                    "json",
                    "--models-dir",
                    str(store),
                    "--detector",
                    "retinaface-mnet",
                ]
            )
            shutil.rmtree(out, ignore_errors=True)
            imp_wall, _ = _child(
                [
                    sys.executable,
                    "-c",
                    f"import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
                    f"sys.path.insert(0, {str(root)!r})\n" + IMPORTS,
                ]
            )
            runs[name]["wall"].append(wall)
            runs[name]["cpu"].append(cpu)
            runs[name]["import"].append(imp_wall)
            batch = ""
            if copies:
                out = Path(tempfile.mkdtemp(prefix="fatools-startup-"))
                many, _ = _child(
                    [
                        sys.executable,
                        "-c",
                        LAUNCH,
                        str(root),
                        "fatools.cli.run",
                        *map(str, copies),
                        "-o",
                        str(out),
                        "-f",
                        "json",
                        "--models-dir",
                        str(store),
                        "--detector",
                        "retinaface-mnet",
                    ]
                )
                shutil.rmtree(out, ignore_errors=True)
                runs[name]["per_input"].append((many - wall) / (len(copies) - 1))
                batch = f"; {len(copies)} inputs {many:6.2f} s"
            print(
                f"round {r + 1}/{args.rounds} {name:6s} fa-run {wall:6.2f} s wall, {cpu:6.2f} s CPU; "
                f"imports {imp_wall:5.2f} s{batch}",
                file=sys.stderr,
            )
    for name, values in runs.items():
        results["sides"][name] = {key: round(statistics.median(v), 3) for key, v in values.items() if v}
        results["sides"][name]["root"] = str(sides[name])
    print(f"fa-run start-up on a 1-frame clip, {results['machine']['cpu']}, median of {args.rounds}:")
    for name, row in results["sides"].items():
        each = f", each further input of {args.inputs} {row['per_input']:.3f} s" if "per_input" in row else ""
        print(
            f"  {name:6s} wall {row['wall']:.2f} s, CPU {row['cpu']:.2f} s, imports {row['import']:.2f} s{each}  "
            f"({row['root']})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
