"""The sink protocol of the export formats, and the state they share: one export's job
and what it learns about each video as the records go by (bounded, not per frame).

Names of per-video files are decided at the end, because only then is it known whether
the stream held one video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fatools.export.formatting import get
from fatools.export.staging import Staging, safe_name
from fatools.records import header_fps, number, record_time


@dataclass
class Video:
    """What the export learns about one video as its records go by (bounded, not per frame)."""

    name: Any
    index: int
    header: dict | None = None
    frames: int = 0
    size: tuple[Any, Any] | None = None
    detection: dict | None = None
    au_threshold: float | None = None
    fields: set[str] = field(default_factory=set)  # prediction fields seen in its faces

    @property
    def fps(self) -> float | None:
        return header_fps(self.header)

    def time(self, record: dict) -> float | None:
        """The record's time: ``t``, else frame / fps of the header (as fa-summarize does)."""
        return record_time(record, self.fps)

    def observe(self, record: dict, faces: list[dict]) -> None:
        self.frames += 1
        if self.size is None:
            self.size = (record.get("width"), record.get("height"))
        detection = record.get("detection")
        if self.detection is None and isinstance(detection, dict):
            self.detection = detection
        for face in faces:
            self.fields.update(
                k for k in ("au", "expression", "va", "landmarks3d", "pose", "embedding") if k in face
            )
            au = face.get("au")
            if self.au_threshold is None and isinstance(au, dict) and number(au.get("threshold")) is not None:
                self.au_threshold = au["threshold"]

    def metadata(self) -> dict:
        """The seed's video_metadata: from the header, else what the frame records say."""
        header = self.header or {}
        width, height = self.size or (None, None)
        return {
            "total_frames": header.get("frame_count"),
            "fps": header.get("fps"),
            "width": header.get("width", width),
            "height": header.get("height", height),
            "duration_seconds": header.get("duration"),
            "codec": header.get("codec"),
            "rotation": header.get("rotation"),
        }

    def models(self) -> list[dict]:
        """The models the records show were used; their sha256 is unknown to an export of records."""
        from fatools.models.catalogue import MODELS

        names = []
        if self.detection and isinstance(self.detection.get("detector"), str):
            names.append(self.detection["detector"])
        by_field = {
            "au": ["au"],
            "expression": ["fer"],
            "va": ["va"],
            "landmarks3d": ["align", "align-meta"],
            "embedding": ["embed"],
        }
        if "pose" in self.fields and "landmarks3d" not in self.fields:
            names += ["align", "align-meta"]
        for key, models in by_field.items():
            if key in self.fields:
                names += models
        out = []
        for name in dict.fromkeys(names):
            spec = MODELS.get(name)
            out.append(
                {
                    "name": name,
                    "task": spec.task if spec else None,
                    "description": spec.description if spec else None,
                    "sha256": None,
                }
            )
        return out


@dataclass
class Job:
    """One export: what every format needs to know besides the records."""

    staging: Staging
    timestamp: str
    started: Any  # datetime of the export's start
    formats: tuple[str, ...]
    metadata: dict  # the caller's analysis_metadata, merged over what is inferred
    keep_analysis: bool = False
    videos: dict[Any, Video] = field(default_factory=dict)
    expression_labels: tuple[str, ...] = ()  # the configuration's expression classes, in its order
    summary: dict | None = None  # the whole summary, set before the formats finish
    assets_dir: Path | None = None  # where shared page assets (plotly.min.js) go; None: the output directory
    analyses: list[dict] = field(default_factory=list)
    series: Any = None  # export.series.SeriesSink: what the plots and the report draw, when either runs
    _suffixes: dict[Any, str] = field(default_factory=dict)

    def video_summary(self, video: Video) -> dict:
        for entry in get(self.summary, "videos", default=[]):
            if isinstance(entry, dict) and entry.get("video") == video.name:
                return entry
        return {}

    def suffix(self, video: Video) -> str:
        """ "" with one video; else "_<stem>", made unique (a/v.mp4 and b/v.mp4 give _v and _v-2)."""
        if len(self.videos) == 1:
            return ""
        if not self._suffixes:
            used: set[str] = set()
            for name in self.videos:
                stem = safe_name(Path(str(name)).stem if name is not None else "unnamed")
                unique, n = stem, 1
                while unique in used:
                    n += 1
                    unique = f"{stem}-{n}"
                used.add(unique)
                self._suffixes[name] = f"_{unique}"
        return self._suffixes[video.name]


class Sink:
    """One export format: sees every record once, as it arrives, then stages its files."""

    fmt = ""
    # Formats of statistics and views (plots, annotations) leave out faces below
    # --min-quality, as the summary does; tables of the records keep every face.
    trusted_faces = False

    def __init__(self, job: Job) -> None:
        self.job = job

    def header(self, video: Video, record: dict) -> None:
        """A video header record."""

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        """A frame record; ``faces`` is None when the record was not run through a detector."""

    def finish(self) -> None:
        """Write what is left and stage the final files (``job.summary`` is set by now)."""

    def abort(self) -> None:
        """Close what is open; the staging removes the files."""
