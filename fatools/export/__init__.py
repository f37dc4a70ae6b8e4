"""Exports of a record stream for people and for other tools: the seed's JSON document,
per-face and per-AU CSV tables, a py-feat-compatible wide table, a text report, PNG
figures, ELAN and WebVTT annotations and an annotated video (fa-export(1) describes
every file and column).

``export`` reads the records once, lazily: the table formats are written as records
arrive, JSON's frame list goes to a scratch file, plots keep compact per-track arrays,
and the summary is accumulated in the same pass.  Every file is written under a
temporary name in the output directory and renamed into place only when the whole
export has succeeded, so a failed or interrupted export leaves no file, half or whole,
under a final name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fatools.errors import FatoolsError
from fatools.export.formats import DEFAULT_FORMATS, parse_formats

if TYPE_CHECKING:
    from fatools.export.sinks import Video
    from fatools.summary import SummaryOptions

log = logging.getLogger("fatools")

TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"


class NoFramesError(FatoolsError):
    """The records held no frame record: there is nothing to export."""


@dataclass
class ExportResult:
    """The files written, by format, in the order written; the summary they were made
    with; and the JSON content when kept.

    ``analyses`` holds one JSON document (as a dict) per video when ``keep_analysis`` was
    asked for with the json format; ``analysis`` is that document when the stream held
    one video (the Python API analyses one video at a time), else None.
    """

    files: dict[str, list[Path]] = field(default_factory=dict)
    analyses: list[dict] = field(default_factory=list)
    summary: dict | None = None

    @property
    def analysis(self) -> dict | None:
        return self.analyses[0] if len(self.analyses) == 1 else None

    def paths(self) -> list[Path]:
        """Every file written, format by format (as fa-export prints them)."""
        return [path for paths in self.files.values() for path in paths]


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats asked for, in FORMATS order, without repeats; ValueError names an unknown one."""
    return parse_formats(formats) if formats else ()


