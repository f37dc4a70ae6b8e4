"""Decoder life cycle: stopping early must not hang (PyAV frame threads with torch loaded)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from clips import h264_clip


def run_script(script: str) -> str:
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError("decoding hung after stopping early") from None
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_draining_a_decoder_left_mid_stream_prevents_the_hang(tmp_path, ffmpeg):
    # Without fatools.video._drain this loop hangs within a few dozen rounds here
    # (PyAV issues 1849/1861: frame threads, torchvision loaded, decoding stopped early).
    clip = h264_clip(tmp_path / "c.mp4", seconds=4)
    assert run_script(f"""
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
        print("ok")
    """) == "ok"


def test_stopping_early_through_the_readers(tmp_path, ffmpeg):
    clip = h264_clip(tmp_path / "c.mp4", seconds=4)
    assert run_script(f"""
        import torchvision.transforms.v2.functional
        from fatools.video import FrameSource, Sampling, iter_frames
        for _ in range(100):
            for frame in iter_frames({str(clip)!r}, Sampling(max_frames=3)):
                pass
            source = FrameSource()
            source.image({str(clip)!r}, 2)
            source.close()
        print("ok")
    """) == "ok"
