"""The torch engine: facetorch's TorchScript models, run faster, computing the same thing.

facetorch loads each model with ``torch.jit.load`` and calls it as it is.  fatools
prepares each loaded model once (``TorchEngine.ready``):

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
* **int8** (opt-in, ``--int8``, CPU only): the Linear layers of networks that are not
  convolutional (the Swin-Base AU model: its matrix products are ~75% of its time and
  already run at the CPU's float32 peak) become dynamically quantised int8 products
  (``torch.ao.quantization.quantize_dynamic_jit``, per-channel weights).  About 1.5x
  faster AU on a 2-core AVX2 CPU; it changes AU probabilities (measured in fa-run(1)).
  Convolutional networks stay float32: their few Linear layers cost next to nothing.
  Where the quantisation is unavailable (a torch without it, a CPU without an int8
  engine) the model stays float32, with a warning.

Measured on a 2-core CPU with the benchmark's compute twins (benchmarks/README.md):
freeze + channels-last took RetinaFace-MobileNet0.25 at 1080x1080 from 135 to 69 ms,
RetinaFace-ResNet-50 from 4.1 to 2.5 s, EfficientNet-B2 FER, AlexNet VA and the
MobileNetV2 align network 1.3-2x less time per face; raw outputs moved by at most
2.3e-5.  A model that cannot be frozen (a plain ``nn.Module``, or a TorchScript
module that mutates its attributes) runs as loaded, with a debug log line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from fatools.models.torchscript import quiet_torchscript
from fatools.runtime.engine import Engine, InputFormat, ReadyModel

if TYPE_CHECKING:  # pragma: no cover
    from fatools.models.catalogue import ModelFile

log = logging.getLogger("fatools")

_CONVOLUTIONS = (
    "aten::_convolution",
    "aten::conv2d",
    "aten::mkldnn_convolution",
    "aten::conv1d",
    "aten::conv3d",
)
_PRODUCTS = (
    "aten::linear",
    "aten::addmm",
    "aten::matmul",
    "aten::mm",
    "aten::bmm",
    "quantized::linear_dynamic",
)


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


class TorchEngine(Engine):
    """facetorch's own runtime: its TorchScript modules, frozen and channels-last, in the
    request's precision."""

    name = "torch"

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
        """``Engine.ready`` on torch; ``file`` and ``detector`` are not needed here.

        ``optimize=False``, ``half=False``, ``int8=False`` and ``bf16=False`` leave the
        model exactly as facetorch loaded it.  With ``half``, a model that cannot run in
        fp16 (a traced model keeps float32 constants, for instance) is tried on a zero
        input of shape ``example`` and, when it fails, reloaded from its file and run in
        float32.  With ``int8`` (CPU only), a model that is not convolutional gets int8
        Linear layers, and then runs in float32 otherwise (``int8`` wins over ``half``
        for that model).  With ``bf16`` (CPU only) the model runs under bfloat16 autocast.
        """
        if bf16:
            fmt = _prepare(owner, optimize, False, name)
            owner.model = _Autocast(owner.model)
            fmt = dataclasses.replace(fmt, bf16=True)
        elif int8 and _quantize_linears(owner, name):
            fmt = dataclasses.replace(_prepare(owner, optimize, False, name), int8=True)
        else:
            fmt = _prepare(owner, optimize, half, name)
            if half and example is not None:
                try:
                    with torch.inference_mode():
                        owner.model(fmt.apply(torch.zeros(example, device=getattr(owner, "device", "cpu"))))
                except Exception as exc:
                    log.info(
                        "%s: runs in float32 (fp16 failed: %s)", name, str(exc).strip().splitlines()[-1][:160]
                    )
                    with quiet_torchscript():
                        owner.model = owner.load_model()
                    fmt = _prepare(owner, optimize, False, name)
        return ReadyModel(owner.model, fmt, self.name)


def is_convolutional_model(model: Any) -> bool:
    """``is_convolutional`` for a TorchScript module; False for anything else."""
    return isinstance(model, torch.jit.ScriptModule) and is_convolutional(model)


