"""The ONNX Runtime engine: a model's checked ONNX export, run by ONNX Runtime (the CPU's
default, ``fatools.runtime``).

A model runs on torch instead (``fatools.runtime.torch_engine``), with one line saying
why, when its export fails or disagrees with TorchScript (``fatools.models.onnx_export``),
when its export was damaged since it was made or does not open in ONNX Runtime
(``fa-models prepare NAME --force`` makes it again), when the store is read-only and has
no export yet (``fa-models prepare`` makes them once), or with ``--fp16``/``--bf16``
(torch's precisions).  With ``--backend onnx`` each of these is an error instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fatools.errors import FatoolsError, ModelMissingError
from fatools.models.catalogue import ModelFile
from fatools.runtime.engine import Engine, InputFormat, ReadyModel
from fatools.runtime.torch_engine import TorchEngine, is_convolutional_model

log = logging.getLogger("fatools")


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


class OnnxEngine(Engine):
    """ONNX Runtime on the CPU: ``owner.model`` replaced by an ``OnnxModel`` of its checked
    export (made once when missing; with ``int8``, the export's int8 form for a model that
    is not convolutional), or readied on torch with one line saying why."""

    name = "onnx"

    def __init__(self, fallback: Engine | None = None) -> None:
        self.fallback = fallback or TorchEngine()

    def ready(
        self,
        owner: Any,
        file: ModelFile | None,
        *,
        name: str = "model",
        example: tuple[int, ...] | None = None,
        detector: bool = False,
        optimize: bool = True,
        half: bool = False,
        int8: bool = False,
        bf16: bool = False,
        required: bool = False,
    ) -> ReadyModel:
        if not half and not bf16 and example is not None:  # fp16 and bf16 are torch's precisions
            quantise = int8 and not is_convolutional_model(owner.model)
            model = onnx_model(name, example, detector, quantise, required, file)
            if model is not None:
                owner.model = model
                return ReadyModel(model, InputFormat(int8=quantise), self.name)
        return self.fallback.ready(
            owner,
            file,
            name=name,
            example=example,
            detector=detector,
            optimize=optimize,
            half=half,
            int8=int8,
            bf16=bf16,
            required=required,
        )


def onnx_model(
    name: str, example: tuple[int, ...], detector: bool, int8: bool, required: bool, file: ModelFile | None
) -> OnnxModel | None:
    """The model loaded from ``file`` (the resolution's) as an OnnxModel (its export made
    once when missing), or None when the model must run on torch; ``required``
    (``--backend onnx``) turns None into an error."""
    import torch

    from fatools.models import derived, onnx_export

    if file is None:
        _fallback(name, "its model file is not known", required)
        return None
    model_file, store_name = file.path, file.name
    try:
        path, info = onnx_export.ensure_export(
            model_file, file.sha256, example, detector, store_name, int8=int8
        )
    except ModelMissingError as exc:
        if required:
            raise
        log.warning("%s: runs on torch: %s", name, str(exc).split(": ", 1)[-1])
        return None
    except derived.DamagedError as exc:  # the float32 export the int8 form is made from
        _fallback(name, str(exc), required)
        return None
    if path is None:
        _fallback(
            name,
            f"its ONNX export failed ({info.get('error')}); "
            f"`fa-models prepare {store_name} --force` tries again",
            required,
        )
        return None
    # An export damaged after its check could still open and give wrong outputs (bytes
    # overwritten in its weights): the record's hash decides, at a stat's cost.
    why = derived.damage(path, info)
    if why is not None:
        _fallback(
            name,
            f"its ONNX export {path} is damaged ({why}); {onnx_export.remake_hint(store_name, path)}",
            required,
        )
        return None
    try:
        return OnnxModel(path, info, torch.get_num_threads())
    except Exception as exc:
        _fallback(
            name,
            f"its ONNX export {path} does not open in ONNX Runtime "
            f"({onnx_export.ort_message(exc)}); "
            f"{onnx_export.remake_hint(store_name, path)}",
            required,
        )
        return None


def _fallback(name: str, why: str, required: bool) -> None:
    """Refuse (``required``), or say why the model runs on torch."""
    if required:
        raise FatoolsError(f"{name}: cannot run on ONNX Runtime: {why}; use --backend torch")
    log.warning("%s: runs on torch: %s", name, why)
