"""Compute twins of facetorch's default models, for speed benchmarks without the real weights.

A *compute twin* has the real model's architecture, input size and output contract,
with random (seeded) weights: it costs what the real model costs, and its outputs
are meaningless.  ``python -m benchmarks.speed`` runs both facetorch's own way and fa-run on
twins, so the comparison needs no download and measures the real arithmetic.

``build_twins(DIR)`` (or ``python -m benchmarks.twins DIR``) writes them into a model
store (``<DIR>/<name>/model.pt`` and ``source.json``, source ``twin``), loaded by
facetorch's own code like the real files:

======================  ==========================================================
store name              twin
======================  ==========================================================
``au``                  facetorch's own ``OpenGraphAU`` (Swin-Base + GNN head,
                        95M parameters), traced at 224, ``[B, 41]`` in [0, 1]
``fer``                 timm ``efficientnet_b2``, 8 classes, traced at 260 (7.7M)
``va``                  torchvision AlexNet features, a 256 -> 2 head and tanh,
                        traced at 224 (2.5M; ELIM's AlexNet has 2.3M)
``align``               torchvision MobileNetV2, 62 outputs (0.3 * tanh), traced
                        at 120 (2.3M; SynergyNet adds small MLP heads, 4.1M)
``align-meta``          fatools' stand-in 3DMM meta file (``fatools.testing``)
                        padded to the real BFM's 53,215 vertices, so facetorch's
                        dense mesh costs what it costs with the real file
``retinaface-mnet``     the *real* RetinaFace-MobileNet0.25 (imported from
                        ``mobilenet0.25_Final.pth``): real faces, real counts
``retinaface``          RetinaFace-ResNet-50 twin: torchvision ResNet-50 layers
                        2-4, FPN (512/1024/2048 -> 256), SSH and heads, scripted
======================  ==========================================================

Random ResNet-50 weights find no faces (or thousands), which would make the
detector-bound comparison meaningless.  So the ResNet-50 twin computes its whole
network and then reports the real MobileNet0.25's detections:
``out = mnet(x) + 0 * resnet50_retinaface(x)``.  Its cost is the ResNet-50
RetinaFace's plus the MobileNet's (a few per cent of it); its faces are the real ones.

Building is deterministic (fixed seeds); the TorchScript archives' bytes are not
(TorchScript records a serialisation id), the weights in them are.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from fatools.models import store
from fatools.models.retinaface_mnet import _FPN, _SSH, RetinaFaceHeads, _Head

log = logging.getLogger("fatools")

SEED = 20240606
BFM_VERTICES = 53_215  # the real 3DMM meta file's vertex count
SOURCE = "twin"
ORIGIN = "benchmarks.twins"

# task -> (input size, outputs): facetorch's defaults, which the twins reproduce.
CONTRACTS = {"au": (224, 41), "fer": (260, 8), "va": (224, 2), "align": (120, 62)}
TASKS = tuple(CONTRACTS)
DETECTORS = ("mnet", "r50")


def _seeded(offset: int) -> None:
    torch.manual_seed(SEED + offset)


def _trace(model: nn.Module, size: int, batch: int = 1) -> torch.jit.ScriptModule:
    """Trace in eval mode with a representative input, then check other batch sizes match."""
    model = model.eval()
    example = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on Swin's shape asserts: checked below
        traced = torch.jit.trace(model, example, check_trace=False)
        probe = torch.rand(batch + 1, 3, size, size, generator=torch.Generator().manual_seed(SEED + 1))
        with torch.jit.optimized_execution(False):  # one call: skip the profiling executor's work
            generalises = torch.allclose(traced(probe), model(probe), atol=1e-4, rtol=1e-4)
        if not generalises:
            raise RuntimeError(f"traced {type(model).__name__} does not generalise over the batch size")
    return traced


# --------------------------------------------------------------------------- predictors


def _window_reverse(windows: Tensor, window_size: int, H: int, W: int) -> Tensor:
    """facetorch's Swin ``window_reverse`` without its ``int(...)`` of the batch size, which
    a trace would freeze: the batch dimension is left to ``view(-1, ...)``."""
    channels = windows.shape[-1]
    x = windows.view(-1, H // window_size, W // window_size, window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, channels)


def build_au() -> torch.jit.ScriptModule:
    """facetorch's OpenGraphAU (Swin-Base backbone, GNN head), random weights, [B,3,224,224] -> [B,41]."""
    from facetorch.analyzer.predictor import au_model

    _seeded(41)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.meshgrid's indexing= notice, from facetorch's code
        model = au_model.OpenGraphAU()  # built from timm *layers* only: nothing is downloaded
    original = au_model.window_reverse
    au_model.window_reverse = _window_reverse  # looked up at call time by SwinTransformerBlock
    try:
        return _trace(model, 224)
    finally:
        au_model.window_reverse = original


