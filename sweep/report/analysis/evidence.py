"""Evidence behind two warnings: a learning-rate range that may be too narrow, and a best
trial whose score peaked before its last epoch.

Pure computations on the trials table and the per-epoch curves; ``findings.learning_rate`` turns
them into words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.report.analysis import stats

# "The top trials" the edge check looks at: the best quarter, at least 2 and at most 5 (with
# a handful of trials, "top 5" would be all of them and say nothing about the optimum).
TOP_TRIALS = 5
EDGE_TOLERANCE = 0.1  # a trial this close to a bound (share of the log range) is "at" it
NEAR_SHARE = 0.3  # the trend near a bound is fitted on trials in this share of the log range
MIN_TREND_TRIALS = 3


@dataclass(frozen=True)
class EdgeEvidence:
    """What the complete trials say about one end of the initial_lr range."""

    bound: str  # "lower" | "upper"
    value: float  # the bound's LR
    top_at_edge: list[int]  # numbers of top trials within EDGE_TOLERANCE of it
    top_trials: int  # how many top trials were looked at
    near: int  # complete trials in the NEAR_SHARE of the range next to it
    slope: float  # change of the score per decade of LR towards the bound (better: > 0), NaN if unfitted
    slope_se: float

    @property
    def improving(self) -> bool:
        """The score gets better towards the bound by more than twice its fitted error."""
        return math.isfinite(self.slope) and self.slope > 0 and self.slope > 2 * self.slope_se

    @property
    def warn(self) -> bool:
        return bool(self.top_at_edge) or self.improving


def edge_evidence(frame: pd.DataFrame, direction: str, low: float, high: float) -> list[EdgeEvidence]:
    """Evidence at each bound of ``[low, high]`` (log scale) from the COMPLETE trials."""
    done = stats.ranked(frame, direction)
    done = done[done["initial_lr"] > 0]
    if done.empty or not 0 < low < high:
        return []
    span = math.log10(high) - math.log10(low)
    position = (np.log10(done["initial_lr"].to_numpy(dtype=float)) - math.log10(low)) / span
    score = done["value"].to_numpy(dtype=float) * (1 if direction == "maximize" else -1)  # higher is better
    numbers = done["number"].to_numpy()
    top = min(TOP_TRIALS, max(2, math.ceil(len(done) / 4)), len(done))
    result = []
    for bound, value, distance in (("lower", low, position), ("upper", high, 1 - position)):
        at_edge = [int(n) for n, d in zip(numbers[:top], distance[:top]) if d <= EDGE_TOLERANCE]
        near = distance <= NEAR_SHARE
        slope, slope_se = _slope(np.log10(done["initial_lr"].to_numpy(dtype=float))[near], score[near])
        if bound == "lower":
            slope = -slope  # "towards the bound" is towards lower LRs
        result.append(EdgeEvidence(bound, value, at_edge, top, int(near.sum()), slope, slope_se))
    return result


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error (NaN with too few or equal x)."""
    if len(x) < MIN_TREND_TRIALS or np.ptp(x) == 0:
        return math.nan, math.nan
    x_c = x - x.mean()
    slope = float((x_c * (y - y.mean())).sum() / (x_c * x_c).sum())
    if len(x) == 2:
        return slope, math.inf
    residual = y - y.mean() - slope * x_c
    se = math.sqrt(float((residual * residual).sum()) / (len(x) - 2) / float((x_c * x_c).sum()))
    return slope, se


@dataclass(frozen=True)
class LearningCurve:
    """The best trial's score at its best epoch and at its last."""

    trial: int
    best_epoch: int
    best_value: float
    last_epoch: int
    last_value: float

    @property
    def drop(self) -> float:
        """How much worse the last epoch is than the best (>= 0, in the metric's units)."""
        return abs(self.best_value - self.last_value)


def learning_curve(trial: int, curve: tuple[np.ndarray, np.ndarray] | None, direction: str) -> LearningCurve | None:
    if curve is None:
        return None
    epochs, values = curve
    finite = np.isfinite(values)
    if not finite.any():
        return None
    epochs, values = epochs[finite], values[finite]
    pick = int(np.argmax(values) if direction == "maximize" else np.argmin(values))
    return LearningCurve(trial, int(epochs[pick]), float(values[pick]), int(epochs[-1]), float(values[-1]))
