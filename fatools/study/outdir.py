"""One output directory of fa-run: the names in it and every read and write of them.

An input's directory holds:

* ``frames.jsonl`` (``RECORDS``), written as records arrive under ``.frames.jsonl.part``
  (``PART``) and renamed at the end (``RecordsFile``); the complete lines of a part file
  a stopped analysis left are what a resume goes on from (``saved_records``, ``replay``);
* ``summary.json`` (``SUMMARY``), and the exports (``fatools.export`` names and writes
  those; the run record lists them);
* ``run.json`` (``RUN_RECORD``): the record of the run (``fatools.study.batch`` says what
  is in it; ``read_record``, ``load_record``, ``write_record``);
* ``.fatools.lock`` (``LOCK``): held by the process writing into the directory
  (``locked``).

Each JSON file is written under ``.NAME.part`` and renamed (``write_json``), so a kill
never leaves half a file under a final name.  ``fatools.run`` (one analysis) and
``fatools.study.batch`` (the run record, resume, removal) both write through here;
``fatools.study.collect`` reads through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fatools.errors import FatoolsError
from fatools.records import RecordWriter, dumps

RECORDS = "frames.jsonl"
SUMMARY = "summary.json"
RUN_RECORD = "run.json"
LOCK = ".fatools.lock"


def part_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed to its name."""
    return path.with_name(f".{path.name}.part")


PART = part_path(Path(RECORDS)).name  # the records file while it is written: complete lines are resumable


def _replace(path: Path, data: bytes) -> None:
    tmp = part_path(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> Path:
    """``data`` as one line of JSON at ``path`` (numpy values allowed), never half written."""
    _replace(path, dumps(data))
    return path


# -- the records --------------------------------------------------------------------


class RecordsFile:
    """The records file of ``out``, written as records arrive under ``PART``, renamed to
    ``RECORDS`` at the end.

    ``keep`` (bytes) continues a part file a stopped analysis left: it is cut after its
    last record worth keeping and appended to; the first ``skip`` records that arrive
    (the replayed ones) are already in it.
    """

    def __init__(self, out: Path, keep: int | None = None, skip: int = 0) -> None:
        self.path = out / RECORDS
        self.part = out / PART
        # Open for the writer's life (closed by its close or abort): records go out as they come.
        self.handle: BinaryIO
        if keep is None:
            self.handle = open(self.part, "wb")  # noqa: SIM115
        else:
            self.handle = open(self.part, "r+b")  # noqa: SIM115
            self.handle.truncate(keep)
            self.handle.seek(keep)
        self.skip = skip
        self.writer = RecordWriter(self.handle)

    def add(self, record: dict) -> None:
        if self.skip:
            self.skip -= 1
            return
        self.writer.write(record)

    def finish(self) -> Path:
        self.handle.close()
        os.replace(self.part, self.path)
        return self.path

    def close(self) -> None:
        """Stop writing; what was written stays, for the next run to resume from."""
        self.handle.close()


def resumable(out: Path) -> bool:
    """Whether ``out`` holds a part file a stopped analysis left."""
    return (out / PART).is_file()


def saved_records(path: Path) -> Iterator[tuple[dict, int]]:
    """Each complete record of a records file (a part file a stopped analysis left, or a
    finished one), with the byte offset where it ends; a last line cut short by a kill is
    not one."""
    import orjson

    with open(path, "rb") as handle:
        offset = 0
        for line in handle:
            if not line.endswith(b"\n"):
                return
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                return
            offset += len(line)
            yield record, offset


def replay(out: Path, count: int) -> Iterator[dict]:
    """The first ``count`` records of ``out``'s part file."""
    for index, (record, _) in enumerate(saved_records(out / PART)):
        if index >= count:
            return
        yield record


def frames_done(out: Path) -> int:
    """The frame records in ``out``: its part file's while there is one, else its records file's."""
    path = out / PART if resumable(out) else out / RECORDS
    if not path.is_file():
        return 0
    return sum(1 for record, _ in saved_records(path) if record.get("type", "frame") == "frame")


# -- the summary and the run record -------------------------------------------------


def write_summary(out: Path, summary: dict) -> Path:
    return write_json(out / SUMMARY, summary)


def read_summary(out: Path) -> dict:
    """``out``'s summary.json (OSError or ValueError when it cannot be read)."""
    return json.loads((out / SUMMARY).read_text(encoding="utf-8"))


def load_record(out: Path) -> dict:
    """``out``'s run.json as it is (OSError or ValueError when it cannot be read)."""
    return json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))


def read_record(out: Path) -> dict | None:
    """``out``'s run record; None when there is none, or not a readable one."""
    try:
        record = load_record(out)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("type") == "run" else None


def write_record(out: Path, record: dict) -> None:
    """``record`` as ``out``'s run.json (indented: people read it)."""
    _replace(out / RUN_RECORD, (json.dumps(record, indent=2) + "\n").encode("utf-8"))


# -- the lock and removal -----------------------------------------------------------


class LockedError(FatoolsError):
    """Another process is writing into the same output directory."""


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock (made when missing); a second process gets LockedError at once."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+", encoding="utf-8") as handle:  # closing releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockedError(
                f"{out}: {holder} is writing into it; wait for it to end, or give another -o"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"fa-run pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield


def _remove(out: Path, names: list[str]) -> None:
    for name in dict.fromkeys(names):
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()


def _listed(previous: dict | None) -> list[str]:
    return [os.path.basename(p) for p in (previous or {}).get("files") or []]


def remove_exports(out: Path, previous: dict | None) -> None:
    """Remove the exports the run record ``previous`` lists (its records and summary stay)."""
    _remove(out, [name for name in _listed(previous) if name not in (RECORDS, SUMMARY)])


def remove_results(out: Path, previous: dict | None) -> None:
    """Remove what an earlier run wrote: its records (the part file too), its summary and
    the exports its run record ``previous`` lists."""
    _remove(out, [RECORDS, SUMMARY, PART, *_listed(previous)])
