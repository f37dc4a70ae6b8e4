"""Shared fixtures: the ../shared data beside the checkout, and CI strictness."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
import scheduling

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FATOOLS_SHARED", ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() == "true"

# The in-process runs (CliRunner, fatools.analyze_video, tests/chains.py) reuse the model
# sets loaded for earlier ones (fatools.models.loading), and the suite goes back and forth
# between stores and stage options: keep more than a user's default 2, which would build
# most of them again. The stand-in models are small (the real MobileNet0.25 too): about 6 MB
# a set. A value set by the caller wins.
os.environ.setdefault("FATOOLS_LOADED_MODELS", "32")


def _one_share_of_the_cpus_per_worker() -> None:
    """Under pytest-xdist (make test) each worker runs on its own share of the CPUs, as a
    SLURM task or a container would: fatools sizes its threads by the affinity
    (fatools.threads), so two workers do not each start threads for every core and spin
    against each other. The processes a test starts inherit the share."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not worker.startswith("gw") or not count.isdigit() or not hasattr(os, "sched_setaffinity"):
        return
    cpus, count, index = sorted(os.sched_getaffinity(0)), int(count), int(worker[2:])
    if count < 2 or len(cpus) < 2:
        return
    # More workers than CPUs (TEST_WORKERS=3 on 2 cores): one CPU each, in turn.
    os.sched_setaffinity(0, cpus[index::count] if count <= len(cpus) else [cpus[index % len(cpus)]])


_one_share_of_the_cpus_per_worker()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Costliest modules first (tests/scheduling.py), so the workers end together."""
    return scheduling.make_scheduler(config, log)


def pytest_configure(config: pytest.Config) -> None:
    scheduling.configure(config)


@pytest.fixture(autouse=True)
def _fatools_logger_as_found():
    """A command run in-process (CliRunner) points the "fatools" logger at that run's
    stderr, sets its level and stops it propagating: left so, a later test's ``caplog``
    sees none of fatools' warnings, and whether it does depends on which tests ran
    before it on the same worker. Each test ends with the logger as it found it."""
    logger = logging.getLogger("fatools")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


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


def copy_store(store: Path, dest: Path) -> Path:
    """A copy of a session store without the files runs derived in it (ONNX exports, int8
    forms, their locks): which modules ran before on this worker must not matter."""
    shutil.copytree(store, dest, ignore=shutil.ignore_patterns("derived"))
    return dest


def squares_image(
    path: Path, size=(1280, 720), squares=((200, 100, 200), (800, 400, 120), (1000, 50, 80))
) -> Path:
    """A dark frame with bright squares (x, y, side): the stand-in detector's faces."""
    import cv2
    import numpy as np

    image = np.full((size[1], size[0], 3), 20, np.uint8)
    for i, (x, y, side) in enumerate(squares):
        image[y : y + side, x : x + side] = (255 - 10 * i, 250, 245)
    cv2.imwrite(str(path), image)
    return path


def _twin_key(mnet_weights: Path) -> str:
    """What the compute twins are made of: benchmarks/twins.py's text, the libraries whose
    architectures and tracer it uses, and the real MobileNet0.25's weights."""
    import hashlib
    from importlib.metadata import version

    import torch

    from fatools.models.derived import file_sha256

    # The store also keeps the ONNX exports (and recorded export failures) tests make in it:
    # the exporter's code is part of the key, so a fixed exporter is not met by old failures.
    parts = [
        (ROOT / "benchmarks" / "twins.py").read_bytes(),
        torch.__version__.encode(),
        file_sha256(mnet_weights).encode(),
        (ROOT / "fatools" / "models" / "onnx_export.py").read_bytes(),
    ]
    parts += [version(name).encode() for name in ("torchvision", "timm", "facetorch")]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


TWIN_NAMES = ("au", "fer", "va", "align", "align-meta", "retinaface-mnet", "retinaface")


@pytest.fixture(scope="session")
def twin_store(mnet_weights: Path) -> Path:
    """A model store of the compute twins (benchmarks/twins.py: facetorch's architectures,
    seeded weights, the real MobileNet0.25; both detectors), built once per machine (about
    20 s) into ``~/.cache/fatools/twins/<key>`` (``$FATOOLS_TWIN_CACHE`` instead of
    ``~/.cache/fatools/twins``), outside the checkout; ``key`` hashes twins.py, torch's,
    torchvision's, timm's and facetorch's versions, the weights' sha256 and the ONNX
    exporter's code.  The first
    process builds under a lock into a temporary directory and renames it, so a second
    pytest-xdist worker waits and then finds it whole.  ONNX exports that tests make land
    in the store beside the models (``derived/``, under their own locks) and are kept too."""
    import fcntl
    import tempfile

    from benchmarks import twins

    cache = Path(
        os.environ.get("FATOOLS_TWIN_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fatools" / "twins"
    )
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / _twin_key(mnet_weights)
    fd = os.open(cache / f"{root.name}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if root.is_dir() and not twins.is_twin_store(root, TWIN_NAMES):
            shutil.rmtree(root)  # damaged or half-removed: built again
        if not root.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix=f"{root.name}.tmp-", dir=cache))
            try:
                twins.build_twins(tmp, "both", mnet_weights)
                os.rename(tmp, root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        os.close(fd)
    return root


@pytest.fixture(scope="session", autouse=True)
def _mutant():
    """``FATOOLS_MUTANT=NAME:MODE``: a mutant of the pre-processing (tests/mutants.py), put
    in for the whole session by monkeypatching; ``make test-mutants`` sets it."""
    spec = os.environ.get("FATOOLS_MUTANT")
    if not spec:
        yield None
        return
    import mutants

    with pytest.MonkeyPatch.context() as mp:
        mutants.apply(spec, mp)
        yield spec
