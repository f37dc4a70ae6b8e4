"""Files the store derives from its models on first use (ONNX exports, for instance).

A derived file lives beside its source model, under a name that carries everything it
depends on (the source's sha256, the exporter's versions), so a changed source or a
newer exporter means a new name, never a stale file::

    <dir>/<name>/derived/<stem>-<key>.<suffix>     the file
    <dir>/<name>/derived/<stem>-<key>.json         what was made and checked, when

Many jobs may need the same missing file at the same second (a SLURM array starting on
a shared store).  ``ensure`` makes it safe: one process builds, under an exclusive
``flock`` of ``<file>.lock``, into a temporary name in the same directory, fsyncs and
renames; the others wait on the lock and then find the file.  Nothing half-written is
ever visible under the final name.  A store nobody may write to (the usual cluster set-up)
is never written at run time: a missing derived file is then an error that says how to
make it once (``fa-models prepare``) where the store is writable.

The record holds the file's sha256, size and mtime as made, so that a file damaged
since (truncated, bytes overwritten) is found (``damage``): by a stat while size and
mtime are the recorded ones, by a rehash otherwise, and always by ``fa-models verify``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fatools.errors import FatoolsError, ModelMissingError

log = logging.getLogger("fatools")

DERIVED_DIR = "derived"
# Files a lab shares: readable by the group (and others), whatever the umask says about
# group read; writable by the owner only.
FILE_MODE = 0o644
DIR_MODE = 0o755


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks (model files run to hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def key_of(*parts: Any) -> str:
    """A short stable key for what a derived file depends on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def derived_path(model_file: str | os.PathLike[str], stem: str, key: str, suffix: str) -> Path:
    """Where a file derived from ``model_file`` with ``key`` lives."""
    return Path(model_file).parent / DERIVED_DIR / f"{stem}-{key}{suffix}"


class DamagedError(FatoolsError):
    """A derived file is not the one its record describes (``damage``)."""


def info_path(path: Path) -> Path:
    return path.with_suffix(".json")


