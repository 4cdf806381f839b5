"""How sure a report can be: the noise in a validation score and what it allows to conclude.

Every trial is scored once, on one validation set of ``n`` images. Its accuracy is a
binomial proportion, so even a perfect re-run on other images of the same distribution
would move it by a standard error of ``sqrt(p (1 - p) / n)`` (about 0.02 at p = 0.87 on
300 images). Seed-to-seed training noise comes on top of that, so these figures are a
lower bound on the noise, never an overstatement of certainty.

Pure functions of numbers: no study, no drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
# Trials whose scores lie within this many standard errors of the best are contenders:
# their true scores could all be the best one's, so the best of them is a maximum of noise.
CONTENDER_SE = 2.0


def binomial_se(p: float, n: int | None) -> float:
    """Standard error of an accuracy ``p`` measured on ``n`` images (NaN when unknown)."""
    if not n or n <= 0 or not (0.0 <= p <= 1.0):
        return math.nan
    return math.sqrt(max(p * (1.0 - p), 0.25 / n) / n)  # never 0: 300/300 is not certainty


def wilson_interval(p: float, n: int | None, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy ``p`` on ``n`` images ((nan, nan) when unknown).

    Wilson rather than ``p ± 1.96 se``: it stays inside [0, 1] and is honest near 1.
    """
    if not n or n <= 0 or not (0.0 <= p <= 1.0):
        return math.nan, math.nan
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_threshold(se_a: float, se_b: float, z: float = Z95) -> float:
    """The smallest gap between two scores that noise alone explains less than 5% of the time.

    Treats the two scores as independent; on one shared validation set they are positively
    correlated, which makes the true threshold smaller, but seed noise (not counted here)
    makes it larger, so this is the usual rough two-sample rule, not an exact test.
    """
    return z * math.sqrt(se_a * se_a + se_b * se_b)


def expected_max_normal(k: int) -> float:
    """E[max of k independent standard normals]: 0 for k=1, 0.56 for 2, 1.16 for 5, 1.54 for 10."""
    if k <= 1:
        return 0.0
    x = np.linspace(-8.0, 8.0, 4001)
    pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    return float(np.trapezoid(x * k * pdf * cdf ** (k - 1), x))


@dataclass(frozen=True)
class SelectionBias:
    """How much "the best of k" overstates its true score, estimated from the contenders."""

    contenders: int  # trials within CONTENDER_SE standard errors of the best
    noise: float  # the per-trial noise used: the larger of the binomial SE and the contenders' spread
    bias: float  # noise * E[max of `contenders` normals]


def selection_bias(values: np.ndarray, se: float, maximize: bool = True) -> SelectionBias | None:
    """Estimate the upward bias of the best of ``values`` (complete trials' scores).

    If the top trials' true scores were equal, their measured scores would scatter by the
    noise and the best of them would exceed the truth by ``noise * E[max of k normals]``.
    The contenders are the trials within ``CONTENDER_SE`` standard errors of the best; the
    noise is the binomial standard error or, when larger, the contenders' own spread.
    None when there is no noise estimate.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values) or not se > 0:
        return None
    best = values.max() if maximize else values.min()
    gaps = (best - values) if maximize else (values - best)
    near = values[gaps <= CONTENDER_SE * se]
    spread = float(np.std(near, ddof=1)) if len(near) >= 3 else 0.0
    noise = max(se, spread)
    return SelectionBias(len(near), noise, noise * expected_max_normal(len(near)))
