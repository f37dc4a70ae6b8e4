"""The inputs of a batch: what fa-run was given, expanded into analyses, each with an
output directory of its own, and the share of them one shard runs.

* A video file or an image file is one input.
* A folder is searched at every depth: each video in it is an input, and each folder
  (the given one or any below it) that holds image files directly is one input of
  stills (one "video" with no timestamps, as fa-frames reads a folder of images).
* ``--from FILE`` adds one path per line (``-``: standard input; blank lines and lines
  starting with ``#`` are skipped); a listed folder is searched as above.

Output layout (``layout``): a single input writes straight into the output directory;
several inputs write into ``OUT/REL``, where REL is the input's path relative to the
deepest folder holding all inputs, without the video's extension (a folder of stills
keeps its name).  Two inputs that would share a directory (``v.mp4`` and ``v.mov``)
keep their extension instead (``v.mp4/``, ``v.mov/``), so no two inputs ever share one.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fatools.errors import FatoolsError
from fatools.video import IMAGE_EXTENSIONS, is_image_path

VIDEO_EXTENSIONS = {
    ".mp4",
    ".mov",
    ".m4v",
    ".avi",
    ".mkv",
    ".webm",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".mts",
    ".m2ts",
    ".ts",
    ".3gp",
    ".ogv",
}


class InputError(FatoolsError):
    """An input that does not exist or cannot be read."""


@dataclass(frozen=True)
class Input:
    """One analysis: a video, an image, or a folder of stills."""

    path: str  # as given (a folder of stills: the folder)
    kind: str  # "video", "image" or "images"


def is_video_path(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def input_kind(path: str) -> str:
    """'images' for a folder, 'image' for an image file, else 'video'.  A file given by name
    is a video whatever its extension (the decoder is the judge); only a folder's search
    (``expand``) asks for a video extension, to pass over the other files a folder holds."""
    if os.path.isdir(path):
        return "images"
    if is_image_path(path):
        return "image"
    return "video"


def read_list(source: str) -> list[str]:
    """The paths of a ``--from`` list (``-``: standard input)."""
    try:
        if source == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(source, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
    except OSError as exc:
        raise InputError(f"{source}: cannot read the list of inputs ({exc.strerror})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _search(folder: str) -> list[Input]:
    """Videos at every depth, and each folder with images directly in it as one input."""
    found: list[Input] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        files.sort()
        if any(is_image_path(name) for name in files):
            found.append(Input(root, "images"))
        found.extend(Input(os.path.join(root, name), "video") for name in files if is_video_path(name))
    return found


def expand(paths: Iterable[str]) -> list[Input]:
    """Every input the paths name, in order, each once; InputError names a path that is
    missing, unreadable or (a folder) holds no videos and no images."""
    inputs: list[Input] = []
    seen: set[str] = set()
    for path in paths:
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file or folder; check the path")
        if os.path.isdir(path):
            if not os.access(path, os.R_OK | os.X_OK):
                raise InputError(f"{path}: cannot read this folder (permissions)")
            found = _search(path)
            if not found:
                raise InputError(
                    f"{path}: no videos ({', '.join(sorted(VIDEO_EXTENSIONS))}) and no images "
                    f"({', '.join(sorted(IMAGE_EXTENSIONS))}) in this folder or below"
                )
        else:
            if not os.access(path, os.R_OK):
                raise InputError(f"{path}: cannot read this file (permissions)")
            found = [Input(path, input_kind(path))]
        for item in found:
            key = os.path.realpath(item.path)
            if key not in seen:
                seen.add(key)
                inputs.append(item)
    return inputs


def layout(inputs: list[Input], out_dir: str) -> list[str]:
    """The output directory of each input (see the module's description)."""
    if len(inputs) == 1:
        return [out_dir]
    absolute = [os.path.abspath(item.path) for item in inputs]
    root = os.path.commonpath(
        [os.path.dirname(p) if item.kind != "images" else p for p, item in zip(absolute, inputs, strict=True)]
    )
    if any(
        os.path.normpath(p) == root for p, item in zip(absolute, inputs, strict=True) if item.kind == "images"
    ):
        root = os.path.dirname(root)  # a folder of stills names its own directory
    rel = []
    for path, item in zip(absolute, inputs, strict=True):
        relative = os.path.relpath(path, root)
        rel.append(relative if item.kind == "images" else os.path.splitext(relative)[0])
    counts: dict[str, int] = {}
    for name in rel:
        counts[name] = counts.get(name, 0) + 1
    names = [
        os.path.relpath(p, root) if counts[name] > 1 else name for name, p in zip(rel, absolute, strict=True)
    ]
    return [os.path.join(out_dir, name) for name in names]


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (0 <= K < N) as (K, N); ValueError otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text}: give K/N, e.g. 0/4 (K from 0 to N-1)") from None
    if not 0 <= k < n:
        raise ValueError(f"--shard {text}: K must be from 0 to N-1")
    return k, n


def shard(keys: list[str], k: int, n: int) -> list[int]:
    """The indices of shard K of N: the keys sorted, then every Nth from the Kth, so that N
    shards cover every key exactly once whatever order the keys came in."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    return sorted(order[k::n])


def fingerprint(item: Input) -> dict:
    """Size and a content fingerprint: sha256 of the size and the first, middle and last MiB
    of each file (a whole hour of video is not read for it); a folder of stills hashes
    each image's name, size and first 64 KiB."""
    from fatools.live import is_live

    if is_live(item.path):
        return {"size": None, "sha256_sampled": None, "live": True}  # a stream has no content to fingerprint
    digest = hashlib.sha256()
    if item.kind == "images":
        size = 0
        for name in sorted(os.listdir(item.path)):
            path = os.path.join(item.path, name)
            if not is_image_path(name) or not os.path.isfile(path):
                continue
            stat = os.stat(path)
            size += stat.st_size
            digest.update(f"{name}\0{stat.st_size}\0".encode())
            with open(path, "rb") as handle:
                digest.update(handle.read(64 * 1024))
        return {"size": size, "sha256_sampled": digest.hexdigest()}
    size = os.path.getsize(item.path)
    digest.update(str(size).encode())
    chunk = 1 << 20
    with open(item.path, "rb") as handle:
        for offset in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            handle.seek(offset)
            digest.update(handle.read(chunk))
    return {"size": size, "sha256_sampled": digest.hexdigest()}
