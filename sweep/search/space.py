"""The search space: the config's ``search`` section as Optuna distributions, and back.

A space is a plain dict (stored in the study as ``attrs.SEARCH_SPACE``, so that a
resumed study, a report or another machine uses exactly the ranges the study was
created with, including the prior's narrowed ``initial_lr``)::

    {"initial_lr": {"low", "high"}, "schedules": [...], "decay_rate": {"low", "high"},
     "decay_steps": {"low", "high"}, "warmup_fraction": {"low", "high"}}

The space is conditional: ``decay_rate`` and ``decay_steps`` exist only for the
exponential and step schedules (GUIDE §1 names). With ``search.optimizers`` the optimizer
is a categorical (``optimizer``, sampled first), ``momentum`` exists only for the
optimizers that have one (``MOMENTUM_OPTIMIZERS``) and ``weight_decay`` (log scale) for
all, each only when its range is given. ``optimizers``, ``momentum`` and
``weight_decay`` are null in the space when not searched.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from sweep.config import DECAY_SCHEDULES, MOMENTUM_OPTIMIZERS, SearchConfig
from sweep.training.params import TrialParams


def space_from_config(search: SearchConfig) -> dict[str, Any]:
    """The config's search ranges as a JSON-safe space dict."""
    return {
        "initial_lr": {"low": search.initial_lr.low, "high": search.initial_lr.high},
        "schedules": list(search.schedules),
        "decay_rate": {"low": search.decay_rate.low, "high": search.decay_rate.high},
        "decay_steps": {"low": search.decay_steps.low, "high": search.decay_steps.high},
        "warmup_fraction": {"low": search.warmup_fraction.low, "high": search.warmup_fraction.high},
        "optimizers": list(search.optimizers) if search.optimizers else None,
        "momentum": _bounds(search.momentum),
        "weight_decay": _bounds(search.weight_decay),
    }


def _bounds(value: object) -> dict[str, float] | None:
    return None if value is None else {"low": value.low, "high": value.high}


def _uses_momentum(space: dict[str, Any], optimizer: str | None) -> bool:
    return bool(space.get("momentum")) and (optimizer is None or optimizer in MOMENTUM_OPTIMIZERS)


def distributions(space: dict[str, Any], schedule: str | None = None,
                  optimizer: str | None = None) -> dict[str, BaseDistribution]:
    """Optuna distributions of the space; with ``schedule`` (and ``optimizer``), only the ones
    that schedule (and optimizer) uses."""
    dists: dict[str, BaseDistribution] = {
        "initial_lr": FloatDistribution(space["initial_lr"]["low"], space["initial_lr"]["high"], log=True),
        "schedule": CategoricalDistribution(space["schedules"]),
        "warmup_fraction": FloatDistribution(space["warmup_fraction"]["low"], space["warmup_fraction"]["high"]),
    }
    if schedule is None or schedule in DECAY_SCHEDULES:
        dists["decay_rate"] = FloatDistribution(space["decay_rate"]["low"], space["decay_rate"]["high"])
        dists["decay_steps"] = IntDistribution(space["decay_steps"]["low"], space["decay_steps"]["high"], log=True)
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
    if schedule in DECAY_SCHEDULES:
        rate, steps = space["decay_rate"], space["decay_steps"]
        values["decay_rate"] = trial.suggest_float("decay_rate", rate["low"], rate["high"])
        values["decay_steps"] = trial.suggest_int("decay_steps", steps["low"], steps["high"], log=True)
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
    """``params`` moved into ``space`` (Optuna runs out-of-range enqueued values with only a warning)."""
    clipped = dict(params)
    for name, dist in distributions(space, params.get("schedule"), params.get("optimizer")).items():
        if name not in clipped:
            continue
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            value = min(max(clipped[name], dist.low), dist.high)
            clipped[name] = int(round(value)) if isinstance(dist, IntDistribution) else float(value)
    return clipped
