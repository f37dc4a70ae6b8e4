"""Exports of a record stream for people and for other tools: the seed's JSON document,
per-face and per-AU CSV tables, an OpenFace/py-feat style wide table, a text report and
PNG figures (fa-export(1) describes every file and column).

``export`` reads the records once, lazily: the table formats are written as records
arrive, JSON's frame list goes to a scratch file, plots keep compact per-track arrays,
and the summary is accumulated in the same pass.  Every file is written under a
temporary name in the output directory and renamed into place only when the whole
export has succeeded, so a failed or interrupted export leaves no file, half or whole,
under a final name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable

from fatools.errors import FatoolsError
from fatools.export.common import Job, Sink, Staging, Video, faces_of
from fatools.records import is_frame, is_header

log = logging.getLogger("fatools")

FORMATS = ("json", "csv", "au-timeline", "wide", "text", "plots")


class NoFramesError(FatoolsError):
    """The records held no frame record: there is nothing to export."""
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"


@dataclass
class ExportResult:
    """The files written, by format, in the order written; and the JSON content when kept.

    ``analyses`` holds one JSON document (as a dict) per video when ``keep_analysis`` was
    asked for with the json format; ``analysis`` is that document when the stream held
    one video (the Python API analyses one video at a time), else None.
    """

    files: dict[str, list[Path]] = field(default_factory=dict)
    analyses: list[dict] = field(default_factory=list)

    @property
    def analysis(self) -> dict | None:
        return self.analyses[0] if len(self.analyses) == 1 else None

    def paths(self) -> list[Path]:
        """Every file written, format by format (as fa-export prints them)."""
        return [path for paths in self.files.values() for path in paths]


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats asked for, in FORMATS order, without repeats; ValueError names an unknown one."""
    if isinstance(formats, str):  # export(records, out, "csv") means the one format
        formats = [formats]
    wanted = set()
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
        wanted.add(fmt)
    return tuple(f for f in FORMATS if f in wanted)


def _sinks(job: Job, sinks: list[Sink]) -> None:
    from fatools.export.csv_export import SummaryCsv
    from fatools.export.json_export import JsonSink
    from fatools.export.text import TextSink
    from fatools.export.timeline import TimelineCsv
    from fatools.export.wide import WideCsv

    classes: dict[str, type[Sink]] = {"json": JsonSink, "csv": SummaryCsv, "au-timeline": TimelineCsv,
                                      "wide": WideCsv, "text": TextSink}
    if "plots" in job.formats:
        from fatools.export.plots import PlotSink  # matplotlib only when plots are asked for

        classes["plots"] = PlotSink
    for fmt in job.formats:
        sinks.append(classes[fmt](job))  # one by one: a failure still closes those opened


def export(
    records: Iterable[dict],
    out_dir: str | Path,
    formats: Iterable[str] = FORMATS,
    *,
    summary: dict | None = None,
    summary_options: dict | None = None,
    analysis_metadata: dict | None = None,
    timestamp: str | None = None,
    keep_analysis: bool = False,
) -> ExportResult:
    """Write the ``formats`` of ``records`` into ``out_dir`` (created if missing), in one pass.

    ``summary`` is fa-summarize's result for these records; when None it is computed in
    the same pass with ``summary_options`` (fatools.summary.Summarizer's).
    ``analysis_metadata`` is merged over what the records tell (video path, frames,
    versions, models seen); ``timestamp`` (YYYYmmdd_HHMMSS, default: now, local time)
    goes into every file name.  Raises FatoolsError on bad records or an unwritable
    directory, ValueError on an unknown format; nothing is left under a final name then.
    """
    wanted = check_formats(formats)
    started = datetime.now().astimezone()
    if timestamp is None:
        timestamp = started.strftime(TIMESTAMP_FORMAT)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FatoolsError(f"{out}: cannot create the output directory ({exc.strerror}); choose another") from None
    summarizer = None
    if summary is None:
        from fatools.summary import Summarizer

        summarizer = Summarizer(**(summary_options or {}))
    staging = Staging(out)
    job = Job(staging, timestamp, started, wanted, dict(analysis_metadata or {}), keep_analysis)
    sinks: list[Sink] = []
    try:
        _sinks(job, sinks)
        for record in records:
            if summarizer is not None:
                summarizer.add(record)
            if is_header(record):
                video = _video(job, record.get("video"))
                video.header = {k: v for k, v in record.items() if k not in ("schema", "type")}
                for sink in sinks:
                    sink.header(video, record)
            elif is_frame(record):
                video = _video(job, record.get("video"))
                faces = faces_of(record, video.name)
                video.observe(record, faces or [])
                for sink in sinks:
                    sink.frame(video, record, faces)
        if not any(video.frames for video in job.videos.values()):
            raise NoFramesError("no frame records in the input: nothing to export "
                                "(give the records of fa-predict, or of fa-detect)")
        job.summary = summarizer.result() if summarizer is not None else summary
        for sink in sinks:
            sink.finish()
        files = staging.commit()
    except BaseException:
        # Whatever stopped us (a bad record, a full disk, ^C), no half file keeps a final name.
        for sink in sinks:
            sink.abort()
        staging.cleanup()
        raise
    for fmt, paths in files.items():
        for path in paths:
            log.info("wrote %s", path)
    return ExportResult(files, job.analyses)


def _video(job: Job, name: object) -> Video:
    try:
        video = job.videos.get(name)
    except TypeError:
        raise FatoolsError(f"video {name!r}: the 'video' field must be a path string") from None
    if video is None:
        video = job.videos[name] = Video(name, len(job.videos))
    return video
