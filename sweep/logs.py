"""Logging set-up and TensorFlow's start-up noise: used by the CLI and the worker processes
it starts. Library code only logs (``logging.getLogger(__name__)``); these helpers decide
where those records go.
"""

from __future__ import annotations

import logging
import os
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (tests swap it between calls of main)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(level: int, prefix: str = "") -> None:
    """Log sweep's messages at ``level`` to stderr (worker processes add a ``prefix``)."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(f"{prefix}[%(asctime)s %(levelname).1s] %(message)s", "%H:%M:%S"))
    root = logging.getLogger("sweep")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def quiet_tensorflow() -> None:
    # Must happen before TensorFlow is imported: it reads these at import time.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes: one model per trial is by design
