"""Final evaluation: retrain a study's best configurations with several seeds and score them
on the test split.

The only code that reads the test split. Each of the top K trials is retrained from
scratch R times (seeds: the trial's own, then the next R - 1 integers) on the training
plus validation images (the search is over, so nothing is held out for selection any
more) for ``train.epochs`` epochs, then scored once on the test images. The schedule is
laid out over the longer run (more images per epoch means more optimizer steps), as
``sweep train`` would lay it out for that data.

The K x R retrainings are independent, so they run in parallel worker processes
(joblib's loky backend: fresh interpreters that each load the data once and keep it
for the next run they are given), at most one per core. Each finished run is stored at
once in the study attr ``sweep:evaluation:<trial>`` (mean, sd and every run, compact so
the attr stays under optuna-dashboard's 1,024 characters), so an interrupted evaluation
keeps what it finished, and ``sweep report`` shows it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from sweep import attrs
from sweep.config import Config, config_from_dict
from sweep.errors import StudyError
from sweep.storage.records import read_config, set_study_attr
from sweep.study.code import check_code

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 1024  # scoring only: larger batches are faster and change nothing
MAX_REPEATS = 20  # keeps one trial's attr under 1,024 characters (about 30 a run)


@dataclass(frozen=True)
class Run:
    seed: int
    test_score: float  # study.metric's counterpart on the test split (test_metric): accuracy, MAE, ...
    test_loss: float | None  # None: the retraining diverged
    seconds: float

    def compact(self) -> list:
        loss = None if self.test_loss is None or not math.isfinite(self.test_loss) else round(self.test_loss, 5)
        return [self.seed, round(self.test_score, 5), loss, round(self.seconds, 1)]


@dataclass
class Evaluation:
    """One configuration's retrainings: its trial number, params and runs."""

    trial: int
    params: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(r.test_score for r in self.runs)

    @property
    def sd(self) -> float:
        return statistics.stdev(r.test_score for r in self.runs) if len(self.runs) > 1 else math.nan

    def to_attr(self) -> dict[str, Any]:
        sd = self.sd
        return {"trial": self.trial, "mean": round(self.mean, 5), "sd": None if math.isnan(sd) else round(sd, 5),
                "runs": [r.compact() for r in sorted(self.runs, key=lambda r: r.seed)]}


def attr_key(trial: int) -> str:
    return f"{attrs.EVALUATION_PREFIX}{trial}"


def study_config(study: optuna.Study, code_dir: str | None = None) -> Config:
    """The study's stored config; ``code_dir`` (``--code-dir``, trusted by the caller) replaces
    its ``study.code_dir``, which is only a hint (``sweep.config.code_dirs``)."""
    raw = read_config(study)
    if raw is None:
        raise StudyError(f"study {study.study_name!r} has no stored config ({attrs.CONFIG}); "
                         "evaluate works on studies made by 'sweep run'")
    config = config_from_dict(raw, f"study {study.study_name} config")
    if code_dir is None:
        return config
    return config.model_copy(update={"study": config.study.model_copy(update={"code_dir": code_dir})})


