"""Every use of Optuna's private names, in one place.

Why no public API serves:

- Study-level *system* attrs. sweep keeps its long records (config, search space, prior,
  code, model) out of the user-attr rows that ``optuna studies`` prints and that
  optuna-dashboard cuts at 1,024 characters. Optuna 5 removed ``Study.system_attrs`` and
  ``Study.set_system_attr`` on purpose, but every storage still implements
  ``BaseStorage.get_study_system_attrs`` / ``set_study_system_attr``; only the handle
  (``Study._storage``) and the id (``Study._study_id``) to call them with are private.
- Trial state changes outside ``tell``: recovery must fail a trial *only if it is still
  running*, atomically (``BaseStorage.set_trial_state_values`` returns whether this call
  did it); ``Study.tell`` cannot say so and refuses trials it did not ask. That needs the
  storage handle and a trial's ``_trial_id`` (a ``Trial`` or ``FrozenTrial``).
- One trial by number: ``Study.get_trials`` reads them all; the storage's
  ``get_trial_id_from_study_id_trial_number`` reads one, with the study's private id.
- Stale trials: Optuna finds trials whose heartbeat is late only inside
  ``fail_stale_trials``, which fails them before their retry is enqueued (a process
  killed between the two loses the trial); its query ``RDBStorage._get_stale_trial_ids``
  has no public name.

``tests/storage/test_optuna_private.py`` exercises each name here against real storages,
so an Optuna upgrade that renames or removes one fails there, loudly, not in a study.
"""

from __future__ import annotations

from typing import Any

import optuna

__all__ = ["set_study_system_attr", "stale_trial_ids", "storage_of", "study_system_attrs", "trial_id", "trial_of"]


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study was loaded from (its public API is what callers then use)."""
    return study._storage  # noqa: SLF001


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial (``trial.number`` is its number within the study)."""
    return trial._trial_id  # noqa: SLF001


def trial_of(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number`` of ``study``, read alone (not the whole study)."""
    storage = study._storage  # noqa: SLF001
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study._study_id, number))  # noqa: SLF001


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    return study._storage.get_study_system_attrs(study._study_id)  # noqa: SLF001


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, key, value)  # noqa: SLF001


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """Ids of RUNNING trials whose heartbeat is past the grace period, by the database's
    clock; none on a storage without heartbeats (in-memory, journal, or none configured)."""
    storage = study._storage  # noqa: SLF001
    find = getattr(storage, "_get_stale_trial_ids", None)
    if find is None or not getattr(storage, "get_heartbeat_interval", lambda: None)():
        return []
    return list(find(study._study_id))  # noqa: SLF001
