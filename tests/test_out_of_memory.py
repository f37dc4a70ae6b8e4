"""Out of device memory: a batch is halved and retried down to one, said once on stderr,
with the records of a run that fitted; out of memory with one item is a one-line error.

CUDA's out-of-memory error is injected into facetorch's own model call (BaseModel.inference,
which every detector and predictor runs), so the real halving path runs on any machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from compare import differences
from facetorch.base import BaseModel

from fatools.cli.run import cli as run_cli
from fatools.sample import write_video


def _faces(i: int) -> np.ndarray:
    image = np.full((360, 640, 3), 15, np.uint8)
    image[30:150, 40 + 10 * i : 160 + 10 * i] = 250
    image[200:310, 420:530] = (235, 245, 225)
    return image


@pytest.fixture(autouse=True)
def _own_models():
    """Each test here gets model sets of its own and leaves none: a set that ran out of
    memory keeps its halved batch (fatools.devices.Halving) and its said-once warning, and
    the suite keeps many sets (tests/conftest.py), so another test could be given it."""
    from fatools.models.loading import forget

    forget()
    yield
    forget()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("oom") / "two.mp4"
    write_video((_faces(i) for i in range(16)), str(path), fps=8)
    return path


def _run(clip: Path, store: Path, out: Path, *flags: str):
    return CliRunner().invoke(
        run_cli,
        [
            str(clip),
            "-o",
            str(out),
            "--every",
            "2",
            "--device",
            "cpu",
            "-f",
            "csv",
            "--models-dir",
            str(store),
            *flags,
        ],
    )


def _limit_batches(monkeypatch, largest: int, calls: list[int]) -> None:
    """Every facetorch model call with more than ``largest`` items runs out of memory."""
    inference = BaseModel.inference

    def constrained(self, tensor):
        calls.append(tensor.shape[0])
        if tensor.shape[0] > largest:
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (injected by the test)"
            )
        return inference(self, tensor)

    monkeypatch.setattr(BaseModel, "inference", constrained)


def test_a_batch_that_does_not_fit_is_halved_with_the_same_records(
    clip, standin_store, tmp_path, monkeypatch
):
    flags = ("--detect-batch", "4", "--face-batch", "8")
    plain = _run(clip, standin_store, tmp_path / "plain", *flags)
    assert plain.exit_code == 0, plain.output
    calls: list[int] = []
    _limit_batches(monkeypatch, 1, calls)
    halved = _run(clip, standin_store, tmp_path / "halved", *flags)
    assert halved.exit_code == 0, halved.output
    # The same records as the run that fitted, up to float rounding between batch sizes (as --detect-batch
    # and --face-batch themselves: tests/test_run.py), the same faces, labels and active sets.
    records = [
        [json.loads(x) for x in (tmp_path / d / "frames.jsonl").read_bytes().splitlines()]
        for d in ("halved", "plain")
    ]
    assert not differences(*records, pixels=0.01, values=1e-5)
    assert 4 in calls and 2 in calls and max(calls[-3:]) == 1  # halved 4 -> 2 -> 1, then kept at 1
    warnings = [line for line in halved.stderr.splitlines() if "out of GPU memory" in line]
    # Once per model that had to halve (the detector and each predictor), not once per batch.
    assert 1 <= len(warnings) <= 5 and len(set(warnings)) == len(warnings)
    assert any("detector: out of GPU memory with a batch of 4; going on with 2" in w for w in warnings)


def test_out_of_memory_with_one_item_names_it_and_what_to_do(clip, standin_store, tmp_path, monkeypatch):
    _limit_batches(monkeypatch, 0, [])
    result = _run(clip, standin_store, tmp_path / "o")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("fa-run: error: ") and "two.mp4: frame 0: out of GPU memory" in lines[-1]
    assert "--det-size" in lines[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "o" / "frames.jsonl").exists()


def test_other_errors_are_not_taken_for_out_of_memory(clip, standin_store, tmp_path, monkeypatch):
    def broken(self, tensor):
        raise RuntimeError("shape mismatch in the model")

    monkeypatch.setattr(BaseModel, "inference", broken)
    result = _run(clip, standin_store, tmp_path / "o")
    assert (
        result.exit_code == 1
        and "shape mismatch" in result.stderr
        and "out of GPU memory" not in result.stderr
    )
