"""What the README and the man pages say is tested names the test, and that test exists.

A claim ("tested", "a test proves it", "the tests run both on it") carries a reference
in its paragraph, `tests/test_x.py` or `tests/test_x.py::test_name`; each reference must
name a file under tests/ and, with `::`, a test function defined in it.  A test renamed
or removed then fails here instead of leaving the documents to claim it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "man").glob("*.[1-8]"))]
REFERENCE = re.compile(r"\btests/[\w/]+\.py(?:::\w+)?")
CLAIM = re.compile(
    r"\btested\b|\btests? (?:proves?|keeps?|runs?|checks?)\b|\bthe tests run\b"
    r"|\btest suite runs\b",
    re.IGNORECASE,
)
ROFF_BREAK = re.compile(r"^\.(?:SH|SS|PP|P|LP|TP|IP|nf|fi)\b")


def paragraphs(path: Path) -> list[str]:
    """Markdown: blank-line separated; roff: the text between paragraph macros."""
    text = path.read_text().replace("\\-", "-")
    if path.suffix == ".md":
        return re.split(r"\n\s*\n", text)
    found, current = [], []
    for line in text.splitlines():
        if ROFF_BREAK.match(line):
            found.append("\n".join(current))
            current = []
        else:
            current.append(line)
    return [*found, "\n".join(current)]


def test_every_claim_names_its_test():
    unbacked = [
        f"{path.name}: {' '.join(paragraph.split())[:120]}"
        for path in DOCUMENTS
        for paragraph in paragraphs(path)
        if CLAIM.search(paragraph) and not REFERENCE.search(paragraph)
    ]
    assert not unbacked, "claims without a tests/... reference:\n" + "\n".join(unbacked)


def test_every_named_test_exists():
    references = {ref: path.name for path in DOCUMENTS for ref in REFERENCE.findall(path.read_text())}
    assert len(references) >= 8, references  # the README's and the man pages' claims are found
    missing = []
    for ref, document in sorted(references.items()):
        file, _, name = ref.partition("::")
        source = ROOT / file
        if not source.is_file():
            missing.append(f"{document}: {ref}: no such file")
        elif name and name not in {
            node.name
            for node in ast.walk(ast.parse(source.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }:
            missing.append(f"{document}: {ref}: no such test in {file}")
    assert not missing, "\n".join(missing)
