"""Statistics aligned to an experiment's events (``--events FILE``, ``--baseline LABEL``).

An events file is a CSV with a header: ``onset`` (seconds), ``offset`` or ``duration``
(seconds), ``label``, and optionally ``video`` (for a file that covers several videos:
an event applies to the records of the video whose path, file name or stem it gives;
without the column, or with an empty cell, to every video).  fa-summarize(1) describes
the statistics; this module reads the file (one-line errors naming the line) and
accumulates, in the summary's one pass, per event and per track: the share of the
event's sampled frames in which the track's face is seen, expression shares, valence and
arousal, each AU's activation rate and mean score, and blinks (onsets in the window) per
minute of visible face.  Memory grows with events x tracks, never with frames.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from fatools.errors import FatoolsError
from fatools.face_stats import FaceStats, rounded

EPS = 1e-6  # seconds: timestamps are decimal, an event ending at 10.0 fits a 10.0 s video


class EventsError(FatoolsError):
    """A bad events file; the message names the file and line."""


@dataclass(frozen=True)
class Event:
    line: int  # the line of the file, 2 for the first event
    label: str
    onset: float
    offset: float
    video: str | None = None

    def applies_to(self, video: Any) -> bool:
        if not self.video:
            return True
        path = PurePath(str(video))
        return self.video in (str(video), path.name, path.stem)


def _seconds(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise EventsError(f"{where}: {column} {text!r} is not a number of seconds") from None
    if not value == value or value in (float("inf"), float("-inf")):
        raise EventsError(f"{where}: {column} {text!r} is not a number of seconds")
    return value


def _open_events(path: str) -> IO[str]:
    # Opened apart from the reading, so that only a failed open becomes this message.
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise EventsError(f"{path}: cannot read the events file ({exc.strerror})") from None


def read_events(path: str) -> list[Event]:
    """The events of a CSV file, in file order; EventsError names the line of any problem."""
    with _open_events(path) as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        reader.fieldnames = columns
        missing = [c for c in ("onset", "label") if c not in columns]
        if "offset" not in columns and "duration" not in columns:
            missing.append("offset or duration")
        if missing:
            raise EventsError(
                f"{path}:1: the header lacks {', '.join(missing)} (columns: onset, offset or duration, "
                "label, optional video; see fa-summarize(1), EVENTS)"
            )
        events = []
        try:
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not any((v or "").strip() for k, v in row.items() if k is not None):
                    continue  # a blank line
                label = (row.get("label") or "").strip()
                if not label:
                    raise EventsError(f"{where}: the event has no label")
                onset = _seconds((row.get("onset") or "").strip(), "onset", where)
                if (row.get("offset") or "").strip():
                    offset = _seconds(row["offset"].strip(), "offset", where)
                elif (row.get("duration") or "").strip():
                    duration = _seconds(row["duration"].strip(), "duration", where)
                    if duration <= 0:
                        raise EventsError(f"{where}: duration {duration:g} s must be positive")
                    offset = onset + duration
                else:
                    raise EventsError(f"{where}: the event has neither offset nor duration")
                if onset < 0:
                    raise EventsError(f"{where}: onset {onset:g} s is before the video starts")
                if offset <= onset:
                    raise EventsError(f"{where}: offset {offset:g} s is not after onset {onset:g} s")
                video = (row.get("video") or "").strip() or None
                events.append(Event(reader.line_num, label, onset, offset, video))
        except csv.Error as exc:
            raise EventsError(f"{path}:{reader.line_num}: not CSV ({exc})") from None
    if not events:
        raise EventsError(f"{path}: no events in the file (one line per event after the header)")
    return events


def check_baseline(events: list[Event], baseline: str | None, path: str) -> None:
    if baseline is not None and not any(e.label == baseline for e in events):
        labels = ", ".join(sorted({e.label for e in events}))
        raise EventsError(f"{path}: no event is labelled {baseline!r} for --baseline (labels: {labels})")


def require_events_for_baseline(events: str | None, baseline: str | None) -> None:
    """ValueError for a baseline without an events file to find its label in."""
    if baseline is not None and events is None:
        raise ValueError("--baseline needs --events")


def check_events_options(events: str | None, baseline: str | None) -> None:
    """--events and --baseline checked before any work starts: ValueError for --baseline
    without --events, EventsError (naming the line) for a bad file or a missing label."""
    require_events_for_baseline(events, baseline)
    if events is not None:
        check_baseline(read_events(events), baseline, events)


class _Cell:
    """One event's statistics for one track."""

    __slots__ = ("blinks", "face_frames", "last_seq", "stats")

    def __init__(self) -> None:
        self.stats = FaceStats()
        self.face_frames = 0
        self.blinks = 0
        self.last_seq = -1


