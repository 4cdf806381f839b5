import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from sweep import attrs
from sweep.training.data import load_dataset
from sweep.search.objective import Objective, build_pruner, trial_seed
from sweep.search.space import space_from_config


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def _objective(config, tmp_path, study_uuid="study-a"):
    return Objective(config, load_dataset(config.data, 0), space_from_config(config.search),
                     FileSystemArtifactStore(tmp_path), "host:1", study_uuid)


class _InterruptAtEpoch(optuna.pruners.BasePruner):
    """Asked after the epoch is checkpointed and reported: a Ctrl-C right there."""

    def __init__(self, epoch):
        self.epoch = epoch

    def prune(self, study, trial):
        if max(trial.intermediate_values) == self.epoch:
            raise KeyboardInterrupt
        return False


def _run(study, objective):
    """Ask, train, tell, then remove the checkpoints: what the worker does (sweep.study.worker)."""
    trial = study.ask()
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, value)
    objective.finish()


def _interrupted_and_retried(config, tmp_path, epoch=2):
    """A trial interrupted after ``epoch`` epochs, failed, and its retry asked for."""
    from sweep.study.recovery import fail_once, retry_trial

    study = optuna.create_study(direction="maximize", pruner=_InterruptAtEpoch(epoch))
    study.enqueue_trial({"schedule": "cosine", "initial_lr": 3e-3, "warmup_fraction": 0.1})
    trial = study.ask()
    with pytest.raises(KeyboardInterrupt):
        _objective(config, tmp_path)(trial)
    assert fail_once(study._storage, trial._trial_id)
    retry_trial(study, study._storage.get_trial(trial._trial_id))
    study.pruner = optuna.pruners.NopPruner()
    return study, study.ask()


def test_a_retry_continues_its_roots_checkpoint_and_removes_it_at_the_end(tiny_config, tmp_path):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    study, retry = _interrupted_and_retried(config, tmp_path)
    assert retry.user_attrs[attrs.CHECKPOINT]["epoch"] == 2 and len(list(tmp_path.iterdir())) == 1
    objective = _objective(config, tmp_path)
    value = objective(retry)
    assert len(list(tmp_path.iterdir())) >= 1, "kept until the trial's final state is stored"
    study.tell(retry, value)
    objective.finish()
    frozen = study.trials[retry.number]
    assert frozen.user_attrs[attrs.RESUMED_FROM_EPOCH] == 2
    assert [e["epoch"] for e in frozen.user_attrs[attrs.HISTORY]] == [1, 2, 3]
    assert frozen.user_attrs[attrs.HISTORY][:2] == study.trials[0].user_attrs[attrs.HISTORY]
    assert not any(tmp_path.iterdir()), "the finished retry removed the checkpoint"


