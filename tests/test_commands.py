"""Every console script has --help and a man page that documents each of its options."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
import tomllib
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent


def click_command(target: str) -> click.Command:
    module_name, func = target.split(":")
    module = importlib.import_module(module_name)
    command = getattr(module, "cli", None)
    assert isinstance(command, click.Command), f"{module_name} must expose its click command as `cli`"
    return command


def test_every_command_is_listed():
    assert {"fa-frames", "fa-models", "fa-detect", "fa-predict"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_runs(name):
    proc = subprocess.run([BIN / name, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"Usage: {name}" in proc.stdout


_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)")


def man_options(page: Path) -> list[tuple[set[str], set[str]]]:
    """The entries of a roff page's OPTIONS section: for each `.TP`, the options its term
    line names (`.B`, `.BI`, `.BR` or `\\fB...\\fR`) and those its paragraph mentions."""
    lines, inside = [], False
    for line in page.read_text().replace("\\-", "-").splitlines():
        if line.startswith(".SH "):
            inside = line[4:].strip().strip('"') == "OPTIONS"
        elif inside:
            lines.append(line)
    entries: list[tuple[set[str], set[str]]] = []
    for i, line in enumerate(lines):
        if line.split()[:1] == [".TP"] and i + 1 < len(lines) and not lines[i + 1].startswith(".TP"):
            entries.append((set(_OPTION.findall(re.sub(r"\\f[BIRP]", " ", lines[i + 1]))), set()))
        elif entries and not line.startswith("."):
            entries[-1][1].update(_OPTION.findall(re.sub(r"\\f[BIRP]", " ", line)))
    return entries


def click_options(command: click.Command) -> list[set[str]]:
    """Each option of a command (and its subcommands), as the set of its names, --help included."""
    ctx = click.Context(command, **command.context_settings)
    options = [set(p.opts + p.secondary_opts) for p in command.get_params(ctx) if isinstance(p, click.Option)]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            options += click_options(sub)
    return options


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_man_page_documents_every_option(name):
    """The page's OPTIONS section and the command's options, both ways: each option is the
    term of an entry (an old spelling may be named in its paragraph instead), and each
    term names an option the command has."""
    page = ROOT / "man" / f"{name}.1"
    assert page.is_file(), f"missing man page {page}"
    text = page.read_text().replace("\\-", "-")
    assert f".TH {name.upper()} 1" in text
    for section in (
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH OPTIONS",
        ".SH EXIT STATUS",
        ".SH EXAMPLES",
    ):
        assert section in text, f"{page} lacks {section}"
    command = click_command(SCRIPTS[name])
    entries, options = man_options(page), click_options(command)
    terms = set().union(*(term for term, _ in entries))
    undocumented = sorted(min(names) for names in options if not names & terms)
    assert not undocumented, f"{page}: OPTIONS has no entry for {undocumented}"
    unnamed = sorted(
        name
        for names in options
        for name in names
        if not any(names & term and name in term | body for term, body in entries)
    )
    assert not unnamed, f"{page}: OPTIONS names {unnamed} in no entry of the option they spell"
    unknown = sorted(terms - set().union(*options))
    assert not unknown, f"{page}: OPTIONS documents {unknown}, which {name} does not have"
    if isinstance(command, click.Group):
        for sub in command.commands:
            assert sub in text, f"{page} does not document the {sub} command"


def documented_fields(page: Path) -> set[str]:
    """The names a roff page sets in bold: `.B x` and `.BR x ", " y` terms and inline
    `\\fBx\\fR`, a dotted term (`derived.AU45`) giving each part."""
    text = page.read_text().replace("\\-", "-")
    names = re.findall(r"\\fB\"?([A-Za-z_][\w.]*)", text)
    for line in text.splitlines():
        if line.startswith((".B ", ".BR ")):
            names += shlex.split(line)[1::2]
    return {part for name in names for part in name.split(".")}


def fields_named_in(source) -> set[str]:
    """The field names a module's or function's source uses: the string keys of its dict
    literals, subscripts (`x["y"]`, `x["y"] = v`) and `.get("x")` calls."""
    names = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(source)))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args:
            names.add(node.args[0])
        elif isinstance(node, ast.Subscript):
            names.add(node.slice)
        elif isinstance(node, ast.Dict):
            names.update(node.keys)
    return {n.value for n in names if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_records_contract_page_documents_every_field_fatools_writes():
    """fatools-records(5) names, in bold, every field of the records fatools writes (the header,
    the frame record, fa-detect's faces, detection and quality); every field fatools.records
    reads is there or in fa-predict(1)'s OUTPUT FIELDS, where the page sends the reader."""
    from fatools import detect, quality, records
    from fatools.video import VideoInfo

    page = documented_fields(ROOT / "man" / "fatools-records.5")
    header = VideoInfo(
        video="v.mp4", fps=25.0, frame_count=1, duration=0.04, codec="h264", width=2, height=2, rotation=0
    ).header()
    frame = records.frame_record("v.mp4", 0, 0.0, 2, 2, image="f.png")
    face = fields_named_in(detect.BatchDetector.postprocess)
    detection = fields_named_in(detect.BatchDetector.provenance)
    measures = quality.assess({"box": [0, 0, 10, 10], "score": 0.9})
    assert {"face", "landmarks5"} <= face and {"det_size", "fp16"} <= detection  # the sources were read
    written = {*header, *frame, *face, "faces", "detection", "quality", *detection, *measures}
    missing = sorted(written - page)
    assert not missing, f"man/fatools-records.5 does not document {missing}"
    read = fields_named_in(records)
    assert {"t", "probs", "landmarks3d", "yaw"} <= read
    missing = sorted(read - page - documented_fields(ROOT / "man" / "fa-predict.1"))
    assert not missing, f"fatools.records reads {missing}, which no manual page documents"


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
                assert LEGACY_ALIASES.get(alias, {}).get(prog) == canonical, (
                    f"{where}: {alias} is not a documented alias of {canonical}"
                )
            if canonical is not None:
                meanings.setdefault(canonical, {}).setdefault(
                    (*_meaning(param), repr(param.default)), []
                ).append(where)
    differing = {name: list(by.values()) for name, by in meanings.items() if len(by) > 1}
    assert not differing, f"options whose meaning differs between commands: {differing}"
    for alias in LEGACY_ALIASES:
        assert alias not in meanings, f"{alias} is an old spelling: no command may take it as its own option"


def test_legacy_aliases_still_work(tmp_path):
    from fatools.cli.summarize import cli as summarize_cli
    from fatools.cli.track import cli as track_cli

    record = '{"schema":1,"video":"v.mp4","frame":0,"t":0.0,"width":64,"height":64,"faces":[]}\n'
    old = CliRunner().invoke(track_cli, ["--max-gap", "0.5"], input=record)
    assert old.exit_code == 0 and '"faces":[]' in old.stdout
    summary = CliRunner().invoke(summarize_cli, ["--max-gap", "0.7"], input=record)
    assert summary.exit_code == 0 and '"episode_gap":0.7' in summary.stdout
