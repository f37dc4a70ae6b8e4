"""Stand-in models: real TorchScript files that facetorch loads and runs like the real ones."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from fatools.models import catalogue, config, store
from fatools.testing import build_standins
from fatools.testing.meta3dmm import build_meta

ALL_TASKS = ["au", "fer", "va", "align", "embed"]
# (x, y, side, colour) on a 1280x720 frame: sizes from large to small, near-white colours.
SQUARES = [
    (100, 150, 300, (255, 255, 255)),
    (600, 200, 150, (235, 210, 255)),
    (1000, 420, 80, (210, 255, 225)),
]
# Reader: SquarePad (centred, 280 px top and bottom) then Resize 1280 -> 1080.
SCALE = 1080 / 1280
PAD_TOP = (1280 - 720) // 2


@pytest.fixture(scope="module")
def standins(standin_store: Path) -> Path:
    """The session's stand-in store (conftest); tests here only read it."""
    return standin_store


@pytest.fixture(scope="module")
def analyzer(standins: Path):
    return config.build_analyzer(config.load_config(root=standins, tasks=ALL_TASKS))


@pytest.fixture(scope="module")
def squares_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = Image.new("RGB", (1280, 720), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for x, y, side, colour in SQUARES:
        draw.rectangle([x, y, x + side - 1, y + side - 1], fill=colour)
    path = tmp_path_factory.mktemp("img") / "squares.png"
    image.save(path)
    return path


@pytest.fixture(scope="module")
def result(analyzer, squares_png: Path):
    return analyzer.run(
        path_image=str(squares_png), fix_img_size=True, return_img_data=True, include_tensors=True
    )


def to_original(box: list[float]) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1 / SCALE, y1 / SCALE - PAD_TOP, x2 / SCALE, y2 / SCALE - PAD_TOP]


def predictor(standins: Path, task: str):
    """The predictor exactly as facetorch builds it from fatools' configuration."""
    from hydra.utils import instantiate

    cfg = config.load_config(root=standins, tasks=[task])
    return instantiate(cfg.analyzer.predictor[task])


# --- the store entries ----------------------------------------------------------------


def test_every_model_gets_a_standin(standins: Path) -> None:
    for name in catalogue.MODELS:
        info = store.read_source(name, standins)
        assert store.is_present(name, standins), name
        assert info["source"] == "standin" and info["sha256"] == store.file_sha256(
            store.model_path(name, standins)
        )
    same = store.model_path("retinaface", standins).read_bytes()
    assert store.model_path("retinaface-mnet", standins).read_bytes() == same
    assert sum(store.model_path(n, standins).stat().st_size for n in catalogue.MODELS) < 2_000_000


def test_standins_are_reproducible(standins: Path, tmp_path: Path) -> None:
    build_standins(tmp_path, ["au", "align-meta", "retinaface"])
    for name in ("au", "align-meta", "retinaface"):
        assert store.file_sha256(store.model_path(name, tmp_path)) == store.file_sha256(
            store.model_path(name, standins)
        )


def test_python_m_fatools_testing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fatools.testing", str(tmp_path), "va", "align-meta"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert f"va: {tmp_path / 'va' / 'model.pt'}" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["align-meta", "va"]


# --- predictors through facetorch -----------------------------------------------------


@pytest.mark.parametrize(
    "task, width, low, high",
    [
        ("au", 41, 0.0, 1.0),
        ("fer", 8, None, None),
        ("va", 2, -1.0, 1.0),
        ("align", 62, -1.0, 1.0),
        ("embed", 512, None, None),
    ],
)
def test_predictor_contract(
    standins: Path, task: str, width: int, low: float | None, high: float | None
) -> None:
    model = predictor(standins, task)
    gen = torch.Generator().manual_seed(0)
    faces = torch.rand(3, 3, 380, 380, generator=gen)  # what the unifier hands over
    preds = model.run(faces)
    assert len(preds) == 3
    logits = torch.stack([p.logits for p in preds])
    assert logits.shape == (3, width) and torch.isfinite(logits).all()
    if low is not None:
        assert logits.min() >= low and logits.max() <= high
    again = torch.stack([p.logits for p in model.run(faces)])
    assert torch.equal(logits, again)  # deterministic
    assert not torch.allclose(logits[0], logits[1])  # and input-dependent


def test_au_fires_for_bright_faces(standins: Path) -> None:
    model = predictor(standins, "au")
    bright = model.run(torch.full((1, 3, 380, 380), 0.5))[0]  # white minus the detector mean
    dark = model.run(torch.full((1, 3, 380, 380), -0.45))[0]
    assert set(bright.other["multi"]) == {"cheek_raiser", "lip_corner_puller", "lips_part"}
    assert dark.other["multi"] == []


def test_predictor_rejects_a_wrongly_sized_input(standins: Path) -> None:
    model = predictor(standins, "au")
    with pytest.raises(
        (RuntimeError, torch.jit.Error),
        match=r"fatools stand-in au: expected input \[B,3,224,224\], got \[2, 3, 200, 200\]",
    ):
        model.inference(torch.zeros(2, 3, 200, 200))
    embed = torch.jit.load(str(store.model_path("embed", standins)))
    with pytest.raises((RuntimeError, torch.jit.Error), match=r"expected input \[B,3,244,244\]"):
        embed(torch.zeros(1, 3, 224, 224))


