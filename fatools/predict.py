"""Batched per-face predictions with facetorch's predictors: crops, models, record fields.

Each predictor is facetorch's own FacePredictor (its pre-processor, model and input
size from the configuration).  What differs from ``FaceAnalyzer.run`` is how faces get
there, and it is the expensive part on video:

* default: every face is cropped as a square straight from the original frame's
  pixels (colours 0..1, zero padding beyond the frame edge) and resized once, to each
  predictor's own input size; faces of many frames go through a predictor together;
* ``facetorch_exact``: facetorch's path reproduced step by step, so outputs equal
  ``FaceAnalyzer.run``: the frame padded to a square and resized to the detector size,
  the detector's mean subtracted (facetorch crops faces from that tensor), an integer
  squared box, the 380 px unifier, then the predictor's resize.

Post-processing (``fields``) turns raw outputs into record fields.  Nothing moves
between host and device per face: crops are made on the device, outputs come back
once per predictor batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fatools import facs
from fatools.errors import RecordError
from fatools.geometry import Geometry, crop_padded, detector_input, from_detection, square_box
from fatools.quality import assess
from fatools.records import has_faces, where
from fatools.stream import Frame, batches, frames_from_records

if TYPE_CHECKING:  # pragma: no cover
    from fatools.models.catalogue import ModelFile
    from fatools.models.request import ModelRequest

log = logging.getLogger("fatools")

DEFAULT_TASKS = ("au", "fer", "va", "align")
ALL_TASKS = ("au", "fer", "va", "align", "embed")


@dataclass(frozen=True)
class PredictOptions:
    tasks: tuple[str, ...] = DEFAULT_TASKS
    au_threshold: float = 0.5
    facetorch_exact: bool = (
        False  # crops from the detector input, as facetorch (geometry from record["detection"])
    )
    face_batch: int | None = None  # faces per predictor batch; None: chosen per model and device
    optimize: bool = (
        True  # frozen models, channels-last inputs for convolutional ones (fatools.runtime.torch_engine)
    )
    half: bool = False  # fp16 weights and inputs (opt-in; changes outputs)
    int8: bool = False  # CPU: int8 Linear layers in the AU transformer (opt-in; changes outputs)
    backend: str = "auto"  # auto, torch or onnx (fatools.runtime)
    bf16: bool = (
        False  # CPU: predictors under bfloat16 autocast where the CPU has it (opt-in; changes outputs)
    )


def predict_options(
    *,
    tasks: Iterable[str] = DEFAULT_TASKS,
    au_threshold: float = 0.5,
    facetorch_exact: bool = False,
    face_batch: int | None = None,
    optimize: bool = True,
    fp16: bool = False,
    int8: bool = False,
    bf16: bool = False,
    backend: str = "auto",
) -> PredictOptions:
    """PredictOptions from the commands' options (fa-predict's and fa-run's names: ``fp16``
    is ``half``); the tasks keep their first order, each once."""
    return PredictOptions(
        tasks=tuple(dict.fromkeys(tasks)),
        au_threshold=au_threshold,
        facetorch_exact=facetorch_exact,
        face_batch=face_batch,
        optimize=optimize,
        half=fp16,
        int8=int8,
        bf16=bf16,
        backend=backend,
    )


def _input_size(predictor_cfg: Any) -> int:
    for transform in predictor_cfg.preprocessor.transform.transforms:
        if str(transform.get("_target_", "")).endswith("Resize"):
            size = transform["size"]
            return int(size[0] if not isinstance(size, int) else size)
    raise ValueError("predictor configuration has no Resize transform")


class FacePredictors:
    """facetorch predictors for the chosen tasks, run on the faces of frame batches."""

    def __init__(
        self,
        cfg: Any,
        options: PredictOptions,
        device: torch.device,
        *,
        backend: str,
        files: dict[str, ModelFile],
    ) -> None:
        """The predictors of ``cfg`` for ``options.tasks``, each loaded from its ``files[task]``
        (the resolution's ``ModelFile``) and readied on ``backend``, the resolution's engine
        (``fatools.runtime``): ``predictors_for``."""
        from omegaconf import OmegaConf

        from fatools.devices import Halving, default_batch_size
        from fatools.models.torchscript import instantiate
        from fatools.runtime import engine_for

        self.options = options
        self.device = device
        self.predictors = {task: instantiate(cfg.analyzer.predictor[task]) for task in options.tasks}
        self.sizes = {task: _input_size(cfg.analyzer.predictor[task]) for task in options.tasks}
        # FATOOLS_FORCE_BF16=1 applies --bf16 where it would be slow: for measuring its effect.
        bf16 = options.bf16 and bf16_wanted(device, force=os.environ.get("FATOOLS_FORCE_BF16") == "1")
        engine = engine_for(backend)
        self.input_formats = {
            task: engine.ready(
                predictor,
                files.get(task),
                name=task,
                example=(1, 3, self.sizes[task], self.sizes[task]),
                optimize=options.optimize,
                half=options.half,
                int8=options.int8 and task == "au",
                bf16=bf16,
                required=options.backend == "onnx",
            ).input_format
            for task, predictor in self.predictors.items()
        }
        self.face_batches = {
            task: options.face_batch or default_batch_size(device, task) for task in options.tasks
        }
        self.halving = {
            task: Halving(f"the {task} model", "use --fp16 or --device cpu") for task in options.tasks
        }
        # facetorch's objects (untyped): its unifier and detector transform in facetorch-exact
        # mode, its landmark and pose utilizer with the align task.
        self.unifier: Any | None = instantiate(cfg.analyzer.unifier) if options.facetorch_exact else None
        self.detector_transform: Any | None = None
        if options.facetorch_exact:
            self.detector_transform = instantiate(cfg.analyzer.detector.preprocessor.transform)
        self.align: Any | None = None
        if "align" in options.tasks:
            # The landmark/pose maths runs per face; on the CPU that costs no device syncs.
            align_cfg = OmegaConf.to_container(cfg.analyzer.utilizer.align, resolve=True)
            assert isinstance(align_cfg, dict)  # the utilizer's section is a mapping
            align_cfg["device"] = {"_target_": "torch.device", "type": "cpu"}
            self.align = instantiate(align_cfg)

    # -- crops -------------------------------------------------------------------
    def _default_crops(
        self, image_bgr: np.ndarray, faces: list[dict]
    ) -> tuple[list[torch.Tensor], list[tuple]]:
        """Square crops of the original pixels (RGB, 0..1).

        Cut from the 8-bit frame (on the device) and converted one crop at a time: the
        same values as converting the whole frame first, for the cost of the faces only.
        """
        from fatools.devices import upload

        frame = upload(torch.from_numpy(image_bgr), self.device).permute(2, 0, 1)  # BGR, CHW, uint8
        crops, rois = [], []
        for face in faces:
            roi = square_box(face["box"])
            crops.append(crop_padded(frame, roi).flip(0).float() / 255.0)
            rois.append(roi)
        return crops, rois

    def _exact_crops(self, frame: Frame) -> tuple[list[torch.Tensor | None], list[tuple]]:
        """facetorch's crops: from the frame as its detector saw it (padded to a square and
        resized, the detector's mean subtracted), an integer squared box, the 380 px unifier."""
        from facetorch.datastruct import Location

        transform, unifier = self.detector_transform, self.unifier
        assert transform is not None and unifier is not None  # made in facetorch-exact mode
        record = frame.record
        geo = from_detection(record)
        if geo is None or not record["detection"].get("square_pad"):
            raise RecordError(
                f"{record.get('video')} frame {record.get('frame')}: --facetorch-exact needs faces "
                "found with fa-detect --facetorch-exact (the record's detection says square_pad false)"
            )
        resized = frame.det_input
        if resized is None:
            assert frame.image is not None  # predict's frames have their pixels
            resized = detector_input([frame.image], record["detection"].get("det_size"), True, self.device)[
                0
            ][0]
        # facetorch crops faces from the detector's input after its mean is subtracted
        # (its colour flip is undone by the post-processor's): reproduce that.
        tensor = transform(resized.unsqueeze(0))[0]
        crops, rois = [], []
        for face in record["faces"]:
            d = torch.round(torch.tensor(geo.box_to_detector(face["box"]))).int().tolist()
            loc = Location(x1=d[0], y1=d[1], x2=d[2], y2=d[3])
            loc.form_square()
            crop = tensor[:, loc.y1 : loc.y2, loc.x1 : loc.x2]
            crops.append(None if 0 in crop.shape else unifier.transform(crop))
            rois.append((loc.x1, loc.y1, loc.x2, loc.y2, geo))
        return crops, rois

    # -- models ------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, frames: list[Frame]) -> None:
        """Add prediction fields to every face of the given frames (with pixels), in place.

        In facetorch-exact mode a frame's ``det_input``, when the detector kept it, saves
        padding and resizing the frame again.
        """
        from torchvision.transforms import functional as F

        crops: list[torch.Tensor] = []
        rois: list[tuple] = []
        owners: list[dict] = []
        names: list[str] = []  # "video: frame N, face K", for an error that names the face
        for frame in frames:
            faces = frame.record.get("faces")
            if not faces:
                continue
            frame_crops: Sequence[torch.Tensor | None]
            if self.options.facetorch_exact:
                frame_crops, frame_rois = self._exact_crops(frame)
            else:
                assert frame.image is not None  # predict's frames have their pixels
                frame_crops, frame_rois = self._default_crops(frame.image, faces)
            for face, crop, roi in zip(faces, frame_crops, frame_rois, strict=True):
                if crop is None:
                    continue  # facetorch drops a face whose squared box leaves the frame
                crops.append(crop)
                rois.append(roi)
                owners.append(face)
                names.append(f"{where(frame.record)}, face {face.get('face')}")
        if not owners:
            return
        outputs: dict[str, np.ndarray] = {}
        # On the CPU the antialiased resize costs about as much as a small model: tasks of
        # one input size (au and va, 224 px) share each face's resized crop.  (A GPU
        # resizes fast and has less memory to keep them in.)
        sizes = [self.sizes[task] for task in self.predictors]
        shared = {size for size in sizes if sizes.count(size) > 1} if self.device.type == "cpu" else set()
        resized: dict[tuple[int, int], torch.Tensor] = {}

        def fitted(i: int, size: int) -> torch.Tensor:
            """Face ``i``'s crop resized to ``size`` x ``size``."""
            crop = resized.get((i, size))
            if crop is None:
                crop = F.resize(crops[i].unsqueeze(0), [size, size], antialias=True)[0]
                if size in shared:
                    resized[(i, size)] = crop
            return crop

        for task, predictor in self.predictors.items():
            size = self.sizes[task]

            def run(chunk: list[int], task: str = task, predictor: Any = predictor, size: int = size) -> list:
                if self.options.facetorch_exact:  # unified to 380 px; the pre-processor resizes
                    batch = torch.stack([crops[i] for i in chunk])
                else:
                    batch = torch.stack([fitted(i, size) for i in chunk])
                batch = predictor.preprocessor.run(batch)
                out = predictor.inference(self.input_formats[task].apply(batch))
                return list((out[0] if isinstance(out, tuple) else out).unbind(0))

            rows = self.halving[task].map(run, list(range(len(crops))), self.face_batches[task], names)
            outputs[task] = torch.stack(rows).float().cpu().numpy()  # one copy to the host per model
        for i, face in enumerate(owners):
            face.update(self.fields({task: out[i] for task, out in outputs.items()}, rois[i]))
            if "pose" in face and isinstance(face.get("quality"), dict):
                # The pose is known now: the verdict takes it in (quality stays the last field).
                quality = face.pop("quality")
                face["quality"] = assess({**face, "quality": quality})

    # -- post-processing -----------------------------------------------------------
    def fields(self, raw: dict[str, np.ndarray], roi: tuple) -> dict:
        """Record fields of one face from its raw model outputs."""
        fields: dict[str, Any] = {}
        if "au" in raw:
            fields["au"] = au_fields(raw["au"], self.options.au_threshold)
            if self.input_formats["au"].int8:
                fields["au"]["int8"] = True  # results of a quantised model: say so in the data
            if self.input_formats["au"].bf16:
                fields["au"]["bf16"] = True
        if "fer" in raw:
            labels = list(self.predictors["fer"].postprocessor.labels)
            fields["expression"] = expression_fields(raw["fer"], labels)
        if "va" in raw:
            offsets = list(getattr(self.predictors["va"].postprocessor, "offsets", [0, 0]))
            fields["va"] = va_fields(float(raw["va"][0]) + offsets[0], float(raw["va"][1]) + offsets[1])
        if "align" in raw:
            landmarks, pose = self._landmarks_pose(raw["align"], roi)
            fields["landmarks3d"] = landmarks
            fields["pose"] = pose
            blink = blink_fields(landmarks)
            au = fields.setdefault("au", {"active": []})
            au["derived"] = {"AU45": blink}
            if blink["active"]:
                au["active"] = au["active"] + ["AU45"]
        if "embed" in raw:
            fields["embedding"] = [round(float(v), 6) for v in raw["embed"]]
        return fields

    def _landmarks_pose(self, params: np.ndarray, roi: tuple) -> tuple[list, dict]:
        param = torch.from_numpy(np.asarray(params, dtype=np.float32))
        box = list(roi[:4])
        # facetorch's Lmk3DMeshPose maths (sparse landmarks and pose only: the dense
        # mesh costs far more and nothing downstream uses it).
        assert self.align is not None  # made with the align task, whose outputs these are
        vertices = self.align._compute_sparse_vert(param, box, transform_space=True)
        angles, _ = self.align._compute_pose(param, box)
        points = vertices.T.numpy().astype(float)
        if len(roi) == 5:  # exact mode: detector-input pixels back to the original frame
            geo: Geometry = roi[4]
            geo.points_to_original(points)
        landmarks = [[round(x, 2), round(y, 2), round(z, 2)] for x, y, z in points.tolist()]
        pose = {"yaw": round(angles[0], 3), "pitch": round(angles[1], 3), "roll": round(angles[2], 3)}
        return landmarks, pose


def bf16_wanted(device: torch.device, force: bool = False) -> bool:
    """Whether ``--bf16`` applies here: on a CPU that runs bfloat16 natively (AMX or
    AVX512_BF16); elsewhere it would be slower than float32, so the models stay float32,
    with one line saying so (``force``, for measurements of its effect, applies it anyway)."""
    from fatools.runtime.torch_engine import bf16_hardware

    if device.type != "cpu":
        log.warning("--bf16 is for the CPU; on %s the models stay float32 (use --fp16 there)", device.type)
        return False
    if force or bf16_hardware():
        return True
    log.warning(
        "--bf16: this CPU has neither AMX nor AVX512_BF16, so bfloat16 would be slower than float32; "
        "the models stay float32"
    )
    return False


def au_fields(scores: np.ndarray, threshold: float) -> dict:
    probs = {code: round(float(p), 6) for code, p in zip(facs.CODES, scores, strict=True)}
    active = [code for code, p in probs.items() if p > threshold]
    details = {}
    for code in active:
        unit = facs.BY_CODE[code]
        details[code] = {
            "name": unit.name,
            "description": unit.description,
            "intensity": facs.intensity(probs[code], threshold),
        }
    return {"probs": probs, "active": active, "threshold": threshold, "details": details}


def expression_fields(logits: np.ndarray, labels: list[str]) -> dict:
    shifted = np.exp(logits - logits.max())
    probs = shifted / shifted.sum()
    best = int(np.argmax(probs))
    return {
        "label": labels[best],
        "confidence": round(float(probs[best]), 6),
        "scores": {label: round(float(p), 6) for label, p in zip(labels, probs, strict=True)},
    }


def va_fields(valence: float, arousal: float) -> dict:
    return {
        "valence": round(valence, 6),
        "arousal": round(arousal, 6),
        "quadrant": facs.QUADRANTS[(valence >= 0, arousal >= 0)],
    }


def blink_fields(landmarks: list) -> dict:
    ear = facs.eye_aspect_ratio(np.asarray(landmarks))
    return {
        "active": bool(ear < facs.BLINK_EAR),
        "ear": round(ear, 4),
        "derived": True,
        "method": f"eye aspect ratio of the 3D landmarks below {facs.BLINK_EAR}",
    }


def predict_frames(
    frames: Iterable[Frame], predictors: FacePredictors, frame_batch: int | None = None
) -> Iterator[Frame]:
    """The prediction stage: prediction fields added to every face of the frames with pixels.

    The faces of up to ``frame_batch`` frames (default per device: 8 on CPU, 32 on CUDA)
    go through the predictors together; other records pass through in order.  Frames
    leave without their pixels.
    """
    from fatools.devices import default_batch_size

    frame_batch = frame_batch or default_batch_size(predictors.device, "frames")
    for batch in batches(frames, frame_batch):
        predictors.predict([frame for frame in batch if frame.image is not None])
        for frame in batch:
            frame.drop_pixels()
        yield from batch


def predict_records(
    records: Iterable[dict],
    predictors: FacePredictors,
    frame_batch: int | None = None,
    on_error: str = "fail",
) -> Iterator[dict]:
    """``predict_frames`` over a record stream, as fa-predict runs it: the pixels of each
    record with faces are loaded from its video or image as it comes."""
    frames = frames_from_records(records, has_faces, on_error)
    return (frame.record for frame in predict_frames(frames, predictors, frame_batch))


def build_predictors(
    options: PredictOptions = PredictOptions(),
    device: str = "auto",
    config_path: str | None = None,
    models_dir: str | None = None,
    *,
    trust_config: bool = False,
    verify: bool = True,
) -> FacePredictors:
    """New facetorch predictors for ``options.tasks``, each model checked before any work.
    (fa-run keeps its models for a whole batch, fa-predict its predictors:
    ``fatools.models.loading``.)"""
    from fatools.models.request import resolve

    request = predictors_request(
        options, device, config_path, models_dir, trust_config=trust_config, verify=verify
    )
    return predictors_for(resolve(request), options)


def predictors_request(
    options: PredictOptions,
    device: str,
    config_path: str | None,
    models_dir: str | None,
    *,
    trust_config: bool,
    verify: bool,
) -> ModelRequest:
    """What fa-predict asks of the model store: the predictors of its tasks, no detector."""
    from fatools.models.request import ModelRequest

    return ModelRequest(
        tasks=tuple(options.tasks),
        detection=False,
        device=device,
        backend=options.backend,
        optimize=options.optimize,
        fp16=options.half,
        int8=options.int8,
        bf16=options.bf16,
        config_path=config_path,
        trust_config=trust_config,
        models_dir=models_dir,
        verify=verify,
    )


def predictors_for(resolution: Any, options: PredictOptions) -> FacePredictors:
    """The FacePredictors of a resolved request (``fatools.models.request.Resolution``)."""
    # Each predictor's file: the catalogue names a predictor's model after its task.
    files = {file.name: file for file in resolution.predictor_files()}
    return FacePredictors(
        resolution.config, options, resolution.device, backend=resolution.backend, files=files
    )
