"""Shared fixtures: the ../shared data beside the checkout, and CI strictness."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FATOOLS_SHARED", ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() == "true"

# The in-process runs (CliRunner, fatools.analyze_video, tests/chains.py) reuse the model
# sets loaded for earlier ones (fatools.models.loading), and the suite goes back and forth
# between stores and stage options: keep more than a user's default 2, which would build
# most of them again. The stand-in models are small (the real MobileNet0.25 too): about 6 MB
# a set. A value set by the caller wins.
os.environ.setdefault("FATOOLS_LOADED_MODELS", "32")


def require(condition: bool, why: str) -> None:
    """Skip locally when a test resource is missing; under CI=true it is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required test resource missing under CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    require(SHARED.is_dir(), f"{SHARED} not found (the ../shared data beside the checkout)")
    return SHARED


@pytest.fixture(scope="session")
def faces_dir(shared_dir: Path) -> Path:
    path = shared_dir / "testdata" / "faces"
    require((path / "family4.jpg").is_file(), f"{path}/family4.jpg not found")
    return path


@pytest.fixture(scope="session")
def mnet_weights(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "retinaface-mobilenet0.25" / "mobilenet0.25_Final.pth"
    require(path.is_file(), f"{path} not found")
    return path


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    require(exe is not None, "ffmpeg CLI not installed (make test installs it)")
    return exe


@pytest.fixture(scope="session")
def mnet_store(tmp_path_factory, mnet_weights) -> Path:
    """A model store holding the real RetinaFace-MobileNet0.25, imported as a user would."""
    from fatools.models import store

    root = tmp_path_factory.mktemp("mnet-store")
    store.import_model("retinaface-mnet", str(mnet_weights), root)
    return root


@pytest.fixture(scope="session")
def standin_store(tmp_path_factory) -> Path:
    """A model store of stand-ins for every model (built like the real ones, tiny and fast)."""
    from fatools.testing import build_standins

    root = tmp_path_factory.mktemp("standins")
    build_standins(root)
    return root


@pytest.fixture(scope="session")
def mixed_store(tmp_path_factory, mnet_weights) -> Path:
    """Stand-in predictors with the real RetinaFace-MobileNet0.25 detector."""
    from fatools.models import store
    from fatools.testing import build_standins

    root = tmp_path_factory.mktemp("mixed")
    build_standins(root)
    store.import_model("retinaface-mnet", str(mnet_weights), root)
    return root


def squares_image(path: Path, size=(1280, 720), squares=((200, 100, 200), (800, 400, 120), (1000, 50, 80))) -> Path:
    """A dark frame with bright squares (x, y, side): the stand-in detector's faces."""
    import cv2
    import numpy as np

    image = np.full((size[1], size[0], 3), 20, np.uint8)
    for i, (x, y, side) in enumerate(squares):
        image[y:y + side, x:x + side] = (255 - 10 * i, 250, 245)
    cv2.imwrite(str(path), image)
    return path
