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
import struct
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
    file is not one. A file cut short (its writer killed mid-copy) has no zip directory at
    its end, but its small leading entries are whole: they are read from their local headers."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in (_IDENTITY, _LABELS) if name in archive.namelist()}
    except Exception:  # noqa: BLE001 - a torn archive: read what precedes the tear
        entries = _leading_entries(Path(path))
    try:
        identity = json.loads(entries[_IDENTITY])
        labels = json.loads(entries.get(_LABELS, b"{}"))
    except (KeyError, ValueError):
        return None
    if not isinstance(identity, dict) or not isinstance(labels, dict):
        return None
    return {**labels, "study": identity.get("study")}


def _leading_entries(path: Path) -> dict[str, bytes]:
    """The stored (uncompressed) entries at the start of a zip file, up to the first damage."""
    entries: dict[str, bytes] = {}
    try:
        with open(path, "rb") as stream:
            while True:
                header = stream.read(30)
                if len(header) < 30 or header[:4] != b"PK\x03\x04":
                    return entries
                method, size, name_len, extra_len = (struct.unpack("<H", header[8:10])[0],
                                                     *struct.unpack("<I", header[18:22]),
                                                     *struct.unpack("<HH", header[26:30]))
                name = stream.read(name_len).decode("utf-8", "replace")
                stream.read(extra_len)
                data = stream.read(size)
                if method != zipfile.ZIP_STORED or len(data) < size:
                    return entries
                entries[name] = data
    except OSError:
        return entries


def _normal(identity: dict[str, Any]) -> dict[str, Any]:
    # Compare as JSON would store it: tuples become lists, ints and floats keep their values.
    return json.loads(json.dumps(identity, sort_keys=True))


def _differences(owner: dict[str, Any], mine: dict[str, Any]) -> str:
    keys = sorted(k for k in set(owner) | set(mine) if owner.get(k) != mine.get(k))
    return "; ".join(f"{k} {json.dumps(owner.get(k))[:120]} here {json.dumps(mine.get(k))[:120]}" for k in keys)
