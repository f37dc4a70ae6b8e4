"""The interactive report of a long input: how big the page is and how fast Chromium
opens it, switches tracks and moves the playhead.

Writes synthetic records of a two-hour video sampled 6 times a second (43,200 frame
records, every face with AU, expression and valence/arousal values that vary), exports
them with ``fa-export -f html`` and opens the page in Debian's headless Chromium
(``make system-deps``).  Timings are medians of ``--rounds`` fresh browsers.

    .venv/bin/python -m benchmarks.html_report [--tracks 2] [--hours 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fatools.export.plots import HEAT_CODES

LABELS = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]


def write_records(path: Path, tracks: int, seconds: float, rate: float = 6.0, fps: float = 25.0) -> int:
    import numpy as np
    import orjson

    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    times = np.arange(n) / rate
    codes = HEAT_CODES[:-1]
    # Every sample's AU scores at once (a slow wave per AU and track, and noise): made per
    # value in Python this took most of the time of the test that uses it.
    probs = [
        np.round(
            np.clip(
                0.5
                + 0.45 * np.sin(times[:, None] / (30 + np.arange(len(codes)) + 7 * k))
                + rng.normal(0, 0.05, (n, len(codes))),
                0,
                1,
            ),
            4,
        ).tolist()
        for k in range(tracks)
    ]
    with open(path, "wb") as out:
        out.write(
            orjson.dumps(
                {
                    "schema": 1,
                    "type": "video",
                    "video": str(path.with_suffix(".mp4")),
                    "fps": fps,
                    "frame_count": int(seconds * fps),
                    "duration": seconds,
                    "width": 1280,
                    "height": 720,
                }
            )
            + b"\n"
        )
        for i in range(n):
            t = i / rate
            faces = []
            for k in range(tracks):
                weights = {
                    label: math.exp(2 * math.sin(t / (40 + 11 * j + 5 * k))) for j, label in enumerate(LABELS)
                }
                total = sum(weights.values())
                faces.append(
                    {
                        "face": k,
                        "track": k,
                        "box": [100 + 300 * k, 100, 300 + 300 * k, 340],
                        "score": 0.99,
                        "au": {"probs": dict(zip(codes, probs[k][i], strict=True)), "threshold": 0.5},
                        "expression": {
                            "label": max(weights, key=weights.__getitem__),
                            "scores": {label: round(w / total, 4) for label, w in weights.items()},
                        },
                        "va": {
                            "valence": round(math.sin(t / 50 + k), 4),
                            "arousal": round(math.cos(t / 70 + k), 4),
                        },
                    }
                )
            out.write(
                orjson.dumps(
                    {
                        "schema": 1,
                        "video": str(path.with_suffix(".mp4")),
                        "frame": round(t * fps),
                        "t": round(t, 4),
                        "width": 1280,
                        "height": 720,
                        "faces": faces,
                    }
                )
                + b"\n"
            )
    return n


def open_page(page_path: Path, tracks: int, rounds: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import browser, console_errors, wait

    opened, moved, switched, errors = [], [], [], []
    for _ in range(rounds):
        page = browser()
        try:
            started = time.perf_counter()
            page.get(page_path.as_uri())
            wait(
                page,
                "const e = document.getElementById('au'); return e && e.data && document.readyState === 'complete'",
                120,
            )
            opened.append(time.perf_counter() - started)
            started = time.perf_counter()
            page.execute_script("move(3600)")
            moved.append(time.perf_counter() - started)
            if tracks > 1:
                started = time.perf_counter()
                page.execute_script(
                    "const s = document.getElementById('track'); s.value = '1';"
                    "s.dispatchEvent(new Event('change'));"
                )
                wait(page, "return document.getElementById('au').layout.title.text.endsWith('track 1')")
                switched.append(time.perf_counter() - started)
            errors += console_errors(page)
        finally:
            page.quit()
    return {
        "open_s": statistics.median(opened),
        "playhead_move_s": statistics.median(moved),
        "track_switch_s": statistics.median(switched) if switched else None,
        "severe_console_entries": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=2)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "fatools" / "bench" / "html")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    records = args.work / f"long{args.tracks}.jsonl"
    samples = write_records(records, args.tracks, args.hours * 3600)
    out = args.work / f"out{args.tracks}"
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from fatools.cli.export import main; main()",
            str(records),
            "-o",
            str(out),
            "-f",
            "html",
            "-q",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    exported = time.perf_counter() - started
    import gzip

    page = out / "report.html"
    result = {
        "samples": samples,
        "tracks": args.tracks,
        "records_mb": round(records.stat().st_size / 1e6, 1),
        "export_s": round(exported, 2),
        "report_kb": round(page.stat().st_size / 1e3),
        "report_gzip_kb": round(len(gzip.compress(page.read_bytes())) / 1e3),
        "plotly_kb": round((out / "plotly.min.js").stat().st_size / 1e3),
    }
    result.update(
        {
            k: round(v, 3) if isinstance(v, float) else v
            for k, v in open_page(page, args.tracks, args.rounds).items()
        }
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
