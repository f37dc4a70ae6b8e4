"""A one-line progress display on stderr, for fa-run."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fatools.video import Sampling


class Progress:
    """Frames done, rate and time left on one stderr line, only when stderr is a terminal."""

    def __init__(self, total: int | None, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.2:
            return
        self._last = now
        rate = self.done / max(now - self.start, 1e-9)
        text = f"\r{self.done}"
        if self.total:
            left = max(self.total - self.done, 0) / rate if rate else 0
            text += f"/{self.total} frames  {rate:.1f} frames/s  ETA {int(left) // 60}:{int(left) % 60:02d}"
        else:
            text += f" frames  {rate:.1f} frames/s"
        sys.stderr.write(text + "   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def count(self, records: Iterable[dict]) -> Iterator[dict]:
        """The records, unchanged, counting the frames among them as they pass."""
        from fatools.records import is_frame

        for record in records:
            if is_frame(record):
                self.update()
            yield record


def expected_samples(info: Any, sampling: Sampling) -> int | None:
    """About how many frames ``sampling`` keeps of a video, for the progress display."""
    if not info.frame_count:
        return None
    duration = info.duration or (info.frame_count / info.fps if info.fps else None)
    start, end = sampling.start, sampling.end if sampling.end is not None else duration
    if sampling.fps and end is not None:
        count = int((end - start) * sampling.fps) + 1
    else:
        share = (end - start) / duration if duration and end is not None else 1.0
        count = int(info.frame_count * max(min(share, 1.0), 0.0) / sampling.every) + 1
    if sampling.max_frames:
        count = min(count, sampling.max_frames)
    return max(count, 0)
