"""Which face in a video is the participant, and whether it is the same person in each of
their videos.

The rule (``choose``): the participant's track is the one with the largest *presence x
size*: the sum, over the frames the track is seen in, of its face box's shorter side as
a share of the frame's shorter side (so: frames seen x mean relative face size).  The
camera of a study is set up for its participant, who is in it for the whole session and
near it; an interviewer or a passer-by is smaller (further, at the edge) or seen for a
short while, and a product lets neither a brief close-up nor a small face in the back
that is always there win.  Ties go to the lower track id.  A design table's
``participant_track`` overrides the rule for its video (a track id that is not in the
video is an error for that video, reported, not guessed).  Every other track is kept,
as another person (``role`` "other" in the tables).

The identity check (``check_identity``) runs where records carry embeddings (fa-run
``--tasks ...,embed``): each chosen track's mean embedding (unit length) is compared, by
cosine similarity, with the mean of the same participant's chosen tracks in their other
videos.  Below the threshold the video is reported as a mismatch, with the other track
of the same video that looks like the participant (the interviewer was picked) and the
other participant's video that looks like it (swapped files), where there is one.  With
two videos of a person both are reported: two disagreeing videos cannot say which is
wrong; the hints can.  Nothing is changed: the tables keep the rule's (or the design's)
track and say ``identity`` "mismatch".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.5


@dataclass
class TrackStats:
    """What the rule and the check need of one track of one video."""

    track: Any
    faces: int = 0
    presence_size: float = 0.0  # sum over its faces of box shorter side / frame shorter side
    embedding_sum: np.ndarray | None = None
    embeddings: int = 0

    def add(self, face: dict, frame_side: float | None) -> None:
        self.faces += 1
        box = face.get("box")
        if box and frame_side:
            self.presence_size += max(0.0, min(box[2] - box[0], box[3] - box[1])) / frame_side
        emb = face.get("embedding")
        if emb:
            vector = np.asarray(emb, dtype=np.float64)
            norm = np.linalg.norm(vector)
            if norm > 0:
                vector = vector / norm
                self.embedding_sum = vector if self.embedding_sum is None else self.embedding_sum + vector
                self.embeddings += 1

    @property
    def embedding(self) -> np.ndarray | None:
        if self.embedding_sum is None:
            return None
        norm = np.linalg.norm(self.embedding_sum)
        return self.embedding_sum / norm if norm > 0 else None


def choose(tracks: dict[Any, TrackStats], stated: Any = None) -> tuple[Any, str]:
    """The participant's track id (None when there is none) and how it was chosen:
    "design" (the table's participant_track), "rule", or "none"."""
    if stated is not None:
        for track in tracks:
            if str(track) == str(stated):
                return track, "design"
        raise ValueError(
            f"participant_track {stated} is not a track of this video (tracks: "
            f"{', '.join(str(t) for t in tracks) or 'none'})"
        )
    if not tracks:
        return None, "none"
    best = max(tracks.values(), key=lambda s: (s.presence_size, s.faces, -_order(s.track)))
    return best.track, "rule"


def _order(track: Any) -> float:
    try:
        return float(track)
    except (TypeError, ValueError):
        return float("inf")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@dataclass
class VideoIdentity:
    """One input's chosen track and the check's verdict."""

    input: str
    participant: str | None
    track: Any
    tracks: dict[Any, TrackStats] = field(default_factory=dict)
    status: str = "unchecked"  # "ok", "mismatch", or "unchecked" (no embeddings, or no other video)
    similarity: float | None = None
    message: str | None = None


def check_identity(videos: list[VideoIdentity], threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """Set each video's status and similarity; one line per mismatched video."""
    lines = []
    chosen: dict[int, np.ndarray] = {}
    for v in videos:
        embedding = v.tracks[v.track].embedding if v.track is not None and v.track in v.tracks else None
        if embedding is not None:
            chosen[id(v)] = embedding
    for video in videos:
        mine = chosen.get(id(video))
        if video.participant is None or mine is None:
            continue
        others = [
            chosen[id(o)]
            for o in videos
            if o is not video and o.participant == video.participant and chosen.get(id(o)) is not None
        ]
        if not others:
            continue
        reference = np.mean(others, axis=0)
        video.similarity = round(_cos(mine, reference), 4)
        if video.similarity >= threshold:
            video.status = "ok"
            continue
        video.status = "mismatch"
        hints = []
        alternatives = [
            (_cos(embedding, reference), t)
            for t, stats in video.tracks.items()
            if t != video.track and (embedding := stats.embedding) is not None
        ]
        if alternatives:
            sim, track = max(alternatives, key=lambda pair: pair[0])
            if sim >= threshold:
                hints.append(
                    f"its track {track} looks like them ({sim:.2f}): was another person picked? "
                    f"(participant_track in the design chooses)"
                )
        strangers = [
            (_cos(mine, chosen[id(o)]), o)
            for o in videos
            if o.participant not in (None, video.participant) and chosen.get(id(o)) is not None
        ]
        if strangers:
            sim, other = max(strangers, key=lambda pair: pair[0])
            if sim >= threshold:
                hints.append(
                    f"it looks like {other.participant} in {other.input} ({sim:.2f}): swapped files?"
                )
        video.message = (
            f"{video.input}: identity mismatch: participant {video.participant}'s track {video.track} "
            f"is not the person of their other videos (similarity {video.similarity:.2f} < {threshold:g})"
            + ("; " + "; ".join(hints) if hints else "")
        )
        lines.append(video.message)
    return lines
