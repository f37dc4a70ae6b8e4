"""A report for people (``facial_analysis_report_<timestamp>.txt``), one per video: what
was analysed and how, the faces and tracks found, dominant emotions, valence and
arousal, the most active action units with what they mean, and the notable
action-unit episodes.  Everything comes from the summary and the metadata, so this
format keeps nothing per frame.
"""

from __future__ import annotations

from typing import Any

from fatools.export.formatting import clock, get, seconds
from fatools.export.json_export import analysis_metadata
from fatools.export.sinks import Sink
from fatools.facs import AU45, BY_CODE, CODES
from fatools.records import number

# Episodes listed per track: the longest, so a long video's report stays a page.
EVENTS_PER_TRACK = 8
TRACKS_LISTED = 20  # a crowd has thousands of tracks: the report lists those with most faces
EVENT_ROWS = 60  # event x track lines in the report's Events section; the CSV has them all
WIDTH = 78


def describe(code: str) -> str:
    unit = AU45 if code == AU45.code else BY_CODE.get(code)
    return unit.description if unit else "not in the FACS catalogue"


def _name(code: Any) -> str:
    unit = AU45 if code == AU45.code else BY_CODE.get(code) if isinstance(code, str) else None
    return unit.name if unit else str(code)


def _order(code: Any) -> tuple[int, str]:
    """Catalogue order (AU1, AU2, ... AU45), not string order (AU12 before AU6)."""
    codes = [*CODES, AU45.code]
    return (codes.index(code), "") if code in codes else (len(codes), str(code))


def _pct(value: Any) -> str:
    value = number(value)
    return "-" if value is None else f"{100 * value:.1f}%"


def _f(value: Any, digits: int = 2) -> str:
    value = number(value)
    return "-" if value is None else f"{value:.{digits}f}"


def _track(track_id: Any) -> str:
    return "untracked faces" if track_id is None else f"track {track_id}"


def _section(title: str) -> list[str]:
    return ["", title, "-" * len(title)]


