"""What every export format shares: atomic staging of files, per-video state, and the
reading of one face's prediction fields (any of which may be missing).

Files are written under temporary names in the output directory and renamed into place
only when the whole export has succeeded, so an interrupted or failed export never
leaves a half-written file under a final name.  Names of per-video files are decided
at that point too, because only then is it known whether the stream held one video.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

from fatools.errors import FatoolsError
from fatools.facs import AU45, BLINK_EAR, BY_CODE, CODES, QUADRANTS, eye_aspect_ratio, intensity

log = logging.getLogger("fatools")

TEMP_PREFIX = ".fa-export-"
TEMP_SUFFIX = ".part"
EMOTIONS = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")


def num(value: Any) -> float | None:
    """A finite number, or None (bools, strings, NaN and missing values are not numbers)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def safe_name(text: Any) -> str:
    """A file-name-safe form of a video stem or track id."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned or "unnamed"


class Staging:
    """Temporary files in the output directory, renamed to their final names on commit."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._temps: list[Path] = []
        self._staged: list[tuple[str, Path, Path]] = []  # (format, temp, final)

    def temp(self) -> Path:
        """A new empty temporary file, removed on abort or when the export ends."""
        # Not mkstemp: its files are private (0600); these become the user's files, so they
        # get the permissions the umask gives any new file.
        while True:
            path = self.out_dir / f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise FatoolsError(f"{self.out_dir}: cannot write there ({exc.strerror}); choose another "
                                   "output directory") from None
        self._temps.append(path)
        return path

    def open(self, mode: str = "wb", **kwargs: Any) -> tuple[Path, IO]:
        path = self.temp()
        return path, open(path, mode, **kwargs)

    def stage(self, fmt: str, temp: Path, final_name: str) -> None:
        """Mark a finished temporary file to become ``final_name`` on commit."""
        self._staged.append((fmt, temp, self.out_dir / final_name))

    def commit(self) -> dict[str, list[Path]]:
        files: dict[str, list[Path]] = {}
        try:
            for fmt, temp, final in self._staged:
                os.replace(temp, final)
                self._temps.remove(temp)
                files.setdefault(fmt, []).append(final)
        except OSError as exc:
            raise FatoolsError(f"{final}: cannot write ({exc.strerror}); check the output directory") from None
        finally:
            self.cleanup()
        return files

    def cleanup(self) -> None:
        """Remove every temporary file still here (scratch files, or all of them on failure)."""
        for path in self._temps:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # pragma: no cover - a read-only disk mid-export
                log.warning("cannot remove temporary file %s: %s", path, exc)
        self._temps.clear()
        self._staged.clear()


@dataclass
class Video:
    """What the export learns about one video as its records go by (bounded, not per frame)."""

    name: Any
    index: int
    header: dict | None = None
    frames: int = 0
    size: tuple[Any, Any] | None = None
    detection: dict | None = None
    au_threshold: float | None = None
    fields: set[str] = field(default_factory=set)  # prediction fields seen in its faces

    @property
    def fps(self) -> float | None:
        fps = num((self.header or {}).get("fps"))
        return fps if fps and fps > 0 else None

    def time(self, record: dict) -> float | None:
        """The record's time: ``t``, else frame / fps of the header (as fa-summarize does)."""
        t = num(record.get("t"))
        frame = record.get("frame")
        if t is None and isinstance(frame, int) and not isinstance(frame, bool) and self.fps:
            t = frame / self.fps
        return t

    def observe(self, record: dict, faces: list[dict]) -> None:
        self.frames += 1
        if self.size is None:
            self.size = (record.get("width"), record.get("height"))
        detection = record.get("detection")
        if self.detection is None and isinstance(detection, dict):
            self.detection = detection
        for face in faces:
            self.fields.update(k for k in ("au", "expression", "va", "landmarks3d", "pose", "embedding") if k in face)
            au = face.get("au")
            if self.au_threshold is None and isinstance(au, dict) and num(au.get("threshold")) is not None:
                self.au_threshold = au["threshold"]

    def metadata(self) -> dict:
        """The seed's video_metadata: from the header, else what the frame records say."""
        header = self.header or {}
        width, height = self.size or (None, None)
        return {
            "total_frames": header.get("frame_count"),
            "fps": header.get("fps"),
            "width": header.get("width", width),
            "height": header.get("height", height),
            "duration_seconds": header.get("duration"),
            "codec": header.get("codec"),
            "rotation": header.get("rotation"),
        }

    def models(self) -> list[dict]:
        """The models the records show were used; their sha256 is unknown to an export of records."""
        from fatools.models.catalogue import MODELS

        names = []
        if self.detection and isinstance(self.detection.get("detector"), str):
            names.append(self.detection["detector"])
        by_field = {"au": ["au"], "expression": ["fer"], "va": ["va"], "landmarks3d": ["align", "align-meta"],
                    "embedding": ["embed"]}
        if "pose" in self.fields and "landmarks3d" not in self.fields:
            names += ["align", "align-meta"]
        for key, models in by_field.items():
            if key in self.fields:
                names += models
        out = []
        for name in dict.fromkeys(names):
            spec = MODELS.get(name)
            out.append({"name": name, "task": spec.task if spec else None,
                        "description": spec.description if spec else None, "sha256": None})
        return out


