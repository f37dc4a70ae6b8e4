"""Batched face detection on facetorch's RetinaFace: pre-process, model, post-process.

facetorch detects one image at a time, pads every frame to a square, and runs NMS as a
Python loop.  Here frames of one size go through facetorch's own detector
pre-processor and model as a batch; priors are made once per input size by
facetorch's ``PriorBox``; decoding and NMS are vectorised over the batch (torchvision's
batched NMS with facetorch's +1 pixel area convention, so the same boxes survive);
RetinaFace's five landmarks are decoded too; and boxes and landmarks are mapped back
to the original frame's pixels.

Two geometries:

* default: the frame is scaled so its longer side is ``det_size`` (facetorch's scale:
  1080 / longer side), without square padding: a 16:9 frame costs 0.56x of the square;
* ``square_pad=True`` (``--facetorch-exact``): facetorch's reader exactly, SquarePad
  then Resize(det_size), so detections match ``FaceAnalyzer.run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import torch

FaceList = list[dict[str, Any]]


@dataclass(frozen=True)
class DetectOptions:
    det_size: int | None = 1080  # longer side fed to the detector; None: native size
    square_pad: bool = False
    score_threshold: float | None = None  # None: the configuration's (facetorch: 0.6)
    min_face: float = 0.0  # shorter box side in original pixels
    clip_boxes: bool = True
    optimize: bool = True  # frozen model, channels-last input (fatools.inference)
    half: bool = False  # fp16 weights and inputs (opt-in; changes outputs)


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


def geometry(width: int, height: int, options: DetectOptions) -> Geometry:
    """The detector-input geometry of a width x height frame."""
    if options.square_pad:
        side = max(width, height)
        pad_left, pad_top = (side - width) // 2, (side - height) // 2
        target = options.det_size or side
        return Geometry(target / side, target / side, pad_left, pad_top, target, target)
    if not options.det_size:
        return Geometry(1.0, 1.0, 0, 0, width, height)
    scale = options.det_size / max(width, height)
    det_w, det_h = max(1, round(width * scale)), max(1, round(height * scale))
    return Geometry(det_w / width, det_h / height, 0, 0, det_w, det_h)


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


def square_inputs(images_bgr: list[np.ndarray], det_size: int | None, device: torch.device) -> torch.Tensor:
    """facetorch's reader on a batch: each frame padded to a square with zeros (centred, as
    ``SquarePad``), then resized to ``det_size`` (antialiased bilinear, on floats).

    The zeros are added to the 8-bit frames before conversion: the same values as
    padding the float tensor, for less work.
    """
    import cv2
    from torchvision.transforms import functional as F

    height, width = images_bgr[0].shape[:2]
    geo = geometry(width, height, DetectOptions(det_size=det_size, square_pad=True))
    side = max(width, height)
    right, bottom = side - width - geo.pad_left, side - height - geo.pad_top
    if geo.pad_left or geo.pad_top or right or bottom:
        images_bgr = [cv2.copyMakeBorder(im, geo.pad_top, bottom, geo.pad_left, right, cv2.BORDER_CONSTANT, value=0)
                      for im in images_bgr]
    batch = rgb_batch(images_bgr, device)
    if det_size:
        batch = F.resize(batch, [det_size], antialias=True)
    return batch


def prepare(images_bgr: list[np.ndarray], options: DetectOptions, device: torch.device) -> tuple[torch.Tensor, Geometry]:
    """Stack same-sized frames into the detector's input batch (before facetorch's normaliser)."""
    from torchvision.transforms import functional as F

    height, width = images_bgr[0].shape[:2]
    geo = geometry(width, height, options)
    if options.square_pad:
        return square_inputs(images_bgr, options.det_size, device), geo
    shrink = (geo.det_width, geo.det_height) != (width, height)
    if shrink and device.type == "cpu":
        # Area-averaging the 8-bit frame costs a few ms where an antialiased float resize
        # of the full frame cost about as much as the MobileNet detector itself.
        import cv2

        images_bgr = [cv2.resize(im, (geo.det_width, geo.det_height), interpolation=cv2.INTER_AREA) for im in images_bgr]
        shrink = False
    batch = rgb_batch(images_bgr, device)
    if shrink:
        batch = F.resize(batch, [geo.det_height, geo.det_width], antialias=True)
    return batch, geo


class BatchDetector:
    """facetorch's FaceDetector run on batches of frames, results in original pixels."""

    def __init__(self, face_detector: Any, options: DetectOptions = DetectOptions(), name: str = "retinaface") -> None:
        post = face_detector.postprocessor
        self.name = name
        self.face_detector = face_detector
        self.device = face_detector.device
        self.options = options
        self.confidence_threshold = float(post.confidence_threshold)
        self.top_k = int(post.top_k)
        self.nms_threshold = float(post.nms_threshold)
        self.keep_top_k = int(post.keep_top_k)
        self.score_threshold = float(options.score_threshold if options.score_threshold is not None else post.score_threshold)
        self.variance = [float(v) for v in post.variance]
        self.prior_box = post.prior_box
        self._priors: dict[tuple[int, int], torch.Tensor] = {}
        from fatools.inference import prepare_model

        self.input_format = prepare_model(face_detector, options.optimize, options.half, name, example=(1, 3, 128, 128))

    def provenance(self) -> dict:
        """How faces were found, recorded with every frame (fa-predict --facetorch-exact needs it)."""
        provenance = {"detector": self.name, "det_size": self.options.det_size, "square_pad": self.options.square_pad,
                      "score_threshold": self.score_threshold}
        if self.options.half:
            provenance["fp16"] = True
        return provenance

    def priors(self, det_height: int, det_width: int) -> torch.Tensor:
        """facetorch's priors for an input size, made once per size (its PriorBox is a Python loop)."""
        from facetorch.datastruct import Dimensions

        key = (det_height, det_width)
        if key not in self._priors:
            self._priors[key] = self.prior_box.forward(Dimensions(det_height, det_width)).to(self.device)
        return self._priors[key]

    def detect(self, images_bgr: list[np.ndarray]) -> list[FaceList]:
        """Faces of each frame (all frames the same size), best score first."""
        return self.detect_with_inputs(images_bgr)[0]

    @torch.inference_mode()
    def detect_with_inputs(self, images_bgr: list[np.ndarray]) -> tuple[list[FaceList], torch.Tensor | None]:
        """Faces of each frame, and the detector's input batch (frames resized to the detector's
        geometry, RGB 0..255, before normalisation): facetorch-exact crops are cut from it."""
        if not images_bgr:
            return [], None
        from facetorch.datastruct import ImageData

        batch, geo = prepare(images_bgr, self.options, self.device)
        data = ImageData(path_input=None)
        data.tensor = batch
        data = self.face_detector.preprocessor.run(data)
        loc, conf, landmarks = self.face_detector.inference(self.input_format.apply(data.tensor))[:3]
        return self.postprocess(loc, conf, landmarks, geo, images_bgr[0].shape[1], images_bgr[0].shape[0]), batch

    def postprocess(self, loc: torch.Tensor, conf: torch.Tensor, landmarks: torch.Tensor, geo: Geometry, width: int, height: int) -> list[FaceList]:
        """Decode, threshold, NMS and map back to original pixels, for the whole batch at once."""
        from torchvision.ops import batched_nms

        batch_size = loc.shape[0]
        priors = self.priors(geo.det_height, geo.det_width)
        var0, var1 = self.variance
        scale = torch.tensor([geo.det_width, geo.det_height], dtype=torch.float32, device=loc.device)
        loc, conf, landmarks = loc.float(), conf.float(), landmarks.float()

        scores = conf[..., 1]
        k = min(self.top_k, scores.shape[1])
        top_scores, top_idx = scores.topk(k, dim=1)
        keep = top_scores > self.confidence_threshold
        image_idx = torch.arange(batch_size, device=loc.device).unsqueeze(1).expand(-1, k)[keep]
        prior_idx = top_idx[keep]
        cand_scores = top_scores[keep]
        p = priors[prior_idx]
        l = loc[image_idx, prior_idx]
        centres = p[:, :2] + l[:, :2] * var0 * p[:, 2:]
        sizes = p[:, 2:] * torch.exp(l[:, 2:] * var1)
        boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1) * scale.repeat(2)
        lms = landmarks[image_idx, prior_idx].view(-1, 5, 2)
        lms = (p[:, None, :2] + lms * var0 * p[:, None, 2:]) * scale

        # facetorch's NMS measures areas as (x2 - x1 + 1) * (y2 - y1 + 1); shifting the far
        # corner by one pixel makes torchvision's IoU identical to it.
        plus_one = torch.tensor([0.0, 0.0, 1.0, 1.0], device=boxes.device)
        kept = batched_nms(boxes + plus_one, cand_scores, image_idx, self.nms_threshold)

        results: list[FaceList] = [[] for _ in range(batch_size)]
        kept_images = image_idx[kept].tolist()
        kept_scores = cand_scores[kept].tolist()
        kept_boxes = geo.to_original(boxes[kept]).tolist()
        kept_lms = geo.to_original(lms[kept].reshape(-1, 10)).tolist()
        ranks = [0] * batch_size
        for b, score, box, lm in zip(kept_images, kept_scores, kept_boxes, kept_lms):
            ranks[b] += 1
            if ranks[b] > self.keep_top_k or score <= self.score_threshold:
                continue
            if self.options.clip_boxes:
                box = [min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
                       min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)]
            if min(box[2] - box[0], box[3] - box[1]) < max(self.options.min_face, 1e-6):
                continue
            results[b].append({
                "face": len(results[b]),
                "box": [round(v, 2) for v in box],
                "score": round(score, 5),
                "landmarks5": [[round(lm[2 * i], 2), round(lm[2 * i + 1], 2)] for i in range(5)],
            })
        return results


