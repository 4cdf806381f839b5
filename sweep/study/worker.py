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
   trained; a retry is put back in the queue instead, and retired only once the budget
   is spent), train, tell (skipping a trial another worker's recovery failed meanwhile:
   its retry counts instead).

SIGTERM is turned into KeyboardInterrupt: the running trial is failed and re-enqueued
at once, so no RUNNING trial is left behind and the next run continues it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from sweep import attrs
from sweep.config import Config, family_terms
from sweep.errors import DISK_FULL_ERRNOS, CheckpointStoreError, TrainingError, TrialTakenOver
from sweep.storage.artifacts import open_artifact_store
from sweep.storage.database import make_storage, mask_url, storage_key
from sweep.storage.optuna_private import trial_id
from sweep.storage.records import study_attrs
from sweep.study.budget import FINISHED, budget, is_surplus
from sweep.study.recovery import (RETRIED, beat_once, heartbeat, intended_optuna_use, is_retry,
                                  recover_interrupted_trials, requeue_surplus_retry, retire_leftover_retries, take_over,
                                  worker_name)
from sweep.study.signals import GracefulStop

if TYPE_CHECKING:  # the trainer imports Keras, which callers import first
    from sweep.training.trainer import EpochLog

log = logging.getLogger(__name__)
MAX_CONSECUTIVE_FAILURES = 3  # a worker whose trials keep raising stops: it is a bug, not bad luck
_STORE_FAULT = "store fault"  # _run_trial's outcome when the checkpoint store failed (the trial is re-enqueued)
WAIT_FOR_OTHERS_S = 2.0  # poll interval while other workers finish the last trials


def run_worker(
    study_name: str,
    storage_url: str,
    *,
    worker_index: int = 0,
    config: Config | None = None,
    max_trials: int | None = None,
    deadline: float | None = None,
    on_trial: Callable[[optuna.Study], None] | None = None,
    on_epoch: Callable[[int, EpochLog], None] | None = None,
) -> str:
    """Run trials of the study until its budget is spent, ``max_trials`` trials have run
    here, or the wall-clock ``deadline`` (``time.time()``) has passed.

    Returns why it stopped: ``"budget"``, ``"max_trials"`` (the caller may continue in a
    fresh process: Keras leaks about 15 MB per model, GUIDE §4) or ``"timeout"``.
    On SIGINT or SIGTERM it re-enqueues its running trial and raises KeyboardInterrupt.
    Callers import Keras first (the CLI does so with TensorFlow's start-up noise silenced).
    ``on_trial(study)`` runs after each trial this worker finishes, ``on_epoch(trial number,
    epoch)`` after each epoch it trains (the Python API's progress bars and hooks).
    """
    with intended_optuna_use():
        storage = make_storage(storage_url, create=False, heartbeat=True)
    study = optuna.load_study(study_name=study_name, storage=storage)
    from sweep.study.setup import check_training_set, ensure_study_uuid, stored_config

    config = config or stored_config(study)
    from sweep.training.data import load_dataset
    from sweep.search.objective import Objective, build_pruner
    from sweep.search.prior import build_sampler

    # Seeded by the study seed, the worker and the trials so far: reproducible, yet a
    # restarted run does not replay the random startup draws of the first one.
    seed = (config.study.seed + 7919 * worker_index + 104_729 * len(study.get_trials(deepcopy=False))) % 2**31
    records = study_attrs(study)
    study.sampler = build_sampler(config, records.get(attrs.PRIOR), seed=seed)
    data = load_dataset(config.data, config.study.seed, config.study.code_dir)
    check_training_set(study, config, data)
    study.pruner = build_pruner(config.study, config.train.epochs, len(data.y_val))
    _enable_gpu_memory_growth()
    store = open_artifact_store(study_name, config.study.checkpoint_store)
    objective = Objective(config, data, records[attrs.SEARCH_SPACE], store, worker_name(),
                          ensure_study_uuid(study), on_epoch=on_epoch, storage_key=storage_key(storage_url))
    try:
        return _worker_loop(study, storage, objective, config, worker_index, max_trials, deadline, on_trial)
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
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        raise TrainingError(f"cannot write {exc.filename or 'a checkpoint'}: {exc.strerror}; free space, then rerun "
                            "(the study continues where it stopped)") from None