class EventWindows:
    """The events of one video, fed the video's frames in time order."""

    def __init__(self, events: list[Event], video: Any, path: str, baseline: str | None) -> None:
        self.path = path
        self.baseline = baseline
        self.events = sorted((e for e in events if e.applies_to(video)), key=lambda e: (e.onset, e.line))
        self.video = video
        self.next = 0
        self.active: list[int] = []
        self.frames = [0] * len(self.events)
        self.cells: dict[tuple[int, Any], _Cell] = {}
        self.seq = 0

    def check_duration(self, duration: float | None) -> None:
        """Refuse events that lie outside the video (its header's duration)."""
        if duration is None:
            return
        for event in self.events:
            if event.onset >= duration - EPS or event.offset > duration + EPS:
                raise EventsError(
                    f"{self.path}:{event.line}: event {event.label!r} ({event.onset:g}-"
                    f"{event.offset:g} s) is outside {self.video} ({duration:g} s long)"
                )

    def frame(self, t: float | None) -> list[int]:
        """The events the frame at ``t`` falls in (onset <= t < offset)."""
        self.seq += 1
        if t is None:
            return []
        while self.next < len(self.events) and self.events[self.next].onset <= t + EPS:
            self.active.append(self.next)
            self.next += 1
        self.active = [i for i in self.active if t < self.events[i].offset - EPS]
        for i in self.active:
            self.frames[i] += 1
        return self.active

    def face(
        self,
        active: list[int],
        track: Any,
        face: dict,
        probs: dict | None,
        on: float,
        blink: bool | None,
        blink_onset: bool,
    ) -> None:
        for i in active:
            cell = self.cells.get((i, track))
            if cell is None:
                cell = self.cells[(i, track)] = _Cell()
            if cell.last_seq == self.seq:
                continue  # one face per track per frame, as the summary follows tracks
            cell.last_seq = self.seq
            cell.face_frames += 1
            cell.stats.add(face, probs, on, blink, [])
            cell.blinks += blink_onset

    def result(
        self, interval: float | None, last_t: float | None, track_key: Callable[[Any], tuple]
    ) -> list[dict]:
        if self.events and last_t is not None and self.events[-1].onset > last_t + (interval or 0) + EPS:
            late = max(self.events, key=lambda e: e.onset)
            raise EventsError(
                f"{self.path}:{late.line}: event {late.label!r} starts at {late.onset:g} s, after the "
                f"last frame of {self.video} ({last_t:g} s)"
            )
        rows = []
        baseline = self._baseline(interval, track_key) if self.baseline is not None else {}
        for i, event in enumerate(self.events):
            tracks = sorted({track for (j, track) in self.cells if j == i}, key=track_key)
            out_tracks = []
            for track in tracks:
                stats = _statistics(self.cells[(i, track)], self.frames[i], interval)
                if baseline and event.label != self.baseline and track in baseline:
                    stats["vs_baseline"] = _difference(stats, baseline[track])
                out_tracks.append({"track": track, **stats})
            rows.append(
                {
                    "event": event.line,
                    "label": event.label,
                    "onset": rounded(event.onset),
                    "offset": rounded(event.offset),
                    "frames": self.frames[i],
                    "tracks": out_tracks,
                }
            )
        return rows

    def _baseline(self, interval: float | None, track_key: Callable[[Any], tuple]) -> dict[Any, dict]:
        """Per track, the statistics of every baseline event pooled."""
        pooled: dict[Any, _Cell] = {}
        frames = 0
        for i, event in enumerate(self.events):
            if event.label != self.baseline:
                continue
            frames += self.frames[i]
            for (j, track), cell in self.cells.items():
                if j != i:
                    continue
                into = pooled.setdefault(track, _Cell())
                into.stats.merge(cell.stats)
                into.face_frames += cell.face_frames
                into.blinks += cell.blinks
        return {track: _statistics(cell, frames, interval) for track, cell in pooled.items()}


def _statistics(cell: _Cell, frames: int, interval: float | None) -> dict:
    summary = cell.stats.summary(interval, 0, {"count": None, "per_minute": None})
    seconds = cell.face_frames * interval if interval else None
    return {
        "face_frames": cell.face_frames,
        "visible_share": rounded(cell.face_frames / frames) if frames else None,
        "visible_seconds": rounded(seconds),
        "emotion": summary["emotion"]["distribution"],
        "valence": summary["valence"],
        "arousal": summary["arousal"],
        "au": {
            code: {"activation_rate": v["activation_rate"], "mean_probability": v["mean_probability"]}
            for code, v in summary["au"].items()
        },
        "blinks": {
            "count": cell.blinks if "AU45" in summary["au"] else None,
            "per_minute": rounded(cell.blinks * 60.0 / seconds)
            if seconds and "AU45" in summary["au"]
            else None,
        },
    }


def _minus(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else rounded(a - b)


def _difference(stats: dict, base: dict) -> dict:
    """Each figure minus the baseline's (None where either is unknown)."""
    labels = sorted(set(stats["emotion"]) | set(base["emotion"]))
    codes = [c for c in stats["au"] if c in base["au"]]
    return {
        "visible_share": _minus(stats["visible_share"], base["visible_share"]),
        "emotion": {
            label: _minus(
                stats["emotion"].get(label, 0.0) if stats["emotion"] else None,
                base["emotion"].get(label, 0.0) if base["emotion"] else None,
            )
            for label in labels
        },
        "valence_mean": _minus(stats["valence"]["mean"], base["valence"]["mean"]),
        "arousal_mean": _minus(stats["arousal"]["mean"], base["arousal"]["mean"]),
        "au": {
            code: {
                "activation_rate": _minus(
                    stats["au"][code]["activation_rate"], base["au"][code]["activation_rate"]
                ),
                "mean_probability": _minus(
                    stats["au"][code]["mean_probability"], base["au"][code]["mean_probability"]
                ),
            }
            for code in codes
        },
        "blinks_per_minute": _minus(stats["blinks"]["per_minute"], base["blinks"]["per_minute"]),
    }