def detect_records(
    records: Iterable[dict],
    detector: BatchDetector,
    batch_size: int = 2,
    on_error: str = "fail",
) -> Iterator[dict]:
    """Add ``faces`` to every frame record of a stream; other records pass through."""
    from fatools.stream import PixelSource, frame_batches

    pixels = PixelSource()
    provenance = detector.provenance()
    try:
        for batch in frame_batches(records, pixels, batch_size, on_error):
            frames = batch.frames()
            results = detector.detect([image for _, image in frames])
            for (index, _), faces in zip(frames, results):
                batch.records[index]["faces"] = faces
                batch.records[index]["detection"] = provenance
            yield from batch.records
    finally:
        pixels.close()


def build_detector(
    name: str = "retinaface",
    options: DetectOptions = DetectOptions(),
    device: str = "auto",
    config_path: str | None = None,
    models_dir: str | None = None,
) -> BatchDetector:
    """facetorch's FaceDetector from the configuration, checked for its model first."""
    from fatools.models.torchscript import instantiate

    from fatools.devices import resolve_device
    from fatools.models import config as model_config
    from fatools.models import store

    torch_device = resolve_device(device)
    cfg = model_config.load_config(config_path, device=torch_device.type if torch_device.index is None else str(torch_device),
                                   tasks=[], detector=name, root=models_dir)
    store.require(model_config.required_models(cfg), models_dir)
    face_detector = instantiate(cfg.analyzer.detector)
    return BatchDetector(face_detector, options, name)
