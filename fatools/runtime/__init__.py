"""The runtimes the models run on, and which one a request gets.

Each runtime is an ``Engine`` (``fatools.runtime.engine``) that readies a loaded
facetorch model from its ``ModelFile``: ``torch`` (``torch_engine.TorchEngine``,
facetorch's TorchScript, frozen and channels-last, in the request's precision) and
``onnx`` (``onnx_engine.OnnxEngine``, the model's checked ONNX export on ONNX Runtime,
falling back to torch with one line saying why).  ``engine_for(name)`` gives the engine
of a resolution's ``backend``; another runtime is one more class named there.

On a CPU, ``auto`` (the default) runs every model on ONNX Runtime: measured on each
model at fa-run's batch sizes, its MLAS kernels beat torch's (MKL's float32 GEMMs and
oneDNN's convolutions) on every model, on both CPUs these machines have (AMD EPYC with
AVX2 only: AU 1.4x, FER 1.5x, VA 1.8x, align 3x, RetinaFace-MobileNet0.25 1.6-2x,
RetinaFace-ResNet-50 1.03x; AMD EPYC with AVX-512: AU 2x; benchmarks/README.md), at
outputs within 1e-4 of torch's.  On CUDA ``auto`` is torch (fatools does not install
ONNX Runtime's CUDA build).  ``torch`` is facetorch's own way, as loaded.
"""

from __future__ import annotations

from typing import Any

from fatools.errors import FatoolsError
from fatools.models.onnx_export import onnxruntime_available
from fatools.runtime.engine import Engine, InputFormat, ReadyModel

__all__ = ["BACKENDS", "Engine", "InputFormat", "ReadyModel", "engine_for", "resolve_backend"]

BACKENDS = ("auto", "torch", "onnx")


def resolve_backend(spec: str, device: Any) -> str:
    """``torch`` or ``onnx`` for ``--backend spec`` on ``device`` (a torch.device)."""
    spec = (spec or "auto").lower()
    if spec not in BACKENDS:
        raise FatoolsError(f"--backend {spec}: choose one of {', '.join(BACKENDS)}")
    on_cpu = getattr(device, "type", str(device)) == "cpu"
    if spec == "torch":
        return "torch"
    if spec == "onnx":
        if not on_cpu:
            raise FatoolsError(
                f"--backend onnx runs on the CPU only; use --backend torch (or auto) on {device}"
            )
        if not onnxruntime_available():
            raise FatoolsError(
                "--backend onnx needs onnxruntime and onnx: pip install onnxruntime onnx "
                "(or use --backend torch)"
            )
        return "onnx"
    if on_cpu and onnxruntime_available():
        return "onnx"
    return "torch"


def engine_for(name: str) -> Engine:
    """The engine of a resolved backend (``resolve_backend``'s ``torch`` or ``onnx``)."""
    if name == "torch":
        from fatools.runtime.torch_engine import TorchEngine

        return TorchEngine()
    if name == "onnx":
        from fatools.runtime.onnx_engine import OnnxEngine

        return OnnxEngine()
    raise FatoolsError(f"no engine runs backend {name!r}: choose one of torch, onnx")
