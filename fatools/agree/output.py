"""fa-agree's files: the CSV table, the JSON and the page, each written under a
temporary name and renamed, so that a failed or killed run leaves no half-written file
under a final name."""

from __future__ import annotations

import json
from pathlib import Path

from fatools.agree import Agreement
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
        write_atomic(Path(table), lambda tmp: result.table.to_csv(tmp, index=False))
    if json_file is not None:
        text = json.dumps(result.to_json(), indent=1, default=str)
        write_atomic(Path(json_file), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if html is not None:
        write_html(result, html)
