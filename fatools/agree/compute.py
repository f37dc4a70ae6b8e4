"""Every rater against every reference, per AU per video and pooled over videos, with
bootstrap intervals; coder against coder beside them (the human ceiling)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from fatools.agree import stats
from fatools.agree.align import Source

GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)
ALL = "all"


class Pairing:
    """One rater against one reference over the videos: rows of the table and their intervals."""

    def __init__(
        self,
        rater: str,
        reference: str,
        per_video: list[tuple[str, dict[str, Source], np.ndarray]],
        threshold: str | float | None,
        tolerance: float,
        block: float | None,
        resamples: int,
        seed: int,
        aus: list[str] | None,
    ) -> None:
        self.rater, self.reference = rater, reference
        self.videos = per_video  # (video name, sources, times)
        self.threshold, self.tolerance, self.block = threshold, tolerance, block
        self.resamples, self.seed, self.aus = resamples, seed, aus
        self.rows: list[dict] = []
        self.confusion: pd.DataFrame | None = None
        self.chosen: dict[str, str] = {}
        # (video, AU) -> (the frames compared, the reference's 0/1 and the rater's at them): the page's timelines.
        self.predicted: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _units(self, index: int, t: np.ndarray) -> np.ndarray:
        if len(self.videos) > 1:
            return np.full(len(t), index)
        if not len(t):
            return np.zeros(0, int)
        span = float(np.nanmax(t) - np.nanmin(t))
        block = self.block or max(min(10.0, span / 10), 1e-3)  # None: 10 s, or a tenth of a shorter video
        return np.floor((t - np.nanmin(t)) / block).astype(int)

    def _row(self, video: str, unit: str, n: int, figures: dict, ci: dict | None = None) -> dict:
        row = {"video": video, "rater": self.rater, "reference": self.reference, "unit": unit, "n": n}
        row.update({k: v for k, v in figures.items() if k != "confusion"})
        for key, (lo, hi) in (ci or {}).items():
            row[f"{key}_lo"], row[f"{key}_hi"] = lo, hi
        return row

    def _predictions(self, au: str, data: list[dict]) -> None:
        """The rater's 0/1 for ``au`` in each video's data, by the threshold asked for (fatools only)."""
        if self.threshold in (None, "default") or data[0]["score"] is None:
            for d in data:
                d["pred"] = d["occ"]
            return
        if self.threshold != "best":
            for d in data:
                d["pred"] = (d["score"] > float(self.threshold)).astype(float)
            self.chosen[au] = str(self.threshold)
            return
        # Chosen on one fold and applied to the other: never tuned and scored on the same frames.
        folds = []
        for i, d in enumerate(data):
            fold = (
                np.full(len(d["ref"]), i % 2) if len(data) > 1 else (d["t"] >= np.median(d["t"])).astype(int)
            )
            folds.append(fold)
        ref = np.concatenate([d["ref"] for d in data])
        score = np.concatenate([d["score"] for d in data])
        fold = np.concatenate(folds)
        best = {}
        for f in (0, 1):
            tune = fold != f
            sums = np.array([stats.occ_sums(ref[tune], score[tune] > g) for g in GRID])
            f1 = stats.occ_from_sums(sums)["f1"]
            best[f] = float(GRID[np.nanargmax(f1)]) if np.isfinite(f1).any() else 0.5
        self.chosen[au] = f"{best[1]:.2f}/{best[0]:.2f}"  # fold 0's threshold (tuned on fold 1), fold 1's
        for d, fd in zip(data, folds, strict=True):
            d["pred"] = (d["score"] > np.where(fd == 0, best[0], best[1])).astype(float)

    def run(self) -> Pairing:
        first = self.videos[0][1]
        rater, ref = first[self.rater], first[self.reference]
        aus = [a for a in ref.occ if a in rater.occ and (self.aus is None or a in self.aus)]
        for _, sources, _ in self.videos[1:]:
            aus += [
                a
                for a in sources[self.reference].occ
                if a in sources[self.rater].occ and a not in aus and (self.aus is None or a in self.aus)
            ]
        per_au_sums, pooled_rows = [], []
        for au in aus:
            data = []
            for name, sources, t in self.videos:
                r, p = sources[self.reference], sources[self.rater]
                if au not in r.occ or au not in p.occ:
                    continue
                ok = (r.occ[au].notna() & p.occ[au].notna()).to_numpy()
                score = p.score[au].to_numpy()[ok] if p.score is not None else None
                ri = r.inten[au].to_numpy()[ok] if au in r.inten else None
                pi = p.inten[au].to_numpy()[ok] if au in p.inten else None
                data.append(
                    {
                        "video": name,
                        "t": t[ok],
                        "ref": r.occ[au].to_numpy()[ok],
                        "occ": p.occ[au].to_numpy()[ok],
                        "score": score,
                        "ri": ri,
                        "pi": pi,
                        "ok": ok,
                    }
                )
            if not data:
                continue
            self._predictions(au, data)
            for d in data:
                self.predicted[(d["video"], au)] = (d["ok"], d["ref"], d["pred"])
            unit_sums, whole_events = [], []
            for i, d in enumerate(data):
                figures = stats.occurrence(d["ref"], d["pred"])
                intensity = d["ri"] is not None and d["pi"] is not None
                if intensity:
                    figures.update(
                        {k: v for k, v in stats.continuous(d["ri"], d["pi"]).items() if k in stats.CONT}
                    )
                ev_ref, ev_pred = stats.events(d["ref"], d["t"]), stats.events(d["pred"], d["t"])
                whole_events.append(stats.event_sums(ev_ref, ev_pred, self.tolerance))
                figures.update({k: float(v) for k, v in stats.events_from_sums(whole_events[-1]).items()})
                figures["threshold"] = self.chosen.get(au)
                self.rows.append(self._row(d["video"], au, len(d["ref"]), figures))
                units = self._units(i, d["t"])
                for u in np.unique(units):
                    m = units == u
                    lo, hi = d["t"][m].min(), d["t"][m].max() + 1e-9
                    parts = [
                        stats.occ_sums(d["ref"][m], d["pred"][m]),
                        stats.event_sums(_within(ev_ref, lo, hi), _within(ev_pred, lo, hi), self.tolerance),
                    ]
                    parts.append(stats.pair_sums(d["ri"][m], d["pi"][m]) if intensity else np.full(8, np.nan))
                    unit_sums.append(np.concatenate(parts))
            sums = np.array(unit_sums)
            ref_all, pred_all = (
                np.concatenate([d["ref"] for d in data]),
                np.concatenate([d["pred"] for d in data]),
            )
            figures = stats.occurrence(ref_all, pred_all)
            intensity = all(d["ri"] is not None and d["pi"] is not None for d in data)
            if intensity:
                figures.update(
                    {
                        k: v
                        for k, v in stats.continuous(
                            np.concatenate([d["ri"] for d in data]), np.concatenate([d["pi"] for d in data])
                        ).items()
                        if k in stats.CONT
                    }
                )
            figures.update({k: float(v) for k, v in stats.events_from_sums(np.sum(whole_events, 0)).items()})
            figures["threshold"] = self.chosen.get(au)

            def compute(s: np.ndarray, intensity: bool = intensity) -> dict:
                out = {**stats.occ_from_sums(s[..., :4]), **stats.events_from_sums(s[..., 4:9])}
                if intensity:
                    out.update({k: v for k, v in stats.pair_from_sums(s[..., 9:]).items() if k in stats.CONT})
                return out

            ci = stats.bootstrap(sums, compute, self.resamples, self.seed)
            pooled_rows.append(self._row(ALL, au, len(ref_all), figures, ci))
            per_au_sums.append(sums)
        self.rows.extend(pooled_rows)
        self._mean(pooled_rows, per_au_sums)
        self._expressions()
        self._dimensions()
        return self

    def _mean(self, pooled: list[dict], sums: list[np.ndarray]) -> None:
        if not pooled:
            return
        keys = ("f1", "precision", "recall", "accuracy", "kappa", "icc", "pearson", "mae")
        figures = {
            k: float(np.nanmean([r.get(k, np.nan) for r in pooled]))
            if any(np.isfinite(r.get(k, np.nan)) for r in pooled)
            else np.nan
            for k in keys
        }
        ci = {}
        if len({len(s) for s in sums}) == 1:
            stacked = np.stack(sums, 1)  # units x AUs x sums

            def compute(s: np.ndarray) -> dict:
                with np.errstate(all="ignore"):
                    import warnings

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        return {
                            k: np.nanmean(v, -1)
                            for k, v in stats.occ_from_sums(s[..., :4]).items()
                            if k in ("f1", "kappa")
                        }

            ci = stats.bootstrap(stacked, compute, self.resamples, self.seed)
        self.rows.append(self._row(ALL, "mean", sum(r["n"] for r in pooled), figures, ci))

    def _expressions(self) -> None:
        pairs = []
        for i, (name, sources, t) in enumerate(self.videos):
            r, p = sources[self.reference].labels, sources[self.rater].labels
            ok = (r.notna() & p.notna()).to_numpy()
            if ok.any():
                pairs.append(
                    (name, r.to_numpy()[ok].astype(str), p.to_numpy()[ok].astype(str), self._units(i, t[ok]))
                )
        if not pairs:
            return
        labels = sorted({x for _, a, b, _ in pairs for x in (*a, *b)})
        per_unit = []
        for name, a, b, units in pairs:
            self.rows.append(self._row(name, "expression", len(a), stats.expressions(a, b, labels)))
            for u in np.unique(units):
                per_unit.append(stats.confusion(a[units == u], b[units == u], labels))
        a, b = np.concatenate([x[1] for x in pairs]), np.concatenate([x[2] for x in pairs])
        figures = stats.expressions(a, b, labels)
        self.confusion = pd.DataFrame(figures["confusion"], index=labels, columns=labels)
        ci = stats.bootstrap(np.array(per_unit, float), stats.expr_from_confusion, self.resamples, self.seed)
        self.rows.append(self._row(ALL, "expression", len(a), figures, ci))

    def _dimensions(self) -> None:
        for dim in ("valence", "arousal"):
            parts, per_unit = [], []
            for i, (name, sources, t) in enumerate(self.videos):
                r, p = sources[self.reference].va[dim].to_numpy(), sources[self.rater].va[dim].to_numpy()
                ok = np.isfinite(r) & np.isfinite(p)
                if ok.any():
                    parts.append((r[ok], p[ok]))
                    self.rows.append(self._row(name, dim, int(ok.sum()), stats.continuous(r[ok], p[ok])))
                    units = self._units(i, t[ok])
                    per_unit += [
                        stats.pair_sums(r[ok][units == u], p[ok][units == u]) for u in np.unique(units)
                    ]
            if parts:
                r, p = np.concatenate([x[0] for x in parts]), np.concatenate([x[1] for x in parts])
                compute = lambda s: {k: v for k, v in stats.pair_from_sums(s).items() if k in stats.VA}  # noqa: E731
                ci = stats.bootstrap(np.array(per_unit), compute, self.resamples, self.seed)
                self.rows.append(self._row(ALL, dim, len(r), stats.continuous(r, p), ci))


def _within(events: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """The events whose onset lies in [lo, hi] (a bootstrap unit's span)."""
    return [e for e in events if lo <= e[0] <= hi]


def between_coders(
    coders: list[str], videos: list[tuple[str, dict[str, Source], np.ndarray]], aus: list[str] | None
) -> list[dict]:
    """Rows of rater and reference ``coders``: Krippendorff's alpha (nominal on occurrence,
    interval on intensity) and ICC(3,1) over all coders, pooled over videos."""
    rows = []
    first = videos[0][1]
    common = [
        a
        for a in first[coders[0]].occ
        if all(a in first[c].occ for c in coders) and (aus is None or a in aus)
    ]
    for au in common:
        occ = np.concatenate([np.stack([s[c].occ[au].to_numpy() for c in coders]) for _, s, _ in videos], 1)
        row = {
            "video": ALL,
            "rater": "coders",
            "reference": "coders",
            "unit": au,
            "n": int(np.isfinite(occ).all(0).sum()),
            "alpha": stats.alpha(occ, "nominal"),
        }
        if all(au in first[c].inten for c in coders):
            inten = np.concatenate(
                [np.stack([s[c].inten[au].to_numpy() for c in coders]) for _, s, _ in videos], 1
            )
            full = inten[:, np.isfinite(inten).all(0)]
            row["alpha_intensity"] = stats.alpha(inten, "interval")
            row["icc"] = stats.icc3(full.T) if full.shape[1] > 1 else np.nan
        rows.append(row)
    return rows


def pairs_of(coders: list[str]) -> list[tuple[str, str]]:
    return list(combinations(coders, 2))
