"""Running facetorch's TorchScript models faster, computing the same thing.

facetorch loads each model with ``torch.jit.load`` and calls it as it is.  fatools
prepares each loaded model once:

* **freeze** (``torch.jit.freeze``): weights become constants, so batch norms fold
  into the convolutions before them and the graph is inlined; the arithmetic is the
  same up to float rounding;
* **channels-last** for convolutional networks: oneDNN's CPU convolutions (and cuDNN's
  fp16 ones) run on NHWC tensors without reordering every layer's input; weights are
  stored channels-last before freezing and inputs are made channels-last.  A network
  is convolutional when its frozen graph has more convolutions than matrix products
  (the detector, FER, VA and align networks are; the Swin-Base AU model is not);
* **fp16** (opt-in, ``--fp16``): half-precision weights and inputs, for CUDA; outputs
  come back as float32.  It changes outputs (measured in fa-run(1)), so it is never
  on by default.  Models that cannot run in fp16 stay float32 (checked on a zero input).

Measured on a 2-core CPU with the benchmark's compute twins (benchmarks/README.md):
freeze + channels-last took RetinaFace-MobileNet0.25 at 1080x1080 from 135 to 69 ms,
RetinaFace-ResNet-50 from 4.1 to 2.5 s, EfficientNet-B2 FER, AlexNet VA and the
MobileNetV2 align network 1.3-2x less time per face; raw outputs moved by at most
2.3e-5.  A model that cannot be frozen (a plain ``nn.Module``, or a TorchScript
module that mutates its attributes) runs as loaded, with a debug log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger("fatools")

_CONVOLUTIONS = ("aten::_convolution", "aten::conv2d", "aten::mkldnn_convolution", "aten::conv1d", "aten::conv3d")
_PRODUCTS = ("aten::linear", "aten::addmm", "aten::matmul", "aten::mm", "aten::bmm")


@dataclass(frozen=True)
class InputFormat:
    """How a prepared model wants its input tensors."""

    channels_last: bool = False
    half: bool = False

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.half:
            tensor = tensor.half()
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor


def _count(graph: Any, kinds: tuple[str, ...]) -> int:
    total = 0
    for node in graph.nodes():
        if node.kind() in kinds:
            total += 1
        for block in node.blocks():
            total += _count(block, kinds)
    return total


def is_convolutional(module: torch.jit.ScriptModule) -> bool:
    """True when the module's inlined graph has more convolutions than matrix products."""
    graph = module.inlined_graph
    return _count(graph, _CONVOLUTIONS) > _count(graph, _PRODUCTS)


def prepare_model(owner: Any, optimize: bool = True, half: bool = False, name: str = "model",
                  example: tuple[int, ...] | None = None) -> InputFormat:
    """Freeze ``owner.model`` (a facetorch detector or predictor) in place; its input format.

    ``optimize=False`` and ``half=False`` leave the model exactly as facetorch loaded it.
    With ``half``, a model that cannot run in fp16 (a traced model keeps float32
    constants, for instance) is tried on a zero input of shape ``example`` and, when it
    fails, reloaded from its file and run in float32.
    """
    fmt = _prepare(owner, optimize, half, name)
    if half and example is not None:
        try:
            with torch.inference_mode():
                owner.model(fmt.apply(torch.zeros(example, device=getattr(owner, "device", "cpu"))))
        except Exception as exc:  # noqa: BLE001 - any failure means: not in fp16
            log.info("%s: runs in float32 (fp16 failed: %s)", name, str(exc).strip().splitlines()[-1][:160])
            owner.model = owner.load_model()
            fmt = _prepare(owner, optimize, False, name)
    return fmt


def _prepare(owner: Any, optimize: bool, half: bool, name: str) -> InputFormat:
    model = owner.model
    device = getattr(owner, "device", torch.device("cpu"))
    if isinstance(device, torch.device) and device.type == "cuda":
        # Shapes repeat (constant batches), so cuDNN's per-shape algorithm search pays.
        torch.backends.cudnn.benchmark = True
    if half:
        model = model.half()
    channels_last = frozen = False
    if optimize and isinstance(model, torch.jit.ScriptModule):
        try:
            convolutional = is_convolutional(model)
            # Weights channels-last too, so no convolution reorders them per call.
            loaded = model.to(memory_format=torch.channels_last) if convolutional else model
            model = torch.jit.freeze(loaded.eval())
            channels_last, frozen = convolutional, True
        except Exception as exc:  # noqa: BLE001 - any model facetorch can run must still run
            log.debug("%s: runs as loaded (cannot be frozen: %s)", name, exc)
    owner.model = model
    log.debug("%s: frozen=%s channels_last=%s fp16=%s", name, frozen, channels_last, half)
    return InputFormat(channels_last=channels_last, half=half)
