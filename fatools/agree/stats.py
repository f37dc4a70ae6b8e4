"""The statistics, each from a well-kept library where one exists (scikit-learn's metrics,
scipy's Pearson, ``krippendorff``), and the same figures from per-unit sums so that a
bootstrap over videos (or time blocks) is a matrix product. ICC(3,1) (Shrout and Fleiss,
1979, two-way mixed, consistency, single rater), Lin's CCC and the event matching are
written here: scikit-learn and scipy have none. Undefined figures (an AU never present,
a constant series) are NaN, never 0."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

OCC = ("f1", "precision", "recall", "accuracy", "kappa", "base_rate", "predicted_rate")
CONT = ("icc", "pearson", "mae")
VA = ("ccc", "pearson", "rmse")


def _div(a: Any, b: Any) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), np.nan)


# -- occurrence ------------------------------------------------------------------------


def occurrence(ref: np.ndarray, pred: np.ndarray) -> dict:
    """Occurrence agreement of two 0/1 series, by scikit-learn; F1, recall and kappa are NaN
    when the reference never has the AU, precision when the rater never says it."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, precision_score, recall_score

    ref, pred = np.asarray(ref, int), np.asarray(pred, int)
    if len(ref) == 0:
        return dict.fromkeys(OCC, np.nan)
    nan = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "f1": f1_score(ref, pred, zero_division=nan),
            "precision": precision_score(ref, pred, zero_division=nan),
            "recall": recall_score(ref, pred, zero_division=nan),
            "accuracy": accuracy_score(ref, pred),
            "kappa": cohen_kappa_score(ref, pred) if len(set(ref) | set(pred)) > 1 else nan,
            "base_rate": ref.mean(),
            "predicted_rate": pred.mean(),
        }
    if ref.sum() == 0:
        out.update(f1=nan, recall=nan, kappa=nan)
    return {k: float(v) for k, v in out.items()}


