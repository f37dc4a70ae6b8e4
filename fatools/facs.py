"""The FACS action units behind OpenGraphAU's 41 outputs, and AU45 from eye landmarks.

Probabilities come from facetorch's OpenGraphAU head: cosine similarities of
non-negative features, so they lie in [0, 1] but are not calibrated. The intensity
labels below are therefore a *confidence-derived* scale over the active range
(threshold to 1), not FACS A-E intensity coding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ActionUnit:
    code: str  # FACS code: AU12, or L1/R1 for one side of the face
    label: str  # facetorch's label
    name: str
    muscle: str

    @property
    def description(self) -> str:
        return f"{self.name} ({self.muscle})"


_MAIN = [
    ("AU1", "inner_brow_raiser", "Inner brow raiser", "frontalis, pars medialis"),
    ("AU2", "outer_brow_raiser", "Outer brow raiser", "frontalis, pars lateralis"),
    ("AU4", "brow_lowerer", "Brow lowerer", "corrugator supercilii, depressor supercilii"),
    ("AU5", "upper_lid_raiser", "Upper lid raiser", "levator palpebrae superioris"),
    ("AU6", "cheek_raiser", "Cheek raiser", "orbicularis oculi, pars orbitalis"),
    ("AU7", "lid_tightener", "Lid tightener", "orbicularis oculi, pars palpebralis"),
    ("AU9", "nose_wrinkler", "Nose wrinkler", "levator labii superioris alaeque nasi"),
    ("AU10", "upper_lip_raiser", "Upper lip raiser", "levator labii superioris"),
    ("AU11", "nasolabial_deepener", "Nasolabial deepener", "zygomaticus minor"),
    ("AU12", "lip_corner_puller", "Lip corner puller", "zygomaticus major"),
    ("AU13", "sharp_lip_puller", "Sharp lip puller", "levator anguli oris (caninus)"),
    ("AU14", "dimpler", "Dimpler", "buccinator"),
    ("AU15", "lip_corner_depressor", "Lip corner depressor", "depressor anguli oris"),
    ("AU16", "lower_lip_depressor", "Lower lip depressor", "depressor labii inferioris"),
    ("AU17", "chin_raiser", "Chin raiser", "mentalis"),
    ("AU18", "lip_pucker", "Lip pucker", "incisivii labii superioris and inferioris"),
    ("AU19", "tongue_show", "Tongue show", "genioglossus"),
    ("AU20", "lip_stretcher", "Lip stretcher", "risorius with platysma"),
    ("AU22", "lip_funneler", "Lip funneler", "orbicularis oris"),
    ("AU23", "lip_tightener", "Lip tightener", "orbicularis oris"),
    ("AU24", "lip_pressor", "Lip pressor", "orbicularis oris"),
    ("AU25", "lips_part", "Lips part", "depressor labii inferioris, relaxed mentalis or orbicularis oris"),
    ("AU26", "jaw_drop", "Jaw drop", "masseter relaxed, temporalis and internal pterygoid"),
    ("AU27", "mouth_stretch", "Mouth stretch", "pterygoids, digastric"),
    ("AU32", "lip_bite", "Lip bite", "lips and teeth"),
    ("AU38", "nostril_dilator", "Nostril dilator", "nasalis, pars alaris"),
    ("AU39", "nostril_compressor", "Nostril compressor", "nasalis, pars transversa, depressor septi nasi"),
]
_SIDED = [
    ("1", "inner_brow_raiser"),
    ("2", "outer_brow_raiser"),
    ("4", "brow_lowerer"),
    ("6", "cheek_raiser"),
    ("10", "upper_lip_raiser"),
    ("11", "nasolabial_deepener"),
    ("14", "dimpler"),
]


def _catalogue() -> list[ActionUnit]:
    units = [ActionUnit(*row) for row in _MAIN]
    by_label = {u.label: u for u in units}
    for number, label in _SIDED:
        base = by_label[label]
        for side, word in (("L", "left"), ("R", "right")):
            units.append(
                ActionUnit(f"{side}{number}", f"{word}_{label}", f"{base.name}, {word} side", base.muscle)
            )
    return units


# In OpenGraphAU output order: 27 main AUs, then left/right pairs.
ACTION_UNITS: list[ActionUnit] = _catalogue()
BY_CODE = {u.code: u for u in ACTION_UNITS}
BY_LABEL = {u.label: u for u in ACTION_UNITS}
CODES = [u.code for u in ACTION_UNITS]

AU45 = ActionUnit(
    "AU45",
    "blink",
    "Blink",
    "relaxation of levator palpebrae superioris; orbicularis oculi, pars palpebralis",
)
INTENSITY_LABELS = ["Trace", "Slight", "Moderate", "Marked", "Extreme"]
# Eyes are taken as closed below this eye aspect ratio (Soukupova and Cech, 2016, use 0.2).
BLINK_EAR = 0.2
# The valence-arousal circumplex quadrant fa-predict labels a face with, by the signs of
# (valence, arousal); summaries and exports use it for records without a label.
QUADRANTS = {
    (True, True): "Happy/Excited",
    (False, True): "Angry/Stressed",
    (False, False): "Sad/Depressed",
    (True, False): "Calm/Relaxed",
}


def intensity(probability: float, threshold: float = 0.5) -> str | None:
    """The confidence-derived label of an active AU: the range threshold..1 cut in five."""
    if probability <= threshold:
        return None
    step = (1.0 - threshold) / len(INTENSITY_LABELS)
    index = min(int((probability - threshold) / step), len(INTENSITY_LABELS) - 1)
    return INTENSITY_LABELS[index]


def eye_aspect_ratio(landmarks68: npt.ArrayLike) -> float:
    """Mean eye aspect ratio of both eyes from 68 iBUG landmarks (x, y[, z]) in pixels."""
    points = np.asarray(landmarks68, dtype=float)[:, :2]

    def one(eye: np.ndarray) -> float:
        vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
        horizontal = np.linalg.norm(eye[0] - eye[3])
        return float(vertical / (2.0 * horizontal)) if horizontal > 0 else 0.0

    return (one(points[36:42]) + one(points[42:48])) / 2.0
