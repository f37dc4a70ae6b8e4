"""A 6 s clip of one "face" that smiles twice, and two coders' ELAN files of it.

The clip stands in for a participant's video: a bright bar is what fatools' stand-in
detector finds (with the real models, use your own video and your coders' files), and
while it "smiles" the dark around it lights up to a grey the detector still takes for
background, which the stand-in AU model (it reads the brightness of the face's square
crop) scores as AU6, AU12 and AU25. The coders' files are written with pympi-ling as ELAN writes them (the video
linked, a tier per AU with FACS intensity letters, an expression tier), from the same
script of the clip (SMILES), so what each coder says is known:

* ann codes both smiles where they are: AU12 (C, then B), AU6 from 0.2 s into each smile
  to 0.2 s before its end, Happiness during each smile and Neutral around them;
* bea is 0.2 s (5 frames) late at each AU12 onset, gives the second smile a C, and does
  not code AU6 in the second smile.

    python examples/agree/make_example.py WORKDIR   # writes smile.mp4, ann.eaf, bea.eaf
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pympi

FPS = 25
SECONDS = 6.0
SIZE = (320, 240)  # width, height
DARK, LIT = (
    15,
    120,
)  # the background's grey level at rest and at the height of a smile (below the detector's 128)
RAMP = 0.4  # seconds a smile takes to come, and to go
# (start, end in seconds, AU12's FACS intensity letter): the background is lit in between.
SMILES = [(1.0, 2.2, "C"), (3.4, 4.8, "B")]
# bea: how late her AU12 onsets are, the letter she gives each smile, and the smiles she codes AU6 in.
BEA_LATE = 5 / FPS  # 0.2 s: one sample at fa-run's default, every 5th frame
BEA_LETTERS = ["C", "C"]
BEA_AU6 = [0]


def light(t: float) -> float:
    """The background's grey level at time ``t``: DARK, ramping up to LIT over RAMP before each smile's start."""
    for start, end, _ in SMILES:
        if start - RAMP <= t < end + RAMP:
            up = min(1.0, (t - (start - RAMP)) / RAMP)
            down = min(1.0, (end + RAMP - t) / RAMP)
            return DARK + (LIT - DARK) * min(up, down)
    return DARK


def frame(i: int) -> np.ndarray:
    image = np.full((SIZE[1], SIZE[0], 3), round(light(i / FPS)), np.uint8)
    image[40:200, SIZE[0] // 2 - 20 : SIZE[0] // 2 + 20] = 250  # the face: 40 x 160, the same box throughout
    return image


def coding(video: Path, smiles: list[tuple[float, float, str]], au6: list[int]) -> pympi.Elan.Eaf:
    """A coder's ELAN document: an AU12 tier (FACS letters), an AU6 tier (empty values: present,
    no intensity) from 0.2 s after each AU12 onset to 0.2 s before its offset, and an expression tier."""
    eaf = pympi.Elan.Eaf(author="fatools example")
    eaf.add_linked_file(video.resolve().as_uri(), relpath=video.name, mimetype="video/mp4")
    for tier in ("AU12", "AU6", "Expression"):
        eaf.add_tier(tier)
    eaf.remove_tier("default")
    end_ms, last = int(SECONDS * 1000), 0
    for k, (start, end, letter) in enumerate(smiles):
        on, off = round(start * 1000), round(end * 1000)
        eaf.add_annotation("AU12", on, off, letter)
        if k in au6:
            eaf.add_annotation("AU6", on + 200, off - 200, "")
        eaf.add_annotation("Expression", last, on, "neutral")
        eaf.add_annotation("Expression", on, off, "happy")
        last = off
    eaf.add_annotation("Expression", last, end_ms, "neutral")
    return eaf


def main(folder: str) -> None:
    from fatools.sample import write_video

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "smile.mp4"
    write_video((frame(i) for i in range(int(SECONDS * FPS))), str(video), fps=FPS)
    coding(video, SMILES, [0, 1]).to_file(str(out / "ann.eaf"))
    bea = [
        (start + BEA_LATE, end, letter) for (start, end, _), letter in zip(SMILES, BEA_LETTERS, strict=True)
    ]
    coding(video, bea, BEA_AU6).to_file(str(out / "bea.eaf"))
    print(video, out / "ann.eaf", out / "bea.eaf")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "agree-work")
