"""Live inputs: standard input, network streams and webcams, read in real time.

A live source is ``-`` (standard input: any container FFmpeg reads from a pipe), a URL
(``rtsp://``, ``rtmp://``, ``srt://``, ``udp://``, ``tcp://``, ``http(s)://``, ...), a
capture device (``/dev/videoN``), or anything given with ``--input-format`` (``v4l2``,
``avfoundation``, ``dshow``, as FFmpeg names its devices).  Files keep their own path
(``fatools.video``); nothing here changes how a file is read.

PyAV's own FFmpeg opens the source; a protocol it lacks (``srt://``: PyPI's wheels have
no libsrt) is opened by the ``ffmpeg`` command instead (``Relay``), which copies the
video as MPEG-TS into a pipe that PyAV reads.

A thread decodes the source as fast as it delivers (``LiveReader``), keeps the sampled
frames (``t`` on the stream's clock, ``wallclock`` the UTC time it was decoded) and
hands them over through a bounded queue.  When the consumer is slower than capture the
newest frame wins: the oldest waiting frame is dropped and counted, and the next record
handed on says how many were dropped before it (``dropped``).  ``drop=False`` keeps
every sampled frame (the reader waits, and a warning says when the backlog is full).

Faults: a stream that stalls for ``stall_timeout`` seconds, fails, or ends (network
sources) is reopened up to ``reconnect`` times in a row with backoff; the first frame
after it carries ``reconnected`` (the count) and ``gap`` (wall seconds without frames),
and its ``t`` goes on from the wall time that passed.  End of stream without reconnects
left is a clean end.  ``duration`` ends the run that many wall seconds after the first
frame (connecting is not counted: ``--duration 10m`` is ten minutes of stream): no frame
decoded after that is handed on, and those decoded before it and still waiting are (at
most the queue's few, so the run ends a few analysis times late rather than throwing
away the last moments of the stream).  ``stop()`` (the consumer's signal check) ends it
at once, cleanly.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from fatools.errors import VideoError

if TYPE_CHECKING:
    from pathlib import Path

    from fatools.stream import Frame
    from fatools.study.outdir import RecordsFile
    from fatools.summary import Summarizer
    from fatools.video import Sampling

log = logging.getLogger("fatools")

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp", "rtp", "http", "https", "hls", "pipe")
DEVICE_FORMATS = ("v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab", "lavfi")


@dataclass(frozen=True)
class LiveOptions:
    """How a live source is read (fa-frames' and fa-run's live options)."""

    input_format: str | None = None  # FFmpeg's demuxer or device (v4l2, avfoundation, dshow, mpegts, ...)
    input_options: tuple[
        tuple[str, str], ...
    ] = ()  # FFmpeg's options for the input (rtsp_transport=tcp, ...)
    drop: bool = True  # newest frame wins when analysis is slower than capture
    # Sampled frames waiting for the consumer. When analysis is slower than capture the
    # queue stays full, and a frame waits for all those ahead of it: the latency is about
    # (queue_size + 1) analysis times (benchmarks/README.md, "Live input"). Sources deliver
    # in bursts (FFmpeg's MPEG-TS muxer flushes several frames at once, networks jitter):
    # with 2, a burst dropped frames from a stream that analysis kept up with on average
    # (tests/test_live.py::test_stdin_pipe on one core); 4 absorbs it.
    queue_size: int = 4
    reconnect: int = 0  # reopen a dropped stream up to N times in a row
    stall_timeout: float = 10.0  # seconds without data before the stream counts as dropped
    duration: float | None = None  # stop this many wall seconds after the first frame


def is_live(path: str, options: LiveOptions | None = None) -> bool:
    """Whether ``path`` is read as a live source (standard input, a URL, a device)."""
    if options is not None and options.input_format in DEVICE_FORMATS:
        return True
    if path == "-":
        return True
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", path)
    if match and match.group(1).lower() in URL_SCHEMES:
        return True
    return path.startswith("/dev/video")


def needs_reconnect_support(path: str) -> bool:
    """Standard input cannot be reopened."""
    return path != "-"


def parse_duration(text: str | float | None) -> float | None:
    """``90``, ``90s``, ``10m``, ``1h``, ``1h30m``, ``500ms`` as seconds; ValueError otherwise."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip().lower()
    try:
        return float(value)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r}: give a duration such as 90, 90s, 10m, 1h or 1h30m")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def parse_input_options(pairs: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` strings as pairs; ValueError for one without ``=``."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--input-option {pair!r}: give KEY=VALUE (e.g. rtsp_transport=tcp)")
        out.append((key, value))
    return tuple(out)


