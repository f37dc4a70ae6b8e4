"""fa-detect | fa-predict --facetorch-exact against facetorch's own FaceAnalyzer.run."""

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


@functools.lru_cache(maxsize=None)
def _analyzer(store: str, detector: str, tasks: tuple[str, ...], device: str):
    """facetorch's FaceAnalyzer for these models, built once (1-2 s each) for every image."""
    return build_analyzer(load_config(None, device=device, tasks=list(tasks), detector=detector, root=store))


@functools.lru_cache(maxsize=None)
def _fatools_models(store: str, detector: str, tasks: tuple[str, ...], exact: bool, device: str):
    """fatools' detector and predictors for these models, built once for every image."""
    det = build_detector(detector, DetectOptions(square_pad=exact), device, None, store)
    predictors = build_predictors(PredictOptions(tasks=tasks, facetorch_exact=exact), device, None, store)
    return det, predictors


@pytest.fixture(scope="module", autouse=True)
def _models_built_once():
    """The models above live for this module's tests, then go (tests/test_gpu.py uses them too)."""
    yield
    _analyzer.cache_clear()
    _fatools_models.cache_clear()


def facetorch_run(store, detector: str, image_path, tasks=TASKS, device="cpu"):
    analyzer = _analyzer(str(store), detector, tuple(tasks), device)
    image = read_image(str(image_path))
    tensor = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1).float()
    data = analyzer.run(tensor=tensor, fix_img_size=True, return_img_data=True, include_tensors=True)
    side = max(image.shape[:2])
    scale = 1080 / side
    pad_x, pad_y = (side - image.shape[1]) // 2, (side - image.shape[0]) // 2
    return data, scale, pad_x, pad_y


def fatools_run(store, detector: str, image_path, tasks=TASKS, exact=True, device="cpu"):
    image = read_image(str(image_path))
    record = frame_record(str(image_path), 0, None, image.shape[1], image.shape[0], image=str(image_path))
    det, predictors = _fatools_models(str(store), detector, tuple(tasks), exact, device)
    return next(predict_records(detect_records([record], det), predictors))


def to_original(values, scale, pad_x, pad_y):
    out = np.array(values, dtype=float).copy()
    out[..., 0] = out[..., 0] / scale - pad_x
    out[..., 1] = out[..., 1] / scale - pad_y
    return out


def assert_parity(data, scale, pad_x, pad_y, record, tasks=TASKS):
    faces = record["faces"]
    assert len(faces) == len(data.faces) > 0
    dets = data.det.dets.cpu().numpy()
    for ours, theirs, det in zip(faces, data.faces, dets):
        box = to_original(det[:4].reshape(2, 2), scale, pad_x, pad_y).reshape(4)
        assert np.abs(np.array(ours["box"]) - box).max() <= 1.0
        assert ours["score"] == pytest.approx(float(det[4]), abs=1e-4)
        if "au" in tasks:
            probs = np.array(list(ours["au"]["probs"].values()))
            assert np.abs(probs - theirs.preds["au"].logits.cpu().numpy()).max() < 1e-4
            assert sorted(a for a in ours["au"]["active"] if a != "AU45") == sorted(
                __import__("fatools.facs", fromlist=["BY_LABEL"]).BY_LABEL[label].code
                for label in theirs.preds["au"].other["multi"])
        if "fer" in tasks:
            soft = torch.softmax(theirs.preds["fer"].logits, 0).cpu().numpy()
            assert np.abs(np.array(list(ours["expression"]["scores"].values())) - soft).max() < 1e-4
            assert ours["expression"]["label"] == theirs.preds["fer"].label
        if "va" in tasks:
            other = theirs.preds["va"].other
            assert ours["va"]["valence"] == pytest.approx(float(other["valence"]), abs=1e-4)
            assert ours["va"]["arousal"] == pytest.approx(float(other["arousal"]), abs=1e-4)
        if "embed" in tasks:
            assert np.abs(np.array(ours["embedding"]) - theirs.preds["embed"].logits.cpu().numpy()).max() < 1e-4
        if "align" in tasks:
            lmk = theirs.preds["align"].other["lmk3d"].T.cpu().numpy()
            theirs_xy = to_original(lmk[:, :2], scale, pad_x, pad_y)
            assert np.abs(np.array(ours["landmarks3d"])[:, :2] - theirs_xy).max() < 0.02
            angles = [float(a) for a in theirs.preds["align"].other["pose"]["angles"]]
            assert [ours["pose"][k] for k in ("yaw", "pitch", "roll")] == pytest.approx(angles, abs=1e-3)


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


def test_default_mode_finds_the_same_faces(mixed_store, faces_dir):
    """Default mode differs by design (documented in fa-predict(1)); the faces are the same."""
    exact = fatools_run(mixed_store, "retinaface-mnet", faces_dir / "family4.jpg", exact=True)
    default = fatools_run(mixed_store, "retinaface-mnet", faces_dir / "family4.jpg", exact=False)
    assert len(exact["faces"]) == len(default["faces"]) == 4
    for a in exact["faces"]:
        closest = min(np.abs(np.array(a["box"]) - np.array(b["box"])).max() for b in default["faces"])
        assert closest < 6
