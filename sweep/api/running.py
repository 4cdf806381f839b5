"""``sweep.run`` and ``sweep.load``: the study life cycle ``sweep run`` drives, from Python.

The same functions as the CLI (``sweep.study.setup.open_study``, ``sweep.study.worker.run_worker``,
``sweep.report.write_report``), called with the caller's config, model and arrays. One
worker trains in this process; several are loky processes that receive the caller's
in-memory functions and arrays once (``sweep.training.in_memory.worker_pool``).
Errors are the CLI's ``SweepError`` lines, raised; an interrupt (Jupyter's stop button,
Ctrl-C) re-enqueues the running trial and raises ``KeyboardInterrupt``, and the next call
continues from that trial's last epoch.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, wait
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sweep.api.study import RESULTS_DIR, Study
from sweep.errors import ConfigError

log = logging.getLogger(__name__)
POLL_S = 1.0  # how often the bar reads the storage while worker processes train


def run(config: str | Path | Mapping | Any = None, *, model: Callable[..., Any] | None = None, data: Any = None,
        storage: str | None = None, n_trials: int | None = None, workers: int | None = None, force: bool = False,
        report: bool = True, progress: bool | str | None = None,
        on_epoch: Callable[[int, Any], None] | None = None, **overrides: Any) -> Study:
    """Create the study ``config`` describes, or continue it, until it holds its budget of
    finished trials, exactly as ``sweep run`` does (same name and storage: it resumes).

    ``config``: a YAML path, a dict in the YAML's shape or a ``Config``; ``overrides`` set
    fields by dotted key (``train__epochs=3``, ``train={"epochs": 3}``). ``model``: a
    builder ``(input_shape, num_classes) -> keras.Model`` (recorded by name and source hash:
    another function later is a config change, refused unless ``force``). ``data``:
    ``(x, y)``, ``(x, y, x_test, y_test)`` or a dict with the keys an .npz holds
    (fingerprinted like a file's). ``storage``: a SQLAlchemy URL (default
    ``study.storage``, else ``sqlite:///studies/<name>.db``). ``n_trials``: the study-wide
    budget (default ``study.n_trials``). ``workers``: processes (default ``study.workers``).
    ``report``: write ``results/<name>/`` at the end. ``progress``: a bar (default: in a
    notebook; ``"epochs"`` adds the running trial's epochs). ``on_epoch(trial, epoch)``:
    called after each epoch trained in this process.
    """
    from sweep.api.inputs import resolve
    from sweep.config import MAX_TRIALS, MAX_WORKERS
    from sweep.storage.database import resolve_storage_url

    resolved = resolve(config, overrides, model=model, data=data)
    _check_count("n_trials", n_trials, MAX_TRIALS)
    _check_count("workers", workers, MAX_WORKERS)
    workers = workers or resolved.study.workers
    if on_epoch is not None and workers > 1:
        raise ConfigError("on_epoch: called only for trials trained in this process; use workers=1 with it")
    url = resolve_storage_url(resolved.study.name, storage or resolved.study.storage)
    prepare()
    from sweep.api.progress import StudyProgress, in_notebook, terminal_log_lines
    from sweep.study.budget import budget
    from sweep.study.session import finish
    from sweep.study.setup import open_study

    show_bar = in_notebook() if progress is None else bool(progress)
    with nullcontext() if show_bar else terminal_log_lines():
        study = open_study(resolved, url, force=force, n_trials=n_trials)
        if budget(study).left:
            bar = StudyProgress(study, epochs_per_trial=resolved.train.epochs, epochs=progress == "epochs",
                                metric=resolved.study.metric) if show_bar else None
            try:
                deadline = time.time() + resolved.study.timeout_s if resolved.study.timeout_s else None
                if workers == 1:
                    _in_process(study, url, resolved, deadline, bar, on_epoch)
                else:
                    _in_workers(study, url, resolved, workers, deadline, bar)
            finally:
                if bar is not None:
                    bar.close()
        finish(study, resolved)
        result = Study(study, url)
        if report:
            result.report(RESULTS_DIR / study.study_name)
    return result


def load(name: str, storage: str | None = None) -> Study:
    """The stored study ``name`` (in ``storage``, default ``sqlite:///studies/<name>.db``);
    ``name`` may also be ``URL#NAME``."""
    from sweep.report.data.source import split_spec
    from sweep.storage.database import load_study, resolve_storage_url

    name, url = split_spec(name)
    if url and storage:
        raise ConfigError(f"{name!r}: give the storage either as URL#NAME or as storage=, not both")
    url = resolve_storage_url(name, url or storage)
    return Study(load_study(name, url), url)


def _check_count(name: str, value: int | None, maximum: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum):
        raise ConfigError(f"{name}: expected a whole number from 1 to {maximum}, got {value!r}")


def prepare() -> None:
    """What the CLI does before a study runs: Optuna's own log quieted, Keras imported
    without TensorFlow's start-up banners."""
    from sweep.logs import import_keras_quietly, quiet_tensorflow
    from sweep.study.session import quiet_optuna

    quiet_tensorflow()
    import_keras_quietly()
    quiet_optuna()


def _in_process(study, url: str, config, deadline: float | None, bar, on_epoch) -> None:
    from sweep.study.worker import run_worker

    def epoch(trial: int, entry: Any) -> None:
        if bar is not None:
            bar.epoch(trial, entry)
        if on_epoch is not None:
            on_epoch(trial, entry)

    run_worker(study.study_name, url, config=config, deadline=deadline,
               on_trial=bar.update if bar is not None else None,
               on_epoch=epoch if bar is not None or on_epoch is not None else None)


def _in_workers(study, url: str, config, workers: int, deadline: float | None, bar) -> None:
    """``workers`` loky processes, each running the worker loop until the budget is spent."""
    from sweep.training.in_memory import worker_pool

    level = logging.getLogger("sweep").getEffectiveLevel()
    with worker_pool(workers, (config.model.builder, config.data.loader)) as pool:
        futures = [pool.submit(_worker, study.study_name, url, config.to_dict(), index, level, deadline)
                   for index in range(workers)]
        try:
            pending = futures
            while pending:
                done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_EXCEPTION)
                if bar is not None:
                    bar.update(study)
                for future in done:
                    future.result()  # a worker's SweepError, raised here
        except BaseException:
            # Ctrl-C or a failed worker: the others stop cleanly (SIGTERM re-enqueues their trials).
            for process in list(getattr(pool, "_processes", {}).values()):
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)
            wait(futures)
            raise


def _worker(name: str, url: str, config_dict: dict, index: int, level: int, deadline: float | None) -> str:
    """One worker process: logging like the caller's, Keras quietly, then the worker loop."""
    from sweep.config import config_from_dict
    from sweep.logs import import_keras_quietly, quiet_tensorflow, setup_logging
    from sweep.study.session import quiet_optuna
    from sweep.study.worker import run_worker

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX would take 75% of a GPU per worker
    quiet_tensorflow()
    setup_logging(level, prefix=f"w{index} ")
    quiet_optuna()
    import_keras_quietly()
    return run_worker(name, url, worker_index=index, config=config_from_dict(config_dict), deadline=deadline)
