"""Real processes killed for real: kill -9, SIGTERM, several workers on one SQLite file."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweep import attrs
from sweep.errors import StudyError
from sweep.storage.database import make_storage
from sweep.storage.records import study_attrs
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _write_config(tmp_path, limit=900, **study):
    raw = {
        "study": {"name": "resume", "n_trials": 5, "seed": 3, "pruner": "none", **study},
        "data": {"source": "synthetic", "limit": limit, "validation_fraction": 0.2},
        "model": {"filters": [8], "dense_units": 32, "dropout": 0.0},
        "train": {"epochs": 4, "batch_size": 32},
        "lr_finder": {"num_steps": 30},
        # On this synthetic data the range test suggests about 0.4, just below divergence:
        # an upper bound keeps the trials training (they are what gets killed here).
        "search": {"initial_lr": {"low": 1.0e-5, "high": 1.0e-2}},
    }
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _start(tmp_path, *args, **extra_env):
    # PYTHONPATH: the checkout under test, whichever checkout `pip install -e` last pointed at.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **extra_env}
    return subprocess.Popen([sys.executable, "-m", "sweep", "run", "resume.yaml", "--no-report", *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trials(tmp_path, name="resume"):
    db = tmp_path / "studies" / f"{name}.db"
    if not db.exists():
        return []
    try:
        # Through sweep's storage, whose first opens of a new file take turns (plain Optuna
        # racing `sweep run` to create the tables fails one of them).
        return optuna.load_study(study_name=name, storage=make_storage(f"sqlite:///{db}", create=False)).get_trials()
    except (KeyError, StudyError):
        return []  # the database or the study is being created


def _wait_for(tmp_path, predicate, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trials = _trials(tmp_path)
        if predicate(trials):
            return trials
        if process.poll() is not None:
            pytest.fail(f"sweep run exited early ({process.returncode}): {process.stdout.read()[-2000:]}")
        time.sleep(0.2)
    pytest.fail("timed out waiting for the study to make progress")


def _running_after_an_epoch(trials):
    return any(t.state == TrialState.RUNNING and t.user_attrs.get(attrs.EPOCHS_RUN, 0) >= 1 for t in trials)


def test_three_kill_9s_then_a_rerun_lose_nothing(tmp_path):
    # Epochs of about a second (a worker reuses its compiled model, so 720 images train in
    # 0.3 s an epoch): the kill must land inside a trial, not after it.
    _write_config(tmp_path, limit=3000)
    completed_before = {}
    for _ in range(3):
        process = _start(tmp_path)
        trials = _wait_for(tmp_path, _running_after_an_epoch, process)
        completed_before.update({t.number: t.value for t in trials if t.state == TrialState.COMPLETE})
        time.sleep(0.3)  # somewhere inside the next epoch
        process.send_signal(signal.SIGKILL)
        process.wait()
    process = _start(tmp_path)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output

    trials = _trials(tmp_path)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 5, "exactly the budget, across 4 runs"
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for number, value in completed_before.items():
        assert trials[number].value == value, "completed trials are never changed or repeated"
    by_number = {t.number: t for t in trials}
    retries = [t for t in trials if attrs.RESUMED_FROM_EPOCH in t.user_attrs]
    assert len(retries) >= 1
    for retry in retries:
        killed = by_number[retry.user_attrs[attrs.ROOT_TRIAL]]
        killed = max((t for t in trials if t.user_attrs.get(attrs.ROOT_TRIAL) == killed.number
                      and t.state == TrialState.FAIL and t.number < retry.number), key=lambda t: t.number)
        assert retry.params == killed.params
        lost = killed.user_attrs[attrs.EPOCHS_RUN] - retry.user_attrs[attrs.RESUMED_FROM_EPOCH]
        assert 0 <= lost <= 1, "at most the epoch in progress is retrained"
        assert [e["epoch"] for e in retry.user_attrs[attrs.HISTORY]] == [1, 2, 3, 4]
    store = tmp_path / "studies" / "resume" / "artifacts"
    kept = list(store.iterdir()) if store.exists() else []
    # Only the LR finder's curve (a JSON artifact of the study) stays; checkpoints are zip archives.
    assert all(f.read_bytes().startswith(b"{") and b'"lrs"' in f.read_bytes() for f in kept), \
        "no checkpoint is left once the study is done"


def _checkpointed(tmp_path):
    return lambda trials: any(t.state == TrialState.RUNNING and attrs.CHECKPOINT in t.user_attrs for t in trials)


def test_sigterm_exits_within_seconds_and_leaves_no_running_trial(tmp_path):
    _write_config(tmp_path, n_trials=3)
    process = _start(tmp_path)
    _wait_for(tmp_path, _checkpointed(tmp_path), process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert time.monotonic() - sent < 10
    assert process.returncode == 130
    trials = _trials(tmp_path)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].user_attrs[attrs.EPOCHS_RUN] >= 1
    checkpoint = waiting[0].user_attrs[attrs.CHECKPOINT]
    assert (tmp_path / "studies" / "resume" / "artifacts" / checkpoint["artifact_id"]).is_file(), "its checkpoint is kept"


def test_three_workers_share_one_sqlite_file(tmp_path):
    raw = yaml.safe_load(_write_config(tmp_path, n_trials=30, pruner="median").read_text())
    raw["train"]["epochs"] = 1
    raw["data"]["limit"] = 300
    raw["model"] = {"filters": [4], "dense_units": 16, "dropout": 0.0}
    (tmp_path / "resume.yaml").write_text(yaml.safe_dump(raw))
    # Workers replaced every 4 trials: the recycling path runs too (default 1000).
    process = _start(tmp_path, "--workers", "3", SWEEP_RECYCLE_AFTER_TRIALS="4")
    output, _ = process.communicate(timeout=400)
    assert process.returncode == 0, output
    assert "locked" not in output
    trials = _trials(tmp_path)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 30
    assert len({t.user_attrs[attrs.WORKER] for t in finished}) > 3, "recycled workers are new processes"
    seeded = [t for t in finished if t.user_attrs.get(attrs.SEEDED_BY_PRIOR)]
    enqueued = study_attrs(optuna.load_study(study_name="resume", storage=f"sqlite:///{tmp_path}/studies/resume.db"))[
        attrs.PRIOR]["seeded"]
    assert sorted(t.params["initial_lr"] for t in seeded) == sorted(enqueued), "each seed trial ran exactly once"
    others = [t for t in trials if t.state not in FINISHED]
    assert all(t.user_attrs.get(attrs.SURPLUS) for t in others), "the only non-finished trials are surplus asks"


def test_sigterm_to_a_multi_worker_run_stops_every_worker(tmp_path):
    _write_config(tmp_path, n_trials=6)
    process = _start(tmp_path, "--workers", "2")
    _wait_for(tmp_path, _running_after_an_epoch, process, timeout=180)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert time.monotonic() - sent < 15, output
    assert process.returncode == 130, output
    assert "Traceback" not in output
    time.sleep(0.5)
    assert not [t for t in _trials(tmp_path) if t.state == TrialState.RUNNING]
    children = subprocess.run(["pgrep", "-f", "multiprocessing.spawn"], capture_output=True, text=True).stdout
    assert not [pid for pid in children.split() if os.path.exists(f"/proc/{pid}/cwd")
                and os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)], "no orphaned worker keeps running"


def test_priorband_with_halving_keeps_the_budget_and_resumes_after_a_kill_9(tmp_path):
    # The prior-aware sampler and the halving pruner are a plain Optuna pair: a kill -9 inside
    # a trial and a rerun with two workers end with exactly the budget, the killed trial resumed.
    _write_config(tmp_path, limit=3000, n_trials=8, sampler="priorband", pruner="halving")
    process = _start(tmp_path)
    _wait_for(tmp_path, _running_after_an_epoch, process)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process = _start(tmp_path, "--workers", "2")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    trials = _trials(tmp_path)
    assert len([t for t in trials if t.state in FINISHED]) == 8
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert any(attrs.RESUMED_FROM_EPOCH in t.user_attrs for t in trials), "the killed trial continued"
    # Pruned by the halving pruner only at its rungs (epochs 1 and 3 of 4), or on divergence.
    for t in trials:
        if t.state == TrialState.PRUNED and t.user_attrs.get(attrs.PRUNE_REASON) == "pruned":
            assert t.user_attrs[attrs.EPOCHS_RUN] in (1, 3)
