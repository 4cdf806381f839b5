import math
import warnings

import numpy as np
import optuna
import pytest

from sweep.config import SearchConfig, config_from_dict
from sweep.search.prior import (
    SIGMA_DECADES,
    PriorWeightedSampler,
    build_sampler,
    narrowed_range,
    plan_prior,
    seed_lrs,
)
from sweep.search.space import space_from_config
from sweep.training.params import TrialParams

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "initial_lr": {"low": 1e-5, "high": 1.0},
    "schedules": ["constant", "exponential", "step", "cosine", "linear"],
    "decay_rate": {"low": 0.5, "high": 0.99},
    "decay_steps": {"low": 50, "high": 5000},
    "warmup_fraction": {"low": 0.0, "high": 0.3},
}


def _config(**finder):
    return config_from_dict({"lr_finder": finder})


def _lr_result(suggestion, upper=10.0):
    return {"method": "steep", "suggestion": suggestion, "lower": suggestion / 30, "upper": upper,
            "lrs": [], "losses": [], "seconds": 1.0}


# --- narrowing and seeds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suggestion", "upper", "low", "high", "expected"),
    [
        (1e-3, 10.0, 1e-5, 1.0, (1e-4, 1e-2)),  # [s/10, 10 s]
        (1e-3, 5e-3, 1e-5, 1.0, (1e-4, 5e-3)),  # divergence below 10 s caps it
        (1e-3, 10.0, 3e-4, 3e-3, (3e-4, 3e-3)),  # clipped into the config's range
        (2e-5, 10.0, 1e-5, 1.0, (1e-5, 2e-4)),  # s/10 below the config's low end
        (1e-3, 1e-5, 1e-5, 1.0, (1e-4, 1e-2)),  # an upper bound below s/10 is ignored
        (100.0, 1e3, 1e-5, 1.0, (1e-5, 1.0)),  # nothing left: the config's range is kept
    ],
)
def test_narrowed_range(suggestion, upper, low, high, expected):
    assert narrowed_range(suggestion, upper, low, high) == pytest.approx(expected)


def test_seed_lrs_are_a_third_of_s_s_and_three_s_clipped_first_k():
    assert seed_lrs(1e-3, 1e-5, 1.0, 3) == pytest.approx([1e-3 / 3, 1e-3, 3e-3])
    assert seed_lrs(1e-3, 1e-5, 1.0, 2) == pytest.approx([1e-3 / 3, 1e-3])
    assert seed_lrs(1e-3, 5e-4, 2e-3, 3) == pytest.approx([5e-4, 1e-3, 2e-3])
    assert seed_lrs(1e-3, 1e-5, 1.0, 0) == []
    assert seed_lrs(1.0, 1e-5, 0.1, 3) == pytest.approx([0.1])  # clipped onto one value: once


def test_plan_prior_narrows_seeds_and_records():
    space, record, seeds = plan_prior(_config(), SPACE, _lr_result(1e-3, upper=5e-3))
    assert space["initial_lr"] == pytest.approx({"low": 1e-4, "high": 5e-3})
    assert SPACE["initial_lr"] == {"low": 1e-5, "high": 1.0}  # the input is not modified
    assert {k: v for k, v in space.items() if k != "initial_lr"} == {k: v for k, v in SPACE.items() if k != "initial_lr"}
    assert [s["initial_lr"] for s in seeds] == pytest.approx([1e-3 / 3, 1e-3, 3e-3])
    assert all(s["schedule"] == "cosine" and s["warmup_fraction"] == 0.0 and len(s) == 3 for s in seeds)
    assert record["suggestion"] == 1e-3 and record["sigma_decades"] == SIGMA_DECADES
    assert record["config_range"] == [1e-5, 1.0]
    assert record["narrowed_range"] == pytest.approx([1e-4, 5e-3])
    assert record["seeded"] == pytest.approx([1e-3 / 3, 1e-3, 3e-3])


def test_plan_prior_without_narrowing_keeps_the_range_but_seeds():
    space, record, seeds = plan_prior(_config(narrow=False, seed_trials=1), SPACE, _lr_result(1e-3))
    assert space == SPACE
    assert record["narrowed_range"] == [1e-5, 1.0]
    assert [s["initial_lr"] for s in seeds] == pytest.approx([1e-3 / 3])


