"""fa-detect | fa-predict --facetorch-exact against facetorch's own FaceAnalyzer.run.

On stand-ins, with the real RetinaFace-MobileNet0.25 on real photos, and on the compute
twins (benchmarks/twins.py: facetorch's architectures with seeded weights, which see
every pixel, unlike the stand-ins' 4x4 pools), with fatools on ONNX Runtime (the CPU's
default) and on torch.  ``TOLERANCES`` are the README's claim, field by field.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from conftest import squares_image

from fatools.detect import DetectOptions, build_detector, detect_records
from fatools.models.config import build_analyzer, load_config
from fatools.predict import PredictOptions, build_predictors, predict_records
from fatools.records import frame_record
from fatools.video import read_image

TASKS = ["au", "fer", "va", "align", "embed"]
TWIN_TASKS = ["au", "fer", "va", "align"]  # the twins have no embed model

# The README's claim (boxes within a pixel, every probability and value within 1e-4 of
# its scale), field by field; the records' rounding is added where it is coarser:
#   box        original pixels, 1 px
#   score      detector probability, 1e-4
#   au         41 probabilities (the model's outputs), 1e-4
#   fer        8 softmax probabilities, 1e-4
#   va         valence and arousal in [-1, 1], 1e-4
#   embed      the embedding, 1e-4 times its largest magnitude (at least 1)
#   landmarks  x, y, z in original pixels, 1e-4 times the face's longer side, plus 0.005
#              (the record keeps 0.01 px)
#   pose       yaw, pitch, roll in degrees, 1e-4, plus 5e-4 (the record keeps 0.001)
TOLERANCES = {
    "box": 1.0,
    "score": 1e-4,
    "au": 1e-4,
    "fer": 1e-4,
    "va": 1e-4,
    "embed": 1e-4,
    "landmarks": 1e-4,
    "pose": 1e-4 + 5e-4,
}


@functools.cache
def _analyzer(store: str, detector: str, tasks: tuple[str, ...], device: str):
    """facetorch's FaceAnalyzer for these models, built once (1-2 s each) for every image."""
    return build_analyzer(load_config(None, device=device, tasks=list(tasks), detector=detector, root=store))


@functools.cache
def _fatools_models(
    store: str, detector: str, tasks: tuple[str, ...], exact: bool, device: str, backend: str = "auto"
):
    """fatools' detector and predictors for these models, built once for every image."""
    det = build_detector(detector, DetectOptions(square_pad=exact, backend=backend), device, None, store)
    predictors = build_predictors(
        PredictOptions(tasks=tasks, facetorch_exact=exact, backend=backend), device, None, store
    )
    return det, predictors


@pytest.fixture(scope="module", autouse=True)
def _models_built_once():
    """The models above live for this module's tests, then go (tests/test_gpu.py uses them too)."""
    yield
    _analyzer.cache_clear()
    _fatools_models.cache_clear()
    _facetorch_data.cache_clear()


def facetorch_run(store, detector: str, image_path, tasks=TASKS, device="cpu"):
    analyzer = _analyzer(str(store), detector, tuple(tasks), device)
    image = read_image(str(image_path))
    tensor = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1).float()
    data = analyzer.run(tensor=tensor, fix_img_size=True, return_img_data=True, include_tensors=True)
    side = max(image.shape[:2])
    scale = 1080 / side
    pad_x, pad_y = (side - image.shape[1]) // 2, (side - image.shape[0]) // 2
    return data, scale, pad_x, pad_y


@functools.cache
def _facetorch_data(store: str, detector: str, image_path: str, tasks: tuple[str, ...]):
    """facetorch_run once per image, for the tests that compare it with several engines."""
    return facetorch_run(store, detector, image_path, list(tasks))


def fatools_run(store, detector: str, image_path, tasks=TASKS, exact=True, device="cpu", backend="auto"):
    image = read_image(str(image_path))
    record = frame_record(str(image_path), 0, None, image.shape[1], image.shape[0], image=str(image_path))
    det, predictors = _fatools_models(str(store), detector, tuple(tasks), exact, device, backend)
    return next(predict_records(detect_records([record], det), predictors))


def to_original(values, scale, pad_x, pad_y):
    out = np.array(values, dtype=float).copy()
    out[..., 0] = out[..., 0] / scale - pad_x
    out[..., 1] = out[..., 1] / scale - pad_y
    return out


