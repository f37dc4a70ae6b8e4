"""The README's fa-agree worked example, run as the README writes it: its commands (the
stand-in models from the session's store instead of `python -m fatools.testing`), then its
stderr lines and its table of agree.csv's pooled rows checked against what they print, so
the example cannot drift from the code; and the coders' figures against their hand
computation from examples/agree/make_example.py's script."""

from __future__ import annotations

import re
import runpy
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "agree" / "make_example.py"


def readme_example() -> tuple[list[str], str]:
    """The README's fa-agree example: its shell block's lines and the table block after it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.DOTALL)
    at = next(i for i, (_, body) in enumerate(blocks) if "examples/agree/make_example.py" in body)
    assert blocks[at][0] == "sh" and blocks[at + 1][0] == "", "the example's table follows its commands"
    return blocks[at][1].splitlines(), blocks[at + 1][1].rstrip("\n")


def pooled(table: pd.DataFrame, header: str) -> str:
    """agree.csv's pooled rows (every unit but the AUs' mean), the README header's columns, as the README shows them."""
    columns = header.split()
    rows = table[(table.video == "all") & (table.unit != "mean")][columns]
    return rows.round(2).to_string(index=False)


def run_example(lines: list[str], store: Path) -> dict[str, str]:
    """Each command of the README's block, in process; the stderr of each fa- command by its name."""
    from fatools.cli.agree import cli as agree_cli
    from fatools.cli.run import cli as run_cli

    printed = {}
    for line in lines:
        argv = shlex.split(line, comments=True)
        if not argv or argv[:3] == ["python", "-m", "fatools.testing"] or argv[0] == "export":
            continue  # the stand-in models: the session's store, given by FATOOLS_MODELS
        if argv[0] == "python" and argv[1] == str(EXAMPLE.relative_to(ROOT)):
            saved = sys.argv
            sys.argv = [str(EXAMPLE), *argv[2:]]
            try:
                runpy.run_path(str(EXAMPLE), run_name="__main__")
            finally:
                sys.argv = saved
            continue
        command = {"fa-run": run_cli, "fa-agree": agree_cli}.get(argv[0])
        assert command is not None, f"the README's example runs {argv[0]}: teach this test to run it"
        result = CliRunner().invoke(command, argv[1:], env={"FATOOLS_MODELS": str(store)})
        assert result.exit_code == 0, f"{line}: {result.output[-3000:]}"
        printed[argv[0]] = result.stderr
    return printed


def test_readme_example(standin_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines, shown = readme_example()
    printed = run_example(lines, standin_store)
    said = [line[2:] for line in lines if line.startswith("# fa-agree:")]
    assert said and said == [
        line for line in printed["fa-agree"].splitlines() if line.startswith("fa-agree:")
    ]
    table = pd.read_csv(tmp_path / "work" / "agree.csv")
    header = shown.splitlines()[0]
    assert shown == pooled(table, header), "the README's table, as the commands print it today:\n" + pooled(
        table, header
    )
    assert (tmp_path / "work" / "agree.html").is_file()

    # The coders' figures by hand, from the script, at the 30 samples (every 5th frame, 0.2 s
    # apart): ann's AU12 covers 6 + 7 of them, bea's (0.2 s late) 5 + 6, all inside ann's;
    # ann's AU6 covers 4 + 5, bea's (the first smile only, 0.2 s late) 3.
    def pair(unit: str) -> dict:
        rows = table[(table.video == "all") & (table.unit == unit) & (table.rater == "ann")]
        return rows[rows.reference == "bea"].iloc[0].to_dict()

    assert pair("AU12")["f1"] == pytest.approx(2 * 11 / (13 + 11))
    assert pair("AU12")["precision"] == pytest.approx(11 / 13) and pair("AU12")["recall"] == 1.0
    assert pair("AU6")["f1"] == pytest.approx(2 * 3 / (9 + 3)) and pair("AU6")["n"] == 30
    assert pair("AU6")["event_f1"] == pytest.approx(2 / 3) and pair("AU12")["event_f1"] == 1.0
