"""Trial identity: one retry per failed trial, surplus retries kept, leftovers of an older
study under the same name removed, data of another size refused."""

import socket

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from sweep import attrs
from sweep.cli import main
from sweep.config import config_from_dict
from sweep.storage.database import make_storage
from sweep.study.recovery import fail_once, recover_interrupted_trials, requeue_surplus_retry, retire_leftover_retries, retry_trial
from sweep.study.setup import open_study
from sweep.study.worker import _requeue
from sweep.training.data import synthetic_images
from tests.training.test_data import write_idx


@pytest.fixture
def study(study_raw, tmp_path):
    raw = study_raw
    raw["study"]["n_trials"] = 1
    return open_study(config_from_dict(raw), f"sqlite:///{tmp_path}/s.db")


def _running(study, worker="elsewhere:1"):
    trial = study.ask({"initial_lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)})
    trial.set_user_attr(attrs.WORKER, worker)
    return trial


def _retries_of(study, number):
    return [t for t in study.get_trials() if t.system_attrs.get("retry_history", [])[-1:] == [number]]


def test_a_trial_is_failed_once_and_retried_once_whoever_tries(study):
    trial = _running(study)
    assert fail_once(study._storage, trial._trial_id)
    assert not fail_once(study._storage, trial._trial_id), "the second failure is nobody's"
    frozen = study._storage.get_trial(trial._trial_id)
    retry_trial(study, frozen)
    retry_trial(study, frozen)  # a second caller that missed the atomic failure
    _requeue(study, trial)  # its own worker, interrupted a moment later
    assert len(_retries_of(study, trial.number)) == 1


def test_a_worker_recovering_a_dead_trial_leaves_the_one_retry_alone(study, tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    trial = _running(study, f"{socket.gethostname()}:{dead.pid}")
    assert recover_interrupted_trials(study) == 1
    assert recover_interrupted_trials(study) == 0
    assert len(_retries_of(study, trial.number)) == 1


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_silent_trial_on_another_host_is_taken_over_with_one_retry_even_after_a_checker_died(
        study_raw, tmp_path, monkeypatch):
    import time

    from sweep.storage import database

    monkeypatch.setattr(database, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(database, "GRACE_PERIOD_S", 1)
    raw = study_raw
    raw["study"]["n_trials"] = 3
    url = f"sqlite:///{tmp_path}/hb.db"
    open_study(config_from_dict(raw), url)
    study = optuna.load_study(study_name=raw["study"]["name"], storage=make_storage(url, create=False, heartbeat=True))
    silent, killed_checker = _running(study, "otherhost:1"), _running(study, "otherhost:2")
    for trial in (silent, killed_checker):
        study._storage.record_heartbeat(trial._trial_id)  # then nothing: the other machine went away
    # A checker that enqueued killed_checker's retry and was killed before it failed the trial.
    retry_trial(study, study._storage.get_trial(killed_checker._trial_id))
    assert recover_interrupted_trials(study) == 0, "still within the grace period"
    time.sleep(2.2)  # past it, on the database's clock
    assert recover_interrupted_trials(study) == 2
    states = {t.number: t.state for t in study.get_trials()}
    assert states[silent.number] == states[killed_checker.number] == TrialState.FAIL
    assert len(_retries_of(study, silent.number)) == len(_retries_of(study, killed_checker.number)) == 1


def test_a_surplus_retry_waits_for_a_slot_and_is_retired_once_the_budget_is_spent(study, tmp_path):
    store = FileSystemArtifactStore(tmp_path)
    (tmp_path / "ckpt").write_bytes(b"x")
    root = _running(study)
    root.set_user_attr(attrs.CHECKPOINT, {"artifact_id": "ckpt", "epoch": 2})
    other = _running(study)  # will hold the only slot
    assert fail_once(study._storage, root._trial_id)
    retry_trial(study, study._storage.get_trial(root._trial_id))
    retry = study.ask()
    assert retry.user_attrs[attrs.CHECKPOINT]["epoch"] == 2
    requeue_surplus_retry(study, retry)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs[attrs.CHECKPOINT]["artifact_id"] == "ckpt"
    assert waiting[0].system_attrs["retry_history"] == [root.number], "a requeue is not another interruption"
    study.tell(other, 0.5)
    assert retire_leftover_retries(study, store) == 1
    assert not study.get_trials(states=(TrialState.WAITING,))
    assert study.get_trials()[-1].user_attrs[attrs.SURPLUS] is True
    assert not (tmp_path / "ckpt").exists(), "its checkpoint is removed with it"


@pytest.mark.parametrize("dies_in", ["add_trial", "fail_once"])
def test_a_surplus_requeue_killed_half_way_leaves_one_continuation(study, monkeypatch, dies_in):
    """Whichever of its two writes the process dies in, exactly one trial continues the root."""
    import subprocess

    from sweep.study import recovery

    root = _running(study)
    assert fail_once(study._storage, root._trial_id)
    retry_trial(study, study._storage.get_trial(root._trial_id))
    retry = study.ask()
    dead = subprocess.Popen(["true"])
    dead.wait()
    retry.set_user_attr(attrs.WORKER, f"{socket.gethostname()}:{dead.pid}")

    def killed(*_, **__):
        raise KeyboardInterrupt  # the process dies here

    if dies_in == "add_trial":
        monkeypatch.setattr(study, "add_trial", killed)
    else:
        monkeypatch.setattr(recovery, "fail_once", killed)
    with pytest.raises(KeyboardInterrupt):
        requeue_surplus_retry(study, retry)
    monkeypatch.undo()
    assert recover_interrupted_trials(study) == 1  # the next worker finds the retry's process gone
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == retry.params, "the copy, and no second retry"
    assert study._storage.get_trial(retry._trial_id).state == TrialState.FAIL


def _archive(path, study_uuid, storage):
    """A checkpoint archive's owner files (all that clean-up reads: read_owner)."""
    import json
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("identity.json", json.dumps({"study": study_uuid, "root_trial": 0}))
        archive.writestr("labels.json", json.dumps({"storage": storage}))
    return path


def test_a_new_study_under_a_used_name_removes_only_what_a_deleted_study_of_its_storage_left(
        tiny_config, tmp_path, monkeypatch, sweep_caplog):
    from sweep.storage.database import storage_key

    monkeypatch.chdir(tmp_path)
    raw = tiny_config.to_dict()
    raw["lr_finder"]["enabled"] = False
    folder = tmp_path / "studies" / "tiny" / "artifacts"
    ours = storage_key("sqlite:///studies/tiny.db")
    gone = [_archive(folder / "a1", "deleted-study", ours), tmp_path / "studies" / "tiny" / "trial-0" / "x"]
    gone[1].parent.mkdir(parents=True)
    gone[1].write_bytes(b"old weights")
    kept = [_archive(folder / "b1", "their-study", f"sqlite:///{tmp_path}/other.db"),  # same name, other storage
            folder / "lr-curve"]  # not a checkpoint: nobody's to judge
    kept[1].write_bytes(b"{}")
    study = open_study(config_from_dict(raw), "sqlite:///studies/tiny.db")
    assert not any(p.exists() for p in gone) and all(p.exists() for p in kept)
    warnings = [r.getMessage() for r in sweep_caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "removed 2 checkpoint(s) a deleted study of that name in this storage" in warnings[0]
    assert len(study.user_attrs[attrs.STUDY_UUID]) == 32
    again = open_study(config_from_dict(raw), "sqlite:///studies/tiny.db")
    assert again.user_attrs[attrs.STUDY_UUID] == study.user_attrs[attrs.STUDY_UUID], "kept on reopen"


def test_an_older_study_gets_a_uuid_when_reopened(tiny_config, tmp_path):
    from sweep.study.setup import reopen_study, storable_config

    url = f"sqlite:///{tmp_path}/old.db"
    old = optuna.create_study(study_name="old", storage=make_storage(url, create=True))
    old.set_user_attr(attrs.CONFIG, storable_config(tiny_config))  # as sweep made studies before the UUID
    first, _ = reopen_study("old", url)
    second, _ = reopen_study("old", url)
    assert len(first.user_attrs[attrs.STUDY_UUID]) == 32
    assert second.user_attrs[attrs.STUDY_UUID] == first.user_attrs[attrs.STUDY_UUID]


def _idx(folder, n, seed=1):
    folder.mkdir()
    x, y = synthetic_images(n, seed=seed)
    write_idx(folder, "train-images-idx3-ubyte", x, 2051)
    write_idx(folder, "train-labels-idx1-ubyte", y, 2049)
    return folder


def _sized_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(f"""\
study: {{name: sized, n_trials: 1}}
data: {{source: idx, path: {_idx(tmp_path / 'a', 200)}, validation_fraction: 0.2}}
model: {{filters: [4], dense_units: 8}}
train: {{epochs: 1, batch_size: 32}}
lr_finder: {{enabled: false}}
""")
    assert main(["run", "c.yaml", "--no-report"]) == 0


def test_resume_with_data_of_another_size_is_refused_before_training(tmp_path, monkeypatch, capsys):
    from tests.robustness.conftest import snapshot

    _sized_study(tmp_path, monkeypatch)
    other = _idx(tmp_path / "b", 300)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(["resume", "sized", "--n-trials", "2", "--set", f"data.path={other}"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if "error" in line.lower()]  # beside the INFO line on the data
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "240 training images" in lines[0] and "created with 160" in lines[0], lines[0]
    assert snapshot(tmp_path) == before, "nothing written, nothing trained"
    code = main(["run", "c.yaml", "--n-trials", "2", "--no-report", "--set", f"data.path={other}"])
    assert code == 2 and "created with 160" in capsys.readouterr().err


def test_resume_with_other_images_of_the_same_size_is_refused_and_a_copy_is_accepted(tmp_path, monkeypatch,
                                                                                       capsys):
    import shutil

    from tests.robustness.conftest import snapshot

    _sized_study(tmp_path, monkeypatch)
    other = _idx(tmp_path / "b", 200, seed=2)  # as many images, other pixels
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(["resume", "sized", "--n-trials", "2", "--set", f"data.path={other}"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "other images than study 'sized' was created with" in lines[0] and "160 training images" in lines[0]
    assert snapshot(tmp_path) == before, "nothing written, nothing trained"
    copy = shutil.copytree(tmp_path / "a", tmp_path / "elsewhere")  # the same data on another path: fine
    assert main(["resume", "sized", "--n-trials", "2", "--no-report", "--set", f"data.path={copy}"]) == 0


@pytest.mark.parametrize("change", ["model", "train_field"])
def test_force_with_another_model_retires_the_waiting_retries_checkpoints_with_one_warning(study_raw, tmp_path,
                                                                                          sweep_caplog, change):
    from optuna.artifacts import upload_artifact

    from sweep.storage.artifacts import open_artifact_store

    study = open_study(config_from_dict(study_raw), "sqlite:///studies/tiny.db")
    store = open_artifact_store("tiny")
    root = study.ask()
    (tmp_path / "trial-0-epoch-0001.zip").write_bytes(b"the old model's weights")
    artifact = upload_artifact(artifact_store=store, file_path=str(tmp_path / "trial-0-epoch-0001.zip"),
                               study_or_trial=root)
    study.enqueue_trial(root.params, user_attrs={attrs.CHECKPOINT: {"artifact_id": artifact, "epoch": 1}})
    folder = tmp_path / "studies" / "tiny" / "artifacts"
    assert [p.name for p in folder.iterdir()] == [artifact]
    if change == "model":
        study_raw["model"]["dense_units"] = 33
    else:  # any train field but steps_per_execution is part of what a checkpoint holds
        study_raw["train"]["batch_size"] = 16
    sweep_caplog.clear()
    open_study(config_from_dict(study_raw), "sqlite:///studies/tiny.db", force=True)
    retired = [r.getMessage() for r in sweep_caplog.records if "retired the checkpoints" in r.getMessage()]
    assert len(retired) == 1 and "1 waiting trial(s) (1)" in retired[0], retired
    assert not any(folder.iterdir())
    assert study.get_trials(states=(TrialState.WAITING,))[0].user_attrs[attrs.CHECKPOINT] is None
