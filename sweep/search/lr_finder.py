"""The LR range test: raise the learning rate exponentially, batch by batch, and watch the loss.

On a throwaway copy of the study's model, data and batch size the LR climbs from
``lr_finder.start_lr`` to ``end_lr`` over ``num_steps`` batches (looping over the data
as often as needed). Each batch's own training loss is recorded (Keras' batch logs hold
a running mean since the epoch began, which lags and flattens the curve, so we train
batch by batch with ``train_on_batch``, which resets the metrics first), smoothed with a
bias-corrected exponential moving average, and the test stops once the smoothed loss
passes ``diverge_factor`` times its best or turns non-finite.

Three suggestions are computed from the smoothed curve by the pure rules of
``sweep.search.lr_rules``: ``valley`` (fastai's default), ``steep`` and ``minimum``; the
config picks which one seeds the study. Keras and numpy only: no optuna here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sweep.config import Config
from sweep.search.lr_rules import METHODS, SUGGESTERS, learning_onset, smooth
from sweep.training.data import Dataset

log = logging.getLogger(__name__)

_PROGRESS_EVERY = 50  # steps between progress log lines


@dataclass
class LRFinderResult:
    """A range test's curve and what it suggests (``to_dict`` is ``lr_finder.json``)."""

    method: str
    suggestion: float
    lower: float
    upper: float
    lrs: list[float]
    losses: list[float]
    seconds: float
    smoothed: list[float] = field(default_factory=list)
    suggestions: dict[str, float] = field(default_factory=dict)
    num_steps: int = 0  # steps run (fewer than configured when the loss diverged)
    diverged_at: float | None = None  # the LR at which the smoothed loss diverged
    batch_size: int = 0
    seed: int = 0
    optimizer: str = ""  # the optimizer the test trained with (a study searching several runs one each)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: non-finite losses become ``None``."""
        out = asdict(self)
        out["losses"] = [_json_float(v) for v in self.losses]
        out["smoothed"] = [_json_float(v) for v in self.smoothed]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LRFinderResult:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for key in ("losses", "smoothed"):
            if key in known:
                known[key] = [math.nan if v is None else float(v) for v in known[key]]
        return cls(**known)


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- pure curve functions ------------------------------------------------------------------


def exponential_lrs(start_lr: float, end_lr: float, num_steps: int) -> np.ndarray:
    """``num_steps`` LRs from ``start_lr`` to ``end_lr``, evenly spaced on a log axis."""
    return np.geomspace(start_lr, end_lr, num_steps)


class DivergenceWatch:
    """Decides, one smoothed loss at a time, when the range test has diverged.

    Diverged: the loss is non-finite, passes ``factor`` times its best, or, having
    fallen at least ``UNDONE_DROP`` below its first value, climbs back above it: Keras
    clips softmax outputs, so with Adam the cross-entropy of a blown-up model settles
    near the untrained model's loss instead of running off to factor x best.
    """

    UNDONE_DROP = 0.1

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.first = math.nan
        self.best = math.inf

    def diverged(self, smoothed: float) -> bool:
        if not math.isfinite(smoothed):
            return True
        if math.isnan(self.first):
            self.first = smoothed
        learned = self.best <= (1.0 - self.UNDONE_DROP) * self.first
        if smoothed > self.factor * self.best or (learned and smoothed > self.first):
            return True
        self.best = min(self.best, smoothed)
        return False


# --- the range test ------------------------------------------------------------------------


