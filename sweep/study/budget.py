"""The study-wide budget: ``attrs.N_TRIALS`` finished (complete + pruned) trials.

Optuna's ``MaxTrialsCallback`` overshoots by the number of workers (GUIDE §4), so each
worker checks the budget before it asks for a trial, and a trial asked for after
lower-numbered trials took the last slots is surplus: marked FAIL, never trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from sweep import attrs

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class Budget:
    total: int
    finished: int
    running: int

    @property
    def left(self) -> int:
        return max(self.total - self.finished, 0)


def budget(study: optuna.Study) -> Budget:
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    finished = sum(t.state in FINISHED for t in trials)
    total = int(study.user_attrs.get(attrs.N_TRIALS, 0))
    return Budget(total=total, finished=finished, running=len(trials) - finished)


def is_surplus(study: optuna.Study, trial: optuna.Trial, total: int) -> bool:
    """Whether lower-numbered trials already take the whole budget (workers raced for it)."""
    states = (*FINISHED, TrialState.RUNNING)
    ahead = sum(t.number < trial.number for t in study.get_trials(deepcopy=False, states=states))
    return ahead >= total
