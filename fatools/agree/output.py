"""fa-agree's files: the CSV table, the JSON and the page, each written under a
temporary name and renamed, so that a failed or killed run leaves no half-written file
under a final name."""

from __future__ import annotations

import json
from pathlib import Path

from fatools.agree.agreement import Agreement
from fatools.agree.page import write_html
from fatools.models.derived import write_atomic


def save(
    result: Agreement,
    table: str | Path | None = None,
    json_file: str | Path | None = None,
    html: str | Path | None = None,
) -> None:
    """Write whichever of the table, the JSON and the page are given a path."""
    if table is not None:

        def write_table(tmp: Path) -> None:
            result.table.to_csv(tmp, index=False)

        write_atomic(Path(table), write_table)
    if json_file is not None:
        text = json.dumps(result.to_json(), indent=1, default=str)

        def write_json(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

        write_atomic(Path(json_file), write_json)
    if html is not None:
        write_html(result, html)
