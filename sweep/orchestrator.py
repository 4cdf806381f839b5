"""Running a study's trials until its budget is spent: the worker loop, recovery, workers.

Optuna's ``optimize`` counts ``n_trials`` per call, overshoots with several workers and
leaves a killed process's trial RUNNING forever (GUIDE §4). So each worker drives
ask/tell itself:

1. recover interrupted trials: RUNNING trials whose process is dead (same host: its
   pid is gone; any host: its heartbeat is stale) are failed and re-enqueued with the
   same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``); the retry continues
   from the trial's last epoch checkpoint;
2. check the study-wide budget: finished (complete + pruned) trials, and trials still
   running, against ``attrs.N_TRIALS``;
3. ask (enqueued retries and seeds come first), claim the slot (a trial asked for
   after lower-numbered trials took the last slots is marked FAIL as surplus, never
   trained), train, tell.

SIGTERM is turned into KeyboardInterrupt: the running trial is failed and re-enqueued
at once, so no RUNNING trial is left behind and the next run continues it.
"""

from __future__ import annotations

import copy
import errno
import logging
import math
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweep import attrs
from sweep.config import Config
from sweep.errors import TrainingError
from sweep.storage import GRACE_PERIOD_S, STUDIES_DIR, make_storage, mask_url

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_DISK_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)  # the worker stops: every trial would fail
MAX_RETRIES = 3  # an interrupted trial is continued this many times at most
MAX_CONSECUTIVE_FAILURES = 3  # a worker whose trials keep raising stops: it is a bug, not bad luck
WAIT_FOR_OTHERS_S = 2.0  # poll interval while other workers finish the last trials



