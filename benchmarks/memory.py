"""Peak memory of fa-run on a 1-minute and a 10-minute low-resolution clip.

    python -m benchmarks.memory [--every N] [--quick] [--json FILE] [--work DIR]

fa-run runs as a child process on each clip in turn (320x180, 25 fps, a pan and zoom
over ``../shared/testdata/faces/family4.jpg``: 4 real faces in every frame; the 10-minute
clip is the 1-minute one looped by ``ffmpeg -stream_loop 9 -c copy``), and its peak
resident set size is the kernel's high-water mark of that child (``VmHWM`` in
``/proc/PID/status``, polled until it exits).
fa-run streams its records, so the 10-minute peak should be within 10% of the
1-minute one.

What runs: the real RetinaFace-MobileNet0.25 at the clip's own size (``--det-size 0``)
and fatools' *stand-in* predictors (``fatools.testing``) for au, fer, va and align,
every export format.  The stand-ins have the real models' output contracts, so the
records, tracks, summary and exports are as large as with the real models, at a
fraction of the compute: 3,000 sampled frames with 4 faces each through the real
Swin-Base would take over an hour on 2 cores.  The models' own weights are a constant
on top; ``--twins DIR`` adds a short run with the compute twins
(``benchmarks.twins``) to show that constant.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FATOOLS_SHARED", ROOT.parent / "shared"))
PHOTO = SHARED / "testdata" / "faces" / "family4.jpg"
MNET_PTH = SHARED / "models" / "retinaface-mobilenet0.25" / "mobilenet0.25_Final.pth"
SIZE = (320, 180)


def default_work_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "fatools" / "bench"


def make_clips(work: Path) -> tuple[Path, Path]:
    """The 1-minute clip (made once) and the 10-minute loop of it."""
    from fatools.sample import pan_zoom_clip

    work.mkdir(parents=True, exist_ok=True)
    one = work / "lowres-1min.mp4"
    ten = work / "lowres-10min.mp4"
    if not one.is_file():
        tmp = work / ".lowres-1min.tmp.mp4"
        pan_zoom_clip(str(PHOTO), str(tmp), seconds=60, fps=25, size=SIZE)
        os.replace(tmp, one)
    if not ten.is_file():
        tmp = work / ".lowres-10min.tmp.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-stream_loop", "9", "-i", str(one), "-c", "copy", str(tmp)],
            check=True,
        )
        os.replace(tmp, ten)
    return one, ten


def standin_store(work: Path) -> Path:
    """Stand-in predictors and the real MobileNet0.25 detector, built once."""
    from fatools.models import store
    from fatools.testing import build_standins

    root = work / "standin-store"
    if not store.is_present("retinaface-mnet", root) or not store.is_present("align-meta", root):
        build_standins(root, ["au", "fer", "va", "align", "align-meta"])
        store.import_model("retinaface-mnet", str(MNET_PTH), root)
    return root


def fa_run_command() -> list[str]:
    exe = Path(sys.executable).parent / "fa-run"
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from fatools.cli.run import main; sys.exit(main())"]


def _hwm_kib(pid: int) -> int | None:
    """The process's peak resident set size so far (VmHWM), in KiB; None once it has exited."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def peak_rss(args: list[str], poll_s: float = 0.05) -> dict:
    """Run fa-run with ``args`` as a child; its peak RSS (MiB), wall time and exit status.

    The peak is the kernel's high-water mark of the child's own address space (VmHWM),
    read until it exits; it is monotonic, so the last reading holds the peak up to the
    child's last ``poll_s``.  ``ru_maxrss`` would not do: Linux carries it over
    ``exec`` from the forking parent, so a benchmark process holding gigabytes of models
    would report its own size.
    """
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(fa_run_command() + args, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _hwm_kib(proc.pid) or 0)
            time.sleep(poll_s)
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
    return {
        "peak_rss_mib": round(peak / 1024, 1),
        "wall_s": round(time.monotonic() - start, 2),
        "rc": proc.returncode,
        "stderr_tail": tail,
    }


def run_clip(clip: Path, store: Path, every: int, extra: list[str] | None = None) -> dict:
    """fa-run on ``clip`` with the models of ``store``: its peak RSS and what it found.

    One run at a time: two fa-run processes on 2 cores, each with 2 torch threads,
    slowed each other down far more than twice (4-5x, with other jobs on the machine).
    """
    out = Path(tempfile.mkdtemp(prefix="fatools-mem-"))
    try:
        args = [
            str(clip),
            "-o",
            str(out),
            "--detector",
            "retinaface-mnet",
            "--det-size",
            "0",
            "--models-dir",
            str(store),
            "--device",
            "cpu",
            "--every",
            str(every),
            "--no-progress",
            "-q",
        ]
        result = peak_rss(args + (extra or []))
        frames = faces = 0
        records = out / "frames.jsonl"
        if records.is_file():
            with open(records, encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    if record.get("type", "frame") == "frame":
                        frames += 1
                        faces += len(record.get("faces") or [])
        result.update(clip=clip.name, every=every, frames=frames, faces=faces)
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def measure(
    every: int = 5, work: Path | None = None, twins: Path | None = None, twin_frames: int = 8
) -> dict:
    """Peak RSS of fa-run on both clips (stand-ins), and optionally a short run with the twins."""
    work = work or default_work_dir()
    one, ten = make_clips(work)
    store = standin_store(work)
    short = run_clip(one, store, every)
    long = run_clip(ten, store, every)
    result = {
        "clip_size": f"{SIZE[0]}x{SIZE[1]}",
        "every": every,
        "predictors": "stand-ins (fatools.testing), real RetinaFace-MobileNet0.25 at --det-size 0, all exports",
        "1min": short,
        "10min": long,
        "ratio_10min_to_1min": round(long["peak_rss_mib"] / short["peak_rss_mib"], 3)
        if short["peak_rss_mib"]
        else None,
    }
    if twins is not None:
        result["twins_1min"] = run_clip(
            one, twins, every, ["--max-frames", str(twin_frames), "--format", "json"]
        )
    return result


def report(result: dict) -> str:
    lines = [
        f"peak RSS of fa-run ({result['clip_size']}, every {result['every']}th frame; "
        f"{result['predictors']}):"
    ]
    for key in ("1min", "10min", "twins_1min"):
        if key in result:
            row = result[key]
            lines.append(
                f"  {key:<10} {row['peak_rss_mib']:8.1f} MiB  {row['frames']:5d} frames "
                f"{row['faces']:6d} faces  {row['wall_s']:7.1f} s  rc={row['rc']}"
            )
    lines.append(f"  10-minute / 1-minute peak: {result['ratio_10min_to_1min']}x (target <= 1.10)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=None, help="sampling (default 5; 100 with --quick)")
    parser.add_argument("--quick", action="store_true", help="every 100th frame: under a minute in all")
    parser.add_argument("--work", type=Path, default=None, help="where clips and the stand-in store are kept")
    parser.add_argument(
        "--twins", type=Path, default=None, help="a twin model store: add a short run with it"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    every = args.every or (100 if args.quick else 5)
    result = measure(every, args.work, args.twins)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
