"""The ONNX Runtime backend: exports made once and checked, the same records as torch's
within 1e-4, and torch when a model cannot be exported (one line saying so)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import copy_store
from torch import nn

from fatools.cli.run import cli as run_cli
from fatools.errors import FatoolsError
from fatools.models import derived, onnx_export
from fatools.models.loading import forget
from fatools.models.store import file_record, model_path
from fatools.runtime import resolve_backend
from fatools.runtime.onnx_engine import OnnxModel
from fatools.sample import write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory, faces_dir) -> Path:
    import cv2

    photo = cv2.imread(str(faces_dir / "family4.jpg"))
    path = tmp_path_factory.mktemp("backend") / "family.mp4"
    frames = [cv2.resize(photo, (640, 360)) for _ in range(6)]
    write_video(iter(frames), str(path), fps=10.0)
    return path


def run(clip: Path, store: Path, out: Path, *flags: str) -> tuple[list[dict], str]:
    result = CliRunner().invoke(
        run_cli,
        [
            str(clip),
            "-o",
            str(out),
            "--every",
            "2",
            "--device",
            "cpu",
            "--detector",
            "retinaface-mnet",
            "--models-dir",
            str(store),
            "--format",
            "json",
            *flags,
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    return [r for r in records if r.get("type", "frame") == "frame"], result.output


def test_auto_means_onnx_runtime_on_the_cpu_and_torch_on_cuda():
    assert resolve_backend("auto", torch.device("cpu")) == "onnx"
    assert resolve_backend("auto", torch.device("cuda")) == "torch"
    assert resolve_backend("torch", torch.device("cpu")) == "torch"
    with pytest.raises(FatoolsError, match="CPU only"):
        resolve_backend("onnx", torch.device("cuda"))


def test_every_model_runs_on_onnx_runtime_with_a_checked_export(mixed_store):
    from fatools.detect import DetectOptions, build_detector
    from fatools.predict import ALL_TASKS, PredictOptions, build_predictors

    detector = build_detector("retinaface-mnet", DetectOptions(), "cpu", None, str(mixed_store))
    predictors = build_predictors(PredictOptions(tasks=ALL_TASKS), "cpu", None, str(mixed_store))
    owners = {"retinaface-mnet": detector.face_detector, **predictors.predictors}
    for name, owner in owners.items():
        assert isinstance(owner.model, OnnxModel), name
        info = owner.model.info
        assert info["max_abs_diff"] <= info["tolerance"], name
        assert info["source_sha256"] == file_record(Path(owner.path_local).parent.name, mixed_store)["sha256"]
        assert owner.model.path.parent == Path(owner.path_local).parent / "derived"


def test_onnx_records_equal_torch_records_within_1e_4(clip, mixed_store, tmp_path):
    onnx, _ = run(clip, mixed_store, tmp_path / "onnx", "--backend", "onnx")
    plain, _ = run(clip, mixed_store, tmp_path / "torch", "--backend", "torch")
    assert len(onnx) == len(plain) and sum(len(r["faces"]) for r in onnx) > 0
    for a, b in zip(onnx, plain, strict=True):
        for fa, fb in zip(a["faces"], b["faces"], strict=True):
            assert np.allclose(fa["box"], fb["box"], atol=1e-2)  # pixels, printed to 2 decimals
            assert abs(fa["score"] - fb["score"]) <= 1e-4
            for key in ("au", "expression"):
                pa = fa[key]["probs" if key == "au" else "scores"]
                pb = fb[key]["probs" if key == "au" else "scores"]
                assert np.allclose(list(pa.values()), list(pb.values()), atol=1e-4), key
            assert abs(fa["va"]["valence"] - fb["va"]["valence"]) <= 1e-4
            # README: landmarks within 1e-4 of the face's size beyond their 0.01 px rounding.
            x0, y0, x1, y1 = fb["box"]
            size = max(x1 - x0, y1 - y0)
            diff = np.abs(np.array(fa["landmarks3d"]) - np.array(fb["landmarks3d"]))
            assert diff.max() <= 0.01 + 1e-4 * size + 1e-9, (diff.max(), size)


def test_an_export_silences_only_torchs_known_notices(mixed_store, tmp_path, monkeypatch):
    """Exporting says nothing (torch's notices about its legacy exporter and a ScriptModule's
    missing signature are silenced by their messages), and any other warning still shows."""
    import warnings

    from fatools.models.torchscript import quiet_torchscript

    with quiet_torchscript():
        model = torch.jit.load(str(model_path("va", mixed_store)), map_location="cpu").eval()
    example = onnx_export.check_inputs(onnx_export.example_of("va")[0], False)[0]
    real = torch.onnx.export

    def export_saying_more(*args, **kwargs):
        warnings.warn("a notice nobody has seen", UserWarning, stacklevel=1)  # raised where torch's are
        return real(*args, **kwargs)

    said = []
    for export in (real, export_saying_more):
        monkeypatch.setattr(torch.onnx, "export", export)
        with warnings.catch_warnings(record=True) as seen, torch.no_grad():
            warnings.simplefilter("always")
            onnx_export._export(model, example, tmp_path / "va.onnx", detector=False)
        said.append([str(w.message) for w in seen])
    # (torch before 2.5 is called twice: once refusing dynamo=False, once without it)
    assert said[0] == [] and set(said[1]) == {"a notice nobody has seen"}


class Cummax(nn.Module):
    """The stand-in AU contract ([B,3,224,224] -> [B,41] in [0,1]) through an operator
    ONNX lacks (cummax), so its export fails."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3)).repeat(1, 14)[:, :41]
        return torch.sigmoid(pooled.cummax(dim=1).values)


