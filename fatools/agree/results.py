"""fatools' side: the records of each analysed video, one face per sampled frame.

Which face: the track asked for (``--track``, or a per-video map), else the *main track*:
the track seen in the most sampled frames (ties: the lowest id); records without track
ids give the largest face of each frame."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fatools import records as rec
from fatools.agree.codes import FATOOLS_AUS
from fatools.errors import FatoolsError
from fatools.study.outdir import RECORDS  # fa-run's output directory's records file


@dataclass
class Video:
    """One video's sampled frames: ``table`` has frame, t, face (bool), then the chosen face's
    AU scores by code (AU45: 1/0 from the blink flag), ``threshold``, ``expression``,
    ``valence`` and ``arousal``."""

    name: str  # the video's file name without its extension, which references are matched by
    path: str
    records: str
    fps: float | None
    duration: float | None
    track: object
    rule: str
    table: pd.DataFrame
    tracks: dict = field(default_factory=dict)  # track -> frames seen


def records_files(path: str | Path) -> list[Path]:
    """frames.jsonl itself, a results directory's, or every one below a study tree (name order)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / RECORDS).is_file():
        return [path / RECORDS]
    found = []
    for current, dirs, files in os.walk(path):
        dirs.sort()
        if RECORDS in files:
            found.append(Path(current) / RECORDS)
    if not found:
        raise FatoolsError(
            f"{path}: no {RECORDS} here or below (give fa-run's output directory or its records)"
        )
    return found


def _area(face: dict) -> float:
    x1, y1, x2, y2 = rec.box_of(face)
    try:
        return float((x2 - x1) * (y2 - y1))
    except TypeError:
        return 0.0


def read_video(path: Path, track: object = None) -> Video:
    """The records of one video; ``track`` None: the main track."""
    header: dict | None = None
    frames: list[tuple[int | None, float | None, list[dict]]] = []
    for record in rec.read_paths([str(path)]):
        if rec.is_header(record):
            header = header or record
        elif rec.is_frame(record):
            fps = rec.header_fps(header)
            frames.append((record.get("frame"), rec.record_time(record, fps), rec.faces_of(record) or []))
            header = header or {"video": record.get("video")}
    if not frames:
        raise FatoolsError(f"{path}: no frame records")
    seen: dict = {}
    for _, _, faces in frames:
        for tr in {face.get("track") for face in faces if "track" in face}:
            seen[tr] = seen.get(tr, 0) + 1
    if track is not None:
        matches = [t for t in seen if str(t) == str(track)]
        if not matches:
            raise FatoolsError(
                f"{path}: no track {track} (tracks: {', '.join(map(str, sorted(seen, key=rec.track_order))) or 'none'})"
            )
        chosen, rule = matches[0], "given"
    elif seen:
        chosen = max(sorted(seen, key=rec.track_order), key=lambda t: seen[t])  # max keeps the first of ties
        rule = "main track (most frames)"
    else:
        chosen, rule = None, "largest face per frame (no tracks)"
    rows = []
    for frame, t, faces in frames:
        if chosen is not None:
            face = next((f for f in faces if f.get("track") == chosen), None)
        else:
            face = max(faces, key=_area) if faces else None
        row = {"frame": frame, "t": t, "face": face is not None}
        if face is not None:
            probs = rec.au_probs(face) or {}
            for code in FATOOLS_AUS[:-1]:
                row[code] = rec.number(probs.get(code))
            blink = rec.blink_of(face)
            row[FATOOLS_AUS[-1]] = None if blink is None else float(blink)
            row["threshold"] = rec.au_threshold(face)
            row["expression"] = rec.expression_of(face).get("label")
            row["valence"], row["arousal"], _ = rec.va_of(face)
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in [*FATOOLS_AUS, "threshold", "valence", "arousal"]:
        table[col] = pd.to_numeric(table[col], errors="coerce") if col in table else np.nan
    if "expression" not in table:
        table["expression"] = None
    video_path = str((header or {}).get("video") or path.parent.name)
    name = Path(video_path).stem
    return Video(
        name,
        video_path,
        str(path),
        rec.header_fps(header),
        rec.number((header or {}).get("duration")),
        chosen,
        rule,
        table,
        seen,
    )


def read_results(paths: list[str | Path], tracks: dict | None = None, track: object = None) -> list[Video]:
    """Every video below ``paths``; ``tracks`` maps a video name to its track, ``track`` is for all."""
    videos = []
    for path in paths:
        for records in records_files(path):
            first = read_video(records, None if tracks else track)
            if tracks and first.name in tracks:
                first = read_video(records, tracks[first.name])
            videos.append(first)
    _distinct_names(videos)
    return videos


def _distinct_names(videos: list[Video]) -> None:
    """Videos of one name (DISFA+'s trials, one folder per subject) named with as many of
    their parent folders as tell them apart: ``SN001/A1_AU1_TrailNo_1``."""
    for depth in range(2, 8):
        counts: dict[str, int] = {}
        for video in videos:
            counts[video.name] = counts.get(video.name, 0) + 1
        clashing = [v for v in videos if counts[v.name] > 1]
        if not clashing:
            return
        for video in clashing:
            parts = Path(video.path).with_suffix("").parts
            video.name = "/".join(parts[-depth:])
