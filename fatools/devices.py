"""Choosing the torch device from --device (auto, cpu, cuda, cuda:N)."""

from __future__ import annotations

from fatools.errors import FatoolsError


def resolve_device(spec: str = "auto"):
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
            raise FatoolsError(f"--device {spec}: CUDA is not available on this machine; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FatoolsError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise FatoolsError(f"--device {spec}: fatools runs on cpu or cuda")
    return device


def default_batch_size(device, model: str) -> int:
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
    # VA and align networks at 8 (fatools.inference's frozen, channels-last models).
    return {"detector": 1, "frames": 8, "va": 8, "align": 8}.get(model, 4)


def upload(tensor, device):
    """A host tensor on ``device``: on CUDA through (cached) pinned memory, asynchronously,
    so the copy overlaps the work already queued on the GPU."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
