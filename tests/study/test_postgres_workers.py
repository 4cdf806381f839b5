"""Two worker processes on a real PostgreSQL server, one of them killed with SIGKILL.

The whole command line, as a user on several machines runs it: ``sweep run`` with two
workers, a kill -9 of one worker in the middle of a trial, ``sweep resume`` from the
study alone, then ``status`` and ``report``; the storage URL's password (with
URL-special characters in CI) must appear in none of their output or files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import quote

import optuna
import pytest
import sqlalchemy
import yaml
from optuna.trial import TrialState

from sweep import attrs
from sweep.cli import main
from sweep.errors import StudyError
from sweep.storage.database import load_study, mask_url
from sweep.storage.records import study_attrs
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
N_TRIALS = 3


def _sweep(capsys, *args: str) -> tuple[int, str]:
    """``sweep ARGS`` in this process (cheaper than a new interpreter): exit code, stdout + stderr."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def _study(url: str) -> optuna.Study | None:
    try:
        study = load_study("pg-workers", url)
    except StudyError:
        return None  # not created yet
    return study if attrs.CONFIG in study_attrs(study) else None  # CONFIG comes last at creation


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return _study(url).get_trials()


def _wait_for_a_worker_mid_trial(url: str, run: subprocess.Popen, timeout: float = 180) -> optuna.Study:
    """The study, once a worker process (not the parent) is inside a trial, past its first epoch."""
    deadline = time.monotonic() + timeout
    study = None
    while time.monotonic() < deadline:
        if study is None:
            study = _study(url)
        for trial in study.get_trials(deepcopy=False) if study else []:
            worker = str(trial.user_attrs.get(attrs.WORKER, ""))
            if trial.state == TrialState.RUNNING and trial.user_attrs.get(attrs.EPOCHS_RUN, 0) >= 1 and worker:
                return study
        if run.poll() is not None:
            pytest.fail(f"sweep run exited early ({run.returncode}): {run.stdout.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail("timed out waiting for a worker to be inside a trial")


def test_two_workers_on_postgresql_survive_a_kill_9(postgres_url, tiny_config, tmp_path, capsys, monkeypatch):
    url = postgres_url
    password = sqlalchemy.engine.make_url(url).password  # CI's has URL-special characters: ":", "@", "/"
    assert password, "the test server's URL must carry a password, so that its masking is tested"

    raw = tiny_config.to_dict()
    raw["study"].update(name="pg-workers", n_trials=N_TRIALS, pruner="none", storage=url)
    raw["data"]["limit"] = 2400  # epochs long enough that the kill lands inside the victim's trial
    raw["train"]["epochs"] = 3
    raw["lr_finder"]["enabled"] = False
    (tmp_path / "pg.yaml").write_text(yaml.safe_dump(raw))

    run = subprocess.Popen([sys.executable, "-m", "sweep", "run", "pg.yaml", "--storage", url, "--workers", "2",
                            "--no-report"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        study = _wait_for_a_worker_mid_trial(url, run)
        trials = study.get_trials()
        victim = next(t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get(attrs.EPOCHS_RUN, 0) >= 1)
        pid = int(str(victim.user_attrs[attrs.WORKER]).rpartition(":")[2])
        assert pid != run.pid, "the trial runs in a worker process, not in sweep run itself"
        os.kill(pid, signal.SIGKILL)
        done_at_kill = {t.number: (t.state, t.value, t.params) for t in trials if t.state in FINISHED}
        first_output, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    # The other worker recovers the dead worker's trial and finishes the budget; the run
    # still says that one of its workers died.
    assert run.returncode in (0, 130), first_output
    assert mask_url(url) in first_output
    before = {t.number: (t.state, t.value, t.params) for t in _trials(url) if t.state in FINISHED}

    monkeypatch.chdir(tmp_path)  # resume, status and report write under studies/ and results/
    resumed = _sweep(capsys, "resume", "pg-workers", "--storage", url, "--workers", "2", "--no-report")
    assert resumed[0] == 0, resumed[1]

    trials = _trials(url)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == N_TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert {t.number: (t.state, t.value, t.params) for t in finished if t.number in before} == before
    assert done_at_kill.items() <= before.items(), "trials finished before the kill are never changed"
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert retries[0].state in FINISHED

    table = _sweep(capsys, "status", "--storage", url)
    detail = _sweep(capsys, "status", "pg-workers", "--storage", url)
    assert table[0] == detail[0] == 0, table[1] + detail[1]
    assert "pg-workers" in table[1] and mask_url(url) in table[1]
    assert f"{N_TRIALS}/{N_TRIALS} trials finished" in detail[1]
    report = _sweep(capsys, "report", "pg-workers", "--storage", url, "--out", "report")
    assert report[0] == 0, report[1]

    shown = [first_output, resumed[1], table[1], detail[1], report[1]]
    written = [p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "report").rglob("*") if p.is_file()]
    assert len(written) >= 3, "index.html, report.md, best_config.yaml at least"
    for text in shown + written:
        assert password not in text and quote(password, safe="") not in text
