"""The LR finder's prior: how a range test's suggestion seeds a study.

Applied once, when a study is created (``sweep.study.setup`` stores what ``plan_prior``
returns in the study's user attrs, so resuming never recomputes it):

- ``narrow``: the initial_lr range becomes ``[s/10, min(10 s, upper)]`` clipped into the
  config's range, where ``s`` is the suggestion and ``upper`` the LR at which the range
  test's loss diverged;
- ``seed_trials: k``: the first k of ``s/3, s, 3 s`` (clipped into range) are enqueued
  with ``lr_finder.seed_schedule`` (cosine by default) and no warmup;
- ``build_sampler`` wraps the study's sampler in ``PriorWeightedSampler``: during the
  startup trials (TPE's random phase) initial_lr is drawn from a log-normal centred on
  ``s`` (sigma half a decade, truncated to the stored range) instead of log-uniformly.

With several searched optimizers (``search.optimizers``) the range test runs once per
optimizer (SGD's useful rates sit one to two orders of magnitude above Adam's) and each
gets its own narrowed range, seed trials (with ``optimizer`` set) and log-normal centre;
``initial_lr``'s distribution is the union of the narrowed ranges (one Optuna
distribution per parameter name), and TPE learns the rest jointly with ``optimizer``.

Only public Optuna sampler API is used, so the wrapped sampler behaves like any other.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from sweep.config import Config
from sweep.search.space import family_distributions

log = logging.getLogger(__name__)

LR_PARAM = "initial_lr"
SIGMA_DECADES = 0.5
# TPE's own default; the prior shapes exactly these random-phase trials.
STARTUP_TRIALS = 10
# Ratios of the seed trials to the suggestion, in enqueue order (the first k are used).
SEED_RATIOS = (1.0 / 3.0, 1.0, 3.0)
# When the search leaves out ``lr_finder.seed_schedule``, the seed trials use the first
# schedule of this list that it allows: anneal to zero first (one_cycle: fastai's pairing
# with the range test), then hold and decay, then restart, then hold, then decay.
SEED_SCHEDULE_PREFERENCE = ("cosine", "linear", "one_cycle", "wsd", "polynomial", "cosine_restarts", "constant",
                            "exponential", "step")
# The seed trials' family parameters: the practitioners' defaults (clipped into the space), so
# that a seed tests the LR, not the curve. PyTorch's pct_start 0.3; Hägele et al.'s 20 %
# cool-down with 1-sqrt; power 1 (linear); no floor (the classic curves). Others: mid-range.
SEED_FAMILY_VALUES: dict[str, Any] = {"pct_start": 0.3, "decay_fraction": 0.2, "decay_shape": "sqrt",
                                      "power": 1.0, "min_lr_ratio": 0.0}
# Rejection sampling of the truncated log-normal: the stored range holds at least a few
# percent of its mass in any sane case; past this many tries we fall back to log-uniform.
_MAX_REJECTION_TRIES = 1000


# --- planning -----------------------------------------------------------------------------


def plan_prior(
    config: Config, search_space: dict, lr_result: dict | None
) -> tuple[dict, dict | None, list[dict]]:
    """Turn range tests' results into (search space, prior record, seed trial params).

    ``lr_result`` is one range test's result, or ``{optimizer: result}`` for a study that
    searches several optimizers. ``search_space`` is the study's space (format:
    ``sweep.attrs.SEARCH_SPACE``); a copy is returned with ``initial_lr`` narrowed when
    ``lr_finder.narrow`` is set. The prior record is what ``sweep.attrs.PRIOR`` stores and
    ``build_sampler`` reads. With the finder disabled or no result: the space unchanged,
    ``None`` and no seeds.
    """
    finder = config.lr_finder
    if not finder.enabled or not lr_result:
        return search_space, None, []
    by_optimizer = {config.train.optimizer: lr_result} if "suggestion" in lr_result else dict(lr_result)
    searched = bool(search_space.get("optimizers"))
    space = copy.deepcopy(search_space)
    records, seeds = {}, []
    for optimizer, result in by_optimizer.items():
        record, lrs = _plan_one(config, search_space, result)
        records[optimizer] = record
        extra = {"optimizer": optimizer} if searched else {}
        seeds += [{**seed_params(lr, space, finder.seed_schedule), **extra} for lr in lrs]
    first = next(iter(records.values()))
    lo = min(r["narrowed_range"][0] for r in records.values())
    hi = max(r["narrowed_range"][1] for r in records.values())
    if finder.narrow:
        space[LR_PARAM] = {"low": lo, "high": hi}
    record = {**first, "narrowed_range": [lo, hi], "seeded": [s[LR_PARAM] for s in seeds],
              "sigma_decades": SIGMA_DECADES, "startup_trials": STARTUP_TRIALS}
    if searched:
        record["optimizers"] = records
    return space, record, seeds


def _plan_one(config: Config, search_space: dict, lr_result: dict) -> tuple[dict, list[float]]:
    """One optimizer's prior: its suggestion, narrowed range and seeded LRs."""
    finder = config.lr_finder
    config_lo = float(search_space[LR_PARAM]["low"])
    config_hi = float(search_space[LR_PARAM]["high"])
    suggestion = float(lr_result["suggestion"])
    upper = float(lr_result.get("upper") or config_hi)
    lo, hi = config_lo, config_hi
    if finder.narrow:
        lo, hi = narrowed_range(suggestion, upper, config_lo, config_hi)
    seeded = seed_lrs(suggestion, lo, hi, finder.seed_trials)
    log.info(
        "prior%s: suggestion %.3g, initial_lr range [%.3g, %.3g] (config [%.3g, %.3g]), seeding %s",
        f" ({lr_result['optimizer']})" if lr_result.get("optimizer") else "", suggestion, lo, hi, config_lo,
        config_hi, ", ".join(f"{v:.3g}" for v in seeded) or "nothing",
    )
    record = {"method": lr_result.get("method"), "suggestion": suggestion, "upper": upper,
              "config_range": [config_lo, config_hi], "narrowed_range": [lo, hi], "seeded": seeded}
    return record, seeded