def report(metadata: dict, video_metadata: dict, summary: dict) -> str:
    """The report's text; every figure missing from the inputs reads "unknown" or "-"."""
    lines = ["FACIAL ACTION ANALYSIS REPORT", "=" * WIDTH]
    lines += _section("Video")
    lines.append(f"  File:              {metadata.get('video_path')}")
    size = (
        f"{video_metadata.get('width')}x{video_metadata.get('height')}"
        if video_metadata.get("width") is not None
        else "size unknown"
    )
    fps = number(video_metadata.get("fps"))
    if fps is None and video_metadata.get("total_frames") is None:
        lines.append(
            f"  Frames:            {size} (no video header: images, or records without fa-frames' header)"
        )
    else:
        lines.append(
            f"  Duration:          {seconds(video_metadata.get('duration_seconds'))}, "
            f"{video_metadata.get('total_frames') if video_metadata.get('total_frames') is not None else '?'}"
            f" frames at {'?' if fps is None else f'{fps:g}'} fps, {size}"
            + (f" ({video_metadata['codec']})" if video_metadata.get("codec") else "")
        )

    lines += _section("Analysis")
    lines.append(f"  Started:           {metadata.get('start_time') or 'unknown'}")
    duration = number(metadata.get("processing_duration_seconds"))
    lines.append(
        "  Processing time:   "
        + (
            seconds(duration)
            if duration is not None
            else "not recorded (exported from saved records; fa-run records it)"
        )
    )
    frames = get(summary, "frames", default={})
    time = get(summary, "time", default={})
    sampled = frames.get("sampled", metadata.get("frames_processed"))
    interval = number(time.get("sampling_interval"))
    lines.append(
        f"  Frames analysed:   {sampled if sampled is not None else '?'}"
        + (f", one every {interval:g} s" if interval else "")
        + (
            f", from {clock(time.get('first'))} to {clock(time.get('last'))}"
            if number(time.get("first")) is not None
            else ""
        )
    )
    lines.append(
        f"  Software:          fatools {metadata.get('fatools_version') or '?'}, "
        f"facetorch {metadata.get('facetorch_version') or '?'}"
    )
    models = metadata.get("models") or []
    names = [
        f"{m.get('name')}" + (f" (sha256 {str(m['sha256'])[:12]}...)" if m.get("sha256") else "")
        for m in models
        if isinstance(m, dict)
    ]
    lines.append(f"  Models:            {', '.join(names) if names else 'unknown'}")
    # fa-export's metadata has the threshold at the top of its options, fa-run's under predict.
    threshold = get(
        metadata, "options", "au_threshold", default=get(metadata, "options", "predict", "au_threshold")
    )
    if threshold is not None:
        lines.append(f"  AU threshold:      active above {threshold}")

    lines += _section("Faces and tracks")
    lines.append(
        f"  Frames with faces: {frames.get('with_faces', '?')} of {sampled if sampled is not None else '?'}"
        f" ({frames.get('without_faces', '?')} without faces, {frames.get('not_analysed', '?')} not analysed)"
    )
    per_frame = frames.get("faces_per_frame") or {}
    lines.append(
        f"  Faces:             {frames.get('faces', '?')} ({_f(per_frame.get('mean'))} per analysed frame "
        f"on average, at most {per_frame.get('max', '?')})"
    )
    left_out = frames.get("faces_left_out")
    if left_out is not None:
        lines.append(
            f"  Left out:          {left_out} faces below --min-quality "
            f"{get(metadata, 'options', 'summary', 'min_quality', default='')}".rstrip()
            + " (in the records and tables, not in these statistics, episodes or figures)"
        )
    tracks = [t for t in get(summary, "tracks", default=[]) if isinstance(t, dict)]
    lines.append(
        f"  Tracks:            {len(tracks)}"
        + (
            " (faces without a track id: run fa-track to follow several people)"
            if len(tracks) == 1 and tracks[0].get("track") is None
            else ""
        )
    )
    listed_tracks = sorted(tracks, key=lambda t: -(number(t.get("faces")) or 0))[:TRACKS_LISTED]
    listed_ids = {id(t) for t in listed_tracks}
    for track in (t for t in tracks if id(t) in listed_ids):
        most = get(track, "emotion", "most_common")
        share = get(track, "emotion", "distribution", most) if most else None
        span = (
            f"{clock(track.get('first'))} to {clock(track.get('last'))}, "
            if number(track.get("first")) is not None
            else ""
        )
        frames_span = f"frames {track.get('first_frame')}-{track.get('last_frame')}"
        lines.append(
            f"    {_track(track.get('track')):<16} {frames_span}, {span}{track.get('faces', 0)} faces"
            + (f", mostly {most} ({_pct(share)})" if most else "")
        )

    if len(tracks) > len(listed_tracks):
        lines.append(
            f"    ... and {len(tracks) - len(listed_tracks)} more tracks (the {TRACKS_LISTED} with most faces "
            "are listed here and below; summary.json, the JSON export and the csv table have every track)"
        )

    lines += _section("Dominant emotions")
    overall = get(summary, "overall", default={})
    distribution = get(overall, "emotion", "distribution", default={})
    if distribution:
        lines.append(
            f"  All faces ({get(overall, 'emotion', 'faces', default=0)} with an expression), "
            "share of faces by predicted label:"
        )
        ranked_labels = sorted(distribution.items(), key=lambda kv: (-(number(kv[1]) or 0), kv[0]))
        for label, share in ranked_labels:
            if number(share):
                lines.append(f"    {label:<10} {_pct(share):>6}  {'#' * max(1, round(40 * share))}")
        never = [label for label, share in ranked_labels if not number(share)]
        if never:
            lines.append(f"    never predicted: {', '.join(sorted(never))}")
        per_track = [
            f"{_track(t.get('track'))}: {get(t, 'emotion', 'most_common')} "
            f"({_pct(get(t, 'emotion', 'distribution', get(t, 'emotion', 'most_common')))})"
            for t in listed_tracks
            if get(t, "emotion", "most_common")
        ]
        if len(per_track) > 1:
            lines.append("  Most common per track: " + "; ".join(per_track))
    elif not frames.get("faces"):
        lines.append("  No faces were found, so there are no expressions.")
    else:
        lines.append("  No expressions in the records (fa-predict --tasks fer adds them).")

    lines += _section("Valence and arousal")
    if get(overall, "valence", "faces"):
        lines.append(
            f"  Valence (-1 negative .. +1 positive): mean {_f(get(overall, 'valence', 'mean'))}, "
            f"sd {_f(get(overall, 'valence', 'std'))}"
        )
        lines.append(
            f"  Arousal (-1 calm .. +1 excited):      mean {_f(get(overall, 'arousal', 'mean'))}, "
            f"sd {_f(get(overall, 'arousal', 'std'))}"
        )
        quadrants = get(overall, "quadrant_seconds", default={})
        if quadrants:
            lines.append(
                "  Time in each quadrant (face-seconds): "
                + ", ".join(f"{q} {seconds(s)}" for q, s in quadrants.items())
            )
        if len(tracks) > 1:
            for track in (t for t in tracks if id(t) in listed_ids):
                lines.append(
                    f"    {_track(track.get('track')):<16} valence {_f(get(track, 'valence', 'mean'))}, "
                    f"arousal {_f(get(track, 'arousal', 'mean'))}"
                )
    elif not frames.get("faces"):
        lines.append("  No faces were found, so there is no valence or arousal.")
    else:
        lines.append("  No valence or arousal in the records (fa-predict --tasks va adds them).")

    lines += _section("Most active action units")
    ranked = [
        r for r in get(overall, "most_active_aus", default=[]) if isinstance(r, (list, tuple)) and len(r) == 2
    ]
    if ranked:
        lines.append("  Share of faces in which each unit was active, most often active first:")
        for code, active in ranked:
            stats = get(overall, "au", code, default={})
            mean = stats.get("mean_probability")
            lines.append(f"    {code:<5} {describe(code)}")
            lines.append(
                f"          active in {_pct(stats.get('activation_rate'))} of faces ({active} of "
                f"{stats.get('faces', '?')})" + (f", mean score {_f(mean)}" if mean is not None else "")
            )
    else:
        lines.append("  No action unit was active (or the records have no action units).")

    lines += _section("Notable action-unit events")
    lines.append("  Episodes: onset to offset (duration), peak score at the apex; the longest per track.")
    listed = 0
    for track in (t for t in tracks if id(t) in listed_ids):
        events = [
            e for e in get(track, "au_events", default=[]) if isinstance(e, dict) and e.get("au") != AU45.code
        ]
        blinks = get(track, "blinks", default={})
        if not events and blinks.get("count") is None:
            continue
        lines.append(f"  {_track(track.get('track'))}:")
        longest = sorted(
            events, key=lambda e: (-(number(e.get("duration")) or 0), -(number(e.get("peak")) or 0))
        )
        shown = sorted(
            longest[:EVENTS_PER_TRACK], key=lambda e: (number(e.get("onset")) or 0, _order(e.get("au")))
        )
        for event in shown:
            lines.append(
                f"    {clock(event.get('onset'))} to {clock(event.get('offset'))} "
                f"({seconds(event.get('duration'))}): {event.get('au')} {_name(event.get('au'))}, "
                f"peak {_f(event.get('peak'))} at {clock(event.get('apex'))}"
            )
        listed += len(shown)
        if len(events) > len(shown):
            lines.append(
                f"    ... and {len(events) - len(shown)} shorter episodes (fa-summarize lists them all)"
            )
        if blinks.get("count") is not None:
            rate = number(blinks.get("per_minute"))
            lines.append(
                f"    blinks (AU45): {blinks['count']}"
                + (f", {rate:.1f} per minute" if rate is not None else "")
            )
    if not listed and not any(get(t, "blinks", "count") is not None for t in tracks):
        lines.append("  None.")

    if isinstance(summary.get("events"), list):
        lines += events_section(summary["events"])

    lines += _section("Notes")
    lines.append(
        "  AU scores are OpenGraphAU's (0..1, not calibrated probabilities); intensity labels in the"
    )
    lines.append("  exports are confidence-derived, not FACS A-E coding. Episodes follow fa-summarize(1).")
    return "\n".join(lines) + "\n"


