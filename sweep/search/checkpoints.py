"""A trial's epoch checkpoints in the study's Optuna artifact store.

Each epoch's checkpoint (one archive, ``sweep.training.checkpoint``) is uploaded to the
store and the trial's ``attrs.CHECKPOINT`` user attr is pointed at it; only then is the
previous one removed. A retry inherits the attr from the trial it continues (Optuna's
retry callback copies user attrs), so it finds the checkpoint through the database,
whichever machine it runs on, provided the store is shared (``study.checkpoint_store``).

Nothing here deletes progress that nothing replaced:

- a store that fails to save or load (a full or read-only disk, an NFS I/O error, an S3
  error) raises ``CheckpointStoreError``; the checkpoints already stored stay, and the
  worker re-enqueues the trial;
- a checkpoint that cannot continue the trial (unreadable: torn, truncated, another Keras
  version; or another owner's) is *set aside*: left in the store, named in one warning and
  in the trial's ``attrs.SET_ASIDE``; only then does the trial start from epoch 1;
- the trial's checkpoints are removed (``remove``) by the worker, once the trial's final
  state is stored;
- a file uploaded for a trial that was finished meanwhile, or whose record failed, is
  removed by this process, which alone knows it exists.

Writing to a trial that is already finished raises ``UpdateFinishedTrialError``: that is
how a worker learns that another worker's recovery failed its trial under it (a late
heartbeat). It is turned into ``TrialTakenOver``; the checkpoint the retry inherited is
left alone.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, BinaryIO

import keras
import optuna
from optuna.artifacts import download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError

from sweep import attrs
from sweep.errors import CheckpointStoreError, TrialTakenOver
from sweep.storage import optuna_private
from sweep.storage.artifacts import folder_files, remove_artifact
from sweep.training.checkpoint import CheckpointRefused, read_checkpoint, read_owner, write_checkpoint
from sweep.training.trainer import EpochLog, ResumePoint

log = logging.getLogger(__name__)
_RETRY_HISTORY = "retry_history"  # Optuna's retry callback's system attr: the trials a retry continues


class TrialCheckpoints:
    """Saves and loads the checkpoints of ``trial``, owned by ``identity``; ``labels``
    (``{"storage": key}``) tell clean-up which storage's study the files belong to."""

    def __init__(self, store: Any, trial: optuna.Trial, identity: dict[str, Any], labels: dict[str, Any] | None = None):
        self._store = store
        self._labels = labels  # written into each archive, never compared (``read_owner``)
        self._trial = trial
        self._identity = identity
        self._current: dict[str, Any] | None = _latest_inherited(trial)
        # The checkpoint a retry inherited stays until the retry finishes: should two
        # retries of one trial ever run (one is then stopped), neither deletes the other's start.
        self._inherited = self._current

    def load(self) -> ResumePoint | None:
        """The inherited checkpoint if it can continue this trial; else None (set aside, warned)."""
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
                self._current = self._inherited = None
                return None
            except Exception as exc:  # noqa: BLE001 - S3, NFS and disks fail in many ways; the file stays
                raise CheckpointStoreError(f"trial {self._trial.number}: its checkpoint {ref['artifact_id']} cannot "
                                           f"be read from the checkpoint store: {_summary(exc)}") from exc
            try:
                return read_checkpoint(path, self._identity)
            except CheckpointRefused as refused:
                self._set_aside(ref, str(refused))
                return None

    def save(self, model: keras.Model, history: list[EpochLog]) -> None:
        epoch = len(history)
        recorder = _RecordingStore(self._store)
        try:
            with tempfile.TemporaryDirectory(prefix="sweep-checkpoint-") as scratch:
                # The name matches storage.artifacts.CHECKPOINT_FILE, which finds it again for clean-up.
                path = write_checkpoint(Path(scratch) / f"trial-{self._identity['root_trial']}-epoch-{epoch:04d}.zip",
                                        model, history, self._identity, self._labels)
                artifact_id = upload_artifact(artifact_store=recorder, file_path=str(path), study_or_trial=self._trial)
            self._trial.set_user_attr(attrs.CHECKPOINT, {"artifact_id": artifact_id, "epoch": epoch})
        except UpdateFinishedTrialError:
            recorder.remove_written()  # its record never landed: nobody else knows the file exists
            raise TrialTakenOver from None
        except (StorageInternalError, KeyboardInterrupt):
            recorder.remove_written()
            raise
        except Exception as exc:  # noqa: BLE001 - the store's (or the local disk's) fault
            recorder.remove_written()
            if not isinstance(exc, OSError) and recorder.written is None and not _is_store_error(exc):
                raise  # model.save failing is a bug, not a store fault
            raise CheckpointStoreError(f"trial {self._trial.number}: the checkpoint of epoch {epoch} cannot be "
                                       f"saved: {_summary(exc)}") from exc
        previous, self._current = self._current, {"artifact_id": artifact_id, "epoch": epoch}
        if previous and previous != self._inherited:
            remove_artifact(self._store, previous["artifact_id"])

    def remove(self) -> None:
        """Remove the trial's checkpoints: call only once its final state is stored."""
        for ref in (self._current, self._inherited):
            if ref:
                remove_artifact(self._store, ref["artifact_id"])
        self._current = self._inherited = None

    def _set_aside(self, ref: dict[str, Any], reason: str) -> None:
        log.warning("trial %d: checkpoint %s (epoch %s) set aside, kept in the checkpoint store: %s; the trial "
                    "starts from epoch 1", self._trial.number, ref["artifact_id"], ref.get("epoch"), reason)
        aside = [*self._trial.user_attrs.get(attrs.SET_ASIDE, []), {**ref, "reason": reason[:300]}]
        try:
            self._trial.set_user_attr(attrs.SET_ASIDE, aside)
            self._trial.set_user_attr(attrs.CHECKPOINT, None)
        except UpdateFinishedTrialError:
            raise TrialTakenOver from None
        self._current = self._inherited = None


