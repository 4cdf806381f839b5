"""Checkpoints a study must not continue: those of a deleted study of its name, and those
of another model after ``--force``. Each goes with one warning; nothing else is touched
(a shared checkpoint folder may hold another storage's study of the same name)."""

from __future__ import annotations

import logging
import shutil

import optuna
from optuna.trial import TrialState

from sweep import attrs
from sweep.config import Config
from sweep.storage.artifacts import open_artifact_store, remove_checkpoints
from sweep.storage.optuna_private import storage_of, trial_id

log = logging.getLogger(__name__)


def retire_checkpoints(study: optuna.Study, location: str | None, why: str) -> int:
    """Remove the checkpoints waiting retries would continue: they hold another model's (or
    optimizer's) state. The retries start from epoch 1; one warning says so."""
    waiting = [t for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
               if t.user_attrs.get(attrs.CHECKPOINT)]
    if not waiting:
        return 0
    remove_checkpoints(open_artifact_store(study.study_name, location), waiting)
    for trial in waiting:
        storage_of(study).set_trial_user_attr(trial_id(trial), attrs.CHECKPOINT, None)
    log.warning("study %s: %s; retired the checkpoints of %d waiting trial(s) (%s), which start again from epoch 1",
                study.study_name, why, len(waiting), ", ".join(str(t.number) for t in waiting))
    return len(waiting)


def remove_leftover_checkpoints(config: Config, storage: optuna.storages.BaseStorage, storage_url: str,
                                 own_uuid: str) -> None:
    """A new study under a name used before: what an earlier study of that name *in this
    storage* left in the checkpoint store (its UUID is no longer among this storage's
    studies) is never continued, and goes; so do files of older versions in
    studies/NAME/trial-*. Files of a same-named study in another storage sharing the
    folder stay (each checkpoint names its study and storage)."""
    from sweep.search.checkpoints import remove_owned_checkpoints
    from sweep.storage.database import checkpoints_dir, storage_key

    name, location = config.study.name, config.study.checkpoint_store
    legacy = sorted(checkpoints_dir(name).glob("trial-*"))
    for folder in legacy:
        shutil.rmtree(folder, ignore_errors=True)
    live = {s.user_attrs.get(attrs.STUDY_UUID) for s in storage.get_all_studies()} - {own_uuid}
    key = storage_key(storage_url)
    removed = remove_owned_checkpoints(name, location, lambda owner, _path: owner["study"] == own_uuid
                                       or (owner.get("storage") == key and owner["study"] not in live))
    if removed or legacy:
        log.warning("study %s is new: removed %d checkpoint(s) a deleted study of that name in this storage left in %s",
                    name, removed + len(legacy), location or checkpoints_dir(name))
