"""Timing instrumentation: a clock of labelled seconds, every facetorch model's forward
timed in place, and wrappers for the methods of a side's stages."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Stat:
    seconds: float = 0.0
    calls: int = 0
    items: int = 0


@dataclass
class Clock:
    """Accumulated seconds per label, for one timed run."""

    stats: dict[str, Stat] = field(default_factory=lambda: defaultdict(Stat))
    sync: Callable[[], None] = lambda: None

    def reset(self) -> None:
        self.stats = defaultdict(Stat)

    def add(self, label: str, seconds: float, items: int = 0) -> None:
        stat = self.stats[label]
        stat.seconds += seconds
        stat.calls += 1
        stat.items += items

    def snapshot(self) -> dict[str, dict]:
        return {
            k: {"seconds": round(v.seconds, 4), "calls": v.calls, "items": v.items}
            for k, v in self.stats.items()
        }


class _TimedModel:
    """Stands in for a facetorch model's ``.model`` (the TorchScript module): times each forward."""

    def __init__(self, module: Any, clock: Clock, label: str) -> None:
        self._module, self._clock, self._label = module, clock, label

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self._clock.sync()
        start = time.perf_counter()
        out = self._module(x, *args, **kwargs)
        self._clock.sync()
        self._clock.add(self._label, time.perf_counter() - start, int(getattr(x, "shape", [0])[0]))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _find_models(root: Any, depth: int = 5) -> list[Any]:
    """Every facetorch BaseModel (detector, predictors) reachable from ``root``'s attributes."""
    import numpy as np
    import torch
    from facetorch.base import BaseModel
    from omegaconf import DictConfig, ListConfig

    found: list[Any] = []
    seen: set[int] = set()

    def walk(obj: Any, left: int) -> None:
        if left < 0 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, BaseModel):
            found.append(obj)
            return
        if isinstance(
            obj, (torch.nn.Module, torch.Tensor, np.ndarray, DictConfig, ListConfig, type, str, bytes)
        ):
            return
        if isinstance(obj, dict):
            children = list(obj.values())
        elif isinstance(obj, (list, tuple)):
            children = list(obj)
        elif hasattr(obj, "__dict__"):
            children = list(vars(obj).values())
        else:
            return
        for child in children:
            walk(child, left - 1)

    walk(root, depth)
    return found


def instrument_models(root: Any, clock: Clock) -> list[str]:
    """Time every model forward under ``root``; labels are the store names (``au``, ``retinaface-mnet``...)."""
    labels = []
    for model in _find_models(root):
        if isinstance(model.model, _TimedModel):
            continue
        label = Path(str(model.path_local)).parent.name
        model.model = _TimedModel(model.model, clock, label)
        labels.append(label)
    return labels


def time_method(
    obj: Any, name: str, clock: Clock, label: str, items: Callable[[Any], int] | None = None
) -> bool:
    """Wrap ``obj.name`` (an instance method) to add its wall time to ``clock[label]``; False if absent."""
    method = getattr(obj, name, None)
    if method is None or not callable(method):
        return False

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            clock.add(label, time.perf_counter() - start, items(args[0]) if items and args else 0)

    setattr(obj, name, timed)
    return True


def sync_for(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None
