"""The versions of the packages that make a result, for run records and reports."""

from __future__ import annotations

from importlib import metadata

__version__ = "0.2.0"

PACKAGES = ("fatools", "facetorch", "torch", "onnxruntime")


def package_versions() -> dict[str, str | None]:
    """Each package's installed version (None: not installed); nothing is imported."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
