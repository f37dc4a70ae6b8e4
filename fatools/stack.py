"""The software stack fatools runs on: what is installed, and what is missing.

fatools installs facetorch 0.6.2 with ``--no-deps`` (its ``torch<2.4`` is stale; fatools
declares facetorch's real runtime dependencies itself), so a user who installs fatools
some other way can end up without facetorch.  ``require_facetorch`` turns that into one
line saying what to install; ``describe`` is what ``fa-models doctor`` prints, so a bug
report carries the whole stack.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib import metadata
from typing import Any

from fatools.errors import FatoolsError

FACETORCH = "facetorch==0.6.2"
INSTALL_HINT = f"pip install --no-deps '{FACETORCH}'"


class FacetorchMissingError(FatoolsError, ImportError):
    """facetorch is not importable in this Python environment."""


def require_facetorch() -> None:
    """Raise a one-line, actionable error when facetorch is not installed."""
    try:
        missing = importlib.util.find_spec("facetorch") is None
    except ValueError:  # sys.modules holds None for it: an import that was blocked
        missing = True
    if missing:
        raise FacetorchMissingError(
            f"facetorch is not installed in {sys.prefix}: run `{INSTALL_HINT}` "
            "(fatools already brings its dependencies; see the README's Install section)"
        )


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# Distribution names, in the order a bug report wants them.
_PACKAGES = (
    ("fatools", "fatools"),
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("numpy", "numpy"),
    ("facetorch", "facetorch"),
    ("PyAV", "av"),
    ("OpenCV", "opencv-python-headless"),
    ("ONNX Runtime", "onnxruntime"),
    ("timm", "timm"),
    ("hydra-core", "hydra-core"),
    ("pandas", "pandas"),
)


def describe(device: str = "auto") -> dict[str, Any]:
    """Versions of Python and every library fatools leans on, torch's CUDA, and the device.

    Imports torch (to read its CUDA build and find a GPU); nothing else is imported.
    """
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
    }
    for label, distribution in _PACKAGES:
        info[label] = _version(distribution)
    if info["OpenCV"] is None:  # the full (GUI) build serves as well
        info["OpenCV"] = _version("opencv-python")
    info["stack"] = _stack_name(info)
    try:
        import torch
    except Exception as exc:
        info["torch_error"] = f"{type(exc).__name__}: {exc}"
        return info
    info["torch_cuda"] = torch.version.cuda
    info["cuda_available"] = torch.cuda.is_available()
    info["gpus"] = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if info["cuda_available"]
        else []
    )
    from fatools.devices import resolve_device

    try:
        info["device"] = str(resolve_device(device))
    except FatoolsError as exc:
        info["device"] = f"none ({exc})"
    return info


def _stack_name(info: dict[str, Any]) -> str:
    """'pinned' on facetorch's declared torch (< 2.4), else 'current'."""
    torch_version = info.get("torch") or ""
    try:
        major, minor = (int(part) for part in torch_version.split(".")[:2])
    except ValueError:
        return "unknown"
    return "pinned" if (major, minor) < (2, 4) else "current"
