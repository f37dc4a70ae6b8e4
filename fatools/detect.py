"""Batched face detection on facetorch's RetinaFace: pre-process, model, post-process.

facetorch detects one image at a time, pads every frame to a square, and runs NMS as a
Python loop.  Here frames of one size go through facetorch's own detector
pre-processor and model as a batch; priors are made once per input size by
facetorch's ``PriorBox``; decoding and NMS are vectorised over the batch (torchvision's
batched NMS with facetorch's +1 pixel area convention, so the same boxes survive);
RetinaFace's five landmarks are decoded too; and boxes and landmarks are mapped back
to the original frame's pixels (``fatools.geometry`` owns both directions: the default
geometry, and facetorch's square padding for ``--facetorch-exact``).

``detect_frames`` is the stage: fa-detect runs it on frames made from records, fa-run
on frames from its decoder.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fatools.geometry import Geometry, detector_input
from fatools.quality import assess, sharpness
from fatools.records import is_frame, where
from fatools.stream import Frame, batches, frames_from_records

if TYPE_CHECKING:  # pragma: no cover
    from fatools.models.catalogue import ModelFile
    from fatools.models.request import ModelRequest

FaceList = list[dict[str, Any]]


@dataclass(frozen=True)
class DetectOptions:
    det_size: int | None = 1080  # longer side fed to the detector; None: native size
    square_pad: bool = False
    score_threshold: float | None = None  # None: the configuration's (facetorch: 0.6)
    min_face: float = 0.0  # shorter box side in original pixels
    clip_boxes: bool = True
    optimize: bool = True  # frozen model, channels-last input (fatools.runtime.torch_engine)
    half: bool = False  # fp16 weights and inputs (opt-in; changes outputs)
    backend: str = "auto"  # auto, torch or onnx (fatools.runtime)
    # A face inside a face is one face: drop a box whose centre lies in a stronger box that
    # covers most of it (see inside_stronger).  Off in facetorch-exact mode, which must
    # return what FaceAnalyzer.run returns.
    suppress_inner: bool = True


def detect_options(
    det_size: int | None = 1080,
    facetorch_exact: bool = False,
    score_threshold: float | None = None,
    min_face: float = 0.0,
    optimize: bool = True,
    fp16: bool = False,
    backend: str = "auto",
) -> DetectOptions:
    """DetectOptions from the commands' options: ``det_size`` 0 or None keeps the original
    size, and ``facetorch_exact`` means facetorch's square-padded geometry.  The one place
    that says what --facetorch-exact implies for detection (prediction reads the geometry
    back from each record's ``detection``)."""
    return DetectOptions(
        det_size=det_size or None,
        square_pad=facetorch_exact,
        score_threshold=score_threshold,
        min_face=min_face,
        optimize=optimize,
        half=fp16,
        suppress_inner=not facetorch_exact,
        backend=backend,
    )


# A box is inside a stronger one when its centre lies in it and at least this share of
# its area does.  A close-up enlarged past the detector's largest anchors (a 256-512 px
# portrait at det-size 1080) gets, beside the face, boxes of part of it (scores 0.62-0.86,
# their centre in the face's box and 43-62% of them inside it, IoU under NMS's 0.4); two
# people's faces overlap that much only when one hides the other.
INNER_SHARE = 0.4


def inside_stronger(box: list[float], stronger: list[list[float]]) -> bool:
    """Whether ``box`` [x1, y1, x2, y2] is mostly inside one of the (higher-scoring) ``stronger``."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    for other in stronger:
        if not (other[0] <= cx <= other[2] and other[1] <= cy <= other[3]):
            continue
        ix = min(box[2], other[2]) - max(box[0], other[0])
        iy = min(box[3], other[3]) - max(box[1], other[1])
        if area > 0 and ix > 0 and iy > 0 and ix * iy >= INNER_SHARE * area:
            return True
    return False


def priors_for(prior_box: Any, height: int, width: int) -> torch.Tensor:
    """The priors facetorch's ``PriorBox`` makes for a height x width input, on the CPU.

    Its ``forward`` is a Python loop over every anchor: 0.15-0.45 s for a 1080 px input,
    paid by every detector (every fa-detect, every test) for every input size.  The same
    numbers come from numpy: each value is computed in double precision by the same
    operations, in the same order, then rounded to float32 as ``torch.Tensor`` rounds it.
    The result is shared by every detector of the process: callers must not change it.
    """
    from facetorch.analyzer.detector.post import PriorBox

    if type(prior_box) is not PriorBox:  # another class: its own rules
        from facetorch.datastruct import Dimensions

        return prior_box.forward(Dimensions(height, width))
    sizes = tuple(tuple(float(s) for s in level) for level in prior_box.min_sizes)
    return _priors(sizes, tuple(prior_box.steps), bool(prior_box.clip), height, width)


@functools.lru_cache(maxsize=32)
def _priors(
    min_sizes: tuple[tuple[float, ...], ...], steps: tuple[int, ...], clip: bool, height: int, width: int
) -> torch.Tensor:
    levels = []
    for sizes, step in zip(min_sizes, steps, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        # PriorBox's order: row, column, then each size; centre x, centre y, width, height.
        anchors = np.empty((rows, cols, len(sizes), 4))
        anchors[..., 0] = ((np.arange(cols) + 0.5) * step / width)[None, :, None]
        anchors[..., 1] = ((np.arange(rows) + 0.5) * step / height)[:, None, None]
        anchors[..., 2] = np.array(sizes) / width
        anchors[..., 3] = np.array(sizes) / height
        levels.append(anchors.reshape(-1, 4))
    out = torch.from_numpy(np.concatenate(levels).astype(np.float32))
    if clip:
        out.clamp_(min=0, max=1)
    return out


class BatchDetector:
    """facetorch's FaceDetector run on batches of frames, results in original pixels."""

    def __init__(
        self, face_detector: Any, options: DetectOptions, name: str, *, backend: str, file: ModelFile | None
    ) -> None:
        """``face_detector`` loaded from ``file`` (the resolution's ``ModelFile``), readied on
        ``backend``, the resolution's engine (``fatools.runtime``): ``detector_for``."""
        post = face_detector.postprocessor
        self.name = name
        self.face_detector = face_detector
        self.device = face_detector.device
        self.options = options
        self.confidence_threshold = float(post.confidence_threshold)
        self.top_k = int(post.top_k)
        self.nms_threshold = float(post.nms_threshold)
        self.keep_top_k = int(post.keep_top_k)
        self.score_threshold = float(
            options.score_threshold if options.score_threshold is not None else post.score_threshold
        )
        self.variance = [float(v) for v in post.variance]
        self.prior_box = post.prior_box
        self._priors: dict[tuple[int, int], torch.Tensor] = {}
        from fatools.runtime import engine_for

        self.input_format = (
            engine_for(backend)
            .ready(
                face_detector,
                file,
                name=name,
                example=(1, 3, 128, 128),
                detector=True,
                optimize=options.optimize,
                half=options.half,
                required=options.backend == "onnx",
            )
            .input_format
        )
        from fatools.devices import Halving

        self._halving = Halving(f"the {name} detector", "lower --det-size, or use --fp16 or --device cpu")

    def provenance(self) -> dict:
        """How faces were found, recorded with every frame (fa-predict --facetorch-exact needs it)."""
        provenance = {
            "detector": self.name,
            "det_size": self.options.det_size,
            "square_pad": self.options.square_pad,
            "score_threshold": self.score_threshold,
        }
        if self.options.half:
            provenance["fp16"] = True
        return provenance

    def priors(self, det_height: int, det_width: int) -> torch.Tensor:
        """facetorch's priors for an input size, made once per size and device."""
        key = (det_height, det_width)
        if key not in self._priors:
            self._priors[key] = priors_for(self.prior_box, det_height, det_width).to(self.device)
        return self._priors[key]

    def detect(self, images_bgr: list[np.ndarray]) -> list[FaceList]:
        """Faces of each frame (all frames the same size), best score first."""
        return self.detect_with_inputs(images_bgr)[0]

    @torch.inference_mode()
    def detect_with_inputs(
        self, images_bgr: list[np.ndarray], names: list[str] | None = None
    ) -> tuple[list[FaceList], list[torch.Tensor]]:
        """Faces of each frame, and each frame's detector input (resized to the detector's
        geometry, RGB 0..255, before normalisation): facetorch-exact crops are cut from it.

        Out of device memory, the batch is halved and retried (``devices.Halving``);
        ``names`` (one per frame, e.g. "v.mp4: frame 120") name a frame that fits in no batch.
        """
        if not images_bgr:
            return [], []
        pieces = self._halving.map(self._detect_chunk, images_bgr, len(images_bgr), names)
        return [faces for faces, _ in pieces], [det_input for _, det_input in pieces]

    def _detect_chunk(self, images_bgr: list[np.ndarray]) -> list[tuple[FaceList, torch.Tensor]]:
        from facetorch.datastruct import ImageData

        batch, geo = detector_input(images_bgr, self.options.det_size, self.options.square_pad, self.device)
        data = ImageData(path_input=None)
        data.tensor = batch
        data = self.face_detector.preprocessor.run(data)
        loc, conf, landmarks = self.face_detector.inference(self.input_format.apply(data.tensor))[:3]
        faces = self.postprocess(loc, conf, landmarks, geo, images_bgr[0].shape[1], images_bgr[0].shape[0])
        return list(zip(faces, batch, strict=True))

    def postprocess(
        self,
        loc: torch.Tensor,
        conf: torch.Tensor,
        landmarks: torch.Tensor,
        geo: Geometry,
        width: int,
        height: int,
    ) -> list[FaceList]:
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
        offsets = loc[image_idx, prior_idx]
        centres = p[:, :2] + offsets[:, :2] * var0 * p[:, 2:]
        sizes = p[:, 2:] * torch.exp(offsets[:, 2:] * var1)
        boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1) * scale.repeat(2)

        # facetorch's NMS measures areas as (x2 - x1 + 1) * (y2 - y1 + 1); shifting the far
        # corner by one pixel makes torchvision's IoU identical to it.
        plus_one = torch.tensor([0.0, 0.0, 1.0, 1.0], device=boxes.device)
        kept = batched_nms(boxes + plus_one, cand_scores, image_idx, self.nms_threshold)

        # Of the thousands of candidates, only the few that become faces are mapped back,
        # landmarks decoded, and read out (NMS returns boxes by falling score: the first
        # keep_top_k of an image above the score threshold).
        kept_images = image_idx[kept].tolist()
        ranks = [0] * batch_size
        chosen = []
        for n, (b, score) in enumerate(zip(kept_images, cand_scores[kept].tolist(), strict=True)):
            ranks[b] += 1
            if ranks[b] > self.keep_top_k or score <= self.score_threshold:
                continue
            chosen.append(n)
        faces = kept[chosen]
        p = p[faces]
        lms = landmarks[image_idx[faces], prior_idx[faces]].view(-1, 5, 2)
        lms = (p[:, None, :2] + lms * var0 * p[:, None, 2:]) * scale

        results: list[FaceList] = [[] for _ in range(batch_size)]
        stronger: list[list[list[float]]] = [[] for _ in range(batch_size)]  # each image's boxes so far
        face_scores = cand_scores[faces].tolist()
        face_boxes = geo.to_original(boxes[faces]).tolist()
        face_lms = geo.to_original(lms.reshape(-1, 10)).tolist()
        for n, score, box, lm in zip(chosen, face_scores, face_boxes, face_lms, strict=True):
            b = kept_images[n]
            if self.options.clip_boxes:
                box = [
                    min(max(box[0], 0.0), width),
                    min(max(box[1], 0.0), height),
                    min(max(box[2], 0.0), width),
                    min(max(box[3], 0.0), height),
                ]
            if min(box[2] - box[0], box[3] - box[1]) < max(self.options.min_face, 1e-6):
                continue
            # NMS returns boxes by falling score: those already kept are the stronger ones.
            if self.options.suppress_inner and inside_stronger(box, stronger[b]):
                continue
            stronger[b].append([round(v, 2) for v in box])
            results[b].append(
                {
                    "face": len(results[b]),
                    "box": stronger[b][-1],
                    "score": round(score, 5),
                    "landmarks5": [[round(lm[2 * i], 2), round(lm[2 * i + 1], 2)] for i in range(5)],
                }
            )
        return results


