"""fa-agree's page (``--html``): the statistics table, fatools beside the human ceiling,
and a timeline per AU of each video that seeks its player.

Like fa-export's report (export.html_report) the page draws with plotly.js, written as
``plotly.min.js`` beside it (left alone when the same one is there already), and loads
nothing from the network; its own script is only the glue. The timelines are run-length
segments ``[start s, end s, code]`` of the frames as they were scored (the threshold the
table used, frames either side left out shown as "not compared"), so a long video costs
a segment per change, not a point per frame.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fatools.agree.agreement import ALL, Agreement, Compared
from fatools.agree.compute import pairs_of

_PAGE = Path(__file__).with_name("agree_page.html")

# Segment codes; 0 (absent, or both absent) is not drawn.
PRESENT, HIT, MISS, FALSE_ALARM, NOT_COMPARED = 1, 2, 3, 4, 5
CODES = {
    PRESENT: "present",
    HIT: "hit",
    MISS: "miss",
    FALSE_ALARM: "false alarm",
    NOT_COMPARED: "not compared (no face, or not coded)",
}

# The table's columns: (column, heading); a statistic with *_lo/*_hi shows its interval.
SHOWN = [
    ("f1", "F1"),
    ("kappa", "kappa"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("accuracy", "accuracy"),
    ("base_rate", "base rate"),
    ("predicted_rate", "predicted rate"),
    ("event_f1", "event F1"),
    ("icc", "ICC"),
    ("pearson", "Pearson"),
    ("mae", "MAE"),
    ("alpha", "alpha"),
    ("alpha_intensity", "alpha (intensity)"),
    ("macro_f1", "macro-F1"),
    ("ccc", "CCC"),
    ("rmse", "RMSE"),
]
_OCCURRENCE = ("f1", "kappa", "precision", "recall", "accuracy", "base_rate", "predicted_rate", "event_f1")
_INTENSITY = ("icc", "pearson", "mae")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _applies(row: dict) -> set[str]:
    """The statistics that belong to a row: its empty ones among them are undefined, the rest do not apply."""
    unit, rater = row["unit"], row["rater"]
    intensity = set(_INTENSITY) if _number(row.get("mae")) is not None else set()
    if rater == "coders":
        both = _number(row.get("icc")) is not None or _number(row.get("alpha_intensity")) is not None
        return {"alpha"} | ({"alpha_intensity", "icc"} if both else set())
    if unit == "expression":
        return {"accuracy", "macro_f1"}
    if unit in ("valence", "arousal"):
        return {"ccc", "pearson", "rmse"}
    if unit == "mean":
        return {"f1", "kappa", "precision", "recall", "accuracy"} | intensity
    return set(_OCCURRENCE) | intensity


def table_rows(table: pd.DataFrame) -> list[dict]:
    """The table's rows, pooled first: each statistic [value, lo, hi] (None: undefined), left
    out where it does not apply."""
    rows = []
    records = table.to_dict("records")
    records.sort(key=lambda r: (r["video"] != ALL,))  # stable: the table's own order within each
    for row in records:
        applies = _applies(row)
        stats = {}
        for key, _ in SHOWN:
            if key in applies:
                stats[key] = [
                    _number(row.get(key)),
                    _number(row.get(f"{key}_lo")),
                    _number(row.get(f"{key}_hi")),
                ]
        threshold = row.get("threshold")
        rows.append(
            {
                "video": str(row["video"]),
                "rater": str(row["rater"]),
                "reference": str(row["reference"]),
                "unit": str(row["unit"]),
                "n": int(row["n"]) if _number(row.get("n")) is not None else None,
                "threshold": threshold if isinstance(threshold, str) else None,
                "stats": stats,
            }
        )
    return rows


def _au_order(units: Iterable[object]) -> list[str]:
    from fatools.agree.readers import _order

    return sorted({str(u) for u in units} - {"mean", "expression", "valence", "arousal"}, key=_order)


def chart(table: pd.DataFrame, coders: list[str], raters: list[str]) -> dict:
    """Per reference, per metric: a bar series per rater (pooled over videos, with its interval)
    and, with two or more coders, coder against coder: the pair's figure, or the mean of the
    pairs with that reference (all pairs against the consensus)."""
    pooled = table[table.video == ALL]
    aus = _au_order(pooled.unit)
    references = [*coders, *(["consensus"] if len(coders) >= 2 else [])]
    out: dict = {"aus": aus, "references": {}}

    def figure(rows: pd.DataFrame, au: str, metric: str) -> list | None:
        """[value, lo, hi] (value None: undefined), or None when the pair did not both rate the AU."""
        hit = rows[rows.unit == au]
        if hit.empty:
            return None
        r = hit.iloc[0]
        return [_number(r.get(metric)), _number(r.get(f"{metric}_lo")), _number(r.get(f"{metric}_hi"))]

    for reference in references:
        series = {}
        for metric in ("f1", "kappa"):
            bars = []
            for rater in raters:
                rows = pooled[(pooled.rater == rater) & (pooled.reference == reference)]
                if not rows.empty:
                    bars.append(
                        {
                            "name": f"{rater} vs {reference}",
                            "role": "tool",
                            "values": [figure(rows, au, metric) for au in aus],
                        }
                    )
            pairs = pairs_of(coders)  # (rater, reference) as the table has them; F1 and kappa are symmetric
            mine = pairs if reference == "consensus" else [p for p in pairs if reference in p]
            if len(coders) >= 2 and mine:
                values = []
                for au in aus:
                    each = [
                        figure(pooled[(pooled.rater == a) & (pooled.reference == b)], au, metric)
                        for a, b in mine
                    ]
                    rated = [e for e in each if e is not None]
                    if len(rated) <= 1:
                        values.append(rated[0] if rated else None)
                    else:
                        defined = [e[0] for e in rated if e[0] is not None]
                        values.append([float(np.mean(defined)) if defined else None, None, None])
                name = (
                    f"{mine[0][0]} vs {mine[0][1]}"
                    if len(mine) == 1
                    else f"coder vs coder (mean of {len(mine)} pairs)"
                )
                bars.append({"name": name + " (human ceiling)", "role": "coders", "values": values})
            series[metric] = bars
        out["references"][reference] = series
    return out


def _runs(codes: np.ndarray, t: np.ndarray, end: np.ndarray) -> list[list]:
    """[start, end, code] of each run of one code (0 left out)."""
    if not len(codes):
        return []
    change = np.flatnonzero(np.diff(codes) != 0) + 1
    starts, stops = np.concatenate([[0], change]), np.concatenate([change, [len(codes)]])
    return [
        [round(float(t[a]), 3), round(float(end[b - 1]), 3), int(codes[a])]
        for a, b in zip(starts, stops, strict=True)
        if codes[a] != 0
    ]


def _presence(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, float)
    return np.where(np.isnan(values), NOT_COMPARED, np.where(values > 0, PRESENT, 0)).astype(int)


def _versus(n: int, ok: np.ndarray, ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
    codes = np.full(n, NOT_COMPARED, int)
    ref, pred = np.asarray(ref) > 0, np.asarray(pred) > 0
    codes[ok] = np.select([ref & pred, ref & ~pred, ~ref & pred], [HIT, MISS, FALSE_ALARM], 0)
    return codes


def _media(video: Compared, out_dir: Path) -> str | None:
    """The source video as the page links to it, when it is a file where the records say (or beside them)."""
    from fatools.export.html_report import _href
    from fatools.video import is_image_path

    given = Path(video.path)
    for candidate in (
        given,
        Path(video.records).parent / given,
        Path(video.records).parent.parent / given.name,
    ):
        if candidate.is_file() and not is_image_path(str(candidate)):
            return _href(str(candidate), out_dir)
    return None


def timelines(video: Compared, coders: list[str], raters: list[str], out_dir: Path) -> dict:
    """One video's timelines: per AU a row per coder (present) and per rater against each reference (hits, misses)."""
    t = np.asarray(video.t, float)
    timed = bool(len(t)) and bool(np.isfinite(t).all())
    x = t if timed else np.arange(len(t), dtype=float)
    step = float(np.median(np.diff(x))) if len(x) > 1 else (1.0 / video.fps if timed and video.fps else 1.0)
    end = np.append(x[1:], x[-1] + step) if len(x) else x
    sources = video.sources
    references = [c for c in [*coders, "consensus"] if c in sources]
    coded = {au for r in references for au in sources[r].occ}
    aus = []
    for au in _au_order(coded):
        rows = {
            name: _runs(_presence(sources[name].occ[au]), x, end)
            for name in references
            if au in sources[name].occ
        }
        versus: dict[str, dict[str, list]] = {}
        for reference in references:
            for rater in raters:
                scored = video.scored.get((rater, reference, au))
                if scored is not None:
                    versus.setdefault(reference, {})[rater] = _runs(_versus(len(x), *scored), x, end)
        if versus:
            aus.append({"au": au, "coders": rows, "versus": versus})
    return {
        "name": video.name,
        "media": _media(video, out_dir),
        "timed": timed,
        "range": [round(float(x[0]), 3), round(float(end[-1]), 3)] if len(x) else [0, 1],
        "step": round(step, 6),
        "aus": aus,
    }


