import math

import optuna
import pytest

from sweep.config import FAMILY_PARAMS, SCHEDULES, FloatRange, SearchConfig
from sweep.search.space import clip_params, distributions, space_from_config, suggest_params

SPACE = space_from_config(SearchConfig())
ALL = space_from_config(SearchConfig(schedules=list(SCHEDULES)))


@pytest.mark.parametrize(
    "fixed, expected",
    [
        ({"schedule": "constant", "initial_lr": 1e-3, "warmup_fraction": 0.0},
         {"schedule": "constant", "initial_lr": 1e-3, "warmup_fraction": 0.0}),
        ({"schedule": "cosine", "initial_lr": 3e-3, "warmup_fraction": 0.1, "decay_rate": 0.9, "decay_steps": 100,
          "min_lr_ratio": 0.01, "pct_start": 0.3},
         {"schedule": "cosine", "initial_lr": 3e-3, "warmup_fraction": 0.1, "min_lr_ratio": 0.01}),
        ({"schedule": "step", "initial_lr": 0.1, "warmup_fraction": 0.0, "decay_rate": 0.95, "decay_steps": 95,
          "min_lr_ratio": 0.0},
         {"schedule": "step", "initial_lr": 0.1, "warmup_fraction": 0.0, "decay_rate": 0.95, "decay_steps": 95,
          "min_lr_ratio": 0.0}),
        ({"schedule": "one_cycle", "initial_lr": 1e-2, "warmup_fraction": 0.0, "pct_start": 0.25, "power": 2.0,
          "min_lr_ratio": 0.1, "decay_steps": 95},
         {"schedule": "one_cycle", "initial_lr": 1e-2, "warmup_fraction": 0.0, "pct_start": 0.25, "min_lr_ratio": 0.1}),
        ({"schedule": "wsd", "initial_lr": 1e-2, "warmup_fraction": 0.05, "decay_fraction": 0.2, "decay_shape": "sqrt",
          "min_lr_ratio": 0.0, "pct_start": 0.3},
         {"schedule": "wsd", "initial_lr": 1e-2, "warmup_fraction": 0.05, "decay_fraction": 0.2, "decay_shape": "sqrt",
          "min_lr_ratio": 0.0}),
        ({"schedule": "cosine_restarts", "initial_lr": 1e-2, "warmup_fraction": 0.0, "restart_fraction": 0.2,
          "t_mul": 2.0, "m_mul": 1.0, "min_lr_ratio": 0.00316, "power": 1.0},
         {"schedule": "cosine_restarts", "initial_lr": 1e-2, "warmup_fraction": 0.0, "restart_fraction": 0.2,
          "t_mul": 2.0, "m_mul": 1.0, "min_lr_ratio": 0.00316}),
        ({"schedule": "polynomial", "initial_lr": 1e-2, "warmup_fraction": 0.0, "power": 2.5, "min_lr_ratio": 0.001,
          "decay_fraction": 0.2},
         {"schedule": "polynomial", "initial_lr": 1e-2, "warmup_fraction": 0.0, "power": 2.5, "min_lr_ratio": 0.001}),
    ],
)
def test_suggest_params_is_conditional_on_the_schedule(fixed, expected):
    # Each family's parameters exist only in its trials (GUIDE §1 names); the extras given are ignored.
    assert suggest_params(optuna.trial.FixedTrial(fixed), ALL).to_dict() == expected


def test_every_family_samples_exactly_its_own_parameters():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(120):
        trial = study.ask()
        params = suggest_params(trial, ALL)
        study.tell(trial, 0.0)
        extra = set(trial.params) - {"schedule", "initial_lr", "warmup_fraction"}
        floor = set() if params.schedule == "constant" else {"min_lr_ratio"}
        restarts = {"t_mul", "m_mul"} if params.schedule == "cosine_restarts" else set()
        assert extra == set(FAMILY_PARAMS[params.schedule]) | floor | restarts
        seen.add(params.schedule)
        if params.schedule == "cosine_restarts":  # fixed in the config: recorded, never varied
            assert (params.t_mul, params.m_mul) == (2.0, 1.0)
    assert seen == set(SCHEDULES)


def test_min_lr_ratio_is_a_log_grid_with_zero_and_t_mul_can_be_searched():
    assert distributions(ALL, "cosine")["min_lr_ratio"].choices == (0.0, 0.001, 0.00316, 0.01, 0.0316, 0.1)
    searched = space_from_config(SearchConfig(schedules=["cosine_restarts"], t_mul=FloatRange(low=1.0, high=3.0),
                                              min_lr_ratio=None))
    dists = distributions(searched, "cosine_restarts")
    assert (dists["t_mul"].low, dists["t_mul"].high) == (1.0, 3.0) and "min_lr_ratio" not in dists


def test_a_stored_space_from_before_the_families_still_samples():
    old = {"initial_lr": {"low": 1e-5, "high": 1.0}, "schedules": ["constant", "cosine", "step"],
           "decay_rate": {"low": 0.5, "high": 0.99}, "decay_steps": {"low": 50, "high": 5000},
           "warmup_fraction": {"low": 0.0, "high": 0.3}}
    assert set(distributions(old)) == {"initial_lr", "schedule", "warmup_fraction", "decay_rate", "decay_steps"}
    params = suggest_params(optuna.trial.FixedTrial({"schedule": "cosine", "initial_lr": 0.01, "warmup_fraction": 0.0}),
                            old)
    assert params.min_lr_ratio is None


def test_space_uses_log_scales_where_the_guide_says():
    dists = distributions(SPACE)
    assert dists["initial_lr"].log and dists["decay_steps"].log
    assert not dists["warmup_fraction"].log
    assert set(distributions(SPACE, "cosine")) == {"initial_lr", "schedule", "warmup_fraction", "min_lr_ratio"}
    assert "pct_start" not in distributions(SPACE)  # one_cycle is not among the default schedules


def test_sampled_trials_stay_inside_a_narrowed_space():
    space = {**SPACE, "initial_lr": {"low": 2e-4, "high": 2e-2}, "schedules": ["cosine", "step"]}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        trial = study.ask()
        params = suggest_params(trial, space)
        study.tell(trial, 0.0)
        assert 2e-4 <= params.initial_lr <= 2e-2 and params.schedule in ("cosine", "step")
        assert (params.decay_steps is not None) == (params.schedule == "step")


def test_clip_params_moves_values_into_range():
    clipped = clip_params({"schedule": "step", "initial_lr": 5.0, "warmup_fraction": -1.0,
                           "decay_rate": 0.1, "decay_steps": 10_000.4, "min_lr_ratio": 0.025}, SPACE)
    assert clipped == {"schedule": "step", "initial_lr": 1.0, "warmup_fraction": 0.0,
                       "decay_rate": 0.5, "decay_steps": 5000, "min_lr_ratio": 0.0316}
    assert isinstance(clipped["decay_steps"], int) and math.isclose(clip_params({"initial_lr": 1e-9}, SPACE)["initial_lr"], 1e-5)