def parity_differences(data, scale, pad_x, pad_y, record, tasks=TASKS) -> dict[str, float]:
    """field -> the largest difference between fatools' record and facetorch's data, in
    the units of ``TOLERANCES`` (landmarks beyond the rounding, over the face's side)."""
    from fatools.facs import BY_LABEL

    faces = record["faces"]
    assert len(faces) == len(data.faces) > 0
    dets = data.det.dets.cpu().numpy()
    worst: dict[str, float] = {}

    def keep(field: str, value: float) -> None:
        worst[field] = max(worst.get(field, 0.0), float(value))

    for ours, theirs, det in zip(faces, data.faces, dets, strict=True):
        box = to_original(det[:4].reshape(2, 2), scale, pad_x, pad_y).reshape(4)
        keep("box", np.abs(np.array(ours["box"]) - box).max())
        keep("score", abs(ours["score"] - float(det[4])))
        if "au" in tasks:
            probs = np.array(list(ours["au"]["probs"].values()))
            keep("au", np.abs(probs - theirs.preds["au"].logits.cpu().numpy()).max())
            assert sorted(a for a in ours["au"]["active"] if a != "AU45") == sorted(
                BY_LABEL[label].code for label in theirs.preds["au"].other["multi"]
            )
        if "fer" in tasks:
            soft = torch.softmax(theirs.preds["fer"].logits, 0).cpu().numpy()
            keep("fer", np.abs(np.array(list(ours["expression"]["scores"].values())) - soft).max())
            assert ours["expression"]["label"] == theirs.preds["fer"].label
        if "va" in tasks:
            other = theirs.preds["va"].other
            keep(
                "va",
                max(
                    abs(ours["va"]["valence"] - float(other["valence"])),
                    abs(ours["va"]["arousal"] - float(other["arousal"])),
                ),
            )
        if "embed" in tasks:
            theirs_embed = theirs.preds["embed"].logits.cpu().numpy()
            keep(
                "embed",
                np.abs(np.array(ours["embedding"]) - theirs_embed).max()
                / max(1.0, np.abs(theirs_embed).max()),
            )
        if "align" in tasks:
            lmk = theirs.preds["align"].other["lmk3d"].T.cpu().numpy().astype(float)
            theirs_xyz = np.concatenate(
                [to_original(lmk[:, :2], scale, pad_x, pad_y), lmk[:, 2:] / scale], axis=1
            )
            side = max(ours["box"][2] - ours["box"][0], ours["box"][3] - ours["box"][1])
            difference = np.abs(np.array(ours["landmarks3d"]) - theirs_xyz).max()
            keep("landmarks_px", difference)
            keep("landmarks", max(difference - 0.005, 0.0) / side)
            angles = [float(a) for a in theirs.preds["align"].other["pose"]["angles"]]
            keep("pose", np.abs(np.array([ours["pose"][k] for k in ("yaw", "pitch", "roll")]) - angles).max())
    return worst


def assert_parity(data, scale, pad_x, pad_y, record, tasks=TASKS) -> dict[str, float]:
    """Every field of ``record`` within ``TOLERANCES`` of facetorch's; the differences."""
    worst = parity_differences(data, scale, pad_x, pad_y, record, tasks)
    print("parity, largest differences:", {k: f"{v:.2g}" for k, v in worst.items()})
    beyond = {
        field: value for field, value in worst.items() if field in TOLERANCES and value > TOLERANCES[field]
    }
    assert not beyond, f"beyond {TOLERANCES}: {beyond}"
    return worst


def test_parity_with_standins(standin_store, tmp_path):
    image = squares_image(tmp_path / "squares.png")
    data, scale, pad_x, pad_y = facetorch_run(standin_store, "retinaface", image)
    record = fatools_run(standin_store, "retinaface", image)
    assert len(record["faces"]) == 3
    assert_parity(data, scale, pad_x, pad_y, record)


@pytest.mark.parametrize("photo", ["family4.jpg", "grid25.jpg"])
def test_parity_with_real_detector(mixed_store, faces_dir, photo):
    data, scale, pad_x, pad_y = facetorch_run(mixed_store, "retinaface-mnet", faces_dir / photo)
    record = fatools_run(mixed_store, "retinaface-mnet", faces_dir / photo)
    assert len(record["faces"]) == {"family4.jpg": 4, "grid25.jpg": 25}[photo]
    assert_parity(data, scale, pad_x, pad_y, record)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_parity_with_twins(twin_store, faces_dir, backend):
    """The real architectures (every twin predictor, the real MobileNet0.25), fatools on each engine."""
    photo = faces_dir / "family4.jpg"
    data, scale, pad_x, pad_y = _facetorch_data(
        str(twin_store), "retinaface-mnet", str(photo), tuple(TWIN_TASKS)
    )
    record = fatools_run(twin_store, "retinaface-mnet", photo, TWIN_TASKS, backend=backend)
    assert len(record["faces"]) == 4
    assert_parity(data, scale, pad_x, pad_y, record, TWIN_TASKS)


def test_default_mode_finds_the_same_faces(mixed_store, faces_dir):
    """Default mode differs by design (documented in fa-predict(1)); the faces are the same."""
    exact = fatools_run(mixed_store, "retinaface-mnet", faces_dir / "family4.jpg", exact=True)
    default = fatools_run(mixed_store, "retinaface-mnet", faces_dir / "family4.jpg", exact=False)
    assert len(exact["faces"]) == len(default["faces"]) == 4
    for a in exact["faces"]:
        closest = min(np.abs(np.array(a["box"]) - np.array(b["box"])).max() for b in default["faces"])
        assert closest < 6
