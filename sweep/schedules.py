"""Keras learning-rate schedules for the five schedule types, each with linear warm-up.

Built on ``keras.optimizers.schedules`` where Keras has the piece; the formulas are
in GUIDE §1 and mirrored without Keras in ``sweep.schedule_math``. The optimizer
calls the schedule with its own step count, so a run restored from a checkpoint
(optimizer state included) continues the schedule where it stopped.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops
from keras.optimizers.schedules import (
    CosineDecay,
    ExponentialDecay,
    LearningRateSchedule,
    PolynomialDecay,
)

from sweep.params import TrialParams
from sweep.schedule_math import warmup_steps


@keras.saving.register_keras_serializable(package="sweep")
class ConstantSchedule(LearningRateSchedule):
    """A fixed learning rate, as a schedule so that warm-up can wrap it."""

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def __call__(self, step: Any) -> Any:
        return ops.convert_to_tensor(self.learning_rate, dtype="float32")

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package="sweep")
class LinearWarmup(LearningRateSchedule):
    """``initial_lr * t / W`` for ``t < W``; then ``after(t - W)``."""

    def __init__(self, initial_lr: float, warmup_steps: int, after: LearningRateSchedule | dict):
        if warmup_steps < 0:
            raise ValueError(f"Argument `warmup_steps` must be >= 0. Received: warmup_steps={warmup_steps}")
        self.initial_lr = float(initial_lr)
        self.warmup_steps = int(warmup_steps)
        self.after = keras.saving.deserialize_keras_object(after) if isinstance(after, dict) else after

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        decayed = self.after(ops.maximum(step - self.warmup_steps, 0.0))
        if self.warmup_steps == 0:
            return decayed
        warm = self.initial_lr * step / float(self.warmup_steps)
        return ops.where(step < self.warmup_steps, warm, ops.cast(decayed, "float32"))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_lr": self.initial_lr,
            "warmup_steps": self.warmup_steps,
            "after": keras.saving.serialize_keras_object(self.after),
        }


def build_schedule(params: TrialParams, total_steps: int) -> LearningRateSchedule:
    """The schedule for ``params`` over a run of ``total_steps`` optimizer steps."""
    if total_steps < 1:
        raise ValueError(f"Argument `total_steps` must be >= 1. Received: total_steps={total_steps}")
    lr0 = params.initial_lr
    warmup = warmup_steps(params.warmup_fraction, total_steps)
    span = max(total_steps - warmup, 1)
    if params.schedule == "constant":
        decay: LearningRateSchedule = ConstantSchedule(lr0)
    elif params.schedule in ("exponential", "step"):
        decay = ExponentialDecay(
            lr0,
            decay_steps=params.decay_steps,
            decay_rate=params.decay_rate,
            staircase=params.schedule == "step",
        )
    elif params.schedule == "cosine":
        decay = CosineDecay(lr0, decay_steps=span, alpha=0.0)
    else:  # linear
        decay = PolynomialDecay(lr0, decay_steps=span, end_learning_rate=0.0, power=1.0)
    return LinearWarmup(lr0, warmup, decay)
