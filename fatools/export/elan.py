"""ELAN annotations (``facial_analysis_<timestamp>.eaf``), one file per video, linked to
the video, with three kinds of tier per track:

* ``track N expression``: the runs of the predicted expression label (value: the label
  and its mean confidence);
* ``track N AU12`` (one tier per action unit that has episodes): the summary's episodes,
  onset to offset, the value naming the unit, its peak score and the apex time; one
  tier per unit because ELAN's alignable tiers must not overlap, and units do;
* ``track N blinks``: the summary's AU45 episodes.

The AU episodes and blinks are the summary's own (fa-summarize(1)'s rules and options),
so the ELAN file and the summary never disagree.  The expression runs are collected as
the records stream by (memory grows with the label changes, not with frames), and the
document is written at the end with the XML escaped by hand: no XML library holds it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from fatools.export.formatting import get
from fatools.export.segments import Clock, ExpressionRuns, track_name
from fatools.export.sinks import Job, Sink, Video
from fatools.face_stats import au_key
from fatools.facs import AU45, BY_CODE
from fatools.records import number, track_order

EAF_VERSION = "3.0"
MIME_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".avi": "video/x-msvideo",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".wav": "audio/x-wav",
}
LINGUISTIC_TYPE = "fatools"
CONSTRAINTS = [
    (
        "Time_Subdivision",
        "Time subdivision of parent annotation's time interval, no time gaps allowed within this interval",
    ),
    (
        "Symbolic_Subdivision",
        "Symbolic subdivision of a parent annotation. Annotations refering to the same parent are ordered",
    ),
    ("Symbolic_Association", "1-1 association with a parent annotation"),
    (
        "Included_In",
        "Time alignable annotations within the parent annotation's time interval, gaps are allowed",
    ),
]


def ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def media_link(video: Any, out_dir: Path) -> tuple[str, str, str] | None:
    """(MEDIA_URL, RELATIVE_MEDIA_URL, MIME_TYPE) of the video, or None for images/unknown."""
    if not isinstance(video, str) or not video:
        return None
    path = Path(video)
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        return None
    absolute = path.resolve()
    try:
        relative = os.path.relpath(absolute, out_dir.resolve())
    except ValueError:  # another drive on Windows
        relative = str(absolute)
    relative = Path(relative).as_posix()
    return absolute.as_uri(), relative if relative.startswith("..") else f"./{relative}", mime


def _label(event: dict) -> str:
    code = event.get("au")
    unit = BY_CODE.get(code) if isinstance(code, str) else None
    peak = number(event.get("peak"))
    apex = number(event.get("apex"))
    text = f"{code} {unit.name}" if unit else str(code)
    if peak is not None:
        text += f", peak {peak:.2f}"
    if apex is not None:
        text += f" at {apex:.2f} s"
    return text


def tiers_of(track_summaries: list[dict], expressions: dict[Any, list]) -> list[tuple[str, list]]:
    """(tier id, [(start s, end s, value), ...]) in track order: expression, AUs, blinks."""
    by_track = {t.get("track"): t for t in track_summaries if isinstance(t, dict)}
    tiers = []
    for track in sorted(set(by_track) | set(expressions), key=track_order):
        name = track_name(track)
        runs = expressions.get(track, [])
        if runs:
            tiers.append(
                (f"{name} expression", [(s, e, f"{label} ({conf:.2f})") for s, e, label, conf in runs])
            )
        events = [
            e
            for e in get(by_track.get(track), "au_events", default=[])
            if isinstance(e, dict)
            and number(e.get("onset")) is not None
            and number(e.get("offset")) is not None
        ]
        codes = sorted({e["au"] for e in events if e.get("au") != AU45.code}, key=au_key)
        for code in codes:
            tiers.append(
                (f"{name} {code}", [(e["onset"], e["offset"], _label(e)) for e in events if e["au"] == code])
            )
        blinks = [(e["onset"], e["offset"], "blink") for e in events if e.get("au") == AU45.code]
        if blinks or get(by_track.get(track), "blinks", "count") is not None:
            tiers.append((f"{name} blinks", blinks))
    return tiers


def write_eaf(
    handle: IO[str], tiers: list[tuple[str, list]], media: tuple[str, str, str] | None, date: str
) -> None:
    """An EAF 3.0 document of alignable tiers (times in seconds, written in milliseconds)."""
    slots: dict[int, str] = {}
    for _, items in tiers:
        for start, end, _ in items:
            for value in (ms(start), ms(max(end, start))):
                slots.setdefault(value, "")
    for i, value in enumerate(sorted(slots), start=1):
        slots[value] = f"ts{i}"
    count = sum(len(a) for _, a in tiers)
    w = handle.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n')
    w(
        f'<ANNOTATION_DOCUMENT AUTHOR="fatools" DATE={quoteattr(date)} FORMAT="{EAF_VERSION}" '
        f'VERSION="{EAF_VERSION}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">\n'
    )
    w('    <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">\n')
    if media is not None:
        url, relative, mime = media
        w(
            f"        <MEDIA_DESCRIPTOR MEDIA_URL={quoteattr(url)} MIME_TYPE={quoteattr(mime)} "
            f"RELATIVE_MEDIA_URL={quoteattr(relative)}/>\n"
        )
    w(f'        <PROPERTY NAME="lastUsedAnnotationId">{count}</PROPERTY>\n')
    w("    </HEADER>\n    <TIME_ORDER>\n")
    for value, slot in slots.items():
        w(f'        <TIME_SLOT TIME_SLOT_ID="{slot}" TIME_VALUE="{value}"/>\n')
    w("    </TIME_ORDER>\n")
    n = 0
    for tier, items in tiers:
        w(f'    <TIER LINGUISTIC_TYPE_REF="{LINGUISTIC_TYPE}" TIER_ID={quoteattr(tier)}>\n')
        for start, end, value in items:
            n += 1
            w(
                f'        <ANNOTATION>\n            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a{n}" '
                f'TIME_SLOT_REF1="{slots[ms(start)]}" TIME_SLOT_REF2="{slots[ms(max(end, start))]}">\n'
                f"                <ANNOTATION_VALUE>{escape(value)}</ANNOTATION_VALUE>\n"
                "            </ALIGNABLE_ANNOTATION>\n        </ANNOTATION>\n"
            )
        w("    </TIER>\n")
    w(
        f'    <LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="{LINGUISTIC_TYPE}" '
        'TIME_ALIGNABLE="true"/>\n'
    )
    for stereotype, description in CONSTRAINTS:
        w(f'    <CONSTRAINT DESCRIPTION={quoteattr(description)} STEREOTYPE="{stereotype}"/>\n')
    w("</ANNOTATION_DOCUMENT>\n")


class ElanSink(Sink):
    trusted_faces = True
    fmt = "elan"

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.runs: dict[Any, ExpressionRuns] = {}

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        runs = self.runs.get(video.name)
        if runs is None:
            runs = self.runs[video.name] = ExpressionRuns(Clock())
        t = number(video.time(record))
        runs.clock.tick(t)
        for face in faces or []:
            runs.add(face.get("track"), t, face)

    def finish(self) -> None:
        job = self.job
        for video in job.videos.values():
            summary = job.video_summary(video)
            interval = number(get(summary, "time", "sampling_interval"))
            runs = self.runs.get(video.name)
            expressions = runs.segments(interval) if runs is not None else {}
            tiers = tiers_of(get(summary, "tracks", default=[]), expressions)
            path, handle = job.staging.open("w", encoding="utf-8")
            with handle:
                write_eaf(
                    handle,
                    tiers,
                    media_link(video.name, job.staging.out_dir),
                    job.started.isoformat(timespec="seconds"),
                )
            job.staging.stage(self.fmt, path, f"facial_analysis{job.suffix(video)}_{job.timestamp}.eaf")
