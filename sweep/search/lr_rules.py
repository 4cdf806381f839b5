"""The LR range test's rules: pure functions of a recorded curve ``(lrs, losses)``.

``smooth`` is the bias-corrected moving average the test watches; ``valley`` (fastai's
default), ``steep`` and ``minimum`` turn the smoothed curve into a suggested initial LR;
``learning_onset`` is where learning visibly began (the prior's lower bound).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METHODS = ("valley", "steep", "minimum")
# Where learning "starts" for the lower bound: the smoothed loss has covered this
# fraction of its total drop from the first point to the minimum.
ONSET_FRACTION = 0.1


def smooth(losses: Sequence[float], beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average (``beta`` = 0: the losses themselves).

    ``avg_i = beta * avg_{i-1} + (1 - beta) * loss_i``, divided by ``1 - beta**(i+1)``
    so early values are not dragged towards the zero the average starts from. A
    non-finite loss makes every later value non-finite (divergence must show).
    """
    out = np.empty(len(losses), dtype=float)
    avg = 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * float(loss)
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def valley(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR halfway along the longest descending stretch of the loss (fastai's ``valley``).

    The stretch is the longest strictly decreasing subsequence of ``losses``; noise
    bumps inside a long descent do not break it the way they break a run of consecutive
    decreases.
    """
    start, end = _longest_descent(np.asarray(losses, dtype=float))
    return float(lrs[start + (end - start) // 2])


def steep(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR where the loss falls fastest against log10(LR)."""
    x = np.log10(np.asarray(lrs, dtype=float))
    y = np.asarray(losses, dtype=float)
    if len(y) < 2:
        return float(lrs[0])
    slope = np.gradient(y, x)
    slope[~np.isfinite(slope)] = np.inf
    return float(lrs[int(np.argmin(slope))])


def minimum(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR of the lowest loss, divided by 10 (the minimum itself is already too hot)."""
    y = np.asarray(losses, dtype=float)
    y = np.where(np.isfinite(y), y, np.inf)
    return float(lrs[int(np.argmin(y))]) / 10.0


SUGGESTERS = {"valley": valley, "steep": steep, "minimum": minimum}


def learning_onset(lrs: Sequence[float], losses: Sequence[float], fraction: float = ONSET_FRACTION) -> float:
    """The first LR at which the loss has covered ``fraction`` of its drop to the minimum."""
    y = np.asarray(losses, dtype=float)
    finite = np.isfinite(y)
    if not finite.any():
        return float(lrs[0])
    best = int(np.argmin(np.where(finite, y, np.inf)))
    target = y[0] - fraction * (y[0] - y[best])
    below = np.flatnonzero(y[: best + 1] <= target)
    return float(lrs[int(below[0])] if len(below) else lrs[0])


def _longest_descent(y: np.ndarray) -> tuple[int, int]:
    """(first, last) index of the longest strictly decreasing subsequence of ``y``."""
    n = len(y)
    if n == 0:
        raise ValueError("a range test curve needs at least one point")
    y = np.where(np.isfinite(y), y, np.inf)
    length = np.ones(n, dtype=int)
    first = np.arange(n)
    for i in range(1, n):
        higher = np.flatnonzero(y[:i] > y[i])
        if len(higher):
            # Longest chain ending above y[i]; the earliest start breaks ties, so a
            # descent is measured from where it really began.
            best = higher[length[higher] == length[higher].max()]
            j = best[np.argmin(first[best])]
            length[i], first[i] = length[j] + 1, first[j]
    end = int(np.argmax(length))  # the earliest end of the longest chain
    return int(first[end]), end
