"""An interactive page per video (``report.html``; ``report_<stem>.html`` with several):
the video in an HTML5 player above timelines of expression probabilities, valence and
arousal and an action-unit heatmap, which follow the player and seek it when clicked.

Charts are drawn by plotly.js, written once as ``plotly.min.js`` (about 4.8 MB) beside
the reports, or, for fa-run over several inputs, once at the results tree's root
(``Export(assets_dir=...)``) for every report below it; a page opens from the file
system with no network and stays small itself.  The page's own script is only the
glue between the player and the charts.

Display rule for long inputs: a track with more than MAX_POINTS samples is shown as
MAX_POINTS equal-width time bins, each the mean of its samples (NaN when the track was
not seen in it); the CSVs keep every sample.  A two-hour video sampled 6 times a second
(43,200 samples) gives a page of 0.7 MB per track that Chromium opens in about 2 s
(benchmarks/html_report.py).
"""

from __future__ import annotations

import html
import json
import math
import os
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from fatools.export.plots import track_name
from fatools.export.series import HEAT_CODES, TrackArrays, TrackSeries, VideoSeries
from fatools.export.sinks import Job, Sink, Video
from fatools.records import expression_of, number, track_order
from fatools.versions import package_versions
from fatools.video import is_image_path

MAX_POINTS = 2000
PLOTLY_JS = "plotly.min.js"
_PAGE = Path(__file__).with_name("report_page.html")