@pytest.mark.parametrize("config", [_config(enabled=False), _config()])
def test_plan_prior_disabled_or_without_result_changes_nothing(config):
    result = None if config.lr_finder.enabled else _lr_result(1e-3)
    space, record, seeds = plan_prior(config, SPACE, result)
    assert (space, record, seeds) == (SPACE, None, [])


def test_seed_params_fall_back_to_an_allowed_schedule_with_decay_defaults_in_range():
    space = dict(SPACE, schedules=["step", "exponential"], warmup_fraction={"low": 0.05, "high": 0.2})
    _, _, seeds = plan_prior(_config(seed_trials=1), space, _lr_result(1e-3))
    (seed,) = seeds
    assert seed["schedule"] == "exponential" and seed["warmup_fraction"] == 0.05
    assert 0.5 <= seed["decay_rate"] <= 0.99 and 50 <= seed["decay_steps"] <= 5000
    assert isinstance(seed["decay_steps"], int)
    _, _, (cosine,) = plan_prior(_config(seed_trials=1), dict(SPACE, schedules=["linear", "cosine"]), _lr_result(1e-3))
    assert cosine["schedule"] == "cosine" and "decay_rate" not in cosine


def test_seed_schedule_is_used_when_the_search_allows_it_and_falls_back_otherwise():
    _, _, seeds = plan_prior(_config(seed_schedule="cosine"), SPACE, _lr_result(1e-3))
    assert [s["schedule"] for s in seeds] == ["cosine"] * 3
    assert all(s["warmup_fraction"] == 0.0 and "decay_rate" not in s for s in seeds)
    _, _, (step,) = plan_prior(_config(seed_schedule="step", seed_trials=1), SPACE, _lr_result(1e-3))
    assert step["schedule"] == "step" and 0.5 <= step["decay_rate"] <= 0.99
    _, _, (fallback,) = plan_prior(
        _config(seed_schedule="cosine", seed_trials=1), dict(SPACE, schedules=["constant", "linear"]), _lr_result(1e-3)
    )
    assert fallback["schedule"] == "linear"


# --- the prior-weighted sampler ------------------------------------------------------------


def _startup_draws(sampler, n=300, low=1e-5, high=1.0):
    """initial_lr of n trials asked and never told: all in the startup phase."""
    study = optuna.create_study(sampler=sampler)
    return np.array([study.ask().suggest_float("initial_lr", low, high, log=True) for _ in range(n)])


def _prior_sampler(seed, suggestion=1e-3):
    return build_sampler(_config(), {"suggestion": suggestion, "sigma_decades": 0.5}, seed=seed)


def test_startup_draws_are_log_normal_around_the_suggestion():
    logs = np.log10(_startup_draws(_prior_sampler(0)))
    assert np.median(logs) == pytest.approx(-3.0, abs=0.1)
    assert np.std(logs) == pytest.approx(0.5, abs=0.07)
    # Plain TPE's startup is log-uniform over five decades: median -2.5, std 1.44.
    assert np.std(np.log10(_startup_draws(build_sampler(_config(), None, seed=0)))) > 1.2


def test_startup_draws_stay_inside_a_range_that_cuts_the_prior():
    draws = _startup_draws(_prior_sampler(1), n=200, low=8e-4, high=5e-3)
    assert draws.min() >= 8e-4 and draws.max() <= 5e-3
    assert np.median(draws) < 2e-3  # truncated, still weighted towards s = 1e-3


