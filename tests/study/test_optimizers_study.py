"""search.optimizers: one range test per searched optimizer, a prior and seed trials for each,
the optimizer a searched categorical with its conditional momentum and weight decay."""

import optuna
import pytest

from sweep import attrs
from sweep.config import config_from_dict
from sweep.search.prior import build_sampler, plan_prior
from sweep.search.space import clip_params, distributions, space_from_config, suggest_params
from sweep.storage.records import study_attrs
from sweep.study.setup import open_study


def searched(**search):
    return config_from_dict({
        "study": {"name": "opts", "n_trials": 2, "seed": 0},
        "data": {"source": "synthetic", "limit": 300, "validation_fraction": 0.2},
        "model": {"filters": [4], "dense_units": 16, "dropout": 0.0},
        "train": {"epochs": 1, "batch_size": 32, "optimizer_args": {"nesterov": True}},
        "search": {"optimizers": ["sgd", "adamw"], "momentum": {"low": 0.8, "high": 0.99},
                   "weight_decay": {"low": 1e-5, "high": 1e-2}, **search},
        "lr_finder": {"num_steps": 20, "seed_trials": 2},
    })


def test_the_optimizer_is_a_categorical_with_momentum_only_where_it_applies():
    space = space_from_config(searched().search)
    sgd = suggest_params(optuna.trial.FixedTrial({"optimizer": "sgd", "schedule": "constant", "initial_lr": 0.1,
                                                  "warmup_fraction": 0.0, "momentum": 0.9, "weight_decay": 1e-4}),
                         space)
    assert (sgd.optimizer, sgd.momentum, sgd.weight_decay) == ("sgd", 0.9, 1e-4)
    adamw = suggest_params(optuna.trial.FixedTrial({"optimizer": "adamw", "schedule": "constant", "initial_lr": 1e-3,
                                                    "warmup_fraction": 0.0, "weight_decay": 1e-3}), space)
    assert adamw.momentum is None and set(adamw.to_dict()) == {"optimizer", "schedule", "initial_lr",
                                                               "warmup_fraction", "weight_decay"}
    assert set(distributions(space, "constant", "adamw")) == {"initial_lr", "schedule", "warmup_fraction", "optimizer",
                                                            "weight_decay"}
    assert distributions(space, "constant", "sgd")["weight_decay"].log
    assert clip_params({"optimizer": "sgd", "momentum": 2.0, "schedule": "constant", "initial_lr": 1.0,
                        "warmup_fraction": 0.0}, space)["momentum"] == 0.99


def test_search_momentum_needs_an_optimizer_that_has_one():
    with pytest.raises(Exception, match="search.momentum applies to sgd and rmsprop; the study trains adamw, lion"):
        searched(optimizers=["adamw", "lion"])


def test_the_prior_is_per_optimizer():
    config = searched()
    results = {"sgd": {"suggestion": 0.1, "upper": 2.0, "method": "steep", "optimizer": "sgd"},
               "adamw": {"suggestion": 1e-3, "upper": 0.05, "method": "steep", "optimizer": "adamw"}}
    space, prior, seeds = plan_prior(config, space_from_config(config.search), results)
    assert prior["optimizers"]["sgd"]["narrowed_range"] == pytest.approx([0.01, 1.0])
    assert prior["optimizers"]["adamw"]["narrowed_range"] == pytest.approx([1e-4, 0.01])
    assert (space["initial_lr"]["low"], space["initial_lr"]["high"]) == pytest.approx((1e-4, 1.0))  # the union
    assert [(s["optimizer"], round(s["initial_lr"], 6)) for s in seeds] == [
        ("sgd", round(0.1 / 3, 6)), ("sgd", 0.1), ("adamw", round(1e-3 / 3, 6)), ("adamw", 0.001)]
    # The startup draws are centred on each optimizer's own suggestion, inside its own range.
    sampler = build_sampler(config, prior, seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    drawn = {"sgd": [], "adamw": []}
    for _ in range(40):
        trial = study.ask()
        name = trial.suggest_categorical("optimizer", ["sgd", "adamw"])
        drawn[name].append(trial.suggest_float("initial_lr", space["initial_lr"]["low"], space["initial_lr"]["high"],
                                               log=True))
    assert drawn["sgd"] and min(drawn["sgd"]) >= 0.01 and drawn["adamw"] and max(drawn["adamw"]) <= 0.01


def test_a_study_searching_two_optimizers_runs_a_range_test_for_each_and_seeds_each(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = open_study(searched(), f"sqlite:///{tmp_path}/s.db")
    records = study_attrs(study)
    tests = records[attrs.LR_FINDERS]
    assert sorted(tests) == ["adamw", "sgd"] and all(t["optimizer"] == name for name, t in tests.items())
    assert {t["artifact"] for t in tests.values()} == {"lr_finder_sgd.json", "lr_finder_adamw.json"}
    assert records[attrs.LR_FINDER]["optimizer"] == "sgd"
    assert sorted(records[attrs.PRIOR]["optimizers"]) == ["adamw", "sgd"]
    queued = [t.system_attrs["fixed_params"] for t in study.get_trials(states=(optuna.trial.TrialState.WAITING,))]
    assert [p["optimizer"] for p in queued] == ["sgd", "sgd", "adamw", "adamw"]
