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


def import_keras_quietly() -> None:
    """Import Keras (and its backend) with file descriptor 2 silenced.

    TensorFlow's C++ core prints oneDNN, CUDA-driver and absl banners to stderr
    before its log level applies, so the environment variables cannot hide them.
    Handlers and worker processes (``sweep evaluate``'s loky workers) call this before
    their first Keras import; real errors still surface as Python exceptions afterwards.
    """
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing prints here, once
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
