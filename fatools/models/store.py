"""The model store: one directory holding every model file fatools uses.

Layout::

    <dir>/<name>/<filename>      the model (model.pt; meta.pt for align-meta)
    <dir>/<name>/source.json     sha256, size, where it came from and when

``<dir>`` is ``--models-dir``, else ``$FATOOLS_MODELS``, else
``$XDG_CACHE_HOME/fatools/models`` (``~/.cache/fatools/models``).  A directory filled
on a connected machine can be copied as is to one without network.

What the store does: where a model lives, its ``source.json`` record and hash, whether
it is present and unchanged (``require``), putting a complete file in place
(``install``, ``install_written``, ``import_model``) and checking that a file loads
(``validate``).  Getting a file from the network is ``fetch.py``'s, which installs
through this module; the store knows nothing of downloading.

Files only ever appear under their final name complete: downloads, imports and
conversions are written to a temporary name in the same directory, fsynced, then
renamed (``derived.publish``), so many jobs may share a store and a crash leaves at most
a dot-named temporary file (``fa-models verify`` reports it).  Files are made mode 0644
and directories 0755 whatever the umask: readable by the lab, writable by the owner only
(a model file is code the lab runs).  torch and facetorch are imported only inside the
functions that need them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fatools.errors import FatoolsError, ModelMissingError
from fatools.models import catalogue, derived
from fatools.models.catalogue import MODELS, ModelSpec
from fatools.models.derived import file_sha256
from fatools.versions import __version__

log = logging.getLogger("fatools")

SOURCE_FILE = "source.json"
META_KEYS = ("keypoints", "w_shp", "w_exp", "u_shp", "u_exp", "param_mean", "param_std")


def models_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The store directory: ``override``, else $FATOOLS_MODELS, else the user cache dir."""
    if override:
        return Path(os.path.abspath(os.path.expanduser(override)))
    env = os.environ.get("FATOOLS_MODELS")
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is to be ignored.
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "fatools" / "models"


def spec(name: str) -> ModelSpec:
    """The catalogue entry, or a FatoolsError naming the valid models."""
    try:
        return catalogue.get(name)
    except KeyError as exc:
        raise FatoolsError(str(exc.args[0])) from None