class Export:
    """An export being written: ``add`` each record once, as it arrives, then ``finish``.

    It is one consumer of a record stream among others (fa-run also writes the records
    file and the summary from the same pass).  The table formats are written as records
    arrive, JSON's frame list goes to a scratch file, plots keep compact per-track arrays;
    every file is staged under a temporary name and renamed into place by ``finish``.
    ``abort`` (or leaving a ``with`` block by an exception) removes them all.
    """

    def __init__(
        self,
        out_dir: str | Path,
        formats: Iterable[str] = DEFAULT_FORMATS,
        *,
        timestamp: str | None = None,
        keep_analysis: bool = False,
        expression_labels: Iterable[str] | None = None,
        min_quality: str | None = None,
        assets_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from fatools.export.sinks import Job
        from fatools.export.staging import Staging

        wanted = check_formats(formats)
        started = datetime.now().astimezone()
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FatoolsError(
                f"{out}: cannot create the output directory ({exc.strerror}); choose another"
            ) from None
        if expression_labels is None:
            from fatools.models.config import expression_labels as configured

            expression_labels = configured()
        self.staging = Staging(out)
        self.job = Job(
            self.staging,
            timestamp or started.strftime(TIMESTAMP_FORMAT),
            started,
            wanted,
            {},
            keep_analysis,
            expression_labels=tuple(expression_labels),
            assets_dir=Path(assets_dir) if assets_dir is not None else None,
        )
        self.min_quality = min_quality  # faces below it are left out of plots and annotations, kept in tables
        self.sinks: list = []
        try:
            self._open_sinks()
        except BaseException:
            self.abort()
            raise

    def _open_sinks(self) -> None:
        from fatools.export.csv_export import SummaryCsv
        from fatools.export.elan import ElanSink
        from fatools.export.json_export import JsonSink
        from fatools.export.text import TextSink
        from fatools.export.timeline import TimelineCsv
        from fatools.export.webvtt import WebVttSink
        from fatools.export.wide import WideCsv

        classes = {
            "json": JsonSink,
            "csv": SummaryCsv,
            "au-timeline": TimelineCsv,
            "wide": WideCsv,
            "text": TextSink,
            "elan": ElanSink,
            "webvtt": WebVttSink,
        }
        if "overlay" in self.job.formats:
            from fatools.export.overlay import OverlaySink  # PyAV's encoder only when an overlay is asked for

            classes["overlay"] = OverlaySink
        if "plots" in self.job.formats or "html" in self.job.formats:
            from fatools.export.series import SeriesSink

            # The plots and the report draw the same series: collected once, ahead of both.
            self.job.series = SeriesSink(self.job)
            self.sinks.append(self.job.series)
        if "plots" in self.job.formats:
            from fatools.export.plots import PlotSink  # matplotlib only when plots are asked for

            classes["plots"] = PlotSink
        if "html" in self.job.formats:
            from fatools.export.html_report import HtmlSink

            classes["html"] = HtmlSink
        for fmt in self.job.formats:
            self.sinks.append(classes[fmt](self.job))  # one by one: a failure still closes those opened

    def add(self, record: dict) -> None:
        from fatools.records import faces_of, is_frame, is_header

        if is_header(record):
            video = self._video(record.get("video"))
            video.header = {k: v for k, v in record.items() if k not in ("schema", "type")}
            for sink in self.sinks:
                sink.header(video, record)
        elif is_frame(record):
            video = self._video(record.get("video"))
            faces = faces_of(record)
            video.observe(record, faces or [])
            trusted = faces
            if faces and self.min_quality is not None:
                from fatools.quality import split

                trusted = split(faces, self.min_quality)[0]
            for sink in self.sinks:
                sink.frame(video, record, trusted if sink.trusted_faces else faces)

    def finish(self, summary: dict, analysis_metadata: dict | None = None) -> ExportResult:
        """Write what is left and rename every file into place; ``summary`` is fa-summarize's
        for the records added; ``analysis_metadata`` goes over what the records tell."""
        job = self.job
        try:
            if not any(video.frames for video in job.videos.values()):
                raise NoFramesError(
                    "no frame records in the input: nothing to export "
                    "(give the records of fa-predict, or of fa-detect)"
                )
            job.summary = summary
            job.metadata = dict(analysis_metadata or {})
            for sink in self.sinks:
                sink.finish()
            from fatools.export import events_table

            events_table.write(job)  # with --events, whatever the formats: the table is what was asked for
            files = self.staging.commit()
        except BaseException:
            self.abort()
            raise
        for paths in files.values():
            for path in paths:
                log.info("wrote %s", path)
        return ExportResult(files, job.analyses, summary)

    def abort(self) -> None:
        """Close every sink and remove every file this export staged: nothing is left under
        a final name, half or whole."""
        for sink in self.sinks:
            sink.abort()
        self.staging.cleanup()

    def _video(self, name: object) -> Video:
        from fatools.export.sinks import Video

        try:
            video = self.job.videos.get(name)
        except TypeError:
            raise FatoolsError(f"video {name!r}: the 'video' field must be a path string") from None
        if video is None:
            video = self.job.videos[name] = Video(name, len(self.job.videos))
        return video


def export(
    records: Iterable[dict],
    out_dir: str | Path,
    formats: Iterable[str] = DEFAULT_FORMATS,
    *,
    summary: dict | None = None,
    summary_options: SummaryOptions | None = None,
    analysis_metadata: dict | None = None,
    timestamp: str | None = None,
    keep_analysis: bool = False,
    expression_labels: Iterable[str] | None = None,
) -> ExportResult:
    """Write the ``formats`` of ``records`` into ``out_dir`` (created if missing), in one pass.

    ``summary`` is fa-summarize's result for these records; when None it is computed in
    the same pass with ``summary_options`` (a fatools.summary.SummaryOptions).
    ``analysis_metadata`` is merged over what the records tell (video path, frames,
    versions, models seen); ``timestamp`` (YYYYmmdd_HHMMSS, default: now, local time)
    goes into every file name; ``expression_labels`` (default: the bundled
    configuration's) name the expression columns.  Raises FatoolsError on bad records or
    an unwritable directory, ValueError on an unknown format; nothing is left under a
    final name then.
    """
    from fatools.summary import Summarizer

    summarizer = Summarizer(summary_options) if summary is None else None
    if summary_options is not None:
        min_quality = summary_options.min_quality
    else:
        min_quality = (
            ((summary or {}).get("options") or {}).get("min_quality") if isinstance(summary, dict) else None
        )
    job = Export(
        out_dir,
        formats,
        timestamp=timestamp,
        keep_analysis=keep_analysis,
        expression_labels=expression_labels,
        min_quality=min_quality,
    )
    try:
        for record in records:
            if summarizer is not None:
                summarizer.add(record)
            job.add(record)
    except BaseException:
        # Whatever stopped us (a bad record, a full disk, ^C), no half file keeps a final name.
        job.abort()
        raise
    if summarizer is not None:
        summary = summarizer.result()
    assert summary is not None  # given, or computed above
    return job.finish(summary, analysis_metadata)
