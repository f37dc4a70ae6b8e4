"""fa-models through click's runner, and once as the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fatools.cli.models import cli
from fatools.models import catalogue, fetch, store
from fatools.testing import build_standins


@pytest.fixture(scope="module")
def standins(standin_store: Path) -> Path:
    """The session's stand-in store (conftest); tests here only read it."""
    return standin_store


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_list_table(standins: Path) -> None:
    result = run("list", "--models-dir", str(standins))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TASK", "STATUS", "SIZE", "SHA256", "SOURCE", "ONNX", "PATH"]
    assert [line.split()[0] for line in lines[1:]] == list(catalogue.MODELS)
    au = lines[1 + list(catalogue.MODELS).index("au")].split()
    sha = store.file_sha256(standins / "au" / "model.pt")
    assert au[1:3] == ["au", "present"] and au[4] == sha[:12] and au[5] == "standin"
    assert au[6] in ("-", "failed") or au[6].startswith("ok(")  # its ONNX export, if made
    assert au[7] == str(standins / "au" / "model.pt")


def test_list_json_and_missing(tmp_path: Path) -> None:
    build_standins(tmp_path, ["fer"])
    result = run("list", "--json", env={"FATOOLS_MODELS": str(tmp_path)})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["name"] for row in rows] == list(catalogue.MODELS)
    fer = next(row for row in rows if row["name"] == "fer")
    assert fer["present"] and fer["source"] == "standin" and len(fer["sha256"]) == 64
    au = next(row for row in rows if row["name"] == "au")
    assert not au["present"] and au["path"] == str(tmp_path / "au" / "model.pt")
    table = run("list", "--models-dir", str(tmp_path)).stdout
    assert "missing" in table and "present" in table


def test_path(tmp_path: Path) -> None:
    result = run("path", "align-meta", "--models-dir", str(tmp_path))
    assert result.exit_code == 0
    assert result.stdout == f"{tmp_path / 'align-meta' / 'meta.pt'}\n"
    result = run("path", "--check", "au", "--models-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"fa-models: error: model not in the store: au ({tmp_path / 'au' / 'model.pt'}); run `fa-models fetch au`"
    )
    assert len(result.stderr.splitlines()) == 1


def test_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    result = run("path", "smile", "--models-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "'smile' is not one of 'retinaface', 'retinaface-mnet', 'au'" in result.stderr
    assert run("fetch", "au", "nope").exit_code == 2
    assert run("import", "nope", __file__).exit_code == 2


def test_import(standins: Path, tmp_path: Path) -> None:
    dest = tmp_path / "store"
    result = run("import", "va", str(standins / "va" / "model.pt"), "--models-dir", str(dest))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{dest / 'va' / 'model.pt'}\n"
    assert store.read_source("va", dest)["source"] == "import"
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(256))
    result = run("import", "embed", str(junk), "--models-dir", str(dest))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"fa-models: error: {junk}: not a TorchScript model")
    assert len(result.stderr.splitlines()) == 1
    assert not (dest / "embed" / "model.pt").exists()


def test_fetch_offline_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    result = run("fetch", "va", "--models-dir", str(tmp_path))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("fa-models:")]
    assert len(lines) == 1
    assert lines[0].startswith(
        "fa-models: error: cannot fetch va from hf:tomas-gajarsky/facetorch-va-elim/model.pt ("
    )
    assert not (tmp_path / "va" / "model.pt").exists()


def test_fetch_defaults_to_what_the_pipeline_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def fake_fetch(names, root=None, *, force=False):
        asked.append(list(names))
        return [store.model_path(name, root) for name in names]

    monkeypatch.setattr(fetch, "fetch", fake_fetch)
    result = run("fetch", "--models-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert asked[-1] == ["retinaface", "au", "fer", "va", "align", "align-meta"]
    assert result.stdout.splitlines()[1] == str(tmp_path / "au" / "model.pt")
    run("fetch", "--all", "--models-dir", str(tmp_path))
    assert asked[-1] == list(catalogue.MODELS)
    run("fetch", "embed", "--models-dir", str(tmp_path))
    assert asked[-1] == ["embed"]


def test_console_script_lists(standins: Path) -> None:
    exe = Path(sys.executable).with_name("fa-models")
    command = [str(exe)] if exe.exists() else [shutil.which("fa-models") or "fa-models"]
    env = dict(os.environ, FATOOLS_MODELS=str(standins))
    proc = subprocess.run([*command, "list"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 + len(catalogue.MODELS)
    assert all(" present " in line for line in lines[1:])
    assert proc.stderr == ""
