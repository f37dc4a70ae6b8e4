"""The event statistics table (``event_statistics_<timestamp>.csv``), written whenever the
summary has events (``--events``): one row per video, event and track, with the
baseline differences when ``--baseline`` was given (fa-summarize(1), EVENTS)."""

from __future__ import annotations

import csv
from typing import Any

from fatools.export.formatting import get
from fatools.export.sinks import Job
from fatools.face_stats import au_key

PREFIX = "event_statistics"


def _emotion_column(label: str) -> str:
    return f"emotion_{label.lower()}"


def table(job: Job) -> tuple[list[str], list[list[Any]]] | None:
    """The header and rows, or None when no video has events."""
    videos = [(video, job.video_summary(video)) for video in job.videos.values()]
    videos = [(video, s) for video, s in videos if isinstance(s.get("events"), list)]
    if not videos:
        return None
    labels: list[str] = list(job.expression_labels)
    codes: set[str] = set()
    baseline = False
    for _, summary in videos:
        for event in summary["events"]:
            for track in event.get("tracks", []):
                labels += [label for label in track.get("emotion", {}) if label not in labels]
                codes.update(track.get("au", {}))
                baseline = baseline or "vs_baseline" in track
    codes_sorted = sorted(codes, key=au_key)
    columns = [
        "video",
        "event",
        "label",
        "onset",
        "offset",
        "frames",
        "track",
        "face_frames",
        "visible_share",
        "visible_seconds",
        "valence_mean",
        "valence_sd",
        "arousal_mean",
        "arousal_sd",
        "blinks",
        "blinks_per_minute",
        *(_emotion_column(label) for label in labels),
        *(f"{code}_rate" for code in codes_sorted),
        *(f"{code}_mean" for code in codes_sorted),
    ]
    diff_columns = [
        "visible_share",
        "valence_mean",
        "arousal_mean",
        "blinks_per_minute",
        *(_emotion_column(label) for label in labels),
        *(f"{code}_rate" for code in codes_sorted),
        *(f"{code}_mean" for code in codes_sorted),
    ]
    if baseline:
        columns += [f"{c}_vs_baseline" for c in diff_columns]
    rows = []
    for video, summary in videos:
        for event in summary["events"]:
            for track in event.get("tracks", []):
                emotion = track.get("emotion") or {}
                au = track.get("au") or {}
                row = [
                    video.name,
                    event.get("event"),
                    event.get("label"),
                    event.get("onset"),
                    event.get("offset"),
                    event.get("frames"),
                    track.get("track"),
                    track.get("face_frames"),
                    track.get("visible_share"),
                    track.get("visible_seconds"),
                    get(track, "valence", "mean"),
                    get(track, "valence", "std"),
                    get(track, "arousal", "mean"),
                    get(track, "arousal", "std"),
                    get(track, "blinks", "count"),
                    get(track, "blinks", "per_minute"),
                    *((emotion.get(label, 0.0) if emotion else None) for label in labels),
                    *(get(au, code, "activation_rate") for code in codes_sorted),
                    *(get(au, code, "mean_probability") for code in codes_sorted),
                ]
                if baseline:
                    diff = track.get("vs_baseline") or {}
                    demotion, dau = diff.get("emotion") or {}, diff.get("au") or {}
                    row += [
                        diff.get("visible_share"),
                        diff.get("valence_mean"),
                        diff.get("arousal_mean"),
                        diff.get("blinks_per_minute"),
                        *(demotion.get(label) for label in labels),
                        *(get(dau, code, "activation_rate") for code in codes_sorted),
                        *(get(dau, code, "mean_probability") for code in codes_sorted),
                    ]
                rows.append(row)
    return columns, rows


def write(job: Job) -> None:
    made = table(job)
    if made is None:
        return
    columns, rows = made
    path, handle = job.staging.open("w", newline="", encoding="utf-8")
    with handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    job.staging.stage("events", path, f"{PREFIX}_{job.timestamp}.csv")
