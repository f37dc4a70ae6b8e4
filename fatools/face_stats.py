"""Mergeable statistics of face samples, for fa-summarize's videos and tracks.

Every figure is a counter, a running sum or a Welford accumulator, and two sets of
statistics merge (a video's overall figures are its tracks' merged), so memory does not
grow with the number of frames.  Durations are cells ``[timed seconds, samples]``: a
sample's time is known only once the next frame of its video arrives (see
fatools.summary), and samples with no timed successor stand for the sampling interval.
"""

from __future__ import annotations

import math
from typing import Any

from fatools.facs import AU45, CODES, QUADRANTS
from fatools.records import expression_of, number, va_of

BLINK = AU45.code
_ORDER = {code: i for i, code in enumerate([*CODES, BLINK])}


def au_key(code: str) -> tuple[int, str]:
    """Sort key: OpenGraphAU's order, then AU45, then unknown codes by name."""
    return (_ORDER.get(code, len(_ORDER)), code)


def as_float(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (``records.number``), else None:
    summaries print 3.0 s, not 3 s, whatever the records held."""
    value = number(value)
    return None if value is None else float(value)


def rounded(value: float | None) -> float | None:
    """Rounded to the summaries' 6 decimals."""
    return None if value is None else round(value, 6)


class Welford:
    """Running count, mean and variance (Welford), mergeable."""

    __slots__ = ("m2", "mean", "n")

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def merge(self, other: Welford) -> None:  # Chan et al.'s parallel update
        n = self.n + other.n
        if other.n:
            delta = other.mean - self.mean
            self.mean += delta * other.n / n
            self.m2 += other.m2 + delta * delta * self.n * other.n / n
            self.n = n

    def summary(self) -> dict:
        if not self.n:
            return {"faces": 0, "mean": None, "std": None}
        return {
            "faces": self.n,
            "mean": rounded(self.mean),
            "std": rounded(math.sqrt(max(self.m2, 0.0) / self.n)),
        }


def duration_seconds(cell: list, interval: float | None) -> float | None:
    """A duration cell is [timed seconds, samples that stand for the sampling interval]."""
    if not cell[1]:
        return rounded(cell[0])
    return None if interval is None else rounded(cell[0] + cell[1] * interval)


class FaceStats:
    """Everything STATS reports for a set of face samples, mergeable."""

    __slots__ = ("arousal", "au", "emotions", "faces", "labels", "quadrants", "seconds", "valence")

    def __init__(self) -> None:
        self.faces = 0
        self.seconds = [0.0, 0]
        self.emotions: dict[str, int] = {}
        self.labels: set[str] = set()
        self.valence, self.arousal = Welford(), Welford()
        self.quadrants: dict[str, list] = {}
        self.au: dict[str, list] = {}  # code -> [faces, active, sum of probabilities]

    def add(self, face: dict, probs: dict | None, on: float, blink: bool | None, pending: list) -> None:
        self.faces += 1
        pending.append(self.seconds)
        expression = expression_of(face)
        label = expression.get("label")
        if isinstance(label, str):
            self.emotions[label] = self.emotions.get(label, 0) + 1
        scores = expression.get("scores")
        if isinstance(scores, dict) and not self.labels.issuperset(scores):
            self.labels.update(scores)
        if isinstance(face.get("va"), dict):
            valence, arousal, quadrant = va_of(face)
            if valence is not None:
                self.valence.add(float(valence))
            if arousal is not None:
                self.arousal.add(float(arousal))
            if isinstance(quadrant, str):
                cell = self.quadrants.get(quadrant)
                if cell is None:
                    cell = self.quadrants[quadrant] = [0.0, 0]
                pending.append(cell)
        au = self.au
        if probs:
            for code, p in probs.items():
                if isinstance(p, (int, float)):
                    cell = au.get(code)
                    if cell is None:
                        cell = au[code] = [0, 0, 0.0]
                    cell[0] += 1
                    cell[2] += p
                    if p > on:
                        cell[1] += 1
        if blink is not None:
            cell = au.get(BLINK)
            if cell is None:
                cell = au[BLINK] = [0, 0, None]
            cell[0] += 1
            cell[1] += blink

    def merge(self, other: FaceStats) -> None:
        self.faces += other.faces
        self.seconds = [self.seconds[0] + other.seconds[0], self.seconds[1] + other.seconds[1]]
        for label, count in other.emotions.items():
            self.emotions[label] = self.emotions.get(label, 0) + count
        self.labels |= other.labels
        self.valence.merge(other.valence)
        self.arousal.merge(other.arousal)
        for quadrant, cell in other.quadrants.items():
            mine = self.quadrants.get(quadrant, [0.0, 0])
            self.quadrants[quadrant] = [mine[0] + cell[0], mine[1] + cell[1]]
        for code, cell in other.au.items():
            have = self.au.get(code)
            self.au[code] = (
                list(cell)
                if have is None
                else [have[0] + cell[0], have[1] + cell[1], None if cell[2] is None else have[2] + cell[2]]
            )

    def summary(self, interval: float | None, top: int, blinks: dict) -> dict:
        labelled = sum(self.emotions.values())
        most_common = min(self.emotions, key=lambda k: (-self.emotions[k], k)) if labelled else None
        distribution = (
            {
                label: rounded(self.emotions.get(label, 0) / labelled)
                for label in sorted(self.labels | set(self.emotions))
            }
            if labelled
            else {}
        )
        au = {}
        for code in sorted(self.au, key=au_key):
            faces, active, total = self.au[code]
            au[code] = {
                "faces": faces,
                "active": active,
                "activation_rate": rounded(active / faces),
                "mean_probability": None if total is None else rounded(total / faces),
            }
        ranked = sorted(
            (code for code in au if au[code]["active"]), key=lambda c: (-au[c]["active"], au_key(c))
        )
        return {
            "faces": self.faces,
            "seconds": duration_seconds(self.seconds, interval),
            "emotion": {"faces": labelled, "most_common": most_common, "distribution": distribution},
            "valence": self.valence.summary(),
            "arousal": self.arousal.summary(),
            "quadrant_seconds": {
                q: duration_seconds(self.quadrants.get(q, [0.0, 0]), interval)
                for q in sorted(set(QUADRANTS.values()) | set(self.quadrants))
            },
            "au": au,
            "most_active_aus": [[code, au[code]["active"]] for code in ranked[: top or None]],
            "blinks": blinks,
        }
