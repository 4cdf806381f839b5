"""Chaos: workers killed with SIGKILL at random moments, and a live trial failed from
outside as a late heartbeat would, while a study runs; then the study finishes and its
invariants hold. Two workers run in one working directory and a third in another, on one
storage and one shared checkpoint store; a killed worker is replaced at once.

Figures (kills, false recoveries, epochs redone, seconds) are printed: run with ``-s``.
"""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweep import attrs
from sweep.storage.database import make_storage
from sweep.study.recovery import MAX_RETRIES, take_over
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

N_TRIALS = 24  # enough that 8 kills land before the study ends, with workers restarting
MIN_KILLS = 8
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class Chaos:
    def __init__(self, tmp_path: Path, url: str, seed: int):
        self.url = url
        self.random = random.Random(seed)
        self.dirs = [tmp_path / "a", tmp_path / "a", tmp_path / "b"]  # two workers here, one there
        for folder in set(self.dirs):
            folder.mkdir(exist_ok=True)
            (folder / "chaos.yaml").write_text(yaml.safe_dump({
                "study": {"name": "chaos", "n_trials": N_TRIALS, "seed": seed, "pruner": "none", "storage": url,
                          "checkpoint_store": str(tmp_path / "checkpoints")},
                "data": {"source": "synthetic", "limit": 3000, "validation_fraction": 0.2},
                "model": {"filters": [4], "dense_units": 16, "dropout": 0.0},
                "train": {"epochs": 5, "batch_size": 32},
                "lr_finder": {"enabled": False},
            }))
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.started = 0
        self.workers: list[subprocess.Popen | None] = [None] * len(self.dirs)
        self.completed: dict[int, float] = {}  # every COMPLETE trial seen, with its value then
        self.kills = 0
        self.false_recovery: int | None = None
        self.protected: int | None = None  # the pid that must live to notice the false recovery
        self.killed: list[int] = []  # the trial each kill interrupted
        self.deaths: Counter = Counter()  # per root trial: kills and false recoveries (both count as deaths)

    def start(self, slot: int) -> None:
        log = open(self.logs / f"worker-{self.started}.log", "w")
        self.started += 1
        self.workers[slot] = subprocess.Popen(
            [sys.executable, "-m", "sweep", "run", "chaos.yaml", "--no-report"], cwd=self.dirs[slot],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)})

    def study(self) -> optuna.Study | None:
        try:
            return optuna.load_study(study_name="chaos", storage=make_storage(self.url, create=False))
        except Exception:  # noqa: BLE001 - not created yet
            return None

    def observe(self) -> list:
        study = self.study()
        trials = study.get_trials() if study else []
        for t in trials:
            if t.state == TrialState.COMPLETE:
                self.completed.setdefault(t.number, t.value)
        return trials

    def run(self) -> float:
        began = time.monotonic()
        self.start(0)
        while self.study() is None:  # one process creates the study; then the others join
            assert self.workers[0].poll() is None, (self.logs / "worker-0.log").read_text()[-3000:]
            time.sleep(0.5)
        self.start(1)
        self.start(2)
        while self.kills < MIN_KILLS or self.false_recovery is None:
            time.sleep(self.random.uniform(0.5, 3.0))
            trials = self.observe()
            if sum(t.state in FINISHED for t in trials) >= N_TRIALS - 1:
                pytest.fail(f"the study nearly finished after only {self.kills} kills: make trials longer")
            if self.false_recovery is None and self.kills >= MIN_KILLS // 2:
                self._fail_a_live_trial(trials)
                continue
            if self.protected is not None and self._noticed():
                self.protected = None
            # Kill a worker while it trains (a kill during start-up costs no epochs: it measures nothing).
            # Each root at most MAX_RETRIES deaths: one more drops its configuration (tested apart).
            training = {int(str(t.user_attrs.get(attrs.WORKER, ":0")).rpartition(":")[2]): t for t in trials
                        if t.state == TrialState.RUNNING and t.user_attrs.get(attrs.EPOCHS_RUN)
                        and self.deaths[_root(t)] < MAX_RETRIES}
            slots = [i for i, w in enumerate(self.workers) if w.pid in training and w.pid != self.protected]
            if not slots:
                continue
            slot = self.random.choice(slots)
            self.killed.append(training[self.workers[slot].pid].number)
            self.deaths[_root(training[self.workers[slot].pid])] += 1
            self.workers[slot].send_signal(signal.SIGKILL)
            self.workers[slot].wait()
            self.kills += 1
            self.start(slot)
        deadline = time.monotonic() + 300
        for worker in self.workers:
            worker.wait(timeout=max(deadline - time.monotonic(), 1))
            assert worker.returncode == 0, f"a worker that was never killed exited {worker.returncode}"
        self.observe()
        return time.monotonic() - began

    def _fail_a_live_trial(self, trials) -> None:
        """What recovery does to a trial whose heartbeat is late (sweep.study.recovery.take_over:
        enqueue its retry, then fail it), done to a trial whose worker is alive and training.
        That worker is then spared until it has noticed (its warning is asserted)."""
        alive = {w.pid for w in self.workers if w.poll() is None}
        live = [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get(attrs.CHECKPOINT)
                and int(str(t.user_attrs.get(attrs.WORKER, ":0")).rpartition(":")[2]) in alive
                and self.deaths[_root(t)] < MAX_RETRIES]
        if not live:
            return
        if take_over(self.study(), live[0]._trial_id) is None:
            return  # it finished (or was recovered) since we looked: try another later
        self.deaths[_root(live[0])] += 1
        self.false_recovery = live[0].number
        self.protected = int(live[0].user_attrs[attrs.WORKER].rpartition(":")[2])

    def _noticed(self) -> bool:
        return any(f"trial {self.false_recovery} was failed under this worker" in p.read_text()
                   for p in self.logs.iterdir())


