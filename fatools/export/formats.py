"""The export formats, named once for the library and every command that takes --format.

This module imports nothing, so that a command's --help needs none of the exporters.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMATS = ("json", "csv", "au-timeline", "wide", "text", "plots", "elan", "webvtt", "html", "overlay")
# The overlay re-encodes the whole video (minutes for a long one) and needs the video
# file itself: it is written only when named, never by default or by "all".
ON_REQUEST = ("overlay",)
DEFAULT_FORMATS = tuple(f for f in FORMATS if f not in ON_REQUEST)
ALL = "all"


def parse_formats(names: Iterable[str]) -> tuple[str, ...]:
    """The formats named (each item may hold several, comma-separated; ``all`` means every
    one but the overlay), in FORMATS order, without repeats; DEFAULT_FORMATS when none is
    named.  ValueError names an unknown one."""
    if isinstance(names, str):  # export(records, out, "csv") means the one format
        names = [names]
    wanted = {name.strip() for item in names for name in item.split(",") if name.strip()}
    if ALL in wanted:
        wanted = (wanted - {ALL}) | set(DEFAULT_FORMATS)
    if not wanted:
        return DEFAULT_FORMATS
    unknown = sorted(wanted - set(FORMATS))
    if unknown:
        raise ValueError(
            f"unknown export format {', '.join(map(repr, unknown))}; choose from {', '.join(FORMATS)} "
            f"or {ALL}"
        )
    return tuple(f for f in FORMATS if f in wanted)