# --- detector -------------------------------------------------------------------------


def decode(loc: torch.Tensor, priors: torch.Tensor, height: int, width: int) -> torch.Tensor:
    centre = priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * 0.2)
    boxes = torch.cat([centre - size / 2, centre + size / 2], dim=1)
    return boxes * torch.tensor([width, height, width, height])


def test_detector_contract_matches_facetorch_priors(standins: Path) -> None:
    from facetorch.analyzer.detector.post import PriorBox
    from facetorch.datastruct import Dimensions

    model = torch.jit.load(str(store.model_path("retinaface", standins)))
    height, width = 333, 517  # not multiples of 32: ceil'd feature maps, centres off the edge
    img = torch.zeros(2, 3, height, width)
    rects = [(40, 30, 120, 200), (300, 100, 190, 90)]  # x, y, w, h: rectangles, not squares
    for x, y, w, h in rects:
        img[0, :, y : y + h, x : x + w] = 250.0
    mean = torch.tensor([123.0, 117.0, 104.0]).view(1, 3, 1, 1)
    loc, conf, landmarks = model((img - mean)[:, [2, 1, 0]])
    priors = PriorBox([[16, 32], [64, 128], [256, 512]], [8, 16, 32], False).forward(
        Dimensions(height, width)
    )
    assert loc.shape == (2, priors.shape[0], 4)
    assert conf.shape == (2, priors.shape[0], 2) and landmarks.shape == (2, priors.shape[0], 10)
    assert torch.allclose(conf.sum(-1), torch.ones(2, priors.shape[0]))
    assert conf[1, :, 1].max() < 0.02  # the blank image: nothing above facetorch's threshold
    boxes = decode(loc[0], priors, height, width)
    hits = conf[0, :, 1] > 0.6
    assert hits.sum() > 20
    for box in boxes[hits]:
        assert any(
            torch.allclose(box, torch.tensor([x, y, x + w, y + h], dtype=torch.float32), atol=0.01)
            for x, y, w, h in rects
        )
    # Landmarks decode (RetinaFace style) to fixed points of the box: the eyes of rect 0.
    best = int(torch.argmax(conf[0, :, 1]))
    points = priors[best, :2] + landmarks[0, best].view(5, 2) * 0.1 * priors[best, 2:]
    points = points * torch.tensor([width, height])
    x, y, w, h = rects[0]
    assert torch.allclose(points[0], torch.tensor([x + 0.3 * w, y + 0.35 * h]), atol=0.05)
    assert torch.allclose(points[4], torch.tensor([x + 0.65 * w, y + 0.75 * h]), atol=0.05)


# --- the whole facetorch pipeline on stand-ins ----------------------------------------


def test_analyzer_finds_the_squares(result) -> None:
    assert len(result.faces) == 3
    assert result.det.dets.shape == (3, 5)
    found = [to_original(det[:4].tolist()) for det in result.det.dets]
    for x, y, side, _ in SQUARES:
        truth = [x, y, x + side, y + side]
        best = min(found, key=lambda box: max(abs(a - b) for a, b in zip(box, truth, strict=True)))
        assert max(abs(a - b) for a, b in zip(best, truth, strict=True)) <= 2.0, (best, truth)
    for face in result.faces:
        loc = face.loc
        assert any(
            max(
                abs(a - b)
                for a, b in zip(
                    to_original([loc.x1, loc.y1, loc.x2, loc.y2]), [x, y, x + s, y + s], strict=True
                )
            )
            <= 2.0
            for x, y, s, _ in SQUARES
        )


def test_analyzer_predicts_every_task(result) -> None:
    widths = {"au": 41, "fer": 8, "va": 2, "align": 62, "embed": 512}
    for face in result.faces:
        assert set(face.preds) == set(widths)
        for task, width in widths.items():
            assert face.preds[task].logits.shape == (width,), task
        assert face.preds["fer"].label in {
            "Anger",
            "Contempt",
            "Disgust",
            "Fear",
            "Happiness",
            "Neutral",
            "Sadness",
            "Surprise",
        }
        assert set(face.preds["va"].other) == {"valence", "arousal"}
        assert "lip_corner_puller" in face.preds["au"].other["multi"]
    # Different colours, different predictions.
    va = [tuple(face.preds["va"].logits.tolist()) for face in result.faces]
    assert len(set(va)) == 3


