import optuna
import pytest

from sweep import attrs
from sweep.training.data import load_dataset
from sweep.search.objective import Objective, build_pruner, trial_seed
from sweep.search.space import space_from_config


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def _objective(config, tmp_path):
    return Objective(config, load_dataset(config.data, 0), space_from_config(config.search), tmp_path, "host:1")


def test_a_trial_records_its_value_history_and_seed(tiny_config, tmp_path):
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"schedule": "constant", "initial_lr": 3e-3, "warmup_fraction": 0.0})
    study.optimize(_objective(tiny_config, tmp_path), n_trials=1)
    trial = study.trials[0]
    history = trial.user_attrs[attrs.HISTORY]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == max(e["val_accuracy"] for e in history)
    assert trial.intermediate_values == {e["epoch"]: e["val_accuracy"] for e in history}
    assert trial.user_attrs[attrs.EPOCHS_RUN] == tiny_config.train.epochs == len(history)
    assert trial.user_attrs[attrs.SEED] == trial_seed(tiny_config.study.seed, 0)
    assert trial.user_attrs[attrs.WORKER] == "host:1"
    assert not any(tmp_path.iterdir()), "checkpoints are removed when the trial finishes"


def test_a_diverging_trial_is_pruned_with_its_reason(tiny_config, tmp_path):
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"schedule": "constant", "initial_lr": 1.0, "warmup_fraction": 0.0})
    study.optimize(_objective(tiny_config, tmp_path), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs[attrs.PRUNE_REASON] == "diverged"


def test_the_pruner_stops_a_trial_after_an_epoch(tiny_config, tmp_path):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    study.enqueue_trial({"schedule": "constant", "initial_lr": 1e-3, "warmup_fraction": 0.0})  # never diverges
    study.optimize(_objective(config, tmp_path), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs[attrs.PRUNE_REASON] == "pruned"
    assert trial.user_attrs[attrs.EPOCHS_RUN] == 1 and list(trial.intermediate_values) == [1]


@pytest.mark.parametrize("name, kind", [("median", optuna.pruners.MedianPruner),
                                        ("hyperband", optuna.pruners.HyperbandPruner),
                                        ("none", optuna.pruners.NopPruner)])
def test_build_pruner(tiny_config, name, kind):
    study_config = tiny_config.study.model_copy(update={"pruner": name})
    assert isinstance(build_pruner(study_config, 10), kind)


def test_trial_seeds_differ_between_trials_and_studies():
    seeds = {trial_seed(s, n) for s in range(3) for n in range(100)}
    assert len(seeds) == 300 and all(0 <= s < 2**31 for s in seeds)


def test_median_pruning_never_judges_a_trial_on_its_first_epoch(tiny_config):
    pruner = build_pruner(tiny_config.study, 4)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for value in (0.9, 0.9, 0.9, 0.9, 0.9):
        study.add_trial(optuna.trial.create_trial(value=value, intermediate_values={1: value, 2: value}))
    trial = study.ask()
    trial.report(0.1, 1)
    assert not trial.should_prune()
    trial.report(0.1, 2)
    assert trial.should_prune()


@pytest.mark.parametrize("objective", ["best", "last", "mean_last3"])
def test_the_trial_value_follows_study_objective_and_the_history_keeps_every_epoch(tiny_config, tmp_path, objective):
    config = tiny_config.model_copy(update={
        "train": tiny_config.train.model_copy(update={"epochs": 4}),
        "study": tiny_config.study.model_copy(update={"objective": objective})})
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"schedule": "constant", "initial_lr": 3e-3, "warmup_fraction": 0.0})
    study.optimize(_objective(config, tmp_path), n_trials=1)
    trial = study.trials[0]
    scores = [e["val_accuracy"] for e in trial.user_attrs[attrs.HISTORY]]
    assert len(scores) == 4
    expected = {"best": max(scores), "last": scores[-1], "mean_last3": sum(scores[-3:]) / 3}[objective]
    assert trial.value == pytest.approx(expected)
    # Every epoch is still reported (the pruner and the report's best epoch read these).
    assert list(trial.intermediate_values.values()) == pytest.approx(scores)
