"""Learning-rate schedules as closed-form formulas, written once for numpy and ``keras.ops``.

No Keras import here: reports draw the LR curves of trials with ``learning_rates`` (numpy)
without importing TensorFlow, and ``sweep.training.schedules`` evaluates the very same
``FAMILIES`` formulas on Keras variables for training (``xp`` is ``numpy`` or ``keras.ops``:
both spell ``where``, ``cos``, ``floor``, ``power``, ``log``, ``sqrt``, ``minimum`` and
``maximum`` alike). Tests hold them equal to Keras' own schedule classes and to hand-computed
values.

Notation: ``t`` the optimizer step, ``T`` the run's steps, ``W = round(warmup_fraction * T)``
the warm-up, ``a = max(t - W, 0)`` the steps after it, ``S = max(T - W, 1)`` their number,
``p = min(a, S) / S`` the progress, ``r = min_lr_ratio`` (0 when absent) and
``blend(x) = r + (1 - r) * x`` (Keras' ``alpha``: the curve ends at ``r * initial_lr``).
Each family is ``initial_lr * f(a)``:

- constant: ``1``
- exponential: ``blend(decay_rate ** (a / decay_steps))`` (Keras ExponentialDecay)
- step: the same with ``floor(a / decay_steps)`` (staircase)
- cosine: ``blend(0.5 * (1 + cos(pi p)))`` (Keras CosineDecay, alpha = r)
- linear: ``blend(1 - p)`` (Keras PolynomialDecay, power 1, end = r * initial_lr)
- polynomial: ``blend((1 - p) ** power)`` (Keras PolynomialDecay, cycle=False)
- one_cycle: cosine from ``1/25`` up to ``1`` over ``p < pct_start``, then cosine down to
  ``max(r, 1e-4)`` (PyTorch OneCycleLR / fastai fit_one_cycle, both phases cosine)
- wsd: ``1`` until the last ``decay_fraction`` of the ``S`` steps, then ``blend(g(q))`` with ``q``
  the cool-down's progress and ``g`` = ``1 - q`` (linear), ``0.5 (1 + cos(pi q))`` (cosine) or
  ``1 - sqrt(q)`` (sqrt; Hägele et al. 2024)
- cosine_restarts: Keras CosineDecayRestarts with first period ``restart_fraction * S``:
  period ``i`` lasts ``t_mul ** i`` times the first, peaks at ``m_mul ** i``;
  ``r + (1 - r) * m_mul ** i * 0.5 (1 + cos(pi c))``, ``c`` the progress within the period.

Warm-up (every family): for ``t < W`` the LR rises linearly from 0 to where the family's curve
starts, ``f(0) * initial_lr * t / W`` (``f(0)`` is 1 for every family but one_cycle's 1/25).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from sweep.config import (DECAY_SHAPES, DEFAULT_M_MUL, DEFAULT_T_MUL, ONE_CYCLE_DIV_FACTOR, ONE_CYCLE_FINAL_DIV,
                          SCHEDULES)

# The numbers every family's formula reads (absent parameters take these neutral values).
NEUTRAL = {"decay_rate": 1.0, "decay_steps": 1.0, "pct_start": 0.3, "decay_fraction": 1.0, "decay_shape": 0.0,
           "restart_fraction": 1.0, "t_mul": DEFAULT_T_MUL, "m_mul": DEFAULT_M_MUL, "power": 1.0, "min_lr_ratio": 0.0}


def warmup_steps(warmup_fraction: float, total_steps: int) -> int:
    """W = round(warmup_fraction * T), the number of linear warm-up steps."""
    return int(round(warmup_fraction * total_steps))


def schedule_values(params: Mapping[str, Any], total_steps: int) -> dict[str, float]:
    """The numbers ``FAMILIES`` read for trial ``params`` over ``total_steps`` steps."""
    values = {name: float(params[name]) if params.get(name) is not None else neutral
              for name, neutral in NEUTRAL.items() if name != "decay_shape"}
    values["decay_shape"] = float(DECAY_SHAPES.index(params["decay_shape"])) if params.get("decay_shape") else 0.0
    warmup = warmup_steps(float(params.get("warmup_fraction", 0.0)), total_steps)
    values |= {"kind": float(SCHEDULES.index(params["schedule"])), "initial_lr": float(params["initial_lr"]),
               "warmup": float(warmup), "span": float(max(total_steps - warmup, 1))}
    return values


def half_cosine(xp: Any, fraction: Any) -> Any:
    """``0.5 * (1 + cos(pi * fraction))``, written ``cos(pi * fraction / 2) ** 2``: the same
    number, without float32's cancellation near fraction 1 (where the LR is smallest)."""
    c = xp.cos(0.5 * math.pi * fraction)
    return c * c


def cosine_between(xp: Any, start: Any, end: Any, fraction: Any) -> Any:
    """From ``start`` (fraction 0) to ``end`` (fraction 1) along half a cosine."""
    return end + (start - end) * half_cosine(xp, fraction)


def one_cycle(xp: Any, progress: Any, pct_start: Any, start: Any, peak: Any, end: Any) -> Any:
    """One cycle at ``progress`` in [0, 1]: ``start`` to ``peak`` over ``pct_start``, then to ``end``.

    Both phases are cosine (PyTorch's ``anneal_strategy="cos"``, fastai). The LR uses
    ``(1/25, 1, floor)``; SGD's momentum cycles inversely with ``(0.95, 0.85, 0.95)``.
    """
    rising = xp.less(progress, pct_start)
    up = cosine_between(xp, start, peak, progress / xp.maximum(pct_start, 1e-12))
    down = cosine_between(xp, peak, end, (progress - pct_start) / xp.maximum(1.0 - pct_start, 1e-12))
    return xp.where(rising, up, down)


