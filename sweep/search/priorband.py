"""Prior-aware multi-fidelity search: a sampler and a pruner that Optuna runs like any other.

``PriorBandSampler`` (``study.sampler: priorband``) draws each new trial's parameters, all
from one source chosen per trial, from a mixture of
- the LR finder's *prior*: ``initial_lr`` log-normal around the suggestion (the prior's
  sigma), the seed schedule half the time, little warmup;
- the *incumbent's neighbourhood*: the best trial so far, each parameter moved a little
  (a quarter decade of LR; a tenth of each other range; the schedule kept 80 % of the time);
- *uniform* draws over the whole stored space, so nothing is ever ruled out.
The prior's share decays with evidence as in piBO (Hvarfner et al. 2022): with ``n`` trials
finished it is ``(1 - uniform) * beta / (beta + n)``, and the incumbent gets the rest of the
non-uniform share (PriorBand, Mallik et al. 2023, weighs prior against incumbent the same way
in spirit, by how well each explains the best configurations).

``NoiseTolerantHalvingPruner`` (``study.pruner: halving``) is asynchronous successive halving
with rungs at 1, eta, eta^2 ... epochs (a 1-epoch first rung). At a rung a trial continues if
its validation accuracy is within the noise of the top 1/eta of the trials seen there: a
300-image accuracy near 0.85 has a binomial standard error of about 0.02, so two trials whose
true accuracies are equal differ by more than 0.03 one time in three. The rule keeps a trial
whose score is at most ``z`` standard errors of a difference (``sqrt(2 p (1-p) / n)``) below the
cut-off, so promotion does not hinge on one or two lucky images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

SOURCES = ("prior", "incumbent", "uniform")
UNIFORM_SHARE = 0.2
PRIOR_DECAY_TRIALS = 5.0  # beta: after this many finished trials the prior and the incumbent weigh the same
LR_STEP_DECADES = 0.25
STEP_FRACTION = 0.1  # neighbourhood width of the other numeric parameters, as a share of their range
KEEP_SCHEDULE = 0.8
PRIOR_SCHEDULE_SHARE = 0.5
ETA = 3
PROMOTION_Z = 1.0


def source_weights(n_finished: int, has_incumbent: bool, beta: float = PRIOR_DECAY_TRIALS,
                   uniform: float = UNIFORM_SHARE) -> dict[str, float]:
    """The mixture's weights after ``n_finished`` trials: uniform fixed, the prior decaying as
    ``beta / (beta + n)`` of the rest, the incumbent taking what the prior gives up."""
    if not (0 <= uniform <= 1 and beta > 0 and n_finished >= 0):
        raise ValueError(f"need 0 <= uniform <= 1, beta > 0, n_finished >= 0; got {uniform=}, {beta=}, {n_finished=}")
    rest = 1.0 - uniform
    prior = rest * beta / (beta + n_finished) if has_incumbent else rest
    return {"prior": prior, "incumbent": rest - prior, "uniform": uniform}


class PriorBandSampler(BaseSampler):
    """A mixture of prior, incumbent neighbourhood and uniform draws (see the module docstring).

    ``prior``: the study's ``attrs.PRIOR`` record (``suggestion``, ``sigma_decades``) or None
    (then the prior's share goes to uniform draws). ``prior_schedule``: the schedule the prior
    favours. The source of a trial depends only on the seed and the trial number.
    """

    def __init__(self, prior: dict | None, *, prior_schedule: str = "cosine", seed: int | None = None,
                 beta: float = PRIOR_DECAY_TRIALS, uniform: float = UNIFORM_SHARE) -> None:
        self._prior = prior
        self._prior_schedule = prior_schedule
        self._seed = seed
        self._beta, self._uniform = beta, uniform
        self._sources: dict[int, tuple[str, FrozenTrial | None]] = {}

    def reseed_rng(self) -> None:
        self._seed = None

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}  # every parameter is drawn on its own, from the trial's source

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict:
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._source_of(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._sources.pop(trial.number, None)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        source, incumbent = self._source_of(study, trial)
        rng = self._rng(trial.number, param_name)
        if source == "prior":
            return self._from_prior(param_name, param_distribution, rng)
        if source == "incumbent" and incumbent is not None and param_name in incumbent.params:
            return neighbour(incumbent.params[param_name], param_distribution, rng)
        return uniform_draw(param_distribution, rng)

    def source(self, study: Study, trial: FrozenTrial) -> str:
        return self._source_of(study, trial)[0]

    # --- private ---------------------------------------------------------------------------

    def _rng(self, trial_number: int, param_name: str) -> np.random.Generator:
        salt = sum(param_name.encode())  # a fixed number per parameter name
        return np.random.default_rng(None if self._seed is None else [self._seed, trial_number, salt])

    def _source_of(self, study: Study, trial: FrozenTrial) -> tuple[str, FrozenTrial | None]:
        if trial.number not in self._sources:
            finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            incumbent = best_trial(finished, study.direction)
            weights = source_weights(len(finished), incumbent is not None, self._beta, self._uniform)
            if self._prior is None:
                weights = {"prior": 0.0, "incumbent": weights["incumbent"],
                           "uniform": weights["uniform"] + weights["prior"]}
            rng = self._rng(trial.number, "source")
            source = str(rng.choice(SOURCES, p=[weights[s] for s in SOURCES]))
            self._sources[trial.number] = (source, incumbent)
        return self._sources[trial.number]

    def _from_prior(self, name: str, dist: BaseDistribution, rng: np.random.Generator) -> Any:
        if name == "initial_lr" and isinstance(dist, FloatDistribution):
            centre = math.log10(float(self._prior["suggestion"]))
            sigma = float(self._prior.get("sigma_decades", 0.5))
            lo, hi = math.log10(dist.low), math.log10(dist.high)
            return float(min(max(10.0 ** float(np.clip(rng.normal(centre, sigma), lo, hi)), dist.low), dist.high))
        if name == "schedule" and isinstance(dist, CategoricalDistribution):
            if self._prior_schedule in dist.choices and rng.random() < PRIOR_SCHEDULE_SHARE:
                return self._prior_schedule
            return uniform_draw(dist, rng)
        if name == "warmup_fraction" and isinstance(dist, FloatDistribution):
            # The seed trials use no warmup; the prior favours little.
            return float(min(dist.low + abs(rng.normal(0.0, STEP_FRACTION * (dist.high - dist.low))), dist.high))
        return uniform_draw(dist, rng)


def best_trial(trials: Sequence[FrozenTrial], direction: optuna.study.StudyDirection) -> FrozenTrial | None:
    """The incumbent: the best complete trial, or before any completes, the pruned trial with
    the best value at the furthest epoch reached."""
    sign = 1.0 if direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                and math.isfinite(t.value)]
    if complete:
        return max(complete, key=lambda t: sign * t.value)
    partial = [t for t in trials if t.intermediate_values]
    if not partial:
        return None

    def furthest(t: FrozenTrial) -> tuple[int, float]:
        step = max(t.intermediate_values)
        value = t.intermediate_values[step]
        return step, sign * value if math.isfinite(value) else -math.inf

    return max(partial, key=furthest)


def uniform_draw(dist: BaseDistribution, rng: np.random.Generator) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        if dist.log:  # log-uniform over [low, high + 1), floored: every integer can come up
            return int(min(max(math.floor(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high + 1)))),
                               dist.low), dist.high))
        return int(rng.integers(dist.low, dist.high + 1))
    if isinstance(dist, FloatDistribution):
        if dist.log:
            return float(min(max(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))), dist.low), dist.high))
        return float(rng.uniform(dist.low, dist.high))
    raise TypeError(f"unsupported distribution {dist!r}")


def neighbour(value: Any, dist: BaseDistribution, rng: np.random.Generator) -> Any:
    """A value near ``value`` within ``dist``: log-scale steps for log parameters."""
    if isinstance(dist, CategoricalDistribution):
        return value if value in dist.choices and rng.random() < KEEP_SCHEDULE else uniform_draw(dist, rng)
    if not isinstance(dist, (FloatDistribution, IntDistribution)):
        raise TypeError(f"unsupported distribution {dist!r}")
    if dist.log:
        if isinstance(dist, FloatDistribution):  # initial_lr: a quarter decade
            width = LR_STEP_DECADES * math.log(10)
        else:
            width = STEP_FRACTION * math.log(dist.high / dist.low)
        moved = math.exp(math.log(value) + rng.normal(0.0, width))
    else:
        moved = value + rng.normal(0.0, STEP_FRACTION * (dist.high - dist.low))
    moved = min(max(moved, dist.low), dist.high)
    return int(round(moved)) if isinstance(dist, IntDistribution) else float(moved)


# --- the pruner ----------------------------------------------------------------------------


def rungs(max_epochs: int, eta: int = ETA, first: int = 1) -> list[int]:
    """The epochs at which trials are compared: first, first*eta, ... below ``max_epochs``."""
    out, rung = [], first
    while rung < max_epochs:
        out.append(rung)
        rung *= eta
    return out


def promotable(value: float, others: Sequence[float], n_validation: int | None, *, eta: int = ETA,
               z: float = PROMOTION_Z, maximize: bool = True) -> bool:
    """Whether a trial scoring ``value`` at a rung continues, given the ``others`` seen there.

    Successive halving keeps the top ``1/eta``; with fewer than ``eta`` others nothing is
    known yet and the trial continues. With ``n_validation`` (an accuracy), the cut-off is
    lowered by ``z`` standard errors of a difference of two such accuracies; without it (a
    loss, whose noise has no closed form here) the plain top-``1/eta`` rule applies.
    """
    finite = [v for v in others if math.isfinite(v)]
    if len(finite) < eta:
        return True
    if not math.isfinite(value):
        return False
    ranked = sorted([*finite, value], reverse=maximize)
    cutoff = ranked[max(len(ranked) // eta, 1) - 1]
    slack = 0.0
    if n_validation and maximize:
        p = min(max(cutoff, 0.0), 1.0)
        slack = z * math.sqrt(2.0 * p * (1.0 - p) / n_validation)
    return value >= cutoff - slack if maximize else value <= cutoff + slack


class NoiseTolerantHalvingPruner(optuna.pruners.BasePruner):
    """Asynchronous successive halving with noise-tolerant promotion (module docstring)."""

    def __init__(self, max_epochs: int, n_validation: int | None, *, eta: int = ETA, z: float = PROMOTION_Z):
        if eta < 2 or max_epochs < 1:
            raise ValueError(f"need eta >= 2 and max_epochs >= 1, got {eta=}, {max_epochs=}")
        self._rungs = set(rungs(max_epochs, eta))
        self._n_validation = n_validation
        self._eta, self._z = eta, z

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self._rungs:
            return False
        others = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False)
                  if t.number != trial.number and step in t.intermediate_values]
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        n = self._n_validation if maximize else None
        return not promotable(trial.intermediate_values[step], others, n, eta=self._eta, z=self._z, maximize=maximize)