def page_data(result: Agreement, out_dir: Path) -> dict:
    settings = result.settings
    coders = list(settings.get("coders") or [])
    raters = list(settings.get("raters") or ["fatools"])
    references = [*coders, *(["consensus"] if len(coders) >= 2 else [])]
    return {
        "coders": coders,
        "raters": raters,
        "references": references,
        "reference": "consensus" if len(coders) >= 2 else (coders[0] if coders else None),
        "columns": [[k, h] for k, h in SHOWN],
        "rows": table_rows(result.table),
        "chart": chart(result.table, coders, raters),
        "codes": {str(k): v for k, v in CODES.items()},
        "videos": [timelines(v, coders, raters, out_dir) for v in result.videos],
        "settings": json.loads(json.dumps(settings, default=str)),
        "alignment": json.loads(result.alignment.to_json(orient="records", default_handler=str)),
    }


def write_html(
    result: Agreement, path: str | Path, title: str = "fatools agreement with human coders"
) -> Path:
    """The page at ``path`` and plotly.min.js beside it (left alone when it is the same)."""
    import plotly.offline

    from fatools.export.html_report import PLOTLY_JS, _share

    path = Path(path)
    out_dir = path.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(page_data(result, out_dir), allow_nan=False).replace("</", "<\\/")
    page = (
        _PAGE.read_text(encoding="utf-8")
        .replace("{{title}}", html.escape(title))
        .replace("{{plotly}}", PLOTLY_JS)
        .replace("{{data}}", payload)
    )
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    _share(out_dir / PLOTLY_JS, plotly.offline.get_plotlyjs())
    return path
