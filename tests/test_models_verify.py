"""Verification: `fa-models verify` rehashes the store against its records (and the
catalogue's pins); a model that does not match its record stops a run before any work."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import copy_store

from fatools.cli.models import cli as models_cli
from fatools.cli.run import cli as run_cli
from fatools.errors import FatoolsError
from fatools.models import catalogue, store, verify
from fatools.testing import build_standins


@pytest.fixture
def own_store(standin_store: Path, tmp_path: Path) -> Path:
    """A copy of the session's stand-in store that a test may damage (times kept, as rsync -a)."""
    return copy_store(standin_store, tmp_path / "store")


def resaved(path: Path, tmp_path: Path) -> bytes:
    """The same TorchScript model saved again under another name: it loads and runs as
    before, but its bytes (torch names the archive after the file) and sha256 differ."""
    import torch

    other = tmp_path / "other-name.pt"
    torch.jit.save(torch.jit.load(str(path)), str(other))
    assert other.read_bytes() != path.read_bytes()
    return other.read_bytes()


def verify_cli(root: Path, *names: str, as_json: bool = False):
    return CliRunner().invoke(
        models_cli, ["verify", *names, "--models-dir", str(root)] + (["--json"] if as_json else [])
    )


def test_an_intact_store_is_ok(own_store: Path) -> None:
    result = verify_cli(own_store)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[name, "ok"] for name in catalogue.MODELS]
    rows = [json.loads(line) for line in verify_cli(own_store, "au", as_json=True).stdout.splitlines()]
    assert rows == [
        {
            "name": "au",
            "status": "ok",
            "path": str(own_store / "au" / "model.pt"),
            "problems": [],
            "sha256": store.file_sha256(own_store / "au" / "model.pt"),
            "recorded_sha256": store.read_source("au", own_store)["sha256"],
            "pinned_sha256": catalogue.MODELS["au"].sha256,
            "source": "standin",
        }
    ]


def test_each_problem_has_its_status(own_store: Path, tmp_path: Path) -> None:
    va = own_store / "va" / "model.pt"
    va.write_bytes(resaved(va, tmp_path))  # changed content
    (own_store / "fer" / "source.json").unlink()  # a file without its record
    (own_store / "align" / "model.pt").unlink()  # a record without its file
    (own_store / "au" / ".import-x1y2.tmp").write_bytes(b"half")  # an interrupted import
    (own_store / "embed" / "derived").mkdir()
    (own_store / "embed" / "derived" / "model-0123.onnx").write_bytes(b"onnx")  # derived, no record
    shutil.rmtree(own_store / "align-meta")
    # A fetched file whose record is not the catalogue's pin (fetched before the pin, say).
    record = store.read_source("retinaface", own_store)
    (own_store / "retinaface" / "source.json").write_text(json.dumps(dict(record, source="fetch")))

    result = verify_cli(own_store, *catalogue.MODELS)
    assert result.exit_code == 1
    status = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert status == {
        "retinaface": "changed",
        "retinaface-mnet": "ok",
        "au": "partial",
        "fer": "partial",
        "va": "changed",
        "align": "partial",
        "align-meta": "missing",
        "embed": "partial",
    }
    assert result.stderr.splitlines() == [
        f"fa-models: error: 7 of 8 models not ok in {own_store}: retinaface changed, au partial, fer partial, "
        "va changed, align partial, align-meta missing, embed partial"
    ]
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert (
        "not the 05e524af9b55 the catalogue pins: `fa-models fetch --force retinaface`" in lines["retinaface"]
    )
    assert "leftover temporary .import-x1y2.tmp" in lines["au"]
    assert "derived/model-0123.onnx without its record" in lines["embed"]
    assert "source.json without its file model.pt" in lines["align"]
    assert "no source.json (copied without its record)" in lines["fer"]
    # Without names: what the store has anything of (align-meta is gone entirely).
    assert "align-meta" not in verify_cli(own_store).stdout


