"""Alignment on the video's own clock: each reference sampled at fatools' frames.

A per-frame reference's frame N is at (N - first) / fps, fps the reference's own (a time
column), the one given, or the video's, and ``first`` its number for the video's first
frame (``numbering``); each sampled frame takes the nearest
reference sample within half a frame (of the reference's rate), or none (counted: a tool
that skipped frames leaves them out, as fatools' own skipped frames are). Reference samples
fatools did not sample are left out and counted. An interval reference is read at each
sampled frame's time (onset <= t < offset)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fatools.agree.codes import FATOOLS_AUS
from fatools.agree.readers import Coding
from fatools.agree.results import Video
from fatools.errors import FatoolsError


@dataclass
class Source:
    """One rater's figures at a video's sampled frames (rows: ``Video.table``'s rows; NaN where none)."""

    name: str
    role: str  # fatools, coder or tool
    occ: pd.DataFrame  # 0/1 per AU
    inten: pd.DataFrame  # 0-5 per AU (NaN when the rater gives no intensity)
    labels: pd.Series  # expression label
    va: pd.DataFrame  # valence, arousal
    score: pd.DataFrame | None = None  # fatools' AU scores, for its thresholds
    report: dict = field(default_factory=dict)


def fatools_source(video: Video) -> Source:
    table = video.table
    scores = table[FATOOLS_AUS].where(table.face)
    occ = scores.gt(table.threshold.fillna(0.5), axis=0).astype(float).where(scores.notna())
    return Source(
        "fatools",
        "fatools",
        occ,
        scores * 5.0,
        table.expression.where(table.face),
        table[["valence", "arousal"]].where(table.face),
        score=scores,
    )


def _empty(video: Video, name: str, role: str) -> Source:
    n = len(video.table)
    return Source(
        name,
        role,
        pd.DataFrame(index=range(n)),
        pd.DataFrame(index=range(n)),
        pd.Series([None] * n, dtype=object),
        pd.DataFrame(np.nan, index=range(n), columns=["valence", "arousal"]),
    )


def _frames(
    video: Video, coding: Coding, source: Source, presence: float, fps: float | None, first: int
) -> None:
    table = coding.table
    t = video.table.t.to_numpy(dtype=float)
    if "time" in table and table.time.notna().any():
        ref_t = table.time.to_numpy(dtype=float)
        steps = np.diff(np.sort(ref_t[np.isfinite(ref_t)]))
        rate = 1.0 / float(np.median(steps)) if len(steps) else (fps or video.fps or 1.0)
    else:
        given = fps or video.fps
        if not given:
            raise FatoolsError(
                f"{coding.source}: the video's frame rate is unknown; give the reference's (--reference-fps)"
            )
        rate = given
        ref_t = (table.frame.to_numpy(dtype=float) - first) / rate
    # The reference's own sampling period: a frame's when it codes every frame, longer for a
    # tool that sampled (py-feat's skip_frames): its last sample stands for that long. A frame
    # still takes a sample only within half a frame: one the tool skipped is left out and
    # counted, as the frames fatools skipped are, rather than given a neighbour's value.
    steps = np.diff(np.sort(ref_t[np.isfinite(ref_t)]))
    period = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0 / rate
    order = np.argsort(ref_t, kind="stable")
    sorted_t = ref_t[order]
    pos = np.clip(np.searchsorted(sorted_t, t), 1, max(len(sorted_t) - 1, 1))
    left, right = sorted_t[np.maximum(pos - 1, 0)], sorted_t[np.minimum(pos, len(sorted_t) - 1)]
    pick = np.where(np.abs(t - left) <= np.abs(right - t), pos - 1, pos)
    pick = np.clip(pick, 0, len(sorted_t) - 1)
    ok = np.abs(sorted_t[pick] - t) <= 0.5 / rate + 1e-6 if len(sorted_t) else np.zeros(len(t), bool)
    rows = order[pick]
    rep = source.report
    rep.update(
        reference_first_frame=None if "time" in table and table.time.notna().any() else first,
        reference_samples=len(ref_t),
        reference_rate=round(rate, 4),
        reference_period_s=round(period, 6),
        reference_end_s=float(np.nanmax(ref_t)) + period if len(ref_t) else 0.0,
        fatools_frames_without_reference=int((~ok).sum()),
        reference_samples_not_sampled=int(len(ref_t) - len(set(rows[ok].tolist()))),
    )
    for au in coding.aus:
        values = np.where(ok, table[au].to_numpy(dtype=float)[rows], np.nan)
        scale = coding.scale[au]
        if scale == "intensity":
            source.inten[au] = values
            source.occ[au] = np.where(np.isnan(values), np.nan, (values >= presence).astype(float))
        elif scale == "probability":
            source.occ[au] = np.where(np.isnan(values), np.nan, (values >= 0.5).astype(float))
        else:
            source.occ[au] = np.where(np.isnan(values), np.nan, (values > 0).astype(float))
    if "expression" in table:
        labels = table.expression.to_numpy(dtype=object)[rows]
        source.labels = pd.Series(np.where(ok, labels, None), dtype=object)
    for dim in ("valence", "arousal"):
        if dim in table:
            source.va[dim] = np.where(ok, table[dim].to_numpy(dtype=float)[rows], np.nan)


def _intervals(video: Video, coding: Coding, source: Source, presence: float) -> None:
    table, t = coding.table, video.table.t.to_numpy(dtype=float)
    overlaps = 0
    for au in coding.aus:
        spans = table[table.unit == au].sort_values("onset")
        level = np.zeros(len(t))
        present = np.zeros(len(t))
        last_end = -np.inf
        for onset, offset, value in spans[["onset", "offset", "value"]].itertuples(index=False):
            overlaps += onset < last_end
            last_end = max(last_end, offset)
            inside = (t >= onset) & (t < offset)
            value = float(value)
            level[inside] = np.fmax(level[inside], 0.0 if np.isnan(value) else value)
            present[inside] = (
                1.0 if np.isnan(value) else np.maximum(present[inside], float(value >= presence))
            )
        source.occ[au] = present
        if coding.scale[au] == "intensity":
            source.inten[au] = level
    labels = table[table.unit == "expression"]
    if len(labels):
        out = np.full(len(t), None, dtype=object)
        for onset, offset, value in labels[["onset", "offset", "value"]].itertuples(index=False):
            out[(t >= onset) & (t < offset)] = value
        source.labels = pd.Series(out, dtype=object)
    for dim in ("valence", "arousal"):
        spans = table[table.unit == dim]
        if len(spans):
            out = np.full(len(t), np.nan)
            for onset, offset, value in spans[["onset", "offset", "value"]].itertuples(index=False):
                out[(t >= onset) & (t < offset)] = value
            source.va[dim] = out
    source.report.update(
        reference_end_s=float(table.offset.max()) if len(table) else 0.0, overlapping_intervals=int(overlaps)
    )


def numbering(coding: Coding, role: str, given: int | None, default: int) -> int:
    """The number a file gives the video's first frame: a tool's table keeps its format's own
    (py-feat counts from 0 whatever the references do); a coder's is the one given
    (--first-frame), else its format's (DISFA's: 1), else the default (0, or the protocol's)."""
    if coding.first_frame is not None and (role == "tool" or given is None):
        return coding.first_frame
    return given if given is not None else default


def align(
    video: Video,
    codings: list[Coding],
    name: str,
    role: str = "coder",
    presence: float = 1.0,
    fps: float | None = None,
    first_frame: int | None = None,
    aus: list[str] | None = None,
    default_first: int = 0,
) -> Source:
    """One rater's codings of ``video`` (several files merge: DISFA's file per AU) on its sampled frames."""
    source = _empty(video, name, role)
    source.report.update(formats=sorted({c.format for c in codings}), unknown_codes={})
    for coding in codings:
        part = _empty(video, name, role)
        (
            _frames(video, coding, part, presence, fps, numbering(coding, role, first_frame, default_first))
            if coding.kind == "frames"
            else _intervals(video, coding, part, presence)
        )
        for au in part.occ:
            source.occ[au] = part.occ[au]
        for au in part.inten:
            source.inten[au] = part.inten[au]
        if part.labels.notna().any():
            source.labels = part.labels
        for dim in ("valence", "arousal"):
            if part.va[dim].notna().any():
                source.va[dim] = part.va[dim]
        for key, value in part.report.items():
            source.report[key] = (
                max(source.report.get(key, value), value) if key.startswith("reference_end") else value
            )
        for code, count in coding.unknown.items():
            source.report["unknown_codes"][code] = source.report["unknown_codes"].get(code, 0) + count
    face = video.table.face.to_numpy(dtype=bool)
    # Frames without the compared face: no figure (where(), not loc[~face, :] = NaN, which
    # pandas 3.0.6 refuses on a one-column frame built column by column: a coder's
    # intensities of one AU).
    source.occ = source.occ.where(np.broadcast_to(face[:, None], source.occ.shape))
    source.inten = source.inten.where(np.broadcast_to(face[:, None], source.inten.shape))
    source.va = source.va.where(np.broadcast_to(face[:, None], source.va.shape))
    source.labels = source.labels.where(face)
    if aus is not None:
        source.occ = source.occ[[a for a in source.occ if a in aus]]
        source.inten = source.inten[[a for a in source.inten if a in aus]]
    end, duration = source.report.get("reference_end_s"), video.duration
    if end is not None and duration:
        diff = end - duration
        source.report["extent"] = (
            "same length"
            if abs(diff) < 1.0 / (video.fps or 25) + 1e-6
            else f"reference {'longer' if diff > 0 else 'shorter'} than the video by {abs(diff):.3f} s"
        )
    return source
