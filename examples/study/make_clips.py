"""Six short clips standing in for a study's recordings (3 participants x 2 sessions): a
bright rectangle as the participant's "face" (what fatools' stand-in detector finds;
with the real models, put your own videos in videos/ instead), and in P01's second
session a smaller second "face", an interviewer at the edge of the picture.  The second
("funny") sessions' faces are tinted, which moves the stand-ins' figures: the example's
mixed model has a condition effect to find."""

import sys
from pathlib import Path

import numpy as np

from fatools.sample import write_video

FRAMES = 10  # 0.4 s at 25 frames per second


def frame(i: int, participant: int, interviewer: bool, funny: bool) -> np.ndarray:
    image = np.full((360, 640, 3), 15, np.uint8)
    x = 60 + 120 * participant + (i * 2) % 40
    image[60:280, x : x + 200] = 250 - 5 * participant  # the participant: large, in every frame
    if funny:
        # A warmer face in the funny session (BGR): the stand-in models answer to colour,
        # so the condition moves their figures and the mixed model has an effect to find.
        image[60:280, x : x + 200, 0] = 190 - 5 * participant
    if interviewer:
        image[240:340, 540:620] = 240  # the interviewer: small, at the edge
    return image


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for p in range(3):
        for s in (1, 2):
            name = out / f"P{p + 1:02d}_s{s}.mp4"
            write_video((frame(i, p, p == 0 and s == 2, s == 2) for i in range(FRAMES)), str(name), fps=25)
            print(name)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "videos")