def wallclock(seconds: float | None = None) -> str:
    """A time as ISO 8601 UTC with milliseconds (``2026-11-02T10:15:30.123Z``)."""
    moment = datetime.fromtimestamp(time.time() if seconds is None else seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ffmpeg_options(options: LiveOptions, device: bool) -> dict[str, str]:
    """FFmpeg's options for the input: low-latency defaults a live source needs (FFmpeg's
    would buffer 5 s before the first frame), then --input-option's, which win."""
    opts = {} if device else {"analyzeduration": "1000000", "probesize": "500000"}
    opts.update(dict(options.input_options))
    return opts


class Relay:
    """The system's ``ffmpeg`` command reading a protocol PyAV's own FFmpeg lacks (the
    wheels are built without libsrt, for one), its video copied as MPEG-TS into a pipe
    that PyAV reads.  A read waits at most ``stall_timeout`` for data (then ``TimeoutError``,
    a stall); the relay's exit is the end of the stream, and its last error line is kept."""

    def __init__(self, path: str, options: LiveOptions, stopped: Callable[[], bool] = lambda: False) -> None:
        import shutil
        import subprocess
        import tempfile

        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise VideoError(
                f"{path}: this PyAV's FFmpeg cannot read that protocol, and there is no ffmpeg "
                "command to relay it; install FFmpeg"
            )
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
        if options.input_format:
            command += ["-f", options.input_format]
        for key, value in _ffmpeg_options(options, False).items():
            command += [f"-{key}", value]
        # Only the video, as it came (no decoding here): PyAV decodes it from the pipe.
        command += ["-i", path, "-map", "0:v:0", "-c", "copy", "-f", "mpegts", "-flush_packets", "1", "-"]
        self.path, self.stall_timeout, self.stopped = path, options.stall_timeout, stopped
        self.wait = max(options.stall_timeout, 5.0)  # until the first data: the sender may take a moment
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(), with the relay)
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errors
        )
        assert self.process.stdout is not None
        self.fd = self.process.stdout.fileno()

    def read(self, size: int) -> bytes:
        import os
        import select

        # In slices, so that a stop (SIGINT) is seen at once rather than after the timeout.
        deadline = time.monotonic() + self.wait
        while not select.select([self.fd], [], [], 0.2)[0]:
            if self.stopped():
                return b""  # the end of the stream, as the reader is stopping
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.path}: timed out: no data for {self.wait:g} s")
        self.wait = self.stall_timeout
        return os.read(self.fd, size)

    def reason(self) -> str:
        """The relay's last error line (why it could not open, or why it ended)."""
        self.errors.seek(0)
        lines = self.errors.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "the relay ended"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.errors.close()


class _Source:
    """An opened live source: PyAV's container, and the relay feeding it, if any."""

    def __init__(self, container: Any, relay: Relay | None = None) -> None:
        self.container, self.relay = container, relay

    def close(self) -> None:
        try:
            self.container.close()
        finally:
            if self.relay is not None:
                self.relay.close()


