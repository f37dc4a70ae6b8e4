"""Tidy tables of a study (fa-collect ``--long``, ``--participants``): one row per
participant x video x segment x measure, and one row per participant, with the design's
columns, written as CSV and Parquet.

A *segment* is the whole video (``segment_type`` "video", ``segment`` "all"), a fixed
window (``--window``: "window", ``segment`` its start-end in seconds, windows where the
track was never seen left out) or an event of ``--events`` ("event", its label).  A
*measure* is an AU probability (``AU1`` ... ``R14``), an expression's probability
(``emotion_anger`` ...), ``valence`` or ``arousal``; ``value`` is its mean over the
segment's faces of that track.

Normalisation (``--normalize``): ``person`` takes as reference every face of the
participant's track in all their complete videos; ``baseline`` only those inside events
labelled ``--baseline``.  For each measure, ``reference_median`` and ``reference_sd`` (over
those faces, sd with n-1) give ``delta`` = value - median and ``z`` = delta / sd; the raw
``value`` stays beside them.  Only the participant's rows are normalised (others' rows:
``reference`` "none").  The reference's size is ``reference_faces``.

Memory: the study's track statistics (a few numbers and one mean embedding per track),
then one participant's faces at a time (their videos are read again, per participant).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fatools.events import EPS, Event
from fatools.export.formatting import get
from fatools.facs import CODES
from fatools.study import outdir
from fatools.study.participants import TrackStats, VideoIdentity, choose

NORMALIZE = ("none", "person", "baseline")
COUNTS = {"faces", "reference_faces", "videos", "videos_complete", "videos_with_face", "identity_mismatches"}


def parse_duration(text: str) -> float:
    """Seconds of "10s", "10", "500ms", "2min", "1.5m", "1h"; ValueError otherwise."""
    hit = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|sec|m|min|h)?\s*", str(text))
    if not hit:
        raise ValueError(f"{text!r} is not a duration (10s, 500ms, 2min, 1h)")
    value = (
        float(hit.group(1))
        * {"ms": 0.001, "s": 1, "sec": 1, None: 1, "m": 60, "min": 60, "h": 3600}[hit.group(2)]
    )
    if value <= 0:
        raise ValueError(f"{text!r}: a window must be longer than 0 s")
    return value


def measures(labels: Iterable[str]) -> list[str]:
    return [*CODES, *(f"emotion_{label.lower()}" for label in labels), "valence", "arousal"]


def long_columns(design_columns: list[str]) -> list[str]:
    return [
        *design_columns,
        "input",
        "track",
        "role",
        "track_rule",
        "identity",
        "segment_type",
        "segment",
        "onset",
        "offset",
        "faces",
        "seconds",
        "measure",
        "value",
        "reference",
        "reference_faces",
        "reference_median",
        "reference_sd",
        "delta",
        "z",
    ]


def participant_columns(design_columns: list[str], names: list[str]) -> list[str]:
    carried = [c for c in design_columns if c not in ("participant", "session", "condition")]
    return [
        "participant",
        *carried,
        "videos",
        "videos_complete",
        "videos_with_face",
        "faces",
        "minutes_with_face",
        "identity_mismatches",
        "reference",
        "reference_faces",
    ] + [f"{m}_{stat}" for m in names for stat in ("mean", "median")]


@dataclass
class Video:
    """One result directory: its run record's essentials, its design cells and its tracks."""

    directory: Path
    input: str
    status: str
    cells: dict = field(default_factory=dict)
    interval: float | None = None
    duration: float | None = None
    identity: VideoIdentity | None = None
    error: str | None = None  # why the participant's track could not be chosen

    @property
    def participant(self) -> str | None:
        return self.cells.get("participant") or None


