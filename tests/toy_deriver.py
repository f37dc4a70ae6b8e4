"""A toy deriver for the tests: a small file made, slowly, from a model file's bytes.

Run as a script (``python toy_deriver.py MODEL_FILE GATE BUILD_LOG``) it says it is ready
(``GATE/ready-PID``) and waits until ``GATE/go`` exists, so that many processes ask at
once however slowly each started (``open_gate`` opens it when all are ready), calls
``derived.ensure`` for the toy file of MODEL_FILE and prints ``ok`` when what it got is
whole and right.  It writes when it asked and when it got the file (``GATE/times-PID``);
the one that builds holds the lock, half-written, until the kernel shows another process
blocked on it (``lock_waiters``), and writes a line to BUILD_LOG with its interval and
the processes it saw waiting: evidence that the others waited, not only that they came late.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from fatools.models import derived, store

SLOW = 0.5  # seconds between the halves of the write: a wide window for a race
HOLD_S = 30.0  # at most this long the builder waits to see another process blocked on the lock


def expected(model_file: Path) -> bytes:
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    return (digest + "\n").encode() * 2000  # 130 kB


def toy_path(model_file: Path) -> Path:
    return derived.derived_path(model_file, "toy", derived.key_of(store.file_sha256(model_file)), ".bin")


def lock_of(path: Path) -> Path:
    """The lock file ``derived.ensure`` takes for ``path``."""
    return path.parent / f"{path.name}.lock"


def lock_waiters(lock: Path) -> set[int]:
    """The processes blocked now on ``lock``'s flock, as Linux's /proc/locks lists them
    (a waiter's line reads ``N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ...``)."""
    try:
        inode = lock.stat().st_ino
    except FileNotFoundError:
        return set()
    waiting = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == "->" and int(fields[6].rsplit(":", 1)[-1]) == inode:
            waiting.add(int(fields[5]))
    return waiting


def ensure(model_file: Path, build_log: Path | None = None) -> Path:
    """The toy file of ``model_file``; with ``build_log``, a build is logged there and
    holds the lock until another process is seen waiting on it (or HOLD_S passes)."""
    content = expected(model_file)
    path = toy_path(model_file)

    def build(tmp: Path) -> dict:
        started = time.time()
        waiters: set[int] = set()
        with open(tmp, "wb") as handle:
            handle.write(content[: len(content) // 2])
            handle.flush()
            deadline = time.monotonic() + HOLD_S
            while build_log is not None and not waiters and time.monotonic() < deadline:
                waiters = lock_waiters(lock_of(path))
                time.sleep(0.005)
            time.sleep(SLOW)
            handle.write(content[len(content) // 2 :])
        if build_log is not None:
            with open(build_log, "a") as handle:
                handle.write(
                    json.dumps(
                        {"pid": os.getpid(), "start": started, "end": time.time(), "waiters": sorted(waiters)}
                    )
                    + "\n"
                )
        return {"from": str(model_file), "size": len(content)}

    name = model_file.parent.name
    path, _ = derived.ensure(
        path, build, what=f"the toy file of {name}", prepare_hint=f"fa-models prepare {name}"
    )
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


def prepare_onnx(name: str, root: Path, gate: Path) -> None:
    """A job of the ONNX race: at the gate, then ``onnx_export.prepare`` of model ``name``
    (fatools' real deriver, as ``fa-models prepare`` and a first run call it); prints the
    export's path and sha256, says on stderr when it made it (fatools' INFO line)."""
    import logging

    from fatools.models import onnx_export  # torch is imported only by the one that builds

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    wait_at_gate(gate)
    asked = time.time()
    (path,) = onnx_export.prepare(name, root)
    (gate / f"times-{os.getpid()}").write_text(json.dumps({"asked": asked, "got": time.time()}))
    print(path, store.file_sha256(path))


if __name__ == "__main__" and sys.argv[1] == "--onnx":
    prepare_onnx(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
elif __name__ == "__main__":
    model_file, gate, build_log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    wait_at_gate(gate)
    asked = time.time()
    got = ensure(model_file, build_log)
    (gate / f"times-{os.getpid()}").write_text(json.dumps({"asked": asked, "got": time.time()}))
    print("ok" if got.read_bytes() == expected(model_file) else "bad", got)