def _open(path: str, options: LiveOptions, stopped: Callable[[], bool] = lambda: False) -> _Source:
    import av

    url = "pipe:0" if path == "-" else path
    device = options.input_format in DEVICE_FORMATS
    kwargs: dict[str, Any] = {"options": _ffmpeg_options(options, device)}
    if options.input_format:
        kwargs["format"] = options.input_format
    if path != "-":
        # (opening, reading): a sender may take a moment to start; a stall is seen at once.
        kwargs["timeout"] = (max(options.stall_timeout, 5.0), options.stall_timeout)
    relay = None
    try:
        try:
            container = av.open(url, **kwargs)
        except av.error.ProtocolNotFoundError:
            relay = Relay(path, options, stopped)
            container = av.open(relay, format="mpegts", options=_ffmpeg_options(options, False))
    except (av.error.FFmpegError, TimeoutError) as exc:
        reason = relay.reason() if relay is not None else getattr(exc, "strerror", None) or str(exc)
        if relay is not None:
            relay.close()
        raise VideoError(
            f"{path}: cannot open the live source ({reason}); check the address, the sender and "
            "--input-format/--input-option"
        ) from None
    if not container.streams.video:
        container.close()
        if relay is not None:
            relay.close()
        raise VideoError(f"{path}: has no video stream; give a video source")
    return _Source(container, relay)


@dataclass
class LiveFrame:
    """A sampled frame of a live source, its capture time and what went before it."""

    index: int
    t: float
    width: int
    height: int
    image: np.ndarray | None
    wallclock: str
    captured: float  # time.monotonic() when it was decoded
    dropped: int = 0  # frames dropped since the previous frame handed on
    extra: dict = field(default_factory=dict)  # reconnected, gap


class LiveStats:
    """Counts and latencies of one live run (the summary's ``live`` object)."""

    def __init__(self) -> None:
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self.backlog_warnings = 0
        self.latencies: list[float] = []
        self.ended: str | None = None  # "end of stream", "duration", "stall", "stopped", "error"
        self.started = time.time()

    def latency(self, captured: float) -> None:
        self.latencies.append(time.monotonic() - captured)

    def as_dict(self) -> dict:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, max(0, math.ceil(p * len(lat)) - 1))] * 1000, 1)

        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "analysed": self.frames - self.dropped,
            "reconnects": self.reconnects,
            "latency_ms": {
                "p50": pct(0.5),
                "p95": pct(0.95),
                "max": round(lat[-1] * 1000, 1) if lat else None,
            },
            "started": wallclock(self.started),
            "seconds": round(time.time() - self.started, 3),
            "ended": self.ended,
        }

    def line(self) -> str:
        d = self.as_dict()
        lat = d["latency_ms"]
        return (
            f"live: {d['frames']} frames, {d['dropped']} dropped, {d['reconnects']} reconnects, "
            f"latency p50 {lat['p50']} ms p95 {lat['p95']} ms, ended: {d['ended']}"
        )


_END = object()


