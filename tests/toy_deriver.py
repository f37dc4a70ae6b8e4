"""A toy deriver for the tests: a small file made, slowly, from a model file's bytes.

Run as a script (``python toy_deriver.py MODEL_FILE GATE BUILD_LOG``) it says it is ready
(``GATE/ready-PID``) and waits until ``GATE/go`` exists, so that many processes ask at
once however slowly each started (``open_gate`` opens it when all are ready), calls
``derived.ensure`` for the toy file of MODEL_FILE and prints ``ok`` when what it got is
whole and right.
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


def open_gate(gate: Path, jobs: list, deadline_s: float = 600.0) -> None:
    """Open ``gate`` once every one of ``jobs`` (Popen) is ready and waiting at it.

    A start barrier by progress, not by the clock: a loaded machine only makes it wait
    longer.  A job that exits before it is ready, or a deadline passed, fails loudly:
    the race would otherwise go untested."""
    deadline = time.monotonic() + deadline_s
    while len(list(gate.glob("ready-*"))) < len(jobs):
        exited = [job.args for job in jobs if job.poll() is not None]
        if exited:
            raise AssertionError(f"a job ended before it reached the start gate: {exited}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not every job reached the start gate in {deadline_s:.0f} s")
        time.sleep(0.02)
    (gate / "go").touch()


def wait_at_gate(gate: Path) -> None:
    (gate / f"ready-{os.getpid()}").touch()
    while not (gate / "go").exists():
        time.sleep(0.005)


if __name__ == "__main__":
    model_file, gate, build_log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    wait_at_gate(gate)
    got = ensure(model_file, build_log)
    print("ok" if got.read_bytes() == expected(model_file) else "bad", got)
