"""One table for a study: a row per analysed input and a row per track, from fa-run's
results trees (the library behind fa-collect).

Every directory with a ``run.json`` below the given roots is one input, whatever its
status: failed and partial inputs get their row with their status and error, and no
figures.  Rows stream out as directories are found (the trees are walked in name order,
one directory at a time), so thousands of results take constant memory.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from fatools.export.formatting import get
from fatools.facs import AU45, CODES
from fatools.study import outdir

AUS = [*CODES, AU45.code]


def columns(labels: Iterable[str]) -> list[str]:
    """The table's columns, for these expression labels."""
    return (
        [
            "level",
            "input",
            "output_dir",
            "status",
            "error",
            "track",
            "duration_s",
            "frames_analysed",
            "frames_with_faces",
            "faces",
            "tracks",
            "seconds_seen",
            "most_common_emotion",
        ]
        + [f"emotion_{label.lower()}" for label in labels]
        + ["valence_mean", "valence_sd", "arousal_mean", "arousal_sd", "blinks", "blinks_per_minute"]
        + [f"{code}_rate" for code in AUS]
        + [f"{code}_mean" for code in CODES]
        + ["options_fingerprint", "models", "device", "fatools_version"]
    )


def result_dirs(roots: Iterable[str]) -> Iterator[Path]:
    """Every directory holding a run.json below the roots, in name order."""
    for root in roots:
        for current, dirs, files in os.walk(root):
            dirs.sort()
            if outdir.RUN_RECORD in files:
                yield Path(current)


def _figures(stats: dict, labels: list[str]) -> dict:
    """The columns a video's overall statistics or a track's give."""
    au = stats.get("au") or {}
    row = {
        "faces": stats.get("faces"),
        "seconds_seen": stats.get("seconds"),
        "most_common_emotion": get(stats, "emotion", "most_common"),
        "valence_mean": get(stats, "valence", "mean"),
        "valence_sd": get(stats, "valence", "std"),
        "arousal_mean": get(stats, "arousal", "mean"),
        "arousal_sd": get(stats, "arousal", "std"),
        "blinks": get(stats, "blinks", "count"),
        "blinks_per_minute": get(stats, "blinks", "per_minute"),
    }
    distribution = get(stats, "emotion", "distribution") or {}
    for label in labels:
        row[f"emotion_{label.lower()}"] = distribution.get(label)
    for code in AUS:
        row[f"{code}_rate"] = get(au, code, "activation_rate")
    for code in CODES:
        row[f"{code}_mean"] = get(au, code, "mean_probability")
    return row


def rows(directory: Path, labels: list[str]) -> Iterator[dict]:
    """The video row of one result directory, then its track rows."""
    try:
        record = outdir.load_record(directory)
    except (OSError, ValueError) as exc:
        yield {"level": "video", "output_dir": str(directory), "status": "unreadable", "error": str(exc)}
        return
    base = {
        "input": get(record, "input", "path"),
        "output_dir": str(directory),
        "status": record.get("status"),
        "error": record.get("error"),
        "options_fingerprint": record.get("options_fingerprint"),
        "models": " ".join(
            f"{m.get('name')}:{str(m.get('sha256'))[:12]}" for m in record.get("models") or []
        ),
        "device": record.get("device"),
        "fatools_version": get(record, "versions", "fatools"),
    }
    summary = None
    if record.get("status") == "complete":
        try:
            summary = outdir.read_summary(directory)
        except (OSError, ValueError) as exc:
            base.update(status="unreadable", error=f"{outdir.SUMMARY}: {exc}")
    video = (get(summary, "videos") or [None])[0] if summary else None
    if not isinstance(video, dict):
        yield {"level": "video", **base, "frames_analysed": record.get("frames_done")}
        return
    tracks = video.get("tracks") or []
    yield {
        "level": "video",
        **base,
        "duration_s": get(video, "metadata", "duration"),
        "frames_analysed": get(video, "frames", "sampled"),
        "frames_with_faces": get(video, "frames", "with_faces"),
        "tracks": len(tracks),
        **_figures(video.get("overall") or {}, labels),
    }
    for track in tracks:
        yield {"level": "track", **base, "track": track.get("track"), **_figures(track, labels)}


def collect(
    roots: Iterable[str],
    handle: IO[str],
    labels: Iterable[str],
    index: Any = None,
    design: tuple[list[str], Callable[[Path], dict]] | None = None,
    directories: Iterable[Path] | None = None,
    normalise: tuple[list[str], Callable[[Path, dict], dict]] | None = None,
) -> dict[str, int]:
    """Write the table of every result below ``roots`` (or of ``directories``) as CSV to
    ``handle``, and each input's row to ``index`` (a fatools.study.index.StudyIndex) when
    given; counts by status.  ``design``: the study design's columns (first in the table)
    and, per result directory, their cells (fatools.study.design).  ``normalise``
    (fa-collect --normalize): its columns (last in the table) and, for the participant's
    track row, their values (fatools.study.tidy.normalise_row)."""
    labels = list(labels)
    extra, cells_of = design if design else ([], None)
    normalised, normalise_of = normalise if normalise else ([], None)
    writer = csv.DictWriter(
        handle,
        fieldnames=[*extra, *columns(labels), *normalised],
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    counts: dict[str, int] = {}
    for directory in result_dirs(roots) if directories is None else directories:
        cells = cells_of(directory) if cells_of else {}
        for row in rows(directory, labels):
            row.update(cells)
            if row["level"] == "track" and cells.get("participant_track") not in (None, ""):
                row["role"] = (
                    "participant" if str(row.get("track")) == str(cells["participant_track"]) else "other"
                )
                if row["role"] == "participant" and normalise_of is not None:
                    row.update(normalise_of(directory, row))
            writer.writerow(row)
            if row["level"] == "video":
                if index is not None:
                    index.add(row)
                counts[row.get("status") or "unknown"] = counts.get(row.get("status") or "unknown", 0) + 1
    return counts