def remove_owned_checkpoints(study_name: str, location: str | None,
                             owned: Callable[[dict[str, Any], Path], bool]) -> int:
    """Remove the checkpoint archives in ``study_name``'s folder store whose owner
    (``{"study": uuid, "storage": key}``, ``read_owner``) and path (named by its artifact id)
    ``owned`` accepts; returns how many.

    A folder may be shared by studies of one name in several storages: each removes only its
    own files and those of a study deleted from its own storage. Other files stay."""
    removed = 0
    for path in folder_files(study_name, location):
        owner = read_owner(path)
        if owner is not None and owned(owner, path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _latest_inherited(trial: optuna.Trial) -> dict[str, Any] | None:
    """The checkpoint a retry continues: the one its predecessor (the trial it retries) last
    recorded, read now that it is finished, rather than the copy taken when the retry was
    enqueued. A worker can record a newer epoch between that copy and its trial's failure,
    and then removes the older file: the copy would point at nothing."""
    ref = trial.user_attrs.get(attrs.CHECKPOINT)
    storage = optuna_private.storage_of(trial.study)
    history = storage.get_trial_system_attrs(optuna_private.trial_id(trial)).get(_RETRY_HISTORY) or []
    if not history:
        return ref
    try:
        before = optuna_private.trial_of(trial.study, history[-1])
    except (KeyError, ValueError):
        return ref
    latest = before.user_attrs.get(attrs.CHECKPOINT)
    newer = latest and latest != ref and latest.get("epoch", 0) >= (ref or {}).get("epoch", 0)
    if before.state.is_finished() and newer:
        trial.set_user_attr(attrs.CHECKPOINT, latest)
        return latest
    return ref


class _RecordingStore:
    """An artifact store that remembers the id it wrote, so the file can be removed when its
    record (``upload_artifact`` writes the file, then records it) never lands."""

    def __init__(self, store: Any):
        self._store = store
        self.written: str | None = None

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self._store.open_reader(artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.written = artifact_id
        self._store.write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self._store.remove(artifact_id)

    def remove_written(self) -> None:
        if self.written is not None:
            remove_artifact(self._store, self.written)
            self.written = None


def _is_store_error(exc: BaseException) -> bool:
    # botocore's errors (ClientError, EndpointConnectionError, ...) without importing boto3.
    return any(cls.__module__.split(".")[0] in ("botocore", "boto3", "s3transfer") for cls in type(exc).__mro__)


def _summary(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
