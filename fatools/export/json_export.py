"""The complete analysis as one JSON document per video (``facial_analysis_<timestamp>.json``),
in the seed's structure: analysis_metadata, video_metadata, frame_analyses,
summary_statistics.

frame_analyses is the one part that grows with the video, so each frame's entry is
written, one per line, to a scratch file as its record arrives; at the end the document
is assembled around it by copying, and memory stays constant however long the video.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from typing import IO, Any

import orjson

from fatools.export.formatting import active_list, au_rows, get
from fatools.export.sinks import Job, Sink, Video
from fatools.export.staging import ScratchFiles
from fatools.facs import AU45
from fatools.records import blink_ear, box_of, expression_of, va_of
from fatools.versions import __version__

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def facetorch_version() -> str | None:
    try:
        return importlib.metadata.version("facetorch")
    except importlib.metadata.PackageNotFoundError:
        return None


def face_analysis(face: dict, index: int) -> dict:
    """One face in the seed's shape; a prediction the record lacks is left out, as the seed does."""
    out: dict[str, Any] = {
        "face_id": face.get("face", index),
        "track": face.get("track"),
        "detection_confidence": face.get("score"),
        "box": box_of(face),
    }
    if "landmarks5" in face:
        out["landmarks5"] = face["landmarks5"]
    if isinstance(face.get("au"), dict):
        au = face["au"]
        active = active_list(face) or []
        interpretations = {}
        for row in au_rows(face):
            item = {
                "score": row.score,
                "active": row.active,
                "name": row.name,
                "description": row.description,
                "intensity": row.intensity,
            }
            if row.code == AU45.code:
                item.update(derived=True, ear=blink_ear(face))
            interpretations[row.code] = item
        out["action_units"] = {
            "active_action_units": active,
            "total_active": len(active),
            "threshold": au.get("threshold"),
            "interpretations": interpretations,
        }
    expression = expression_of(face)
    if expression:
        out["expression"] = {
            "predicted_emotion": expression.get("label"),
            "confidence": expression.get("confidence"),
            "scores": expression.get("scores"),
        }
    if isinstance(face.get("va"), dict):
        valence, arousal, quadrant = va_of(face)
        out["valence_arousal"] = {"valence": valence, "arousal": arousal, "emotional_quadrant": quadrant}
    if "landmarks3d" in face:
        out["landmarks"] = face["landmarks3d"]
    if "pose" in face:
        out["pose"] = face["pose"]
    if "embedding" in face:
        out["embedding"] = face["embedding"]
    return out


def frame_analysis(record: dict, faces: list[dict] | None) -> dict:
    return {
        "frame_index": record.get("frame"),
        "timestamp_seconds": record.get("t"),
        "faces_detected": None if faces is None else len(faces),
        "faces": [face_analysis(face, i) for i, face in enumerate(faces or [])],
    }


def summary_statistics(video_summary: dict) -> dict:
    """The seed's summary keys, from fa-summarize's video summary (kept whole under ``summary``)."""
    overall = get(video_summary, "overall", default={})
    return {
        "total_frames": get(video_summary, "frames", "sampled"),
        "frames_with_faces": get(video_summary, "frames", "with_faces"),
        "total_faces_detected": get(video_summary, "frames", "faces"),
        "average_faces_per_frame": get(video_summary, "frames", "faces_per_frame", "mean"),
        "max_faces_per_frame": get(video_summary, "frames", "faces_per_frame", "max"),
        "tracks": len(get(video_summary, "tracks", default=[])),
        "analysed_seconds": get(video_summary, "time", "seconds"),
        "most_common_emotion": get(overall, "emotion", "most_common"),
        "emotion_distribution": get(overall, "emotion", "distribution", default={}),
        "average_valence": get(overall, "valence", "mean"),
        "average_arousal": get(overall, "arousal", "mean"),
        "most_active_action_units": get(overall, "most_active_aus", default=[]),
        "blinks": get(overall, "blinks"),
        "summary": video_summary or None,
    }


def analysis_metadata(job: Job, video: Video) -> dict:
    """What the records tell, with the caller's analysis_metadata over it (shallow merge)."""
    inferred = {
        "video_path": video.name,
        "start_time": job.started.isoformat(timespec="seconds"),
        "processing_duration_seconds": None,  # known to whoever ran the models (fa-run), not to an export
        "frames_processed": video.frames,
        "fatools_version": __version__,
        "facetorch_version": facetorch_version(),
        "models": video.models(),
        "options": {
            "detection": video.detection,
            "au_threshold": video.au_threshold,
            "summary": get(job.summary, "options"),
        },
    }
    inferred.update(job.metadata)
    return inferred


def _member(handle: IO[bytes], key: str, value: Any, last: bool = False) -> None:
    body = orjson.dumps(value, option=_OPTIONS | orjson.OPT_INDENT_2).replace(b"\n", b"\n  ")
    handle.write(b"  " + orjson.dumps(key) + b": " + body + (b"\n" if last else b",\n"))


class JsonSink(Sink):
    fmt = "json"

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.scratch = ScratchFiles(job.staging)  # per video: its frame analyses, comma-separated
        self.written: dict[Any, int] = {}  # per video: frames in its scratch file
        self.kept: dict[Any, list[dict]] = {}

    def frame(self, video: Video, record: dict, faces: list[dict] | None) -> None:
        entry = frame_analysis(record, faces)
        done = self.written.get(video.name, 0)
        self.scratch.writer(video.name).write(
            (b",\n    " if done else b"    ") + orjson.dumps(entry, option=_OPTIONS)
        )
        self.written[video.name] = done + 1
        if self.job.keep_analysis:
            self.kept.setdefault(video.name, []).append(entry)

    def abort(self) -> None:
        self.scratch.close()

    def finish(self) -> None:
        self.scratch.close()
        job = self.job
        for video in job.videos.values():
            head = {"analysis_metadata": analysis_metadata(job, video), "video_metadata": video.metadata()}
            tail = summary_statistics(job.video_summary(video))
            path, handle = job.staging.open("wb")
            with handle:
                handle.write(b"{\n")
                for key, value in head.items():
                    _member(handle, key, value)
                handle.write(b'  "frame_analyses": [\n')
                if video.name in self.scratch.paths:
                    with open(self.scratch.paths[video.name], "rb") as frames:
                        shutil.copyfileobj(frames, handle)
                handle.write(b"\n  ],\n")
                _member(handle, "summary_statistics", tail, last=True)
                handle.write(b"}\n")
            job.staging.stage(self.fmt, path, f"facial_analysis{job.suffix(video)}_{job.timestamp}.json")
            if job.keep_analysis:
                job.analyses.append(
                    {**head, "frame_analyses": self.kept.get(video.name, []), "summary_statistics": tail}
                )
