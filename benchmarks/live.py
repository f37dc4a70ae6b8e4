"""Live input in real time (issue 33): latency and drops of fa-run on a 720p stream.

A 720p, 25 fps H.264 clip over family4.jpg (pan and zoom, made once) is sent in real time
(``ffmpeg -re``, looped) as MPEG-TS over TCP on 127.0.0.1 to ``fa-run tcp://...?listen=1``,
which samples it at ``--fps R`` for ``--seconds`` wall seconds (``--duration``); the run's
``summary.json`` gives its ``live`` figures: frames sampled, dropped (the newest frame wins
when analysis is slower than capture), latency from decoding a frame to its record being
written (p50, p95, max). The sender starts once fa-run listens, so model loading does not
count and the stream does not arrive as a backlog.

Two model sets: the real RetinaFace-MobileNet0.25 with stand-in predictors (``standin``),
and the compute twins (``twins``: facetorch's architectures, seeded weights, the real
MobileNet0.25). For each: the given rates (default 5 and 10 sampled fps), then the highest
rate of ``--search`` with nothing dropped, searched from half the rate analysis kept up
with in those runs (``capacity_fps``: frames analysed per wall second), up while nothing
drops and down while something does; a search run lasts at least 8 samples.

    .venv/bin/python -m benchmarks.live                      # both sets, 10 to 20 minutes on 2 cores
    .venv/bin/python -m benchmarks.live --sets standin --seconds 10 --search ""   # a quick look
    .venv/bin/python -m benchmarks.live --json live.json

Needs ../shared (family4.jpg and the MobileNet0.25 weights) and the ffmpeg command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import memory, sides
from benchmarks.report import machine

BIN = Path(sys.executable).parent
SIZE = (1280, 720)
CLIP_FRAMES = 250  # 10 s at 25 fps, looped by the sender


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with open("/proc/net/tcp") as rows:
        return any(
            row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows.readlines()[1:]
        )


def one_run(clip: Path, store: Path, rate: float, seconds: float) -> dict[str, Any]:
    """fa-run on the live stream at ``rate`` sampled fps for ``seconds``: its ``live`` summary."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fatools-live-bench-") as tmp:
        out = Path(tmp) / "out"
        command = [
            str(BIN / "fa-run"), f"tcp://127.0.0.1:{port}?listen=1", "-o", str(out), "--fps", f"{rate:g}",
            "--duration", f"{seconds:g}s", "--detector", "retinaface-mnet", "--models-dir", str(store),
            "-f", "json", "--no-progress", "--stall-timeout", "30s",
        ]  # fmt: skip
        log = open(Path(tmp) / "fa-run.log", "wb")  # noqa: SIM115 (closed below, after the run)
        run = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        sender = None
        try:
            deadline = time.monotonic() + 300
            while not listening(port):  # the models are loaded and the reader waits for the stream
                if run.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"fa-run did not listen: {(Path(tmp) / 'fa-run.log').read_text()[-2000:]}"
                    )
                time.sleep(0.05)
            send = [
                "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                "-c", "copy", "-f", "mpegts", f"tcp://127.0.0.1:{port}",
            ]  # fmt: skip
            # Its broken pipe when fa-run ends is expected: no output.
            sender = subprocess.Popen(send, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            code = run.wait(timeout=seconds + 300)
        finally:
            for process in (run, sender):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
            log.close()
        if code != 0:
            raise RuntimeError(f"fa-run failed ({code}): {(Path(tmp) / 'fa-run.log').read_text()[-2000:]}")
        summary = json.loads((out / "summary.json").read_text())
        live: dict[str, Any] = summary["live"]
        live["rate"] = rate
        live["load_average"] = round(os.getloadavg()[0], 2)
        return live


def line(name: str, live: dict[str, Any]) -> str:
    lat = live["latency_ms"]
    return (
        f"{name:8s} {live['rate']:5g} fps: {live['frames']:4d} sampled, {live['dropped']:4d} dropped "
        f"({100 * live['dropped'] / max(1, live['frames']):3.0f} %), latency p50 {lat['p50']} ms, "
        f"p95 {lat['p95']} ms, max {lat['max']} ms (load {live['load_average']})"
    )


def rates(text: str) -> list[float]:
    return [float(r) for r in text.split(",") if r]


def highest_sustained(
    clip: Path, store: Path, candidates: list[float], capacity: float, seconds: float, name: str
) -> tuple[float | None, list[dict[str, Any]]]:
    """The highest of ``candidates`` with nothing dropped, from the highest at or below half
    ``capacity``, up while nothing drops and down while something does. A run lasts long
    enough for 8 samples at least."""
    if not candidates:
        return None, []
    below = [i for i, rate in enumerate(candidates) if rate <= capacity / 2]
    i = below[-1] if below else 0
    tried: dict[float, dict[str, Any]] = {}
    sustained = None
    while 0 <= i < len(candidates) and candidates[i] not in tried:
        rate = candidates[i]
        tried[rate] = one_run(clip, store, rate, max(seconds, 8 / rate))
        print(line(name, tried[rate]) + "  [search]", flush=True)
        if tried[rate]["dropped"] == 0:
            sustained = rate if sustained is None else max(sustained, rate)
            i += 1
        elif sustained is not None:
            break
        else:
            i -= 1
    return sustained, list(tried.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="standin,twins", help="model sets: standin, twins [%(default)s]")
    parser.add_argument("--rates", default="5,10", help="sampled rates to measure [%(default)s]")
    parser.add_argument(
        "--search",
        default="0.1,0.2,0.3,0.5,0.75,1,1.5,2,3,4,5,6,8,10,12",
        help="rates among which to find the highest with nothing dropped [%(default)s]",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="wall seconds of each run [%(default)s]")
    parser.add_argument(
        "--work", type=Path, default=memory.default_work_dir(), help="clips and stores [%(default)s]"
    )
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        parser.error("needs the ffmpeg command")
    clip = sides.make_clip(args.work, CLIP_FRAMES, SIZE, "live")
    stores = {
        "standin": lambda: memory.standin_store(args.work),
        "twins": lambda: sides.twin_store(None, ["mnet"]),
    }
    result: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "clip": f"{clip.name} ({SIZE[0]}x{SIZE[1]}, 25 fps, H.264, looped)",
        "seconds": args.seconds,
        "sets": {},
    }
    for name in [s for s in args.sets.split(",") if s]:
        store = stores[name]()
        runs = []
        for rate in rates(args.rates):
            runs.append(one_run(clip, store, rate, args.seconds))
            print(line(name, runs[-1]), flush=True)
        # Analysis keeps up with about this many frames a second (when it cannot keep up,
        # it analyses back to back): the search starts below it and goes up, or down.
        capacity = max((r["analysed"] / r["seconds"] for r in runs), default=1.0)
        sustained, search = highest_sustained(
            clip, store, sorted(rates(args.search)), capacity, args.seconds, name
        )
        result["sets"][name] = {
            "runs": runs, "capacity_fps": round(capacity, 3), "search": search, "sustained_fps": sustained,
        }  # fmt: skip
        if search:
            print(f"{name}: highest sampled rate with nothing dropped: {sustained} fps", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
