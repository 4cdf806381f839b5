"""Finding trials whose worker is gone and continuing them: liveness and recovery.

A worker names itself on its trial (``attrs.WORKER``, ``host:pid``) and records
Optuna heartbeats while it trains. Another worker that finds the trial RUNNING with its
process gone (same host: the pid is dead; any host: the heartbeat is stale) fails it and
enqueues a retry with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``);
the retry continues from the trial's last epoch checkpoint.

Recovery is single: a trial is failed by one atomic state change (``fail_once``), and
only the process whose change it was enqueues the retry, whoever else (another worker,
Optuna's heartbeat check, the trial's own worker on SIGINT) tries at the same moment.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweep import attrs
from sweep.storage.artifacts import remove_checkpoints
from sweep.storage import optuna_private as private
from sweep.storage.database import GRACE_PERIOD_S

log = logging.getLogger(__name__)

# A trial whose worker *died* (killed, out of memory, a power cut) is continued this many
# times at most: a configuration that kills its worker every time must not stall the study.
# A user's Ctrl-C or SIGTERM, and a failing checkpoint store, never count.
MAX_RETRIES = 3


@contextmanager
def intended_optuna_use() -> Iterator[None]:
    """Hide Optuna's warnings about what this module does on purpose: the experimental
    heartbeat and retry API, used from an ask/tell loop rather than ``optimize``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


_FAILED_TRIAL, _RETRY_HISTORY = "failed_trial", "retry_history"  # system attrs of Optuna's retry callback
_TOKEN = "sweep:retry_token"  # names one enqueued retry, so the process that made it can retire it
_REQUEUED_FROM = "sweep:requeued_from"  # on a surplus retry put back: the number of the trial it was
_CRASHES = "sweep:crashes"  # the trials of this root whose worker died (not a user's interrupt)


def retry_trial(study: optuna.Study, trial: FrozenTrial, *, crashed: bool = True) -> str | None:
    """Enqueue the continuation of an interrupted trial, as Optuna's
    ``RetryHeartbeatStaleTrialCallback`` does (same parameters, user attrs, its checkpoint
    among them, and intermediate values; system attrs ``failed_trial`` and
    ``retry_history``), minus the dead worker's name, which would otherwise make the retry
    look orphaned the moment it is taken. Not when the trial has a retry already, nor when
    ``crashed`` (its worker died, as opposed to a user's Ctrl-C or SIGTERM or a failing
    store, which never count) and its root's workers died ``MAX_RETRIES`` times before.
    Returns a token naming the new retry (None: none made)."""
    if _has_retry(study, trial.number):
        return None
    crashes = [*trial.system_attrs.get(_CRASHES, []), *([trial.number] if crashed else [])]
    if len(crashes) > MAX_RETRIES:
        return None
    token = uuid.uuid4().hex
    system_attrs = {**trial.system_attrs, _FAILED_TRIAL: trial.system_attrs.get(_FAILED_TRIAL, trial.number),
                    _RETRY_HISTORY: [*trial.system_attrs.get(_RETRY_HISTORY, []), trial.number], _TOKEN: token,
                    _CRASHES: crashes}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k != attrs.WORKER},
        system_attrs=system_attrs, intermediate_values=trial.intermediate_values))
    return token


RETRIED, DROPPED = "retried", "dropped"


def take_over(study: optuna.Study, trial_id: int, *, crashed: bool = True) -> str | None:
    """Fail a running trial whose worker is gone (or was interrupted), leaving exactly one
    retry. Returns ``RETRIED`` or ``DROPPED`` (its worker died too often: the configuration
    is given up, and the trial says why in ``attrs.DROPPED``) when this call failed it, None
    when another process did or it was finished already.

    The retry is enqueued before the trial is failed: a process killed between the two
    leaves the trial RUNNING with its retry waiting (the next recovery only fails it),
    never FAIL without a retry. Of two processes taking over one trial at once, the one
    whose failure lands keeps its retry and the other retires its own."""
    storage = private.storage_of(study)
    frozen = storage.get_trial(trial_id)
    if frozen.state.is_finished():
        return None
    token = retry_trial(study, frozen, crashed=crashed)
    dropped = token is None and not _has_retry(study, frozen.number)
    if dropped:
        deaths = len(frozen.system_attrs.get(_CRASHES, [])) + 1
        reason = (f"its worker died {deaths} times while training it (the limit is {MAX_RETRIES} retries "
                  "after a worker's death; interruptions by Ctrl-C or SIGTERM do not count)")
        try:
            storage.set_trial_user_attr(trial_id, attrs.DROPPED, reason)
        except optuna.exceptions.UpdateFinishedTrialError:
            return None
    if fail_once(storage, trial_id):
        if dropped:
            root = frozen.system_attrs.get(_FAILED_TRIAL, frozen.number)
            log.warning("trial %d (continuing trial %d) dropped: %s; configuration %s is given up and another is "
                        "sampled in its place", frozen.number, root, reason, frozen.params)
        return DROPPED if dropped else RETRIED
    if token is not None:
        _retire(study, token)
    return None


