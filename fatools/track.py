"""Linking the faces of a record stream into tracks across frames (see fa-track(1)).

Each frame's faces are associated with the live tracks of its video by one exact
maximum-weight assignment.  A pair (track, face) may be linked when the face's box
overlaps the box the track is expected at, or when both carry embeddings that are
similar enough; among the allowed pairs the assignment maximises the summed weight
``IoU + similarity``.  A frame is decided as a whole: greedy matching (best pair
first, or face by face) can leave a face without the track it fits because a
neighbour fitting it slightly better took it, though the neighbour had another.

The expected box of a track is its last box moved by its smoothed velocity to the
frame's time (constant velocity): two faces that cross keep moving the way they went,
which is what keeps their ids apart when no embedding tells them apart.  A track that
was missed in the previous frame is also compared with its last box, because a face
that was hidden has as often stopped as kept going, and with where the motion of its
centre has carried it by now (``predicted_centre``, at the box size it had): a face
hidden by another one passing in front comes back further on, and its last box, cut
down by the face in front, says little about where or how big it is.

Time is the records' ``t``; records without it (images) count time as ``frame /
fps`` of the video's header, or in frames when no header gives a rate.  A track ends
when it has not been seen for more than ``max_gap``; ids are never reused within a
video.  State is per video and bounded by the number of live tracks, never by the
number of frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fatools.errors import RecordError
from fatools.records import header_fps, is_frame, is_header, record_time, where

log = logging.getLogger("fatools")

# Timestamps are decimal seconds (0.04 * k): compare times with a little slack.
TIME_EPS = 1e-6


@dataclass(frozen=True)
class TrackOptions:
    """Association parameters (fa-track's options of the same names)."""

    iou_threshold: float = 0.3  # overlap with the expected box that links faces
    embed_threshold: float = 0.6  # embedding cosine similarity that links faces anywhere
    min_similarity: float = 0.3  # below this, embeddings forbid a link whatever the overlap
    max_gap: float = 2.0  # seconds a track may go unseen and still be continued
    embed_momentum: float = 0.9  # weight of a track's embedding gallery against a new sighting
    velocity_smoothing: float = 0.5  # weight of a new velocity measurement

    def __post_init__(self) -> None:
        if not 0 < self.iou_threshold <= 1:
            raise ValueError("iou_threshold must be in (0, 1]")
        if not 0 < self.embed_threshold <= 1:
            raise ValueError("embed_threshold must be in (0, 1]")
        if not -1 <= self.min_similarity <= 1:
            raise ValueError("min_similarity must be in [-1, 1]")
        if not self.max_gap >= 0:
            raise ValueError("max_gap must be >= 0")
        if not 0 <= self.embed_momentum < 1:
            raise ValueError("embed_momentum must be in [0, 1)")
        if not 0 < self.velocity_smoothing <= 1:
            raise ValueError("velocity_smoothing must be in (0, 1]")


# A lost track is matched again to a face whose centre lies within this many of the
# track's box sizes of where its motion predicts it, and whose size is within a factor
# REMATCH_SIZE of the track's: through an occlusion the face keeps moving, and its last
# box (cut down by the face in front of it) says little about its size.
REMATCH_DISTANCE = 0.6
REMATCH_SIZE = 1.8


class _Track:
    __slots__ = ("box", "centre_velocity", "embedding", "hits", "id", "missed", "size", "t", "velocity")

    def __init__(self, track_id: int, box: np.ndarray, t: float, embedding: np.ndarray | None) -> None:
        self.id = track_id
        self.box = box
        self.t = t
        self.velocity = np.zeros(4)
        self.embedding = embedding
        self.missed = 0  # analysed frames since the track was last seen
        self.hits = 1
        # The centre's smoothed velocity and the box's smoothed size: the motion model of a
        # lost track (a partly hidden face's box shrinks, its centre still moves on).
        self.centre_velocity = np.zeros(2)
        self.size = np.array([box[2] - box[0], box[3] - box[1]], dtype=float)

    def expected(self, t: float) -> np.ndarray:
        return self.box + self.velocity * (t - self.t)

    def predicted_centre(self, t: float) -> np.ndarray:
        centre = np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])
        return centre + self.centre_velocity * (t - self.t)

    def see(self, box: np.ndarray, t: float, embedding: np.ndarray | None, options: TrackOptions) -> None:
        dt = t - self.t
        a = options.velocity_smoothing
        if dt > TIME_EPS:
            measured = (box - self.box) / dt
            centre_measured = np.array([measured[0] + measured[2], measured[1] + measured[3]]) / 2
            if self.hits == 1:
                self.velocity = measured
                self.centre_velocity = centre_measured
            else:
                self.velocity = a * measured + (1 - a) * self.velocity
                self.centre_velocity = a * centre_measured + (1 - a) * self.centre_velocity
        self.size = a * np.array([box[2] - box[0], box[3] - box[1]], dtype=float) + (1 - a) * self.size
        if embedding is not None:
            if self.embedding is None or self.embedding.shape != embedding.shape:
                self.embedding = embedding
            else:
                m = options.embed_momentum
                self.embedding = _unit(m * self.embedding + (1 - m) * embedding)
        self.box = box
        self.t = t
        self.missed = 0
        self.hits += 1


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 and math.isfinite(norm) else None


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every [x1, y1, x2, y2] row of ``a`` with every row of ``b``."""
    a = a[:, None, :]
    b = b[None, :, :]
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def max_weight_assignment(weights: np.ndarray) -> list[tuple[int, int]]:
    """Row-column pairs of positive weight whose total weight is the largest possible.

    The Hungarian method in its shortest-augmenting-path form (Kuhn-Munkres, O(n^2 m)),
    exact, and deterministic (ties are broken by index order).  A weight of zero or less
    means "not allowed"; such pairs never appear in the result.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.size == 0:
        return []
    transposed = weights.shape[0] > weights.shape[1]
    # Every row gets a column in the solver; a forbidden pair costs what no pair costs.
    cost = -np.clip(weights.T if transposed else weights, 0, None)
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    row_of = np.zeros(m + 1, dtype=int)  # 1-based row matched to each column, 0 = none
    way = np.zeros(m + 1, dtype=int)
    # The inner loop runs up to n * m times (a crowd of stand-in faces: 750 x 750 took
    # 4 s a frame): it works in buffers made once, with the same operations on the same
    # values as the textbook form, so it reaches the same pairs, ties included.
    minv = np.empty(m + 1)
    used = np.empty(m + 1, dtype=bool)
    free = np.empty(m + 1, dtype=bool)
    reduced = np.empty(m + 1)
    better = np.empty(m + 1, dtype=bool)
    candidates = np.empty(m + 1)
    reduced[0] = np.inf
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        minv.fill(np.inf)
        used.fill(False)
        while True:
            used[j0] = True
            i0 = row_of[j0]
            np.logical_not(used, out=free)
            free[0] = False
            np.subtract(cost[i0 - 1], u[i0], out=reduced[1:])
            np.subtract(reduced[1:], v[1:], out=reduced[1:])
            np.less(reduced, minv, out=better)
            better &= free
            np.copyto(minv, reduced, where=better)
            way[better] = j0
            np.copyto(candidates, minv)
            candidates[used] = np.inf
            j1 = int(candidates.argmin())
            delta = candidates[j1]
            u[row_of[used]] += delta
            v[used] -= delta
            np.subtract(minv, delta, out=minv, where=free)
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    pairs = []
    for j in range(1, m + 1):
        if row_of[j]:
            r, c = row_of[j] - 1, j - 1
            pair = (c, r) if transposed else (r, c)
            if weights[pair] > 0:
                pairs.append(pair)
    return sorted(pairs)


