"""Whole analyses in one process: fa-run and the Python API.

``run_options`` is the one constructor of ``RunOptions``, shared by fa-run and the
Python API.  ``VideoAnalyzer`` loads the models once and analyses any number of inputs
(videos, images, folders of images); each analysis is one pass over the records of
``fatools.pipeline``: they stream into ``DIR/frames.jsonl``, the summary and the exports
together, and ``DIR/summary.json`` and the export files are written at the end
(``fatools.study.outdir`` owns the directory's names and writes).  The
records are those of ``fa-frames | fa-detect | fa-predict | fa-track`` with the same
options.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fatools.detect import DetectOptions, detect_options
from fatools.errors import Interrupted
from fatools.models.request import ModelRequest, resolve
from fatools.predict import DEFAULT_TASKS, PredictOptions, predict_options
from fatools.study import outdir
from fatools.summary import SummaryOptions
from fatools.track import TrackOptions
from fatools.video import Sampling

log = logging.getLogger("fatools")

VIDEO_EVERY = 5  # fa-run's default sampling of a video: every 5th frame, as the seed


@dataclass(frozen=True)
class RunOptions:
    """Everything fa-run takes (``run_options`` builds it from fa-run's options)."""

    sampling: Sampling = Sampling(every=VIDEO_EVERY)
    still_every: int = 1  # every Nth image of a folder (images have no frame rate to thin)
    # None: the one a short-form --config names, else retinaface; the resolution of the
    # model request says which (Resolution.detector), from its one reading of the file.
    detector: str | None = None
    detect: DetectOptions = DetectOptions()
    predict: PredictOptions = PredictOptions()
    track: TrackOptions = TrackOptions()
    summary: SummaryOptions = SummaryOptions()
    device: str = "auto"
    detect_batch: int | None = None  # frames per detector batch; None: per model and device
    frame_batch: int | None = None  # frames whose faces are predicted together; None: per device
    config_path: str | None = None
    trust_config: bool = False  # run a config whose _target_s name code outside facetorch, torch, ...
    models_dir: str | None = None
    verify: bool = True  # check each model file against its source.json before loading it
    formats: tuple[str, ...] | None = None  # None: every export format
    progress: bool | None = None  # None: when stderr is a terminal
    live: Any = None  # fatools.live.LiveOptions for a live input (None: the defaults)
    checkpoint: float | None = None  # live input: seconds between rewrites of summary.json while it runs
    # fa-run --serve: told of each frame's pixels (``pixels``) and each record (``add``) as
    # the run goes (fatools.export.live_page.LivePage); not an option of the results.
    observer: Any = field(default=None, compare=False, repr=False)

    @property
    def model_request(self) -> ModelRequest:
        """What these options ask of the models (derived, so it cannot disagree with them)."""
        predict = self.predict
        return ModelRequest(
            detector=self.detector,
            tasks=predict.tasks,
            device=self.device,
            backend=predict.backend,
            optimize=predict.optimize,
            fp16=predict.half,
            int8=predict.int8,
            bf16=predict.bf16,
            config_path=self.config_path,
            trust_config=self.trust_config,
            models_dir=self.models_dir,
            verify=self.verify,
        )

    def sampling_for(self, path: str) -> Sampling:
        """The sampling of one input: a video's, or every ``still_every``-th image."""
        from fatools.study.inputs import input_kind

        if input_kind(path) == "video":
            return self.sampling
        return replace(self.sampling, every=self.still_every)


def run_options(
    *,
    every: int | None = None,
    fps: float | None = None,
    start: float = 0.0,
    end: float | None = None,
    max_frames: int | None = None,
    tasks: Iterable[str] | str = DEFAULT_TASKS,
    detector: str | None = None,
    det_size: int | None = 1080,
    score_threshold: float | None = None,
    min_face: float = 0.0,
    facetorch_exact: bool = False,
    au_threshold: float = 0.5,
    optimize: bool = True,
    fp16: bool = False,
    int8: bool = False,
    bf16: bool = False,
    backend: str = "auto",
    track_gap: float = TrackOptions.max_gap,
    on_threshold: float | None = None,
    off_threshold: float = SummaryOptions.off_threshold,
    min_duration: float = SummaryOptions.min_duration,
    episode_gap: float | None = None,
    top: int = SummaryOptions.top,
    events: str | None = None,
    baseline: str | None = None,
    min_quality: str | None = None,
    track: TrackOptions | None = None,
    summary: SummaryOptions | None = None,
    device: str = "auto",
    detect_batch: int | None = None,
    frame_batch: int | None = None,
    face_batch: int | None = None,
    config_path: str | None = None,
    trust_config: bool = False,
    models_dir: str | None = None,
    verify: bool = True,
    formats: Iterable[str] | None = None,
    progress: bool | None = None,
    live: Any = None,
    checkpoint: float | None = None,
) -> RunOptions:
    """RunOptions from fa-run's options, by their Python names (fa-run(1)).

    ``every`` None samples every 5th frame of a video and every image; ``detector`` None
    is the one a short-form ``config_path`` names, else retinaface; ``track`` and
    ``summary`` replace the tracking and summary options wholesale (the flat ones set
    what fa-run's command line sets).  ValueError for contradictions.
    """
    from fatools.events import check_events_options
    from fatools.export.formats import parse_formats

    if every is not None and fps is not None:
        raise ValueError("--every and --fps are alternatives; give one")
    if end is not None and end <= start:
        raise ValueError("--end must be after --start")
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    sampling = Sampling(
        every=1 if fps else (every or VIDEO_EVERY), fps=fps, start=start, end=end, max_frames=max_frames
    )
    check_events_options(events, baseline)  # a bad events file is refused before any model loads
    return RunOptions(
        sampling=sampling,
        still_every=every or 1,
        # None: a short-form config's detector, else retinaface: the model request's
        # resolution names it (run.json and the resume check take it from there).
        detector=detector,
        detect=detect_options(det_size, facetorch_exact, score_threshold, min_face, optimize, fp16, backend),
        predict=predict_options(
            tasks=tasks,
            au_threshold=au_threshold,
            facetorch_exact=facetorch_exact,
            face_batch=face_batch,
            optimize=optimize,
            fp16=fp16,
            int8=int8,
            bf16=bf16,
            backend=backend,
        ),
        track=track if track is not None else TrackOptions(max_gap=track_gap),
        summary=summary
        if summary is not None
        else SummaryOptions(
            on_threshold=on_threshold,
            off_threshold=off_threshold,
            min_duration=min_duration,
            episode_gap=episode_gap,
            top=top,
            events=events,
            baseline=baseline,
            min_quality=min_quality,
        ),
        device=device,
        detect_batch=detect_batch,
        frame_batch=frame_batch,
        config_path=config_path,
        trust_config=trust_config,
        models_dir=models_dir,
        verify=verify,
        formats=parse_formats(formats) if formats else None,
        progress=progress,
        live=live,
        checkpoint=checkpoint,
    )


@dataclass(frozen=True)
class Resumed:
    """What a resumed analysis kept of the records a stopped one left (``analyze``'s
    ``on_start`` gets it; fa-run records it in run.json as ``resumed_from``)."""

    frame: int  # the last frame kept (-1: only headers were); the analysis goes on after it
    t: float | None  # that frame's time in seconds (None for stills, which have no clock)
    frames: int  # frame records kept: their model work is not redone
    records: int  # records kept, headers included (replayed through tracking, the summary, the exports)

    def describe(self) -> str:
        """The clause the resume line and fa-run's messages use."""
        if self.frame < 0:
            return "no frames kept, going on from the start"
        at = f" ({self.t:.2f} s)" if self.t is not None else ""
        return f"{self.frames} frames kept, going on after frame {self.frame}{at}"


class VideoAnalyzer:
    """The detector and predictors, loaded once (every model checked first), for many inputs."""

    def __init__(self, options: RunOptions = RunOptions()) -> None:
        from fatools.models.loading import load_models

        self.options = options
        # One resolution checks every model before any loads, so one message names all that
        # are missing; a process that asks again for the same models gets them loaded.
        self.model_set = load_models(
            options.model_request, options.detect, options.predict if options.predict.tasks else None
        )
        self.detector = self.model_set.detector
        self.predictors = self.model_set.predictors

    def models(self) -> list[dict]:
        """Name, task, path and sha256 of every model this analysis uses (for the record of the run)."""
        return self.model_set.files()

    def batch_sizes(self) -> tuple[int, int]:
        """Frames per detector batch, and frames predicted together (as fa-predict's default,
        so that records match the pipe's)."""
        from fatools.devices import default_batch_size

        device = self.detector.device
        return (
            self.options.detect_batch or default_batch_size(device, "detector"),
            self.options.frame_batch or default_batch_size(device, "frames"),
        )

    def records(
        self, path: str, replay: Iterable[dict] = (), skip_through: int | None = None, live: Any = None
    ) -> Iterable[dict]:
        """The tracked records of one input, lazily (fa-frames | fa-detect | fa-predict | fa-track);
        a resumed analysis replays what it has and goes on after ``skip_through``; ``live``: a
        ``fatools.live.LiveRun`` for a live input."""
        from fatools.pipeline import analysed_records

        options = self.options
        detect_batch, frame_batch = self.batch_sizes()
        if live is not None:  # a record leaves as soon as its frame is analysed, unless batches are asked for
            detect_batch, frame_batch = options.detect_batch or 1, options.frame_batch or 1
        return analysed_records(
            path,
            options.sampling_for(path),
            self.detector,
            self.predictors,
            options.track,
            detect_batch,
            frame_batch,
            replay,
            skip_through,
            live=live,
            on_pixels=options.observer.pixels if options.observer is not None else None,
        )

    def _resume(self, out: Path) -> tuple[int | None, Resumed | None]:
        """What a records file a stopped analysis left gives: the bytes to keep and what
        they hold; (None, None) when there is nothing to go on from."""
        from fatools.records import is_frame
        from fatools.stream import resume_point

        if not outdir.resumable(out):
            return None, None
        light, offsets = [], []
        for record, offset in outdir.saved_records(out / outdir.PART):
            # What batching (and the resume line) looks at, and no more: a long video's
            # records need not be held.
            kept = {key: record[key] for key in ("type", "frame", "t", "width", "height") if key in record}
            if isinstance(record.get("faces"), list):
                kept["faces"] = [0] * len(record["faces"])
            light.append(kept)
            offsets.append(offset)
        keep = resume_point(light, *self.batch_sizes())
        if keep == 0:
            return None, None
        frames = [r for r in light[:keep] if is_frame(r)]
        last = frames[-1] if frames else {}
        return offsets[keep - 1], Resumed(
            frame=last.get("frame", -1), t=last.get("t"), frames=len(frames), records=keep
        )

    def analyze(
        self,
        path: str,
        out_dir: str | os.PathLike[str],
        keep_analysis: bool = False,
        resume: bool = False,
        should_stop: Callable[[], int | None] | None = None,
        assets_dir: str | os.PathLike[str] | None = None,
        on_start: Callable[[Resumed | None], None] | None = None,
    ) -> Any:
        """Analyse one input into ``out_dir``; the export result (``.files``, ``.analysis``, ``.summary``).

        One pass over the records: each goes to the records file, the summary and the
        exports as it comes.  Nothing is left under a final name if the analysis fails;
        the records written so far stay in ``.frames.jsonl.part``.  With ``resume``, an
        analysis a kill or a signal stopped goes on from there (``_resume``): no model
        work is redone but for the last batch or two, and the result equals an
        uninterrupted run's; one line at the default log level says what was kept.
        ``on_start`` is called once that is known, before any model work, with the
        ``Resumed`` or None.  ``should_stop()`` is asked after every record; a signal
        number stops the analysis there (``errors.Interrupted``).
        """
        from fatools.export import DEFAULT_FORMATS, Export
        from fatools.live import LiveRun, is_live
        from fatools.progress import Progress, expected_samples
        from fatools.study.inputs import input_kind
        from fatools.summary import Summarizer
        from fatools.video import probe

        options = self.options
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        started = datetime.now(timezone.utc)
        clock = time.monotonic()
        live = LiveRun(options.live, should_stop=should_stop) if is_live(path, options.live) else None
        if live is not None:
            resume = False  # a live stream cannot be gone back to
            if options.live is None:
                from fatools.live import LiveOptions

                live = LiveRun(LiveOptions(), should_stop=should_stop)
        total = (
            expected_samples(probe(path), options.sampling)
            if live is None and input_kind(path) == "video"
            else None
        )
        progress = Progress(total, options.progress)
        summarizer = Summarizer(options.summary)
        exporter = Export(
            out,
            options.formats or DEFAULT_FORMATS,
            keep_analysis=keep_analysis,
            min_quality=options.summary.min_quality,
            assets_dir=assets_dir,
            expression_labels=self.model_set.expression_labels,
        )
        keep, resumed = self._resume(out) if resume else (None, None)
        replayed = resumed.records if resumed else 0
        skip_through = resumed.frame if resumed else None
        if resumed:
            # At the default level (warnings), not -v: whoever requeued a killed job wants
            # to see, in its log, that work was kept and how much.
            log.warning("%s: resumed: %s", path, resumed.describe())
        if on_start is not None:
            on_start(resumed)
        records_file = outdir.RecordsFile(out, keep, replayed) if live is None else live.records_file(out)
        frames = 0
        try:
            stream = self.records(
                path, outdir.replay(out, replayed) if replayed else (), skip_through, live=live
            )
            for record in progress.count(stream):
                records_file.add(record)
                summarizer.add(record)
                exporter.add(record)
                if options.observer is not None:
                    options.observer.add(record)
                frames += record.get("type", "frame") == "frame"
                if live is not None:  # a signal ends the live source; the records in flight still come
                    live.written(record, out, summarizer, options.checkpoint)
                    continue
                signum = should_stop() if should_stop is not None else None
                if signum:
                    raise Interrupted(signum)
        except BaseException:
            records_file.close()
            exporter.abort()
            raise
        finally:
            progress.close()
        frames_path = records_file.finish()
        summary = summarizer.result()
        if live is not None:
            summary["live"] = live.stats.as_dict()
        summary_path = outdir.write_summary(out, summary)
        metadata = {
            "video_path": path,
            "start_time": started.isoformat(),
            "processing_duration_seconds": round(time.monotonic() - clock, 3),
            "frames_processed": frames,
            "models": self.models(),
            "options": _options_dict(options, self.model_set.resolution.detector),
        }
        log.info("%s: %d frames analysed in %.1f s", path, frames, metadata["processing_duration_seconds"])
        result = exporter.finish(summary, metadata)
        result.files.setdefault("records", []).append(frames_path)
        result.files.setdefault("summary", []).append(summary_path)
        return result


def _options_dict(options: RunOptions, detector: str) -> dict:
    """The options as the exports' provenance lists them, with the detector that ran."""
    values = asdict(replace(options, detector=detector, observer=None))
    values.pop("observer")
    for key in ("live", "checkpoint"):  # a file's provenance as before the live options came
        if values.get(key) is None:
            values.pop(key, None)
    return values


class FacialActionVideoAnalyzer:
    """The seed's interface: ``FacialActionVideoAnalyzer(config_path, device).analyze_video(...)``.

    ``options`` are ``run_options``' (fa-run's, by their Python names).  Returns the same
    dictionary as the JSON export (``analysis_metadata``, ``video_metadata``,
    ``frame_analyses``, ``summary_statistics``).  The frames are under ``frame_analyses``,
    as in the seed's JSON; the seed's README reads ``results['frame_results']``, a
    mistake there.  ``config_path`` may be a full facetorch configuration or the seed's
    short form (fa-run(1), --config).
    """

    def __init__(self, config_path: str | None = None, device: str | None = None, **options: Any) -> None:
        self._base = run_options(config_path=config_path, device=device or "auto", **options)
        # As the seed's constructor (which built its analyzer): the configuration is read
        # and the models checked here, so a refused --config says so at once; the models
        # load at the first analysis, from this resolution.
        resolve(self._base.model_request)
        self._analyzer: VideoAnalyzer | None = None

    def analyze_video(
        self, video_path: str, output_dir: str | None = None, sample_rate: int = VIDEO_EVERY
    ) -> dict:
        """Analyse ``video_path`` into ``output_dir`` (None: nothing kept on disk), every
        ``sample_rate``-th frame (or image, as fa-run's --every)."""
        options = replace(
            self._base, sampling=replace(self._base.sampling, every=sample_rate), still_every=sample_rate
        )
        if output_dir is None and options.formats is None:
            options = replace(options, formats=("json",))  # the rest would go with the scratch directory
        if self._analyzer is None:
            self._analyzer = VideoAnalyzer(options)
        else:
            self._analyzer.options = options
        return _analysis(self._analyzer, video_path, output_dir)


def _analysis(analyzer: VideoAnalyzer, video_path: str, out_dir: str | None) -> dict:
    if out_dir is not None:
        return analyzer.analyze(video_path, out_dir, keep_analysis=True).analysis
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fatools-") as scratch:
        return analyzer.analyze(video_path, scratch, keep_analysis=True).analysis


def analyze_video(
    video_path: str, output_path: str | None = None, sample_rate: int | None = VIDEO_EVERY, **options: Any
) -> dict:
    """Analyse ``video_path`` (a video, an image or a folder of images) into the directory
    ``output_path``; the JSON export's dictionary, its frames under ``frame_analyses``
    (as the seed's JSON; its README's ``frame_results`` is a mistake).  ``output_path``
    None keeps nothing on disk (only the JSON is made, in a directory removed after).
    ``analyze_video_facial_actions`` is the seed's name for this function.

    ``sample_rate`` is fa-run's ``--every``; ``options`` are ``run_options``' (fa-run's,
    by their Python names: ``fps``, ``start``, ``end``, ``max_frames``, ``tasks``,
    ``detector``, ``det_size``, ``facetorch_exact``, ``au_threshold``, ``track_gap``,
    ``on_threshold``, ``episode_gap``, ..., ``device``, ``config_path``, ``trust_config``,
    ``models_dir``, ``verify``, ``formats``, ``fp16``, ``int8``, ``bf16``,
    ``backend``; ``track=`` and ``summary=`` take whole
    TrackOptions / SummaryOptions).
    """
    every = options.pop("every", sample_rate)
    if output_path is None and options.get("formats") is None:
        options["formats"] = ["json"]  # the rest would go with the scratch directory
    run = run_options(every=None if options.get("fps") else every, **options)
    return _analysis(VideoAnalyzer(run), video_path, output_path)


# The seed's name (facetorch_video_analyzer.analyze_video_facial_actions), same signature.
analyze_video_facial_actions = analyze_video
