"""Per-video and per-track statistics and action-unit episodes of a record stream.

The rules (time a sample stands for, episodes with hysteresis, blinks, faces without a
track) are specified in fa-summarize(1); this module implements them in one pass.

Streaming: every statistic is a running sum, a counter or a Welford accumulator, and
each (track, AU) pair holds at most one open episode, so memory grows with videos,
tracks, AUs and the episodes reported, never with the number of frames.  The one
quantity that needs the future, the interval a sample stands for, is known when the
next frame of its video arrives: the samples of the last frame wait in ``pending`` as
references to the duration cells they add to.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fatools.errors import FatoolsError
from fatools.face_stats import BLINK, FaceStats, as_float, au_key, duration_seconds, rounded
from fatools.quality import split as quality_split
from fatools.records import (
    SCHEMA_VERSION,
    au_probs,
    au_threshold,
    blink_ear,
    blink_of,
    faces_of,
    header_fps,
    is_frame,
    is_header,
    record_time,
    track_order,
)

if TYPE_CHECKING:
    from fatools.events import Event, EventWindows

log = logging.getLogger("fatools")

# Without --episode-gap a gap is longer than this many sampling intervals and this many seconds:
# one or two missed detections must not split a smile, a sparse sampling rate must not
# split everything.
GAP_INTERVALS = 2.5
GAP_FLOOR = 0.5
BUCKET = 1e-4  # intervals are histogrammed to 0.1 ms: bounded memory on variable-rate video
EPS = 1e-9  # decimal timestamps (0.2 * k) must not turn 0.2 s into 0.19999 s


@dataclass(frozen=True)
class SummaryOptions:
    """fa-summarize's options; ``None`` thresholds and gap mean per record / automatic."""

    on_threshold: float | None = None
    off_threshold: float = 0.4
    min_duration: float = 0.2
    episode_gap: float | None = None
    top: int = 5
    events: str | None = None  # a CSV of the experiment's events (fatools.events)
    baseline: str | None = None  # the label of the events the others are compared with
    min_quality: str | None = None  # leave out faces whose quality verdict is below (fatools.quality)

    def __post_init__(self) -> None:
        from fatools.events import require_events_for_baseline

        require_events_for_baseline(self.events, self.baseline)
        if self.min_quality is not None and self.min_quality not in ("poor", "fair", "good"):
            raise ValueError("min_quality must be poor, fair or good")
        if self.on_threshold is not None and not 0 <= self.on_threshold <= 1:
            raise ValueError("on_threshold must be in [0, 1]")
        if not 0 <= self.off_threshold <= 1:
            raise ValueError("off_threshold must be in [0, 1]")
        if self.on_threshold is not None and self.off_threshold > self.on_threshold:
            raise ValueError("off_threshold must not be above on_threshold")
        if self.min_duration < 0:
            raise ValueError("min_duration must be >= 0")
        if self.episode_gap is not None and not self.episode_gap > 0:
            raise ValueError("episode_gap must be > 0")
        if self.top < 0:
            raise ValueError("top must be >= 0")


class _Episode:
    """One open activation episode of one AU of one track."""

    __slots__ = (
        "apex",
        "apex_frame",
        "best",
        "first_frame",
        "frames",
        "last_frame",
        "last_t",
        "onset",
        "peak",
        "seq",
    )

    def __init__(
        self, seq: int, t: float | None, frame: int | None, strength: float | None, peak: float | None
    ) -> None:
        self.seq, self.onset, self.first_frame = seq, t, frame
        self.apex, self.apex_frame, self.best, self.peak = t, frame, strength, peak
        self.frames, self.last_t, self.last_frame = 1, t, frame

    def extend(self, t: float | None, frame: int | None, strength: float | None, peak: float | None) -> None:
        self.frames += 1
        self.last_t, self.last_frame = t, frame
        if strength is not None and (self.best is None or strength > self.best):
            self.apex, self.apex_frame, self.best, self.peak = t, frame, strength, peak


