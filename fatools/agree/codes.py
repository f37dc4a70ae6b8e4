"""What a coder's codes mean to fatools: FACS action unit codes with their A-E intensity
letters, expression labels by their usual names, and the published protocols' presets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fatools.facs import AU45, CODES

# The units fatools gives a figure for: OpenGraphAU's 41 codes and AU45 (blink, from landmarks).
FATOOLS_AUS = [*CODES, AU45.code]
LETTERS = {letter: value for value, letter in enumerate("ABCDE", start=1)}
EXPRESSIONS = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
_ALIASES = {
    "angry": "Anger",
    "anger": "Anger",
    "contempt": "Contempt",
    "disgust": "Disgust",
    "disgusted": "Disgust",
    "fear": "Fear",
    "fearful": "Fear",
    "afraid": "Fear",
    "scared": "Fear",
    "happiness": "Happiness",
    "happy": "Happiness",
    "joy": "Happiness",
    "neutral": "Neutral",
    "sad": "Sadness",
    "sadness": "Sadness",
    "surprise": "Surprise",
    "surprised": "Surprise",
}
DIMENSIONS = ("valence", "arousal")
_AU = re.compile(r"^(?:AU)?\s*([LR]?)0*(\d{1,2})\s*([A-E])?$", re.IGNORECASE)


def parse_au(text: str) -> tuple[str, float | None] | None:
    """``"12"``, ``"AU12"``, ``"AU 12"``, ``"AU012"``, ``"12C"``, ``"L1"``: (``"AU12"``, intensity 1-5 or None);
    None when ``text`` is not an AU code. Codes fatools lacks (AU43) are still parsed."""
    match = _AU.match(str(text).strip())
    if not match or match.group(2) == "0":
        return None
    side, number, letter = match.groups()
    code = f"{side.upper()}{int(number)}" if side else f"AU{int(number)}"
    return code, (float(LETTERS[letter.upper()]) if letter else None)


def parse_codes(text: str) -> list[tuple[str, float | None]] | None:
    """An annotation's codes (``"AU6+12C"``, ``"6 12"``, ``"12, 25"``), or None when any part is no AU code."""
    parts = [p for p in re.split(r"[+,;\s]+", str(text).strip()) if p]
    parsed = [parse_au(p) for p in parts]
    return parsed if parsed and all(parsed) else None  # type: ignore[return-value]


def expression(text: str) -> str | None:
    """The fatools label of an expression name (``happy``, ``Happiness``, ``joy``), or None."""
    return _ALIASES.get(str(text).strip().lower())


def letter_or_number(text: str) -> float | None:
    """An intensity written ``C``, ``3`` or ``3.0``: 1-5 (0 for ``0``); None when it is neither."""
    text = str(text).strip()
    if text.upper() in LETTERS:
        return float(LETTERS[text.upper()])
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= 5 else None


@dataclass(frozen=True)
class Protocol:
    """A published evaluation protocol: which AUs, and from which intensity an AU counts as present."""

    name: str
    aus: tuple[str, ...]
    presence: float  # an intensity coding counts an AU present at or above this
    first_frame: int  # the reference's number for the video's first frame
    where: str


PROTOCOLS = {
    # py-feat's DISFA+ benchmark (Cheong et al., 2023, py-feat documentation): 12 AUs, present at intensity >= 2.
    "disfa-plus": Protocol(
        "disfa-plus",
        ("AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26"),
        2.0,
        1,
        "DISFA+ (Mavadati et al., 2016; http://mohammadmahoor.com/disfa/), licensed for "
        "research by its authors on request; py-feat's protocol",
    ),
    # BP4D-Spontaneous (Zhang et al., 2014), FERA 2015's 12 AUs, occurrence.
    "bp4d": Protocol(
        "bp4d",
        ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU14", "AU15", "AU17", "AU23", "AU24"),
        1.0,
        1,
        "BP4D-Spontaneous (Zhang et al., 2014; http://www.cs.binghamton.edu/~lijun/Research/3DFE/"
        "3DFE_Analysis.html), licensed by Binghamton University under its agreement",
    ),
}
