"""One compiled model per worker, reset for each trial instead of rebuilt.

Building and compiling the CNN and tracing its train step cost about 1.1 s a trial, and
Keras keeps about 15 MB of every compiled model even after ``clear_session()`` (GUIDE §4,
``benchmarks/levers.py``). So a worker compiles once and, before each trial, gives that
model what a fresh build would have given it: the weights and dropout seed state of a
model built under the trial's seed (building without compiling costs 0.05 s), zeroed
optimizer state and the trial's schedule parameters (``TrialSchedule.assign``). The traced
step serves every trial, and a trial trains as it would in a fresh process (a test holds
the histories equal).

TensorFlow only: the JAX and torch trainers treat variables the optimizer does not own
(the schedule's) as constants when they compile the step, so there every trial builds
and compiles its own model.
"""

from __future__ import annotations

import keras

from sweep.config import Config
from sweep.training.model import build_model, compile_model
from sweep.training.params import TrialParams
from sweep.training.schedules import TrialSchedule


class ModelCache:
    """Hands out a compiled model for a trial; call ``model_for`` after seeding Keras."""

    def __init__(self) -> None:
        self._model: keras.Model | None = None
        self._schedule: TrialSchedule | None = None
        self._key: str | None = None

    def model_for(self, config: Config, params: TrialParams, total_steps: int) -> keras.Model:
        fresh = build_model(config.model)  # draws the trial's initial weights and seeds
        key = f"{config.model.model_dump_json()}|{config.train.optimizer}|{config.train.steps_per_execution}"
        reusable = keras.backend.backend() == "tensorflow"
        if not reusable or self._model is None or key != self._key:
            schedule = TrialSchedule(params, total_steps)
            model = compile_model(fresh, schedule, config.train.optimizer, config.train.steps_per_execution)
            if reusable:
                self._model, self._schedule, self._key = model, schedule, key
            return model
        model = self._model
        model.set_weights(fresh.get_weights())
        for kept, drawn in zip(_seed_generators(model), _seed_generators(fresh), strict=True):
            kept.state.assign(drawn.state.value)
        for variable in model.optimizer.variables:
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
        self._schedule.assign(params, total_steps)
        return model


def _seed_generators(model: keras.Model) -> list:
    """The random layers' seed generators (Dropout's), in layer order."""
    return [layer.seed_generator for layer in model.layers if hasattr(layer, "seed_generator")]