class _Track:
    __slots__ = ("events", "first", "first_frame", "id", "last", "last_frame", "last_seq", "open", "stats")

    def __init__(self, track_id: Any) -> None:
        self.id, self.stats = track_id, FaceStats()
        self.first: float | None = None
        self.last: float | None = None
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        self.last_seq = 0
        self.open: dict[str, _Episode] = {}
        self.events: list[tuple] = []  # (episode, au, offset or None when deferred, end reason)

    def close(
        self, code: str, episode: _Episode, offset: float | None, end: str, min_duration: float
    ) -> None:
        if (
            offset is not None
            and episode.onset is not None
            and code != BLINK
            and offset - episode.onset < min_duration - EPS
        ):
            return
        self.events.append((episode, code, offset, end))

    def close_all(self, end: str) -> None:
        # The offset of an episode nobody saw end waits for the video's sampling interval.
        for code, episode in self.open.items():
            self.events.append((episode, code, None, end))
        self.open.clear()

    def observe(
        self,
        t: float | None,
        frame: int | None,
        seq: int,
        probs: dict | None,
        on: float,
        off: float,
        blink: bool | None,
        ear: float | None,
        min_duration: float,
    ) -> None:
        open_ = self.open
        if probs:
            for code, p in probs.items():
                if not isinstance(p, (int, float)):
                    continue
                episode = open_.get(code)
                if episode is None:
                    if p > on:
                        open_[code] = _Episode(seq, t, frame, p, p)
                elif p >= off:
                    episode.extend(t, frame, p, p)
                else:
                    del open_[code]
                    self.close(code, episode, t, "below", min_duration)
        if blink is not None:
            strength = None if ear is None else -ear  # the most closed sample is the apex
            episode = open_.get(BLINK)
            if episode is None:
                if blink:
                    open_[BLINK] = _Episode(seq, t, frame, strength, None)
            elif blink:
                episode.extend(t, frame, strength, None)
            else:
                del open_[BLINK]
                self.close(BLINK, episode, t, "below", min_duration)

    def summary(self, interval: float | None, options: SummaryOptions) -> dict:
        events = []
        for episode, code, offset, end in sorted(self.events, key=lambda e: (e[0].seq, au_key(e[1]))):
            if offset is None and episode.last_t is not None and interval is not None:
                offset = episode.last_t + interval
            duration = None if offset is None or episode.onset is None else offset - episode.onset
            if duration is not None and code != BLINK and duration < options.min_duration - EPS:
                continue
            events.append(
                {
                    "au": code,
                    "onset": rounded(episode.onset),
                    "apex": rounded(episode.apex),
                    "offset": rounded(offset),
                    "duration": rounded(duration),
                    "peak": rounded(episode.peak),
                    "frames": episode.frames,
                    "first_frame": episode.first_frame,
                    "apex_frame": episode.apex_frame,
                    "last_frame": episode.last_frame,
                    "end": end,
                }
            )
        seconds = duration_seconds(self.stats.seconds, interval)
        blinks = (
            _blinks(sum(e["au"] == BLINK for e in events), seconds)
            if BLINK in self.stats.au
            else _blinks(None, None)
        )
        out = {
            "track": self.id,
            "first": rounded(self.first),
            "last": rounded(self.last),
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
        }
        out.update(self.stats.summary(interval, options.top, blinks))
        out["au_events"] = events
        return out


def _blinks(count: int | None, seconds: float | None) -> dict:
    per_minute = None if count is None or not seconds else rounded(count * 60.0 / seconds)
    return {"count": count, "per_minute": per_minute}


