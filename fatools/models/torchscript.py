"""The TorchScript boundary: every facetorch model is a TorchScript file, and torch is
retiring TorchScript.

Since torch 2.11 each ``torch.jit`` entry point (``load``, ``script``, ``trace``,
``freeze``, ``save``) warns ``FutureWarning: `torch.jit.X` is deprecated`` on every call,
and facetorch calls them while it builds a detector or predictor (``torch.jit.load`` of
the model, ``torch.jit.script`` of its torchvision transforms).  The API still works on
the newest torch (the whole suite runs on torch 2.14), so the warning tells a user
nothing they can act on: fatools silences exactly that message, only around the calls
that cause it (``quiet_torchscript``), and lets every other warning through.

Importing facetorch imports torchvision, whose ``torchvision.io`` warns since 0.29 that
its image codecs move to TorchCodec (fatools decodes with PyAV and OpenCV and never
calls them), and facetorch's logger imports ``pythonjsonlogger.jsonlogger``, renamed in
python-json-logger 3.1 (the old name still works).  ``import_facetorch`` imports
facetorch with those two messages silenced.

When facetorch's ``torch.export`` models (``.pt2``, facetorch 1.0, unreleased at the
time of writing) arrive, what changes here:

* the store's files and its verification: ``torch.export.load`` instead of
  ``torch.jit.load`` (``store.verify``), new file names and hashes in the catalogue;
* ``fatools.runtime.torch_engine``: ``torch.jit.freeze`` and the graph inspection that decides
  channels-last (``is_convolutional``) have no ``.pt2`` equivalent; an ExportedProgram
  is already functional (weights as inputs), so freezing is moot and the choice of
  channels-last reads ``exported.graph`` nodes (``aten.convolution`` vs ``aten.mm``);
  ``--int8`` moves from ``quantize_dynamic_jit`` to PT2E quantisation or ONNX Runtime;
* the RetinaFace-MobileNet0.25 conversion (``retinaface_mnet``) exports with
  ``torch.export.export`` and dynamic shapes instead of ``torch.jit.script``;
* the stand-ins (``fatools.testing``) are written as ``.pt2`` with the same contracts;
* ``quiet_torchscript`` goes away with the last ``torch.jit`` call.

The ONNX Runtime backend (the CPU-speed work) is the other way off TorchScript: it runs
models exported once from these same files.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# torch's own wording: "`torch.jit.load` is deprecated. Please switch to `torch.export`."
_TORCHSCRIPT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"
_IMPORT_DEPRECATIONS = (
    r"The image decoding and encoding capabilities of TorchVision are deprecated",
    r"pythonjsonlogger\.jsonlogger has been moved",
)


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence torch's deprecation notice of ``torch.jit`` for the calls inside, only it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TORCHSCRIPT_DEPRECATED, category=FutureWarning)
        yield


def import_facetorch() -> Any:
    """Import facetorch (and so torchvision) without their two known import-time notices,
    and without torch's compiler (``_dynamo_deferred``)."""
    from fatools.stack import require_facetorch

    require_facetorch()
    with warnings.catch_warnings(), _dynamo_deferred():
        for message in _IMPORT_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        import facetorch
    return facetorch


_DEFERRED = ("torch._dynamo", "torch._dynamo.utils")


@contextlib.contextmanager
def _dynamo_deferred() -> Iterator[None]:
    """Import torchvision without importing ``torch._dynamo`` (and sympy with it).

    torchvision's ``ops.roi_align`` does ``from torch._dynamo.utils import
    is_compile_supported`` at import time, which loads torch's whole compiler stack:
    about a second and a half of CPU on every start, for an operator no facetorch model
    fatools runs uses.  While facetorch imports, that name is a stand-in that imports
    the real function on first call; afterwards the stand-ins are gone, and anything that
    imports ``torch._dynamo`` later gets the real one.  Where torch or torchvision differ
    from what this expects (the real module already loaded, another attribute asked for
    at import time), the real import happens as before: only the saving is lost.
    """
    import importlib
    import sys
    import types

    import torch

    if any(name in sys.modules for name in _DEFERRED):
        yield
        return

    def is_compile_supported(*args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("torch._dynamo.utils").is_compile_supported(*args, **kwargs)

    class Deferred(types.ModuleType):
        utils: types.ModuleType  # set on the package below
        is_compile_supported: Callable[..., Any]  # set on torch._dynamo.utils below

        def __getattr__(self, attr: str) -> Any:  # anything else: the real module
            if attr.startswith("__"):
                raise AttributeError(attr)  # what inspect and importlib probe modules for
            _drop_stand_ins(torch)
            return getattr(importlib.import_module(self.__name__), attr)

    package, utils = Deferred("torch._dynamo"), Deferred("torch._dynamo.utils")
    package.__path__ = []  # a package, so "torch._dynamo.utils" resolves to the stand-in
    package.utils = utils
    utils.is_compile_supported = is_compile_supported
    sys.modules.update({"torch._dynamo": package, "torch._dynamo.utils": utils})
    try:
        yield
    finally:
        if sys.modules.get("torch._dynamo") is package:
            _drop_stand_ins(torch)


def _drop_stand_ins(torch: Any) -> None:
    import sys

    for name in _DEFERRED:
        module = sys.modules.get(name)
        if module is not None and type(module).__name__ == "Deferred":
            del sys.modules[name]
    if type(torch.__dict__.get("_dynamo")).__name__ == "Deferred":
        del torch._dynamo


def instantiate(node: Any) -> Any:
    """``hydra.utils.instantiate`` of a facetorch component (detector, predictor, unifier):
    facetorch loads its TorchScript model and scripts its transforms while it builds one."""
    import_facetorch()
    from hydra.utils import instantiate as hydra_instantiate

    with quiet_torchscript():
        return hydra_instantiate(node)