def narrowed_range(suggestion: float, upper: float, low: float, high: float) -> tuple[float, float]:
    """``[s/10, min(10 s, upper)]`` clipped into ``[low, high]``.

    Falls back to pieces of the rule that leave a non-empty range (the divergence bound
    is dropped first, then narrowing altogether) and logs why.
    """
    candidates = (
        (suggestion / 10.0, min(10.0 * suggestion, upper)),
        (suggestion / 10.0, 10.0 * suggestion),
    )
    for cand_lo, cand_hi in candidates:
        lo, hi = max(low, cand_lo), min(high, cand_hi)
        if lo < hi:
            return lo, hi
    log.warning(
        "prior: suggestion %.3g leaves nothing of the config's initial_lr range [%.3g, %.3g]; keeping it",
        suggestion, low, high,
    )
    return low, high


def seed_lrs(suggestion: float, low: float, high: float, k: int) -> list[float]:
    """The first ``k`` of ``s/3, s, 3 s``, clipped into ``[low, high]``, duplicates dropped."""
    seeded: list[float] = []
    for ratio in SEED_RATIOS[:k]:
        lr = min(max(suggestion * ratio, low), high)
        if not any(math.isclose(lr, other, rel_tol=1e-9) for other in seeded):
            seeded.append(lr)
    return seeded


def seed_params(lr: float, space: dict, schedule: str) -> dict[str, Any]:
    """Trial params testing ``lr`` as the peak of ``schedule`` (or the closest one the space
    allows), no warmup, the family's usual parameters (``SEED_FAMILY_VALUES``; mid-range for the
    rest: the middle of decay_rate, the geometric middle of decay_steps)."""
    if schedule not in space["schedules"]:
        schedule = next(s for s in SEED_SCHEDULE_PREFERENCE if s in space["schedules"])
    params: dict[str, Any] = {
        LR_PARAM: lr,
        "schedule": schedule,
        "warmup_fraction": _clip(0.0, space["warmup_fraction"]),
    }
    for name, dist in family_distributions(space, schedule).items():
        if isinstance(dist, CategoricalDistribution):
            wanted = SEED_FAMILY_VALUES.get(name)
            params[name] = wanted if wanted in dist.choices else dist.choices[0]
        elif name in SEED_FAMILY_VALUES:
            params[name] = _clip(SEED_FAMILY_VALUES[name], {"low": dist.low, "high": dist.high})
        elif isinstance(dist, IntDistribution):
            params[name] = int(round(math.sqrt(dist.low * dist.high)))
        else:
            params[name] = (dist.low + dist.high) / 2.0
    return params


def _clip(value: float, bounds: dict) -> float:
    return min(max(value, bounds["low"]), bounds["high"])


# --- sampling -----------------------------------------------------------------------------