def top_trials(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The ``k`` best COMPLETE trials, best first (ties: lower number first)."""
    if k < 1:
        raise StudyError(f"--top must be at least 1, got {k}")
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]
    if not done:
        raise StudyError(f"study {study.study_name!r} has no complete trial to evaluate")
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(done, key=lambda t: (sign * t.value, t.number))[:k]


def evaluate_study(study: optuna.Study, top: int = 1, repeats: int = 1, *, workers: int | None = None,
                   on_run: Callable[[int, Run], None] | None = None, code_dir: str | None = None) -> list[Evaluation]:
    """Retrain the ``top`` best trials ``repeats`` times each; store and return their evaluations."""
    if not 1 <= repeats <= MAX_REPEATS:
        raise StudyError(f"--repeats must be from 1 to {MAX_REPEATS}, got {repeats}")
    config = study_config(study, code_dir)
    trials = top_trials(study, top)
    check_code(study, config)  # the model a trial trained, or refused
    _test_split(config.data.model_dump_json(), config.study.code_dir)  # a missing test split fails before training
    evaluations = {t.number: Evaluation(t.number, dict(t.params)) for t in trials}
    jobs = [(t.number, dict(t.params), int(t.user_attrs.get(attrs.SEED, config.study.seed)) + r)
            for t in trials for r in range(repeats)]
    n_jobs = max(1, min(len(jobs), workers or os.cpu_count() or 1))
    log.info("evaluating %d trial(s) x %d seed(s) in %d process(es)", len(trials), repeats, n_jobs)
    for number, run in _run_jobs(config, jobs, n_jobs):
        evaluations[number].runs.append(run)
        set_study_attr(study, attr_key(number), evaluations[number].to_attr())  # an interruption keeps it
        if on_run is not None:
            on_run(number, run)
    return [evaluations[t.number] for t in trials]


def _run_jobs(config: Config, jobs: list[tuple[int, dict, int]], n_jobs: int) -> Iterator[tuple[int, Run]]:
    config_json = json.dumps(config.to_dict())
    if n_jobs == 1:  # in this process: no start-up cost, and the data is loaded once here too
        for number, params, seed in jobs:
            yield number, retrain(config_json, params, seed)
        return
    from sweep.training.entry_points import is_in_memory

    specs = (config.model.builder, config.data.loader)
    if any(is_in_memory(spec) for spec in specs):
        # The caller's own function or arrays (the Python API): each process receives them once.
        from concurrent.futures import as_completed

        from sweep.training.in_memory import worker_pool

        with worker_pool(n_jobs, specs) as pool:
            futures = [pool.submit(_numbered, number, config_json, params, seed) for number, params, seed in jobs]
            for future in as_completed(futures):
                yield future.result()
        return
    from joblib import Parallel, delayed

    # loky starts fresh interpreters (TensorFlow does not survive fork); they inherit the
    # environment, so TensorFlow's log level set by the CLI applies there too.
    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(_numbered)(number, config_json, params, seed) for number, params, seed in jobs)


def _numbered(number: int, config_json: str, params: dict, seed: int) -> tuple[int, Run]:
    return number, retrain(config_json, params, seed)


def retrain(config_json: str, params: dict, seed: int) -> Run:
    """Train the config's model on train + validation with ``params`` and ``seed``; score it on test."""
    from sweep.logs import import_keras_quietly, quiet_tensorflow

    quiet_tensorflow()  # in a loky worker: TensorFlow's banners would reach the user's terminal
    import_keras_quietly()
    import keras

    from sweep.training.data import load_dataset
    from sweep.training.model import compile_model, make_model
    from sweep.training.optimizers import make_optimizer
    from sweep.training.params import params_from_dict
    from sweep.training.schedules import build_schedule
    from sweep.training.trainer import total_steps

    config = config_from_dict(json.loads(config_json))
    started = time.perf_counter()
    data = load_dataset(config.data, config.study.seed, config.study.code_dir)  # cached per process
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    x_test, y_test = _test_split(config.data.model_dump_json(), config.study.code_dir)
    keras.utils.set_random_seed(seed)
    epochs, batch_size = config.train.epochs, config.train.batch_size
    trial = params_from_dict(params, "evaluated params")
    steps = total_steps(len(y), batch_size, epochs)
    schedule = build_schedule(trial, steps)
    model = compile_model(make_model(config, x.shape[1:], data.num_classes, data.labels),
                          make_optimizer(config, trial, schedule, steps), config, data.labels)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    scores = model.evaluate(x_test, y_test, batch_size=EVAL_BATCH_SIZE, verbose=0, return_dict=True)
    keras.backend.clear_session()
    loss, score = float(scores["loss"]), float(scores.get(test_metric(config), scores["loss"]))
    return Run(seed, score, loss if math.isfinite(loss) else None, time.perf_counter() - started)


def test_metric(config: Config) -> str:
    """The test-split counterpart of ``study.metric``: ``val_mae`` is scored as ``mae``."""
    return config.study.metric.removeprefix("val_")


@functools.lru_cache(maxsize=2)
def _test_split(data_json: str, code_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    from sweep.config import DataConfig
    from sweep.training.data import load_test_split

    return load_test_split(DataConfig.model_validate_json(data_json), code_dir)
