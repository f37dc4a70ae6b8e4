"""The study's index page (``index.html``, written by fa-collect beside its table): one
sortable, filterable row per input with its status, error, duration, faces, tracks and
main figures, linking to the input's interactive report.

Rows are written to the page as fa-collect finds them (under a temporary name, renamed
when the table is complete), so a study of thousands of inputs takes constant memory
here; in the browser a static table of that size opens in well under a second, and the
page's script is only the sorting and filtering glue.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fatools.study import outdir
from fatools.study.collect import AUS, result_dirs, rows

_PAGE = Path(__file__).with_name("index.html")

# (heading, row key or None for a computed cell, kind): "n" cells sort as numbers.
COLUMNS = [
    ("status", "status", "s"),
    ("input", "input", "s"),
    ("duration (s)", "duration_s", "n"),
    ("frames analysed", "frames_analysed", "n"),
    ("frames with faces", "frames_with_faces", "n"),
    ("faces", "faces", "n"),
    ("tracks", "tracks", "n"),
    ("most common expression", "most_common_emotion", "s"),
    ("valence mean", "valence_mean", "n"),
    ("arousal mean", "arousal_mean", "n"),
    ("blinks per minute", "blinks_per_minute", "n"),
    ("most active AU", None, "s"),
    ("error", "error", "s"),
]


def report_of(directory: str) -> str | None:
    """The interactive report in a result directory (``report.html``, else the first
    ``report_<stem>.html``), or None."""
    if os.path.isfile(os.path.join(directory, "report.html")):
        return os.path.join(directory, "report.html")
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith("report_") and n.endswith(".html"))
    except OSError:
        return None
    return os.path.join(directory, names[0]) if names else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _most_active(row: dict) -> tuple[str, float | None]:
    read = [(_number(row.get(f"{code}_rate")), code) for code in AUS]
    rates = [(rate, code) for rate, code in read if rate is not None]
    if not rates:
        return "", None
    rate, code = max(rates, key=lambda pair: pair[0])  # ties: the catalogue's first
    if rate == 0:
        return "none", 0.0  # no AU ever active (not the alphabetically last code at 0%)
    return f"{code} ({rate:.0%})", rate


def shown_number(value: float) -> str:
    """A figure as a reader wants it in a table: counts whole (1234567, not 1.23e+06),
    small figures to three significant digits, large ones to the unit."""
    if value.is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


class StudyIndex:
    """``index.html`` being written: ``add`` each video row of the table, then ``close``
    (or ``abort``, which leaves nothing under the final name)."""

    def __init__(
        self,
        path: str | Path,
        title: str = "fatools study index",
        design: list[str] | None = None,
        filters: list[str] | None = None,
    ) -> None:
        """``design``: the study design's columns (fa-collect --design), shown after the
        input, where the text filter finds them too; ``filters``: those of them the page
        offers a choice of values for (participant, session, condition, ..., identity)."""
        self.columns = [
            *COLUMNS[:2],
            *((name.replace("_", " "), name, "s") for name in design or []),
            *COLUMNS[2:],
        ]
        self.path = Path(path)
        self.base = self.path.parent.resolve()
        head, self._tail = _PAGE.read_text(encoding="utf-8").split("{{rows}}")
        choose = set(filters or [])
        heads = "".join(
            f'<th data-kind="{kind}"'
            + (f' data-filter="{html.escape(key)}"' if key in choose else "")
            + f' tabindex="0">{html.escape(name)}</th>'
            for name, key, kind in self.columns
        )
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")  # shards may write at once
        # Open until close() or abort(): rows are written as fa-collect finds them.
        self.handle = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115
        self.handle.write(head.replace("{{title}}", html.escape(title)).replace("{{heads}}", heads))

    def _link(self, target: str) -> str:
        relative = os.path.relpath(os.path.abspath(target), self.base)
        return quote(Path(relative).as_posix())

    def add(self, row: dict) -> None:
        """One input's row (a table row of level "video")."""
        cells = []
        report = report_of(row["output_dir"]) if row.get("output_dir") else None
        for _, key, kind in self.columns:
            if key is None:
                text, value = _most_active(row)
            elif kind == "n":
                value = _number(row.get(key))
                text = "" if value is None else shown_number(value)
            else:
                value, text = None, "" if row.get(key) is None else str(row.get(key))  # a track 0 shows
            if key == "input":
                shown = html.escape(text or str(row.get("output_dir")))
                if report:
                    cell = f'<a href="{self._link(report)}">{shown}</a>'
                elif row.get("output_dir"):
                    cell = f'{shown} (<a href="{self._link(os.path.join(row["output_dir"], outdir.RUN_RECORD))}">run record</a>)'
                else:
                    cell = shown
            else:
                cell = html.escape(text)
            sort = "" if value is None or kind != "n" else f' data-v="{value:.6g}"'
            status = f' class="{html.escape(text)}"' if key == "status" else ""
            cells.append(f"<td{sort}{status}>{cell}</td>")
        self.handle.write("<tr>" + "".join(cells) + "</tr>\n")

    def close(self) -> None:
        self.handle.write(self._tail)
        self.handle.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.handle.close()
        if self.tmp.exists():
            self.tmp.unlink()


def write_index(roots: list[str], path: str | Path) -> Path:
    """The index of every result below ``roots`` (fa-run writes one at its -o root after
    a batch: a shard's index shows the others' inputs as they stand)."""
    index = StudyIndex(path)
    try:
        for directory in result_dirs(roots):
            for row in rows(directory, []):
                if row["level"] == "video":
                    index.add(row)
    except BaseException:
        index.abort()
        raise
    index.close()
    return Path(path)
