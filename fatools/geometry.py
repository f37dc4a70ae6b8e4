"""Original frame pixels <-> model inputs, both directions (the role torchvision's
detection ``transform.py`` plays for its detectors).

Two detector geometries (``detector_geometry``):

* default: the frame scaled so its longer side is ``det_size`` (facetorch's scale,
  1080 / longer side), without square padding: a 16:9 frame costs 0.56x of the square;
* ``square_pad`` (``--facetorch-exact``): facetorch's reader exactly, the frame padded
  to a centred square with zeros (``SquarePad``), then resized to ``det_size``.

``det_size`` None keeps the original size (the square's side when padding).  Every
stage finds a frame's geometry from its record: its width and height and the
``detection`` field that fa-detect writes (``from_detection``).

Face crops: the default crops a square around each box straight from the original
pixels, zero-padded past the frame's edge (``square_box``, ``crop_padded``);
facetorch-exact crops come from the detector input, so boxes go there and landmarks
come back through the same ``Geometry``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Geometry:
    """How a frame maps into the detector input: det = (orig + pad) * scale."""

    scale_x: float
    scale_y: float
    pad_left: int
    pad_top: int
    det_width: int
    det_height: int

    def to_original(self, xy: torch.Tensor) -> torch.Tensor:
        """Detector-input pixel coordinates (..., 2k) back to original frame pixels."""
        out = xy.clone()
        out[..., 0::2] = xy[..., 0::2] / self.scale_x - self.pad_left
        out[..., 1::2] = xy[..., 1::2] / self.scale_y - self.pad_top
        return out

    def box_to_detector(self, box: list[float]) -> list[float]:
        """An original-pixel box [x1, y1, x2, y2] in detector-input pixels."""
        x1, y1, x2, y2 = box
        return [
            (x1 + self.pad_left) * self.scale_x,
            (y1 + self.pad_top) * self.scale_y,
            (x2 + self.pad_left) * self.scale_x,
            (y2 + self.pad_top) * self.scale_y,
        ]

    def points_to_original(self, points: np.ndarray) -> np.ndarray:
        """Detector-input points (n, 2 or 3) in original pixels, in place; depth scales as x."""
        points[:, 0] = points[:, 0] / self.scale_x - self.pad_left
        points[:, 1] = points[:, 1] / self.scale_y - self.pad_top
        if points.shape[1] > 2:
            points[:, 2] = points[:, 2] / self.scale_x
        return points


def detector_geometry(width: int, height: int, det_size: int | None, square_pad: bool) -> Geometry:
    """The detector-input geometry of a width x height frame."""
    if square_pad:
        side = max(width, height)
        pad_left, pad_top = (side - width) // 2, (side - height) // 2
        target = det_size or side
        return Geometry(target / side, target / side, pad_left, pad_top, target, target)
    if not det_size:
        return Geometry(1.0, 1.0, 0, 0, width, height)
    scale = det_size / max(width, height)
    det_w, det_h = max(1, round(width * scale)), max(1, round(height * scale))
    return Geometry(det_w / width, det_h / height, 0, 0, det_w, det_h)


def from_detection(record: dict) -> Geometry | None:
    """The geometry the faces of a record were found at (its ``detection`` field), or None."""
    detection = record.get("detection")
    width, height = record.get("width"), record.get("height")
    if not isinstance(detection, dict) or not isinstance(width, int) or not isinstance(height, int):
        return None
    return detector_geometry(width, height, detection.get("det_size"), bool(detection.get("square_pad")))


def rgb_batch(images_bgr: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Same-sized HWC BGR uint8 frames as an NCHW RGB float batch (0..255) on ``device``.

    On CUDA the 8-bit frames are copied (a quarter of the bytes) and converted there.
    """
    from fatools.devices import upload

    if device.type == "cuda":
        frames = upload(torch.from_numpy(np.stack(images_bgr)), device)
        return frames.flip(-1).permute(0, 3, 1, 2).float()
    import cv2

    # OpenCV swaps the channels straight into the batch: numpy's copy of a reversed view
    # took 47 ms for a 1920x1920 frame, cvtColor 1 ms.
    height, width = images_bgr[0].shape[:2]
    rgb = np.empty((len(images_bgr), height, width, 3), np.uint8)
    for i, image in enumerate(images_bgr):
        cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB, dst=rgb[i])
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float()


def detector_input(
    images_bgr: list[np.ndarray], det_size: int | None, square_pad: bool, device: torch.device
) -> tuple[torch.Tensor, Geometry]:
    """Same-sized frames as the detector's input batch (RGB 0..255, before facetorch's
    normaliser), and their geometry."""
    import cv2
    from torchvision.transforms import functional as F

    height, width = images_bgr[0].shape[:2]
    geo = detector_geometry(width, height, det_size, square_pad)
    if square_pad:
        # The zeros are added to the 8-bit frames before conversion: the same values as
        # padding the float tensor, for less work.
        side = max(width, height)
        right, bottom = side - width - geo.pad_left, side - height - geo.pad_top
        if geo.pad_left or geo.pad_top or right or bottom:
            images_bgr = [
                cv2.copyMakeBorder(im, geo.pad_top, bottom, geo.pad_left, right, cv2.BORDER_CONSTANT, value=0)
                for im in images_bgr
            ]
        batch = rgb_batch(images_bgr, device)
        if det_size:
            batch = F.resize(batch, [det_size], antialias=True)  # facetorch: antialiased bilinear, on floats
        return batch, geo
    shrink = (geo.det_width, geo.det_height) != (width, height)
    if shrink and device.type == "cpu":
        # Area-averaging the 8-bit frame costs a few ms where an antialiased float resize
        # of the full frame cost about as much as the MobileNet detector itself.
        images_bgr = [
            cv2.resize(im, (geo.det_width, geo.det_height), interpolation=cv2.INTER_AREA) for im in images_bgr
        ]
        shrink = False
    batch = rgb_batch(images_bgr, device)
    if shrink:
        batch = F.resize(batch, [geo.det_height, geo.det_width], antialias=True)
    return batch, geo


def square_box(box: list[float]) -> tuple[int, int, int, int]:
    """The integer square around a face box (same centre, side = the longer side)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    size = max(round(side), 1)
    return left, top, left + size, top + size


def crop_padded(frame: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """A CHW crop of ``frame``; parts outside the frame are zeros (black)."""
    x1, y1, x2, y2 = box
    _, height, width = frame.shape
    out = frame.new_zeros((frame.shape[0], y2 - y1, x2 - x1))
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        out[:, sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = frame[:, sy1:sy2, sx1:sx2]
    return out
