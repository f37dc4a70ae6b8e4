"""Comparing record streams field by field, with a tolerance for pixel fields and for
other numbers (models round differently across stacks, devices and batch sizes)."""

from __future__ import annotations

import math
from typing import Any

PIXEL_FIELDS = (".box", ".landmarks")


def differences(ours: Any, theirs: Any, pixels: float, values: float, path: str = "records") -> list[str]:
    """Every place where two records (or lists of them) differ beyond the tolerances:
    ``pixels`` for boxes and landmarks, ``values`` for every other number; the rest
    (labels, active sets, track ids, field names) must be equal."""
    problems: list[str] = []
    _compare(ours, theirs, path, problems, pixels, values)
    return problems


def _compare(ours: Any, theirs: Any, path: str, problems: list[str], pixels: float, values: float) -> None:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if set(ours) != set(theirs):
            problems.append(f"{path}: fields {sorted(set(ours) ^ set(theirs))} differ")
        for key in set(ours) & set(theirs):
            _compare(ours[key], theirs[key], f"{path}.{key}", problems, pixels, values)
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            problems.append(f"{path}: {len(ours)} vs {len(theirs)} items")
        # strict=False: a length difference is reported above, and the items both have still compared.
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            _compare(a, b, f"{path}[{i}]", problems, pixels, values)
    elif isinstance(ours, float) or isinstance(theirs, float):
        tolerance = pixels if any(name in path for name in PIXEL_FIELDS) else values
        if not math.isclose(float(ours), float(theirs), rel_tol=0, abs_tol=tolerance + 1e-9):
            problems.append(f"{path}: {ours} vs {theirs} (tolerance {tolerance})")
    elif ours != theirs:
        problems.append(f"{path}: {ours!r} vs {theirs!r}")