def read_info(path: Path) -> dict | None:
    """The derived file's record, or None when absent or unreadable."""
    try:
        data = json.loads(info_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_dirs(directory: Path) -> None:
    """``mkdir -p`` whose new directories get DIR_MODE whatever the umask (mkdir's mode
    argument is masked by it, so a umask of 077 would hide a shared store from the lab)."""
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            continue  # another process made it first
        os.chmod(new, DIR_MODE)


def publish(tmp: Path, path: Path) -> None:
    """Make the complete file ``tmp`` (beside ``path``) ``path``: fsync, mode FILE_MODE,
    rename, fsync the directory, so that neither a crash nor a reader sees half a file."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a temporary name beside ``path``, then ``publish`` it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    write_atomic(path, write)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Opened read-only (flock needs no write access), so that a colleague may take the
    # lock of a file someone else made first.
    fd = os.open(path.parent / f"{path.name}.lock", os.O_RDONLY | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _writable(directory: Path) -> bool:
    """Whether files can be made in ``directory`` (created if need be)."""
    try:
        make_dirs(directory)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def ensure(
    path: Path, build: Callable[[Path], dict], *, what: str, prepare_hint: str
) -> tuple[Path | None, dict]:
    """The derived file at ``path`` and its record, built first when it is missing.

    ``build(tmp)`` writes the file to ``tmp`` and returns what to record about it.  When
    it raises, nothing is left but the record, with ``error`` (one line): the caller
    gets ``(None, record)`` now and on every later call, so a build that cannot succeed
    (an unexportable model) costs its minutes once, not per run; ``fa-models prepare
    --force`` tries again.  ``what`` names the file in messages ("the ONNX export of
    au"); ``prepare_hint`` is the command that makes it once ("fa-models prepare au").
    """
    found = _existing(path)
    if found is not None:
        return found
    if not _writable(path.parent):
        raise ModelMissingError(
            f"{path}: {what} is not in the store, which is read-only here; run `{prepare_hint}` once "
            "with write access to the store (or use --backend torch)"
        )
    with _locked(path):
        found = _existing(path)
        if found is not None:
            return found  # another process made it while this one waited
        log.info("%s: making it once (%s)", what, path)
        record: dict = {}

        def write(tmp: Path) -> None:
            record.update(build(tmp))

        try:
            write_atomic(path, write)
        except Exception as exc:
            failed = {"error": " ".join(str(exc).split())[:300] or type(exc).__name__}
            with contextlib.suppress(OSError):
                write_json_atomic(info_path(path), failed)
            return None, failed
        record.update(_identity(path))
        write_json_atomic(info_path(path), record)
        return path, record


def _existing(path: Path) -> tuple[Path | None, dict] | None:
    """What is already there: the file and its record, a recorded failure, or None."""
    info = read_info(path)
    if info is None:
        return None
    if info.get("error"):
        return None, info
    return (path, info) if path.is_file() else None


def made(path: Path) -> bool:
    """Whether ``ensure`` would find ``path`` (or its recorded failure) rather than build it."""
    return _existing(path) is not None


def _identity(path: Path) -> dict:
    """What the record keeps to recognise the file later: sha256, size, mtime."""
    stat = path.stat()
    return {"sha256": file_sha256(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def damage(path: Path, info: dict, rehash: bool = False) -> str | None:
    """Why the derived file ``path`` is not the one its record ``info`` describes (a
    clause: "12 bytes, recorded 10875"), or None when it is, or when the record cannot
    tell (made before records held a hash: only opening the file can).

    A stat while the size and mtime are the recorded ones (``rehash``: always read it
    all, as ``fa-models verify`` does); a file found intact under a new mtime (a copy
    that did not keep times) has it cached, where the store is writable, so that the
    next check is a stat again.
    """
    recorded = info.get("sha256")
    if not recorded:
        return None
    try:
        stat = path.stat()
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.st_size != info.get("size"):
        return f"{stat.st_size} bytes, recorded {info.get('size')}"
    if stat.st_mtime_ns == info.get("mtime_ns") and not rehash:
        return None
    digest = file_sha256(path)
    if digest != recorded:
        return f"sha256 {digest[:12]}, recorded {recorded[:12]}"
    if stat.st_mtime_ns != info.get("mtime_ns") and os.access(path.parent, os.W_OK):
        with contextlib.suppress(OSError):  # a cache: a store that refuses it is rehashed next time
            write_json_atomic(info_path(path), dict(info, mtime_ns=stat.st_mtime_ns))
    return None


def forget(path: Path) -> None:
    """Remove a derived file and its record (``fa-models prepare --force``)."""
    for stale in (path, info_path(path)):
        stale.unlink(missing_ok=True)


# -- what `fa-models prepare` makes ------------------------------------------------------

# A deriver ensures, for one model (name, store root), every derived file of its kind a
# run would need, and returns their paths (none when that model needs none).
Deriver = Callable[..., list[Path]]  # (name, root, **options) -> paths
DERIVERS: dict[str, Deriver] = {}
# Modules whose import registers a deriver; `prepare` imports them first, so that the
# command line sees the derivers a run would use.
DERIVER_MODULES: tuple[str, ...] = ("fatools.models.onnx_export",)


def register(kind: str, fn: Deriver) -> None:
    """Make ``fn`` the deriver of ``kind`` ("onnx", ...), run by ``fa-models prepare``."""
    DERIVERS[kind] = fn


def prepare(
    names: list[str], root: str | os.PathLike[str] | None = None, **options: Any
) -> Iterator[tuple[str, str, list[Path]]]:
    """(model, kind, paths ensured) for every registered deriver and each of ``names``,
    as each is made: the files a run would otherwise make on first use.  ``options``
    (``force``, ``int8``) go to every deriver."""
    import importlib

    for module in DERIVER_MODULES:
        importlib.import_module(module)
    for name in names:
        for kind, fn in list(DERIVERS.items()):
            yield name, kind, fn(name, root, **options)
