"""A toy deriver for the tests: a small file made, slowly, from a model file's bytes.

Run as a script (``python toy_deriver.py MODEL_FILE START_AT BUILD_LOG``) it waits until
the clock reads START_AT, so that many processes ask at once, calls ``derived.ensure``
for the toy file of MODEL_FILE and prints ``ok`` when what it got is whole and right.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from fatools.models import derived, store

SLOW = 0.5  # seconds between the halves of the write: a wide window for a race


def expected(model_file: Path) -> bytes:
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    return (digest + "\n").encode() * 2000  # 130 kB


def toy_path(model_file: Path) -> Path:
    return derived.derived_path(model_file, "toy", derived.key_of(store.file_sha256(model_file)), ".bin")


def ensure(model_file: Path, build_log: Path | None = None) -> Path:
    content = expected(model_file)

    def build(tmp: Path) -> dict:
        if build_log is not None:
            with open(build_log, "a") as handle:
                handle.write(f"{os.getpid()}\n")
        with open(tmp, "wb") as handle:
            handle.write(content[: len(content) // 2])
            handle.flush()
            time.sleep(SLOW)
            handle.write(content[len(content) // 2:])
        return {"from": str(model_file), "size": len(content)}

    name = model_file.parent.name
    path, _ = derived.ensure(toy_path(model_file), build, what=f"the toy file of {name}",
                             prepare_hint=f"fa-models prepare {name}")
    return path


def toy(name: str, root: str | os.PathLike[str] | None, **options: object) -> list[Path]:
    """The deriver ``fa-models prepare`` runs in the tests."""
    return [ensure(store.model_path(name, root))]


if __name__ == "__main__":
    model_file, start_at, build_log = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
    time.sleep(max(0.0, start_at - time.time()))
    got = ensure(model_file, build_log)
    print("ok" if got.read_bytes() == expected(model_file) else "bad", got)
