"""An independent reference for what fatools feeds each predictor in the default mode,
and a seam that captures what it really feeds them.

The default mode states (fatools/geometry.py, fatools/predict.py, fa-predict(1)): each
face is cut as a square around its box (same centre, side = the box's longer side,
corner and side rounded to whole pixels) straight from the original frame, in RGB,
0..1, zeros past the frame's edge; resized once to the predictor's input size with
antialiased bilinear interpolation; then normalised as the predictor's configuration
says.  ``reference_inputs`` writes that down the plain way, with numpy and nothing of
fatools: the square's part inside the frame, padded with zeros, the resize as two matrices of triangle
(bilinear) weights whose support widens with the downscale factor (PIL's and
torchvision's ``antialias=True``), the mean and deviation of facetorch's default
configuration typed in here.

``Capture`` wraps a ready predictor's ``model`` (a TorchScript module on torch, an
``OnnxModel`` on ONNX Runtime: what ``predictor.inference`` calls) and keeps every
batch it is given and gives back, so that the tests compare the very tensors the
engine saw, on either backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# facetorch's default configuration (fatools/models/conf/analyzer.yaml): ImageNet's mean
# and deviation for au, fer and va (embed's deviation has 0.228 for red), none for align.
IMAGENET = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
NORMALISATION = {
    "au": IMAGENET,
    "fer": IMAGENET,
    "va": IMAGENET,
    "align": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "embed": ((0.485, 0.456, 0.406), (0.228, 0.224, 0.225)),
}
SIZES = {"au": 224, "fer": 260, "va": 224, "align": 120, "embed": 244}

# The inputs' tolerance, in the model's (normalised) units: float32 rounding of a
# resize and a normalisation is about 2e-5 there; one grey level is about 0.017.
INPUT_TOLERANCE = 1e-4


def square_around(box: list[float]) -> tuple[int, int, int]:
    """(left, top, side) of the whole-pixel square around a box: same centre, longer side."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1)
    left = round((x1 + x2) / 2 - side / 2)
    top = round((y1 + y2) / 2 - side / 2)
    return left, top, max(round(side), 1)


def bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of an antialiased bilinear resize: output pixel i centred at
    (i + 0.5) * n_in / n_out in input pixels, a triangle filter as wide as one output
    pixel (never narrower than one input pixel), normalised to sum 1 inside the image."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    weights = np.clip(1.0 - np.abs((np.arange(n_in) + 0.5)[None, :] - centres[:, None]) / support, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def reference_inputs(frame_rgb: np.ndarray, box: list[float], tasks) -> dict[str, np.ndarray]:
    """task -> the [3, S, S] float64 tensor the default mode states for this face of an HWC
    RGB uint8 frame (the frame as displayed: rotation applied)."""
    left, top, side = square_around(box)
    height, width = frame_rgb.shape[:2]
    # The part of the square inside the frame, then zeros around it out to the square.
    x1, y1 = min(max(left, 0), width), min(max(top, 0), height)
    x2, y2 = max(min(left + side, width), x1), max(min(top + side, height), y1)
    inside = frame_rgb[y1:y2, x1:x2].astype(np.float64) / 255.0
    crop = np.pad(inside, ((y1 - top, top + side - y2), (x1 - left, left + side - x2), (0, 0)))
    assert crop.shape == (side, side, 3)
    out = {}
    for task in tasks:
        size = SIZES[task]
        weights = bilinear_weights(side, size)
        resized = np.stack([weights @ crop[:, :, c] @ weights.T for c in range(3)])
        mean, std = NORMALISATION[task]
        out[task] = (resized - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    return out


class Capture:
    """Stands between facetorch's ``inference`` and a ready model, keeping its inputs and outputs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[Any] = []

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self.inputs.append(x.detach().float().cpu().contiguous().clone())
        out = self.model(x, *args, **kwargs)
        self.outputs.append(out)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def batch(self) -> np.ndarray:
        """Every face this model was given, in order, as one [N, 3, S, S] array."""
        return torch.cat(self.inputs).numpy() if self.inputs else np.zeros((0, 3, 1, 1), np.float32)


def capture(predictors: Any) -> dict[str, Capture]:
    """Capture wrapped around every model of a ``fatools.predict.FacePredictors``, in place."""
    captures = {}
    for task, predictor in predictors.predictors.items():
        captures[task] = Capture(predictor.model)
        predictor.model = captures[task]
    return captures


def release(predictors: Any) -> None:
    """The models back in place of their Captures."""
    for predictor in predictors.predictors.values():
        if isinstance(predictor.model, Capture):
            predictor.model = predictor.model.model