def _parse_faces(record: dict) -> tuple[np.ndarray, list[np.ndarray | None]]:
    faces = record["faces"]
    if not isinstance(faces, list):
        raise RecordError(f"{where(record)}: 'faces' is not a list")
    boxes = np.zeros((len(faces), 4))
    embeddings: list[np.ndarray | None] = []
    for i, face in enumerate(faces):
        box = face.get("box") if isinstance(face, dict) else None
        try:
            boxes[i] = np.asarray(box, dtype=float)
            if not np.isfinite(boxes[i]).all():
                raise ValueError
        except (TypeError, ValueError):
            raise RecordError(
                f"{where(record)}: face {i} has no valid 'box' [x1, y1, x2, y2]; fa-track needs faces from fa-detect"
            ) from None
        raw = face.get("embedding")
        if raw is None:
            embeddings.append(None)
            continue
        try:
            vector = np.asarray(raw, dtype=float)
            if vector.ndim != 1:
                raise ValueError
        except (TypeError, ValueError):
            raise RecordError(
                f"{where(record)}: face {i} has an 'embedding' that is not a list of numbers"
            ) from None
        embeddings.append(_unit(vector))
    return boxes, embeddings


def _with_track(face: dict, track_id: int) -> dict:
    """The face with ``track`` placed after its ``face`` index, where a reader looks for it."""
    out: dict[str, Any] = {}
    if "face" not in face:
        out["track"] = track_id
    for key, value in face.items():
        if key == "track":
            continue
        out[key] = value
        if key == "face":
            out["track"] = track_id
    return out