def test_a_model_that_cannot_be_exported_runs_on_torch_and_says_so_once(clip, mixed_store, tmp_path):
    store = tmp_path / "store"
    copy_store(mixed_store, store)
    torch.jit.save(torch.jit.script(Cummax()), str(model_path("au", store)))
    (store / "au" / "source.json").unlink()
    records, output = run(clip, store, tmp_path / "a", "--tasks", "au")
    lines = [line for line in output.splitlines() if "runs on torch" in line]
    assert len(lines) == 1 and lines[0].startswith("fa-run: au: runs on torch: its ONNX export failed"), (
        output
    )
    assert "cummax" in lines[0] and "fa-models prepare au --force" in lines[0]
    assert all(0 <= p <= 1 for r in records for f in r["faces"] for p in f["au"]["probs"].values())
    record = next((store / "au" / "derived").glob("model-*.json"))
    assert "error" in json.loads(record.read_text())
    made = record.stat().st_mtime_ns
    forget()  # as a new process would: the models are built again, and the export not retried
    _, again = run(clip, store, tmp_path / "b", "--tasks", "au")  # the failure is remembered, not retried
    assert record.stat().st_mtime_ns == made and "its ONNX export failed" in again
    result = CliRunner().invoke(
        run_cli,
        [
            str(clip),
            "-o",
            str(tmp_path / "c"),
            "--tasks",
            "au",
            "--backend",
            "onnx",
            "--detector",
            "retinaface-mnet",
            "--models-dir",
            str(store),
        ],
    )
    assert (
        result.exit_code == 1
        and "cannot run on ONNX Runtime" in result.output
        and "--backend torch" in result.output
    )


def test_an_export_is_keyed_by_its_source_and_exporter(mixed_store):
    path = model_path("va", mixed_store)
    sha = file_record("va", mixed_store)["sha256"]
    assert onnx_export.onnx_path(path, sha) != onnx_export.onnx_path(path, "0" * 64)
    assert onnx_export.onnx_path(path, sha) != onnx_export.onnx_path(path, sha, int8=True)
    assert onnx_export.onnx_path(path, sha).parent == path.parent / derived.DERIVED_DIR