def _blend(v: Mapping[str, Any], x: Any) -> Any:
    return v["min_lr_ratio"] + (1.0 - v["min_lr_ratio"]) * x


def _progress(xp: Any, a: Any, v: Mapping[str, Any]) -> Any:
    return xp.minimum(a, v["span"]) / v["span"]


def _restart(xp: Any, a: Any, v: Mapping[str, Any]) -> tuple[Any, Any]:
    """(period index, progress within it) of Keras CosineDecayRestarts after ``a`` steps.

    The geometric index is corrected by one where rounding put it across a period's boundary,
    so float32 and float64 agree at the boundaries themselves."""
    t_mul = v["t_mul"]
    done = a / xp.maximum(v["restart_fraction"] * v["span"], 1e-12)
    geometric = xp.greater(t_mul, 1.0 + 1e-6)
    t = xp.where(geometric, t_mul, 2.0)  # a harmless base where the index is arithmetic

    def before(i: Any) -> Any:  # periods 0..i-1 in units of the first
        return (1.0 - xp.power(t, i)) / (1.0 - t)

    i = xp.floor(xp.log(1.0 - done * (1.0 - t)) / xp.log(t))
    i = xp.where(xp.less_equal(before(i + 1.0), done), i + 1.0, i)
    i = xp.maximum(xp.where(xp.greater(before(i), done), i - 1.0, i), 0.0)
    within = (done - before(i)) / xp.power(t, i)
    index = xp.where(geometric, i, xp.floor(done))
    return index, xp.where(geometric, within, done - xp.floor(done))


def _cosine_restarts(xp: Any, a: Any, v: Mapping[str, Any]) -> Any:
    index, within = _restart(xp, a, v)
    return _blend(v, xp.power(v["m_mul"], index) * half_cosine(xp, within))


def _wsd(xp: Any, a: Any, v: Mapping[str, Any]) -> Any:
    length = xp.maximum(v["decay_fraction"] * v["span"], 1e-12)
    q = xp.minimum(xp.maximum((a - (v["span"] - length)) / length, 0.0), 1.0)
    shapes = (1.0 - q, half_cosine(xp, q), 1.0 - xp.sqrt(q))
    shape = shapes[0]
    for index, curve in enumerate(shapes[1:], start=1):
        shape = xp.where(xp.equal(v["decay_shape"], float(index)), curve, shape)
    return _blend(v, shape)


def _one_cycle(xp: Any, a: Any, v: Mapping[str, Any]) -> Any:
    end = xp.maximum(v["min_lr_ratio"], 1.0 / ONE_CYCLE_FINAL_DIV)
    return one_cycle(xp, _progress(xp, a, v), v["pct_start"], 1.0 / ONE_CYCLE_DIV_FACTOR, 1.0, end)


# Each family's ``f(a)``: the LR after warm-up as a fraction of initial_lr (module docstring).
FAMILIES = {
    "constant": lambda xp, a, v: a * 0.0 + 1.0,
    "exponential": lambda xp, a, v: _blend(v, xp.power(v["decay_rate"], a / v["decay_steps"])),
    "step": lambda xp, a, v: _blend(v, xp.power(v["decay_rate"], xp.floor(a / v["decay_steps"]))),
    "cosine": lambda xp, a, v: _blend(v, half_cosine(xp, _progress(xp, a, v))),
    "linear": lambda xp, a, v: _blend(v, 1.0 - _progress(xp, a, v)),
    "one_cycle": _one_cycle,
    "wsd": _wsd,
    "cosine_restarts": _cosine_restarts,
    "polynomial": lambda xp, a, v: _blend(v, xp.power(1.0 - _progress(xp, a, v), v["power"])),
}
assert tuple(FAMILIES) == SCHEDULES  # kind indexes both


def after_warmup(xp: Any, t: Any, v: Mapping[str, Any]) -> Any:
    """``a = max(t - W, 0)``: the steps the family's curve runs on."""
    return xp.maximum(t - v["warmup"], 0.0)


def with_warmup(xp: Any, t: Any, v: Mapping[str, Any], decayed: Any, start: Any) -> Any:
    """``initial_lr * decayed`` (the family's ``f(a)``) after warm-up; during it the linear ramp
    to ``initial_lr * start`` (``start = f(0)``)."""
    warm = v["initial_lr"] * start * t / xp.maximum(v["warmup"], 1.0)
    return xp.where(xp.less(t, v["warmup"]), warm, v["initial_lr"] * decayed)


def learning_rates(params: Mapping[str, Any], total_steps: int, steps: Any = None) -> np.ndarray:
    """The learning rate at each optimizer step (default: steps 0..T) for trial ``params``."""
    t = np.arange(total_steps + 1, dtype=np.float64) if steps is None else np.asarray(steps, np.float64)
    if params["schedule"] not in FAMILIES:
        raise ValueError(f"unknown schedule {params['schedule']!r}")
    v = schedule_values(params, total_steps)
    formula = FAMILIES[params["schedule"]]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        decayed, start = formula(np, after_warmup(np, t, v), v), formula(np, np.zeros(1), v)[0]
        return np.asarray(with_warmup(np, t, v, decayed, start), dtype=np.float64)
