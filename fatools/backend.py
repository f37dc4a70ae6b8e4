"""Which engine runs the models: torch (facetorch's TorchScript) or ONNX Runtime.

On a CPU, ``auto`` (the default) runs every model on ONNX Runtime: measured on each
model at fa-run's batch sizes, its MLAS kernels beat torch's (MKL's float32 GEMMs and
oneDNN's convolutions) on every model, on both CPUs these machines have (AMD EPYC with
AVX2 only: AU 1.4x, FER 1.5x, VA 1.8x, align 3x, RetinaFace-MobileNet0.25 1.6-2x,
RetinaFace-ResNet-50 1.03x; AMD EPYC with AVX-512: AU 2x; benchmarks/README.md), at
outputs within 1e-4 of torch's.  On CUDA ``auto`` is torch (fatools does not install
ONNX Runtime's CUDA build).  ``torch`` is facetorch's own way, as loaded.

A model runs on torch instead, with one line saying why, when its export fails or
disagrees with TorchScript (``fatools.models.onnx_export``), when its export was damaged
since it was made or does not open in ONNX Runtime (``fa-models prepare NAME --force``
makes it again), when the store is read-only and has no export yet (``fa-models
prepare`` makes them once), or with ``--fp16``/``--bf16`` (torch's precisions).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fatools.errors import FatoolsError, ModelMissingError
from fatools.models.onnx_export import onnxruntime_available
from fatools.models.catalogue import ModelFile

log = logging.getLogger("fatools")

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
            raise FatoolsError(f"--backend onnx runs on the CPU only; use --backend torch (or auto) on {device}")
        if not onnxruntime_available():
            raise FatoolsError("--backend onnx needs onnxruntime and onnx: pip install onnxruntime onnx "
                               "(or use --backend torch)")
        return "onnx"
    if on_cpu and onnxruntime_available():
        return "onnx"
    return "torch"


class OnnxModel:
    """Stands in for a facetorch model's TorchScript module (``owner.model``): takes and
    gives torch tensors, runs an ONNX Runtime session."""

    def __init__(self, path: Path, info: dict, threads: int | None = None) -> None:
        from fatools.models.onnx_export import session

        self.path = path
        self.info = info
        self.session = session(path, threads)
        self.kind = info.get("outputs", "tensor")

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        import torch

        from fatools.models.onnx_export import INPUT_NAME

        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        outs = [torch.from_numpy(out) for out in self.session.run(None, {INPUT_NAME: array})]
        if self.kind == "tensor":
            return outs[0]
        return outs if self.kind == "list" else tuple(outs)

    def eval(self) -> OnnxModel:
        return self

    def __repr__(self) -> str:
        return f"OnnxModel({self.path.name})"


def _store_file(owner: Any) -> ModelFile | None:
    """The store file a model built outside a resolution was loaded from (benchmarks and
    tests build detectors by hand): ``<store>/<name>/model.pt``."""
    from fatools.models import store
    from fatools.models.catalogue import MODELS

    path = Path(str(getattr(owner, "path_local", "")))
    name = path.parent.name
    if not path.is_file() or name not in MODELS:
        return None
    return ModelFile(name, MODELS[name].task, path, store.file_record(name, path.parent.parent)["sha256"])


def onnx_model(owner: Any, name: str, example: tuple[int, ...], detector: bool, int8: bool,
               required: bool, file: ModelFile | None = None) -> OnnxModel | None:
    """``owner.model``, loaded from ``file`` (the resolution's), as an OnnxModel (its export
    made once when missing), or None when the model must run on torch; ``required``
    (``--backend onnx``) turns None into an error."""
    import torch

    from fatools.models import derived, onnx_export

    try:
        file = file or _store_file(owner)
    except ModelMissingError:
        file = None
    if file is None:
        return _fallback(name, "its model file is not known", required)
    model_file, store_name = file.path, file.name
    try:
        path, info = onnx_export.ensure_export(model_file, file.sha256, example, detector, store_name, int8=int8)
    except ModelMissingError as exc:
        if required:
            raise
        log.warning("%s: runs on torch: %s", name, str(exc).split(": ", 1)[-1])
        return None
    except derived.DamagedError as exc:  # the float32 export the int8 form is made from
        return _fallback(name, str(exc), required)
    if path is None:
        return _fallback(name, f"its ONNX export failed ({info.get('error')}); "
                               f"`fa-models prepare {store_name} --force` tries again", required)
    # An export damaged after its check could still open and give wrong outputs (bytes
    # overwritten in its weights): the record's hash decides, at a stat's cost.
    why = derived.damage(path, info)
    if why is not None:
        return _fallback(name, f"its ONNX export {path} is damaged ({why}); "
                               f"{onnx_export.remake_hint(store_name, path)}", required)
    try:
        return OnnxModel(path, info, torch.get_num_threads())
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors share no base but Exception
        return _fallback(name, f"its ONNX export {path} does not open in ONNX Runtime "
                               f"({onnx_export.ort_message(exc)}); "
                               f"{onnx_export.remake_hint(store_name, path)}", required)


def _fallback(name: str, why: str, required: bool) -> None:
    if required:
        raise FatoolsError(f"{name}: cannot run on ONNX Runtime: {why}; use --backend torch")
    log.warning("%s: runs on torch: %s", name, why)
    return None
