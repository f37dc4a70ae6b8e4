"""The time series the plots and the HTML report draw, collected once per export.

While the records stream by, each video's samples are kept compactly (float32 arrays per
track, about 200 bytes per face sample): a track's time, frame, AU scores, valence,
arousal and expression label, and every face's time and label.  ``SeriesSink`` collects
them once, ahead of the plots and the report, which read them at the end; a sink that
keeps more per sample (the report's expression scores) is told of each sample as it is
taken, so that its columns stay aligned with the series.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np

from fatools.export.sinks import Job, Sink, Video
from fatools.facs import ACTION_UNITS, AU45
from fatools.records import au_probs, blink_of, expression_of, number, va_of

HEAT_CODES = [u.code for u in ACTION_UNITS if u.code.startswith("AU")] + [AU45.code]


class TrackSeries:
    """One track's samples: time, frame, AU scores (HEAT_CODES order, NaN when missing), V, A."""

    __slots__ = ("arousal", "au", "frame", "labels", "last_seq", "t", "valence")

    def __init__(self) -> None:
        self.t, self.frame = array("d"), array("d")
        self.au, self.valence, self.arousal = array("f"), array("f"), array("f")
        self.labels = array("i")  # index into the video's label list, -1 when none
        self.last_seq = -1

    def __len__(self) -> int:
        return len(self.frame)


class VideoSeries:
    """One video's samples: a TrackSeries per track, and every face's time and expression
    label (the expression figure counts faces, not tracks)."""

    def __init__(self) -> None:
        self.tracks: dict[Any, TrackSeries] = {}
        self.label_names: list[str] = []
        self.label_index: dict[str, int] = {}
        self.all_t, self.all_frame, self.all_labels = array("d"), array("d"), array("i")
        self.seq = 0
        self.threshold: float | None = None

    def label(self, name: Any) -> int:
        if not isinstance(name, str):
            return -1
        if name not in self.label_index:
            self.label_index[name] = len(self.label_names)
            self.label_names.append(name)
        return self.label_index[name]


class TrackArrays:
    """A track's samples as arrays, in time order, samples without a position left out.

    ``au`` (the largest, HEAT_CODES rows of float64 per sample) is expanded from the
    series each time it is read, not kept: the arrays of every plotted track are alive
    together, the AU matrix of one track is needed only while its heatmap is drawn.
    """

    def __init__(self, series: TrackSeries, timed: bool) -> None:
        x = np.frombuffer(series.t if timed else series.frame)
        keep = np.nonzero(~np.isnan(x))[0]
        order = keep[np.argsort(x[keep], kind="stable")]
        self._series, self._order = series, order
        self.x = x[order]
        self.valence = self.ordered(series.valence)
        self.arousal = self.ordered(series.arousal)
        self.labels = np.frombuffer(series.labels, dtype=np.int32)[order]

    def ordered(self, column: array) -> np.ndarray:
        """A float32 column kept beside the series (one value per sample), as these arrays are."""
        return np.frombuffer(column, dtype=np.float32)[self._order].astype(float)

    @property
    def au(self) -> np.ndarray:
        scores = np.frombuffer(self._series.au, dtype=np.float32).reshape(-1, len(HEAT_CODES))
        return scores[self._order].T.astype(float)


# Told of each sample as it is taken: the video, the track, its series (the sample is its
# last) and the face the sample is of.
SampleListener = Callable[[Video, Any, TrackSeries, dict], None]


class SeriesSink(Sink):
    """Collects the series of every video (``videos``) for the plots and the report;
    ``Export`` opens one when either runs and puts it in ``job.series``."""

    trusted_faces = True  # the plots and the report leave out faces below --min-quality

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.videos: dict[Any, VideoSeries] = {}
        self.listeners: list[SampleListener] = []

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        state = self.videos.get(video.name)
        if state is None:
            state = self.videos[video.name] = VideoSeries()
        state.seq += 1
        t = video.time(record)
        t = math.nan if t is None else t
        frame = number(record.get("frame"))
        frame = math.nan if frame is None else frame
        for face in faces or []:
            label = state.label(expression_of(face).get("label"))
            state.all_t.append(t)
            state.all_frame.append(frame)
            state.all_labels.append(label)
            track = face.get("track")
            try:
                series = state.tracks.get(track)
            except TypeError:  # an unhashable id; fa-summarize reports it
                continue
            if series is None:
                series = state.tracks[track] = TrackSeries()
            if series.last_seq == state.seq:
                continue  # one face per track per frame, as fa-summarize follows them
            series.last_seq = state.seq
            series.t.append(t)
            series.frame.append(frame)
            au = face.get("au")
            probs = au_probs(face) or {}
            if state.threshold is None and isinstance(au, dict) and number(au.get("threshold")) is not None:
                state.threshold = float(au["threshold"])
            blink = blink_of(face)
            series.au.extend(
                [math.nan if number(probs.get(c)) is None else probs[c] for c in HEAT_CODES[:-1]]
                + [math.nan if blink is None else float(blink)]
            )
            valence, arousal, _ = va_of(face)
            series.valence.append(math.nan if valence is None else valence)
            series.arousal.append(math.nan if arousal is None else arousal)
            series.labels.append(label)
            for listener in self.listeners:
                listener(video, track, series, face)
