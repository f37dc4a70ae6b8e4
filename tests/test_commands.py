"""Every console script has --help and a man page that documents each of its options."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import click
from click.testing import CliRunner
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


def _commands() -> dict[str, click.Command]:
    """Every command and subcommand, by the name a user types."""
    found: dict[str, click.Command] = {}
    for name, target in SCRIPTS.items():
        command = click_command(target)
        found[name] = command
        if isinstance(command, click.Group):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
    return found


def _meaning(param: click.Parameter) -> tuple:
    kind = param.type.name if not getattr(param, "is_flag", False) else "flag"
    return getattr(param, "help", None), kind, tuple(getattr(param, "secondary_opts", None) or ())


def test_an_option_name_means_one_thing_on_every_command():
    """The same option name: the same help, type and default on every command that takes
    it.  The only exceptions are the old spellings of LEGACY_ALIASES, each an alias of the
    canonical option that table names for that command."""
    from fatools.cli.options import LEGACY_ALIASES

    meanings: dict[str, dict[tuple, list[str]]] = {}
    for where, command in _commands().items():
        prog = where.split()[0]
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            canonical, *aliases = [o for o in param.opts if o.startswith("--")] or [None]
            for alias in aliases:
                assert LEGACY_ALIASES.get(alias, {}).get(prog) == canonical, \
                    f"{where}: {alias} is not a documented alias of {canonical}"
            if canonical is not None:
                meanings.setdefault(canonical, {}).setdefault(_meaning(param) + (repr(param.default),), []).append(where)
    differing = {name: list(by.values()) for name, by in meanings.items() if len(by) > 1}
    assert not differing, f"options whose meaning differs between commands: {differing}"
    for alias, by_prog in LEGACY_ALIASES.items():
        assert alias not in meanings, f"{alias} is an old spelling: no command may take it as its own option"


def test_legacy_aliases_still_work(tmp_path):
    from fatools.cli.summarize import cli as summarize_cli
    from fatools.cli.track import cli as track_cli

    record = '{"schema":1,"video":"v.mp4","frame":0,"t":0.0,"width":64,"height":64,"faces":[]}\n'
    old = CliRunner().invoke(track_cli, ["--max-gap", "0.5"], input=record)
    assert old.exit_code == 0 and '"faces":[]' in old.stdout
    summary = CliRunner().invoke(summarize_cli, ["--max-gap", "0.7"], input=record)
    assert summary.exit_code == 0 and '"episode_gap":0.7' in summary.stdout
