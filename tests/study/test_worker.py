import socket
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from sweep import attrs
from sweep.config import config_from_dict
from sweep.errors import StudyError
from sweep.study.budget import budget
from sweep.study.recovery import recover_interrupted_trials
from sweep.study.worker import run_worker
from sweep.study.setup import config_differences, open_study
from sweep.storage.records import study_attrs


@pytest.fixture
def study_config(study_raw):
    study_raw["study"]["n_trials"] = 3
    return study_raw


def _url(tmp_path):
    return f"sqlite:///{tmp_path}/s.db"


def test_a_study_ends_with_exactly_its_budget_even_when_every_trial_diverges(study_config, tmp_path):
    study_config["search"]["initial_lr"] = {"low": 5.0, "high": 10.0}  # every trial blows up
    config = config_from_dict(study_config)
    study = open_study(config, _url(tmp_path))
    run_worker("tiny", _url(tmp_path), config=config)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED] * 3
    assert {t.user_attrs[attrs.PRUNE_REASON] for t in trials} == {"diverged"}


def test_the_budget_counts_across_runs_and_can_be_raised(study_config, tmp_path):
    config = config_from_dict(study_config)
    study = open_study(config, _url(tmp_path))
    run_worker("tiny", _url(tmp_path), config=config)
    run_worker("tiny", _url(tmp_path), config=config)  # a rerun finds nothing left to do
    assert len(study.get_trials()) == 3
    values = [t.value for t in study.get_trials()]
    study = open_study(config, _url(tmp_path), n_trials=5)
    run_worker("tiny", _url(tmp_path), config=config)
    assert budget(study).finished == 5 and len(study.get_trials()) == 5
    assert [t.value for t in study.get_trials()][:3] == values, "completed trials are never changed"


def test_a_trial_of_a_dead_worker_is_failed_and_requeued_with_its_parameters(study_config, tmp_path):
    config = config_from_dict(study_config)
    study = open_study(config, _url(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    trial = study.ask({"initial_lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)})
    trial.set_user_attr(attrs.WORKER, f"{socket.gethostname()}:{dead.pid}")
    trial.set_user_attr(attrs.ROOT_TRIAL, trial.number)
    trial.report(0.5, 1)
    alive = study.ask()
    alive.set_user_attr(attrs.WORKER, f"{socket.gethostname()}:{subprocess.os.getpid()}")

    assert recover_interrupted_trials(study) == 1
    states = {t.number: t for t in study.get_trials()}
    assert states[trial.number].state == TrialState.FAIL
    assert states[alive.number].state == TrialState.RUNNING
    retry = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert len(retry) == 1
    assert retry[0].params == states[trial.number].params
    assert retry[0].user_attrs[attrs.ROOT_TRIAL] == trial.number
    assert attrs.WORKER not in retry[0].user_attrs
    assert retry[0].intermediate_values == {1: 0.5}
    assert recover_interrupted_trials(study) == 0, "recovered once only"


def test_a_changed_config_is_refused_with_its_differences_unless_forced(study_config, tmp_path):
    config = config_from_dict(study_config)
    open_study(config, _url(tmp_path))
    study_config["train"]["epochs"] = 2
    study_config["study"]["n_trials"] = 9  # the budget may change freely
    changed = config_from_dict(study_config)
    with pytest.raises(StudyError, match=r"train\.epochs: 1 -> 2") as error:
        open_study(changed, _url(tmp_path))
    assert "n_trials" not in str(error.value) and "--force" in str(error.value)
    study = open_study(changed, _url(tmp_path), force=True)
    assert study_attrs(study)[attrs.CONFIG]["train"]["epochs"] == 2
    assert study.user_attrs[attrs.N_TRIALS] == 9


def test_config_differences_ignore_fields_that_may_differ_between_machines():
    old = {"study": {"n_trials": 3, "workers": 1}, "data": {"path": "/a", "limit": 5}}
    new = {"study": {"n_trials": 7, "workers": 4}, "data": {"path": "/b", "limit": 6}}
    assert config_differences(old, new) == ["data.limit: 5 -> 6"]