@contextmanager
def _intended_optuna_use() -> Iterator[None]:
    """Hide Optuna's warnings about what this module does on purpose: the experimental
    heartbeat and retry API, used from an ask/tell loop rather than ``optimize``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


with _intended_optuna_use():
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


def checkpoints_dir(study_name: str) -> Path:
    return STUDIES_DIR / study_name


@dataclass
class Budget:
    total: int
    finished: int
    running: int

    @property
    def left(self) -> int:
        return max(self.total - self.finished, 0)


def budget(study: optuna.Study) -> Budget:
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    finished = sum(t.state in FINISHED for t in trials)
    total = int(study.user_attrs.get(attrs.N_TRIALS, 0))
    return Budget(total=total, finished=finished, running=len(trials) - finished)


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
    with _intended_optuna_use():
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


def _is_surplus(study: optuna.Study, trial: optuna.Trial, total: int) -> bool:
    """Whether lower-numbered trials already take the whole budget (workers raced for it)."""
    states = (*FINISHED, TrialState.RUNNING)
    ahead = sum(t.number < trial.number for t in study.get_trials(deepcopy=False, states=states))
    return ahead >= total


def _beat_once(storage, trial: optuna.Trial) -> None:
    if getattr(storage, "get_heartbeat_interval", lambda: None)():
        storage.record_heartbeat(trial._trial_id)  # noqa: SLF001


@contextmanager
def _heartbeat(storage: optuna.storages.BaseStorage, trial: optuna.Trial) -> Iterator[None]:
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


class GracefulStop:
    """SIGINT and SIGTERM stop the worker cleanly, within seconds.

    While a trial trains, the signal raises KeyboardInterrupt there (the trial is then
    re-enqueued from its checkpoint); anywhere else (asking, telling, waiting) it only
    sets ``requested`` and the loop stops before the next trial, so a signal never
    lands half-way through a storage update. A second signal during clean-up is absorbed.
    """

    def __init__(self) -> None:
        self.requested = False
        self._in_trial = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        self.requested = True
        if self._in_trial:
            self._in_trial = False
            raise KeyboardInterrupt(f"signal {signum}")

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        if self.requested:
            raise KeyboardInterrupt("stop requested")
        self._in_trial = True
        try:
            yield
        finally:
            self._in_trial = False


def run_worker(
    study_name: str,
    storage_url: str,
    *,
    worker_index: int = 0,
    config: Config | None = None,
    max_trials: int | None = None,
    deadline: float | None = None,
) -> str:
    """Run trials of the study until its budget is spent, ``max_trials`` trials have run
    here, or the wall-clock ``deadline`` (``time.time()``) has passed.

    Returns why it stopped: ``"budget"``, ``"max_trials"`` (the caller may continue in a
    fresh process: Keras leaks about 15 MB per model, GUIDE §4) or ``"timeout"``.
    On SIGINT or SIGTERM it re-enqueues its running trial and raises KeyboardInterrupt.
    Callers import Keras first (the CLI does so with TensorFlow's start-up noise silenced).
    """
    with _intended_optuna_use():
        storage = make_storage(storage_url, create=False, heartbeat=True, heartbeat_stale_trial_callback=retry_trial)
    study = optuna.load_study(study_name=study_name, storage=storage)
    from sweep.study_setup import stored_config

    config = config or stored_config(study)
    from sweep.data import load_dataset
    from sweep.objective import Objective, build_pruner
    from sweep.prior import build_sampler

    # Seeded by the study seed, the worker and the trials so far: reproducible, yet a
    # restarted run does not replay the random startup draws of the first one.
    seed = (config.study.seed + 7919 * worker_index + 104_729 * len(study.get_trials(deepcopy=False))) % 2**31
    study.sampler = build_sampler(config, study.user_attrs.get(attrs.PRIOR), seed=seed)
    study.pruner = build_pruner(config.study, config.train.epochs)
    data = load_dataset(config.data, config.study.seed)
    _enable_gpu_memory_growth()
    objective = Objective(config, data, study.user_attrs[attrs.SEARCH_SPACE], checkpoints_dir(study_name), worker_name())
    try:
        return _worker_loop(study, storage, objective, config, worker_index, max_trials, deadline)
    except KeyError:
        # Optuna's storage raises KeyError for a record that is gone: the study was
        # deleted under us. Say so in one line instead of a storage traceback.
        if study_name in {s.study_name for s in storage.get_all_studies()}:
            raise
        raise TrainingError(f"study {study_name!r} was deleted while this worker ran; stopped") from None
    except optuna.exceptions.StorageInternalError as exc:
        cause = str(exc.__cause__ or exc).splitlines()[0]
        raise TrainingError(f"storage {mask_url(storage_url)} cannot be written ({cause[:200]}); "
                            "what was stored before is intact; free space or fix the database, then rerun") from None
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        raise TrainingError(f"cannot write {exc.filename or 'a checkpoint'}: {exc.strerror}; free space, then rerun "
                            "(the study continues where it stopped)") from None


def _worker_loop(study, storage, objective, config: Config, worker_index: int, max_trials: int | None,
                 deadline: float | None) -> str:
    deadline = math.inf if deadline is None else deadline
    done = failures = 0
    reason = "timeout"
    with GracefulStop() as stop:
        while time.time() < deadline and not stop.requested:
            if max_trials is not None and done >= max_trials:
                reason = "max_trials"
                break
            recover_interrupted_trials(study)
            status = budget(study)
            if status.finished >= status.total:
                reason = "budget"
                break
            if status.finished + status.running >= status.total:
                time.sleep(WAIT_FOR_OTHERS_S)  # the last slots are taken; wait in case one is interrupted
                continue
            if stop.requested:
                break
            with _intended_optuna_use():
                trial = study.ask()
            trial.set_user_attr(attrs.WORKER, objective.worker)
            _beat_once(storage, trial)  # a worker killed before training starts is still detectable
            if _is_surplus(study, trial, status.total):
                trial.set_user_attr(attrs.SURPLUS, True)
                study.tell(trial, state=TrialState.FAIL)
                continue
            # No keras.backend.clear_session() here: the objective reuses one compiled model
            # (sweep.model_cache), which leaves about 0.4 MB a trial; clear_session() would
            # free that but costs 0.3 s a trial (its gc.collect()).
            state = _run_trial(study, storage, trial, objective, stop)
            done += 1
            if state is TrialState.FAIL:
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    raise TrainingError(f"{failures} trials in a row failed; see the log above for the error")
            else:
                failures = 0
                _log_progress(study, worker_index)
    if stop.requested:
        raise KeyboardInterrupt("stopped by signal")
    return reason


def _run_trial(
    study: optuna.Study, storage: optuna.storages.BaseStorage, trial: optuna.Trial, objective, stop: GracefulStop
) -> TrialState:
    started = time.monotonic()
    try:
        with _heartbeat(storage, trial), stop.interruptible():
            value = objective(trial)
    except optuna.TrialPruned as exc:
        study.tell(trial, state=TrialState.PRUNED)
        log.info("trial %d pruned: %s (%.1fs)", trial.number, exc, time.monotonic() - started)
        return TrialState.PRUNED
    except KeyboardInterrupt:
        _requeue(study, trial)
        raise
    except KeyError:
        raise  # the storage lost a record: run_worker tells whether the study is gone
    except optuna.exceptions.StorageInternalError:
        raise  # nothing can be recorded; the trial is recovered by the next run
    except OSError as exc:
        if exc.errno in _DISK_ERRORS:
            raise
        log.exception("trial %d failed with %s", trial.number, trial.params)
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    except Exception:
        log.exception("trial %d failed with %s", trial.number, trial.params)
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    study.tell(trial, value)
    log.info("trial %d: %s -> %.4f (%.1fs)", trial.number, _describe(trial.params), value, time.monotonic() - started)
    return TrialState.COMPLETE


def _requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """Fail an interrupted trial and enqueue its continuation (same parameters, its checkpoint)."""
    frozen = study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    retry_trial(study, frozen)
    log.warning("trial %d interrupted; re-enqueued to continue from its last epoch", trial.number)


def _describe(params: dict) -> str:
    parts = [f"{params.get('schedule')}", f"lr {params.get('initial_lr', math.nan):.2e}"]
    if params.get("warmup_fraction"):
        parts.append(f"warmup {params['warmup_fraction']:.2f}")
    if "decay_rate" in params:
        parts.append(f"decay {params['decay_rate']:.2f}/{params['decay_steps']}")
    return " ".join(parts)


def _log_progress(study: optuna.Study, worker_index: int) -> None:
    status = budget(study)
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in finished
                 if t.datetime_complete and t.datetime_start]
    workers = max(status.running, 1)
    eta = status.left * (sum(durations) / len(durations)) / workers if durations else math.nan
    try:
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:
        best = "no complete trial yet"
    log.info("[worker %d] %d/%d trials finished, %s, about %s left", worker_index, status.finished, status.total, best,
             _duration(eta))


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "? s"
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _enable_gpu_memory_growth() -> None:
    """Let several workers share a GPU: TensorFlow would otherwise take all its memory."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised in this process