class _Autocast:
    """A model run under CPU bfloat16 autocast (``--bf16``), outputs back in float32."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.model(x, *args, **kwargs)
        if isinstance(out, (tuple, list)):
            return type(out)(o.float() if isinstance(o, torch.Tensor) else o for o in out)
        return out.float() if isinstance(out, torch.Tensor) else out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def bf16_hardware() -> str | None:
    """What on this CPU runs bfloat16 natively (``AMX``, ``AVX512_BF16``), or None.

    Elsewhere torch emulates bfloat16 products with float32 ones plus conversions,
    which is slower than float32 alone: fatools then keeps float32 (``--bf16``'s help).
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    if "amx_bf16" in flags:
                        return "AMX"
                    if "avx512_bf16" in flags:
                        return "AVX512_BF16"
                    return None
    except OSError:
        pass
    return None


def int8_supported() -> bool:
    """Whether this torch can quantise a TorchScript model's Linear layers (``--int8``).

    ``quantize_dynamic_jit`` is TorchScript's graph-mode quantisation, a legacy API that
    newer torch releases may drop; an int8 engine (fbgemm/x86 or qnnpack) must exist.
    """
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic_jit  # noqa: F401
    except Exception:
        return False
    return any(engine != "none" for engine in torch.backends.quantized.supported_engines)


def _quantize_linears(owner: Any, name: str) -> bool:
    """Quantise the Linear layers of ``owner.model`` in place; whether any were."""
    model = owner.model
    device = getattr(owner, "device", torch.device("cpu"))
    if not isinstance(model, torch.jit.ScriptModule) or is_convolutional(model):
        return False
    if isinstance(device, torch.device) and device.type != "cpu":
        log.warning("%s: --int8 is for the CPU only; on %s this model stays float32", name, device.type)
        return False
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic_jit

        with quiet_torchscript(), _quantizer_notice_hidden(), warnings.catch_warnings():
            # torch 2.3 notes, while it prepares the graph, that .grad of a non-leaf tensor is
            # not populated: fatools never reads gradients.
            warnings.filterwarnings(
                "ignore", message=r"The \.grad attribute of a Tensor that is not a leaf", category=UserWarning
            )
            quantized = quantize_dynamic_jit(model.eval(), {"": per_channel_dynamic_qconfig})
        count = _count(quantized.inlined_graph, ("quantized::linear_dynamic",))
    except Exception as exc:
        log.warning(
            "%s: stays float32 (int8 quantisation failed: %s)",
            name,
            str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else type(exc).__name__,
        )
        return False
    if not count:
        return False  # no Linear layers: nothing to gain
    owner.model = quantized
    log.info("%s: %d Linear layers in int8 (dynamic quantisation)", name, count)
    return True


# torch >= 2.13 prints, from C++ and so past Python's warning filters, that quantised
# tensor creation is deprecated, once, while quantize_dynamic_jit packs the weights.  It
# still works; --int8's way off it is the ONNX Runtime backend (see fatools.models.torchscript).
_QUANTIZER_NOTICE = re.compile(
    r"^\[W[^\]]*Quantizer\.cpp:\d+\] Warning: torch\.quantize_per_tensor.*?(\(function \w+\(\)\)|$)",
    re.MULTILINE,
)


@contextlib.contextmanager
def _quantizer_notice_hidden() -> Iterator[None]:
    """Run the block with the process's stderr captured, then pass on all of it but the
    quantizer's deprecation notice (a C++ print, which no Python filter reaches)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = _QUANTIZER_NOTICE.sub("", capture.read().decode("utf-8", "replace"))
            if rest.strip():
                sys.stderr.write(rest)
                sys.stderr.flush()


def _prepare(owner: Any, optimize: bool, half: bool, name: str) -> InputFormat:
    model = owner.model
    device = getattr(owner, "device", torch.device("cpu"))
    if isinstance(device, torch.device) and device.type == "cuda":
        from fatools.devices import configure_cuda

        configure_cuda()
    if half:
        model = model.half()
    channels_last = frozen = False
    if optimize and isinstance(model, torch.jit.ScriptModule):
        try:
            convolutional = is_convolutional(model)
            # Weights channels-last too, so no convolution reorders them per call.
            loaded = model.to(memory_format=torch.channels_last) if convolutional else model
            with quiet_torchscript():
                model = torch.jit.freeze(loaded.eval())
            channels_last, frozen = convolutional, True
        except Exception as exc:
            log.debug("%s: runs as loaded (cannot be frozen: %s)", name, exc)
    owner.model = model
    log.debug("%s: frozen=%s channels_last=%s fp16=%s", name, frozen, channels_last, half)
    return InputFormat(channels_last=channels_last, half=half)