def build_fer() -> torch.jit.ScriptModule:
    """timm EfficientNet-B2 with 8 classes (HSEmotion's architecture), logits at 260."""
    import timm

    _seeded(8)
    return _trace(timm.create_model("efficientnet_b2", pretrained=False, num_classes=8), 260)


class _AlexNetVA(nn.Module):
    """AlexNet's convolutional features, pooled, to (valence, arousal) in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        self.features = torchvision.models.alexnet(weights=None).features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(256, 2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.head(self.pool(self.features(x)).flatten(1)))


def build_va() -> torch.jit.ScriptModule:
    _seeded(2)
    return _trace(_AlexNetVA(), 224)


class _MobileNetAlign(nn.Module):
    """MobileNetV2 to 62 normalised 3DMM parameters, kept small (0.3 * tanh) so the face stays plausible."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        self.net = torchvision.models.mobilenet_v2(weights=None, num_classes=62)

    def forward(self, x: Tensor) -> Tensor:
        return 0.3 * torch.tanh(self.net(x))


def build_align() -> torch.jit.ScriptModule:
    _seeded(62)
    return _trace(_MobileNetAlign(), 120)


def build_meta() -> dict:
    """The stand-in 3DMM meta file, padded with random vertices to the real BFM's size.

    The 68 landmark vertices (and so the landmarks and pose) are the stand-in's; the
    extra vertices only make facetorch's dense mesh as large as with the real file.
    """
    from fatools.testing import meta3dmm

    meta = meta3dmm.build_meta()
    rows = meta["u_shp"].shape[0]
    extra = 3 * BFM_VERTICES - rows
    if extra > 0:
        gen = torch.Generator().manual_seed(SEED + 3068)
        meta["u_shp"] = torch.cat([meta["u_shp"], torch.rand(extra, 1, generator=gen) * 2 - 1])
        meta["u_exp"] = torch.cat([meta["u_exp"], torch.zeros(extra, 1)])
        for key in ("w_shp", "w_exp"):
            cols = meta[key].shape[1]
            meta[key] = torch.cat([meta[key], torch.randn(extra, cols, generator=gen) * 0.01])
    return meta


# --------------------------------------------------------------------------- detector