def run_range_test(config: Config, data: Dataset, *, seed: int, optimizer: str | None = None) -> LRFinderResult:
    """Run the range test on a fresh copy of the config's model; returns the curve and suggestion.

    Uses ``config.lr_finder`` (start/end LR, steps, smoothing, divergence factor, method),
    ``config.model``, ``config.train.batch_size`` and ``optimizer`` (default
    ``train.optimizer``) with ``train.optimizer_args``. The model is thrown away
    afterwards; only ``seed`` makes two runs differ.
    """
    import keras

    from sweep.training.model import compile_model, make_model
    from sweep.training.optimizers import make_optimizer
    from sweep.training.params import TrialParams

    finder = config.lr_finder
    batch_size = config.train.batch_size
    lrs = exponential_lrs(finder.start_lr, finder.end_lr, finder.num_steps)
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    optimizer = optimizer or config.train.optimizer
    params = TrialParams(initial_lr=float(lrs[0]), optimizer=optimizer)
    model = compile_model(make_model(config, data.input_shape, data.num_classes, data.labels),
                          make_optimizer(config, params, float(lrs[0]), finder.num_steps), config, data.labels)
    log.info(
        "LR range test (%s): %d steps of batch %d, LR %.1e to %.1e", optimizer, finder.num_steps, batch_size,
        finder.start_lr, finder.end_lr,
    )

    losses: list[float] = []
    watch = DivergenceWatch(finder.diverge_factor)
    avg = 0.0
    diverged_at = None
    batches = _batches(data.x_train, data.y_train, batch_size, np.random.default_rng(seed))
    for step, (lr, (x, y)) in enumerate(zip(lrs, batches)):
        model.optimizer.learning_rate = float(lr)
        loss = float(model.train_on_batch(x, y, return_dict=True)["loss"])
        losses.append(loss)
        # The same bias-corrected average as smooth(), kept incrementally to stop early.
        avg = finder.smoothing * avg + (1.0 - finder.smoothing) * loss
        smoothed = avg / (1.0 - finder.smoothing ** (step + 1))
        if watch.diverged(smoothed):
            diverged_at = float(lr)
            log.info("LR range test: loss diverged at LR %.2e (step %d)", lr, step + 1)
            break
        if (step + 1) % _PROGRESS_EVERY == 0:
            log.info("LR range test: step %d/%d, LR %.2e, smoothed loss %.3f", step + 1, finder.num_steps, lr, smoothed)

    result = summarize(
        lrs[: len(losses)], losses, smoothing=finder.smoothing, method=finder.suggestion,
        end_lr=finder.end_lr, diverged_at=diverged_at,
    )
    result.seconds = time.perf_counter() - started
    result.batch_size, result.seed, result.optimizer = batch_size, seed, optimizer
    log.info(
        "LR range test: %s suggests %.2e (bounds %.2e to %.2e) in %.1fs",
        result.method, result.suggestion, result.lower, result.upper, result.seconds,
    )
    return result


def summarize(
    lrs: Sequence[float],
    losses: Sequence[float],
    *,
    smoothing: float,
    method: str,
    end_lr: float,
    diverged_at: float | None = None,
) -> LRFinderResult:
    """Suggestions and bounds from a recorded curve (pure; ``seconds`` left at 0).

    The suggestions read the smoothed curve after its first tenth and before the
    divergence point; the upper
    bound is where the loss diverged (or ``end_lr``), the lower one where learning
    visibly began (``learning_onset``) or the suggestion, whichever is lower.
    """
    if method not in SUGGESTERS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    lrs = [float(v) for v in lrs]
    losses = [float(v) for v in losses]
    smoothed = smooth(losses, smoothing)
    usable = len(lrs) - 1 if diverged_at is not None and len(lrs) > 1 else len(lrs)
    curve_lrs, curve = lrs[:usable], smoothed[:usable]
    # The rules skip the first tenth of the curve, as fastai's lr_find does (num_it // 10):
    # there the bias-corrected average is still a few single batches' losses, and their
    # noise once made steep pick start_lr itself (seed 105, benchmarks/README.md).
    skip = len(curve) // 10 if len(curve) >= 20 else 0
    suggestions = {name: fn(curve_lrs[skip:], curve[skip:]) for name, fn in SUGGESTERS.items()}
    return LRFinderResult(
        method=method,
        suggestion=suggestions[method],
        # Never above the suggestion: lower <= suggestion <= upper always holds.
        lower=min(learning_onset(curve_lrs, curve), suggestions[method]),
        upper=float(diverged_at if diverged_at is not None else end_lr),
        lrs=lrs,
        losses=losses,
        seconds=0.0,
        smoothed=[float(v) for v in smoothed],
        suggestions=suggestions,
        num_steps=len(losses),
        diverged_at=diverged_at,
    )


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[tuple]:
    """Shuffled full batches, epoch after epoch, without end.

    The remainder of each epoch is dropped: every step then sees a batch of the same
    size (equally noisy, and one traced shape for the compiled step).
    """
    n = len(y)
    size = min(batch_size, n)
    while True:
        order = rng.permutation(n)
        for begin in range(0, n - size + 1, size):
            idx = order[begin : begin + size]
            yield x[idx], y[idx]