def test_startup_draws_are_reproducible_per_seed():
    first, again, other = (_startup_draws(_prior_sampler(s), n=20) for s in (7, 7, 8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_restarted_worker_does_not_repeat_earlier_startup_draws():
    study = optuna.create_study(sampler=_prior_sampler(4))
    first = [study.ask().suggest_float("initial_lr", 1e-5, 1.0, log=True) for _ in range(3)]
    study.sampler = _prior_sampler(4)  # the same seed, as after a resume
    later = [study.ask().suggest_float("initial_lr", 1e-5, 1.0, log=True) for _ in range(3)]
    assert not set(first) & set(later)


def test_after_startup_the_base_sampler_decides():
    """With the startup trials done, the wrapper samples exactly what TPE alone would."""
    dists = {
        "initial_lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True),
        "schedule": optuna.distributions.CategoricalDistribution(["constant", "cosine"]),
    }
    rng = np.random.default_rng(0)
    history = [
        optuna.trial.create_trial(
            params={"initial_lr": float(10 ** rng.uniform(-5, 0)), "schedule": str(rng.choice(["constant", "cosine"]))},
            distributions=dists, value=float(rng.random()),
        )
        for _ in range(10)
    ]

    def next_params(sampler):
        study = optuna.create_study(sampler=sampler)
        study.add_trials(history)
        trial = study.ask()
        return trial.suggest_float("initial_lr", 1e-5, 1.0, log=True), trial.suggest_categorical("schedule", ["constant", "cosine"])

    plain = build_sampler(_config(), None, seed=3)
    wrapped = build_sampler(_config(), {"suggestion": 1e-3}, seed=3)
    assert isinstance(wrapped, PriorWeightedSampler) and not isinstance(plain, PriorWeightedSampler)
    assert next_params(wrapped) == next_params(plain)


def test_prior_shapes_only_the_startup_trials_of_a_conditional_study():
    sampler = build_sampler(_config(), {"suggestion": 1e-2, "startup_trials": 6}, seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")

    def objective(trial):
        lr = trial.suggest_float("initial_lr", 1e-5, 1.0, log=True)
        if trial.suggest_categorical("schedule", ["constant", "step"]) == "step":
            trial.suggest_float("decay_rate", 0.5, 0.99)
        return -abs(math.log10(lr) + 4.0)  # the best LR is 1e-4, far from the prior's 1e-2

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no experimental-feature noise from group=True
        study.optimize(objective, n_trials=30)
    lrs = np.log10([t.params["initial_lr"] for t in study.trials])
    assert np.all(np.abs(lrs[:6] + 2.0) < 2.0)  # startup: around the prior (4 sigma)
    assert np.median(lrs[-10:]) < -3.0  # TPE then moves towards the real optimum


def test_build_sampler_kinds():
    assert isinstance(build_sampler(config_from_dict({"study": {"sampler": "random"}}), None, seed=0),
                      optuna.samplers.RandomSampler)
    wrapped = build_sampler(_config(), {"suggestion": 1e-3}, seed=0)
    assert isinstance(wrapped.base, optuna.samplers.TPESampler)
    with pytest.raises(ValueError, match="suggestion"):
        PriorWeightedSampler(optuna.samplers.RandomSampler(), suggestion=0.0)


def test_seed_trials_of_the_new_families_use_the_usual_recipe_at_the_suggested_peak():
    families = space_from_config(SearchConfig(schedules=["one_cycle", "wsd", "cosine_restarts", "polynomial"]))
    _, _, seeds = plan_prior(_config(seed_trials=2), families, _lr_result(1e-3))
    assert [s["schedule"] for s in seeds] == ["one_cycle"] * 2  # cosine absent: fastai's pairing
    assert seeds[1] == {"initial_lr": pytest.approx(1e-3), "schedule": "one_cycle", "warmup_fraction": 0.0,
                        "pct_start": 0.3, "min_lr_ratio": 0.0}
    for schedule, expected in [("wsd", {"decay_fraction": 0.2, "decay_shape": "sqrt", "min_lr_ratio": 0.0}),
                               ("cosine_restarts", {"restart_fraction": 0.3, "t_mul": 2.0, "m_mul": 1.0,
                                                    "min_lr_ratio": 0.0}),
                               ("polynomial", {"power": 1.0, "min_lr_ratio": 0.0})]:
        _, _, (seed,) = plan_prior(_config(seed_schedule=schedule, seed_trials=1), families, _lr_result(1e-3))
        assert {k: v for k, v in seed.items() if k not in ("initial_lr", "schedule", "warmup_fraction")} == expected
        TrialParams(**seed)  # a valid trial
