"""The search space: the config's ``search`` section as Optuna distributions, and back.

A space is a plain dict (stored in the study as ``attrs.SEARCH_SPACE``, so that a
resumed study, a report or another machine uses exactly the ranges the study was
created with, including the prior's narrowed ``initial_lr``)::

    {"initial_lr": {"low", "high"}, "schedules": [...], "warmup_fraction": {"low", "high"},
     "decay_rate": {...}, "decay_steps": {...}, "pct_start": {...}, "decay_fraction": {...},
     "decay_shapes": [...], "restart_fraction": {...}, "t_mul": {...}, "m_mul": {...},
     "power": {...}, "min_lr_ratios": [0.0, ...]}

The space is conditional: each family's parameters (``sweep.config.families``) exist only in
its trials (GUIDE §1 names). ``t_mul`` and ``m_mul`` fixed in the config are ranges with
``low == high``: Optuna records them like any parameter, so a trial's params always hold
its whole curve. ``min_lr_ratios`` are the floor's choices, 0 included
(``families.min_lr_ratio_choices``); without the key (``search.min_lr_ratio: null``, or a
study created before the floor existed) no floor is searched. Keys a stored space lacks are
not searched, so older studies resume with the space they were created with.
With ``search.optimizers`` the optimizer
is a categorical (``optimizer``, sampled first), ``momentum`` exists only for the
optimizers that have one (``MOMENTUM_OPTIMIZERS``) and ``weight_decay`` (log scale) for
all, each only when its range is given. ``optimizers``, ``momentum`` and
``weight_decay`` are null in the space when not searched.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from sweep.config import (FAMILY_PARAMS, MOMENTUM_OPTIMIZERS, OPTIONAL_PARAMS, FloatRange, SearchConfig,
                          min_lr_ratio_choices)
from sweep.training.params import TrialParams

_RANGES = ("initial_lr", "decay_rate", "decay_steps", "warmup_fraction", "pct_start", "decay_fraction",
           "restart_fraction", "power")


def space_from_config(search: SearchConfig) -> dict[str, Any]:
    """The config's search ranges as a JSON-safe space dict."""
    space: dict[str, Any] = {"schedules": list(search.schedules), "decay_shapes": list(search.decay_shapes)}
    for name in _RANGES:
        space[name] = _bounds(getattr(search, name))
    for name in ("t_mul", "m_mul"):
        value = getattr(search, name)
        space[name] = _bounds(value) if isinstance(value, FloatRange) else {"low": value, "high": value}
    if search.min_lr_ratio is not None:
        space["min_lr_ratios"] = min_lr_ratio_choices(search.min_lr_ratio.low, search.min_lr_ratio.high)
    space |= {
        "optimizers": list(search.optimizers) if search.optimizers else None,
        "momentum": _bounds(search.momentum),
        "weight_decay": _bounds(search.weight_decay),
    }
    return space


def _bounds(value: object) -> dict[str, float] | None:
    return None if value is None else {"low": value.low, "high": value.high}


def _uses_momentum(space: dict[str, Any], optimizer: str | None) -> bool:
    return bool(space.get("momentum")) and (optimizer is None or optimizer in MOMENTUM_OPTIMIZERS)


def _family_distribution(space: dict[str, Any], name: str) -> BaseDistribution | None:
    """The distribution of a family parameter, or None where the space does not search it."""
    if name == "decay_shape":
        return CategoricalDistribution(space["decay_shapes"]) if "decay_shapes" in space else None
    if name == "min_lr_ratio":
        return CategoricalDistribution(space["min_lr_ratios"]) if "min_lr_ratios" in space else None
    if name not in space:
        return None
    low, high = space[name]["low"], space[name]["high"]
    return IntDistribution(low, high, log=True) if name == "decay_steps" else FloatDistribution(low, high)


