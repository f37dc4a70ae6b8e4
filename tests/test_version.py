"""One version, in fatools/versions.py: the package metadata, run.json's and fa-models doctor's
versions, every command's --version and the man pages' headers all say it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib

import fatools
from fatools.versions import __version__, package_versions

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
BIN = Path(sys.executable).parent
MAN_PAGES = sorted((ROOT / "man").glob("*.[1-9]"))


def test_pyproject_reads_the_version_from_fatools_versions():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fatools.versions.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    assert fatools.__version__ == __version__


def test_installed_metadata_and_run_records_agree():
    # The metadata is written at install time: a bump without a reinstall (make install) shows here.
    assert metadata.version("fatools") == __version__, "stale install: rerun `make install`"
    assert package_versions()["fatools"] == __version__  # run.json's and the HTML report's "versions"


def test_doctor_reports_the_version():
    proc = subprocess.run(
        [BIN / "fa-models", "doctor", "--json", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(proc.stdout)["fatools"] == __version__, proc.stderr


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_header_names_the_version(page):
    header = page.read_text().splitlines()[0]
    assert header.startswith(".TH "), f"{page.name}: the first line is not .TH"
    fields = re.findall(r'"[^"]*"|\S+', header)
    assert fields[4].strip('"') == f"fatools {__version__}", f"{page.name}: {header}"


def test_every_man_page_is_a_data_file_of_the_wheel():
    data_files = PYPROJECT["tool"]["setuptools"]["data-files"]
    for page in MAN_PAGES:
        section = page.suffix[1:]
        assert f"man/*.{section}" in data_files.get(f"share/man/man{section}", []), page.name


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_version_option(name):
    proc = subprocess.run([BIN / name, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{name} (fatools) {__version__}\n"


def test_version_option_loads_no_heavy_module():
    """--version answers before the models' libraries load: no torch, facetorch or ONNX Runtime, in no
    command (fa-agree's module imports pandas, as its --help does)."""
    code = (
        "import importlib, sys\n"
        f"scripts = {SCRIPTS!r}\n"
        "for prog, target in scripts.items():\n"
        "    module, _ = target.split(':')\n"
        "    cli = importlib.import_module(module).cli\n"
        "    try:\n"
        "        cli(['--version'], prog_name=prog)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (prog, exc.code)\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'facetorch', 'onnxruntime', 'timm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("(fatools)") == len(SCRIPTS)
