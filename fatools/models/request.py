"""What a run asks of its models, and what that request resolves to, each made once.

A ``ModelRequest`` is frozen: the detector, the tasks, the device, the engine, the
precision, the configuration and how far it is trusted, the store and whether to verify
it.  ``run_options`` and the commands' shared options build one; nothing downstream reads
those options again to decide about models.

``resolve(request)`` turns it into a ``Resolution`` without loading any model: the
configuration read once (the detector a short-form file names included: the detector
that runs, and that run.json names, is the resolution's), the device and the engine
chosen once, the store checked once (every missing or changed file named in one
message), and each component's file (name, task, path, sha256) and the expression labels
taken from it.  A process asks again for the same request (a batch, a notebook, the test
suite) and gets the same resolution, checked again by a stat of each file it names: a
file that moved is resolved, and so verified, anew.

``fatools.models.loading`` builds the ready models from a resolution (``ModelSet``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fatools.models import catalogue
from fatools.models.catalogue import ModelFile

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from omegaconf import DictConfig


@dataclass(frozen=True)
class ModelRequest:
    """What a run asks of its models."""

    detector: str | None = None  # None: the one a short-form --config names, else retinaface
    tasks: tuple[str, ...] = catalogue.DEFAULT_TASKS  # predictors; () for detection only
    detection: bool = True  # False: predictors only (fa-predict), no detector file needed
    device: str = "auto"
    backend: str = "auto"  # auto, torch or onnx (fatools.runtime)
    optimize: bool = True
    fp16: bool = False
    int8: bool = False
    bf16: bool = False
    config_path: str | None = None
    trust_config: bool = False
    models_dir: str | None = None
    verify: bool = True


@dataclass(frozen=True)
class Resolution:
    """A request resolved: its configuration, device, engine and files, no model loaded."""

    request: ModelRequest
    detector: str  # the detector that runs (after --detector and a short-form file): run.json's
    config: DictConfig  # facetorch's configuration trimmed to the request (detector and tasks)
    config_sha256: str  # the sha256 of the --config file's bytes; "bundled" without one
    device: torch.device
    backend: str  # torch or onnx, for every model of the run
    files: tuple[ModelFile, ...]
    expression_labels: tuple[str, ...]

    def file(self, task: str) -> ModelFile | None:
        return next((f for f in self.files if f.task == task), None)

    def predictor_files(self) -> tuple[ModelFile, ...]:
        return tuple(f for f in self.files if f.task != "detector")

    def records(self) -> list[dict]:
        return [f.as_record() for f in self.files]

    def hashes(self) -> list[dict]:
        """Name and sha256 of each model: what a result depends on."""
        return [{"name": f.name, "sha256": f.sha256} for f in self.files]


_lock = threading.Lock()
_resolved: dict[ModelRequest, tuple[Resolution, tuple]] = {}


def stamps(paths: Iterable[str | os.PathLike[str]]) -> tuple:
    """What a stat of each path says (size, mtime, inode; None when gone), to notice a file
    that moved since."""
    out: list[tuple[str, None] | tuple[str, int, int, int]] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            out.append((str(path), None))
            continue
        out.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(out)


def _stats(files: tuple[ModelFile, ...]) -> tuple:
    """The stamps of each file a resolution names and of its source.json."""
    return stamps(path for file in files for path in (file.path, file.path.parent / "source.json"))


def resolve(request: ModelRequest) -> Resolution:
    """``request`` resolved (see the module's description); the same object for the same
    request while the files it names stay as they were."""
    with _lock:
        known = _resolved.get(request)
        if known is not None and _stats(known[0].files) == known[1]:
            return known[0]
        resolution = _resolve(request)
        _resolved[request] = (resolution, _stats(resolution.files))
        return resolution


def forget() -> None:
    """Drop every remembered resolution (for tests that change a store in place)."""
    with _lock:
        _resolved.clear()


def _resolve(request: ModelRequest) -> Resolution:
    from fatools.devices import resolve_device
    from fatools.models import config as model_config
    from fatools.models import store
    from fatools.runtime import resolve_backend

    device = resolve_device(request.device)
    source = model_config.read_config(request.config_path, request.trust_config)
    config_sha256 = "bundled"
    if request.config_path is not None:
        config_sha256 = hashlib.sha256(Path(request.config_path).read_bytes()).hexdigest()
    labels = model_config.labels_of(source[0])  # before the trimming drops fer
    detector = model_config.chosen_detector(request.detector, source[1], request.config_path)
    cfg = model_config.load_config(
        request.config_path,
        device=str(device),
        tasks=list(request.tasks),
        detector=detector,
        root=request.models_dir,
        trust=request.trust_config,
        source=source,
    )
    names = [
        name
        for name in model_config.required_models(cfg)
        if request.detection or catalogue.MODELS[name].task != "detector"
    ]
    store.require(names, request.models_dir, verify=request.verify)
    files = tuple(
        ModelFile(
            name,
            catalogue.MODELS[name].task,
            store.model_path(name, request.models_dir),
            store.file_record(name, request.models_dir)["sha256"],
        )
        for name in names
    )
    return Resolution(
        request=request,
        detector=detector,
        config=cfg,
        config_sha256=config_sha256,
        device=device,
        backend=resolve_backend(request.backend, device),
        files=files,
        expression_labels=labels,
    )
