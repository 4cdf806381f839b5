import math

import optuna
import pytest

from sweep.config import SearchConfig
from sweep.search.space import clip_params, distributions, space_from_config, suggest_params

SPACE = space_from_config(SearchConfig())


@pytest.mark.parametrize(
    "fixed, expected",
    [
        ({"schedule": "constant", "initial_lr": 1e-3, "warmup_fraction": 0.0},
         {"schedule": "constant", "initial_lr": 1e-3, "warmup_fraction": 0.0}),
        ({"schedule": "cosine", "initial_lr": 3e-3, "warmup_fraction": 0.1, "decay_rate": 0.9, "decay_steps": 100},
         {"schedule": "cosine", "initial_lr": 3e-3, "warmup_fraction": 0.1}),
        ({"schedule": "step", "initial_lr": 0.1, "warmup_fraction": 0.0, "decay_rate": 0.95, "decay_steps": 95},
         {"schedule": "step", "initial_lr": 0.1, "warmup_fraction": 0.0, "decay_rate": 0.95, "decay_steps": 95}),
        ({"schedule": "exponential", "initial_lr": 1e-4, "warmup_fraction": 0.2, "decay_rate": 0.5, "decay_steps": 50},
         {"schedule": "exponential", "initial_lr": 1e-4, "warmup_fraction": 0.2, "decay_rate": 0.5, "decay_steps": 50}),
    ],
)
def test_suggest_params_is_conditional_on_the_schedule(fixed, expected):
    # Decay parameters exist only for exponential and step (GUIDE §1 names).
    assert suggest_params(optuna.trial.FixedTrial(fixed), SPACE).to_dict() == expected


def test_space_uses_log_scales_where_the_guide_says():
    dists = distributions(SPACE)
    assert dists["initial_lr"].log and dists["decay_steps"].log
    assert not dists["warmup_fraction"].log
    assert set(distributions(SPACE, "cosine")) == {"initial_lr", "schedule", "warmup_fraction"}


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
                           "decay_rate": 0.1, "decay_steps": 10_000.4}, SPACE)
    assert clipped == {"schedule": "step", "initial_lr": 1.0, "warmup_fraction": 0.0,
                       "decay_rate": 0.5, "decay_steps": 5000}
    assert isinstance(clipped["decay_steps"], int) and math.isclose(clip_params({"initial_lr": 1e-9}, SPACE)["initial_lr"], 1e-5)
