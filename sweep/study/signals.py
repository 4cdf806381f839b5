"""Stopping a worker cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class GracefulStop:
    """SIGINT and SIGTERM stop the worker cleanly, within seconds.

    While a trial trains, the signal raises KeyboardInterrupt there (the trial is then
    re-enqueued from its checkpoint); anywhere else (asking, telling, waiting) it only
    sets ``requested`` and the loop stops before the next trial, so a signal never
    lands half-way through a storage update. A second signal during clean-up is absorbed.
    """

    def __init__(self) -> None:
        self.requested = False
        self._in_trial = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        self.requested = True
        if self._in_trial:
            self._in_trial = False
            raise KeyboardInterrupt(f"signal {signum}")

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        if self.requested:
            raise KeyboardInterrupt("stop requested")
        self._in_trial = True
        try:
            yield
        finally:
            self._in_trial = False
