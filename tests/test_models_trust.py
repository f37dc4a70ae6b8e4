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
    proc = subprocess.run([BIN / "fa-models", "import", "align-meta", str(evil), "--models-dir", str(store_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"fa-models: error: {evil}: refused, it would call ")
    assert "system while loading (a pickle can run code)" in lines[0]
    assert not marker.exists(), "the pickle's command ran"
    assert not (store_dir / "align-meta" / "meta.pt").exists()


def test_import_accepts_the_real_layout(tmp_path: Path) -> None:
    built = tmp_path / "built"
    subprocess.run([sys.executable, "-m", "fatools.testing", str(built), "align-meta"], check=True,
                   capture_output=True, timeout=120)
    store_dir = tmp_path / "store"
    proc = subprocess.run([BIN / "fa-models", "import", "align-meta", str(built / "align-meta" / "meta.pt"),
                           "--models-dir", str(store_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{store_dir / 'align-meta' / 'meta.pt'}\n"
