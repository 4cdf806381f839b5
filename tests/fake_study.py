"""Fabricated sweep studies for report tests and benchmarks (no training, built with add_trial).

``build_study`` writes a study that looks like one ``sweep run`` leaves behind
(sweep.attrs conventions): the prior's seeded trials first, then sampled ones; some
pruned by the pruner, some diverged at a high LR, a failed trial and its retry,
surplus trials, per-epoch histories and intermediate values, wall-clock times.
The value of a configuration is a smooth function of log10(initial_lr) plus a bonus
per schedule and seeded noise, so the best LR and the schedule ranking are known.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from sweep import attrs
from sweep.config import DEFAULT_SCHEDULES as SCHEDULES, config_from_dict

BEST_LOG_LR = math.log10(3e-3)
SCHEDULE_BONUS = {"constant": 0.0, "exponential": 0.003, "step": 0.004, "cosine": 0.012, "linear": 0.008}
DIVERGE_LR = 0.3
SUGGESTION = 1e-3
T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def config_dict(name: str, epochs: int, metric: str = "val_accuracy", **study: object) -> dict:
    return config_from_dict({
        "study": {"name": name, "n_trials": 40, "metric": metric, **study},
        "data": {"source": "synthetic", "limit": 400, "validation_fraction": 0.2},
        "model": {"filters": [8], "dense_units": 32, "dropout": 0.0},
        "train": {"epochs": epochs, "batch_size": 32},
    }).to_dict()


def distributions(low: float = 1e-5, high: float = 1.0) -> dict:
    return {
        "initial_lr": FloatDistribution(low, high, log=True),
        "schedule": CategoricalDistribution(SCHEDULES),
        "warmup_fraction": FloatDistribution(0.0, 0.3),
        "decay_rate": FloatDistribution(0.5, 0.99),
        "decay_steps": IntDistribution(50, 5000, log=True),
    }


def accuracy(params: dict, epoch: int, epochs: int, rng: np.random.Generator) -> float:
    """Validation accuracy of ``params`` after ``epoch`` of ``epochs``."""
    peak = 0.87 - 0.03 * (math.log10(params["initial_lr"]) - BEST_LOG_LR) ** 2 + SCHEDULE_BONUS[params["schedule"]]
    return float(np.clip(peak - 0.08 * (1 - epoch / epochs) ** 2 + rng.normal(0, 0.002), 0.05, 0.99))


def lr_finder_result() -> dict:
    lrs = np.geomspace(1e-7, 10, 120)
    losses = 2.3 - 1.2 / (1 + np.exp(-(np.log10(lrs) + 4))) + np.exp(np.log10(lrs) + 0.5).clip(max=8)
    return {"method": "valley", "suggestion": SUGGESTION, "lower": 1e-4, "upper": 0.1,
            "lrs": lrs.tolist(), "losses": losses.tolist(), "seconds": 4.2}


def build_study(
    n_trials: int = 40,
    *,
    storage: str | None = None,
    name: str = "fake",
    epochs: int = 4,
    seed: int = 0,
    metric: str = "val_accuracy",
    running: bool = False,
    title: str | None = None,
) -> optuna.Study:
    """A finished study of ``n_trials`` finished trials (plus a failed one, its retry and 2 surplus)."""
    rng = np.random.default_rng(seed)
    direction = "maximize" if metric == "val_accuracy" else "minimize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=name, direction=direction)
    config = config_dict(name, epochs, metric)
    if title is not None:  # for escaping tests: a string that ends up in the page
        config["data"]["path"] = title
    search_space = {"initial_lr": {"low": 1e-5, "high": 1.0}, "schedules": list(SCHEDULES),
                    "decay_rate": {"low": 0.5, "high": 0.99}, "decay_steps": {"low": 50, "high": 5000},
                    "warmup_fraction": {"low": 0.0, "high": 0.3}}
    seeded = [SUGGESTION / 3, SUGGESTION, SUGGESTION * 3]
    for key, value in {
        attrs.CONFIG: config, attrs.SEARCH_SPACE: search_space, attrs.LR_FINDER: lr_finder_result(),
        attrs.PRIOR: {"method": "valley", "suggestion": SUGGESTION, "upper": 0.1, "config_range": [1e-5, 1.0],
                      "narrowed_range": [1e-5, 1.0], "seeded": seeded, "sigma_decades": 0.5},
        attrs.VERSIONS: {"python": "3.12", "sweep": "0.1.0", "optuna": optuna.__version__},
        attrs.N_TRIALS: n_trials, attrs.NUM_TRAIN: 320,
    }.items():
        study.set_user_attr(key, value)

    dists = distributions()
    clock = T0
    trials = []
    for number in range(n_trials + 3):
        if number < len(seeded):
            params = {"initial_lr": seeded[number], "schedule": "constant", "warmup_fraction": 0.0}
        else:
            schedule = SCHEDULES[rng.integers(len(SCHEDULES))]
            params = {"initial_lr": float(10 ** rng.uniform(-5, 0)), "schedule": schedule,
                      "warmup_fraction": float(rng.uniform(0, 0.3))}
            if schedule in ("exponential", "step"):
                params |= {"decay_rate": float(rng.uniform(0.5, 0.99)),
                           "decay_steps": int(round(10 ** rng.uniform(math.log10(50), math.log10(5000))))}
        state, reason, run = TrialState.COMPLETE, None, epochs
        if number == 5:
            state, run = TrialState.FAIL, 1  # crashed; trial 6 retries it
        elif number > n_trials:
            state, run = TrialState.FAIL, 0  # surplus: never trained
        elif params["initial_lr"] > DIVERGE_LR:
            state, reason, run = TrialState.PRUNED, "diverged", 1
        elif number > 8 and accuracy(params, 2, epochs, np.random.default_rng(number)) < 0.78:
            state, reason, run = TrialState.PRUNED, "pruned", min(2, epochs)
        if running and number == n_trials:
            state, run = TrialState.RUNNING, 1
        history, curve = [], {}
        curve_rng = np.random.default_rng(number)
        for epoch in range(1, run + 1):
            acc = 0.1 if reason == "diverged" else accuracy(params, epoch, epochs, curve_rng)
            val_loss = float("nan") if reason == "diverged" else 2.5 * (1 - acc)
            history.append({"epoch": epoch, "loss": val_loss, "val_loss": val_loss, "val_accuracy": acc,
                            "lr": params["initial_lr"], "seconds": 3.0})
            curve[epoch] = acc if metric == "val_accuracy" else val_loss
        finite = [v for v in curve.values() if math.isfinite(v)]
        value = None
        if state == TrialState.COMPLETE:
            value = max(finite) if direction == "maximize" else min(finite)
        elif state == TrialState.PRUNED and finite:
            value = finite[-1]
        user_attrs = {attrs.HISTORY: history, attrs.EPOCHS_RUN: run, attrs.SECONDS: 3.0 * run,
                      attrs.SEED: seed * 1000 + number, attrs.TOTAL_STEPS: 10 * epochs, attrs.WORKER: "host:1"}
        if reason:
            user_attrs[attrs.PRUNE_REASON] = reason
        if number < len(seeded):
            user_attrs[attrs.SEEDED_BY_PRIOR] = True
        if number > n_trials:
            user_attrs = {attrs.SURPLUS: True, attrs.WORKER: "host:2"}
            curve = {}
        system_attrs = {"failed_trial": 5} if number == 6 else {}
        if number == 6:
            user_attrs[attrs.RESUMED_FROM_EPOCH] = 1
        trial = create_trial(state=state, value=value, params=params,
                             distributions={k: dists[k] for k in params}, user_attrs=user_attrs,
                             system_attrs=system_attrs, intermediate_values=curve)
        trial.datetime_start = clock
        clock += dt.timedelta(seconds=3.0 * run + 1.0)
        trial.datetime_complete = None if state == TrialState.RUNNING else clock
        trials.append(trial)
    study.add_trials(trials)
    return study