class LiveReader:
    """Decodes a live source in a thread into a bounded, newest-wins queue."""

    def __init__(
        self,
        path: str,
        sampling: Sampling,
        options: LiveOptions = LiveOptions(),
        want_pixels: bool = True,
        stats: LiveStats | None = None,
    ) -> None:
        self.path, self.sampling, self.options, self.want_pixels = path, sampling, options, want_pixels
        self.stats = stats if stats is not None else LiveStats()
        self.info: dict | None = None  # the header's fields, once the source is open
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._dropped_pending = 0
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fatools-live", daemon=True)
        # With ``duration``: when it is up (time.monotonic()), set at the first frame.
        self.deadline: float | None = None

    # -- the reader thread ---------------------------------------------------------

    def start(self) -> LiveReader:
        self._thread.start()
        return self

    def _put(self, item: Any) -> None:
        with self._cond:
            if item is not _END and len(self._queue) >= self.options.queue_size:
                if self.options.drop:
                    old = self._queue.popleft()
                    self._dropped_pending += 1 + old.dropped
                    self.stats.dropped += 1
                else:
                    self.stats.backlog_warnings += 1
                    if self.stats.backlog_warnings in (1, 10, 100) or self.stats.backlog_warnings % 1000 == 0:
                        log.warning(
                            "%s: analysis is slower than capture; %d frames waiting (--no-drop keeps them "
                            "all: the source's own buffer grows)",
                            self.path,
                            len(self._queue),
                        )
                    while len(self._queue) >= self.options.queue_size and not self._stop.is_set():
                        self._cond.wait(0.1)
            if item is not _END and self._dropped_pending:
                item.dropped += self._dropped_pending
                self._dropped_pending = 0
            self._queue.append(item)
            self._cond.notify_all()

    def _run(self) -> None:
        from fatools.video import Sampler, _rotate, _rotation

        sampler = Sampler(self.sampling)
        options = self.options
        index = 0
        offset = 0.0  # added to the stream clock after a reconnect, so t keeps going
        last_t = None
        last_wall = None
        failures = 0
        pending_extra: dict = {}
        try:
            while not self._stop.is_set():
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    self.stats.ended = "duration"
                    break
                try:
                    source = _open(self.path, options, self._stop.is_set)
                except VideoError as exc:
                    if failures >= options.reconnect or self._stop.is_set():
                        if self.info is None:
                            raise
                        # The stream had frames: what came is kept, and the run ends cleanly.
                        log.warning("%s; ending after %d reconnects", exc, self.stats.reconnects)
                        self.stats.ended = "reconnect failed"
                        break
                    failures += 1
                    self.stats.reconnects += 1
                    log.warning(
                        "%s: reopening failed; again (%d of %d)", self.path, failures, options.reconnect
                    )
                    self._backoff(failures)
                    continue
                reason = "end of stream"
                container = source.container
                try:
                    stream = container.streams.video[0]
                    stream.thread_type = "AUTO"
                    time_base = stream.time_base
                    rate = stream.average_rate or stream.guessed_rate
                    step = 1.0 / float(rate) if rate else 0.0
                    start_pts = None
                    untimed = False  # frames of this opening came without timestamps
                    rotation = None
                    for frame in container.decode(stream):
                        if self._stop.is_set():
                            reason = "stopped"
                            break
                        now = time.monotonic()
                        if self.deadline is not None and now >= self.deadline:
                            reason = self.stats.ended = "duration"
                            self._stop.set()
                            break
                        if rotation is None:
                            rotation = _rotation(stream, frame)
                        if self.info is None:
                            if options.duration:
                                self.deadline = now + options.duration
                            self._set_info(stream, frame, rotation)
                        if frame.pts is not None and time_base is not None:
                            if start_pts is None:
                                start_pts = frame.pts
                                if untimed and last_t is not None:
                                    # RTSP's first picture comes before its timestamps
                                    # (an RTP time not yet tied to the stream's): the
                                    # first with one is the next frame, not t again.
                                    offset = last_t + step
                            t = offset + float((frame.pts - start_pts) * time_base)
                            if last_t is not None and t < last_t:
                                # The stream's clock went back (RTSP re-bases its timestamps on
                                # the first RTCP sender report; a sender may restart its clock):
                                # t goes on from the last frame's, by one frame.
                                t_next = last_t + step
                                offset += t_next - t
                                t = t_next
                        elif last_t is not None and last_wall is not None:
                            t = last_t + (now - last_wall)  # no timestamps: the wall's clock
                            untimed = True
                        else:
                            t = offset
                            untimed = True
                        failures = 0
                        last_t, last_wall = t, now
                        this = index
                        index += 1
                        if sampler.done(t):
                            reason = self.stats.ended = "end of sampling"
                            self._stop.set()
                            break
                        if not sampler.keep(this, t):
                            continue
                        image = (
                            _rotate(frame.to_ndarray(format="bgr24"), rotation) if self.want_pixels else None
                        )
                        width, height = frame.width, frame.height
                        if rotation in (90, 270):
                            width, height = height, width
                        item = LiveFrame(
                            this, round(t, 6), width, height, image, wallclock(), now, extra=pending_extra
                        )
                        pending_extra = {}
                        self.stats.frames += 1
                        self._put(item)
                except Exception as exc:
                    reason = (
                        "stall"
                        if "timed out" in str(exc).lower() or "exit" in type(exc).__name__.lower()
                        else f"error ({exc})"
                    )
                finally:
                    with contextlib.suppress(Exception):  # a source that failed may fail to close too
                        source.close()
                if self._stop.is_set() or self.path == "-" or failures >= options.reconnect:
                    if self.stats.ended is None:  # the consumer may have ended it first (--duration)
                        self.stats.ended = (
                            reason if not self._stop.is_set() or reason != "end of stream" else "stopped"
                        )
                    if reason.startswith("error") and not options.reconnect:
                        log.warning("%s: the stream failed: %s; ending", self.path, reason[7:-1])
                    elif reason == "stall":
                        log.warning("%s: no data for %.0f s; ending", self.path, options.stall_timeout)
                    break
                failures += 1
                self.stats.reconnects += 1
                gap_from = time.monotonic()
                log.warning("%s: %s; reconnecting (%d of %d)", self.path, reason, failures, options.reconnect)
                self._backoff(failures)
                # The first frame after the reconnect carries the gap; its clock goes on from the wall time.
                if last_t is not None and last_wall is not None:
                    offset = last_t + (time.monotonic() - last_wall)
                pending_extra = {
                    "reconnected": self.stats.reconnects,
                    "gap": None,
                    "_gap_from": last_wall or gap_from,
                }
        except BaseException as exc:
            self._error = exc
            self.stats.ended = "error"
        finally:
            self._opened.set()
            self._put(_END)

    def _backoff(self, attempt: int) -> None:
        delay = min(0.5 * 2 ** (attempt - 1), 10.0)
        self._stop.wait(delay)

    def _set_info(self, stream: Any, frame: Any, rotation: int) -> None:
        rate = stream.average_rate or stream.guessed_rate
        width, height = frame.width, frame.height
        if rotation in (90, 270):
            width, height = height, width
        self.info = {
            "video": self.path,
            "fps": float(rate) if rate else None,
            "frame_count": None,
            "duration": None,
            "codec": stream.codec_context.name,
            "width": width,
            "height": height,
            "rotation": rotation,
            "live": True,
            "wallclock": wallclock(),
        }
        self._opened.set()

    # -- the consumer ----------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def wait_open(self, should_stop: Callable[[], Any] | None = None) -> dict | None:
        """The header's fields once the first frame came (None: the source ended first)."""
        while not self._opened.wait(0.1):
            if should_stop is not None and should_stop():
                self.stop()
        if self.info is None and self._error is not None:
            self._thread.join(1)
            raise self._error
        return self.info

    def frames(self, should_stop: Callable[[], Any] | None = None) -> Iterator[LiveFrame]:
        """The kept frames as they come; ends at the end of the stream, ``duration``, or once
        ``should_stop()`` is true."""
        try:
            while True:
                with self._cond:
                    while not self._queue:
                        if should_stop is not None and should_stop():
                            self.stop()
                        if (
                            self.deadline is not None
                            and time.monotonic() >= self.deadline
                            and not self._stop.is_set()
                        ):
                            self.stats.ended = "duration"
                            self.stop()
                        if self._stop.is_set():
                            if self.stats.ended is None:
                                self.stats.ended = "stopped"
                            if self._thread.is_alive():
                                return  # a stalled source: the reader thread ends on its own
                            break
                        self._cond.wait(0.1)
                    if not self._queue:
                        return
                    item = self._queue.popleft()
                    self._cond.notify_all()
                if item is _END:
                    if self._error is not None:
                        raise self._error
                    return
                if should_stop is not None and should_stop():
                    self.stop()
                gap_from = item.extra.pop("_gap_from", None)
                if gap_from is not None:
                    item.extra["gap"] = round(item.captured - gap_from, 3)
                yield item
        finally:
            self.stop()
            self._thread.join(timeout=2)