def downsample(
    x: np.ndarray, columns: list[np.ndarray], max_points: int = MAX_POINTS
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``x`` and each column binned into ``max_points`` equal-width bins of x (bin means),
    unchanged when there are no more samples than that."""
    if len(x) <= max_points:
        return x, columns
    edges = np.linspace(x[0], x[-1], max_points + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max_points - 1)
    counts = np.bincount(which, minlength=max_points).astype(float)
    centres = (edges[:-1] + edges[1:]) / 2
    out = []
    for column in columns:
        column = np.asarray(column, dtype=float)
        seen = ~np.isnan(column)
        sums = np.bincount(which[seen], weights=column[seen], minlength=max_points)
        n = np.bincount(which[seen], minlength=max_points)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(n > 0, sums / n, np.nan))
    keep = counts > 0
    return centres[keep], [c[keep] for c in out]


def _list(values: np.ndarray, digits: int = 4) -> list:
    return [None if math.isnan(v) else round(float(v), digits) for v in values]


class HtmlSink(Sink):
    """A page per video of the series ``job.series`` collects (export.series), and what
    the page shows besides: expression scores and quality verdicts per sample, boxes."""

    trusted_faces = True  # the boxes drawn are those of the faces the series keep
    fmt = "html"

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        # Expression probabilities per track, aligned with the series' samples.
        self.probs: dict[Any, dict[Any, dict[str, array]]] = {}
        self.boxes: dict[Any, dict] = {}  # the first frame with faces: its size and boxes, per video
        self.verdicts: dict[Any, dict[Any, dict[str, int]]] = {}  # face quality verdicts, per track
        job.series.listeners.append(self.sampled)

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        if faces and video.name not in self.boxes:  # a photo's faces are drawn on it
            self.boxes[video.name] = {
                "size": [record.get("width"), record.get("height")],
                "faces": [
                    {"track": track_name(f.get("track")), "box": f["box"]}
                    for f in faces
                    if isinstance(f.get("box"), list) and len(f["box"]) == 4
                ],
            }

    def sampled(self, video: Video, track: Any, series: TrackSeries, face: dict) -> None:
        """``face`` was just taken as ``series``' sample of this frame: its verdict and
        expression scores go beside it."""
        quality = face.get("quality")
        verdict = quality.get("verdict") if isinstance(quality, dict) else None
        if isinstance(verdict, str):
            counts = self.verdicts.setdefault(video.name, {}).setdefault(track, {})
            counts[verdict] = counts.get(verdict, 0) + 1
        columns = self.probs.setdefault(video.name, {}).setdefault(track, {})
        expression = expression_of(face)
        given = expression.get("scores", expression.get("probs"))
        given = given if isinstance(given, dict) else {}
        for label in given:
            if label not in columns and isinstance(label, str):
                columns[label] = array("f", [math.nan] * (len(series) - 1))
        for label, column in columns.items():
            value = number(given.get(label))
            column.append(math.nan if value is None else value)

    def finish(self) -> None:
        job = self.job
        wrote = False
        for video in job.videos.values():
            self._page(video)
            wrote = True
        if not wrote:
            return
        import plotly.offline

        script = plotly.offline.get_plotlyjs()
        if job.assets_dir is None:
            path = job.staging.temp()
            path.write_text(script, encoding="utf-8")
            job.staging.stage(self.fmt, path, PLOTLY_JS)
        else:
            _share(Path(job.assets_dir) / PLOTLY_JS, script)

    def _script_src(self) -> str:
        """The page's reference to plotly.min.js: beside it, or in the tree's shared assets."""
        if self.job.assets_dir is None:
            return PLOTLY_JS
        relative = os.path.relpath(
            Path(self.job.assets_dir).resolve() / PLOTLY_JS, Path(self.job.staging.out_dir).resolve()
        )
        return quote(Path(relative).as_posix())

    def _tracks(self, video: Video, state: VideoSeries | None, timed: bool) -> list[dict]:
        if state is None:
            return []
        summary = {
            t.get("track"): t for t in self.job.video_summary(video).get("tracks", []) if isinstance(t, dict)
        }
        out = []
        for track, series in sorted(state.tracks.items(), key=lambda kv: track_order(kv[0])):
            arrays = TrackArrays(series, timed)
            if not len(arrays.x):
                continue
            labels = self.probs.get(video.name, {}).get(track, {})
            label_names = list(labels)
            exp = [arrays.ordered(labels[n]) for n in label_names]
            au = list(arrays.au)
            x, columns = downsample(arrays.x, [arrays.valence, arrays.arousal, *exp, *au])
            valence, arousal = columns[0], columns[1]
            exp, au = columns[2 : 2 + len(exp)], columns[2 + len(exp) :]
            info = summary.get(track, {})
            out.append(
                {
                    "id": track_name(track),
                    "samples": len(arrays.x),
                    "points": len(x),
                    "x": _list(x, 3),
                    "valence": _list(valence),
                    "arousal": _list(arousal),
                    "expression": {
                        name: _list(values) for name, values in zip(label_names, exp, strict=True)
                    },
                    "au": [_list(values, 3) for values in au],
                    "au_codes": HEAT_CODES,
                    "episodes": [
                        [e.get("au"), e.get("onset"), e.get("offset")]
                        for e in info.get("au_events", [])
                        if isinstance(e, dict)
                    ],
                    "summary": _track_summary(info),
                    "quality": self.verdicts.get(video.name, {}).get(track, {}),
                }
            )
        return out

    def page_data(self, video: Video) -> dict:
        """What the page of ``video`` shows (its ``DATA``), from what the records gave so far:
        report.html's at the end of an export, the live page's (``export.live_page``) while
        a run goes on."""
        job = self.job
        state = job.series.videos.get(video.name)
        timed = state is not None and not np.isnan(np.frombuffer(state.all_t)).any()
        header = video.header or {}
        source = header.get("video") or (str(video.name) if video.name is not None else None)
        out_dir = job.staging.out_dir
        media, kind, original = None, "none", None
        if isinstance(source, str) and Path(source).is_file():
            kind = _media_kind(source, header)
            media = original = _href(source, out_dir)
        suffix = job.suffix(video)
        if kind == "video" and "overlay" in job.formats:  # made by this export: H.264, the source's clock
            media = f"facial_analysis{suffix}_{job.timestamp}.mp4"
        summary = job.video_summary(video)
        return {
            "video": str(video.name),
            "media": media,
            "original": original,
            "kind": kind,
            "timed": timed,
            "frame": self.boxes.get(video.name, {"size": [None, None], "faces": []}),
            "vtt": f"facial_analysis{suffix}_{job.timestamp}.vtt" if "webvtt" in job.formats else None,
            "threshold": state.threshold if state and state.threshold is not None else 0.5,
            "step": 1.0 / video.fps if video.fps else None,
            "sample": (summary.get("time") or {}).get("sampling_interval"),
            "tracks": self._tracks(video, state, timed),
            "provenance": {
                "metadata": video.metadata(),
                "models": video.models(),
                "versions": package_versions(),
                "analysis": job.metadata,
                "options": (job.summary or {}).get("options"),
            },
            "frames": summary.get("frames") or {},
            "events": [_event(e) for e in summary.get("events") or [] if isinstance(e, dict)],
        }

    def _page(self, video: Video) -> None:
        job = self.job
        page = render_page(self.page_data(video), f"fatools report: {video.name}", self._script_src())
        path = job.staging.temp()
        path.write_text(page, encoding="utf-8")
        job.staging.stage(self.fmt, path, f"report{job.suffix(video)}.html")


def render_page(data: dict, title: str, plotly_src: str) -> str:
    """The report page (report_page.html) with ``data`` as its ``DATA``; ``data["live"]``
    set makes it the live page, which follows the server's events (fatools.serve)."""
    payload = json.dumps(data, allow_nan=False).replace("</", "<\\/")
    return (
        _PAGE.read_text(encoding="utf-8")
        .replace("{{title}}", html.escape(title))
        .replace("{{plotly}}", html.escape(plotly_src))
        .replace("{{data}}", payload)
    )


def _media_kind(source: str, header: dict) -> str:
    """How the page shows an existing source: ``image`` (an <img> with the boxes) for a
    still, by the extensions every input takes for one (``video.IMAGE_EXTENSIONS``, as
    ``fa-run`` decides), else ``video``."""
    return "image" if header.get("image") or is_image_path(source) else "video"


def _href(path: str, out_dir: Path) -> str:
    """``path`` as the page in ``out_dir`` links to it: relative when it can be, quoted."""
    if os.path.splitdrive(os.path.abspath(path))[0] != os.path.splitdrive(os.path.abspath(out_dir))[0]:
        return Path(path).resolve().as_uri()
    return quote(Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix())


def _event(event: dict) -> dict:
    """An event window of the summary, with the per-track figures the page tabulates."""
    tracks = {}
    for entry in event.get("tracks") or []:
        if not isinstance(entry, dict):
            continue
        shares = entry.get("emotion") or {}
        top = max(shares, key=lambda label: shares[label] or 0) if shares else None
        tracks[track_name(entry.get("track"))] = {
            "visible_share": entry.get("visible_share"),
            "top_expression": top,
            "valence": (entry.get("valence") or {}).get("mean"),
            "arousal": (entry.get("arousal") or {}).get("mean"),
            "blinks_per_minute": (entry.get("blinks") or {}).get("per_minute"),
        }
    return {
        "label": event.get("label"),
        "onset": event.get("onset"),
        "offset": event.get("offset"),
        "frames": event.get("frames"),
        "tracks": tracks,
    }


def _share(path: Path, script: str) -> None:
    """plotly.min.js written once for a results tree: left alone when it is already there
    (the same plotly), else written under a name of this process's and renamed, so that
    concurrent shards of a study never see half a file."""
    try:
        if path.stat().st_size == len(script.encode("utf-8")) and path.read_text(encoding="utf-8") == script:
            return
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_text(script, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _track_summary(info: dict) -> dict:
    """The per-track figures the page shows beside the charts."""
    emotion = info.get("emotion") or {}
    return {
        "faces": info.get("faces"),
        "first": info.get("first"),
        "last": info.get("last"),
        "expression_shares": emotion.get("distribution"),
        "valence": info.get("valence"),
        "arousal": info.get("arousal"),
        "most_active_aus": info.get("most_active_aus"),
        "blinks_per_minute": (info.get("blinks") or {}).get("per_minute"),
    }
