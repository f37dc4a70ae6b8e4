"""Every console script has --help and a man page that documents each of its options."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent


def click_command(target: str) -> click.Command:
    module_name, func = target.split(":")
    module = importlib.import_module(module_name)
    command = getattr(module, "cli", None)
    assert isinstance(command, click.Command), f"{module_name} must expose its click command as `cli`"
    return command


def long_options(command: click.Command) -> set[str]:
    names = {opt for p in command.params for opt in p.opts if opt.startswith("--")}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= long_options(sub)
    return names


def test_every_command_is_listed():
    assert {"fa-frames", "fa-models", "fa-detect", "fa-predict"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_runs(name):
    proc = subprocess.run([BIN / name, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"Usage: {name}" in proc.stdout


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_man_page_documents_every_option(name):
    page = ROOT / "man" / f"{name}.1"
    assert page.is_file(), f"missing man page {page}"
    text = page.read_text().replace("\\-", "-")
    assert f".TH {name.upper()} 1" in text
    for section in (".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH EXIT STATUS", ".SH EXAMPLES"):
        assert section in text, f"{page} lacks {section}"
    command = click_command(SCRIPTS[name])
    missing = sorted(o for o in long_options(command) if o not in text)
    assert not missing, f"{page} does not document {missing}"
    if isinstance(command, click.Group):
        for sub in command.commands:
            assert sub in text, f"{page} does not document the {sub} command"


def test_records_contract_page():
    assert (ROOT / "man" / "fatools-records.5").is_file()
