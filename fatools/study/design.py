"""A study's design: which participant, session, condition and group each input is
(``--design FILE`` or ``--participant-from REGEX`` on fa-run and fa-collect).

A design table is a CSV with a header.  Its first column names the input (its path as
given to fa-run, a trailing part of that path, its file name or its stem); the others are
any of ``participant``, ``session``, ``condition``, ``group``, ``participant_track`` (the
participant's track id in that video, when the rule in ``fatools.study.participants``
would choose wrong) and free columns, carried through to every table as they are.

Validation (``match``) finds every problem at once, one line each: a row whose input is
not among the study's inputs, two rows for one input (or one row fitting several), and
an input without a row.  Without ``--allow-partial`` any of them is an error (exit 1);
with it they are warnings and the inputs without a row get empty design cells.

Without a table, ``--participant-from REGEX`` takes the design from each input's path
(searched, not anchored): its named groups (``participant`` required; ``session``,
``condition``, ``group`` or any other name) become the columns.

fa-run ``--design`` keeps each input's row in its run.json (``record``); fa-collect
without either option joins those rows (``from_runs``).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any

from fatools.errors import FatoolsError

KNOWN = ("participant", "session", "condition", "group")
TRACK = "participant_track"


class DesignError(FatoolsError):
    """A design table or pattern that does not fit the study; the message has one line
    per problem."""


@dataclass
class Design:
    """The rows of a design table (or the pattern that stands for one)."""

    source: str
    key: str = "input"  # the first column's name
    columns: list[str] = field(
        default_factory=list
    )  # the design columns, table order, key and participant_track aside
    rows: list[tuple[int, str, dict]] = field(default_factory=list)  # (line, input key, cells)
    pattern: re.Pattern | None = None

    @property
    def has_track(self) -> bool:
        return any(TRACK in cells for _, _, cells in self.rows)


def read_design(path: str) -> Design:
    """The rows of a design CSV; DesignError naming the line of a malformed one."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            design = _rows(path, handle)
    except OSError as exc:
        raise DesignError(f"{path}: cannot read the design table ({exc.strerror})") from None
    if not design.rows:
        raise DesignError(f"{path}: no rows (one line per input after the header)")
    return design


def _rows(path: str, handle: IO[str]) -> Design:
    """The header and rows of a design CSV (``read_design``)."""
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
        if not header or len(header) < 2:
            raise DesignError(
                f"{path}:1: the header needs the input's column and at least one more "
                f"({', '.join(KNOWN)}, {TRACK} or your own); see fa-collect(1), DESIGN"
            )
        names = [h.strip() for h in header]
        lowered = [n.lower() if n.lower() in (*KNOWN, TRACK) else n for n in names]
        if len(set(lowered)) != len(lowered) or not all(lowered):
            raise DesignError(f"{path}:1: column names must be unique and not empty ({', '.join(names)})")
        design = Design(path, key=lowered[0], columns=[n for n in lowered[1:] if n != TRACK])
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{reader.line_num}"
            if len(row) != len(lowered):
                raise DesignError(f"{where}: {len(row)} cells for {len(lowered)} columns")
            cells: dict[str, Any] = {
                name: cell.strip() for name, cell in zip(lowered[1:], row[1:], strict=True)
            }
            key = row[0].strip()
            if not key:
                raise DesignError(f"{where}: the row names no input")
            if cells.get(TRACK):
                try:
                    cells[TRACK] = int(cells[TRACK])
                except ValueError:
                    raise DesignError(
                        f"{where}: {TRACK} {cells[TRACK]!r} is not a track id (a whole number)"
                    ) from None
            else:
                cells.pop(TRACK, None)
            design.rows.append((reader.line_num, key, cells))
    except csv.Error as exc:
        raise DesignError(f"{path}:{reader.line_num}: not CSV ({exc})") from None
    return design


def pattern_design(regex: str) -> Design:
    """The design a ``--participant-from`` pattern gives; ValueError when it does not
    compile or has no ``participant`` group."""
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"--participant-from {regex!r} is not a regular expression ({exc})") from None
    if "participant" not in pattern.groupindex:
        raise ValueError(f"--participant-from {regex!r} needs a named group (?P<participant>...)")
    names = sorted(pattern.groupindex, key=lambda name: pattern.groupindex[name])
    return Design(f"--participant-from {regex!r}", columns=names, pattern=pattern)


