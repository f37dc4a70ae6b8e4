"""fa-agree's run: ``agree(results, {"coder": [paths]})`` reads fatools' records and each
reference coding, aligns them on the video's clock (``align``), and returns an
``Agreement`` whose ``table`` has a row per rater, reference, unit (an AU, ``mean``,
``expression``, ``valence``, ``arousal``) and video, plus pooled rows (``video`` =
``all``) with 95% bootstrap intervals (``*_lo``, ``*_hi``). ``write_html``
(fatools.agree.page) draws it as a page: the table, fatools beside the coder-vs-coder
figure, and a timeline per AU."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fatools.agree.align import Source, align, fatools_source
from fatools.agree.codes import PROTOCOLS
from fatools.agree.compute import ALL, Pairing, between_coders, pairs_of
from fatools.agree.readers import Coding, read_coding
from fatools.agree.results import Video, read_results
from fatools.errors import FatoolsError

__all__ = ["ALL", "PROTOCOLS", "Agreement", "Compared", "agree"]

COLUMNS = [
    "video",
    "rater",
    "reference",
    "unit",
    "n",
    "base_rate",
    "predicted_rate",
    "threshold",
    "f1",
    "f1_lo",
    "f1_hi",
    "precision",
    "recall",
    "accuracy",
    "kappa",
    "kappa_lo",
    "kappa_hi",
    "alpha",
    "alpha_intensity",
    "icc",
    "icc_lo",
    "icc_hi",
    "pearson",
    "mae",
    "macro_f1",
    "macro_f1_lo",
    "macro_f1_hi",
    "ccc",
    "ccc_lo",
    "ccc_hi",
    "rmse",
    "onset_f1",
    "offset_f1",
    "event_f1",
    "event_f1_lo",
    "event_f1_hi",
]


@dataclass
class Compared:
    """One video as compared: its sampled times and each rater's ``Source`` at them."""

    name: str
    path: str  # the video as fatools' records name it
    records: str
    fps: float | None
    t: np.ndarray
    sources: dict[str, Source]
    # (rater, reference, AU) -> (frames compared, reference 0/1, rater 0/1 at its threshold), as scored.
    scored: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )


@dataclass
class Agreement:
    table: pd.DataFrame
    alignment: pd.DataFrame
    confusion: dict = field(default_factory=dict)  # (rater, reference) -> DataFrame (rows: reference)
    settings: dict = field(default_factory=dict)
    # Per video, what each rater said at each sampled frame (the page's timelines):
    # ``Compared`` of its name, paths, clock and sources (fatools, tools, coders, consensus).
    videos: list[Compared] = field(default_factory=list)

    def to_json(self) -> dict:
        def clean(frame: pd.DataFrame) -> list[dict]:
            return json.loads(frame.to_json(orient="records"))

        return {
            "settings": self.settings,
            "table": clean(self.table),
            "alignment": clean(self.alignment),
            "confusion": [
                {"rater": r, "reference": f, "labels": list(c.index), "matrix": c.to_numpy().tolist()}
                for (r, f), c in self.confusion.items()
            ],
        }


def _match(stem: str, video: Video) -> tuple[int, int]:
    """How well a coding's name fits a video: how many of the folders and name its stem shares
    with the end of the video's path (``SN001/A1_AU1_TrailNo_1``); then, for a name that starts
    with the video's (``SN001_au12``, ``clip_coder2``), the length of the video's (``v10_a``:
    v10 before v1). (0, 0): it does not fit."""
    mine, theirs = stem.split("/"), Path(video.path).with_suffix("").parts
    shared = 0
    while shared < min(len(mine), len(theirs)) and mine[-1 - shared] == theirs[-1 - shared]:
        shared += 1
    name = Path(video.path).stem
    return shared, len(name) if name and mine[-1].startswith(name) else 0


def _assign(codings: list[Coding], videos: list[Video], who: str) -> dict[str, list[Coding]]:
    """Each coding to the video it fits best (``_match``). With one video, every coding when
    none fits it (``coder1.eaf``), else those that fit it best (a dataset's folder of many
    videos' files)."""
    out: dict[str, list[Coding]] = {v.name: [] for v in videos}
    if len(videos) == 1:
        scores = [_match(c.stem, videos[0]) for c in codings]
        best = max(scores, default=(0, 0))
        out[videos[0].name] = [c for c, s in zip(codings, scores, strict=True) if s == best]
        return out
    for coding in codings:
        scores = [_match(coding.stem, v) for v in videos]
        best = max(scores)
        fits = [v for v, s in zip(videos, scores, strict=True) if s == best]
        if best == (0, 0):
            raise FatoolsError(
                f"{coding.source}: no video named like it among the results ({who}); name reference "
                "files after their videos"
            )
        if len(fits) > 1:
            raise FatoolsError(
                f"{coding.source}: fits {', '.join(v.path for v in fits)} alike ({who}); name reference "
                "files after their videos, or keep them in folders named as the videos' are"
            )
        out[fits[0].name].append(coding)
    return out


