"""Learning-rate schedules as closed-form numpy formulas (GUIDE §1).

No Keras here: reports draw the LR curves of trials with these formulas without
importing TensorFlow. ``sweep.training.schedules`` builds the same curves from Keras'
schedule classes for training, and a test holds the two equal at every step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def warmup_steps(warmup_fraction: float, total_steps: int) -> int:
    """W = round(warmup_fraction * T), the number of linear warm-up steps."""
    return int(round(warmup_fraction * total_steps))


def learning_rates(params: Mapping[str, Any], total_steps: int, steps: Any = None) -> np.ndarray:
    """The learning rate at each optimizer step (default: steps 0..T) for trial ``params``."""
    t = np.arange(total_steps + 1, dtype=np.float64) if steps is None else np.asarray(steps, np.float64)
    lr0 = float(params["initial_lr"])
    w = warmup_steps(float(params.get("warmup_fraction", 0.0)), total_steps)
    after = np.maximum(t - w, 0.0)  # the decay runs on the steps after warm-up
    span = max(total_steps - w, 1)
    schedule = params["schedule"]
    if schedule == "constant":
        lr = np.full_like(t, lr0)
    elif schedule in ("exponential", "step"):
        exponent = after / float(params["decay_steps"])
        if schedule == "step":
            exponent = np.floor(exponent)
        lr = lr0 * float(params["decay_rate"]) ** exponent
    elif schedule == "cosine":
        progress = np.minimum(after, span) / span
        lr = lr0 * 0.5 * (1.0 + np.cos(math.pi * progress))
    elif schedule == "linear":
        lr = lr0 * (1.0 - np.minimum(after, span) / span)
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    if w > 0:
        lr = np.where(t < w, lr0 * t / w, lr)
    return lr