def _parts(path: str) -> tuple[str, ...]:
    return PurePath(os.path.normpath(path.replace("\\", "/"))).parts


def fits(key: str, path: str) -> bool:
    """Whether a design row's input names ``path``: the same path, a trailing part of it
    (whole components), its file name or its stem."""
    if key == path:
        return True
    want, have = _parts(key), _parts(path)
    if want and len(want) <= len(have) and have[len(have) - len(want) :] == want:
        return True
    return len(want) == 1 and PurePath(path).stem == key


def match(design: Design, inputs: Iterable[str]) -> tuple[dict[str, dict], list[str]]:
    """Each input's design cells, and the problems (one line each, unknown inputs,
    duplicates and inputs without a row, in that order)."""
    inputs = list(dict.fromkeys(inputs))
    found: dict[str, dict] = {}
    problems: list[str] = []
    if design.pattern is not None:
        for path in inputs:
            hit = design.pattern.search(path)
            if hit is None or hit.group("participant") is None:
                problems.append(f"{path}: {design.source} does not match the path: no participant")
                continue
            found[path] = {name: hit.group(name) or "" for name in design.columns}
        return found, problems
    owner: dict[str, int] = {}
    unknown, duplicate = [], []
    for line, key, cells in design.rows:
        hits = [path for path in inputs if fits(key, path)]
        if not hits:
            unknown.append(f"{design.source}:{line}: {key}: no such input in the study")
        elif len(hits) > 1:
            duplicate.append(
                f"{design.source}:{line}: {key} fits {len(hits)} inputs ({', '.join(hits[:3])}"
                f"{', ...' if len(hits) > 3 else ''}); give more of the path"
            )
        elif hits[0] in owner:
            duplicate.append(
                f"{design.source}:{line}: {key}: a second row for {hits[0]} (the first is line "
                f"{owner[hits[0]]})"
            )
        else:
            owner[hits[0]] = line
            found[hits[0]] = cells
    missing = [f"{path}: no row in {design.source}" for path in inputs if path not in found]
    return found, unknown + duplicate + missing


def load(design_path: str | None, participant_from: str | None) -> Design | None:
    """The design the options give (None for neither); ValueError when both are given."""
    if design_path and participant_from:
        raise ValueError("--design and --participant-from are alternatives; give one")
    if design_path:
        return read_design(design_path)
    if participant_from:
        return pattern_design(participant_from)
    return None


def record(design: Design, cells: dict | None) -> dict:
    """What run.json keeps of an input's design (fa-run --design): the table (or pattern)
    and the input's row, null for an input without one (--allow-partial)."""
    source = design.source if design.pattern is not None else os.path.abspath(design.source)
    return {"source": source, "row": cells}


def from_runs(kept: dict[str, Any], warn: Callable[[str], None]) -> tuple[list[str], dict[str, dict]]:
    """The design fa-run --design kept in run.json (``kept``: each input's ``design``
    record, or None): its columns (participant first, participant_track aside) and each
    input's cells; no columns where no result has a row.  An input without a row is a
    warning (it gets empty cells), as with --allow-partial."""
    found = {
        path: dict(record["row"])
        for path, record in kept.items()
        if isinstance(record, dict) and isinstance(record.get("row"), dict)
    }
    if not found:
        return [], {}
    columns = list(dict.fromkeys(c for cells in found.values() for c in cells if c != TRACK))
    if "participant" in columns:
        columns.remove("participant")
    sources = sorted({str(kept[path].get("source")) for path in found})
    warn(f"the design fa-run --design kept in run.json ({', '.join(sources)}); --design here overrides it")
    for path in kept:
        if path not in found:
            warn(f"{path}: no design row in its run.json")
    return ["participant", *columns], found


def validate(
    design: Design, inputs: Iterable[str], allow_partial: bool, warn: Callable[[str], None]
) -> dict[str, dict]:
    """Each input's cells; DesignError with every problem unless ``allow_partial``, where
    ``warn`` gets each line instead."""
    found, problems = match(design, inputs)
    if problems and not allow_partial:
        more = "\n(--allow-partial goes on with what fits)"
        raise DesignError(
            f"the design does not fit the study ({len(problems)} problems):\n" + "\n".join(problems) + more
        )
    for line in problems:
        warn(line)
    return found
