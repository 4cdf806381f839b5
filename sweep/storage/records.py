"""Where a study's records live: short ones in user attrs, long ones in study system attrs.

``optuna studies`` prints every study user attr in one table cell, and optuna-dashboard
cuts each one at 1,024 characters. So only the few short facts a reader wants at a glance
(``SHOWN``: budget, data sizes, the study's id, the range test's summary) are user attrs;
the config, search space, prior, versions, code and model records and the evaluations
are Optuna study *system* attrs, in the same database (so resume on another machine reads
them) but out of those rows. Studies made before this split hold everything in user
attrs; ``study_attrs`` reads both, a system attr winning.

Optuna 5 has no public study-level system attr API any more (``Study.system_attrs`` was
removed), but its storages still keep them; ``sweep.storage.optuna_private`` reaches them.
"""

from __future__ import annotations

from typing import Any

import optuna

from sweep import attrs
from sweep.storage.optuna_private import set_study_system_attr, study_system_attrs

# The user attrs: what `optuna studies` and optuna-dashboard show. Keep each short.
SHOWN = frozenset({attrs.N_TRIALS, attrs.NUM_TRAIN, attrs.NUM_VALIDATION, attrs.STUDY_UUID, attrs.LR_FINDER})


def study_attrs(study: optuna.Study) -> dict[str, Any]:
    """Every sweep record of ``study``: its user attrs and sweep's system attrs, joined."""
    system = study_system_attrs(study)
    records = {**study.user_attrs, **{k: v for k, v in system.items() if k.startswith(attrs.PREFIX)}}
    if attrs.CONFIG in system:  # a whole config: an older split's second half must not join it
        records.pop(attrs.CONFIG_EXTRA, None)
    return records


def set_study_attr(study: optuna.Study, key: str, value: Any) -> None:
    """Store one record where it belongs (``SHOWN``: a user attr; else a system attr)."""
    if key in SHOWN:
        study.set_user_attr(key, value)
    else:
        set_study_system_attr(study, key, value)


def read_config(study: optuna.Study) -> dict[str, Any] | None:
    """The stored config dict of ``study``, or None when sweep did not (finish) creating it."""
    return attrs.read_config(study_attrs(study))