def family_distributions(space: dict[str, Any], schedule: str | None) -> dict[str, BaseDistribution]:
    """The family parameters of ``schedule`` (None: of every schedule the space holds)."""
    dists: dict[str, BaseDistribution] = {}
    for family in [schedule] if schedule is not None else space["schedules"]:
        for name in (*FAMILY_PARAMS[family], *OPTIONAL_PARAMS[family]):
            dist = _family_distribution(space, name)
            if dist is not None:
                dists.setdefault(name, dist)
    return dists


def distributions(space: dict[str, Any], schedule: str | None = None,
                  optimizer: str | None = None) -> dict[str, BaseDistribution]:
    """Optuna distributions of the space; with ``schedule`` (and ``optimizer``), only the ones
    that schedule (and optimizer) uses."""
    dists: dict[str, BaseDistribution] = {
        "initial_lr": FloatDistribution(space["initial_lr"]["low"], space["initial_lr"]["high"], log=True),
        "schedule": CategoricalDistribution(space["schedules"]),
        "warmup_fraction": FloatDistribution(space["warmup_fraction"]["low"], space["warmup_fraction"]["high"]),
    }
    dists |= family_distributions(space, schedule)
    if space.get("optimizers"):
        dists["optimizer"] = CategoricalDistribution(space["optimizers"])
    if _uses_momentum(space, optimizer):
        dists["momentum"] = FloatDistribution(space["momentum"]["low"], space["momentum"]["high"])
    if space.get("weight_decay"):
        dists["weight_decay"] = FloatDistribution(space["weight_decay"]["low"], space["weight_decay"]["high"], log=True)
    return dists


def suggest_params(trial: optuna.Trial, space: dict[str, Any]) -> TrialParams:
    """Ask ``trial`` for one configuration of ``space`` (the optimizer and the schedule first: the
    rest depends on them; the prior's initial_lr draw reads the optimizer)."""
    optimizer = trial.suggest_categorical("optimizer", space["optimizers"]) if space.get("optimizers") else None
    schedule = trial.suggest_categorical("schedule", space["schedules"])
    lr, warmup = space["initial_lr"], space["warmup_fraction"]
    values: dict[str, Any] = {
        "schedule": schedule,
        "initial_lr": trial.suggest_float("initial_lr", lr["low"], lr["high"], log=True),
        "warmup_fraction": trial.suggest_float("warmup_fraction", warmup["low"], warmup["high"]),
    }
    for name, dist in family_distributions(space, schedule).items():
        if isinstance(dist, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, IntDistribution):
            values[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        else:
            values[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    values.update(_optimizer_values(trial, space, optimizer))
    return TrialParams(**values)


def _optimizer_values(trial: optuna.Trial, space: dict[str, Any], optimizer: str | None) -> dict[str, Any]:
    """``optimizer`` (when searched), ``momentum`` (where it has one) and ``weight_decay``, each when searched."""
    values: dict[str, Any] = {} if optimizer is None else {"optimizer": optimizer}
    if _uses_momentum(space, optimizer):  # not searched: the config allows search.momentum only for sgd, rmsprop
        values["momentum"] = trial.suggest_float("momentum", space["momentum"]["low"], space["momentum"]["high"])
    if space.get("weight_decay"):
        decay = space["weight_decay"]
        values["weight_decay"] = trial.suggest_float("weight_decay", decay["low"], decay["high"], log=True)
    return values


def clip_params(params: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """``params`` moved into ``space`` (Optuna runs out-of-range enqueued values with only a
    warning): numbers clipped into their range, a numeric choice to the nearest one."""
    clipped = dict(params)
    for name, dist in distributions(space, params.get("schedule"), params.get("optimizer")).items():
        if name not in clipped:
            continue
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            value = min(max(clipped[name], dist.low), dist.high)
            clipped[name] = int(round(value)) if isinstance(dist, IntDistribution) else float(value)
        elif clipped[name] not in dist.choices and all(isinstance(c, float) for c in dist.choices):
            clipped[name] = min(dist.choices, key=lambda choice: abs(choice - clipped[name]))
    return clipped