def test_verify_rehashes_every_file_and_caches_a_new_mtime(
    own_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    va = own_store / "va" / "model.pt"
    os.utime(va, ns=(1_000_000_000, 1_000_000_000))  # as after a copy that did not keep times
    hashed: list[str] = []
    real = store.file_sha256
    monkeypatch.setattr(
        store, "file_sha256", lambda path: hashed.append(Path(path).parent.name) or real(path)
    )
    rows = list(verify.verify(None, own_store))
    assert all(row["status"] == "ok" for row in rows)
    assert hashed == list(catalogue.MODELS)  # every file read, whatever the cache says
    assert store.read_source("va", own_store)["mtime_ns"] == 1_000_000_000
    hashed.clear()
    store.require(list(catalogue.MODELS), own_store)  # the load-time check: a stat each, no hashing
    assert hashed == []


def test_an_empty_store_is_an_error(tmp_path: Path) -> None:
    result = verify_cli(tmp_path)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"fa-models: error: {tmp_path}: no models in this store; run `fa-models fetch"
    )


def test_a_changed_model_stops_a_run_unless_no_verify(own_store: Path, tmp_path: Path) -> None:
    from conftest import squares_image

    va = own_store / "va" / "model.pt"
    changed = resaved(va, tmp_path)
    va.write_bytes(changed)
    stills = tmp_path / "stills"
    stills.mkdir()
    squares_image(stills / "a.png")
    # fa-run in this process: the refusal comes before any model is loaded, and the run with
    # --no-verify loads this test's own store (its path is its own: no model set is reused).
    command = [str(stills), "--tasks", "va", "--models-dir", str(own_store)]
    refused = CliRunner().invoke(run_cli, [*command, "-o", str(tmp_path / "refused")])
    assert refused.exit_code == 1
    digest = hashlib.sha256(changed).hexdigest()
    assert refused.stderr.splitlines() == [
        f"fa-run: error: changed since the store recorded it: {va} (sha256 {digest[:12]}, recorded "
        f"{store.read_source('va', own_store)['sha256'][:12]}); fetch or import again (`fa-models fetch --force va`), "
        "see `fa-models verify`, or give --no-verify to use the files as they are"
    ]
    assert not (tmp_path / "refused" / "frames.jsonl").exists()

    used = CliRunner().invoke(run_cli, [*command, "--no-verify", "-o", str(tmp_path / "used")])
    assert used.exit_code == 0, used.output
    run = json.loads((tmp_path / "used" / "run.json").read_text())
    assert {"name": "va", "sha256": digest} in [{k: m[k] for k in ("name", "sha256")} for m in run["models"]]


def test_detect_and_predict_check_their_models(own_store: Path, tmp_path: Path) -> None:
    from fatools.detect import build_detector
    from fatools.predict import PredictOptions, build_predictors

    for name in ("retinaface", "fer"):
        path = own_store / name / "model.pt"
        path.write_bytes(resaved(path, tmp_path))
    with pytest.raises(FatoolsError, match=r"changed since the store recorded it: .*retinaface/model\.pt"):
        build_detector("retinaface", device="cpu", models_dir=str(own_store))
    with pytest.raises(FatoolsError, match=r"`fa-models fetch --force fer`"):
        build_predictors(PredictOptions(tasks=("fer",)), "cpu", None, str(own_store))
    build_detector("retinaface", device="cpu", models_dir=str(own_store), verify=False)
    build_predictors(PredictOptions(tasks=("fer",)), "cpu", None, str(own_store), verify=False)


def test_a_hand_copied_file_is_recorded_once_and_then_checked(tmp_path: Path) -> None:
    build_standins(tmp_path / "built", ["fer"])
    (tmp_path / "store" / "fer").mkdir(parents=True)
    shutil.copy(tmp_path / "built" / "fer" / "model.pt", tmp_path / "store" / "fer" / "model.pt")
    store.require(["fer"], tmp_path / "store")
    assert store.read_source("fer", tmp_path / "store")["source"] == "unknown"
    with open(tmp_path / "store" / "fer" / "model.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(FatoolsError, match="changed since the store recorded it"):
        store.require(["fer"], tmp_path / "store")
