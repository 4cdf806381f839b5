"""A trial's epoch checkpoints in the study's Optuna artifact store.

Each epoch's checkpoint (one archive, ``sweep.training.checkpoint``) is uploaded to the
store and the trial's ``attrs.CHECKPOINT`` user attr is pointed at it; only then is the
previous one removed. A retry inherits the attr from the trial it continues (Optuna's
retry callback copies user attrs), so it finds the checkpoint through the database,
whichever machine it runs on, provided the store is shared (``study.checkpoint_store``).

Writing to a trial that is already finished raises ``UpdateFinishedTrialError``: that is
how a worker learns that another worker's recovery failed its trial under it (a late
heartbeat). It is turned into ``TrialTakenOver``; the checkpoint the retry inherited is
left alone.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import keras
import optuna
from optuna.artifacts import download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.exceptions import UpdateFinishedTrialError

from sweep import attrs
from sweep.errors import TrialTakenOver
from sweep.storage.artifacts import remove_artifact
from sweep.training.checkpoint import read_checkpoint, write_checkpoint
from sweep.training.trainer import EpochLog, ResumePoint

log = logging.getLogger(__name__)


class TrialCheckpoints:
    """Saves and loads the checkpoints of ``trial``, owned by ``identity``."""

    def __init__(self, store: Any, trial: optuna.Trial, identity: dict[str, Any]):
        self._store = store
        self._trial = trial
        self._identity = identity
        self._current: dict[str, Any] | None = trial.user_attrs.get(attrs.CHECKPOINT)
        # The checkpoint a retry inherited stays until the retry finishes: should two
        # retries of one trial ever run (one is then stopped), neither deletes the other's start.
        self._inherited = self._current

    def load(self) -> ResumePoint | None:
        """The inherited checkpoint if it is this trial's (else it is removed, with a warning)."""
        ref = self._current
        if not ref:
            return None
        with tempfile.TemporaryDirectory(prefix="sweep-checkpoint-") as scratch:
            path = Path(scratch) / "checkpoint.zip"
            try:
                download_artifact(artifact_store=self._store, artifact_id=ref["artifact_id"], file_path=str(path))
            except ArtifactNotFound:
                log.warning("trial %d: its checkpoint (epoch %s) is not in the checkpoint store; starting from "
                            "epoch 1 (is study.checkpoint_store shared by every machine?)", self._trial.number,
                            ref.get("epoch"))
                self._current = None
                return None
            resume = read_checkpoint(path, self._identity)
        if resume is None:
            self.remove()
        return resume

    def save(self, model: keras.Model, history: list[EpochLog]) -> None:
        epoch = len(history)
        with tempfile.TemporaryDirectory(prefix="sweep-checkpoint-") as scratch:
            # The name matches storage.artifacts.CHECKPOINT_FILE, which finds it again for clean-up.
            path = write_checkpoint(Path(scratch) / f"trial-{self._identity['root_trial']}-epoch-{epoch:04d}.zip",
                                    model, history, self._identity)
            try:
                artifact_id = upload_artifact(artifact_store=self._store, file_path=str(path),
                                              study_or_trial=self._trial)
            except UpdateFinishedTrialError:
                raise TrialTakenOver from None
        ref = {"artifact_id": artifact_id, "epoch": epoch}
        try:
            self._trial.set_user_attr(attrs.CHECKPOINT, ref)
        except UpdateFinishedTrialError:
            remove_artifact(self._store, artifact_id)  # nobody will ever point at it
            raise TrialTakenOver from None
        previous, self._current = self._current, ref
        if previous and previous != self._inherited:
            remove_artifact(self._store, previous["artifact_id"])

    def remove(self) -> None:
        """Remove the trial's checkpoints (it is finished and needs them no more)."""
        for ref in (self._current, self._inherited):
            if ref:
                remove_artifact(self._store, ref["artifact_id"])
        self._current = self._inherited = None
