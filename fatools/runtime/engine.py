"""What every runtime offers: ``Engine.ready`` makes a loaded facetorch model ready to run
on it and says how the model wants its inputs (``InputFormat``).

An engine is one class (``fatools.runtime.torch_engine.TorchEngine``,
``fatools.runtime.onnx_engine.OnnxEngine``); another runtime (TensorRT, facetorch's
``.pt2`` programs) is one more, named in ``fatools.runtime.engine_for``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from fatools.models.catalogue import ModelFile


@dataclass(frozen=True)
class InputFormat:
    """How a prepared model wants its input tensors."""

    channels_last: bool = False
    half: bool = False
    int8: bool = False  # Linear layers quantised; inputs stay float32
    bf16: bool = False  # run under CPU bfloat16 autocast; inputs stay float32

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.half:
            tensor = tensor.half()
        if self.channels_last and tensor.dim() == 4:
            import torch

            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor


@dataclass(frozen=True)
class ReadyModel:
    """A model readied by an engine: ``model`` (also set as ``owner.model``, which
    facetorch's ``inference`` calls), the ``input_format`` it wants and the ``engine``
    that runs it (``torch`` or ``onnx``: an ONNX model that fell back says ``torch``)."""

    model: Any
    input_format: InputFormat
    engine: str


class Engine:
    """A runtime that facetorch's detector and predictors can run on."""

    name = "engine"

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
        """Make ``owner.model`` (a facetorch detector or predictor, loaded from ``file``, the
        resolution's ``ModelFile``) ready to run on this engine, in place.

        ``name`` names the model in log lines; ``example`` is the shape of one input (a
        zero input of it checks fp16; the ONNX export is traced at it); ``detector`` says
        the model is the detector (its export takes any input size); ``optimize``,
        ``half``, ``int8`` and ``bf16`` are the request's precision options; ``required``
        (``--backend onnx``) makes a model that cannot run on this engine an error
        instead of one line and torch.
        """
        raise NotImplementedError
