"""``fa-models verify``: rehash the store and say, per model, whether it is what was recorded.

Each model gets one status:

* ``ok``: the file is there and its sha256 is the one its source.json records (and, for
  a fetched file, the one the catalogue pins where it pins one);
* ``changed``: the file's size or sha256 is not the recorded one, or a fetched file's
  recorded hash is not the catalogue's pin;
* ``missing``: no file and no record: nothing of the model is in the store;
* ``damaged``: the model file is intact but a file derived from it (an ONNX export) is
  not the one its record describes (sha256 or size), or, for an export recorded before
  records held a hash, does not open in ONNX Runtime;
* ``partial``: something is there but not a whole model: a record without its file, a
  file without its record, an empty file, a temporary file left by an interrupted (or
  running) fetch, import or derivation, or a derived file without its record or the
  reverse.

Unlike the load-time check (a stat while size and mtime are the recorded ones), verify
always reads every file, derived ones included.  A file found intact under a new mtime
(a copy that did not keep times) has the new mtime cached, where the store is writable,
so later runs cost a stat again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fatools.models import catalogue, derived, fetch, store
from fatools.models.derived import DERIVED_DIR, info_path

STATUSES = ("ok", "changed", "missing", "damaged", "partial")


def stored_names(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Catalogue models the store has anything of (a directory), in catalogue order."""
    return [name for name in catalogue.MODELS if store.model_path(name, root).parent.is_dir()]


def _leftovers(directory: Path) -> list[str]:
    """Temporary names (dot-files: `.fetch-*`, `.import-*.tmp`, ...) in a model directory
    and its derived/ directory."""
    found = []
    for where in (directory, directory / DERIVED_DIR):
        if where.is_dir():
            found += [
                str(p.relative_to(directory)) for p in sorted(where.iterdir()) if p.name.startswith(".")
            ]
    return found


def _unpaired_derived(directory: Path) -> list[str]:
    """Derived files without their .json record, and records without their file."""
    derived = directory / DERIVED_DIR
    if not derived.is_dir():
        return []
    names = {p.name for p in derived.iterdir() if not p.name.startswith(".") and not p.name.endswith(".lock")}
    problems = []
    for name in sorted(names):
        path = derived / name
        if name.endswith(".json"):
            if not any(info_path(derived / other) == path for other in names if other != name):
                problems.append(f"{DERIVED_DIR}/{name} without its file")
        elif info_path(path).name not in names:
            problems.append(f"{DERIVED_DIR}/{name} without its record")
    return problems


def _damaged_derived(name: str, model_file: Path, source_sha256: str) -> list[str]:
    """A phrase for each derived file (with its record) that is not what the record says."""
    from fatools.models import onnx_export

    folder = model_file.parent / DERIVED_DIR
    if not folder.is_dir():
        return []
    try:  # the exports runs of this model file would use: made again by prepare --force
        current = {onnx_export.onnx_path(model_file, source_sha256, int8) for int8 in (False, True)}
    except Exception:
        current = set()
    problems = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix in (".json", ".lock"):
            continue
        info = derived.read_info(path)
        if info is None or info.get("error"):
            continue  # unpaired: partial (_unpaired_derived)
        why = derived.damage(path, info, rehash=True)
        if why is None and not info.get("sha256") and path.suffix == ".onnx":
            why = onnx_export.open_problem(path)  # recorded without a hash: does it open?
            why = None if why is None else f"does not open in ONNX Runtime: {why}"
        if why is None:
            continue
        remedy = (
            onnx_export.remake_hint(name, path)
            if path in current
            else "no run uses it (made from another model file or exporter): remove it and its .json"
        )
        problems.append(f"{path} is damaged ({why}); {remedy}")
    return problems


def verify_one(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The verdict on one model: name, status, path, problems (phrases), sha256 (the file's
    now), recorded_sha256, pinned_sha256 and source."""
    entry = store.spec(name)
    path = store.model_path(name, root)
    record = store.read_source(name, root)
    row: dict[str, Any] = {
        "name": name,
        "status": "ok",
        "path": str(path),
        "problems": [],
        "sha256": None,
        "recorded_sha256": (record or {}).get("sha256"),
        "pinned_sha256": entry.sha256,
        "source": (record or {}).get("source"),
    }
    problems: list[str] = row["problems"]
    partial = [
        f"leftover temporary {left} (an interrupted or running fetch, import or derivation; remove it "
        "if none runs)"
        for left in _leftovers(path.parent)
    ] + _unpaired_derived(path.parent)
    changed: list[str] = []
    if not path.is_file():
        if record is None and not partial:
            row["status"] = "missing"
            problems.append(f"not in the store; {store.what_to_do([name], root)}")
            return row
        partial.append(f"{store.SOURCE_FILE} without its file {path.name}" if record else f"no {path.name}")
    elif path.stat().st_size == 0:
        partial.append(f"{path.name} is empty")
    else:
        stat = path.stat()
        row["sha256"] = digest = store.file_sha256(path)
        if record is None:
            partial.append(
                f"no {store.SOURCE_FILE} (copied without its record): copy the whole model directory, "
                f"or `fa-models import {name} FILE`"
            )
        elif digest != record.get("sha256") or stat.st_size != record.get("size"):
            changed.append(
                f"sha256 {digest[:12]} and size {stat.st_size}, recorded {str(record.get('sha256'))[:12]} "
                f"and {record.get('size')}: fetch or import it again"
            )
        else:
            if record.get("mtime_ns") != stat.st_mtime_ns:
                store.cache_record(
                    path, dict(record, mtime_ns=stat.st_mtime_ns)
                )  # intact: cache the new mtime
            published = fetch.published_sha256(name, record)
            if record.get("source") == "fetch" and entry.sha256 and published != entry.sha256:
                changed.append(
                    f"fetched file has sha256 {str(published)[:12]}, not the {entry.sha256[:12]} the "
                    f"catalogue pins: `fa-models fetch --force {name}`"
                )
    damaged = _damaged_derived(name, path, row["sha256"]) if row["sha256"] and not changed else []
    if changed:
        row["status"] = "changed"
    elif damaged:
        row["status"] = "damaged"
    elif partial:
        row["status"] = "partial"
    problems += changed + damaged + partial
    return row


def verify(
    names: Iterable[str] | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[dict[str, Any]]:
    """``verify_one`` for each of ``names`` (default: every model the store has anything
    of), one at a time as each is hashed."""
    for name in dict.fromkeys(stored_names(root) if names is None else names):
        yield verify_one(name, root)