def build_sampler(config: Config, prior: dict | None, *, seed: int) -> BaseSampler:
    """The study's sampler (``study.sampler``), prior-weighted when ``prior`` is given.

    Each worker process builds its own with a different ``seed``.
    """
    # The prior's record says how many startup trials it shapes; TPE's random phase
    # is made exactly as long, so the two hand over at the same trial.
    if config.study.sampler == "priorband":
        from sweep.search.priorband import PriorBandSampler

        return PriorBandSampler(prior, prior_schedule=config.lr_finder.seed_schedule, seed=seed)
    startup = int((prior or {}).get("startup_trials", STARTUP_TRIALS))
    base: BaseSampler
    if config.study.sampler == "tpe":
        # group=True: the space is conditional (decay_* only for exponential and step),
        # which plain multivariate TPE would sample independently, with a warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            base = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup, multivariate=True, group=True
            )
    else:
        base = optuna.samplers.RandomSampler(seed=seed)
    if prior is None:
        return base
    centres = {name: (float(r["suggestion"]), *map(float, r["narrowed_range"]))
               for name, r in (prior.get("optimizers") or {}).items()}
    return PriorWeightedSampler(
        base,
        suggestion=float(prior["suggestion"]),
        sigma_decades=float(prior.get("sigma_decades", SIGMA_DECADES)),
        n_startup_trials=startup,
        seed=seed,
        by_optimizer=centres,
    )


class PriorWeightedSampler(BaseSampler):
    """Draws ``initial_lr`` from a truncated log-normal during the startup trials.

    While fewer than ``n_startup_trials`` trials are finished (complete or pruned),
    ``initial_lr`` comes from ``log10(lr) ~ N(log10(suggestion), sigma_decades)``
    truncated to the parameter's range; every other parameter, and everything after
    the startup phase, is the base sampler's. The startup decision is taken once per
    trial, so one trial never mixes the two phases. With ``by_optimizer``
    (``{optimizer: (suggestion, low, high)}``) a trial whose ``optimizer`` is drawn already
    is centred on that optimizer's suggestion and truncated to its own range.
    """

    def __init__(
        self,
        base: BaseSampler,
        *,
        suggestion: float,
        sigma_decades: float = SIGMA_DECADES,
        n_startup_trials: int = STARTUP_TRIALS,
        param_name: str = LR_PARAM,
        seed: int | None = None,
        by_optimizer: dict[str, tuple[float, float, float]] | None = None,
    ) -> None:
        if not (suggestion > 0 and math.isfinite(suggestion)):
            raise ValueError(f"suggestion must be a positive finite LR, got {suggestion=}")
        if not sigma_decades > 0:
            raise ValueError(f"sigma_decades must be > 0, got {sigma_decades=}")
        self._base = base
        self._log_centre = math.log10(suggestion)
        self._sigma = sigma_decades
        self._n_startup = n_startup_trials
        self._param = param_name
        self._seed = seed
        self._startup: dict[int, bool] = {}  # trial number -> in the startup phase
        self._by_optimizer = dict(by_optimizer or {})

    @property
    def base(self) -> BaseSampler:
        return self._base

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._seed = None

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._in_startup(study, trial)
        self._base.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        # In the startup phase every parameter goes through sample_independent, where
        # initial_lr is intercepted; the base (TPE) samples nothing relatively then anyway.
        if self._in_startup(study, trial):
            return {}
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        if (
            param_name == self._param
            and isinstance(param_distribution, FloatDistribution)
            and self._in_startup(study, trial)
        ):
            own = self._by_optimizer.get(trial.params.get("optimizer"))
            if own is None:
                return self.draw(param_distribution.low, param_distribution.high, trial.number)
            suggestion, low, high = own
            low, high = max(low, param_distribution.low), min(high, param_distribution.high)
            if not low < high:
                low, high = param_distribution.low, param_distribution.high
            return self.draw(low, high, trial.number, centre=math.log10(suggestion))
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._startup.pop(trial.number, None)
        self._base.after_trial(study, trial, state, values)

    def draw(self, low: float, high: float, trial_number: int, centre: float | None = None) -> float:
        """Trial ``trial_number``'s LR from the log-normal truncated to ``[low, high]``.

        The draw depends only on the seed and the trial number, so a worker restarted
        with the same seed (a resumed study) never repeats the LRs of earlier trials.
        """
        rng = np.random.default_rng(None if self._seed is None else [self._seed, trial_number])
        log_lo, log_hi = math.log10(low), math.log10(high)
        for _ in range(_MAX_REJECTION_TRIES):  # rejection sampling
            value = rng.normal(self._log_centre if centre is None else centre, self._sigma)
            if log_lo <= value <= log_hi:
                return float(min(max(10.0**value, low), high))
        # The range lies far in a tail of the prior: it carries no information there.
        return float(10.0 ** rng.uniform(log_lo, log_hi))

    def _in_startup(self, study: Study, trial: FrozenTrial) -> bool:
        decided = self._startup.get(trial.number)
        if decided is None:
            finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            decided = len(finished) < self._n_startup
            self._startup[trial.number] = decided
        return decided
