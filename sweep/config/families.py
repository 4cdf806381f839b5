"""The schedule families and the trial parameters each one takes (names shared by every layer).

A trial's ``schedule`` picks a family; each family reads only its own parameters
(``FAMILY_PARAMS``), so the search space is conditional and a trial's params dict never
holds a parameter its curve ignores. The formulas live in ``sweep.training.schedule_math``
(numpy) and ``sweep.training.schedules`` (Keras); the search ranges in ``SearchConfig``.
"""

from __future__ import annotations

import math
from typing import Literal

SCHEDULES = ("constant", "exponential", "step", "cosine", "linear",
             "one_cycle", "wsd", "cosine_restarts", "polynomial")
# search.schedules' default: the five measured in benchmarks/README.md; the newer families are opt-in.
DEFAULT_SCHEDULES = SCHEDULES[:5]
DECAY_SCHEDULES = ("exponential", "step")  # the families that take decay_rate and decay_steps
DECAY_SHAPES = ("linear", "cosine", "sqrt")  # wsd's cool-down; sqrt is 1 - sqrt (Hägele et al. 2024)
ScheduleName = Literal["constant", "exponential", "step", "cosine", "linear",
                       "one_cycle", "wsd", "cosine_restarts", "polynomial"]
DecayShape = Literal["linear", "cosine", "sqrt"]

# The parameters each family requires, beside initial_lr, schedule and warmup_fraction.
FAMILY_PARAMS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "exponential": ("decay_rate", "decay_steps"),
    "step": ("decay_rate", "decay_steps"),
    "cosine": (),
    "linear": (),
    "one_cycle": ("pct_start",),
    "wsd": ("decay_fraction", "decay_shape"),
    "cosine_restarts": ("restart_fraction",),
    "polynomial": ("power",),
}
# Every family that decays takes the floor min_lr_ratio (absent = 0, the classic curves);
# cosine_restarts also takes t_mul and m_mul (absent = Keras' defaults below).
FLOORED = tuple(s for s in SCHEDULES if s != "constant")
OPTIONAL_PARAMS: dict[str, tuple[str, ...]] = {
    s: ("min_lr_ratio", "t_mul", "m_mul") if s == "cosine_restarts" else ("min_lr_ratio",) for s in FLOORED
}
OPTIONAL_PARAMS["constant"] = ()
SCHEDULE_PARAMS = ("decay_rate", "decay_steps", "pct_start", "decay_fraction", "decay_shape",
                   "restart_fraction", "t_mul", "m_mul", "power", "min_lr_ratio")

# one_cycle: PyTorch OneCycleLR's and fastai's div_factor (start at peak / 25); the end at
# peak / 1e4 (PyTorch's final_div_factor, here relative to the peak: PyTorch ends at
# peak / 2.5e5, fastai at peak / 1e5; all three are ~0 for training).
ONE_CYCLE_DIV_FACTOR = 25.0
ONE_CYCLE_FINAL_DIV = 1.0e4
DEFAULT_T_MUL = 2.0  # Keras CosineDecayRestarts' defaults
DEFAULT_M_MUL = 1.0


def min_lr_ratio_choices(low: float, high: float) -> list[float]:
    """The values ``min_lr_ratio`` is searched over: 0 and a log grid from ``low`` to ``high``.

    A log range cannot hold 0, and "no floor" is the classic curve every family should be able
    to keep, so the search is a categorical over ``[0, low, low*10^0.5, low*10, ..., high]``
    (half-decade steps, rounded to 3 significant digits, ``high`` always included). The trial
    parameter is the ratio itself, so reports and ``sweep train`` read it as-is.
    """
    if not 0 < low < high < 1:
        raise ValueError(f"need 0 < low < high < 1, got low={low}, high={high}")
    grid = [0.0]
    steps = int(math.floor(2 * math.log10(high / low) + 1e-9))
    for k in range(steps + 1):
        grid.append(float(f"{low * 10 ** (k / 2):.3g}"))
    if not math.isclose(grid[-1], high, rel_tol=1e-2):
        grid.append(float(f"{high:.3g}"))
    return grid


def family_terms(params: dict) -> list[str]:
    """A trial's family parameters in words, for logs and reports: ``["pct_start 0.30", ...]``."""
    terms = []
    if params.get("decay_rate") is not None:
        terms.append(f"decay_rate {params['decay_rate']:.3f} per {params.get('decay_steps')} steps")
    for name in ("pct_start", "decay_fraction", "restart_fraction", "power"):
        if params.get(name) is not None:
            terms.append(f"{name} {params[name]:.2f}")
    if params.get("decay_shape") is not None:
        terms.append(f"{params['decay_shape']} cool-down")
    for name in ("t_mul", "m_mul", "min_lr_ratio"):
        if params.get(name) is not None:
            terms.append(f"{name} {params[name]:g}")
    return terms
