"""Whole analyses of videos in one process: fa-run and the Python API.

``VideoAnalyzer`` loads the models once and analyses any number of videos; each
analysis streams its records to ``DIR/frames.jsonl`` (constant memory), writes
``DIR/summary.json`` and then the exports.  The records are those of
``fa-frames | fa-detect | fa-predict | fa-track`` with the same options.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from fatools.detect import DetectOptions
from fatools.predict import PredictOptions
from fatools.records import RecordWriter, dumps, read_paths
from fatools.video import Sampling

log = logging.getLogger("fatools")


@dataclass(frozen=True)
class RunOptions:
    """Everything fa-run takes, with the stages' defaults (sampling: every 5th frame, as the seed)."""

    sampling: Sampling = Sampling(every=5)
    detector: str = "retinaface"
    detect: DetectOptions = DetectOptions()
    predict: PredictOptions = PredictOptions()
    device: str = "auto"
    batch_size: int | None = None  # frames per detector batch
    config_path: str | None = None
    models_dir: str | None = None
    formats: tuple[str, ...] | None = None  # None: every export format
    track: dict = field(default_factory=dict)  # fatools.track.TrackOptions fields
    summary: dict = field(default_factory=dict)  # fatools.summary.Summarizer options
    progress: bool | None = None  # None: when stderr is a terminal


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _write_json(path: Path, data: dict) -> None:
    tmp = _atomic_path(path)
    tmp.write_bytes(dumps(data))
    os.replace(tmp, path)


class VideoAnalyzer:
    """The detector and predictors loaded once (every model checked first), for many videos."""

    def __init__(self, options: RunOptions = RunOptions()) -> None:
        from fatools.detect import build_detector
        from fatools.devices import default_batch_size
        from fatools.predict import build_predictors

        self.options = options
        self.predictors = None
        # Check every model before loading any, so one message names all that are missing.
        self.model_names = self._required_models()
        if options.predict.tasks:
            self.predictors = build_predictors(options.predict, options.device, options.config_path, options.models_dir)
        self.detector = build_detector(options.detector, options.detect, options.device, options.config_path, options.models_dir)
        self.detect_batch = options.batch_size or default_batch_size(self.detector.device, "detector")
        # Frames whose faces are predicted together: as fa-predict's default, so records match the pipe's.
        self.predict_batch = default_batch_size(self.detector.device, "frames")

    def _required_models(self) -> list[str]:
        from fatools.models import config as model_config
        from fatools.models import store

        cfg = model_config.load_config(self.options.config_path, device="cpu", tasks=list(self.options.predict.tasks),
                                       detector=self.options.detector, root=self.options.models_dir)
        names = model_config.required_models(cfg)
        store.require(names, self.options.models_dir)
        return names

    def models(self) -> list[dict]:
        """Name, path and sha256 of every model this analysis uses (for the record of the run)."""
        from fatools.models import store

        return [{"name": row["name"], "task": row["task"], "sha256": row["sha256"], "path": row["path"]}
                for row in store.status(self.options.models_dir) if row["name"] in self.model_names]

    def records(self, video: str, progress: bool | None = None) -> Iterable[dict]:
        """The tracked records of one video, lazily."""
        from fatools.pipeline import Progress, analysed_records, expected_samples
        from fatools.track import TrackOptions, track_records
        from fatools.video import probe

        show = Progress(expected_samples(probe(video), self.options.sampling), progress)
        try:
            records = analysed_records(video, self.options.sampling, self.detector, self.predictors,
                                       self.detect_batch, self.predict_batch, progress=show)
            yield from track_records(records, TrackOptions(**self.options.track))
        finally:
            show.close()

    def analyze(self, video: str, out_dir: str | os.PathLike[str], keep_analysis: bool = False) -> Any:
        """Analyse one video into ``out_dir``; the export result (``.files``, ``.analysis``)."""
        from fatools.export import FORMATS, export
        from fatools.summary import Summarizer

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        started = datetime.now(timezone.utc)
        clock = time.monotonic()
        frames_path = out / "frames.jsonl"
        summarizer = Summarizer(**self.options.summary)
        tmp = _atomic_path(frames_path)
        frames = 0
        with open(tmp, "wb") as handle:
            writer = RecordWriter(handle)
            for record in self.records(video, self.options.progress):
                summarizer.add(record)
                writer.write(record)
                frames += record.get("type", "frame") == "frame"
        os.replace(tmp, frames_path)
        summary = summarizer.result()
        _write_json(out / "summary.json", summary)
        metadata = {
            "video_path": video,
            "start_time": started.isoformat(),
            "processing_duration_seconds": round(time.monotonic() - clock, 3),
            "frames_processed": frames,
            "models": self.models(),
            "options": _options_dict(self.options),
        }
        log.info("%s: %d frames analysed in %.1f s", video, frames, metadata["processing_duration_seconds"])
        result = export(read_paths([str(frames_path)]), out, self.options.formats or FORMATS, summary=summary,
                        analysis_metadata=metadata, keep_analysis=keep_analysis)
        result.files.setdefault("records", []).append(frames_path)
        result.files.setdefault("summary", []).append(out / "summary.json")
        return result


