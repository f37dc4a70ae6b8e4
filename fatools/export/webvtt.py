"""A WebVTT caption track (``facial_analysis_<timestamp>.vtt``), one per video, that a
browser's ``<video>`` element (``<track kind="captions">``) or VLC shows over the video.

Each cue is a time span with the same faces, expressions and active action units: one
line per face (``track 0: Happiness, AU6 AU12 AU25``).  A sampled frame's span runs to
the next sampled frame (fa-summarize(1)'s rule: unless that is more than the maximum
gap later, when it lasts one sampling interval); consecutive spans with the same text
are one cue.  Frames without faces have no cue.  Cues are written as the records arrive:
only the open cue of each video is held.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from fatools.export.formatting import active_list
from fatools.export.segments import Clock, track_name
from fatools.export.sinks import Job, Sink, Video
from fatools.records import expression_of, number


def timestamp(seconds: float) -> str:
    """WebVTT's HH:MM:SS.mmm."""
    total = max(0, round(seconds * 1000))
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def cue_text(faces: list[dict]) -> str:
    """One line per face: who, the expression, the active action units."""
    lines = []
    for index, face in enumerate(faces):
        track = face.get("track")
        who = track_name(track) if track is not None else f"face {face.get('face', index)}"
        parts = []
        label = expression_of(face).get("label")
        if isinstance(label, str):
            parts.append(label)
        active = active_list(face)
        if active is not None:
            parts.append(" ".join(active) if active else "no active AU")
        # "-->" may not appear in a cue's text, and a blank line would end the cue.
        line = f"{who}: {', '.join(parts) if parts else 'face'}".replace("-->", "->")
        lines.append(line.replace("\n", " "))
    return "\n".join(lines)


class _Open:
    __slots__ = ("clock", "cues", "handle_path", "last", "start", "text")

    def __init__(self, path: Path) -> None:
        self.clock = Clock()
        self.start: float | None = None
        self.last: float | None = None
        self.text = ""
        self.handle_path = path
        self.cues = 0


class WebVttSink(Sink):
    trusted_faces = True
    fmt = "webvtt"

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.videos: dict[Any, _Open] = {}
        self.handle: IO[str] | None = None
        self.current: Any = object()

    def _state(self, video: Video) -> _Open:
        state = self.videos.get(video.name)
        if state is None:
            path = self.job.staging.temp()
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("WEBVTT - fatools faces, expressions and active action units\n")
            state = self.videos[video.name] = _Open(path)
        return state

    def _write(self, video_name: Any, state: _Open, start: float, end: float) -> None:
        # One file open at a time: a stream of many videos must not run out of descriptors.
        if self.current != video_name or self.handle is None:
            if self.handle is not None:
                self.handle.close()
            # Kept open across calls, closed on the next video or at the end.
            self.handle = open(state.handle_path, "a", encoding="utf-8")  # noqa: SIM115
            self.current = video_name
        state.cues += 1
        self.handle.write(
            f"\n{state.cues}\n{timestamp(start)} --> {timestamp(max(end, start))}\n{state.text}\n"
        )
        state.start = state.last = None
        state.text = ""

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        t = number(video.time(record))
        if t is None:
            return  # no clock (images without a rate): nothing to time a cue by
        state = self._state(video)
        state.clock.tick(t)
        text = cue_text(faces) if faces else ""
        if state.start is not None and state.last is not None:  # a cue is open (both are set together)
            continuous = state.clock.continues(state.last, t)
            if continuous and text == state.text:
                state.last = t
                return
            end = t if continuous else state.last + (state.clock.interval or 0.0)
            self._write(video.name, state, state.start, end)
        if text:
            state.start = state.last = t
            state.text = text

    def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def finish(self) -> None:
        job = self.job
        for video in job.videos.values():
            state = self._state(video)
            if state.start is not None and state.last is not None:
                interval = number((job.video_summary(video).get("time") or {}).get("sampling_interval"))
                end = state.last + (interval or state.clock.interval or 0.0)
                self._write(video.name, state, state.start, end)
        self.abort()
        for video in job.videos.values():
            job.staging.stage(
                self.fmt,
                self.videos[video.name].handle_path,
                f"facial_analysis{job.suffix(video)}_{job.timestamp}.vtt",
            )