def live_frames(
    path: str,
    sampling: Sampling,
    options: LiveOptions,
    pixels: bool,
    header: bool = True,
    stats: LiveStats | None = None,
    should_stop: Callable[[], Any] | None = None,
    captured: collections.deque | None = None,
) -> Iterator[Frame]:
    """fa-frames' records (as ``stream.Frame``) of a live source: a header, then one per kept
    frame with ``wallclock`` and ``dropped``; ``captured`` (a deque) gets (frame, capture
    time) of each, for the latency of the record that leaves last."""
    from fatools.records import HEADER_TYPE, SCHEMA_VERSION, frame_record
    from fatools.stream import Frame

    reader = LiveReader(path, sampling, options, want_pixels=pixels, stats=stats).start()
    try:
        info = reader.wait_open(should_stop)
        if info is None:
            for _ in reader.frames(should_stop):  # raises the reader's error, if any
                pass
            return
        if header:
            yield Frame({"schema": SCHEMA_VERSION, "type": HEADER_TYPE, **info})
        for item in reader.frames(should_stop):
            record = frame_record(
                path,
                item.index,
                item.t,
                item.width,
                item.height,
                wallclock=item.wallclock,
                dropped=item.dropped,
                **item.extra,
            )
            if captured is not None:
                captured.append((item.index, item.captured))
            yield Frame(record, item.image if pixels else None)
    finally:
        reader.stop()


