"""Stand-in models so that fatools runs, end to end and offline, without the real weights.

``build_standins(DIR)`` (or ``python -m fatools.testing DIR``) fills a model store with a
TorchScript stand-in for every catalogue model, each with the real model's input/output
contract, loaded by facetorch's own code like the real file:

* detectors (``retinaface``, ``retinaface-mnet``): find bright, near-white, axis-aligned
  rectangles on a dark background and report them as faces (boxes exact to a pixel);
* ``au`` ``[B, 41]`` in [0, 1], ``fer`` ``[B, 8]`` logits, ``va`` ``[B, 2]`` in [-1, 1],
  ``align`` ``[B, 62]`` normalised 3DMM parameters, ``embed`` ``[B, 512]``;
* ``align-meta``: a small synthetic 3DMM meta file giving a plausible 68-point face.

Point ``FATOOLS_MODELS`` (or ``--models-dir``) at the directory to use them.

This package is all of the stand-in code: this module writes them into a store, and
``detector``, ``predictors`` and ``meta3dmm`` build them; ``__main__`` is the
``python -m fatools.testing`` entry point.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from fatools.models import store
from fatools.models.catalogue import MODELS

log = logging.getLogger("fatools")


def standin_bytes(name: str) -> bytes:
    """The stand-in file for model ``name``, as bytes.

    Saved through a buffer because torch names the zip archive inside after the file
    it writes to: a buffer keeps the bytes, and so the sha256, the same on every build.
    """
    import torch

    from fatools.models.torchscript import quiet_torchscript
    from fatools.testing import detector, meta3dmm, predictors

    task = MODELS[name].task
    buffer = io.BytesIO()
    with quiet_torchscript():
        if name == "align-meta":
            torch.save(meta3dmm.build_meta(), buffer)
        elif task == "detector":
            torch.jit.save(detector.build_detector(), buffer)
        else:
            torch.jit.save(predictors.build_predictor(task), buffer)
    return buffer.getvalue()


def build_standins(directory: str | os.PathLike[str], names: Iterable[str] | None = None) -> dict[str, Path]:
    """Write stand-ins for ``names`` (default: every catalogue model) into the store at
    ``directory``, replacing what is there; return name -> installed path."""
    written: dict[str, Path] = {}
    for name in names if names is not None else MODELS:
        store.spec(name)  # a FatoolsError for unknown names, before writing anything
        content = standin_bytes(name)

        def write(path: Path, content: bytes = content) -> None:  # bound now, not at the loop's end
            path.write_bytes(content)

        written[name] = store.install_written(name, directory, write, "standin", "fatools.testing")
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m fatools.testing DIR [NAME...]``: stand-ins into DIR, report on stderr."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m fatools.testing DIR [NAME...]", file=sys.stderr)
        print("Write stand-in models for offline tests into the model store DIR.", file=sys.stderr)
        return 0 if args else 2
    return run_builder("fatools.testing", lambda: build_standins(args[0], args[1:] or None))


def run_builder(prog: str, build: Callable[[], dict[str, Path]]) -> int:
    """Exit status of a ``python -m`` store builder: a line per model written, or one error line."""
    try:
        written = build()
    except Exception as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    for name, path in written.items():
        print(f"{prog}: {name}: {path}", file=sys.stderr)
    return 0