def _worker_loop(study, storage, objective, config: Config, worker_index: int, max_trials: int | None,
                 deadline: float | None, on_trial: Callable[[optuna.Study], None] | None = None) -> str:
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
                retire_leftover_retries(study, objective.store)
                reason = "budget"
                break
            if status.finished + status.running >= status.total:
                time.sleep(WAIT_FOR_OTHERS_S)  # the last slots are taken; wait in case one is interrupted
                continue
            if stop.requested:
                break
            with intended_optuna_use():
                trial = study.ask()
            try:
                trial.set_user_attr(attrs.WORKER, objective.worker)
                beat_once(storage, trial)  # a worker killed before training starts is still detectable
                if is_surplus(study, trial, status.total):
                    if is_retry(storage, trial):
                        requeue_surplus_retry(study, trial)  # it waits for a slot, checkpoint and all
                    else:
                        trial.set_user_attr(attrs.SURPLUS, True)
                        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # a duplicate retry, retired by the worker that made it (recovery.take_over)
            # No keras.backend.clear_session() here: the objective reuses one compiled model
            # (sweep.training.model_cache), which leaves about 0.4 MB a trial; clear_session() would
            # free that but costs 0.3 s a trial (its gc.collect()).
            state = _run_trial(study, storage, trial, objective, stop)
            done += 1
            if on_trial is not None:
                on_trial(study)
            if state is None:
                continue  # taken over by its retry: nobody's fault
            if state in (TrialState.FAIL, _STORE_FAULT):
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    what = "could not save or load a checkpoint" if state is _STORE_FAULT else "failed"
                    raise TrainingError(f"{failures} trials in a row {what}; see the log above for the error"
                                        + (" (their checkpoints are kept and they are re-enqueued: fix the "
                                           "checkpoint store, then rerun)" if state is _STORE_FAULT else ""))
            else:
                failures = 0
                _log_progress(study, worker_index)
    if stop.requested:
        raise KeyboardInterrupt("stopped by signal")
    return reason


def _run_trial(
    study: optuna.Study, storage: optuna.storages.BaseStorage, trial: optuna.Trial, objective, stop: GracefulStop
) -> TrialState | None:
    """Train and tell one trial; its final state, or None when another worker's recovery
    failed it under this one (its retry continues it from its checkpoint).

    Every tell skips a trial that is finished already, so a late tell never raises."""
    started = time.monotonic()
    try:
        with heartbeat(storage, trial), stop.interruptible():
            value = objective(trial)
    except optuna.TrialPruned as exc:
        if not _tell(study, trial, TrialState.PRUNED, objective=objective):
            return None
        log.info("trial %d pruned: %s (%.1fs)", trial.number, exc, time.monotonic() - started)
        return TrialState.PRUNED
    except TrialTakenOver:
        _taken_over(trial)
        return None
    except KeyboardInterrupt:
        _requeue(study, trial, "interrupted")
        raise
    except KeyError:
        raise  # the storage lost a record: run_worker tells whether the study is gone
    except optuna.exceptions.StorageInternalError:
        raise  # nothing can be recorded; the trial is recovered by the next run
    except CheckpointStoreError as exc:
        # The store's fault, not the trial's: its checkpoints stay and it is continued later.
        _requeue(study, trial, f"checkpoint store failed ({exc})")
        return _STORE_FAULT
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            _requeue(study, trial, f"disk full or read-only ({exc.strerror})")
            raise
        log.exception("trial %d failed with %s", trial.number, trial.params)
        return TrialState.FAIL if _tell(study, trial, TrialState.FAIL, objective=objective) else None
    except Exception:
        log.exception("trial %d failed with %s", trial.number, trial.params)
        return TrialState.FAIL if _tell(study, trial, TrialState.FAIL, objective=objective) else None
    if not _tell(study, trial, TrialState.COMPLETE, value, objective=objective):
        return None
    log.info("trial %d: %s -> %.4f (%.1fs)", trial.number, _describe(trial.params), value, time.monotonic() - started)
    return TrialState.COMPLETE


def _tell(study: optuna.Study, trial: optuna.Trial, state: TrialState, value: float | None = None, *,
          objective) -> bool:
    """Tell the trial's outcome, then remove its checkpoints (only now is nothing lost with
    them); False (with a warning) when it was already finished by another worker's
    recovery, whose retry then counts instead of this result and needs the checkpoints."""
    frozen = study.tell(trial, value if state is TrialState.COMPLETE else None,
                        state=None if state is TrialState.COMPLETE else state, skip_if_finished=True)
    if frozen.state is state and (state is not TrialState.COMPLETE or frozen.value == value):
        objective.finish()
        return True
    _taken_over(trial)
    return False


def _taken_over(trial: optuna.Trial) -> None:
    log.warning("trial %d was failed under this worker by another worker's recovery (a late heartbeat); "
                "its retry continues it from its last checkpoint, so this worker goes on with another trial",
                trial.number)


def _requeue(study: optuna.Study, trial: optuna.Trial, why: str = "interrupted") -> None:
    """Fail a trial stopped by a user's signal or a failing store and enqueue its continuation
    (same parameters, its checkpoint), unless another worker failed it first: that worker
    enqueued the one retry. Neither counts toward the retry limit (``recovery.MAX_RETRIES``)."""
    if take_over(study, trial_id(trial), crashed=False) == RETRIED:
        log.warning("trial %d %s; re-enqueued to continue from its last epoch", trial.number, why)


def _describe(params: dict) -> str:
    parts = [f"{params.get('schedule')}", f"lr {params.get('initial_lr', math.nan):.2e}"]
    if params.get("warmup_fraction"):
        parts.append(f"warmup {params['warmup_fraction']:.2f}")
    return " ".join(parts + family_terms(params))


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
