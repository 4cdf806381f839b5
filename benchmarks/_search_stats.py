"""The arithmetic of the search-quality protocol (benchmarks/search_quality.py): pure Python
and numpy, no training, so that every figure the table quotes is unit-tested
(tests/test_search_stats.py).

An arm's run is a list of finished trials ``{"end_s", "value", "params"}`` (seconds since
the arm's process started, its own objective's value, None when pruned or failed). Its
*pick* at time t is the best-valued trial finished by t; each distinct pick is retrained
on train + validation and scored on the test split, which gives the *anytime curve*:
``[(seconds, test score), ...]`` at every change of pick.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence

import numpy as np


def params_key(params: dict) -> str:
    """A canonical text for a configuration (the retrain cache's key)."""
    return json.dumps(params, sort_keys=True)


def pick_changes(trials: Sequence[dict], maximize: bool = True) -> list[dict]:
    """The trials that became the pick, in time order: each beat every trial finished before it.
    Trials without a value (pruned, failed) are never picked; ties keep the earlier pick."""
    changes: list[dict] = []
    for trial in sorted(trials, key=lambda t: t["end_s"]):
        value = trial.get("value")
        if value is None or not math.isfinite(value):
            continue
        if not changes or (value > changes[-1]["value"] if maximize else value < changes[-1]["value"]):
            changes.append(trial)
    return changes


def score_at(curve: Sequence[tuple[float, float]], seconds: float) -> float | None:
    """The test score of the pick held at ``seconds`` (None before the first pick)."""
    held = None
    for when, score in curve:
        if when > seconds:
            break
        held = score
    return held


def time_to_reach(curve: Sequence[tuple[float, float]], target: float) -> float:
    """Seconds until the pick's test score is at least ``target`` (inf if never)."""
    return next((when for when, score in curve if score >= target - 1e-12), math.inf)


def bootstrap_mean_interval(diffs: Sequence[float], reps: int = 10_000, level: float = 0.95,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (seeds resampled with replacement).
    With few seeds it is too narrow rather than too wide: read it as a lower bound on the doubt."""
    values = np.asarray(diffs, dtype=float)
    if len(values) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(reps, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return (float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))


def paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """Paired comparison of two arms over the same seeds: mean difference a - b, its bootstrap
    95 % interval, wins of a (ties count half) and the per-seed differences."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    low, high = bootstrap_mean_interval(diffs)
    wins = sum(1.0 if d > 0 else 0.5 if d == 0 else 0.0 for d in diffs)
    return {"mean": statistics.fmean(diffs) if diffs else math.nan, "low": low, "high": high, "wins": wins,
            "n": len(diffs), "diffs": diffs}


def anytime_mean(curves: Sequence[Sequence[tuple[float, float]]], seconds: float) -> tuple[float | None, int]:
    """Mean over seeds of the pick's test score at ``seconds``, over the seeds that hold a pick
    by then, and how many those are."""
    held = [s for s in (score_at(c, seconds) for c in curves) if s is not None]
    return (statistics.fmean(held) if held else None, len(held))


def binomial_se(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on ``n`` images."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n)