@dataclass
class LiveRun:
    """One live analysis: its options, its counts, the consumer's stop check, its latencies."""

    options: LiveOptions = LiveOptions()
    stats: LiveStats = field(default_factory=LiveStats)
    should_stop: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        self.latency = LatencySink(self.stats)
        self._last_checkpoint: float | None = None

    def frames(self, path: str, sampling: Sampling, pixels: bool, header: bool = True) -> Iterator[Frame]:
        return live_frames(
            path, sampling, self.options, pixels, header, self.stats, self.should_stop, self.latency.captured
        )

    def records_file(self, out: Path) -> RecordsFile:
        """fa-run's records file for a live input: ``frames.jsonl`` itself, growing as it runs."""
        from fatools.study import outdir

        records = outdir.RecordsFile.__new__(outdir.RecordsFile)
        records.path = records.part = out / outdir.RECORDS
        records.handle = open(records.path, "wb")  # noqa: SIM115 (closed by RecordsFile.finish)
        records.skip = 0
        records.writer = outdir.RecordWriter(records.handle)
        return records

    def written(self, record: dict, out: Path, summarizer: Summarizer, checkpoint: float | None) -> None:
        """A record is in the records file: its latency counted, and every ``checkpoint``
        seconds the summary so far written (atomically) to ``summary.json``."""
        self.latency.written(record)
        if not checkpoint:
            return
        now = time.monotonic()
        if self._last_checkpoint is None:
            self._last_checkpoint = now
        elif now - self._last_checkpoint >= checkpoint:
            from fatools.study import outdir

            summary = summarizer.result()
            summary["live"] = self.stats.as_dict()
            outdir.write_summary(out, summary)
            self._last_checkpoint = now
            log.info("%s: checkpoint: summary.json written (%d frames)", out, self.stats.frames)


class LatencySink:
    """Latency from capture to the written record: call ``written(record)`` once it is flushed."""

    def __init__(self, stats: LiveStats) -> None:
        self.stats = stats
        self.captured: collections.deque = collections.deque()

    def written(self, record: dict) -> None:
        frame = record.get("frame")
        if not isinstance(frame, int) or isinstance(frame, bool) or record.get("type", "frame") != "frame":
            return
        while self.captured and self.captured[0][0] != frame:
            if self.captured[0][0] > frame:
                return
            self.captured.popleft()
        if self.captured and self.captured[0][0] == frame:
            self.stats.latency(self.captured.popleft()[1])