def faces_of(record: dict, video: Any) -> list[dict] | None:
    """The record's faces; None when it was not run through a detector."""
    if "faces" not in record:
        return None
    faces = record["faces"]
    if not isinstance(faces, list) or not all(isinstance(face, dict) for face in faces):
        raise FatoolsError(f"{video}: frame {record.get('frame')}: 'faces' must be a list of objects "
                           "(records from fa-detect or fa-predict)")
    return faces


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
    probs = au.get("probs") if isinstance(au.get("probs"), dict) else {}
    threshold = num(au.get("threshold"))
    threshold = 0.5 if threshold is None else threshold
    listed = au.get("active")
    active_set = set(listed) if isinstance(listed, list) else None
    details = au.get("details") if isinstance(au.get("details"), dict) else {}
    known = [c for c in CODES if c in probs] + [c for c in probs if c not in BY_CODE and c != AU45.code]
    for code in known:
        score = num(probs[code])
        active = code in active_set if active_set is not None else (score is not None and score > threshold)
        detail = details.get(code) if isinstance(details.get(code), dict) else {}
        unit = BY_CODE.get(code)
        level = detail.get("intensity")
        if level is None and active and score is not None:
            level = intensity(score, threshold)
        yield AURow(code, score, bool(active), level,
                    detail.get("description") or (unit.description if unit else ""),
                    detail.get("name") or (unit.name if unit else code))
    blink = blink_of(face)
    if blink is not None:
        yield AURow(AU45.code, None, blink, None, AU45.description, AU45.name)


def blink_of(face: dict) -> bool | None:
    """AU45 from fa-predict's derived blink, else from the 68 landmarks' eye aspect ratio."""
    au = face.get("au")
    derived = au.get("derived") if isinstance(au, dict) and isinstance(au.get("derived"), dict) else {}
    blink = derived.get(AU45.code)
    if isinstance(blink, dict) and isinstance(blink.get("active"), bool):
        return blink["active"]
    landmarks = face.get("landmarks3d")
    if isinstance(landmarks, list) and len(landmarks) == 68:
        try:
            return eye_aspect_ratio(landmarks) < BLINK_EAR
        except (TypeError, ValueError, IndexError):
            return None
    return None


def blink_ear(face: dict) -> float | None:
    au = face.get("au")
    derived = au.get("derived") if isinstance(au, dict) and isinstance(au.get("derived"), dict) else {}
    blink = derived.get(AU45.code)
    return num(blink.get("ear")) if isinstance(blink, dict) else None


def active_list(face: dict) -> list[str] | None:
    """The active AUs as fa-predict listed them (AU45 included), else derived from the scores."""
    au = face.get("au")
    if not isinstance(au, dict):
        return None
    if isinstance(au.get("active"), list):
        return list(au["active"])
    return [row.code for row in au_rows(face) if row.active]


def expression_of(face: dict) -> dict:
    expression = face.get("expression")
    return expression if isinstance(expression, dict) else {}


def va_of(face: dict) -> tuple[float | None, float | None, str | None]:
    va = face.get("va")
    if not isinstance(va, dict):
        return None, None, None
    valence, arousal = num(va.get("valence")), num(va.get("arousal"))
    quadrant = va.get("quadrant")
    if not isinstance(quadrant, str):
        quadrant = QUADRANTS[(valence >= 0, arousal >= 0)] if valence is not None and arousal is not None else None
    return valence, arousal, quadrant


def box_of(face: dict) -> list:
    box = face.get("box")
    return list(box) if isinstance(box, list) and len(box) == 4 else [None] * 4


def pose_of(face: dict) -> tuple[Any, Any, Any]:
    pose = face.get("pose")
    if not isinstance(pose, dict):
        return None, None, None
    return num(pose.get("yaw")), num(pose.get("pitch")), num(pose.get("roll"))


def get(mapping: Any, *keys: str, default: Any = None) -> Any:
    """mapping[k1][k2]... or ``default`` when any level is missing (the summary is read defensively)."""
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return default
        mapping = mapping[key]
    return default if mapping is None else mapping


def _human_time(value: Any, minutes_fmt: str, hours_fmt: str) -> str:
    value = num(value)
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


@dataclass
class Job:
    """One export: what every format needs to know besides the records."""

    staging: Staging
    timestamp: str
    started: Any  # datetime of the export's start
    formats: tuple[str, ...]
    metadata: dict  # the caller's analysis_metadata, merged over what is inferred
    keep_analysis: bool = False
    videos: dict[Any, Video] = field(default_factory=dict)
    summary: dict | None = None  # the whole summary, set before the formats finish
    analyses: list[dict] = field(default_factory=list)
    _suffixes: dict[Any, str] = field(default_factory=dict)

    def video_summary(self, video: Video) -> dict:
        for entry in get(self.summary, "videos", default=[]):
            if isinstance(entry, dict) and entry.get("video") == video.name:
                return entry
        return {}

    def suffix(self, video: Video) -> str:
        """"" with one video; else "_<stem>", made unique (a/v.mp4 and b/v.mp4 give _v and _v-2)."""
        if len(self.videos) == 1:
            return ""
        if not self._suffixes:
            used: set[str] = set()
            for name in self.videos:
                stem = safe_name(Path(str(name)).stem if name is not None else "unnamed")
                unique, n = stem, 1
                while unique in used:
                    n += 1
                    unique = f"{stem}-{n}"
                used.add(unique)
                self._suffixes[name] = f"_{unique}"
        return self._suffixes[video.name]


class Sink:
    """One export format: sees every record once, as it arrives, then stages its files."""

    fmt = ""

    def __init__(self, job: Job) -> None:
        self.job = job

    def header(self, video: Video, record: dict) -> None:
        """A video header record."""

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        """A frame record; ``faces`` is None when the record was not run through a detector."""

    def finish(self) -> None:
        """Write what is left and stage the final files (``job.summary`` is set by now)."""

    def abort(self) -> None:
        """Close what is open; the staging removes the files."""
