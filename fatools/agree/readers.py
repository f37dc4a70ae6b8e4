"""Reference codings read into one shape (a ``Coding``): ELAN files, per-frame tables
(generic, DISFA's one file per AU, BP4D's), interval tables, and other tools' tables
(py-feat's Fex CSV, OpenFace's CSV) as one more rater."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fatools.agree import codes
from fatools.errors import FatoolsError

UNKNOWN = 9  # BP4D's (and many labs') mark for "not codable" in a per-frame table
_TIME = ("time", "t", "timestamp", "seconds", "time_s")
_FRAME = ("frame", "frame_id", "frameid", "frame_number", "frame_index")
_ONSET, _OFFSET = ("onset", "start", "begin", "onset_s"), ("offset", "end", "stop", "offset_s")


@dataclass
class Coding:
    """One coder's (or tool's) coding of one video.

    ``kind`` "frames": ``table`` has ``frame`` and/or ``time`` and a column per unit (an AU
    code, ``expression``, ``valence``, ``arousal``). ``kind`` "intervals": ``table`` has
    ``onset``, ``offset`` (seconds), ``unit`` and ``value`` (an AU's intensity 1-5 or NaN
    for "present", an expression label, a number). ``scale`` says per AU: occurrence,
    intensity (0-5) or probability (0-1)."""

    source: str
    format: str
    kind: str
    table: pd.DataFrame
    scale: dict[str, str] = field(default_factory=dict)
    unknown: Counter = field(default_factory=Counter)  # codes fatools has no figure for
    stem: str = ""  # the name the video is matched by
    # The file's own number for the video's first frame, where its format fixes one (DISFA's
    # files count from 1, py-feat's from 0); None: the one given (--first-frame) or the default.
    first_frame: int | None = None

    @property
    def aus(self) -> list[str]:
        if self.kind == "frames":
            return [c for c in self.table.columns if c in self.scale]
        return sorted(set(self.table.unit) & set(self.scale), key=_order)


def _order(code: str) -> tuple:
    return (codes.FATOOLS_AUS.index(code), "") if code in codes.FATOOLS_AUS else (999, code)


def _note(coding: Coding, code: str, count: int = 1) -> bool:
    """True when fatools has ``code``; else count it as unknown."""
    if code in codes.FATOOLS_AUS:
        return True
    coding.unknown[code] += count
    return False


# -- ELAN ------------------------------------------------------------------------------


def read_eaf(path: Path) -> Coding:
    """An ELAN file as coders make it: a tier per AU (named ``AU12`` or ``12``; values empty, a
    letter A-E, or ``12C``), a tier per expression, a tier of codes (``6+12C``) or labels, or a
    ``valence``/``arousal`` tier of numbers. Tiers of none of these are left out."""
    import pympi

    try:
        eaf = pympi.Elan.Eaf(str(path))
    except Exception as exc:
        raise FatoolsError(f"{path}: not an ELAN file ({exc})") from None
    coding = Coding(str(path), "elan", "intervals", pd.DataFrame(), stem=path.stem)
    rows: list[tuple[float, float, str, object]] = []
    for tier in eaf.get_tier_names():
        tier_au = codes.parse_au(tier)
        tier_expr = codes.expression(tier)
        for start, end, value, *_ in eaf.get_annotation_data_for_tier(tier):
            onset, offset, value = start / 1000.0, end / 1000.0, (value or "").strip()
            if tier_au:
                intensity = codes.letter_or_number(value) if value else None
                if value and intensity is None:
                    written = codes.parse_au(value)
                    intensity = written[1] if written and written[0] == tier_au[0] else None
                if _note(coding, tier_au[0]) and intensity != 0:
                    rows.append((onset, offset, tier_au[0], np.nan if intensity is None else intensity))
            elif tier_expr:
                rows.append((onset, offset, "expression", tier_expr))
            elif tier.strip().lower() in codes.DIMENSIONS:
                number = pd.to_numeric(value, errors="coerce")
                rows.append((onset, offset, tier.strip().lower(), float(number)))
            elif codes.expression(value):
                rows.append((onset, offset, "expression", codes.expression(value)))
            elif value and (parsed := codes.parse_codes(value)):
                for code, intensity in parsed:
                    if _note(coding, code):
                        rows.append((onset, offset, code, np.nan if intensity is None else intensity))
            elif value:
                coding.unknown[value] += 1
    return _with_intervals(coding, rows)


def _with_intervals(coding: Coding, rows: list[tuple[float, float, str, object]]) -> Coding:
    """``coding`` holding ``rows`` (onset, offset, unit, value), each AU's scale named: an
    intensity when every interval of it has one, else occurrence."""
    coding.table = pd.DataFrame(rows, columns=["onset", "offset", "unit", "value"])
    for au in {r[2] for r in rows if r[2] in codes.FATOOLS_AUS}:
        values = coding.table.value[coding.table.unit == au].astype(float)
        coding.scale[au] = "intensity" if values.notna().all() else "occurrence"
    return coding


# -- tables ----------------------------------------------------------------------------


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def read_intervals(path: Path, table: pd.DataFrame) -> Coding:
    """onset, offset (seconds), code (an AU code, ``12C``, or an expression label), intensity (optional: A-E or 1-5)."""
    cols = list(table.columns)
    onset, offset = _find(cols, _ONSET), _find(cols, _OFFSET)
    code_col = _find(cols, ("code", "au", "label", "value", "annotation"))
    level_col = _find(cols, ("intensity", "level"))
    if code_col is None:
        raise FatoolsError(f"{path}: an interval table needs a code column (code, au or label)")
    coding = Coding(str(path), "intervals", "intervals", pd.DataFrame(), stem=path.stem)
    rows: list[tuple[float, float, str, object]] = []
    for _, row in table.iterrows():
        text = str(row[code_col]).strip()
        level = codes.letter_or_number(row[level_col]) if level_col and pd.notna(row[level_col]) else None
        if codes.expression(text):
            rows.append((float(row[onset]), float(row[offset]), "expression", codes.expression(text)))
        elif parsed := codes.parse_codes(text):
            for code, intensity in parsed:
                intensity = intensity if intensity is not None else level
                if _note(coding, code) and intensity != 0:
                    rows.append(
                        (
                            float(row[onset]),
                            float(row[offset]),
                            code,
                            np.nan if intensity is None else intensity,
                        )
                    )
        else:
            coding.unknown[text] += 1
    return _with_intervals(coding, rows)


def _au_column(name: str) -> tuple[str, str | None] | None:
    """A table column named for an AU: (code, "_c"/"_r" suffix or None)."""
    match = re.match(r"^\s*(.+?)(_[cr])?\s*$", str(name))
    parsed = codes.parse_au(match.group(1)) if match else None
    if not parsed or parsed[1] is not None:
        return None
    return parsed[0], (match.group(2) if match else None)


def read_frame_table(path: Path, table: pd.DataFrame, fmt: str = "frames") -> Coding:
    """A column ``frame`` and/or ``time``, then a column per AU (0/1 or 0-5; 9 = unknown), and
    optionally ``expression``, ``valence``, ``arousal``. BP4D's header (``0`` for the frame
    column, AU numbers for the rest) is this layout."""
    cols = [str(c) for c in table.columns]
    table.columns = cols
    frame_col, time_col = _find(cols, _FRAME), _find(cols, _TIME)
    if frame_col is None and time_col is None and cols and cols[0].strip() == "0":
        frame_col, fmt = cols[0], "bp4d"
    if frame_col is None and time_col is None:
        raise FatoolsError(f"{path}: a per-frame table needs a frame or time column")
    coding = Coding(str(path), fmt, "frames", pd.DataFrame(), stem=path.stem)
    out = pd.DataFrame()
    if frame_col:
        out["frame"] = pd.to_numeric(table[frame_col], errors="coerce")
    if time_col:
        out["time"] = pd.to_numeric(table[time_col], errors="coerce")
    by_code: dict[str, dict[str | None, str]] = {}
    for col in cols:
        if col in (frame_col, time_col):
            continue
        if au := _au_column(col):
            by_code.setdefault(au[0], {})[au[1]] = col
        elif codes.expression(col) is None and col.strip().lower() == "expression":
            out["expression"] = table[col].map(lambda v: codes.expression(v) if pd.notna(v) else None)
        elif col.strip().lower() in codes.DIMENSIONS:
            out[col.strip().lower()] = pd.to_numeric(table[col], errors="coerce")
    for code, found in by_code.items():
        if not _note(coding, code):
            continue
        col = found.get("_r") or found.get(None) or found["_c"]
        values = pd.to_numeric(table[col], errors="coerce").where(lambda v: v != UNKNOWN)
        out[code] = values
        intensity = col == found.get("_r") or (col == found.get(None) and (values > 1).any())
        coding.scale[code] = "intensity" if intensity else "occurrence"
    coding.table = out
    return coding


def read_disfa(path: Path) -> Coding:
    """DISFA's layout: one file per AU (``SN001_au12.txt``), lines ``frame,intensity``, frames
    from 1 (the video's first frame is 1 unless --first-frame says otherwise)."""
    match = re.search(r"^(.*?)[_-]?au0*(\d+)$", path.stem, re.IGNORECASE)
    table = pd.read_csv(path, header=None, names=["frame", f"AU{int(match.group(2))}"])  # type: ignore[union-attr]
    coding = read_frame_table(path, table, "disfa")
    coding.stem = match.group(1)  # type: ignore[union-attr]
    coding.first_frame = 1
    for code in coding.scale:
        coding.scale[code] = "intensity"
    return coding


def read_disfa_plus(path: Path) -> Coding:
    """DISFA+'s layout: ``Labels/<subject>/<trial>/AU<N>.txt``, lines ``<image name> <intensity>``
    (``000.jpg 2``; header lines skipped), matched to the trial's image folder. A frame's number is
    its image's, and the first image named is the sequence's first frame (fatools numbers a
    folder's images in name order from 0) unless --first-frame says otherwise."""
    frames, levels = [], []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        number = re.fullmatch(r"\D*(\d+)(\.\w+)?", parts[0]) if len(parts) >= 2 else None
        level = codes.letter_or_number(parts[1]) if number else None
        if number and level is not None:
            frames.append(int(number.group(1)))
            levels.append(level)
    au = codes.parse_au(path.stem)
    if not frames or au is None:
        raise FatoolsError(f"{path}: no '<image> <intensity>' lines of an AU file (DISFA+'s layout)")
    table = pd.DataFrame({"frame": frames, au[0]: levels})
    coding = read_frame_table(path, table, "disfa-plus")
    coding.stem = f"{path.parent.parent.name}/{path.parent.name}"
    coding.first_frame = min(frames)
    for code in coding.scale:
        coding.scale[code] = "intensity"
    return coding


def read_openface(path: Path, table: pd.DataFrame) -> Coding:
    """OpenFace 2's CSV: frame, face_id, timestamp, success, AUnn_r (0-5) and AUnn_c (0/1); the first face."""
    table.columns = [c.strip() for c in table.columns]
    if "face_id" in table:
        table = table[table.face_id == table.face_id.min()]
    if "success" in table:
        table = table.copy()
        aus = [c for c in table.columns if _au_column(c)]
        table.loc[table.success == 0, aus] = np.nan
    keep = [c for c in table.columns if c in ("timestamp",) or (c.endswith("_c") and _au_column(c))]
    coding = read_frame_table(path, table[keep].rename(columns={"timestamp": "time"}), "openface")
    return coding


def read_pyfeat(path: Path, table: pd.DataFrame) -> Coding:
    """py-feat's Fex CSV: frame (from 0, as py-feat counts them, whatever --first-frame says),
    AUnn probabilities (present at 0.5), expression probabilities; the first face per frame."""
    if "frame" in table:
        table = table.drop_duplicates("frame")
    out = pd.DataFrame({"frame": table["frame"] if "frame" in table else np.arange(len(table))})
    coding = Coding(str(path), "py-feat", "frames", out, stem=path.stem, first_frame=0)
    for col in table.columns:
        au = _au_column(col)
        if au and _note(coding, au[0]):
            out[au[0]] = pd.to_numeric(table[col], errors="coerce").to_numpy()
            coding.scale[au[0]] = "probability"
    labels = [c for c in table.columns if codes.expression(c)]
    if labels:
        scores = table[labels].apply(pd.to_numeric, errors="coerce")
        out["expression"] = (
            [codes.expression(c) for c in scores.idxmax(axis=1).fillna("")] if len(scores) else []
        )
    coding.table = out
    return coding


def read_coding(path: str | Path) -> list[Coding]:
    """The codings in a file, or in every file below a directory (in name order)."""
    path = Path(path)
    if path.is_dir():
        return [
            c
            for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
            for c in read_coding(p)
        ]
    if not path.exists():
        raise FatoolsError(f"{path}: no such reference file")
    if path.suffix.lower() == ".eaf":
        return [read_eaf(path)]
    if re.search(r"au0*\d+$", path.stem, re.IGNORECASE) and path.suffix.lower() in (".txt", ".csv"):
        head = path.read_text(errors="replace").split("\n", 1)[0]
        if re.fullmatch(r"\s*\d+\s*,\s*\d+\s*", head):
            return [read_disfa(path)]
        if path.suffix.lower() == ".txt" and codes.parse_au(path.stem):
            return [read_disfa_plus(path)]
    try:
        table = pd.read_csv(path, sep=None, engine="python")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise FatoolsError(f"{path}: cannot read it as a table ({exc})") from None
    names = {str(c).strip() for c in table.columns}
    lowered = {n.lower() for n in names}
    if any(n.endswith("_c") for n in names) and {"success", "confidence"} & lowered:
        return [read_openface(path, table)]
    if "FaceRectX" in names or ({"AU01", "happiness"} <= names):
        return [read_pyfeat(path, table)]
    if _find(list(names), _ONSET) and _find(list(names), _OFFSET):
        return [read_intervals(path, table)]
    return [read_frame_table(path, table)]
