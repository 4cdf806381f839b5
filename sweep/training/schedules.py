"""The learning-rate schedule of a trial: every schedule family, with linear warm-up.

The formulas are ``sweep.training.schedule_math``'s (written once for numpy and
``keras.ops``; its docstring states them), evaluated here on Keras variables. The optimizer
calls the schedule with its own step count, so a run restored from a checkpoint (optimizer
state included) continues the schedule where it stopped.

Why one class with its parameters in variables rather than Keras' ``CosineDecay`` and
friends: a worker compiles its model once and reuses it for every trial
(``sweep.training.model_cache``); the traced train step reads the schedule's variables, so
``assign`` switches a compiled model to another trial's curve, of any family, without
retracing: a switch on ``kind`` runs the selected family's formula.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from sweep.config import SCHEDULES
from sweep.training.params import TrialParams
from sweep.training.schedule_math import FAMILIES, NEUTRAL, after_warmup, schedule_values, with_warmup

_VARIABLES = ("kind", "initial_lr", "warmup", "span", *NEUTRAL)


@keras.saving.register_keras_serializable(package="sweep")
class TrialSchedule(LearningRateSchedule):
    """``params``' schedule over a run of ``total_steps`` optimizer steps (formulas:
    ``sweep.training.schedule_math``)."""

    def __init__(self, params: TrialParams | dict, total_steps: int):
        self._vars = {name: keras.Variable(0.0, dtype="float32", trainable=False, name=name) for name in _VARIABLES}
        self.assign(params, total_steps)

    def assign(self, params: TrialParams | dict, total_steps: int) -> None:
        """Switch to another trial's curve (no retracing of a step that calls this schedule)."""
        params = params if isinstance(params, TrialParams) else TrialParams(**params)
        if total_steps < 1:
            raise ValueError(f"Argument `total_steps` must be >= 1. Received: total_steps={total_steps}")
        for name, value in schedule_values(params.to_dict(), total_steps).items():
            self._vars[name].assign(value)
        self.params, self.total_steps = params, int(total_steps)

    def __call__(self, step: Any) -> Any:
        v = {name: ops.convert_to_tensor(var) for name, var in self._vars.items()}
        step = ops.cast(step, "float32")
        t = ops.reshape(step, (-1,))
        # The family's curve at the steps and at 0 (where warm-up ramps to), in one evaluation of
        # the one branch ``kind`` selects: a switch, not a where over every family, so a step
        # costs one family's ops: 29-59 us a call against 149-243 us for a where over all nine, in a
        # TF graph on the 2-core CPU, where a CNN step takes ~29 ms (benchmarks/schedule_cost.py).
        points = ops.concatenate([after_warmup(ops, t, v), ops.zeros((1,), "float32")])
        branches = [lambda a, formula=FAMILIES[name]: formula(ops, a, v) for name in SCHEDULES]
        curve = ops.switch(ops.cast(v["kind"], "int32"), branches, points)
        return ops.reshape(with_warmup(ops, t, v, curve[:-1], curve[-1]), ops.shape(step))
    def get_config(self) -> dict[str, Any]:
        return {"params": self.params.to_dict(), "total_steps": self.total_steps}

    @property
    def variables(self) -> list[keras.Variable]:
        """The variables ``assign`` sets (``model_cache`` hands them to the optimizer, so that a
        compiled JAX step takes them as state rather than constants)."""
        return list(self._vars.values())


def build_schedule(params: TrialParams, total_steps: int) -> TrialSchedule:
    """The schedule for ``params`` over a run of ``total_steps`` optimizer steps."""
    return TrialSchedule(params, total_steps)
