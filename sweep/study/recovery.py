"""Finding trials whose worker is gone and continuing them: liveness and recovery.

A worker names itself on its trial (``attrs.WORKER``, ``host:pid``) and records
Optuna heartbeats while it trains. Another worker that finds the trial RUNNING with its
process gone (same host: the pid is dead; any host: the heartbeat is stale) fails it and
enqueues a retry with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``);
the retry continues from the trial's last epoch checkpoint.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweep import attrs
from sweep.storage.database import GRACE_PERIOD_S

log = logging.getLogger(__name__)

MAX_RETRIES = 3  # an interrupted trial is continued this many times at most


@contextmanager
def intended_optuna_use() -> Iterator[None]:
    """Hide Optuna's warnings about what this module does on purpose: the experimental
    heartbeat and retry API, used from an ask/tell loop rather than ``optimize``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


with intended_optuna_use():
    _RETRY = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES, inherit_intermediate_values=True)


def retry_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue the continuation of a failed trial: same parameters, user attrs and
    intermediate values (Optuna's retry callback), minus the dead worker's name, which
    would otherwise make the retry look orphaned the moment it is taken."""
    trial = copy.copy(trial)
    trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != attrs.WORKER}
    _RETRY(study, trial)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def recover_interrupted_trials(study: optuna.Study) -> int:
    """Fail and re-enqueue RUNNING trials whose process is gone; returns how many.

    On this host a dead pid is detected at once; elsewhere Optuna's heartbeat fails the
    trial once its grace period has passed (``fail_stale_trials`` runs the retry callback).
    """
    storage = study._storage  # noqa: SLF001 - Optuna's storage API is public; only the handle is not
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(attrs.WORKER, ""))
        if not _owner_is_gone(owner, trial.datetime_start):
            continue
        try:
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):  # noqa: SLF001
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker recovered it first
        retry_trial(study, storage.get_trial(trial._trial_id))  # noqa: SLF001
        log.warning("trial %d: its worker %s is gone; re-enqueued to continue from its checkpoint", trial.number, owner)
        recovered += 1
    with intended_optuna_use():
        optuna.storages.fail_stale_trials(study)
    return recovered


def _owner_is_gone(owner: str, started: datetime | None) -> bool:
    if not owner:
        # Killed between asking for the trial and naming itself: no heartbeat was ever
        # recorded either, so only the trial's age can tell.
        return started is not None and (datetime.now() - started).total_seconds() > GRACE_PERIOD_S
    owner_host, _, pid = owner.rpartition(":")
    return owner_host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is as dead as a missing process.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def beat_once(storage, trial: optuna.Trial) -> None:
    if getattr(storage, "get_heartbeat_interval", lambda: None)():
        storage.record_heartbeat(trial._trial_id)  # noqa: SLF001


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial: optuna.Trial) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (Optuna does this only in optimize)."""
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                storage.record_heartbeat(trial._trial_id)  # noqa: SLF001
            except Exception as exc:  # noqa: BLE001 - a missed beat must not kill training
                log.debug("heartbeat failed: %s", exc)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
