"""Ready models for a request: the detector and the predictors, loaded once per process.

``load_models(request, detect, predict)`` resolves the request (``models.request``),
builds facetorch's detector and predictors from the one configuration it read, readies
each on its engine (``fatools.runtime.engine_for``) and returns a
``ModelSet``: what the stages receive, never paths.  Like a transformers ``pipeline``,
a model set is made once and used for every input: a batch, repeated
``fatools.analyze_video`` calls in a notebook and the test suite's in-process runs all
reuse it; fa-detect's detector and fa-predict's predictors are kept the same way
(``load_detector``, ``load_predictors``).  A process keeps the last
``FATOOLS_LOADED_MODELS`` of them (default 2: a detector and its predictors take about
1.5 GB with the real models) and makes one again when a file it was loaded from has
changed since.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fatools.models.request import ModelRequest, Resolution, resolve, stamps

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from fatools.detect import BatchDetector, DetectOptions
    from fatools.predict import FacePredictors, PredictOptions


@dataclass
class ModelSet:
    """A request's models, ready to run."""

    resolution: Resolution
    detector: BatchDetector
    predictors: FacePredictors | None

    @property
    def device(self) -> torch.device:
        return self.resolution.device

    @property
    def expression_labels(self) -> tuple[str, ...]:
        return self.resolution.expression_labels

    def files(self) -> list[dict]:
        """Name, task, path and sha256 of every model file (run.json, the exports' provenance)."""
        return self.resolution.records()

    def loaded_paths(self) -> list[str]:
        """The files the ready models were read from beyond the store's own (ONNX exports)."""
        predictors = _predictor_paths(self.predictors) if self.predictors is not None else []
        return _detector_paths(self.detector) + predictors


_lock = threading.Lock()
# key -> (what was built, the resolution it was built from, its files' stamps then)
_loaded: OrderedDict[tuple, tuple[Any, Resolution, tuple]] = OrderedDict()
T = TypeVar("T")
builds = 0  # model sets and parts built by this process (a test checks a batch builds one)


def _capacity() -> int:
    try:
        return max(0, int(os.environ.get("FATOOLS_LOADED_MODELS", "2")))
    except ValueError:
        return 2


def build_models(resolution: Resolution, detect: DetectOptions, predict: PredictOptions | None) -> ModelSet:
    """A new ModelSet for ``resolution`` (no cache): the predictors only when there are tasks."""
    from fatools.detect import detector_for
    from fatools.predict import predictors_for

    predictors = predictors_for(resolution, predict) if predict is not None and predict.tasks else None
    return ModelSet(resolution, detector_for(resolution, detect), predictors)


def load_models(
    request: ModelRequest, detect: DetectOptions, predict: PredictOptions | None = None
) -> ModelSet:
    """The ModelSet for ``request`` with these stage options, from this process's last
    ones when it is there and its files are unchanged."""
    resolution = resolve(request)
    return _kept(
        (request, detect, predict),
        resolution,
        lambda: build_models(resolution, detect, predict),
        ModelSet.loaded_paths,
    )


def load_detector(request: ModelRequest, options: DetectOptions) -> BatchDetector:
    """fa-detect's detector alone, kept like a ModelSet (a notebook or the test suite
    running fa-detect in one process again and again loads it once)."""
    from fatools.detect import detector_for

    resolution = resolve(request)
    return _kept(
        ("detector", request, options),
        resolution,
        lambda: detector_for(resolution, options),
        _detector_paths,
    )


def load_predictors(request: ModelRequest, options: PredictOptions) -> FacePredictors:
    """fa-predict's predictors alone, kept like a ModelSet."""
    from fatools.predict import predictors_for

    resolution = resolve(request)
    return _kept(
        ("predictors", request, options),
        resolution,
        lambda: predictors_for(resolution, options),
        _predictor_paths,
    )


def _detector_paths(detector: BatchDetector) -> list[str]:
    return _paths_of([detector.face_detector])


def _predictor_paths(predictors: FacePredictors) -> list[str]:
    return _paths_of(list(predictors.predictors.values()))


def _paths_of(owners: list[Any]) -> list[str]:
    """The files the ready models were read from beyond the store's own (ONNX exports)."""
    return [str(path) for owner in owners if (path := getattr(owner.model, "path", None)) is not None]


def _kept(key: tuple, resolution: Resolution, build: Callable[[], T], paths: Callable[[T], list[str]]) -> T:
    """What ``build`` makes for ``key``: this process's earlier one when its resolution is
    the current one and the files it was loaded from are unchanged, else a new one, kept."""
    global builds
    with _lock:
        known = _loaded.get(key)
        if known is not None and known[1] is resolution and stamps(paths(known[0])) == known[2]:
            _loaded.move_to_end(key)
            return known[0]
        _loaded.pop(key, None)
        made = build()
        builds += 1
        capacity = _capacity()
        if capacity:
            _loaded[key] = (made, resolution, stamps(paths(made)))
            while len(_loaded) > capacity:
                _loaded.popitem(last=False)
        return made


def forget() -> None:
    """Drop every kept model set and resolution (a test that changes a store in place)."""
    from fatools.models import request

    with _lock:
        _loaded.clear()
    request.forget()
