"""Decoder life cycle: stopping early must not hang (PyAV frame threads with torch loaded)."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading

from clips import h264_clip

# A hang is a round that never ends; a loaded machine only makes rounds slower.  So the
# limit is on progress (no round finished for this long), not on the whole loop's time.
STALL_S = 120


def run_script(script: str) -> str:
    """Run ``script`` (which calls ``tick()`` after each round) and return its last line;
    fail when no round ends within STALL_S seconds."""
    preamble = "def tick():\n    print('tick', flush=True)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", preamble + textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True
    ).start()
    rounds, last = 0, ""
    try:
        while True:
            try:
                line = lines.get(timeout=STALL_S)
            except queue.Empty:
                raise AssertionError(
                    f"decoding hung after stopping early: no round ended in {STALL_S} s after round {rounds}"
                ) from None
            if line is None:
                break
            rounds += line == "tick\n"
            last = line.strip() or last
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate()[1]
    assert proc.returncode == 0, stderr
    return last


def test_draining_a_decoder_left_mid_stream_prevents_the_hang(tmp_path, ffmpeg):
    # Without fatools.video._drain this loop hangs within a few dozen rounds here
    # (PyAV issues 1849/1861: frame threads, torchvision loaded, decoding stopped early).
    clip = h264_clip(tmp_path / "c.mp4", seconds=4)
    assert (
        run_script(f"""
        import av
        import torchvision.transforms.v2.functional
        from fatools.video import _drain
        for _ in range(150):
            with av.open({str(clip)!r}) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                frames = container.decode(stream)
                for i, _frame in enumerate(frames):
                    if i == 3:
                        break
                _drain(stream)
                frames.close()
            tick()
        print("ok")
    """)
        == "ok"
    )


def test_stopping_early_through_the_readers(tmp_path, ffmpeg):
    clip = h264_clip(tmp_path / "c.mp4", seconds=4)
    assert (
        run_script(f"""
        import torchvision.transforms.v2.functional
        from fatools.video import FrameSource, Sampling, iter_frames
        for _ in range(100):
            for frame in iter_frames({str(clip)!r}, Sampling(max_frames=3)):
                pass
            source = FrameSource()
            source.image({str(clip)!r}, 2)
            source.close()
            tick()
        print("ok")
    """)
        == "ok"
    )
