"""One epoch checkpoint of a trial, packed in one file, that knows whose it is.

A checkpoint is a zip archive holding ``model.keras`` (weights, optimizer state and its
step count, which the LR schedule follows), ``history.json`` (epochs 1..k) and
``identity.json``: an opaque dict the caller chooses (the objective stores the study's
UUID, the root trial, its parameters and total steps). One file, so it travels whole
through any artifact store (a local folder, a shared mount, S3), and it is written to a
temporary name and renamed into place, so a kill mid-write never leaves a model from one
epoch with the history of another. (Keras' ``BackupAndRestore`` keeps weights and epoch
but neither our history nor an owner.)

``read_checkpoint`` returns the model only to the owner named in it: a checkpoint of
another study, another trial, other parameters or another step count is refused with
one warning, so a reused study name can never continue someone else's weights.

Keras only, no Optuna: the objective decides where checkpoints live and what identity
they carry.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras

import sweep.training.schedules  # noqa: F401 - registers the schedules load_model must rebuild
from sweep.training.model_cache import schedule_left_out
from sweep.training.trainer import EpochLog, ResumePoint

log = logging.getLogger(__name__)

_MODEL, _HISTORY, _IDENTITY = "model.keras", "history.json", "identity.json"


def write_checkpoint(path: Path, model: keras.Model, history: list[EpochLog], identity: dict[str, Any]) -> Path:
    """Write the model after ``history``'s last epoch, and its owner, to the archive ``path``."""
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        model_file = Path(scratch) / _MODEL
        with schedule_left_out(model):  # restored from the schedule's config, not by position
            model.save(model_file)
        tmp = Path(scratch) / "checkpoint.zip"
        # model.keras is itself a zip: storing it again without compression costs nothing.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_IDENTITY, json.dumps(_normal(identity), sort_keys=True))
            archive.writestr(_HISTORY, json.dumps([e.to_dict() for e in history]))
            archive.write(model_file, _MODEL)
        os.replace(tmp, path)
    return path


def read_checkpoint(path: Path, identity: dict[str, Any]) -> ResumePoint | None:
    """The checkpoint in ``path`` if it belongs to ``identity``; else None, with one warning."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            owner = json.loads(archive.read(_IDENTITY))
            if owner != _normal(identity):
                log.warning("discarding a checkpoint that belongs to %s, not to %s", _describe(owner),
                            _describe(_normal(identity)))
                return None
            history = [EpochLog(**e) for e in json.loads(archive.read(_HISTORY))]
            with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
                model = keras.saving.load_model(archive.extract(_MODEL, scratch))
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file means "start from epoch 1"
        log.warning("discarding an unreadable checkpoint (%s: %s)", type(exc).__name__, str(exc)[:200])
        return None
    return ResumePoint(model=model, history=history)


def _normal(identity: dict[str, Any]) -> dict[str, Any]:
    # Compare as JSON would store it: tuples become lists, ints and floats keep their values.
    return json.loads(json.dumps(identity, sort_keys=True))


def _describe(identity: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(identity.items()))
