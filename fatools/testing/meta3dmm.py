"""A small synthetic 3DMM meta file for facetorch's ``Lmk3DMeshPose`` utilizer.

The real file (BFM, 53,215 vertices, from Google Drive) is out of reach in tests.  This
one has the same keys, dtypes and layout at a few hundred vertices:

* vertices are flattened interleaved, ``[x0, y0, z0, x1, ...]`` (``3V`` rows), which is
  what facetorch's Fortran-order reshape to ``[3, V]`` expects;
* ``keypoints`` holds, for each of the 68 landmarks in order, the three row indices of
  its vertex (``3v, 3v+1, 3v+2``); the landmark vertices are scattered among the others
  so code that confuses vertex and row indices fails;
* the mean shape is a 68-point face in the iBUG layout (jaw 0-16, brows 17-26, nose
  27-35, eyes 36-47, mouth 48-67) with model y pointing up, as in 3DDFA;
* ``param_mean`` holds a frontal camera (scale, translation into the 120 px crop), so
  small normalised parameters give a face inside the crop and a pose near zero degrees;
* expression bases 0-3 mean something: jaw drop, eye closure, smile, brow raise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

N_SHAPE = 40
N_EXP = 10
N_GRID = 20  # a 20x20 grid over the face oval: the dense "mesh"
SCALE = 45.0  # pixels of the 120 px crop per model unit (face half-width is ~1 unit)
OFFSET_X = 60.0
OFFSET_Y = 68.0  # y_img = 121 - (SCALE * y + OFFSET_Y): landmarks centred a little low


def _eye(cx: float) -> list[tuple[float, float]]:
    """Six points of an open eye in iBUG order, which in image terms is the same for both
    eyes: left corner, upper lid left to right, right corner, lower lid right to left."""
    left, right = cx - 0.2, cx + 0.2
    up, low = 0.36, 0.24
    a, b = cx - 0.07, cx + 0.07
    return [(left, 0.3), (a, up), (b, up), (right, 0.3), (b, low), (a, low)]


def landmarks68() -> Tensor:
    """Mean 68-point face (x right, y up, z towards the camera), in model units, ``[68, 3]``."""
    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw from the image-left ear round the chin to the right ear
        t = math.pi * i / 16
        pts.append((-0.95 * math.cos(t), 0.25 - 1.3 * math.sin(t)))
    for i in range(5):  # brows, image left then right, slight arch
        x = -0.8 + 0.16 * i
        pts.append((x, 0.58 + 0.06 * math.sin(math.pi * i / 4)))
    for i in range(5):
        x = 0.16 + 0.16 * i
        pts.append((x, 0.58 + 0.06 * math.sin(math.pi * i / 4)))
    for i in range(4):  # nose bridge
        pts.append((0.0, 0.38 - 0.14 * i))
    for x, y in [(-0.2, -0.2), (-0.1, -0.24), (0.0, -0.26), (0.1, -0.24), (0.2, -0.2)]:
        pts.append((x, y))
    pts += _eye(-0.45)  # 36-41, image left
    pts += _eye(0.45)  # 42-47
    pts += [  # outer lip: corner, upper lip, corner, lower lip
        (-0.4, -0.55),
        (-0.27, -0.47),
        (-0.12, -0.43),
        (0.0, -0.45),
        (0.12, -0.43),
        (0.27, -0.47),
        (0.4, -0.55),
        (0.27, -0.65),
        (0.12, -0.7),
        (0.0, -0.71),
        (-0.12, -0.7),
        (-0.27, -0.65),
    ]
    pts += [  # inner lip
        (-0.3, -0.55),
        (-0.12, -0.52),
        (0.0, -0.52),
        (0.12, -0.52),
        (0.3, -0.55),
        (0.12, -0.58),
        (0.0, -0.58),
        (-0.12, -0.58),
    ]
    xy = torch.tensor(pts, dtype=torch.float64)
    return torch.cat([xy, _depth(xy).unsqueeze(1)], dim=1)


def _depth(xy: Tensor) -> Tensor:
    """A rounded face surface with a nose ridge, so z varies plausibly."""
    x, y = xy[:, 0], xy[:, 1]
    z = 0.6 * torch.sqrt((1.0 - 0.5 * x**2 - 0.25 * (y + 0.2) ** 2).clamp(min=0.05))
    nose = 0.35 * torch.exp(-((x / 0.15) ** 2)) * ((y <= 0.4) & (y >= -0.3)).double()
    return z + nose


def _grid() -> Tensor:
    """Dense vertices on the face oval, ``[n, 3]``."""
    lin = torch.linspace(-1.0, 1.0, N_GRID, dtype=torch.float64)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    x = gx.flatten() * 0.95
    y = gy.flatten() * 0.95 - 0.2
    keep = (x / 0.95) ** 2 + ((y + 0.2) / 0.95) ** 2 <= 1.0
    xy = torch.stack([x[keep], y[keep]], dim=1)
    return torch.cat([xy, _depth(xy).unsqueeze(1)], dim=1)


def _expression_bases(v: Tensor, gen: torch.Generator) -> Tensor:
    """``[V, 3, N_EXP]`` displacements per unit of each expression parameter."""
    x, y = v[:, 0], v[:, 1]
    bases = torch.zeros(v.shape[0], 3, N_EXP, dtype=torch.float64)
    # 0 jaw drop: everything below the lip line moves down.
    bases[:, 1, 0] = -0.25 * ((-0.55 - y) / 0.02).clamp(0, 1)
    # 1 eye closure: lids collapse onto the eye line (y = 0.3) at one unit.
    eyes = ((x.abs() - 0.45).abs() <= 0.21) & ((y - 0.3).abs() <= 0.07)
    bases[:, 1, 1] = torch.where(eyes, -(y - 0.3), torch.zeros_like(y))
    # 2 smile: mouth corners up and out.
    corners = (x.abs() >= 0.28) & (x.abs() <= 0.5) & (y <= -0.45) & (y >= -0.7)
    bases[:, 0, 2] = torch.where(corners, 0.05 * torch.sign(x), torch.zeros_like(x))
    bases[:, 1, 2] = torch.where(corners, torch.full_like(y, 0.08), torch.zeros_like(y))
    # 3 brow raise.
    bases[:, 1, 3] = torch.where(y >= 0.5, torch.full_like(y, 0.1), torch.zeros_like(y))
    # 4-9: smooth small deformations.
    bases[:, :, 4:] = _smooth(v, N_EXP - 4, gen, 0.02)
    return bases


def _smooth(v: Tensor, n: int, gen: torch.Generator, amount: float) -> Tensor:
    """``[V, 3, n]`` low-order polynomial displacement fields."""
    x, y = v[:, 0], v[:, 1]
    terms = torch.stack([torch.ones_like(x), x, y, x * y, x**2, y**2], dim=1)  # [V, 6]
    coef = torch.randn(6, 3, n, generator=gen, dtype=torch.float64) * amount
    return torch.einsum("vt,tcn->vcn", terms, coef)


def build_meta(seed: int = 3068) -> dict[str, Tensor]:
    """The meta dict (``torch.save`` it) with the keys, dtypes and shapes facetorch expects."""
    gen = torch.Generator().manual_seed(seed)
    lmk = landmarks68()
    grid = _grid()
    n_vert = lmk.shape[0] + grid.shape[0]
    # Landmark vertices at scattered positions among the mesh vertices.
    order = torch.randperm(n_vert, generator=gen)
    lmk_vertex = order[: lmk.shape[0]]
    verts = torch.zeros(n_vert, 3, dtype=torch.float64)
    verts[lmk_vertex] = lmk
    rest = torch.ones(n_vert, dtype=torch.bool)
    rest[lmk_vertex] = False
    verts[rest] = grid

    w_shp = _smooth(verts, N_SHAPE, gen, 0.01)
    w_exp = _expression_bases(verts, gen)
    keypoints = (lmk_vertex.unsqueeze(1) * 3 + torch.arange(3)).flatten().long()

    param_mean = torch.zeros(62, dtype=torch.float64)
    param_mean[:12] = torch.tensor(
        [SCALE, 0, 0, OFFSET_X, 0, SCALE, 0, OFFSET_Y, 0, 0, SCALE, 0], dtype=torch.float64
    )
    param_std = torch.ones(62, dtype=torch.float64)
    # Rotation/scale entries vary by a few percent of the scale, translations by pixels.
    param_std[:12] = torch.tensor(
        [0.05 * SCALE] * 3 + [3.0] + [0.05 * SCALE] * 3 + [3.0] + [0.05 * SCALE] * 3 + [1.0],
        dtype=torch.float64,
    )
    param_std[52:] = 0.5

    return {
        "keypoints": keypoints,
        # [3V, k]: interleaved rows (x0, y0, z0, x1, ...), float32 as in the real file.
        "w_shp": w_shp.reshape(3 * n_vert, N_SHAPE).float(),
        "w_exp": w_exp.reshape(3 * n_vert, N_EXP).float(),
        "u_shp": verts.reshape(3 * n_vert, 1).float(),
        "u_exp": torch.zeros(3 * n_vert, 1),
        "param_mean": param_mean.float(),
        "param_std": param_std.float(),
    }