def detect_frames(
    frames: Iterable[Frame], detector: BatchDetector, batch_size: int = 1, keep_inputs: bool = False
) -> Iterator[Frame]:
    """The detection stage: ``faces`` and ``detection`` added to every frame with pixels.

    Frames of one size go through the detector together, ``batch_size`` at a time; other
    records pass through in order.  Frames without faces drop their pixels here; with
    ``keep_inputs`` (facetorch-exact prediction follows) the others keep the detector's
    input, from which facetorch crops its faces.
    """
    provenance = detector.provenance()
    for batch in batches(frames, batch_size, same_shape=True):
        working = [(frame, frame.image) for frame in batch if frame.image is not None]
        results, inputs = detector.detect_with_inputs(
            [image for _, image in working], [where(frame.record) for frame, _ in working]
        )
        for i, ((frame, image), faces) in enumerate(zip(working, results, strict=True)):
            for face in faces:  # measured on the original pixels, while the stage has them
                face["quality"] = assess(face, sharpness(image, face["box"]))
            frame.record["faces"] = faces
            frame.record["detection"] = provenance
            if not faces:
                frame.drop_pixels()
            elif keep_inputs:
                frame.det_input = inputs[i]
        yield from batch


def detect_records(
    records: Iterable[dict], detector: BatchDetector, batch_size: int = 1, on_error: str = "fail"
) -> Iterator[dict]:
    """``detect_frames`` over a record stream, as fa-detect runs it: each frame record's
    pixels are loaded from its video or image as it comes."""
    frames = frames_from_records(records, is_frame, on_error)
    return (frame.record for frame in detect_frames(frames, detector, batch_size))