def events_section(events: list) -> list[str]:
    """Per event and track: face visible, main expression, valence/arousal, top AUs, blinks,
    and the differences from the baseline; capped, the CSV has every row."""
    lines = _section("Events")
    lines.append(
        "  Per event and track: share of the event's frames with the face seen, most common expression,"
    )
    lines.append("  mean valence and arousal, the most often active AUs, blinks per minute of visible face;")
    lines.append(
        '  "vs baseline": differences from the baseline events (event_statistics_*.csv has every figure).'
    )
    shown = 0
    rows = sum(max(1, len(e.get("tracks") or [])) for e in events if isinstance(e, dict))
    for event in events:
        if not isinstance(event, dict):
            continue
        if shown >= EVENT_ROWS:
            break
        lines.append(
            f"  {event.get('label')} (line {event.get('event')}): {clock(event.get('onset'))} to "
            f"{clock(event.get('offset'))}, {event.get('frames', 0)} frames"
        )
        tracks = [t for t in event.get("tracks") or [] if isinstance(t, dict)]
        if not tracks:
            lines.append("    no face")
            shown += 1
        for track in tracks:
            if shown >= EVENT_ROWS:
                break
            shown += 1
            emotion = track.get("emotion") or {}
            most = min(emotion, key=lambda k: (-(number(emotion[k]) or 0), k)) if emotion else None
            aus = sorted(
                (
                    (code, number(v.get("activation_rate")) or 0)
                    for code, v in (track.get("au") or {}).items()
                    if code != AU45.code and isinstance(v, dict)
                ),
                key=lambda kv: (-kv[1], _order(kv[0])),
            )
            top = [f"{code} {_pct(rate)}" for code, rate in aus[:3] if rate > 0]
            rate = number(get(track, "blinks", "per_minute"))
            parts = [f"seen {_pct(track.get('visible_share'))}"]
            if most:
                parts.append(f"mostly {most} ({_pct(emotion[most])})")
            if get(track, "valence", "faces"):
                parts.append(
                    f"valence {_f(get(track, 'valence', 'mean'))}, arousal {_f(get(track, 'arousal', 'mean'))}"
                )
            if top:
                parts.append("active " + ", ".join(top))
            if rate is not None:
                parts.append(f"{rate:.1f} blinks/min")
            lines.append(f"    {_track(track.get('track')):<16} " + "; ".join(parts))
            diff = track.get("vs_baseline")
            if isinstance(diff, dict):
                dparts = [
                    f"valence {_signed(diff.get('valence_mean'))}",
                    f"arousal {_signed(diff.get('arousal_mean'))}",
                ]
                dau = diff.get("au") or {}
                rates = ((c, number(v.get("activation_rate"))) for c, v in dau.items() if isinstance(v, dict))
                moved = sorted(((c, d) for c, d in rates if d), key=lambda kv: (-abs(kv[1]), _order(kv[0])))[
                    :3
                ]
                if moved:
                    dparts.append(", ".join(f"{c} {100 * d:+.1f} pts" for c, d in moved))
                if number(diff.get("blinks_per_minute")) is not None:
                    dparts.append(f"blinks {diff['blinks_per_minute']:+.1f}/min")
                lines.append(f"    {'':<16} vs baseline: " + "; ".join(dparts))
    if shown < rows:
        lines.append(f"  ... and {rows - shown} more event rows (event_statistics_*.csv lists them all)")
    return lines


def _signed(value: Any) -> str:
    value = number(value)
    return "-" if value is None else f"{value:+.2f}"


class TextSink(Sink):
    fmt = "text"

    def finish(self) -> None:
        job = self.job
        for video in job.videos.values():
            text = report(analysis_metadata(job, video), video.metadata(), job.video_summary(video))
            path, handle = job.staging.open("w", encoding="utf-8")
            with handle:
                handle.write(text)
            job.staging.stage(
                self.fmt, path, f"facial_analysis_report{job.suffix(video)}_{job.timestamp}.txt"
            )