class _ResNet50Body(nn.Module):
    """torchvision ResNet-50 up to layer4, returning layers 2-4 (strides 8, 16, 32)."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.resnet50(weights=None)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c2 = self.layer2(self.layer1(self.stem(x)))
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return c2, c3, c4


class RetinaFaceR50Twin(RetinaFaceHeads):
    """RetinaFace-ResNet-50's computation, reporting the real MobileNet0.25's detections.

    ``guide`` is the real RetinaFace-MobileNet0.25; the ResNet-50 branch (body, FPN
    512/1024/2048 -> 256, three SSH modules, class/box/landmark heads, two anchors per
    cell, as the published RetinaFace-R50) has random weights.  Both have the same
    strides and anchors, so their outputs have the same shape; the ResNet-50's are
    added times zero (after ``nan_to_num``), which keeps all of its work in the graph.
    """

    def __init__(self, guide: nn.Module) -> None:
        super().__init__()
        width = 256
        self.guide = guide
        self.body = _ResNet50Body()
        self.fpn = _FPN((512, 1024, 2048), width)
        self.ssh1, self.ssh2, self.ssh3 = _SSH(width, width), _SSH(width, width), _SSH(width, width)
        self.ClassHead = nn.ModuleList([_Head(width, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(width, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(width, 10) for _ in range(3)])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        loc, conf, ldm = self.guide(x)
        c2, c3, c4 = self.body(x)
        p1, p2, p3 = self.fpn(c2, c3, c4)
        locs, logits, ldms = self.heads([self.ssh1(p1), self.ssh2(p2), self.ssh3(p3)])
        r_loc = torch.nan_to_num(locs, 0.0, 0.0, 0.0)
        r_conf = torch.nan_to_num(torch.softmax(logits, dim=-1), 0.0, 0.0, 0.0)
        r_ldm = torch.nan_to_num(ldms, 0.0, 0.0, 0.0)
        return loc + 0.0 * r_loc, conf + 0.0 * r_conf, ldm + 0.0 * r_ldm


def build_r50(mnet_pth: str | os.PathLike[str]) -> torch.jit.ScriptModule:
    """The scripted ResNet-50 RetinaFace twin guided by the real MobileNet0.25 weights."""
    from fatools.models import retinaface_mnet

    guide = retinaface_mnet.load_pth(mnet_pth)
    _seeded(50)
    model = RetinaFaceR50Twin(guide).eval()
    return torch.jit.script(model)


# --------------------------------------------------------------------------- the store


def default_mnet_pth() -> Path | None:
    """``mobilenet0.25_Final.pth`` in ``$FATOOLS_SHARED`` or ``../shared`` beside the checkout."""
    shared = os.environ.get("FATOOLS_SHARED") or str(Path(__file__).resolve().parents[2] / "shared")
    path = Path(shared) / "models" / "retinaface-mobilenet0.25" / "mobilenet0.25_Final.pth"
    return path if path.is_file() else None


def _install(name: str, root: str | os.PathLike[str], write: Callable[[str], None], what: str) -> Path:
    """Write a model file under a temporary name in its store directory, then install it."""
    return store.install_written(
        name, root, lambda path: write(str(path)), SOURCE, ORIGIN, {"twin": what, "seed": SEED}
    )


_PREDICTORS: dict[str, tuple[Callable[[], torch.jit.ScriptModule], str]] = {
    "au": (build_au, "facetorch OpenGraphAU (Swin-Base), random weights, traced at 224"),
    "fer": (build_fer, "timm efficientnet_b2, 8 classes, random weights, traced at 260"),
    "va": (build_va, "torchvision AlexNet features + 256->2 tanh head, random weights, traced at 224"),
    "align": (build_align, "torchvision MobileNetV2, 62 outputs, random weights, traced at 120"),
}


def build_twins(
    store_dir: str | os.PathLike[str],
    detector: str = "mnet",
    mnet_pth: str | os.PathLike[str] | None = None,
    tasks: Iterable[str] = TASKS,
) -> dict[str, Path]:
    """Write the twins of ``tasks`` and of ``detector`` (``mnet``, ``r50`` or ``both``)
    into the model store ``store_dir``; return store name -> installed path.

    The MobileNet0.25 weights (``mnet_pth``, default ``../shared``'s copy) are needed
    for either detector.  ``align`` brings ``align-meta`` with it.
    """
    tasks = list(tasks)
    unknown = [task for task in tasks if task not in CONTRACTS]
    if unknown or detector not in (*DETECTORS, "both", "none"):
        raise ValueError(
            f"unknown task {unknown} or detector {detector!r}; tasks: {TASKS}, detectors: {DETECTORS}"
        )
    pth = Path(mnet_pth) if mnet_pth else default_mnet_pth()
    if detector != "none" and (pth is None or not pth.is_file()):
        raise FileNotFoundError(
            f"RetinaFace-MobileNet0.25 weights not found ({pth or 'no ../shared'}); "
            "pass mnet_pth=mobilenet0.25_Final.pth"
        )
    written: dict[str, Path] = {}
    for task in tasks:
        build, what = _PREDICTORS[task]
        log.info("twin %s: %s", task, what)
        with torch.random.fork_rng(devices=[]):  # seeded without disturbing the caller's RNG
            model = build()
        written[task] = _install(task, store_dir, lambda path, m=model: torch.jit.save(m, path), what)
        if task == "align":
            meta = build_meta()
            written["align-meta"] = _install(
                "align-meta",
                store_dir,
                lambda path, m=meta: torch.save(m, path),
                f"fatools stand-in 3DMM meta padded to {BFM_VERTICES} vertices",
            )
    if detector in ("mnet", "both"):
        written["retinaface-mnet"] = store.import_model("retinaface-mnet", str(pth), store_dir)
    if detector in ("r50", "both"):
        assert pth is not None
        with torch.random.fork_rng(devices=[]):
            model = build_r50(pth)
        written["retinaface"] = _install(
            "retinaface",
            store_dir,
            lambda path: torch.jit.save(model, path),
            "RetinaFace-ResNet-50 twin (random weights) reporting the real MobileNet0.25's detections",
        )
    return written


def is_twin_store(store_dir: str | os.PathLike[str], names: Iterable[str]) -> bool:
    """True when every model of ``names`` is present in ``store_dir`` and was built here."""
    for name in names:
        info = store.read_source(name, store_dir) or {}
        if not store.is_present(name, store_dir):
            return False
        if name != "retinaface-mnet" and (info.get("source") != SOURCE or info.get("seed") != SEED):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.twins DIR [--detector mnet|r50|both] [--mnet-pth FILE]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.twins", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="model store to write the twins into")
    parser.add_argument("--detector", default="both", choices=[*DETECTORS, "both", "none"])
    parser.add_argument("--mnet-pth", help="mobilenet0.25_Final.pth (default: ../shared's)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated, default: %(default)s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tasks = [t for t in args.tasks.split(",") if t]
    from fatools.testing import run_builder

    return run_builder("benchmarks.twins", lambda: build_twins(args.dir, args.detector, args.mnet_pth, tasks))


if __name__ == "__main__":
    sys.exit(main())
