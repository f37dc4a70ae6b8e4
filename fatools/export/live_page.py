"""What the live page (``fa-run --serve``, fatools.serve) shows while a run goes on.

The records go through the same sinks as report.html (``export.series`` and
``export.html_report``, in an ``Export`` that is never finished, so it writes nothing)
and through a ``Summarizer`` of their own, and ``snapshot`` gives the page's ``DATA`` as
report.html's would be for the records so far: the timelines, and the per-track and
frame tables from the summary of the records so far (its statistics are running ones, so
a summary costs the same at any point of a run), plus the frame last analysed: its
boxes, and its picture, taken from the pipeline before detection (``pixels``) and kept,
shrunk, only until its record comes.

The run's thread calls ``add`` and the decode thread ``pixels``; the server's threads
call ``snapshot`` and ``frame_jpeg``: one lock keeps them apart, held by ``add`` for a
record's bookkeeping and by ``snapshot`` while it reads the series and summarises
(milliseconds).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from fatools.export.plots import track_name
from fatools.records import faces_of, is_frame, is_header, number

if TYPE_CHECKING:
    from fatools.summary import Summarizer, SummaryOptions

log = logging.getLogger("fatools")

MAX_SIDE = 640  # the picture is shrunk to this longer side: the boxes scale with it on the page
KEEP_PICTURES = 32  # pictures of frames whose records have not come yet (a detector batch, the read-ahead)
KEEP_JPEGS = 4  # a page asks for the picture of a snapshot just after it came


class LivePage:
    """A run's records and pictures as the live page shows them (see the module's docstring)."""

    def __init__(self, summary: SummaryOptions | None = None, max_side: int = MAX_SIDE) -> None:
        from fatools.summary import SummaryOptions

        # The run's summary options, so that the tables show what its summary.json will
        # (and faces below its --min-quality are left out of the timelines, as the run's).
        self.summary = summary if summary is not None else SummaryOptions()
        self.max_side = max_side
        self.lock = threading.Lock()
        self.version = 0  # counts the records added: a snapshot is new when this moved
        self.ended: str | None = None  # how the run ended, once it has
        self.failed = False  # a record the page could not take: it shows what came before
        self._export: Any = None
        self._html: Any = None
        self._summarizer: Summarizer | None = None
        self._frames = 0  # frame records of this input
        self._current: dict | None = None  # the last frame record's time, size and boxes
        self._pictures: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._picture: np.ndarray | None = None  # the last frame record's, when it was seen
        self._jpegs: OrderedDict[int, bytes] = OrderedDict()  # the last snapshots' pictures, by version

    # -- the run's side ----------------------------------------------------------------

    def pixels(self, record: dict, image: np.ndarray) -> None:
        """A sampled frame's BGR pixels, before the models see it (never raises: the
        page must not stop a run)."""
        try:
            import cv2

            height, width = image.shape[:2]
            scale = self.max_side / max(height, width)
            small = (
                cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
                if scale < 1
                else image.copy()
            )
        except Exception as exc:  # a picture the page cannot take is left out, said at -v
            log.debug("live page: frame %s: no picture (%s)", record.get("frame"), exc)
            return
        with self.lock:
            self._pictures[record.get("frame")] = small
            while len(self._pictures) > KEEP_PICTURES:
                self._pictures.popitem(last=False)

    def add(self, record: dict) -> None:
        """A record of the run, as it is written (header first, for each input)."""
        with self.lock:
            if self.failed:
                return
            try:
                if self._export is None or (is_header(record) and self._frames):
                    self._open()
                self._export.add(record)
                assert self._summarizer is not None
                self._summarizer.add(record)
                if is_frame(record):
                    self._frames += 1
                    self._frame(record)
            except Exception as exc:  # the page must not stop a run: it stops following it, and says so
                self.failed = True
                log.warning(
                    "live page: stops following the run at this record (%s: %s)", type(exc).__name__, exc
                )
            self.version += 1

    def end(self, how: str) -> None:
        """The run is over (``how``: complete, stopped, failed): the page says so."""
        with self.lock:
            self.ended = how
            self.version += 1

    def _open(self) -> None:
        from fatools.export import Export

        # Nothing is written: the sinks write only when finished, and this export never is.
        self._export = Export(
            tempfile.gettempdir(), ("html",), expression_labels=(), min_quality=self.summary.min_quality
        )
        self._html = next(sink for sink in self._export.sinks if sink.fmt == "html")
        from fatools.summary import Summarizer

        self._summarizer = Summarizer(self.summary)
        self._frames = 0
        # The pictures stay: the next input's first frames may be read before its header comes.
        self._current, self._picture = None, None

    def _frame(self, record: dict) -> None:
        faces = faces_of(record) or []
        index = record.get("frame")
        picture = self._pictures.pop(index, None)
        # Pictures of earlier frames whose records will not come (dropped, or already past).
        for key in [k for k in self._pictures if isinstance(k, int) and isinstance(index, int) and k < index]:
            del self._pictures[key]
        self._picture = picture
        self._current = {
            "index": index,
            "t": number(record.get("t")),
            "wallclock": record.get("wallclock"),
            "size": [record.get("width"), record.get("height")],
            "faces": [
                {"track": track_name(face.get("track")), "box": face["box"]}
                for face in faces
                if isinstance(face.get("box"), list) and len(face["box"]) == 4
            ],
            "picture": picture is not None,
        }

    # -- the server's side -------------------------------------------------------------

    def snapshot(self) -> dict:
        """The page's ``DATA`` for the records so far (``live`` set: the page follows);
        the picture it names (``frame.picture``) is ``frame_jpeg(version)``'s."""
        with self.lock:
            version, ended, current, picture = self.version, self.ended, self._current, self._picture
            if self._export is None or not self._export.job.videos:
                data = _empty()
            else:
                video = list(self._export.job.videos.values())[-1]
                assert self._summarizer is not None
                # The page's tables (per track, frames, event windows) read the summary.
                self._export.job.summary = self._summarizer.result()
                data = self._html.page_data(video)
        data.update(kind="live", media=None, original=None, vtt=None)
        if current is not None:
            jpeg = _jpeg(picture) if picture is not None else None
            if jpeg is not None:
                with self.lock:
                    self._jpegs[version] = jpeg
                    while len(self._jpegs) > KEEP_JPEGS:
                        self._jpegs.popitem(last=False)
            data["frame"] = {**current, "picture": f"frame.jpg?v={version}" if jpeg else None}
        data["live"] = {"version": version, "ended": ended}
        return data

    def frame_jpeg(self, version: int) -> bytes | None:
        """The picture a snapshot of ``version`` named (None when it is too old, or had none)."""
        with self.lock:
            return self._jpegs.get(version)


def _jpeg(picture: np.ndarray) -> bytes | None:
    import cv2

    ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return encoded.tobytes() if ok else None


def _empty() -> dict:
    """The page's DATA before the first record."""
    return {
        "video": "",
        "timed": True,
        "frame": {"size": [None, None], "faces": []},
        "threshold": 0.5,
        "step": None,
        "sample": None,
        "tracks": [],
        "provenance": {},
        "frames": {},
        "events": [],
    }
