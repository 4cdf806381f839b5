"""Final evaluation: retrain a study's best configurations and score them on the test split.

The only code that reads the test split. Each of the top K trials is retrained from
scratch on the training plus validation images (the search is over, so nothing is
held out for selection any more) for ``train.epochs`` epochs with the trial's seed,
then scored once on the test images. The schedule is laid out over the longer run
(more images per epoch means more optimizer steps), as ``sweep train`` would lay it
out for that data. Results go into the study's ``sweep:evaluations`` attr, replacing
earlier results for the same trials, and show up in its report.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
import optuna

from sweep import attrs
from sweep.config import Config, config_from_dict
from sweep.study.code import check_code
from sweep.training.data import NUM_CLASSES, load_dataset, load_test_split
from sweep.errors import StudyError
from sweep.training.model import compile_model, make_model
from sweep.training.params import TrialParams, params_from_dict
from sweep.training.schedules import build_schedule
from sweep.training.trainer import total_steps

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 1024  # scoring only: larger batches are faster and change nothing


@dataclass(frozen=True)
class Evaluation:
    trial: int
    params: dict[str, Any]
    test_accuracy: float
    test_loss: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def study_config(study: optuna.Study) -> Config:
    raw = study.user_attrs.get(attrs.CONFIG)
    if raw is None:
        raise StudyError(f"study {study.study_name!r} has no stored config ({attrs.CONFIG}); "
                         "evaluate works on studies made by 'sweep run'")
    return config_from_dict(raw, f"study {study.study_name} config")


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


def retrain_and_score(config: Config, params: TrialParams, x: np.ndarray, y: np.ndarray,
                      x_test: np.ndarray, y_test: np.ndarray, *, seed: int,
                      num_classes: int = NUM_CLASSES) -> tuple[float, float]:
    """Train the config's model on (x, y) with ``params``; return (test accuracy, test loss)."""
    keras.utils.set_random_seed(seed)
    epochs, batch_size = config.train.epochs, config.train.batch_size
    schedule = build_schedule(params, total_steps(len(y), batch_size, epochs))
    model = compile_model(
        make_model(config, x.shape[1:], num_classes), schedule, config.train.optimizer,
        config.train.steps_per_execution, config.model.from_logits,
    )
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=EVAL_BATCH_SIZE, verbose=0)
    keras.backend.clear_session()
    return float(accuracy), float(loss)


def evaluate_study(study: optuna.Study, top: int = 1,
                   on_result: Callable[[Evaluation], None] | None = None) -> list[Evaluation]:
    """Retrain and test the ``top`` best trials; store and return their evaluations."""
    config = study_config(study)
    trials = top_trials(study, top)
    # The test split first: a missing one must fail before minutes of training.
    check_code(study, config)  # the model a trial trained, or refused
    x_test, y_test = load_test_split(config.data, config.study.code_dir)
    data = load_dataset(config.data, config.study.seed, config.study.code_dir)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    log.info("evaluating %d trial(s) on %d training and %d test images", len(trials), len(y), len(y_test))
    results = []
    for trial in trials:
        params = params_from_dict(dict(trial.params), f"trial #{trial.number} params")
        seed = int(trial.user_attrs.get(attrs.SEED, config.study.seed))
        started = time.perf_counter()
        accuracy, loss = retrain_and_score(config, params, x, y, x_test, y_test, seed=seed,
                                           num_classes=data.num_classes)
        result = Evaluation(trial.number, params.to_dict(), accuracy, loss, time.perf_counter() - started)
        results.append(result)
        store_evaluations(study, [result])  # one at a time: an interrupted run keeps what it finished
        if on_result is not None:
            on_result(result)
    return results


def store_evaluations(study: optuna.Study, results: list[Evaluation]) -> None:
    """Merge ``results`` into the study's evaluations attr (one entry per trial, by number)."""
    # JSON has no NaN: a diverged retraining stores its loss as None.
    fresh = {r.trial: {**r.to_dict(), "test_loss": r.test_loss if math.isfinite(r.test_loss) else None}
             for r in results}
    kept = [e for e in study.user_attrs.get(attrs.EVALUATIONS) or [] if e.get("trial") not in fresh]
    merged = sorted(kept + list(fresh.values()), key=lambda e: e.get("trial", -1))
    study.set_user_attr(attrs.EVALUATIONS, merged)
