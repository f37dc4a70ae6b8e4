"""Choosing the torch device from --device (auto, cpu, cuda, cuda:N)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from fatools.errors import FatoolsError

if TYPE_CHECKING:
    import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


def resolve_device(spec: str = "auto") -> torch.device:
    """A torch.device for ``spec``; ``auto`` takes the GPU when there is one."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise FatoolsError(f"--device {spec}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FatoolsError(
                f"--device {spec}: CUDA is not available on this machine; use --device cpu (or auto)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FatoolsError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise FatoolsError(f"--device {spec}: fatools runs on cpu or cuda")
    return device


def configure_cuda() -> None:
    """fatools' CUDA settings, process-wide, before its models run on a GPU.

    * cuDNN's benchmark mode on: batches keep their shapes, so its per-shape algorithm
      search pays once and every later batch runs the fastest kernel it found;
    * TF32 off, for matrix products and cuDNN convolutions alike (torch leaves it on for
      convolutions): TF32 keeps 10 bits of mantissa, so float32 records on an Ampere or
      newer GPU would differ from a CPU's and an older GPU's by about 1e-3; with it off
      they agree within 1e-4.  Speed on a GPU is the business of --fp16, which says so
      in the records.
    """
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def default_batch_size(device: torch.device, model: str) -> int:
    """Frames (``detector``; ``frames``: frames whose faces are predicted together) or faces
    (a predictor's name) per batch, chosen per model and device.

    On CPU small batches are fastest per image (measured: Swin-Base 350 ms/face at batch 4,
    439 at 32; EfficientNet-B2 55 at 4, 130 at 32); a GPU wants large ones.
    """
    if device.type == "cuda":
        return {"detector": 16, "frames": 32}.get(model, 64)
    # Measured with the benchmark twins: RetinaFace-R50 at batch 2 took 1.3x longer per
    # frame than at batch 1 on 2 cores.
    # Faces: Swin-Base AU and EfficientNet-B2 FER are fastest per face at 4; the small
    # VA and align networks at 8 (fatools.runtime.torch_engine's frozen, channels-last models).
    return {"detector": 1, "frames": 8, "va": 8, "align": 8}.get(model, 4)


def upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``: on CUDA through (cached) pinned memory, asynchronously,
    so the copy overlaps the work already queued on the GPU."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the device running out of memory (CUDA's error, or the message cuDNN and
    cuBLAS give when their workspace allocation fails)."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "CUDNN_STATUS_ALLOC_FAILED" in text)


def release_memory() -> None:
    """Give the CUDA caching allocator's free blocks back, so a smaller retry can fit."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Halving:
    """Runs a model over items in chunks; when the device runs out of memory, halves the
    chunk and retries, down to one item, and keeps the smaller size from then on.

    The models treat the items of a batch independently, so the records equal those of a
    run that fitted, up to the float rounding that differs between batch sizes (as with
    --detect-batch and --face-batch themselves).
    Out of memory with a single item is a one-line error naming the item and what to do.
    """

    def __init__(self, what: str, advice: str) -> None:
        self.what = what
        self.advice = advice
        self.limit: int | None = None  # the largest chunk known to fit, once one did not
        self.warned = False

    def map(
        self,
        run: Callable[[list[Item]], Iterable[Result]],
        items: list[Item],
        size: int,
        names: list[str] | None = None,
    ) -> list[Result]:
        """``run(chunk)`` gives one result per item of the chunk; the results of all items."""
        import logging

        out: list[Result] = []
        start = 0
        while start < len(items):
            count = min(size, self.limit or size, len(items) - start)
            try:
                out.extend(run(items[start : start + count]))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                release_memory()
                if count == 1:
                    where = names[start] if names else f"item {start}"
                    raise FatoolsError(
                        f"{where}: out of GPU memory in {self.what} even one at a time; {self.advice}"
                    ) from None
                self.limit = count // 2
                if not self.warned:
                    self.warned = True
                    logging.getLogger("fatools").warning(
                        "%s: out of GPU memory with a batch of %d; going on with %d at a time (and halving again "
                        "if needed); the results are the same",
                        self.what,
                        count,
                        self.limit,
                    )
                continue
            start += count
        return out