class Tracker:
    """Writes ``track`` into every face of the frame records given to ``update``, in order.

    Records must come in time order within a video, as fa-frames writes them.  A header
    record starts its video afresh (ids from 0); frame records of another video end the
    current tracks (ids of a video that comes back continue where they stopped, so an
    id never names two tracks in one video).  Time going backwards ends all tracks too.
    """

    def __init__(self, options: TrackOptions | None = None) -> None:
        self.options = options or TrackOptions()
        self._video: Any = None
        self._tracks: list[_Track] = []
        self._last_t: float | None = None
        self._next_id: dict[Any, int] = {}
        self._fps: dict[Any, float] = {}
        self._warned_gap: set[Any] = set()

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)

    def _restart(self, video: Any) -> None:
        self._video = video
        self._tracks = []
        self._last_t = None

    def _time(self, record: dict) -> float:
        t = record_time(record, self._fps.get(record.get("video")), strict=True)
        if t is not None:
            return float(t)
        frame = record.get("frame")
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise RecordError(
                f"{where(record)}: a frame record needs a 't' or an integer 'frame' to be tracked"
            )
        return float(frame)  # stills have no clock: their index stands for seconds

    def update(self, record: dict) -> dict:
        """The record with ``track`` in each face; anything but an analysed frame unchanged."""
        if is_header(record):
            video = record.get("video")
            fps = header_fps(record)
            if fps:
                self._fps[video] = fps
            self._next_id[video] = 0
            self._warned_gap.discard(video)
            self._restart(video)
            return record
        # A frame nobody ran a detector on says nothing about where faces are.
        if not is_frame(record) or record.get("faces") is None:
            return record

        # Everything that can reject the record comes before any change of state, so that
        # a record skipped with --on-error skip leaves the tracks as they were.
        t = self._time(record)
        boxes, embeddings = _parse_faces(record)

        video = record.get("video")
        if video != self._video:
            self._restart(video)
        elif self._last_t is not None and t < self._last_t - TIME_EPS:
            log.info(
                "%s: time goes back from %.3f to %.3f s; tracks start again", where(record), self._last_t, t
            )
            self._restart(video)
        if (
            self._last_t is not None
            and t - self._last_t > self.options.max_gap + TIME_EPS
            and video not in self._warned_gap
        ):
            self._warned_gap.add(video)
            log.warning(
                "%s: %.3g s since the previous frame, more than --track-gap %.3g: no face can be linked across it "
                "(raise --track-gap for sparsely sampled frames)",
                where(record),
                t - self._last_t,
                self.options.max_gap,
            )
        self._last_t = t
        self._tracks = [tr for tr in self._tracks if t - tr.t <= self.options.max_gap + TIME_EPS]

        ids = self._associate(boxes, embeddings, t)
        faces = [_with_track(face, track_id) for face, track_id in zip(record["faces"], ids, strict=True)]
        out = dict(record)
        out["faces"] = faces
        return out

    def _weights(self, boxes: np.ndarray, embeddings: list[np.ndarray | None], t: float) -> np.ndarray:
        """Link weights, tracks by faces: 0 where a link is not allowed (see the module doc)."""
        options = self.options
        tracks = self._tracks
        shape = (len(tracks), len(boxes))
        if not all(shape):
            return np.zeros(shape)
        overlap = iou(np.stack([track.expected(t) for track in tracks]), boxes)
        reach = np.zeros(shape, dtype=bool)  # lost tracks' faces near their predicted motion
        missed = [i for i, track in enumerate(tracks) if track.missed]
        if missed:
            last = iou(np.stack([tracks[i].box for i in missed]), boxes)
            overlap[missed] = np.maximum(overlap[missed], last)
            # A lost track also links to a face near where its motion has carried it, of its
            # size; the closer, the stronger (up to the IoU threshold, so an overlap wins).
            centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
            sizes = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
            for i in missed if REMATCH_DISTANCE > 0 else ():
                track = tracks[i]
                scale = float(max(track.size.max(), 1.0))
                distance = np.linalg.norm(centres - track.predicted_centre(t), axis=1) / scale
                ratio = np.sqrt(
                    np.prod(np.clip(sizes, 1e-6, None), axis=1) / max(float(np.prod(track.size)), 1e-6)
                )
                near = (distance < REMATCH_DISTANCE) & (ratio < REMATCH_SIZE) & (ratio > 1 / REMATCH_SIZE)
                reach[i] = near
                motion = np.where(near, options.iou_threshold * (1.0 - distance / REMATCH_DISTANCE / 2), 0.0)
                overlap[i] = np.maximum(overlap[i], motion)
        similarity = np.full(shape, np.nan)
        for dim in {e.shape for e in embeddings if e is not None}:  # one size unless models were mixed
            seen = [(j, e) for j, e in enumerate(embeddings) if e is not None and e.shape == dim]
            known_tracks = [
                (i, tr.embedding)
                for i, tr in enumerate(tracks)
                if tr.embedding is not None and tr.embedding.shape == dim
            ]
            if known_tracks:
                faces = [j for j, _ in seen]
                rows = [i for i, _ in known_tracks]
                gallery = np.stack([e for _, e in known_tracks])
                similarity[np.ix_(rows, faces)] = gallery @ np.stack([e for _, e in seen]).T
        known = ~np.isnan(similarity)
        sim = np.where(known, similarity, 0.0)
        overlapping = (overlap >= options.iou_threshold) | reach
        allowed = np.where(
            known,
            (sim >= options.embed_threshold) | (overlapping & (sim >= options.min_similarity)),
            overlapping,
        )
        return np.where(allowed, overlap + np.maximum(sim, 0.0), 0.0)

    def _associate(self, boxes: np.ndarray, embeddings: list[np.ndarray | None], t: float) -> list[int]:
        tracks = self._tracks
        weights = self._weights(boxes, embeddings, t)
        ids: list[int | None] = [None] * len(boxes)
        seen = set()
        for i, j in max_weight_assignment(weights):
            track = tracks[i]
            if track.missed:
                log.debug("track %d found again after %.3g s", track.id, t - track.t)
            track.see(boxes[j], t, embeddings[j], self.options)
            ids[j] = track.id
            seen.add(i)
        for i, track in enumerate(tracks):
            if i not in seen:
                track.missed += 1
        for j, track_id in enumerate(ids):
            if track_id is None:
                track_id = self._next_id.get(self._video, 0)
                self._next_id[self._video] = track_id + 1
                tracks.append(_Track(track_id, boxes[j], t, embeddings[j]))
                ids[j] = track_id
        return ids  # type: ignore[return-value]


def track_records(
    records: Iterable[dict], options: TrackOptions | None = None, on_error: str = "fail"
) -> Iterator[dict]:
    """Records with ``track`` in every face, lazily, in input order.

    With ``on_error="skip"`` a frame record whose faces cannot be tracked (no box, a
    bad ``t``) is reported on stderr and left out, as the other stages do.
    """
    tracker = Tracker(options)
    for record in records:
        try:
            yield tracker.update(record)
        except RecordError as exc:
            if on_error != "skip":
                raise
            log.warning("skipped: %s", exc)
