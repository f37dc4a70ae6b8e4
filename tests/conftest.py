"""Shared fixtures: the ../shared data beside the checkout, and CI strictness."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FATOOLS_SHARED", ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() == "true"


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