def _consensus(coders: list[Source]) -> Source:
    """Present where more than half the coders say so (two coders: both); the median intensity and value."""
    first = coders[0]
    aus = [a for a in first.occ if all(a in c.occ for c in coders)]
    occ = pd.concat([c.occ[aus] for c in coders], keys=range(len(coders)))
    stacked = np.stack([c.occ[aus].to_numpy() for c in coders])
    defined = np.isfinite(stacked).all(0)
    votes = pd.DataFrame(
        np.where(defined, (np.nansum(stacked, 0) > len(coders) / 2).astype(float), np.nan), columns=aus
    )
    del occ
    iaus = [a for a in aus if all(a in c.inten for c in coders)]
    inten = pd.DataFrame(np.median(np.stack([c.inten[iaus].to_numpy() for c in coders]), 0), columns=iaus)
    labels = pd.concat([c.labels for c in coders], axis=1)
    label = (
        labels.apply(
            lambda r: r.mode().iloc[0] if r.notna().all() and r.value_counts().iloc[0] > len(r) / 2 else None,
            axis=1,
        )
        if len(labels)
        else first.labels
    )
    va = pd.DataFrame(
        {d: np.median(np.stack([c.va[d].to_numpy() for c in coders]), 0) for d in ("valence", "arousal")}
    )
    return Source("consensus", "consensus", votes, inten, label.astype(object), va)


def agree(
    results: list[str | Path] | str | Path,
    references: dict[str, list[str | Path]],
    raters: dict[str, list[str | Path]] | None = None,
    *,
    protocol: str | None = None,
    aus: list[str] | None = None,
    threshold: str | float = "default",
    track: object = None,
    tracks: dict | None = None,
    reference_fps: float | None = None,
    first_frame: int | None = None,
    tolerance: float = 0.5,
    block: float | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Agreement:
    """fatools (and other tools, ``raters``) against each coder, their consensus, and coder against coder."""
    if isinstance(results, (str, Path)):
        results = [results]
    proto = PROTOCOLS[protocol] if protocol else None
    presence = proto.presence if proto else 1.0
    default_first = proto.first_frame if proto else 0
    keep = list(aus) if aus else (list(proto.aus) if proto else None)
    videos = read_results(list(results), tracks, track)
    raters = raters or {}
    coders = list(references)
    if not coders:
        raise FatoolsError("no reference coding given")
    readings = {
        name: [c for p in paths for c in read_coding(p)] for name, paths in {**references, **raters}.items()
    }
    assigned = {name: _assign(codings, videos, name) for name, codings in readings.items()}
    per_video, report, compared = [], [], []
    for video in videos:
        if video.table.t.isna().all() and (reference_fps or video.fps):
            # An image sequence (DISFA+, BP4D) has no clock: its frame numbers at the given rate.
            video.table["t"] = video.table.frame.astype(float) / (reference_fps or video.fps)
        sources = {"fatools": fatools_source(video)}
        for name in [*raters, *coders]:
            codings = assigned[name][video.name]
            if not codings:
                continue
            sources[name] = align(
                video,
                codings,
                name,
                "tool" if name in raters else "coder",
                presence,
                reference_fps,
                first_frame,
                keep,
                default_first,
            )
            report.append(
                {
                    "video": video.name,
                    "source": name,
                    "records": video.records,
                    "track": video.track,
                    "face_rule": video.rule,
                    "fatools_frames": len(video.table),
                    "frames_with_face": int(video.table.face.sum()),
                    "video_fps": video.fps,
                    "video_duration_s": video.duration,
                    **sources[name].report,
                }
            )
        present = [c for c in coders if c in sources]
        if len(present) >= 2:
            sources["consensus"] = _consensus([sources[c] for c in present])
        per_video.append((video.name, sources, video.table.t.to_numpy(dtype=float)))
        compared.append(Compared(video.name, video.path, video.records, video.fps, per_video[-1][2], sources))
    rows, confusion = [], {}
    references_all = [*coders, *(["consensus"] if len(coders) >= 2 else [])]
    pairings = [(r, f) for r in ["fatools", *raters] for f in references_all] + pairs_of(coders)
    for rater, reference in pairings:
        data = [v for v in per_video if rater in v[1] and reference in v[1]]
        if not data:
            continue
        pairing = Pairing(
            rater,
            reference,
            data,
            threshold if rater == "fatools" else "default",
            tolerance,
            block,
            resamples,
            seed,
            keep,
        ).run()
        rows += pairing.rows
        by_name = {c.name: c for c in compared}
        for (name, au), value in pairing.predicted.items():
            by_name[name].scored[(rater, reference, au)] = value
        if pairing.confusion is not None:
            confusion[(rater, reference)] = pairing.confusion
    shared = [v for v in per_video if all(c in v[1] for c in coders)]
    if len(coders) >= 2 and shared:
        rows += between_coders(coders, shared, keep)
    table = pd.DataFrame(rows)
    table = table[[c for c in COLUMNS if c in table] + [c for c in table if c not in COLUMNS]]
    settings: dict[str, object] = {
        "protocol": protocol,
        "presence": presence,
        "first_frame": first_frame
        if first_frame is not None
        else f"{default_first}, DISFA's files 1, py-feat's 0",
        "threshold": threshold,
        "tolerance_s": tolerance,
        "block_s": block or "10 s, or a tenth of a shorter video",
        "resamples": resamples,
        "seed": seed,
        "bootstrap_over": "videos" if len(videos) > 1 else "time blocks",
        "fatools_intensity": "AU score x 5 (fatools' scores are not calibrated FACS intensities)",
    }
    settings.update(coders=coders, raters=["fatools", *raters])
    return Agreement(table, pd.DataFrame(report), confusion, settings, compared)
