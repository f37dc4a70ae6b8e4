"""Trust boundaries: files fatools unpickles load weights only; a --config names only
facetorch, fatools, torch and torchvision code unless --trust-config says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fatools.models.store import META_KEYS

BIN = Path(sys.executable).parent


class RunsACommand:
    """Pickles to a call of os.system: loading the pickle without weights_only runs it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_import_refuses_a_pickle_that_runs_code(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "ran"
    evil = tmp_path / "meta.pt"
    # The real layout's keys, so that only the callable can be what is refused.
    meta = {key: torch.zeros(3) for key in META_KEYS}
    meta["keypoints"] = RunsACommand(f"touch {marker}")
    torch.save(meta, evil)
    store_dir = tmp_path / "store"
    proc = subprocess.run(
        [BIN / "fa-models", "import", "align-meta", str(evil), "--models-dir", str(store_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"fa-models: error: {evil}: refused, it would call ")
    assert "system while loading (a pickle can run code)" in lines[0]
    assert not marker.exists(), "the pickle's command ran"
    assert not (store_dir / "align-meta" / "meta.pt").exists()


def test_import_accepts_the_real_layout(tmp_path: Path) -> None:
    """A file in the real models' layout (a stand-in written as `python -m fatools.testing`
    writes it: tests/test_standins.py runs that command) is imported.  In this process: the
    refusal above is the case that needs a process of its own."""
    from click.testing import CliRunner

    from fatools.cli.models import cli as models_cli
    from fatools.testing import build_standins

    built = tmp_path / "built"
    build_standins(built, ["align-meta"])
    store_dir = tmp_path / "store"
    result = CliRunner().invoke(
        models_cli,
        ["import", "align-meta", str(built / "align-meta" / "meta.pt"), "--models-dir", str(store_dir)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{store_dir / 'align-meta' / 'meta.pt'}\n"


def _copying_config(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The issue's example: the bundled configuration with one more entry under
    predictor.fer that copies a file when the configuration is instantiated."""
    from omegaconf import OmegaConf

    from fatools.models.config import bundled_config_text

    src, dst = tmp_path / "secret.txt", tmp_path / "copied.txt"
    src.write_text("secret\n")
    cfg = OmegaConf.create(bundled_config_text())
    cfg.analyzer.predictor.fer.extra = {"_target_": "shutil.copyfile", "_args_": [str(src), str(dst)]}
    path = tmp_path / "copying.yaml"
    OmegaConf.save(cfg, path)
    return path, src, dst


def test_a_config_naming_other_code_is_refused_unless_trusted(standin_store: Path, tmp_path: Path) -> None:
    from conftest import squares_image

    config_path, _, dst = _copying_config(tmp_path)
    stills = tmp_path / "stills"
    stills.mkdir()
    squares_image(stills / "a.png")
    env = dict(os.environ, FATOOLS_MODELS=str(standin_store))
    base = [BIN / "fa-run", str(stills), "--tasks", "fer", "--config", str(config_path)]
    proc = subprocess.run(
        [*base, "-o", str(tmp_path / "refused")], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        f"fa-run: error: {config_path}: analyzer.predictor.fer.extra._target_ is 'shutil.copyfile', code outside "
        "facetorch, fatools, torch and torchvision; a configuration runs as code: give --trust-config if you "
        "trust this file"
    ]
    assert not dst.exists(), "the refused configuration ran"
    assert not (tmp_path / "refused" / "run.json").exists()

    # Trusted, in this process (the refusal above is what needs a process's own stderr).
    from click.testing import CliRunner

    from fatools.cli.run import cli as run_cli

    trusted = CliRunner().invoke(
        run_cli, [*map(str, base[1:]), "--trust-config", "-o", str(tmp_path / "trusted")], env=env
    )
    assert trusted.exit_code == 0, trusted.output
    assert dst.read_text() == "secret\n"  # trusted, it is code, and it ran
    assert (tmp_path / "trusted" / "run.json").is_file()


def test_targets_are_checked_everywhere_in_the_tree(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from fatools.errors import FatoolsError
    from fatools.models import config

    bundled = OmegaConf.create(config.bundled_config_text())
    config.check_targets(bundled, "bundled")  # what fatools ships passes its own check
    allowed = {
        "torch",
        "torchvision",
        "torch.device",
        "torchvision.transforms.Resize",
        "facetorch.x",
        "fatools.y",
    }
    refused = {
        "torchx.evil",
        "torchvisionary",
        "facetorchy.z",
        "os.system",
        "shutil.rmtree",
        "${oc.env:TARGET}",
        "builtins.exec",
        "",
    }
    for target in allowed:
        config.check_targets(OmegaConf.create({"a": {"b": [{"_target_": target}]}}), "own.yaml")
    for target in refused:
        cfg = OmegaConf.create({"a": {"b": [1, {"c": {"_target_": target}}]}})
        with pytest.raises(FatoolsError) as info:
            config.check_targets(cfg, "own.yaml")
        assert str(info.value).startswith(f"own.yaml: a.b[1].c._target_ is {target!r}, code outside"), (
            info.value
        )

    # Through load_config and expression_labels, as every command reads a --config.
    own = tmp_path / "own.yaml"
    bundled.analyzer.reader.transform.transforms[0]._target_ = "subprocess.Popen"
    OmegaConf.save(bundled, own)
    for read in (
        lambda trust: config.load_config(str(own), trust=trust),
        lambda trust: config.expression_labels(str(own), trust),
    ):
        with pytest.raises(
            FatoolsError,
            match=r"analyzer\.reader\.transform\.transforms\[0\]\._target_ is "
            r"'subprocess\.Popen'",
        ):
            read(False)
        read(True)


@pytest.mark.parametrize("module", ["detect", "predict", "collect"])
def test_every_command_with_config_refuses_it(module: str, tmp_path: Path) -> None:
    import importlib

    from click.testing import CliRunner

    config_path, _, dst = _copying_config(tmp_path)
    command = importlib.import_module(f"fatools.cli.{module}").cli
    args = ["--config", str(config_path)] + ([str(tmp_path)] if module == "collect" else [])
    result = CliRunner().invoke(command, args, input="")
    assert result.exit_code == 1, result.output
    assert "analyzer.predictor.fer.extra._target_ is 'shutil.copyfile'" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not dst.exists()