def test_a_read_only_store_without_exports_runs_on_torch_or_says_how_to_prepare(
    clip, mixed_store, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    copy_store(mixed_store, store)
    monkeypatch.setattr(derived, "_writable", lambda directory: False)
    records, output = run(clip, store, tmp_path / "auto")
    assert records and "fa-models prepare" in output and "read-only" in output
    assert not list(store.glob("*/derived/*.onnx"))
    result = CliRunner().invoke(
        run_cli,
        [
            str(clip),
            "-o",
            str(tmp_path / "onnx"),
            "--backend",
            "onnx",
            "--detector",
            "retinaface-mnet",
            "--models-dir",
            str(store),
        ],
    )
    assert result.exit_code == 1 and "fa-models prepare" in result.output


def test_int8_on_onnx_runtime_quantises_the_au_model(clip, mixed_store, tmp_path):
    plain, _ = run(clip, mixed_store, tmp_path / "fp32")
    int8, _ = run(clip, mixed_store, tmp_path / "int8", "--int8")
    assert list((Path(mixed_store) / "au" / "derived").glob("model-int8-*.onnx"))
    moved = False
    assert sum(len(r["faces"]) for r in plain) > 0
    for a, b in zip(plain, int8, strict=True):
        for fa, fb in zip(a["faces"], b["faces"], strict=True):
            assert fb["au"]["int8"] is True and "int8" not in fa["au"]
            pa, pb = np.array(list(fa["au"]["probs"].values())), np.array(list(fb["au"]["probs"].values()))
            # The stand-in's one Linear layer sees a wide activation range, which per-tensor
            # activation quantisation resolves coarsely (0.039 measured); on the AU model's
            # compute twin the change is 0.004 (benchmarks/effects.py, fa-run(1)).
            assert np.allclose(pa, pb, atol=6e-2)
            moved |= not np.array_equal(pa, pb)
            assert fa["expression"] == fb["expression"] and fa["va"] == fb["va"]
    assert moved


def test_bf16_is_float32_where_the_cpu_lacks_it_and_autocast_where_it_has_it(
    clip, mixed_store, tmp_path, monkeypatch
):
    from fatools.runtime import torch_engine

    monkeypatch.setattr(torch_engine, "bf16_hardware", lambda: None)
    plain, output = run(clip, mixed_store, tmp_path / "none", "--bf16", "--tasks", "au,fer")
    assert "neither AMX nor AVX512_BF16" in output
    assert all("bf16" not in f["au"] for r in plain for f in r["faces"])
    monkeypatch.setattr(torch_engine, "bf16_hardware", lambda: "AMX")
    forget()  # the CPU "changed": the models kept for these options were readied for the other one
    bf16, _ = run(clip, mixed_store, tmp_path / "amx", "--bf16", "--tasks", "au,fer")
    assert sum(len(r["faces"]) for r in plain) > 0
    for a, b in zip(plain, bf16, strict=True):
        for fa, fb in zip(a["faces"], b["faces"], strict=True):
            assert fb["au"]["bf16"] is True
            pa, pb = np.array(list(fa["au"]["probs"].values())), np.array(list(fb["au"]["probs"].values()))
            assert np.allclose(pa, pb, atol=5e-2)


def test_the_store_listing_shows_each_export_and_its_difference(mixed_store):
    from fatools.cli.models import cli as models_cli
    from fatools.detect import DetectOptions, build_detector

    build_detector("retinaface-mnet", DetectOptions(), "cpu", None, str(mixed_store))  # exported on first use
    listing = CliRunner().invoke(models_cli, ["list", "--models-dir", str(mixed_store)])
    assert listing.exit_code == 0, listing.output
    header, *rows = listing.output.splitlines()
    assert "ONNX" in header.split()
    mnet = next(row for row in rows if row.startswith("retinaface-mnet "))
    assert " ok(" in mnet
    as_json = CliRunner().invoke(models_cli, ["list", "--json", "--models-dir", str(mixed_store)])
    row = next(json.loads(line) for line in as_json.output.splitlines() if '"retinaface-mnet"' in line)
    # The export's own check: 1e-4 of each output's scale (the detector's box offsets exceed 1).
    assert row["onnx"]["state"] == "ok" and row["onnx"]["max_abs_diff"] <= row["onnx"]["tolerance"]


def test_fa_models_prepare_makes_the_exports_a_run_would_make(mixed_store, tmp_path):
    from fatools.cli.models import cli as models_cli

    store = tmp_path / "store"
    copy_store(mixed_store, store)
    result = CliRunner().invoke(models_cli, ["prepare", "va", "au", "--int8", "--models-dir", str(store)])
    assert result.exit_code == 0, result.output
    made = [Path(line) for line in result.output.splitlines() if line.endswith(".onnx")]
    assert len(made) == 3 and all(path.is_file() for path in made)  # va, au and au's int8 form
    assert {path.parent.parent.name for path in made} == {"va", "au"}


def test_each_backend_has_an_engine_and_onnx_falls_back_to_torch_with_one_line(caplog):
    import types

    from fatools.runtime import engine_for
    from fatools.runtime.onnx_engine import OnnxEngine
    from fatools.runtime.torch_engine import TorchEngine

    assert isinstance(engine_for("torch"), TorchEngine) and isinstance(engine_for("onnx"), OnnxEngine)
    with pytest.raises(FatoolsError, match="no engine runs backend 'tensorrt'"):
        engine_for("tensorrt")

    def owner() -> types.SimpleNamespace:
        return types.SimpleNamespace(
            model=torch.jit.script(nn.Linear(4, 2)).eval(), device=torch.device("cpu")
        )

    plain = owner()
    with caplog.at_level("WARNING", logger="fatools"):  # a model with no store file: torch, one line
        made = engine_for("onnx").ready(plain, None, name="va", example=(1, 4))
    assert made.engine == "torch" and made.model is plain.model and made.input_format.channels_last is False
    assert caplog.text.count("va: runs on torch: its model file is not known") == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="fatools"):  # bf16 is torch's precision: torch, silently
        made = engine_for("onnx").ready(owner(), None, name="va", example=(1, 4), bf16=True)
    assert made.engine == "torch" and made.input_format.bf16 and not caplog.text
    with pytest.raises(FatoolsError, match="va: cannot run on ONNX Runtime: its model file is not known"):
        engine_for("onnx").ready(owner(), None, name="va", example=(1, 4), required=True)