def occ_sums(ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ref, pred = np.asarray(ref, bool), np.asarray(pred, bool)
    return np.array(
        [(ref & pred).sum(), (~ref & pred).sum(), (ref & ~pred).sum(), (~ref & ~pred).sum()], float
    )


def occ_from_sums(s: np.ndarray) -> dict:
    """``occurrence`` from [tp, fp, fn, tn] (any leading shape)."""
    tp, fp, fn, tn = np.moveaxis(np.asarray(s, float), -1, 0)
    n = tp + fp + fn + tn
    po = _div(tp + tn, n)
    pe = _div((tp + fn) * (tp + fp) + (tn + fp) * (tn + fn), n * n)
    undefined = (tp + fn) == 0
    f1 = np.where(undefined, np.nan, _div(2 * tp, 2 * tp + fp + fn))
    return {
        "f1": f1,
        "precision": _div(tp, tp + fp),
        "recall": np.where(undefined, np.nan, _div(tp, tp + fn)),
        "accuracy": po,
        "kappa": np.where(undefined, np.nan, _div(po - pe, 1 - pe)),
        "base_rate": _div(tp + fn, n),
        "predicted_rate": _div(tp + fp, n),
    }


# -- intensity, valence and arousal ----------------------------------------------------


def icc3(matrix: np.ndarray) -> float:
    """ICC(3,1) of an n x k matrix (targets x raters): (MSR - MSE) / (MSR + (k - 1) MSE)."""
    return float(icc3_from_sums(icc_sums(matrix)))


def icc_sums(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, float)
    return np.concatenate([[len(m), (m.sum(1) ** 2).sum(), (m**2).sum()], m.sum(0)])


def icc3_from_sums(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, float)
    n, rows2, squares, cols = s[..., 0], s[..., 1], s[..., 2], s[..., 3:]
    k = cols.shape[-1]
    total = cols.sum(-1)
    correction = _div(total**2, n * k)
    ssr = _div(rows2, k) - correction
    ssc = _div((cols**2).sum(-1), n) - correction
    sse = squares - correction - ssr - ssc
    msr, mse = _div(ssr, n - 1), _div(sse, (n - 1) * (k - 1))
    return _div(msr - mse, msr + (k - 1) * mse)


def pair_sums(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = np.asarray(x, float), np.asarray(y, float)
    return np.array(
        [
            len(x),
            x.sum(),
            y.sum(),
            (x * x).sum(),
            (y * y).sum(),
            (x * y).sum(),
            np.abs(x - y).sum(),
            ((x - y) ** 2).sum(),
        ]
    )


def pair_from_sums(s: np.ndarray) -> dict:
    """ICC(3,1), Pearson, MAE, CCC, RMSE of (reference x, rater y) from ``pair_sums``."""
    n, sx, sy, sxx, syy, sxy, sabs, ssq = np.moveaxis(np.asarray(s, float), -1, 0)
    mx, my = _div(sx, n), _div(sy, n)
    vx, vy, cov = _div(sxx, n) - mx * mx, _div(syy, n) - my * my, _div(sxy, n) - mx * my
    icc = icc3_from_sums(np.stack([n, sxx + syy + 2 * sxy, sxx + syy, sx, sy], -1))
    with np.errstate(invalid="ignore"):
        pearson = _div(cov, np.sqrt(np.clip(vx, 0, None) * np.clip(vy, 0, None)))
    return {
        "icc": icc,
        "pearson": pearson,
        "mae": _div(sabs, n),
        "rmse": np.sqrt(_div(ssq, n)),
        "ccc": _div(2 * cov, vx + vy + (mx - my) ** 2),
    }


def continuous(ref: np.ndarray, pred: np.ndarray) -> dict:
    """ICC(3,1) (here), Pearson (scipy), MAE and RMSE (scikit-learn), CCC (here)."""
    from scipy.stats import pearsonr
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    ref, pred = np.asarray(ref, float), np.asarray(pred, float)
    if len(ref) < 2:
        return dict.fromkeys(("icc", "pearson", "mae", "rmse", "ccc"), np.nan)
    constant = np.ptp(ref) == 0 or np.ptp(pred) == 0
    mx, my = ref.mean(), pred.mean()
    cov = ((ref - mx) * (pred - my)).mean()
    denominator = ref.var() + pred.var() + (mx - my) ** 2
    return {
        "icc": icc3(np.column_stack([ref, pred])),
        "pearson": np.nan if constant else float(pearsonr(ref, pred)[0]),
        "mae": float(mean_absolute_error(ref, pred)),
        "rmse": float(np.sqrt(mean_squared_error(ref, pred))),
        "ccc": float(2 * cov / denominator) if denominator > 0 else np.nan,
    }


# -- expressions -----------------------------------------------------------------------


def expressions(ref: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1 (over the labels either side uses) and the confusion matrix, by scikit-learn."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    if len(ref) == 0:
        return {
            "accuracy": np.nan,
            "macro_f1": np.nan,
            "confusion": np.zeros((len(labels), len(labels)), int),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "accuracy": float(accuracy_score(ref, pred)),
            "macro_f1": float(f1_score(ref, pred, average="macro")),
            "confusion": confusion_matrix(ref, pred, labels=labels),
        }


def confusion(ref: np.ndarray, pred: np.ndarray, labels: list[str]) -> np.ndarray:
    """The confusion matrix alone (a bootstrap unit's: one scikit-learn call, not three)."""
    from sklearn.metrics import confusion_matrix

    if len(ref) == 0:
        return np.zeros((len(labels), len(labels)), int)
    return confusion_matrix(ref, pred, labels=labels)


def expr_from_confusion(c: np.ndarray) -> dict:
    c = np.asarray(c, float)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    rows, cols = c.sum(-1), c.sum(-2)
    used = (rows + cols) > 0
    f1 = np.where(2 * tp + (rows - tp) + (cols - tp) > 0, _div(2 * tp, rows + cols), 0.0)
    macro = _div(np.where(used, f1, 0).sum(-1), used.sum(-1))
    return {"accuracy": _div(tp.sum(-1), c.sum((-1, -2))), "macro_f1": macro}


# -- events ----------------------------------------------------------------------------


def events(present: np.ndarray, t: np.ndarray) -> list[tuple[float, float]]:
    """(onset, offset) of each run of 1s; the offset is the time of the first 0 after it."""
    present, t = np.asarray(present, bool), np.asarray(t, float)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    edges = np.diff(np.concatenate([[0], present.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(t[a], t[b] if b < len(t) else t[-1] + step) for a, b in zip(starts, ends, strict=True)]


def _match(ref: list[float], pred: list[float], tolerance: float) -> int:
    """One-to-one matches of times within ``tolerance``, nearest first."""
    pairs = sorted(
        (abs(r - p), i, j) for i, r in enumerate(ref) for j, p in enumerate(pred) if abs(r - p) <= tolerance
    )
    used_r: set[int] = set()
    used_p: set[int] = set()
    matched = 0
    for _, i, j in pairs:
        if i not in used_r and j not in used_p:
            used_r.add(i)
            used_p.add(j)
            matched += 1
    return matched


def event_sums(ref_events: list, pred_events: list, tolerance: float) -> np.ndarray:
    """[onsets matched, offsets matched, events matched (both), rater's events, reference's events]."""
    on = _match([e[0] for e in ref_events], [e[0] for e in pred_events], tolerance)
    off = _match([e[1] for e in ref_events], [e[1] for e in pred_events], tolerance)
    both = 0
    pairs = [
        (i, j)
        for i, r in enumerate(ref_events)
        for j, p in enumerate(pred_events)
        if abs(r[0] - p[0]) <= tolerance and abs(r[1] - p[1]) <= tolerance
    ]
    used_r: set[int] = set()
    used_p: set[int] = set()
    for i, j in pairs:
        if i not in used_r and j not in used_p:
            used_r.add(i)
            used_p.add(j)
            both += 1
    return np.array([on, off, both, len(pred_events), len(ref_events)], float)


def events_from_sums(s: np.ndarray) -> dict:
    on, off, both, npred, nref = np.moveaxis(np.asarray(s, float), -1, 0)
    undefined = nref == 0
    return {
        f"{k}_f1": np.where(undefined, np.nan, _div(2 * m, npred + nref))
        for k, m in (("onset", on), ("offset", off), ("event", both))
    }


# -- between coders --------------------------------------------------------------------


def alpha(matrix: np.ndarray, level: Literal["nominal", "ordinal", "interval", "ratio"]) -> float:
    """Krippendorff's alpha of a coders x frames matrix (NaN: not coded), by ``krippendorff``."""
    import krippendorff

    m = np.asarray(matrix, float)
    if np.unique(m[~np.isnan(m)]).size < 2:
        return np.nan
    return float(krippendorff.alpha(reliability_data=m, level_of_measurement=level))


# -- bootstrap -------------------------------------------------------------------------


def bootstrap(per_unit: np.ndarray, compute: Callable[[np.ndarray], dict], resamples: int, seed: int) -> dict:
    """95% percentile intervals of ``compute(sums)`` with the units (videos or time blocks)
    drawn with replacement; ``per_unit`` is units x sums (any trailing shape)."""
    units = len(per_unit)
    if units < 2 or resamples <= 0:
        return {}
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(units, np.full(units, 1.0 / units), size=resamples).astype(float)
    flat = per_unit.reshape(units, -1)
    sums = (weights @ flat).reshape((resamples, *per_unit.shape[1:]))
    out = {}
    for key, values in compute(sums).items():
        values = np.asarray(values, float)
        finite = values[np.isfinite(values)]
        if len(finite) >= 0.5 * resamples:
            out[key] = (float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5)))
    return out