def _options_dict(options: RunOptions) -> dict:
    data = asdict(options)
    data["sampling"] = asdict(options.sampling)
    return data


class FacialActionVideoAnalyzer:
    """The seed's interface: ``FacialActionVideoAnalyzer(config_path, device).analyze_video(...)``.

    Returns the same dictionary as the JSON export (``analysis_metadata``,
    ``video_metadata``, ``frame_analyses``, ``summary_statistics``).
    """

    def __init__(self, config_path: str | None = None, device: str | None = None, **options: Any) -> None:
        self._base = _run_options(config_path=config_path, device=device or "auto", **options)
        self._analyzer: VideoAnalyzer | None = None

    def analyze_video(self, video_path: str, output_dir: str, sample_rate: int = 5) -> dict:
        options = replace(self._base, sampling=replace(self._base.sampling, every=sample_rate))
        if self._analyzer is None:
            self._analyzer = VideoAnalyzer(options)
        else:
            self._analyzer.options = options
        return self._analyzer.analyze(video_path, output_dir, keep_analysis=True).analysis


def analyze_video(video_path: str, output_path: str, sample_rate: int = 5, **options: Any) -> dict:
    """Analyse ``video_path`` into the directory ``output_path``; the JSON export's dictionary.

    ``options`` are fa-run's, by their Python names: ``fps``, ``start``, ``end``,
    ``max_frames``, ``tasks``, ``detector``, ``det_size``, ``device``, ``batch_size``,
    ``config_path``, ``models_dir``, ``formats``, ``facetorch_exact``, ``au_threshold``,
    ``optimize``, ``fp16``, ``int8``.
    """
    run_options = _run_options(sample_rate=sample_rate, **options)
    return VideoAnalyzer(run_options).analyze(video_path, output_path, keep_analysis=True).analysis


def _run_options(
    sample_rate: int = 5,
    fps: float | None = None,
    start: float = 0.0,
    end: float | None = None,
    max_frames: int | None = None,
    tasks: Iterable[str] | str = ("au", "fer", "va", "align"),
    detector: str = "retinaface",
    det_size: int | None = 1080,
    score_threshold: float | None = None,
    min_face: float = 0.0,
    facetorch_exact: bool = False,
    au_threshold: float = 0.5,
    optimize: bool = True,
    fp16: bool = False,
    int8: bool = False,
    device: str = "auto",
    batch_size: int | None = None,
    config_path: str | None = None,
    models_dir: str | None = None,
    formats: Iterable[str] | None = None,
    progress: bool | None = False,
) -> RunOptions:
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    sampling = Sampling(every=1 if fps else sample_rate, fps=fps, start=start, end=end, max_frames=max_frames)
    return RunOptions(
        sampling=sampling,
        detector=detector,
        detect=DetectOptions(det_size=det_size or None, square_pad=facetorch_exact,
                             score_threshold=score_threshold, min_face=min_face, optimize=optimize, half=fp16),
        predict=PredictOptions(tasks=tuple(tasks), au_threshold=au_threshold, facetorch_exact=facetorch_exact,
                               det_size=det_size or 1080, optimize=optimize, half=fp16, int8=int8),
        device=device,
        batch_size=batch_size,
        config_path=config_path,
        models_dir=models_dir,
        formats=tuple(formats) if formats else None,
        progress=progress,
    )
