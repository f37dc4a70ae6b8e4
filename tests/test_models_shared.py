"""One store shared by many jobs and a lab: modes, concurrent first use of derived files,
`fa-models prepare`, and a store nobody may write to."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_the_store_is_readable_by_the_lab_whatever_the_umask(tmp_path: Path, standin_store: Path) -> None:
    root = tmp_path / "store"
    script = (f"umask 077 && {sys.executable} -m fatools.testing {root} va align-meta && "
              f"{BIN / 'fa-models'} import au {standin_store / 'au' / 'model.pt'} --models-dir {root}")
    subprocess.run(["sh", "-c", script], check=True, capture_output=True, timeout=300)
    found = modes(root)
    assert set(found) == {".", "va", "va/model.pt", "va/source.json", "align-meta", "align-meta/meta.pt",
                          "align-meta/source.json", "au", "au/model.pt", "au/source.json"}
    wrong = {name: oct(mode) for name, mode in found.items()
             if mode != (0o755 if (root / name).is_dir() else 0o644)}
    assert not wrong, f"not 0644 files / 0755 directories under umask 077: {wrong}"