def model_path(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where model ``name`` lives (or would live) in the store."""
    return models_dir(root) / name / spec(name).filename


def is_present(name: str, root: str | os.PathLike[str] | None = None) -> bool:
    """True when the model file exists and is not empty."""
    path = model_path(name, root)
    return path.is_file() and path.stat().st_size > 0


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception as a short clause: ours whole, others' first sentence (libraries'
    network errors run to paragraphs)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FatoolsError):
        return text
    first = text.split(". ")[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def read_source(name: str, root: str | os.PathLike[str] | None = None) -> dict | None:
    """The model's source.json, or None when absent or unreadable."""
    path = model_path(name, root).parent / SOURCE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def record_source(
    name: str,
    root: str | os.PathLike[str] | None,
    source: str,
    origin: str,
    extra: dict[str, Any] | None = None,
) -> dict:
    """Write source.json for the installed file: its hash and how it got there.

    ``source`` is ``fetch``, ``import``, ``standin`` or ``unknown``; ``origin`` says from
    where (a URL-like source or the imported file's path).
    """
    path = model_path(name, root)
    stat = path.stat()
    info: dict[str, Any] = {
        "name": name,
        "file": path.name,
        "sha256": file_sha256(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "source": source,
        "from": origin,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fatools": __version__,
    }
    info.update(extra or {})
    derived.write_json_atomic(path.parent / SOURCE_FILE, info)
    return info


# sha256 of files hashed in this process, by what identifies their content cheaply: a
# store nobody may write to cannot cache a new mtime, and one run asks several times.
_hashed: dict[tuple[str, int, int, int], str] = {}
_warned: set[str] = set()


def _current_sha256(path: Path, stat: os.stat_result) -> str:
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _hashed:
        _hashed[key] = file_sha256(path)
    return _hashed[key]


def cache_record(path: Path, info: dict) -> None:
    """Write ``info`` to the model's source.json if the store lets us (a read-only store
    is read-only: nothing is written there, and a rehash then costs every process)."""
    target = path.parent / SOURCE_FILE
    try:
        if not os.access(path.parent, os.W_OK):
            raise PermissionError("read-only")
        derived.write_json_atomic(target, info)
    except OSError as exc:
        log.debug("cannot cache sha256 in %s: %s", target, exc)
        if str(path) not in _warned:
            _warned.add(str(path))
            log.warning(
                "%s: hashed again (%.0f MB) because its size or mtime is not the one %s records, and the "
                "store is read-only here; run `fa-models verify` once where it is writable to cache it",
                path,
                path.stat().st_size / 1e6,
                target,
            )


def _hash_info(name: str, root: str | os.PathLike[str] | None) -> dict:
    """source.json of a present file with ``sha256``/``size`` the file's as it is now and
    ``recorded_sha256`` what source.json recorded; they differ when the file changed.

    The file is hashed only when its size or mtime is not the one source.json holds (a
    stat otherwise).  A rehash that finds the recorded content caches the new mtime; one
    that does not leaves the record alone: it is what the file is checked against.  A file
    copied in without a record gets one (source ``unknown``) on first sight.
    """
    path = model_path(name, root)
    stat = path.stat()
    record = read_source(name, root) or {}
    recorded = record.get("sha256")
    if recorded and record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        return dict(record, recorded_sha256=recorded)
    digest = _current_sha256(path, stat)
    info = dict(record, sha256=digest, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    if recorded is None or recorded == digest:
        info.setdefault("name", name)
        info.setdefault("file", path.name)
        info.setdefault("source", "unknown")
        cache_record(path, info)
    return dict(info, recorded_sha256=recorded or digest)


def status(root: str | os.PathLike[str] | None = None) -> list[dict]:
    """One dict per catalogue model: name, task, present, path, size, sha256, source, ..."""
    rows = []
    for name, entry in MODELS.items():
        path = model_path(name, root)
        row: dict[str, Any] = {
            "name": name,
            "task": entry.task,
            "present": is_present(name, root),
            "path": str(path),
            "size": None,
            "sha256": None,
            "source": None,
            "from": None,
            "when": None,
            "upstream": entry.source_url,
            "description": entry.description,
        }
        if row["present"]:
            info = _hash_info(name, root)
            row.update(
                size=info.get("size"),
                sha256=info.get("sha256"),
                source=info.get("source"),
                **{"from": info.get("from"), "when": info.get("when")},
            )
        rows.append(row)
    return rows


def what_to_do(names: Iterable[str], root: str | os.PathLike[str] | None = None) -> str:
    """The advice every missing-model message ends with."""
    listed = " ".join(names) or "NAME"
    return (
        f"run `fa-models fetch {listed}` on a machine with network (then copy the directory "
        f"{models_dir(root)} here), or `fa-models import NAME FILE`; or set FATOOLS_MODELS "
        "to a directory that has them"
    )


def require(names: Iterable[str], root: str | os.PathLike[str] | None = None, *, verify: bool = True) -> None:
    """Raise ModelMissingError naming every absent model, its path and what to do; with
    ``verify``, a FatoolsError naming every file that is not what its source.json records.

    Every command calls this before any work, so a missing or changed model stops it at
    once rather than after decoding half a video (or after facetorch tries the network).
    Verifying costs a stat per model unless a file's size or mtime moved (then a rehash).
    """
    names = list(dict.fromkeys(names))
    missing = [name for name in names if not is_present(name, root)]
    if missing:
        listed = ", ".join(f"{name} ({model_path(name, root)})" for name in missing)
        noun = "models" if len(missing) > 1 else "model"
        raise ModelMissingError(f"{noun} not in the store: {listed}; {what_to_do(missing, root)}")
    if not verify:
        return
    changed: list[str] = []
    items: list[str] = []
    for name in names:
        info = _hash_info(name, root)
        if info["sha256"] != info["recorded_sha256"]:
            changed.append(name)
            items.append(
                f"{model_path(name, root)} (sha256 {info['sha256'][:12]}, recorded "
                f"{info['recorded_sha256'][:12]})"
            )
    if changed:
        raise FatoolsError(
            f"changed since the store recorded {'them' if len(changed) > 1 else 'it'}: {', '.join(items)}; "
            f"fetch or import again (`fa-models fetch --force {' '.join(changed)}`), see `fa-models verify`, "
            "or give --no-verify to use the files as they are"
        )


def install(
    name: str,
    prepared: str | os.PathLike[str],
    root: str | os.PathLike[str] | None,
    source: str,
    origin: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Move a complete file (in the store's directory) under its final name; record it."""
    final = model_path(name, root)
    derived.publish(Path(prepared), final)
    record_source(name, root, source, origin, extra)
    return final


def install_written(
    name: str,
    root: str | os.PathLike[str] | None,
    write: Callable[[Path], None],
    source: str,
    origin: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Install model ``name`` from what ``write(path)`` writes to a temporary file in its
    store directory: a failed or interrupted write leaves nothing under the final name."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{source}-", suffix=".tmp", dir=model_directory(name, root))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        return install(name, tmp, root, source, origin, extra)
    finally:
        tmp.unlink(missing_ok=True)


def model_directory(name: str, root: str | os.PathLike[str] | None) -> Path:
    """Model ``name``'s directory in the store, made if absent; a FatoolsError saying what
    to do when it cannot be made."""
    directory = model_path(name, root).parent
    try:
        derived.make_dirs(directory)
    except OSError as exc:
        raise FatoolsError(
            f"{directory}: cannot create the model directory ({exc.strerror}); "
            "choose a writable store with --models-dir or FATOOLS_MODELS"
        ) from None
    return directory


def validate(name: str, path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is usable as model ``name``: what facetorch will load must load."""
    entry = spec(name)
    import torch

    if name == "align-meta":
        import pickle

        keys = ", ".join(META_KEYS)
        try:
            # weights_only: a pickle may carry callables that run as it loads; the meta
            # file is a dict of tensors and needs none (torch >= 2.6 loads so by default,
            # which is how facetorch reads it at run time).
            meta = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            text = str(exc)
            # torch names the callable it refused ("Unsupported class" in its older wording).
            found = re.search(r"(?:GLOBAL|Unsupported class) ([\w.]+)", text)
            if isinstance(exc, pickle.UnpicklingError) and found:
                raise FatoolsError(
                    f"{path}: refused, it would call {found.group(1)} while loading (a pickle can run code); "
                    f"expected facetorch's meta.pt, a torch.save'd dict of tensors with keys {keys}"
                ) from None
            # torch's weights-only errors open with a paragraph of advice; the cause is further on.
            cause = re.search(r"WeightsUnpickler error:\s*(.+)", text)
            raise FatoolsError(
                f"{path}: not a 3DMM meta file ({cause.group(1).strip() if cause else one_line(exc)}); "
                f"expected facetorch's meta.pt, a torch.save'd dict with keys {keys}"
            ) from None
        absent = [key for key in META_KEYS if not isinstance(meta, dict) or key not in meta]
        if absent:
            raise FatoolsError(
                f"{path}: not a 3DMM meta file (missing {', '.join(absent)}); expected facetorch's "
                f"meta.pt, a torch.save'd dict with keys {keys}"
            )
        return
    try:
        from fatools.models.torchscript import quiet_torchscript

        with quiet_torchscript():
            torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise FatoolsError(
            f"{path}: not a TorchScript model ({one_line(exc)}); expected facetorch's "
            f"{entry.filename} for {name} from {entry.source_url}"
        ) from None


def import_model(name: str, file: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Install a model file carried over by hand, after checking that it loads.

    For ``retinaface-mnet`` the file is the published ``.pth`` state dict, converted
    here to facetorch's TorchScript form.
    """
    entry = spec(name)
    src = Path(file)
    if not src.is_file():
        raise FatoolsError(f"{file}: no such file; give the path of the {name} file to import")
    directory = model_directory(name, root)
    fd, tmp_name = tempfile.mkstemp(prefix=".import-", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    extra: dict[str, Any] = {}
    try:
        if entry.source_kind == catalogue.WHEEL:
            from fatools.models import retinaface_mnet

            # convert() refuses anything but the pinned .pth, with its own message.
            try:
                retinaface_mnet.convert(src, tmp)
            except FatoolsError:
                raise
            except Exception as exc:
                raise FatoolsError(
                    f"{src}: cannot convert to {name} ({one_line(exc)}); expected the published "
                    f"RetinaFace-MobileNet0.25 state dict mobilenet0.25_Final.pth"
                ) from None
            extra["source_sha256"] = file_sha256(src)
        else:
            validate(name, src)
            shutil.copyfile(src, tmp)
        return install(name, tmp, root, "import", str(src.resolve()), extra)
    finally:
        tmp.unlink(missing_ok=True)


def file_record(name: str, root: str | os.PathLike[str] | None = None) -> dict:
    """source.json of a present model, its sha256 rehashed only when size or mtime moved."""
    return _hash_info(name, root)
