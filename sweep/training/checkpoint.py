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
another study, another trial, other parameters, step count, model or optimizer is
refused (``CheckpointRefused``), as is one that cannot be read, so a reused study name or
a ``--force``d model change can never continue someone else's weights. It never deletes
the file: the caller sets it aside.

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

import sweep.training.model  # noqa: F401 - registers the loss wrapper load_model must rebuild
import sweep.training.optimizers  # noqa: F401 - registers the optimizers load_model must rebuild
import sweep.training.schedules  # noqa: F401 - registers the schedules load_model must rebuild
from sweep.training.model_cache import schedule_left_out
from sweep.training.trainer import EpochLog, ResumePoint

log = logging.getLogger(__name__)

_MODEL, _HISTORY, _IDENTITY, _LABELS = "model.keras", "history.json", "identity.json", "labels.json"


def write_checkpoint(path: Path, model: keras.Model, history: list[EpochLog], identity: dict[str, Any],
                     labels: dict[str, Any] | None = None) -> Path:
    """Write the model after ``history``'s last epoch, and its owner, to the archive ``path``.

    ``labels`` are facts about the file that never decide whether it may be loaded (the
    storage its study lives in, which clean-up reads: ``read_owner``)."""
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
            archive.writestr(_LABELS, json.dumps(labels or {}, sort_keys=True))
            archive.write(model_file, _MODEL)
        os.replace(tmp, path)
    return path


class CheckpointRefused(Exception):
    """A checkpoint that cannot continue this trial: unreadable (torn, truncated, written by
    another Keras version) or another owner's. The message says which, in one line."""


def read_checkpoint(path: Path, identity: dict[str, Any]) -> ResumePoint:
    """The checkpoint in ``path`` if it belongs to ``identity``; else ``CheckpointRefused``.

    Reading never changes or deletes the file: what to do with a refused one is the caller's."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            owner = json.loads(archive.read(_IDENTITY))
            if owner != _normal(identity):
                raise CheckpointRefused(f"it belongs to another owner ({_differences(owner, _normal(identity))})")
            history = [EpochLog.from_dict(e) for e in json.loads(archive.read(_HISTORY))]
            with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
                model = keras.saving.load_model(archive.extract(_MODEL, scratch))
    except CheckpointRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file cannot continue the trial
        raise CheckpointRefused(f"it is unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None
    return ResumePoint(model=model, history=history)


def read_owner(path: Path) -> dict[str, Any] | None:
    """``{"study": uuid, **labels}`` of a checkpoint archive (reading no model); None when the
    file is not one (another artifact, or damaged)."""
    try:
        with zipfile.ZipFile(path) as archive:
            identity = json.loads(archive.read(_IDENTITY))
            labels = json.loads(archive.read(_LABELS)) if _LABELS in archive.namelist() else {}
    except Exception:  # noqa: BLE001 - anything but a readable checkpoint has no owner to tell
        return None
    if not isinstance(identity, dict) or not isinstance(labels, dict):
        return None
    return {**labels, "study": identity.get("study")}


def _normal(identity: dict[str, Any]) -> dict[str, Any]:
    # Compare as JSON would store it: tuples become lists, ints and floats keep their values.
    return json.loads(json.dumps(identity, sort_keys=True))


def _differences(owner: dict[str, Any], mine: dict[str, Any]) -> str:
    keys = sorted(k for k in set(owner) | set(mine) if owner.get(k) != mine.get(k))
    return "; ".join(f"{k} {json.dumps(owner.get(k))[:120]} here {json.dumps(mine.get(k))[:120]}" for k in keys)