@pytest.mark.parametrize("change", ["study", "steps", "model", "optimizer"])
def test_a_checkpoint_of_another_study_step_count_model_or_optimizer_is_set_aside_with_one_warning(
        tiny_config, tmp_path, sweep_caplog, change):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    _, retry = _interrupted_and_retried(config, tmp_path)
    (kept,) = list(tmp_path.iterdir())
    if change == "steps":  # --force with another batch size: same trial numbers, other schedules
        config = config.model_copy(update={"train": config.train.model_copy(update={"batch_size": 16})})
    if change == "model":  # --force with another architecture whose weights might even fit
        config = config.model_copy(update={"model": config.model.model_copy(update={"dense_units": 33})})
    objective = _objective(config, tmp_path, study_uuid="study-b" if change == "study" else "study-a")
    assert objective.model_identity["train"]["optimizer"] == "adam"
    if change == "optimizer":  # as --force with train.optimizer changed would record it (one optimizer here yet)
        objective.model_identity["train"]["optimizer"] = "sgd"
    sweep_caplog.clear()
    objective(retry)
    assert retry.user_attrs[attrs.RESUMED_FROM_EPOCH] == 0
    assert [e["epoch"] for e in retry.user_attrs[attrs.HISTORY]] == [1, 2, 3]
    warnings = [r.getMessage() for r in sweep_caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"checkpoint {kept.name} (epoch 2) set aside" in warnings[0], warnings
    assert "another owner" in warnings[0]
    assert kept.exists(), "set aside, not deleted"
    assert [ref["artifact_id"] for ref in retry.user_attrs[attrs.SET_ASIDE]] == [kept.name]


def test_a_truncated_checkpoint_is_set_aside_not_deleted(tiny_config, tmp_path, sweep_caplog):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    _, retry = _interrupted_and_retried(config, tmp_path)
    (kept,) = list(tmp_path.iterdir())
    kept.write_bytes(kept.read_bytes()[: kept.stat().st_size // 2])  # a half-synced shared folder
    sweep_caplog.clear()
    _objective(config, tmp_path)(retry)
    warnings = [r.getMessage() for r in sweep_caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"checkpoint {kept.name} (epoch 2) set aside" in warnings[0], warnings
    assert "unreadable" in warnings[0] and kept.exists()
    assert [e["epoch"] for e in retry.user_attrs[attrs.HISTORY]] == [1, 2, 3]


class _SnapshotThenInterrupt(optuna.pruners.BasePruner):
    """After epoch 1 a recovery copies the trial into its retry (take_over's first step); the
    worker goes on, records epoch 2 (removing epoch 1's file), and only then is stopped."""

    def prune(self, study, trial):
        from sweep.study.recovery import retry_trial

        epoch = max(trial.intermediate_values)
        if epoch == 1:
            retry_trial(study, study._storage.get_trial(trial._trial_id))
        if epoch == 2:
            raise KeyboardInterrupt
        return False


def test_a_retry_continues_the_checkpoint_its_predecessor_recorded_last_not_the_copy(tiny_config, tmp_path):
    from sweep.study.recovery import fail_once

    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    study = optuna.create_study(direction="maximize", pruner=_SnapshotThenInterrupt())
    study.enqueue_trial({"schedule": "cosine", "initial_lr": 3e-3, "warmup_fraction": 0.1})
    trial = study.ask()
    with pytest.raises(KeyboardInterrupt):
        _objective(config, tmp_path)(trial)
    assert fail_once(study._storage, trial._trial_id)
    study.pruner = optuna.pruners.NopPruner()
    retry = study.ask()
    copied = retry.user_attrs[attrs.CHECKPOINT]
    assert copied["epoch"] == 1 and not (tmp_path / copied["artifact_id"]).exists(), "the copy points at nothing"
    _objective(config, tmp_path)(retry)
    assert retry.user_attrs[attrs.RESUMED_FROM_EPOCH] == 2


def test_a_fresh_trial_never_loads_a_checkpoint(tiny_config, tmp_path):
    # Only a retry looks for a checkpoint: a new trial 0 starts at epoch 1, whatever is stored.
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    _interrupted_and_retried(config, tmp_path)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"schedule": "constant", "initial_lr": 1e-3, "warmup_fraction": 0.0})
    _run(study, _objective(config, tmp_path))
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE and attrs.RESUMED_FROM_EPOCH not in trial.user_attrs
    assert {e["lr"] for e in trial.user_attrs[attrs.HISTORY]} == {1e-3}


def test_a_trial_records_its_value_history_and_seed(tiny_config, tmp_path):
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"schedule": "constant", "initial_lr": 3e-3, "warmup_fraction": 0.0})
    _run(study, _objective(tiny_config, tmp_path))
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
    _run(study, _objective(tiny_config, tmp_path))
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs[attrs.PRUNE_REASON] == "diverged"


def test_the_pruner_stops_a_trial_after_an_epoch(tiny_config, tmp_path):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    study.enqueue_trial({"schedule": "constant", "initial_lr": 1e-3, "warmup_fraction": 0.0})  # never diverges
    _run(study, _objective(config, tmp_path))
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
    _run(study, _objective(config, tmp_path))
    trial = study.trials[0]
    scores = [e["val_accuracy"] for e in trial.user_attrs[attrs.HISTORY]]
    assert len(scores) == 4
    expected = {"best": max(scores), "last": scores[-1], "mean_last3": sum(scores[-3:]) / 3}[objective]
    assert trial.value == pytest.approx(expected)
    # Every epoch is still reported (the pruner and the report's best epoch read these).
    assert list(trial.intermediate_values.values()) == pytest.approx(scores)
