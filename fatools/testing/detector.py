"""A TorchScript stand-in for facetorch's RetinaFace detector that finds bright rectangles.

The real detector cannot be downloaded in tests, yet detection, NMS, cropping and
every later stage must run through facetorch's own code.  This module has the real
model's contract: input ``[B, 3, H, W]`` (RGB 0..255 minus mean [123, 117, 104],
channels reversed to BGR), output ``(loc [B, N, 4], conf [B, N, 2], landmarks [B, N, 10])``
with ``N`` priors in facetorch's ``PriorBox`` order.  Its "faces" are bright,
axis-aligned rectangles on a dark background, so a test knows where the boxes must be.

How it finds them: a pixel is bright when its darkest channel exceeds half intensity
(after an antialiased resize an edge pixel that is at least half covered counts, which
puts the detected edge within half a pixel of the true one).  Along the rows and
columns through the prior centres, running maxima/minima of "index of the last dark
pixel" (made of cumsum, scatter and gather, so the stand-in exports to ONNX as
the real model does) give the nearest dark pixel on each side, i.e. the extent of the rectangle a
centre lies in.  Each prior whose centre is bright encodes that extent exactly as
RetinaFace would (inverse of facetorch's decode with the variances), so all of them
decode to the same box and NMS keeps one per rectangle: the prior nearest the
rectangle's centre, which gets the highest score.  Landmarks are five fixed points of
the box (``LANDMARKS_REL``), encoded like RetinaFace's: ``prior_c + lm * 0.1 * prior_wh``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

# Five landmarks as fractions of the box: eyes, nose tip, mouth corners (RetinaFace order).
LANDMARKS_REL = [(0.3, 0.35), (0.7, 0.35), (0.5, 0.55), (0.35, 0.75), (0.65, 0.75)]


class BrightBoxRetinaFace(nn.Module):
    """RetinaFace's input/output contract over a bright-rectangle finder (no learnt weights)."""

    if TYPE_CHECKING:  # the buffers, for mypy only (TorchScript would read class annotations)
        mean_bgr: Tensor
        lm_rel: Tensor

    def __init__(self) -> None:
        super().__init__()
        # Input is BGR minus the BGR mean; adding it back restores 0..255 values.
        self.register_buffer("mean_bgr", torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1))
        self.register_buffer("lm_rel", torch.tensor(LANDMARKS_REL, dtype=torch.float32))
        self.steps: list[int] = [8, 16, 32]
        self.min_sizes: list[list[int]] = [[16, 32], [64, 128], [256, 512]]
        self.var0: float = 0.1
        self.var1: float = 0.2
        self.threshold: float = 127.5

    def _last_dark(self, dark: Tensor) -> Tensor:
        """Along the last dim: the index of the last dark pixel at or before each pixel (-1: none).

        A running maximum of "index where dark", made of ops ONNX has (cumsum, scatter,
        gather) so that the stand-in exports like the real detector: the k-th dark pixel's
        index is stored at slot k of a table, and each pixel reads the slot of the number
        of dark pixels up to it.
        """
        n = dark.shape[-1]
        idx = torch.arange(n, device=dark.device).expand(dark.shape)
        count = dark.long().cumsum(dim=-1)
        table = torch.full(dark.shape[:-1] + (n + 1,), -1, dtype=torch.long, device=dark.device)
        table = table.scatter(
            -1,
            torch.where(dark, count, torch.zeros_like(count)),
            torch.where(dark, idx, torch.full_like(idx, -1)),
        )
        return table.gather(-1, count)

    def _runs(self, bright: Tensor) -> tuple[Tensor, Tensor]:
        """Along the last dim: the first index of each pixel's bright run and the index after it."""
        n = bright.shape[-1]
        dark = ~bright
        start = self._last_dark(dark) + 1
        end = (n - 1 - self._last_dark(dark.flip([-1]))).flip([-1])
        return start, end

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        torch._assert(
            x.dim() == 4 and x.shape[1] == 3,
            "fatools stand-in detector: expected input [B,3,H,W], got " + str(x.shape),
        )
        batch = x.shape[0]
        height = x.shape[2]
        width = x.shape[3]
        img = x + self.mean_bgr
        bright = img.amin(dim=1) > self.threshold

        locs: list[Tensor] = []
        confs: list[Tensor] = []
        lms: list[Tensor] = []
        for level in range(len(self.steps)):
            step = self.steps[level]
            fh = (height + step - 1) // step
            fw = (width + step - 1) // step
            # Prior centres (j + 0.5) * step in pixels; the pixel starting there is sampled.
            cy = torch.arange(fh, device=x.device) * step + step // 2
            cx = torch.arange(fw, device=x.device) * step + step // 2
            inside = (cy < height).view(fh, 1) & (cx < width).view(1, fw)
            iy = cy.clamp(max=height - 1)
            ix = cx.clamp(max=width - 1)
            # Runs only along the rows and columns that hold this level's prior centres.
            # (Scans run along the last, contiguous dim: much faster than along rows.)
            x1, x2 = self._runs(bright[:, iy, :])
            y1, y2 = self._runs(bright[:, :, ix].transpose(1, 2).contiguous())
            x1 = x1[:, :, ix].float()
            x2 = x2[:, :, ix].float()
            y1 = y1[:, :, iy].transpose(1, 2).float()
            y2 = y2[:, :, iy].transpose(1, 2).float()
            hit = bright[:, iy][:, :, ix] & inside.unsqueeze(0)
            bw = (x2 - x1).clamp(min=1.0)
            bh = (y2 - y1).clamp(min=1.0)
            bcx = (x1 + x2) / 2
            bcy = (y1 + y2) / 2
            pcx = cx.float().view(1, 1, fw)
            pcy = cy.float().view(1, fh, 1)
            # Nearest the rectangle's centre scores highest, so NMS keeps a deterministic prior.
            off = torch.maximum((pcx - bcx).abs() / bw, (pcy - bcy).abs() / bh).clamp(max=0.5)
            lx = x1.unsqueeze(-1) + self.lm_rel[:, 0] * bw.unsqueeze(-1)
            ly = y1.unsqueeze(-1) + self.lm_rel[:, 1] * bh.unsqueeze(-1)
            level_loc: list[Tensor] = []
            level_conf: list[Tensor] = []
            level_lm: list[Tensor] = []
            for k in range(len(self.min_sizes[level])):
                m = float(self.min_sizes[level][k])
                unit = self.var0 * m
                loc = torch.stack(
                    [
                        (bcx - pcx) / unit,
                        (bcy - pcy) / unit,
                        torch.log(bw / m) / self.var1,
                        torch.log(bh / m) / self.var1,
                    ],
                    dim=-1,
                )
                score = 0.99 - 0.1 * off - 0.002 * level - 0.001 * k
                score = torch.where(hit, score, torch.full_like(score, 0.001))
                lm = torch.stack(
                    [(lx - pcx.unsqueeze(-1)) / unit, (ly - pcy.unsqueeze(-1)) / unit], dim=-1
                ).flatten(-2)
                mask = hit.unsqueeze(-1)
                level_loc.append(torch.where(mask, loc, torch.zeros_like(loc)))
                level_conf.append(torch.stack([1.0 - score, score], dim=-1))
                level_lm.append(torch.where(mask, lm, torch.zeros_like(lm)))
            # Prior order: rows, then columns, then the level's min sizes innermost.
            locs.append(torch.stack(level_loc, dim=3).reshape(batch, -1, 4))
            confs.append(torch.stack(level_conf, dim=3).reshape(batch, -1, 2))
            lms.append(torch.stack(level_lm, dim=3).reshape(batch, -1, 10))
        return torch.cat(locs, dim=1), torch.cat(confs, dim=1), torch.cat(lms, dim=1)


def build_detector() -> torch.jit.ScriptModule:
    """The scripted detector stand-in, ready for ``torch.jit.save``."""
    return torch.jit.script(BrightBoxRetinaFace().eval())
