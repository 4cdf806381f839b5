"""The learning-rate schedule of a trial: the five schedule types with linear warm-up.

The formulas are GUIDE §1's, mirrored without Keras in ``sweep.training.schedule_math`` (a test
holds the two equal at every step). The optimizer calls the schedule with its own step
count, so a run restored from a checkpoint (optimizer state included) continues the
schedule where it stopped.

Why one class with its parameters in variables rather than Keras' ``CosineDecay`` and
friends: a worker compiles its model once and reuses it for every trial
(``sweep.training.model_cache``); the traced train step reads the schedule's variables, so
``assign`` switches a compiled model to another trial's curve without retracing.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from sweep.config import DECAY_SCHEDULES, SCHEDULES
from sweep.training.params import TrialParams
from sweep.training.schedule_math import warmup_steps

_VARIABLES = ("kind", "initial_lr", "warmup", "span", "decay_rate", "decay_steps")


@keras.saving.register_keras_serializable(package="sweep")
class TrialSchedule(LearningRateSchedule):
    """``params``' schedule over a run of ``total_steps`` optimizer steps.

    Warm-up: ``initial_lr * t / W`` for ``t < W``; then the decay runs on ``t - W``:
    constant, ``ExponentialDecay`` (staircase for "step"), cosine or linear to 0 over
    ``T - W`` steps.
    """

    def __init__(self, params: TrialParams | dict, total_steps: int):
        self._vars = {name: keras.Variable(0.0, dtype="float32", trainable=False, name=name) for name in _VARIABLES}
        self.assign(params, total_steps)

    def assign(self, params: TrialParams | dict, total_steps: int) -> None:
        """Switch to another trial's curve (no retracing of a step that calls this schedule)."""
        params = params if isinstance(params, TrialParams) else TrialParams(**params)
        if total_steps < 1:
            raise ValueError(f"Argument `total_steps` must be >= 1. Received: total_steps={total_steps}")
        warmup = warmup_steps(params.warmup_fraction, total_steps)
        decays = params.schedule in DECAY_SCHEDULES
        values = {
            "kind": SCHEDULES.index(params.schedule),
            "initial_lr": params.initial_lr,
            "warmup": warmup,
            "span": max(total_steps - warmup, 1),
            "decay_rate": params.decay_rate if decays else 1.0,
            "decay_steps": params.decay_steps if decays else 1.0,
        }
        for name, value in values.items():
            self._vars[name].assign(float(value))
        self.params, self.total_steps = params, int(total_steps)

    def __call__(self, step: Any) -> Any:
        v = {name: ops.convert_to_tensor(var) for name, var in self._vars.items()}
        step = ops.cast(step, "float32")
        lr0, warmup, span = v["initial_lr"], v["warmup"], v["span"]
        after = ops.maximum(step - warmup, 0.0)
        exponent = after / v["decay_steps"]
        progress = ops.minimum(after, span) / span
        by_kind = {
            "constant": lr0 * ops.ones_like(step),
            "exponential": lr0 * ops.power(v["decay_rate"], exponent),
            "step": lr0 * ops.power(v["decay_rate"], ops.floor(exponent)),
            "cosine": lr0 * 0.5 * (1.0 + ops.cos(math.pi * progress)),
            "linear": lr0 * (1.0 - progress),
        }
        decayed = by_kind["constant"]
        for index, name in enumerate(SCHEDULES):
            decayed = ops.where(ops.equal(v["kind"], float(index)), by_kind[name], decayed)
        warm = lr0 * step / ops.maximum(warmup, 1.0)
        return ops.where(step < warmup, warm, decayed)

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
