"""Time spans of a record stream for the annotation formats (ELAN, WebVTT, the overlay).

A sample stands for the time until the next sample, as in fa-summarize(1): a span
ends at the next sample's time unless that is more than the maximum gap later, when it
ends one sampling interval after its last sample.  The gap is fa-summarize's: the
summary's ``episode_gap`` when given, else 2.5 of the most frequent interval seen so far
and at least 0.5 s.  The clock keeps a histogram of intervals in 0.1 ms buckets
(bounded on real video), never the samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fatools.records import expression_of, number

GAP_INTERVALS = 2.5
GAP_FLOOR = 0.5
BUCKET = 1e-4
EPS = 1e-9


class Clock:
    """The sampling interval and maximum gap of one video, learnt as its frames go by."""

    def __init__(self, episode_gap: float | None = None) -> None:
        self.episode_gap = episode_gap
        self.counts: dict[int, list] = {}
        self.mode: int | None = None
        self.last: float | None = None

    def tick(self, t: float | None) -> None:
        if t is None:
            return
        if self.last is not None and t > self.last:
            key = round((t - self.last) / BUCKET)
            cell = self.counts.setdefault(key, [0, 0.0])
            cell[0] += 1
            cell[1] += t - self.last
            if self.mode is None or cell[0] > self.counts[self.mode][0]:
                self.mode = key
        self.last = t

    @property
    def interval(self) -> float | None:
        if self.mode is None:
            return None
        count, total = self.counts[self.mode]
        return total / count

    def max_gap(self) -> float:
        if self.episode_gap is not None:
            return self.episode_gap
        interval = self.interval
        return math.inf if interval is None else max(GAP_FLOOR, GAP_INTERVALS * interval)

    def continues(self, last: float, t: float) -> bool:
        """Whether a sample at ``t`` follows one at ``last`` without a gap."""
        return 0 < t - last <= self.max_gap() + EPS


@dataclass
class Segment:
    """A run of one expression label of one track: [start, end) in seconds; ``end`` is
    None until known (then it is ``last`` plus the sampling interval)."""

    label: str
    start: float
    last: float
    end: float | None = None
    confidence_sum: float = 0.0
    samples: int = 0

    def closed_end(self, interval: float | None) -> float:
        if self.end is not None:
            return self.end
        return self.last + (interval or 0.0)


@dataclass
class ExpressionRuns:
    """Per track, the runs of the predicted expression label (memory grows with the
    number of label changes, as the summary's with its episodes, never with frames)."""

    clock: Clock
    runs: dict[Any, list[Segment]] = field(default_factory=dict)

    def add(self, track: Any, t: float | None, face: dict) -> None:
        expression = expression_of(face)
        label = expression.get("label")
        if t is None or not isinstance(label, str):
            return
        confidence = number(expression.get("confidence"))
        runs = self.runs.setdefault(track, [])
        current = runs[-1] if runs and runs[-1].end is None else None
        if current is not None and t <= current.last:
            return  # a second face of the track in one frame: the first one is followed
        if current is not None and self.clock.continues(current.last, t):
            if current.label == label:
                current.last = t
                current.samples += 1
                current.confidence_sum += confidence or 0.0
                return
            current.end = t
        elif current is not None:
            current.end = current.last + (self.clock.interval or 0.0)
        runs.append(Segment(label, t, t, None, confidence or 0.0, 1))

    def segments(self, interval: float | None) -> dict[Any, list[tuple[float, float, str, float]]]:
        """(start, end, label, mean confidence) per track, in time order."""
        return {
            track: [(s.start, s.closed_end(interval), s.label, s.confidence_sum / s.samples) for s in runs]
            for track, runs in self.runs.items()
        }


def track_name(track: Any) -> str:
    return "untracked" if track is None else f"track {track}"