def _frames(directory: Path) -> Iterator[dict]:
    import orjson

    with open(directory / outdir.RECORDS, "rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def _interval(summary_video: dict | None) -> float | None:
    return get(summary_video, "time", "sampling_interval") if summary_video else None


def scan(directory: Path, cells: dict) -> Video:
    """Pass one over a result directory: its tracks' statistics and the participant's
    track (by the design's participant_track, else the rule)."""
    try:
        record = outdir.load_record(directory)
    except (OSError, ValueError) as exc:
        return Video(directory, str(directory), "unreadable", dict(cells), error=str(exc))
    video = Video(directory, str(get(record, "input", "path")), str(record.get("status")), dict(cells))
    if video.status != "complete":
        return video
    try:
        summary = outdir.read_summary(directory)
        first = (summary.get("videos") or [None])[0]
        video.interval, video.duration = _interval(first), get(first, "metadata", "duration")
        tracks: dict[Any, TrackStats] = {}
        for frame in _frames(directory):
            if frame.get("type") == "video":
                video.duration = video.duration or frame.get("duration")
                continue
            side = min(frame.get("width") or 0, frame.get("height") or 0) or None
            for face in frame.get("faces") or []:
                track = face.get("track")
                if track is None:
                    continue
                stats = tracks.get(track)
                if stats is None:
                    stats = tracks[track] = TrackStats(track)
                stats.add(face, side)
    except (OSError, ValueError) as exc:
        video.status, video.error = "unreadable", str(exc)
        return video
    try:
        track, rule = choose(tracks, cells.get("participant_track"))
    except ValueError as exc:
        track, rule, video.error = None, "design", f"{video.input}: {exc}"
    video.identity = VideoIdentity(video.input, video.participant, track, tracks)
    video.identity.rule = rule  # type: ignore[attr-defined]
    return video


def _values(video: Video, labels: list[str]) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
    """Pass two: per track, the times and a (faces x measures) array of its values."""
    codes = list(CODES)
    per: dict[Any, tuple[list, list]] = {}
    for frame in _frames(video.directory):
        if frame.get("type") == "video":
            continue
        t = frame.get("t")
        seen = set()
        for face in frame.get("faces") or []:
            track = face.get("track")
            if track is None or track in seen or t is None:
                continue
            seen.add(track)  # one face per track per frame
            probs = get(face, "au", "probs") or {}
            scores = get(face, "expression", "scores") or {}
            va = face.get("va") or {}
            row = (
                [probs.get(c, math.nan) for c in codes]
                + [scores.get(label, math.nan) for label in labels]
                + [va.get("valence", math.nan), va.get("arousal", math.nan)]
            )
            times, rows = per.setdefault(track, ([], []))
            times.append(t)
            rows.append([math.nan if v is None else v for v in row])
    return {
        track: (np.asarray(times, float), np.asarray(rows, float)) for track, (times, rows) in per.items()
    }


def segments(
    times: np.ndarray, video: Video, window: float | None, events: list[Event]
) -> list[tuple[str, str, float, float | None, np.ndarray]]:
    """(segment_type, segment, onset, offset, mask of the faces in it), non-empty ones."""
    out = [("video", "all", 0.0, video.duration, np.ones(len(times), bool))]
    if window and len(times):
        index = np.floor((times + EPS) / window).astype(int)
        for k in sorted(set(index.tolist())):
            onset, offset = k * window, (k + 1) * window
            out.append(("window", f"{onset:g}-{offset:g}", onset, offset, index == k))
    for event in events:
        if event.applies_to(video.input):
            mask = (times >= event.onset - EPS) & (times < event.offset - EPS)
            if mask.any():
                out.append(("event", event.label, event.onset, event.offset, mask))
    return out


def _num(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


@dataclass
class Reference:
    kind: str
    faces: int
    median: np.ndarray
    sd: np.ndarray


def reference(
    videos: list[Video], data: dict, kind: str, baseline: str | None, events: list[Event], width: int
) -> Reference:
    """The participant's reference faces over their videos: all of them ("person") or
    those in the baseline events ("baseline")."""
    parts = []
    for video in videos:
        track = video.identity.track if video.identity else None
        if track is None or track not in data[id(video)]:
            continue
        times, values = data[id(video)][track]
        if kind == "baseline":
            mask = np.zeros(len(times), bool)
            for event in events:
                if event.label == baseline and event.applies_to(video.input):
                    mask |= (times >= event.onset - EPS) & (times < event.offset - EPS)
            values = values[mask]
        parts.append(values)
    stacked = np.concatenate(parts) if parts else np.empty((0, width))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(stacked, axis=0) if len(stacked) else np.full(width, np.nan)
            sd = np.nanstd(stacked, axis=0, ddof=1) if len(stacked) > 1 else np.full(width, np.nan)
    return Reference(kind, len(stacked), median, sd)


class Writer:
    """A table written as CSV and, beside it, Parquet (pyarrow), in batches."""

    def __init__(self, path: str, columns: list[str], text: set[str]) -> None:
        import pyarrow as pa

        self.path = path
        self.parquet = str(Path(path).with_suffix(".parquet")) if path.endswith(".csv") else f"{path}.parquet"
        self.columns = columns
        self.schema = pa.schema(
            [(c, pa.string() if c in text else pa.int64() if c in COUNTS else pa.float64()) for c in columns]
        )
        self.tmp = [f"{p}.part" for p in (self.path, self.parquet)]
        # Open until close() or abort(): rows are written a participant at a time.
        self.handle = open(self.tmp[0], "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.csv = csv.DictWriter(self.handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        self.csv.writeheader()
        self.pq: Any = None  # a pyarrow.parquet.ParquetWriter once the first rows come
        self.rows = 0

    def write(self, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        for row in rows:
            self.csv.writerow({k: ("" if v is None else v) for k, v in row.items()})
        table = pa.Table.from_pylist(
            [{c: row.get(c) for c in self.columns} for row in rows], schema=self.schema
        )
        if self.pq is None:
            self.pq = pq.ParquetWriter(self.tmp[1], self.schema)
        self.pq.write_table(table)
        self.rows += len(rows)

    def close(self) -> list[str]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.handle.close()
        if self.pq is None:
            pq.write_table(pa.Table.from_pylist([], schema=self.schema), self.tmp[1])
        else:
            self.pq.close()
        os.replace(self.tmp[0], self.path)
        os.replace(self.tmp[1], self.parquet)
        return [self.path, self.parquet]

    def abort(self) -> None:
        self.handle.close()
        if self.pq is not None:
            self.pq.close()
        for tmp in self.tmp:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _text(design_columns: list[str]) -> set[str]:
    return {
        *design_columns,
        "input",
        "track",
        "role",
        "track_rule",
        "identity",
        "segment_type",
        "segment",
        "measure",
        "reference",
        "participant",
    }


def _by_participant(videos: list[Video]) -> dict[str | None, list[Video]]:
    groups: dict[str | None, list[Video]] = {}
    for video in videos:
        groups.setdefault(video.participant, []).append(video)
    return groups


def _data(group: list[Video], labels: list[str]) -> dict[int, dict]:
    return {id(v): (_values(v, labels) if v.status == "complete" and v.identity else {}) for v in group}


def _checked(
    participant: str, ref: Reference, baseline: str | None, warn: Callable[[str], None]
) -> Reference:
    if ref.faces == 0:
        warn(
            f"participant {participant}: no faces of theirs in the {ref.kind} reference"
            + (f" (events labelled {baseline!r})" if ref.kind == "baseline" else "")
            + "; their rows are not normalised"
        )
    return ref


def references(
    videos: list[Video],
    labels: list[str],
    normalize: str,
    baseline: str | None,
    events: list[Event],
    warn: Callable[[str], None],
) -> dict[str, Reference]:
    """Each participant's reference (``--normalize person|baseline``), one participant's
    records read at a time; a warning for a person with no face in theirs."""
    found = {}
    width = len(measures(labels))
    for participant, group in _by_participant(videos).items():
        if participant is None:
            continue
        found[participant] = _checked(
            participant,
            reference(group, _data(group, labels), normalize, baseline, events, width),
            baseline,
            warn,
        )
    return found


# The main table's (fa-collect -o) figures that are a long-table measure's mean over a track's
# faces: with --normalize, the participant's track row gets each one's delta and z.
def normalised_columns() -> list[tuple[str, str]]:
    """(the main table's column, the measure it is the mean of)."""
    return [
        *((f"{code}_mean", code) for code in CODES),
        ("valence_mean", "valence"),
        ("arousal_mean", "arousal"),
    ]


def main_table_columns() -> list[str]:
    return ["reference", "reference_faces"] + [
        f"{column}_{kind}" for column, _ in normalised_columns() for kind in ("delta", "z")
    ]


def normalise_row(row: dict, ref: Reference | None, labels: list[str]) -> dict:
    """The normalised figures of a participant's track row of the main table."""
    if ref is None or not ref.faces:
        return {"reference": "none"}
    names = measures(labels)
    out: dict[str, Any] = {"reference": ref.kind, "reference_faces": ref.faces}
    for column, measure in normalised_columns():
        raw = row.get(column)
        try:
            value = float(raw) if raw is not None else math.nan
        except (TypeError, ValueError):
            continue
        j = names.index(measure)
        median, sd = ref.median[j], ref.sd[j]
        if math.isfinite(value) and math.isfinite(median):
            out[f"{column}_delta"] = _num(value - median)
            if math.isfinite(sd) and sd > 0:
                out[f"{column}_z"] = _num((value - median) / sd)
    return out


def write_tables(
    videos: list[Video],
    labels: list[str],
    design_columns: list[str],
    *,
    long_path: str | None,
    participants_path: str | None,
    window: float | None,
    events: list[Event],
    normalize: str,
    baseline: str | None,
    warn: Callable[[str], None],
    refs: dict[str, Reference] | None = None,
) -> list[str]:
    """Write the long and per-participant tables (each as CSV and Parquet); their paths.
    ``refs``: the participants' references where ``references`` made them already."""
    names = measures(labels)
    design_columns = [c for c in design_columns if c != "participant"]
    design_columns = ["participant", *design_columns]
    writers = []
    try:
        long = Writer(long_path, long_columns(design_columns), _text(design_columns)) if long_path else None
        writers.append(long)
        people = (
            Writer(participants_path, participant_columns(design_columns, names), _text(design_columns))
            if participants_path
            else None
        )
        writers.append(people)
        groups = _by_participant(videos)
        for participant in sorted(groups, key=lambda p: (p is None, p or "")):
            group = groups[participant]
            data = _data(group, labels)
            ref = None
            if normalize != "none" and participant is not None:
                if refs is not None:
                    ref = refs.get(participant)
                else:
                    ref = _checked(
                        participant,
                        reference(group, data, normalize, baseline, events, len(names)),
                        baseline,
                        warn,
                    )
            if long is not None:
                for video in group:
                    long.write(_long_rows(video, data[id(video)], names, design_columns, window, events, ref))
            if people is not None and participant is not None:
                people.write([_person_row(participant, group, data, names, design_columns, ref)])
        return [path for writer in writers if writer is not None for path in writer.close()]
    except BaseException:
        for writer in writers:
            if writer is not None:
                writer.abort()
        raise


def _long_rows(
    video: Video,
    data: dict,
    names: list[str],
    design_columns: list[str],
    window: float | None,
    events: list[Event],
    ref: Reference | None,
) -> list[dict]:
    rows: list[dict] = []
    if not data or video.identity is None:
        return rows
    base = {c: video.cells.get(c) for c in design_columns}
    chosen = video.identity.track
    for track in sorted(data, key=lambda t: (t != chosen, str(t))):
        times, values = data[track]
        participant = track == chosen
        head = {
            **base,
            "input": video.input,
            "track": str(track),
            "role": "participant" if participant else "other",
            "track_rule": getattr(video.identity, "rule", None) if participant else None,
            "identity": video.identity.status if participant else None,
        }
        if not participant:
            head["participant"] = None  # another person: the design's participant is not them
        for kind, name, onset, offset, mask in segments(times, video, window, events):
            faces = int(mask.sum())
            means = np.nanmean(values[mask], axis=0) if faces else np.full(len(names), np.nan)
            for j, measure in enumerate(names):
                value = means[j]
                if not math.isfinite(value):
                    continue
                row = {
                    **head,
                    "segment_type": kind,
                    "segment": name,
                    "onset": _num(onset),
                    "offset": _num(offset),
                    "faces": faces,
                    "seconds": _num(faces * video.interval) if video.interval else None,
                    "measure": measure,
                    "value": _num(value),
                    "reference": "none",
                }
                if participant and ref is not None and ref.faces:
                    median, sd = ref.median[j], ref.sd[j]
                    row.update(
                        reference=ref.kind,
                        reference_faces=ref.faces,
                        reference_median=_num(median),
                        reference_sd=_num(sd),
                        delta=_num(value - median),
                        z=_num((value - median) / sd) if sd and math.isfinite(sd) and sd > 0 else None,
                    )
                rows.append(row)
    return rows


def _person_row(
    participant: str,
    group: list[Video],
    data: dict,
    names: list[str],
    design_columns: list[str],
    ref: Reference | None,
) -> dict:
    row: dict[str, Any] = {"participant": participant}
    for column in design_columns:
        if column in ("participant", "session", "condition"):
            continue
        values = {v.cells.get(column) for v in group}
        row[column] = values.pop() if len(values) == 1 else "(varies)"
    parts, with_face, seconds = [], 0, 0.0
    for video in group:
        track = video.identity.track if video.identity else None
        if track is not None and track in data[id(video)]:
            values = data[id(video)][track][1]
            parts.append(values)
            with_face += 1
            seconds += len(values) * (video.interval or 0.0)
    stacked = np.concatenate(parts) if parts else np.empty((0, len(names)))
    row.update(
        videos=len(group),
        videos_complete=sum(v.status == "complete" for v in group),
        videos_with_face=with_face,
        faces=len(stacked),
        minutes_with_face=_num(seconds / 60),
        identity_mismatches=sum(1 for v in group if v.identity and v.identity.status == "mismatch"),
        reference=ref.kind if ref is not None and ref.faces else "none",
        reference_faces=ref.faces if ref is not None else None,
    )
    if len(stacked):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, median = np.nanmean(stacked, axis=0), np.nanmedian(stacked, axis=0)
        for j, measure in enumerate(names):
            row[f"{measure}_mean"], row[f"{measure}_median"] = _num(mean[j]), _num(median[j])
    return row
