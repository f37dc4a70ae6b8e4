"""The in-process pipeline behind fa-run: the stages' own code, without JSON in between.

A background thread decodes and samples the video while the models run; frames go
through the detector in batches and their faces through the predictors in batches of
the same composition as ``fa-detect | fa-predict`` use, so the records are the
pipe's records.  Records are yielded one by one: callers stream them to disk.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any, Iterator

from fatools.detect import BatchDetector
from fatools.predict import FacePredictors
from fatools.records import frame_record
from fatools.stream import queue_full
from fatools.video import DecodedFrame, Sampling, iter_frames, probe

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def decoded_frames(path: str, sampling: Sampling, prefetch: int = 16) -> Iterator[DecodedFrame]:
    """Sampled frames of ``path`` decoded in a background thread (bounded read-ahead).

    The bounded queue keeps memory constant; decoding overlaps the models' work.
    """
    frames: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in iter_frames(path, sampling, want_pixels=True):
                while not stop.is_set():
                    try:
                        frames.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            frames.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            frames.put(_Failure(exc))

    worker = threading.Thread(target=produce, name="fatools-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = frames.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, total: int | None, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.2:
            return
        self._last = now
        rate = self.done / max(now - self.start, 1e-9)
        text = f"\r{self.done}"
        if self.total:
            left = max(self.total - self.done, 0) / rate if rate else 0
            text += f"/{self.total} frames  {rate:.1f} frames/s  ETA {int(left) // 60}:{int(left) % 60:02d}"
        else:
            text += f" frames  {rate:.1f} frames/s"
        sys.stderr.write(text + "   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def expected_samples(info: Any, sampling: Sampling) -> int | None:
    """About how many frames ``sampling`` keeps, for the progress display."""
    if not info.frame_count:
        return None
    duration = info.duration or (info.frame_count / info.fps if info.fps else None)
    start, end = sampling.start, sampling.end if sampling.end is not None else duration
    if sampling.fps and end is not None:
        count = int((end - start) * sampling.fps) + 1
    else:
        share = (end - start) / duration if duration and end is not None else 1.0
        count = int(info.frame_count * max(min(share, 1.0), 0.0) / sampling.every) + 1
    if sampling.max_frames:
        count = min(count, sampling.max_frames)
    return max(count, 0)


def analysed_records(
    path: str,
    sampling: Sampling,
    detector: BatchDetector,
    predictors: FacePredictors | None,
    detect_batch: int,
    predict_batch: int = 8,
    progress: Progress | None = None,
) -> Iterator[dict]:
    """The header, then each sampled frame's record with faces and predictions."""
    info = probe(path)
    yield info.header()
    provenance = detector.provenance()
    pending: list[tuple[dict, Any, Any]] = []  # detected, waiting for prediction (same grouping as fa-predict)
    batch: list[DecodedFrame] = []
    # facetorch-exact crops come from the frame as the detector saw it: keep that, not redo it.
    reuse_inputs = (predictors is not None and predictors.options.facetorch_exact and detector.options.square_pad
                    and detector.options.det_size == predictors.options.det_size)

    def predict_pending() -> Iterator[dict]:
        with_faces = [(record, image, det_input) for record, image, det_input in pending if record["faces"]]
        if predictors is not None and with_faces:
            predictors.predict([image for _, image, _ in with_faces], [record["faces"] for record, _, _ in with_faces],
                               [det_input for _, _, det_input in with_faces] if reuse_inputs else None)
        for record, _, _ in pending:
            yield record
        if progress is not None:
            progress.update(len(pending))
        pending.clear()

    def detect_batch_now() -> Iterator[dict]:
        results, inputs = detector.detect_with_inputs([frame.image for frame in batch])
        for i, (frame, faces) in enumerate(zip(batch, results)):
            record = frame_record(path, frame.index, frame.t, frame.width, frame.height, faces=faces, detection=provenance)
            # Only frames with faces need their pixels kept until prediction.
            det_input = inputs[i] if reuse_inputs and faces else None
            pending.append((record, frame.image if faces else None, det_input))
            # fa-predict batches the frames *with faces*: group them the same way.
            with_faces = sum(1 for r, _, _ in pending if r["faces"])
            if with_faces >= predict_batch or queue_full([r for r, _, _ in pending], predict_batch):
                yield from predict_pending()
        batch.clear()

    for frame in decoded_frames(path, sampling):
        batch.append(frame)
        if len(batch) >= detect_batch:
            yield from detect_batch_now()
    if batch:
        yield from detect_batch_now()
    yield from predict_pending()