class _Video:
    def __init__(self, name: Any, options: SummaryOptions) -> None:
        self.name, self.options = name, options
        self.metadata: dict | None = None
        self.sampled = self.with_faces = self.without_faces = self.not_analysed = self.faces = (
            self.faces_max
        ) = 0
        self.left_out = 0  # faces below --min-quality: in the records, not in the statistics
        self.first: float | None = None
        self.last: float | None = None
        self.prev_t: float | None = None
        self.seconds = [0.0, 0]
        self.intervals: dict[int, list] = {}  # 0.1 ms bucket -> [count, sum of intervals]
        self.mode: int | None = None
        self.pending: list[list] = []
        self.tracks: dict[Any, _Track] = {}
        self.extra = FaceStats()  # faces no track follows: counted in overall only
        self.warned: set[str] = set()
        self.windows: EventWindows | None = None  # with --events

    def _warn(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log.warning("%s: %s", self.name, message)

    def max_gap(self) -> float:
        if self.options.episode_gap is not None:
            return self.options.episode_gap
        if self.mode is None:
            return math.inf
        count, total = self.intervals[self.mode]
        return max(GAP_FLOOR, GAP_INTERVALS * total / count)

    def _advance(self, t: float | None) -> None:
        """Settle the interval the previous frame's samples stand for."""
        interval = None
        if t is not None and self.prev_t is not None:
            dt = t - self.prev_t
            if dt > 0:
                if dt <= self.max_gap() + EPS:
                    interval = dt
                key = round(dt / BUCKET)
                bucket = self.intervals.setdefault(key, [0, 0.0])
                bucket[0] += 1
                bucket[1] += dt
                if self.mode is None or bucket[0] > self.intervals[self.mode][0]:
                    self.mode = key
            else:
                self._warn("order", f"times do not increase at t={t}; treated as a gap")
        for cell in self.pending:
            if interval is None:
                cell[1] += 1
            else:
                cell[0] += interval
        self.pending = []
        if t is not None:
            self.prev_t = t
            self.first = t if self.first is None else self.first
            self.last = t

    def add(self, record: dict) -> None:
        frame = record.get("frame")
        frame = frame if isinstance(frame, int) and not isinstance(frame, bool) else None
        # Refuse a bad record before counting any of it, so that skipping it leaves no trace.
        faces = faces_of(record)
        self.sampled += 1
        seq = self.sampled
        t = as_float(record_time(record, header_fps(self.metadata)))
        self._advance(t)
        self.pending.append(self.seconds)
        if faces is None:
            self.not_analysed += 1
            return
        faces, left_out = quality_split(faces, self.options.min_quality)
        self.left_out += left_out
        self.faces += len(faces)
        self.faces_max = max(self.faces_max, len(faces))
        if faces:
            self.with_faces += 1
        else:
            self.without_faces += 1
        windows = self.windows
        active = windows.frame(t) if windows is not None else []
        options = self.options
        for face in faces:
            probs = au_probs(face)
            on = options.on_threshold if options.on_threshold is not None else au_threshold(face)
            blink, ear = blink_of(face), as_float(blink_ear(face))
            track_id = face.get("track")
            try:
                track = self.tracks.get(track_id)
            except TypeError:
                raise FatoolsError(
                    f"{self.name}: frame {frame}: track id {track_id!r} is not a number or string"
                ) from None
            if track is None:
                track = self.tracks[track_id] = _Track(track_id)
            elif track.last_seq == seq:
                self._warn(
                    f"dup{track_id}",
                    f"several faces of track {track_id} in one frame: only the first is "
                    "followed as that track, the others count in overall only"
                    + (" (run fa-track)" if track_id is None else ""),
                )
                self.extra.add(face, probs, on, blink, self.pending)
                continue
            track.stats.add(face, probs, on, blink, self.pending)
            if (
                t is not None
                and track.last is not None
                and (t - track.last > self.max_gap() + EPS or t <= track.last)
            ):
                track.close_all("gap")
            track.observe(
                t, frame, seq, probs, on, min(options.off_threshold, on), blink, ear, options.min_duration
            )
            track.last_seq = seq
            if windows is not None and active:
                blink_episode = track.open.get(BLINK)
                windows.face(
                    active,
                    track_id,
                    face,
                    probs,
                    on,
                    blink,
                    blink_episode is not None and blink_episode.seq == seq,
                )
            if t is not None:
                track.first = t if track.first is None else track.first
                track.last = t
            track.first_frame = frame if track.first_frame is None else track.first_frame
            track.last_frame = frame

    def finish(self) -> None:
        for cell in self.pending:
            cell[1] += 1
        self.pending = []
        for track in self.tracks.values():
            # A track last seen long before the video's last frame had gone, not been cut off.
            gone = (
                self.last is not None
                and track.last is not None
                and self.last - track.last > self.max_gap() + EPS
            )
            track.close_all("gap" if gone else "end")

    def sampling_interval(self) -> float | None:
        """The median interval between sampled frames (lower median, 0.1 ms buckets), else 1/fps."""
        if self.intervals:
            middle = (sum(count for count, _ in self.intervals.values()) - 1) // 2
            seen = 0
            for key in sorted(self.intervals):
                count, total = self.intervals[key]
                seen += count
                if seen > middle:
                    return total / count
        fps = header_fps(self.metadata)
        return 1.0 / fps if fps else None

    def summary(self) -> dict:
        self.finish()
        interval = self.sampling_interval()
        tracks = [
            self.tracks[k].summary(interval, self.options) for k in sorted(self.tracks, key=track_order)
        ]
        overall = FaceStats()
        overall.merge(self.extra)
        for track in self.tracks.values():
            overall.merge(track.stats)
        blinking = [t for t in tracks if t["blinks"]["count"] is not None]
        count = sum(t["blinks"]["count"] for t in blinking) if blinking else None
        seconds = (
            sum(t["seconds"] for t in blinking) if all(t["seconds"] is not None for t in blinking) else None
        )
        analysed = self.sampled - self.not_analysed
        events = (
            {} if self.windows is None else {"events": self.windows.result(interval, self.last, track_order)}
        )
        return {
            "video": self.name,
            "metadata": self.metadata,
            "frames": {
                "sampled": self.sampled,
                "with_faces": self.with_faces,
                "without_faces": self.without_faces,
                "not_analysed": self.not_analysed,
                "faces": self.faces,
                **({"faces_left_out": self.left_out} if self.options.min_quality is not None else {}),
                "faces_per_frame": {
                    "mean": rounded(self.faces / analysed) if analysed else None,
                    "max": self.faces_max if analysed else None,
                },
            },
            "time": {
                "first": rounded(self.first),
                "last": rounded(self.last),
                "sampling_interval": rounded(interval),
                "seconds": duration_seconds(self.seconds, interval),
            },
            "overall": overall.summary(interval, self.options.top, _blinks(count, seconds)),
            "tracks": tracks,
            **events,
        }


class Summarizer:
    """Accumulates records one at a time; ``result()`` is the summary of all added so far."""

    def __init__(self, options: SummaryOptions | None = None, **fields: Any) -> None:
        self.options = options if options is not None else SummaryOptions(**fields)
        self._videos: dict[Any, _Video] = {}
        self._events: tuple[str, list[Event]] | None = None  # the events file and what it holds
        if self.options.events is not None:
            from fatools.events import check_baseline, read_events

            events = read_events(self.options.events)
            check_baseline(events, self.options.baseline, self.options.events)
            self._events = (self.options.events, events)

    def _video(self, name: Any) -> _Video:
        video = self._videos.get(name)
        if video is None:
            video = self._videos[name] = _Video(name, self.options)
            if self._events is not None:
                from fatools.events import EventWindows

                path, events = self._events
                video.windows = EventWindows(events, name, path, self.options.baseline)
        return video

    def add(self, record: dict) -> None:
        """Take one record: headers give metadata, frames are counted, other types are ignored."""
        if is_header(record):
            video = self._video(record.get("video"))
            video.metadata = {k: v for k, v in record.items() if k not in ("schema", "type", "video")}
            if video.windows is not None:
                duration = video.metadata.get("duration")
                video.windows.check_duration(
                    float(duration)
                    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration > 0
                    else None
                )
        elif is_frame(record):
            self._video(record.get("video")).add(record)

    def result(self) -> dict:
        # Finishing closes open episodes and settles the last frame: do it on a copy so that
        # adding can go on.  Closed episodes never change again, so they are shared, not copied.
        videos = []
        for video in self._videos.values():
            memo = {id(track.events): list(track.events) for track in video.tracks.values()}
            videos.append(copy.deepcopy(video, memo).summary())
        return {
            "schema": SCHEMA_VERSION,
            "type": "summary",
            "options": asdict(self.options),
            "videos": videos,
        }


def summarize(records: Iterable[dict], options: SummaryOptions | None = None, **fields: Any) -> dict:
    """The summary of a record stream (see fa-summarize(1) for every field); ``fields`` are
    SummaryOptions' when no ``options`` are given."""
    summarizer = Summarizer(options, **fields)
    for record in records:
        summarizer.add(record)
    return summarizer.result()
