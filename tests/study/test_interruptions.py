"""A user's interruptions never cost a configuration; only a worker's deaths count toward the
retry limit, and a configuration given up says so. Two studies of one name in two storages
share a checkpoint folder without touching each other's files. Real SIGINTs, sent to this
process while a trial trains, through the CLI's own handlers."""

import os
import signal
import socket
import subprocess

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweep import attrs
from sweep.cli import main
from sweep.search import objective as objective_module
from sweep.storage.database import make_storage
from sweep.study.recovery import DROPPED, MAX_RETRIES, RETRIED, take_over
from sweep.study.status import study_detail


@pytest.fixture
def ctrl_c_after(monkeypatch):
    """``ctrl_c_after(k)``: the next trial gets a real SIGINT once its epoch k is checkpointed."""
    original = objective_module._EpochEnd.on_epoch_end
    target = {"epoch": None}

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if self._history[-1].epoch == target["epoch"]:
            target["epoch"] = None
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(objective_module._EpochEnd, "on_epoch_end", on_epoch_end)
    return lambda epoch: target.update(epoch=epoch)


def _write(tmp_path, name, **study):
    raw = {"study": {"name": "long", "n_trials": 1, "seed": 0, "pruner": "none", **study},
           "data": {"source": "synthetic", "limit": 300, "validation_fraction": 0.2},
           "model": {"filters": [4], "dense_units": 16, "dropout": 0.0},
           "train": {"epochs": 10, "batch_size": 64}, "lr_finder": {"enabled": False}}
    (tmp_path / name).write_text(yaml.safe_dump(raw))
    return name


def _load(url, name="long"):
    return optuna.load_study(study_name=name, storage=make_storage(url, create=False))


def test_four_ctrl_cs_in_one_trial_never_drop_its_configuration(tmp_path, monkeypatch, ctrl_c_after):
    monkeypatch.chdir(tmp_path)
    config = _write(tmp_path, "long.yaml")
    for epoch in (1, 3, 5, 7):  # each run continues from the last and is interrupted two epochs on
        ctrl_c_after(epoch)
        assert main(["run", config, "--no-report"]) == 130
    assert main(["run", config, "--no-report"]) == 0
    trials = _load("sqlite:///studies/long.db").trials
    first, *retries = trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 4 + [TrialState.COMPLETE]
    assert all(t.params == first.params for t in retries), "no other configuration was sampled"
    assert [t.user_attrs.get(attrs.RESUMED_FROM_EPOCH) for t in retries] == [1, 3, 5, 7]
    assert [e["epoch"] for e in trials[-1].user_attrs[attrs.HISTORY]] == list(range(1, 11))
    assert not any(t.user_attrs.get(attrs.DROPPED) for t in trials)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_trial_whose_worker_dies_four_times_is_dropped_and_says_so(tmp_path, sweep_caplog, capsys):
    url = f"sqlite:///{tmp_path}/d.db"
    study = optuna.create_study(study_name="d", storage=make_storage(url, create=True), direction="maximize")
    study.set_user_attr(attrs.N_TRIALS, 2)
    study.enqueue_trial({"x": 0.5})
    outcomes = []
    for _ in range(MAX_RETRIES + 1):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr(attrs.WORKER, f"{socket.gethostname()}:{_dead_pid()}")
        outcomes.append(take_over(study, trial._trial_id))
    assert outcomes == [RETRIED] * MAX_RETRIES + [DROPPED]
    last = study.trials[-1]
    assert last.state == TrialState.FAIL and "its worker died 4 times" in last.user_attrs[attrs.DROPPED]
    assert not study.get_trials(states=(TrialState.WAITING,)), "no retry after the limit"
    warnings = [r.getMessage() for r in sweep_caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "dropped" in warnings[0] and "{'x': 0.5}" in warnings[0]
    detail = study_detail("d", url)
    assert f"dropped: trial {last.number} (x=0.5): its worker died 4 times" in detail
    # A user's interruptions of the same trial's retries would not have counted:
    study.enqueue_trial({"x": 0.25})
    for _ in range(MAX_RETRIES + 2):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        assert take_over(study, trial._trial_id, crashed=False) == RETRIED


def test_two_storages_one_name_one_checkpoint_folder(tmp_path, monkeypatch, ctrl_c_after):
    """Two teams, one bucket: the first study is interrupted mid-trial, a same-named study in
    another storage runs from creation to the end, and the first still continues its epoch."""
    monkeypatch.chdir(tmp_path)
    shared = str(tmp_path / "shared-checkpoints")
    first = _write(tmp_path, "a.yaml", storage=f"sqlite:///{tmp_path}/a.db", checkpoint_store=shared)
    second = _write(tmp_path, "b.yaml", storage=f"sqlite:///{tmp_path}/b.db", checkpoint_store=shared)
    ctrl_c_after(4)
    assert main(["run", first, "--no-report"]) == 130
    assert main(["run", second, "--no-report"]) == 0
    assert len(list((tmp_path / "shared-checkpoints" / "long").iterdir())) == 1, "only the first study's file"
    assert main(["run", first, "--no-report"]) == 0
    done = _load(f"sqlite:///{tmp_path}/a.db").trials[-1]
    assert done.state == TrialState.COMPLETE and done.user_attrs[attrs.RESUMED_FROM_EPOCH] == 4
    assert not list((tmp_path / "shared-checkpoints" / "long").iterdir())