def build_detector(
    name: str | None = None,
    options: DetectOptions = DetectOptions(),
    device: str = "auto",
    config_path: str | None = None,
    models_dir: str | None = None,
    *,
    trust_config: bool = False,
    verify: bool = True,
) -> BatchDetector:
    """A new BatchDetector (facetorch's FaceDetector), its model checked first.  ``name``
    None: the detector a short-form ``config_path`` names, else retinaface.  (fa-run
    keeps its models for a whole batch, fa-detect its detector:
    ``fatools.models.loading``.)"""
    from fatools.models.request import resolve

    request = detector_request(
        name, options, device, config_path, models_dir, trust_config=trust_config, verify=verify
    )
    return detector_for(resolve(request), options)


def detector_request(
    name: str | None,
    options: DetectOptions,
    device: str,
    config_path: str | None,
    models_dir: str | None,
    *,
    trust_config: bool,
    verify: bool,
) -> ModelRequest:
    """What fa-detect asks of the model store: the detector alone."""
    from fatools.models.request import ModelRequest

    return ModelRequest(
        detector=name,
        tasks=(),
        device=device,
        backend=options.backend,
        optimize=options.optimize,
        fp16=options.half,
        config_path=config_path,
        trust_config=trust_config,
        models_dir=models_dir,
        verify=verify,
    )


def detector_for(resolution: Any, options: DetectOptions) -> BatchDetector:
    """The BatchDetector of a resolved request (``fatools.models.request.Resolution``)."""
    from fatools.models.torchscript import instantiate

    face_detector = instantiate(resolution.config.analyzer.detector)
    return BatchDetector(
        face_detector,
        options,
        resolution.detector,
        backend=resolution.backend,
        file=resolution.file("detector"),
    )
