"""SIGINT and SIGTERM as a request to stop at the next record, for fa-run's batches and
live inputs alike; importing this loads nothing heavy (fa-frames uses it without the
models)."""

from __future__ import annotations

import logging
import signal
from typing import Any

log = logging.getLogger("fatools")


class StopSignals:
    """SIGTERM and SIGINT ask the run to stop at the next record boundary (a second
    SIGINT stops at once); calling the object says which came (None: none yet)."""

    def __init__(self, notice: str | None = None) -> None:
        self.signum: int | None = None
        self.notice = notice  # logged as "SIGTERM: <notice>" when a signal comes
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        if self.notice:
            log.warning("%s: %s", signal.Signals(signum).name, self.notice)

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._old[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)

    def __call__(self) -> int | None:
        return self.signum