def _has_retry(study: optuna.Study, number: int) -> bool:
    return any(t.system_attrs.get(_RETRY_HISTORY, [])[-1:] == [number] or t.system_attrs.get(_REQUEUED_FROM) == number
               for t in study.get_trials(deepcopy=False))


def _retire(study: optuna.Study, token: str) -> None:
    storage = private.storage_of(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        if trial.system_attrs.get(_TOKEN) == token:
            try:
                storage.set_trial_user_attr(private.trial_id(trial), attrs.SURPLUS, True)
            except optuna.exceptions.UpdateFinishedTrialError:
                return
            fail_once(storage, private.trial_id(trial))


def fail_once(storage: optuna.storages.BaseStorage, trial_id: int) -> bool:
    """Mark a trial FAIL unless it is finished already; True when this call did it (the
    caller then owns the trial's one retry)."""
    try:
        return storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def is_retry(storage: optuna.storages.BaseStorage, trial: optuna.Trial) -> bool:
    return _FAILED_TRIAL in storage.get_trial_system_attrs(private.trial_id(trial))


def requeue_surplus_retry(study: optuna.Study, trial: optuna.Trial) -> None:
    """A retry taken when running trials hold every slot of the budget: put it back as it
    was (same retry history, checkpoint and all), to be continued if one of them fails."""
    storage = private.storage_of(study)
    frozen = storage.get_trial(private.trial_id(trial))
    token = uuid.uuid4().hex
    # Queued before the trial is failed, as in take_over: a process killed between the two
    # leaves the trial RUNNING with its copy waiting, and recovery (which sees the copy by
    # _REQUEUED_FROM) only fails it; never a FAIL with nothing to continue the root.
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=frozen.params, distributions=frozen.distributions,
        user_attrs={k: v for k, v in frozen.user_attrs.items() if k != attrs.WORKER},
        system_attrs={**frozen.system_attrs, _TOKEN: token, _REQUEUED_FROM: trial.number},
        intermediate_values=frozen.intermediate_values))
    if not fail_once(storage, private.trial_id(trial)):
        _retire(study, token)
        return
    log.info("trial %d: a retry taken while the budget's slots were all running; re-enqueued", trial.number)


def retire_leftover_retries(study: optuna.Study, store) -> int:
    """Once the budget is spent, retries still waiting (enqueued after every slot was
    taken) are never needed: mark them surplus, FAIL, and remove their checkpoints."""
    storage = private.storage_of(study)
    retired = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if _FAILED_TRIAL not in trial.system_attrs:
            continue
        try:
            storage.set_trial_user_attr(private.trial_id(trial), attrs.SURPLUS, True)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        if fail_once(storage, private.trial_id(trial)):
            retired.append(trial)
    if retired:
        remove_checkpoints(store, retired)
        log.info("budget spent: %d waiting retries marked surplus", len(retired))
    return len(retired)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def recover_interrupted_trials(study: optuna.Study) -> int:
    """Fail and re-enqueue RUNNING trials whose process is gone; returns how many.

    On this host a dead pid is detected at once; on any host a trial whose Optuna heartbeat
    is older than the grace period is taken over too. Both go through ``take_over``
    (retry enqueued, then the trial failed), not Optuna's ``fail_stale_trials``, which fails
    first and enqueues in a callback after: a checker killed between those two steps would
    leave the trial FAIL with no retry.
    """
    recovered = 0
    stale = set(_stale_trial_ids(study))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(attrs.WORKER, ""))
        silent = private.trial_id(trial) in stale
        if not silent and not _owner_is_gone(owner, trial.datetime_start):
            continue
        outcome = take_over(study, private.trial_id(trial))
        if outcome is None:
            continue  # another worker recovered it first
        if outcome == RETRIED:
            log.warning("trial %d: its worker %s is %s; re-enqueued to continue from its checkpoint", trial.number,
                        owner or "unnamed", "silent (no heartbeat within the grace period)" if silent else "gone")
        recovered += 1
    return recovered


def _stale_trial_ids(study: optuna.Study) -> list[int]:
    with intended_optuna_use():
        return private.stale_trial_ids(study)


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
        storage.record_heartbeat(private.trial_id(trial))


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial: optuna.Trial) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (Optuna does this only in optimize)."""
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        failing = False
        while True:
            try:
                storage.record_heartbeat(private.trial_id(trial))
            except Exception as exc:  # noqa: BLE001 - a missed beat must not kill training
                if not failing:  # once per outage, not every interval
                    log.warning("trial %d: heartbeat not recorded (%s); after %d s without one another worker "
                                "takes the trial as orphaned and retries it", trial.number,
                                str(exc).splitlines()[0][:200], GRACE_PERIOD_S)
                failing = True
            else:
                if failing:
                    log.warning("trial %d: heartbeat recorded again", trial.number)
                failing = False
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