def test_align_gives_landmarks_in_the_box_and_a_frontal_pose(result) -> None:
    for face in result.faces:
        other = face.preds["align"].other
        lmk = other["lmk3d"]
        assert lmk.shape == (3, 68)
        loc = face.loc
        side = loc.x2 - loc.x1
        assert lmk[0].min() >= loc.x1 and lmk[0].max() <= loc.x2
        assert lmk[1].min() >= loc.y1 and lmk[1].max() <= loc.y2
        assert lmk[0].max() - lmk[0].min() > 0.5 * side  # the face fills the box
        angles = other["pose"]["angles"]
        assert len(angles) == 3 and all(abs(a) < 5 for a in angles)
        assert other["pose"]["translation"].shape == (3,)
        xy = lmk[:2].T

        def ear(idx: list[int], xy: torch.Tensor = xy) -> float:  # this face's points
            p = xy[idx]
            return float(((p[1] - p[5]).norm() + (p[2] - p[4]).norm()) / (2 * (p[0] - p[3]).norm()))

        assert 0.2 < ear([36, 37, 38, 39, 40, 41]) < 0.4
        assert 0.2 < ear([42, 43, 44, 45, 46, 47]) < 0.4
        # Image y grows downwards: brows above the eyes, above the nose tip, above the chin.
        assert xy[19, 1] < xy[37, 1] < xy[30, 1] < xy[57, 1] < xy[8, 1]
        assert xy[36, 0] < xy[39, 0] < xy[42, 0] < xy[45, 0]  # eyes left to right


def test_analyzer_is_deterministic(analyzer, squares_png: Path, result) -> None:
    again = analyzer.run(
        path_image=str(squares_png), fix_img_size=True, return_img_data=True, include_tensors=True
    )
    assert torch.equal(again.det.dets, result.det.dets)
    assert len(result.faces) > 0
    for a, b in zip(again.faces, result.faces, strict=True):
        assert a.loc == b.loc
        for task in a.preds:
            assert torch.equal(a.preds[task].logits, b.preds[task].logits)
        assert torch.equal(a.preds["align"].other["lmk3d"], b.preds["align"].other["lmk3d"])


def test_analyzer_with_no_faces(analyzer, tmp_path: Path) -> None:
    path = tmp_path / "dark.png"
    Image.new("RGB", (640, 480), (20, 20, 20)).save(path)
    assert analyzer.run(path_image=str(path), fix_img_size=True).faces == []


def test_mobilenet_config_runs_on_the_standin(standins: Path, squares_png: Path) -> None:
    cfg = config.load_config(root=standins, tasks=["va"], detector="retinaface-mnet")
    faces = config.build_analyzer(cfg).run(path_image=str(squares_png), fix_img_size=True).faces
    assert len(faces) == 3


# --- the 3DMM meta file ---------------------------------------------------------------


def test_meta_has_facetorchs_layout(standins: Path) -> None:
    meta = torch.load(store.model_path("align-meta", standins))
    assert set(meta) == {"keypoints", "w_shp", "w_exp", "u_shp", "u_exp", "param_mean", "param_std"}
    rows = meta["u_shp"].shape[0]
    assert rows % 3 == 0 and 300 <= rows // 3 <= 1000
    assert meta["keypoints"].dtype == torch.int64 and meta["keypoints"].shape == (204,)
    triples = meta["keypoints"].view(68, 3)
    assert (triples[:, 0] % 3 == 0).all() and (triples[:, 1:] - triples[:, :1] == torch.tensor([1, 2])).all()
    assert meta["w_shp"].shape == (rows, 40) and meta["w_exp"].shape == (rows, 10)
    assert meta["u_exp"].shape == (rows, 1)
    assert meta["param_mean"].shape == (62,) and meta["param_std"].shape == (62,)
    assert all(t.dtype == torch.float32 for k, t in meta.items() if k != "keypoints")


def test_meta_expression_bases_mean_something() -> None:
    from facetorch.analyzer.utilizer.align import Lmk3DMeshPose

    lmk = Lmk3DMeshPose.__new__(Lmk3DMeshPose)  # only the maths, no downloader
    meta = build_meta()
    lmk.device = torch.device("cpu")
    lmk.image_size = 120
    lmk.param_mean, lmk.param_std = meta["param_mean"], meta["param_std"]
    lmk.u_base = (meta["u_shp"] + meta["u_exp"])[meta["keypoints"]].reshape(-1, 1)
    lmk.w_shp_base = meta["w_shp"][meta["keypoints"]]
    lmk.w_exp_base = meta["w_exp"][meta["keypoints"]]
    lmk.u, lmk.w_shp, lmk.w_exp = meta["u_shp"] + meta["u_exp"], meta["w_shp"], meta["w_exp"]

    def points(exp: dict[int, float]) -> torch.Tensor:
        param = torch.zeros(62)
        for i, value in exp.items():
            param[52 + i] = value / float(meta["param_std"][52 + i])
        return lmk._compute_sparse_vert(param, (0, 0, 120, 120), transform_space=True)[:2].T

    neutral = points({})
    assert math.isclose(float(neutral[:, 0].mean()), 60.0, abs_tol=3)
    mouth = points({0: 1.0})
    assert (mouth[66, 1] - mouth[62, 1]) > (neutral[66, 1] - neutral[62, 1]) + 5  # jaw drop opens it
    closed = points({1: 1.0})
    assert abs(float(closed[37, 1] - closed[41, 1])) < 0.5  # eyes shut
