"""How exports show values to people and tables: times, defensive look-ups in a summary,
and a face's action units as table rows (any field may be missing)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fatools.facs import AU45, BY_CODE, CODES, intensity
from fatools.records import au_probs, au_threshold, blink_of, number, object_of


@dataclass(frozen=True)
class AURow:
    code: str
    score: float | None
    active: bool
    intensity: str | None
    description: str
    name: str


def au_rows(face: dict) -> Iterator[AURow]:
    """Every action unit of a face in catalogue order, then the derived blink (AU45)."""
    au = face.get("au")
    if not isinstance(au, dict):
        return
    probs = au_probs(face) or {}
    threshold = au_threshold(face)
    listed = au.get("active")
    active_set = set(listed) if isinstance(listed, list) else None
    details = object_of(au.get("details"))
    known = [c for c in CODES if c in probs] + [c for c in probs if c not in BY_CODE and c != AU45.code]
    for code in known:
        score = number(probs[code])
        active = code in active_set if active_set is not None else (score is not None and score > threshold)
        detail = object_of(details.get(code))
        unit = BY_CODE.get(code)
        level = detail.get("intensity")
        if level is None and active and score is not None:
            level = intensity(score, threshold)
        yield AURow(
            code,
            score,
            bool(active),
            level,
            detail.get("description") or (unit.description if unit else ""),
            detail.get("name") or (unit.name if unit else code),
        )
    blink = blink_of(face)
    if blink is not None:
        yield AURow(AU45.code, None, blink, None, AU45.description, AU45.name)


def active_list(face: dict) -> list[str] | None:
    """The active AUs as fa-predict listed them (AU45 included), else derived from the scores."""
    au = face.get("au")
    if not isinstance(au, dict):
        return None
    if isinstance(au.get("active"), list):
        return list(au["active"])
    return [row.code for row in au_rows(face) if row.active]


def get(mapping: Any, *keys: str, default: Any = None) -> Any:
    """mapping[k1][k2]... or ``default`` when any level is missing (the summary is read defensively)."""
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return default
        mapping = mapping[key]
    return default if mapping is None else mapping


def _human_time(value: Any, minutes_fmt: str, hours_fmt: str) -> str:
    value = number(value)
    if value is None:
        return "unknown"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(value, 60)
    if minutes < 60:
        return minutes_fmt.format(m=int(minutes), s=rest)
    hours, minutes = divmod(int(minutes), 60)
    return hours_fmt.format(h=hours, m=minutes, s=rest)


def clock(value: Any) -> str:
    """A point in time for people: 3.2 s, 1:05.2, 1:02:05.2."""
    return _human_time(value, "{m}:{s:04.1f}", "{h}:{m:02d}:{s:04.1f}")


def seconds(value: Any) -> str:
    """A duration or time for people: 3.2 s, 2 min 05.0 s."""
    return _human_time(value, "{m} min {s:04.1f} s", "{h} h {m:02d} min {s:04.1f} s")
