"""Per-epoch checkpoints of one trial, so that an interrupted trial continues at its last epoch.

Layout: ``<directory>/epoch-0003/{model.keras, history.json}``: the whole model
(weights, optimizer state and its step count, which the LR schedule follows) and the
history of epochs 1..3, saved together. Each epoch is written into a temporary folder
and renamed into place, so a kill at any moment leaves either the previous complete
checkpoint or the new complete one, never a model from one epoch with the history of
another. (Keras' ``BackupAndRestore`` keeps weights and epoch but not our history, and
writes them as separate files.)

Keras only, no Optuna: the objective decides where a trial's checkpoints live.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import keras

import sweep.training.schedules  # noqa: F401 - registers the schedules load_model must rebuild
from sweep.training.data import NUM_CLASSES
from sweep.training.trainer import EpochLog, ResumePoint, is_diverged

log = logging.getLogger(__name__)

_PREFIX = "epoch-"
_TMP_PREFIX = ".tmp-epoch-"


class TrialCheckpoint:
    """The checkpoints of one trial in ``directory``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def load(self) -> ResumePoint | None:
        """The newest readable checkpoint, or None (nothing saved, or nothing readable)."""
        for folder in sorted(self.directory.glob(f"{_PREFIX}*"), reverse=True):
            try:
                history = [EpochLog(**e) for e in json.loads((folder / "history.json").read_text())]
                model = keras.saving.load_model(folder / "model.keras")
            except Exception as exc:  # noqa: BLE001 - a torn or foreign file means "start earlier"
                log.warning("ignoring unreadable checkpoint %s (%s)", folder, exc)
                continue
            return ResumePoint(model=model, history=history)
        return None

    def save(self, model: keras.Model, history: list[EpochLog]) -> Path:
        epoch = len(history)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f"{_TMP_PREFIX}{epoch:04d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save(tmp / "model.keras")
        (tmp / "history.json").write_text(json.dumps([e.to_dict() for e in history]))
        for file in tmp.iterdir():
            _fsync(file)
        final = self.directory / f"{_PREFIX}{epoch:04d}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _fsync(self.directory)
        for old in self.directory.iterdir():
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def callback(self, history: list[EpochLog], num_classes: int = NUM_CLASSES) -> keras.callbacks.Callback:
        """A callback that checkpoints after each epoch, with ``history``: the live list of
        epochs so far (the caller appends to it as epochs end, before this callback runs).
        Not after the last epoch (the trial is about to finish) nor after divergence
        (judged against chance for ``num_classes``)."""
        return _CheckpointEachEpoch(self, history, num_classes)


class _CheckpointEachEpoch(keras.callbacks.Callback):
    def __init__(self, checkpoint: TrialCheckpoint, history: list[EpochLog], num_classes: int):
        super().__init__()
        self._checkpoint = checkpoint
        self._history = history
        self._num_classes = num_classes

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        last = self._history[-1] if self._history else None
        if last is None or last.epoch != epoch + 1 or is_diverged(last.loss, self._num_classes) or epoch + 1 >= self.params["epochs"]:
            return
        self._checkpoint.save(self.model, self._history)


def _fsync(path: Path) -> None:
    # Power loss after the rename must not leave a renamed folder of empty files.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
