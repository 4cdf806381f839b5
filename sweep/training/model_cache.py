"""One compiled model per worker, reset for each trial instead of rebuilt.

Building and compiling the CNN and tracing its train step cost about 1.1 s a trial, and
Keras keeps about 15 MB of every compiled model even after ``clear_session()`` (GUIDE §4,
``benchmarks/levers.py``). So a worker compiles once and, before each trial, gives that
model what a fresh build would have given it: every variable of a model built under the
trial's seed (weights, batch-normalisation statistics, the seed state of dropout and
other random layers; building without compiling costs 0.05 s), zeroed optimizer state and the trial's schedule parameters (``TrialSchedule.assign``). The traced
step serves every trial, and a trial trains as it would in a fresh process (a test holds
the histories equal).

TensorFlow only: the JAX and torch trainers treat variables the optimizer does not own
(the schedule's) as constants when they compile the step, so there every trial builds
and compiles its own model.
"""

from __future__ import annotations

import keras

from sweep.config import Config
from sweep.training.data import IMAGE_SHAPE, NUM_CLASSES
from sweep.training.model import compile_model, make_model
from sweep.training.params import TrialParams
from sweep.training.schedules import TrialSchedule


class ModelCache:
    """Hands out a compiled model for a trial; call ``model_for`` after seeding Keras."""

    def __init__(self) -> None:
        self._model: keras.Model | None = None
        self._schedule: TrialSchedule | None = None
        self._key: str | None = None

    def model_for(self, config: Config, params: TrialParams, total_steps: int,
                  input_shape: tuple[int, ...] = IMAGE_SHAPE, num_classes: int = NUM_CLASSES) -> keras.Model:
        """The compiled model for a trial on samples of ``input_shape`` (default: Fashion-MNIST's)."""
        fresh = make_model(config, input_shape, num_classes)  # draws the trial's initial weights and seeds
        key = (f"{config.model.model_dump_json()}|{config.train.optimizer}|{config.train.steps_per_execution}|"
               f"{input_shape}|{num_classes}")
        reusable = keras.backend.backend() == "tensorflow"
        if not reusable or self._model is None or key != self._key or not _same_variables(self._model, fresh):
            schedule = TrialSchedule(params, total_steps)
            model = compile_model(fresh, schedule, config.train.optimizer, config.train.steps_per_execution,
                                  config.model.from_logits)
            if reusable:
                self._model, self._schedule, self._key = model, schedule, key
            return model
        model = self._model
        for kept, drawn in zip(model.variables, fresh.variables, strict=True):
            kept.assign(drawn.value)
        for variable in model.optimizer.variables:
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
        self._schedule.assign(params, total_steps)
        return model


def _same_variables(kept: keras.Model, fresh: keras.Model) -> bool:
    """Whether ``fresh`` has the variables of ``kept``, in order. ``model.variables`` holds every
    layer's weights and state, nested models and seed generators included (not the optimizer's or
    the metrics'); a builder that draws its architecture at random gets a compiled model per trial."""
    kept_vars, fresh_vars = kept.variables, fresh.variables
    return len(kept_vars) == len(fresh_vars) and all(
        a.shape == b.shape and a.dtype == b.dtype for a, b in zip(kept_vars, fresh_vars)
    )
