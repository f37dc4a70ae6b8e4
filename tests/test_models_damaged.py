"""Derived files damaged after they were made (an ONNX export truncated, or bytes of it
overwritten): `fa-models verify` reports them, and a run uses torch for that model
with one line saying so (an error under --backend onnx)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import copy_store
from test_batch import clip

from fatools.cli.models import cli as models_cli
from fatools.cli.run import cli as run_cli
from fatools.models import catalogue


@pytest.fixture(scope="module")
def prepared(standin_store, tmp_path_factory) -> Path:
    """The stand-in store with every export made (`fa-models prepare`), as a cluster's."""
    root = copy_store(standin_store, tmp_path_factory.mktemp("prepared") / "store")
    result = CliRunner().invoke(models_cli, ["prepare", "--models-dir", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return clip(tmp_path_factory.mktemp("damaged") / "v.mp4", 12)


@pytest.fixture
def store(prepared, tmp_path) -> Path:
    """A copy a test may damage (times kept, as rsync -a)."""
    root = tmp_path / "store"
    shutil.copytree(prepared, root)
    return root


def export_of(root: Path, name: str = "au") -> Path:
    [path] = (root / name / "derived").glob("model-[0-9a-f]*.onnx")
    return path


def damage(path: Path, how: str, keep_mtime: bool = False) -> None:
    """Truncate the file, or overwrite 16 bytes in its middle (its weights: ONNX Runtime
    still opens it and gives other outputs) keeping its size."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    if how == "truncated":
        del data[len(data) // 2 :]
    else:
        middle = len(data) // 2
        data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))
    if keep_mtime:  # what a stat cannot see: only reading the file finds it
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def run(video: Path, root: Path, out: Path, *flags: str):
    return CliRunner().invoke(
        run_cli, [str(video), "-o", str(out), "--every", "3", "-f", "csv", "--models-dir", str(root), *flags]
    )


def faces(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    return [face for r in records if r.get("type", "frame") == "frame" for face in r["faces"]]


@pytest.fixture(scope="module")
def references(prepared, video, tmp_path_factory) -> dict[str, Path]:
    """Runs of intact stores: on ONNX Runtime (the default), on torch, and with only the
    AU model on torch (its export recorded as failed: the fallback that was there before)."""
    au_on_torch = tmp_path_factory.mktemp("au-on-torch") / "store"
    shutil.copytree(prepared, au_on_torch)
    export = export_of(au_on_torch)
    export.with_suffix(".json").write_text(json.dumps({"error": "recorded as failed by the test"}))
    export.unlink()
    found = {}
    for label, root, backend in (
        ("auto", prepared, "auto"),
        ("torch", prepared, "torch"),
        ("au-on-torch", au_on_torch, "auto"),
    ):
        out = tmp_path_factory.mktemp(label)
        result = run(video, root, out, "--backend", backend)
        assert result.exit_code == 0, result.output
        assert result.stderr == "" or label == "au-on-torch", result.stderr
        found[label] = out
    assert faces(found["au-on-torch"]) != faces(found["auto"])  # the AU engine shows in the records
    return found


def close(a: list[dict], b: list[dict], atol: float) -> bool:
    """Every number of two face lists within ``atol`` (the same keys, lists and strings)."""
    import numpy as np

    def numbers(x):
        if isinstance(x, dict):
            return [n for key in sorted(x) for n in numbers(x[key])]
        if isinstance(x, list):
            return [n for item in x for n in numbers(item)]
        return [float(x)] if isinstance(x, (int, float)) and not isinstance(x, bool) else []

    def shape(x):
        if isinstance(x, dict):
            return {key: shape(value) for key, value in x.items()}
        if isinstance(x, list):
            return [shape(item) for item in x]
        return None if isinstance(x, (int, float)) and not isinstance(x, bool) else x

    return shape(a) == shape(b) and np.allclose(numbers(a), numbers(b), atol=atol, rtol=0)


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_verify_reports_a_damaged_export_and_prepare_force_makes_it_again(store, how):
    path = export_of(store)
    damage(path, how, keep_mtime=True)
    result = CliRunner().invoke(models_cli, ["verify", "--models-dir", str(store)])
    assert result.exit_code == 1
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["au"].split()[1] == "damaged"
    assert f"{path} is damaged (" in lines["au"] and "`fa-models prepare au --force`" in lines["au"]
    why = "bytes, recorded" if how == "truncated" else "sha256"
    assert why in lines["au"]
    assert [name for name, line in lines.items() if line.split()[1] != "ok"] == ["au"]
    count = len(catalogue.MODELS)
    assert result.stderr.strip() == f"fa-models: error: 1 of {count} models not ok in {store}: au damaged"
    listing = CliRunner().invoke(models_cli, ["list", "--models-dir", str(store)])
    au_row = next(line for line in listing.stdout.splitlines() if line.startswith("au "))
    # A stat sees a truncated file at once; bytes overwritten under the old mtime need a read.
    assert (" damaged " in au_row) == (how == "truncated")
    again = CliRunner().invoke(models_cli, ["prepare", "au", "--models-dir", str(store)])
    if how == "truncated":  # prepare does not hand out a file it can see is damaged
        assert again.exit_code == 1 and str(path) in again.stderr and "--force" in again.stderr
    forced = CliRunner().invoke(models_cli, ["prepare", "au", "--force", "--models-dir", str(store)])
    assert forced.exit_code == 0, forced.output
    assert CliRunner().invoke(models_cli, ["verify", "--models-dir", str(store)]).exit_code == 0


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_run_with_a_damaged_export_runs_that_model_on_torch(store, video, references, tmp_path, how):
    path = export_of(store)
    damage(path, how)
    result = run(video, store, tmp_path / "out")
    assert result.exit_code == 0, result.output
    [line] = result.stderr.splitlines()  # one line, nothing else
    why = f"({path.stat().st_size} bytes, recorded " if how == "truncated" else "(sha256 "
    assert line.startswith(f"fa-run: au: runs on torch: its ONNX export {path} is damaged {why}")
    assert line.endswith("; `fa-models prepare au --force` makes it again")
    # The AU model ran on torch, the others on ONNX Runtime: the records are, byte for
    # byte, those of a run whose AU export was never there, and within the engines'
    # 1e-4 (1e-2 px for boxes and landmarks, printed to 2 decimals) of a torch run's.
    assert (tmp_path / "out" / "frames.jsonl").read_bytes() == (
        references["au-on-torch"] / "frames.jsonl"
    ).read_bytes()
    got, on_torch = faces(tmp_path / "out"), faces(references["torch"])
    assert len(got) == len(on_torch) > 0
    pixels = ("box", "landmarks5", "landmarks3d")
    assert close(
        [{k: v for k, v in f.items() if k not in pixels} for f in got],
        [{k: v for k, v in f.items() if k not in pixels} for f in on_torch],
        1e-4,
    )
    assert close(
        [{k: f[k] for k in pixels if k in f} for f in got],
        [{k: f[k] for k in pixels if k in f} for f in on_torch],
        2e-2,
    )
    asked = run(video, store, tmp_path / "onnx", "--backend", "onnx")  # ONNX Runtime was asked for: an error
    assert asked.exit_code == 1
    assert asked.stderr.startswith("fa-run: error: ") and len(asked.stderr.splitlines()) == 1
    assert f"au: cannot run on ONNX Runtime: its ONNX export {path} is damaged" in asked.stderr
    assert (
        "`fa-models prepare au --force`" in asked.stderr and not (tmp_path / "onnx" / "frames.jsonl").exists()
    )


def test_an_export_recorded_without_a_hash_that_does_not_open_runs_on_torch(store, video, tmp_path):
    """Exports made before records held their hash: opening them is the check left."""
    path = export_of(store)
    record = path.with_suffix(".json")
    info = json.loads(record.read_text())
    record.write_text(json.dumps({k: v for k, v in info.items() if k not in ("sha256", "size", "mtime_ns")}))
    assert CliRunner().invoke(models_cli, ["verify", "au", "--models-dir", str(store)]).exit_code == 0
    damage(path, "truncated")
    result = run(video, store, tmp_path / "out")
    assert result.exit_code == 0, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"fa-run: au: runs on torch: its ONNX export {path} does not open in ONNX Runtime ("
    )
    assert line.endswith("`fa-models prepare au --force` makes it again") and "Load model from" not in line
    verified = CliRunner().invoke(models_cli, ["verify", "au", "--models-dir", str(store)])
    assert verified.exit_code == 1 and verified.stdout.split()[:2] == ["au", "damaged"]
    assert "does not open in ONNX Runtime" in verified.stdout


def test_a_damaged_export_no_run_uses_is_to_be_removed(store):
    """An export of an earlier model file (or exporter) stays in the store; prepare --force
    would not make it again, so verify says to remove it."""
    path = export_of(store)
    old = path.with_name("model-0000000000000000.onnx")
    shutil.copy2(path, old)
    shutil.copy2(path.with_suffix(".json"), old.with_suffix(".json"))
    damage(old, "truncated")
    result = CliRunner().invoke(models_cli, ["verify", "au", "--models-dir", str(store)])
    assert result.exit_code == 1 and result.stdout.split()[:2] == ["au", "damaged"]
    assert f"{old} is damaged (" in result.stdout and "remove it and its .json" in result.stdout
    assert str(path) not in result.stdout and "--force" not in result.stdout


def test_an_intact_export_under_a_new_mtime_is_rehashed_once_and_used(store, video, tmp_path):
    """A copy that did not keep times is not damage: the rehash finds the recorded content
    and caches the new time."""
    path = export_of(store)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    result = run(video, store, tmp_path / "out")
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert json.loads(path.with_suffix(".json").read_text())["mtime_ns"] == path.stat().st_mtime_ns


def test_int8_is_not_made_from_a_damaged_export(store, video, tmp_path):
    """The int8 form is made from the float32 export: from a damaged one it is refused
    (not recorded as a failed int8 form), and the line says how to make both again."""
    path = export_of(store)
    assert not list((store / "au" / "derived").glob("model-int8-*"))
    damage(path, "flipped")
    result = run(video, store, tmp_path / "out", "--int8")
    assert result.exit_code == 0, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"fa-run: au: runs on torch: its ONNX export {path} is damaged (sha256 ")
    assert line.endswith("`fa-models prepare au --int8 --force` makes it again")
    assert not list((store / "au" / "derived").glob("model-int8-*.json"))