def _root(trial) -> int:
    return trial.system_attrs.get("failed_trial", trial.number)


def _check_invariants(chaos: Chaos) -> dict:
    trials = {t.number: t for t in chaos.study().get_trials()}
    finished = [t for t in trials.values() if t.state in FINISHED]
    assert len(finished) == N_TRIALS, "exactly the budget"
    assert not [t for t in trials.values() if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    for number, value in chaos.completed.items():
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == value, \
            f"trial {number} changed after it completed"

    def root(t):
        return t.system_attrs.get("failed_trial", t.number)

    roots = {root(t) for t in trials.values() if not t.user_attrs.get(attrs.SURPLUS) or "failed_trial" in t.system_attrs}
    finishes = {r: sum(root(t) == r for t in finished) for r in roots}
    assert all(count == 1 for count in finishes.values()), f"roots finished other than once: {finishes}"
    continued = {t.system_attrs["retry_history"][-1] for t in trials.values() if "retry_history" in t.system_attrs}
    assert not [t.number for t in trials.values() if t.user_attrs.get(attrs.DROPPED)], "no root died > MAX_RETRIES times"
    unfinished = {n for n in chaos.killed if trials[n].state not in FINISHED}  # (one may finish before the kill)
    assert unfinished <= continued, "every trial killed while it trained was retried"
    redone = []  # per retry: epochs its predecessor had reported that it trained again
    for retry in (t for t in trials.values() if "retry_history" in t.system_attrs and t.state in FINISHED):
        before = trials[retry.system_attrs["retry_history"][-1]]
        reported = max(before.intermediate_values, default=0)
        resumed = retry.user_attrs.get(attrs.RESUMED_FROM_EPOCH, 0)
        redone.append(reported - resumed)
        # A checkpoint is stored before its epoch is reported, so a retry starts at or after the
        # last reported epoch; at most the epoch in flight while the retry was being enqueued
        # (a late heartbeat's trial goes on training until it is failed) is trained again.
        assert reported - resumed <= 1, f"trial {retry.number} redid epochs {resumed + 1}..{reported} of " \
                                        f"trial {before.number}"
    false_recovered = trials[chaos.false_recovery]
    assert false_recovered.state == TrialState.FAIL
    outputs = [p.read_text() for p in sorted(chaos.logs.iterdir())]
    assert not [o for o in outputs if "Traceback" in o], "a traceback in a worker's output"
    warned = sum(f"trial {chaos.false_recovery} was failed under this worker" in o for o in outputs)
    assert warned == 1, "the worker whose trial was failed under it said so once"
    assert not list((Path(chaos.dirs[0]).parent / "checkpoints" / "chaos").iterdir()), "checkpoints left behind"
    return {"kills": chaos.kills, "workers started": chaos.started, "false recoveries noticed": warned,
            "retries": sum("failed_trial" in t.system_attrs for t in trials.values()),
            "trials killed": len(chaos.killed), "epochs redone per retry": redone, "epochs redone": sum(redone)}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_chaos(tmp_path, backend, request):
    url = f"sqlite:///{tmp_path}/chaos.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    chaos = Chaos(tmp_path, url, seed=int(os.environ.get("SWEEP_CHAOS_SEED", "0")))
    seconds = chaos.run()
    figures = _check_invariants(chaos)
    print(f"\nchaos ({backend}): {figures}, {seconds:.0f} s")
