"""TorchScript stand-ins for facetorch's predictor models (au, fer, va, align, embed).

Each has the real model's contract (input size, output shape and value range) over a
fixed linear map of cheap image statistics, so outputs depend on the face crop, are
deterministic, and cost microseconds.  Weights come from a seeded generator, so building
twice gives identical files.  A wrongly sized input fails with the size it expected:
that catches pre-processing mistakes that the real models would silently absorb.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

N_FEATURES = 51  # 4x4 average pool of 3 channels (48) + per-channel standard deviation (3)

# AUs (OpenGraphAU order) that fire for bright crops: cheek_raiser (AU6),
# lip_corner_puller (AU12), lips_part (AU25).  A smile, in FACS terms.
AU_ACTIVE = (4, 9, 21)


class LinearHead(nn.Module):
    """Pooled image statistics -> fixed linear map -> an output squashing matching the model."""

    if TYPE_CHECKING:  # the buffers, for mypy only (TorchScript would read class annotations)
        weight: Tensor
        bias: Tensor

    def __init__(self, name: str, size: int, weight: Tensor, bias: Tensor, head: str, scale: float) -> None:
        super().__init__()
        self.name = name
        self.size = size
        self.head = head  # "sigmoid", "tanh" or "none"
        self.scale = scale
        self.register_buffer("weight", weight.float().contiguous())
        self.register_buffer("bias", bias.float().contiguous())

    def forward(self, x: Tensor) -> Tensor:
        torch._assert(
            x.dim() == 4 and x.shape[1] == 3 and x.shape[2] == self.size and x.shape[3] == self.size,
            "fatools stand-in "
            + self.name
            + ": expected input [B,3,"
            + str(self.size)
            + ","
            + str(self.size)
            + "], got "
            + str(x.shape),
        )
        pooled = nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        spread = x.flatten(2).std(dim=2)
        feats = torch.cat([pooled, spread], dim=1)
        # A Linear layer, as the real heads have (and what --int8 quantises).
        out = nn.functional.linear(feats, self.weight, self.bias)
        if self.head == "sigmoid":
            out = torch.sigmoid(out)
        elif self.head == "tanh":
            out = torch.tanh(out)
        return out * self.scale


@dataclass(frozen=True)
class PredictorStandin:
    """How one predictor stand-in is made: input size, outputs, squashing, seed."""

    task: str
    size: int
    outputs: int
    head: str
    scale: float
    seed: int
    weight_std: float


PREDICTORS: dict[str, PredictorStandin] = {
    # Scores in [0, 1] like OpenGraphAU's cosine-similarity head.
    "au": PredictorStandin("au", 224, 41, "sigmoid", 1.0, 1041, 0.03),
    # Raw logits; facetorch's PostArgMax takes the argmax only.
    "fer": PredictorStandin("fer", 260, 8, "none", 1.0, 1008, 0.2),
    # Valence and arousal in [-1, 1].
    "va": PredictorStandin("va", 224, 2, "tanh", 1.0, 1002, 0.1),
    # Normalised 3DMM parameters: kept small so the face stays near the mean, frontal.
    "align": PredictorStandin("align", 120, 62, "tanh", 0.3, 1062, 0.05),
    # An unnormalised identity-like vector, as the ResNet-50 gives.
    "embed": PredictorStandin("embed", 244, 512, "none", 1.0, 1512, 0.15),
}


def _weights(spec: PredictorStandin) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(spec.seed)
    weight = torch.randn(spec.outputs, N_FEATURES, generator=gen) * spec.weight_std
    # Zero-sum over the pooled features: overall brightness (which differs between
    # facetorch's mean-subtracted crops and plain 0..1 ones) shifts nothing; colour and
    # layout still do.
    weight[:, :48] -= weight[:, :48].mean(dim=1, keepdim=True)
    bias = torch.zeros(spec.outputs)
    if spec.task == "au":
        # Most AUs stay below facetorch's 0.5 threshold; a few rise with brightness so a
        # test on white squares sees "active" labels.
        bias.fill_(-1.5)
        for i in AU_ACTIVE:
            weight[i, :48] += 0.06
            bias[i] = 1.0
    elif spec.task == "fer":
        # Bright crops read as Happiness, dark ones as Neutral: a visible, stable argmax.
        weight[4, :48] += 0.05
        weight[5, :48] -= 0.05
    return weight, bias


def build_predictor(task: str) -> torch.jit.ScriptModule:
    """The scripted stand-in for predictor ``task``, ready for ``torch.jit.save``."""
    spec = PREDICTORS[task]
    weight, bias = _weights(spec)
    module = LinearHead(task, spec.size, weight, bias, spec.head, spec.scale)
    return torch.jit.script(module.eval())
