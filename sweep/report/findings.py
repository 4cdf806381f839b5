"""Findings in words, computed from ``ReportData``: what a reader should take away.

Each finding is one plain-text sentence or two (renderers escape it); ``warning``
marks the ones that call for action (the best LR at the edge of the range, an
unfinished study, failures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweep.report import stats
from sweep.report.data import ReportData
from sweep.report.fmt import fmt_lr, fmt_value

# Two schedule types whose best values differ by less than this are reported as tied.
# A heuristic, not a measurement: every trial is one seed, and half an accuracy point
# is the order by which a small CNN's score moves between seeds, so a smaller lead
# does not show that one type is better.
TIE_ACCURACY = 0.005
TIE_LOSS_RELATIVE = 0.02
FEW_TRIALS = 3
EDGE_TOLERANCE = 0.1  # of the range's width in log space


@dataclass(frozen=True)
class Finding:
    text: str
    warning: bool = False


def describe(params: dict[str, Any]) -> str:
    """``cosine schedule, initial_lr 3.10e-03, warm-up 5% of the steps, ...``"""
    parts = [f"{params.get('schedule', '?')} schedule", f"initial_lr {fmt_lr(params['initial_lr'])}"]
    warmup = params.get("warmup_fraction")
    if warmup:
        parts.append(f"warm-up {warmup:.0%} of the steps")
    if "decay_rate" in params:
        parts.append(f"decay_rate {params['decay_rate']:.3f} per {params.get('decay_steps')} steps")
    return ", ".join(parts)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def findings(data: ReportData) -> list[Finding]:
    """The findings of a study's report, most important first."""
    result = [*_progress(data)]
    best = data.best
    if best is None:
        return result + [Finding("No trial has completed yet, so there is no best configuration to report.", True)]
    result.append(_best(data, best))
    result += _learning_rate(data, best)
    result += _schedules(data)
    result += _prior(data)
    result += _pruning(data)
    result += _importances(data)
    result += _evaluations(data)
    return result


def _progress(data: ReportData) -> list[Finding]:
    out = []
    finished = data.count("COMPLETE") + data.count("PRUNED")
    active = data.count("RUNNING") + data.count("WAITING")
    if data.budget and finished < data.budget:
        running = f"; {active} running or queued" if active else ""
        out.append(Finding(f"The study is not finished: {finished} of {data.budget} trials done{running}. "
                           "This report shows the trials so far.", True))
    failed = data.trials[data.trials["state"] == "FAIL"]
    if len(failed):
        retried = data.trials[data.trials["retried_from"].notna()]
        numbers = ", ".join(f"#{n}" for n in failed["number"])
        again = f"; {_count(len(retried), 'retry', 'retries')} ran in their place" if len(retried) else ""
        out.append(Finding(f"{_count(len(failed), 'trial')} failed ({numbers}){again}.", True))
    return out


def _best(data: ReportData, best) -> Finding:
    params = stats.trial_params(best)
    epoch = f" at epoch {int(best['best_epoch'])} of {data.epochs}" if not pd.isna(best["best_epoch"]) and data.epochs else ""
    return Finding(f"Best: trial #{int(best['number'])} reached {data.metric} {fmt_value(best['value'])}{epoch} "
                   f"with {describe(params)}.")


def _schedules(data: ReportData) -> list[Finding]:
    table = data.schedule_table
    ranked = table[np.isfinite(table["best"].astype(float))]
    if ranked.empty:
        return []
    lead = ranked.iloc[0]
    parts = [f"{lead['schedule']} {fmt_value(lead['best'])}"]
    for row in ranked.iloc[1:].itertuples():
        parts.append(f"{row.schedule} {fmt_value(row.best)} ({row.best - lead['best']:+.4f})")
    untried = [s for s in table.loc[table["complete"] == 0, "schedule"]]
    text = f"Best {data.metric} per schedule type: " + ", ".join(parts) + "."
    if untried:
        text += f" No complete trial for: {', '.join(untried)}."
    out = [Finding(text)]
    if len(ranked) > 1:
        second = ranked.iloc[1]
        gap = abs(float(lead["best"]) - float(second["best"]))
        tie = TIE_ACCURACY if data.metric == "val_accuracy" else TIE_LOSS_RELATIVE * abs(float(lead["best"]))
        if gap < tie:
            out.append(Finding(
                f"{lead['schedule']} and {second['schedule']} are only {gap:.4f} apart (below {tie:.3f}): with one "
                "seed per trial that does not separate them; treat them as tied, or compare their best "
                "configurations with 'sweep evaluate --top K'."))
        else:
            out.append(Finding(f"{lead['schedule']} leads {second['schedule']}, the runner-up type, by {gap:.4f}."))
    few = [f"{r.schedule} ({r.complete})" for r in ranked.itertuples() if r.complete < FEW_TRIALS]
    if few:
        out.append(Finding(f"Few complete trials behind: {', '.join(few)}; their best values are rough estimates."))
    return out


def _learning_rate(data: ReportData, best) -> list[Finding]:
    out = []
    lr = float(best["initial_lr"])
    if data.lr_range:
        low, high = data.lr_range
        edge = stats.edge_of_range(lr, low, high, EDGE_TOLERANCE)
        if edge:
            prior = data.prior or {}
            narrowed = prior.get("narrowed_range") and prior.get("narrowed_range") != prior.get("config_range")
            hint = " (or set lr_finder.narrow: false: the prior narrowed it)" if narrowed else ""
            out.append(Finding(
                f"The best initial_lr {fmt_lr(lr)} lies at the {edge} edge of the searched range "
                f"[{fmt_lr(low)}, {fmt_lr(high)}]: better values may lie beyond it. Widen search.initial_lr{hint}.",
                True))
    suggestion = (data.lr_finder or {}).get("suggestion")
    if isinstance(suggestion, (int, float)) and suggestion > 0:
        ratio = lr / suggestion
        relation = ("about the same" if 0.8 <= ratio <= 1.25 else
                    f"{ratio:.1f} times higher" if ratio > 1 else f"{1 / ratio:.1f} times lower")
        method = (data.lr_finder or {}).get("method") or "its"
        out.append(Finding(f"The LR finder's {method} suggestion was {fmt_lr(suggestion)}; "
                           f"the best trial's initial_lr is {relation}."))
    return out


def _prior(data: ReportData) -> list[Finding]:
    seeded = data.trials[data.trials["seeded_by_prior"]]
    if seeded.empty:
        return [Finding("The prior seeded no trials.")] if data.prior else []
    ranking = stats.ranked(data.trials, data.direction)["number"].tolist()
    lrs = ", ".join(f"#{int(r.number)} at {fmt_lr(r.initial_lr)}" for r in seeded.itertuples())
    ranks = [ranking.index(n) + 1 for n in seeded["number"] if n in ranking]
    text = f"The prior seeded {_count(len(seeded), 'trial')} around the LR finder's suggestion ({lrs})"
    if ranks:
        top = min(ranks)
        number = ranking[top - 1]
        text += (f"; the best of them, #{number}, ranked {ordinal(top)} of {len(ranking)} complete trials"
                 f" ({fmt_value(float(data.trials.set_index('number').loc[number, 'value']))}).")
    else:
        text += "; none of them completed."
    return [Finding(text)]


def _pruning(data: ReportData) -> list[Finding]:
    p = data.pruning
    if not p.pruned and not p.diverged:
        return []
    stopped = []
    if p.pruned:
        stopped.append(f"The pruner stopped {_count(p.pruned, 'trial')} early")
    if p.diverged:
        stopped.append(f"{_count(p.diverged, 'trial')} diverged and stopped at once")
    text = "; ".join(stopped) + "."
    if p.epochs_full:
        text += (f" They ran {p.epochs_run} epochs instead of {p.epochs_run + p.epochs_saved}, saving "
                 f"{p.epochs_saved} epochs ({p.share_saved:.0%} of the {p.epochs_full} that the "
                 f"{p.finished} finished trials would have run without pruning).")
    return [Finding(text)]


def _importances(data: ReportData) -> list[Finding]:
    if not data.importances:
        return []
    ordered = list(data.importances.items())
    text = f"{ordered[0][0]} matters most (importance {ordered[0][1]:.2f})"
    if len(ordered) > 1:
        text += ", then " + ", ".join(f"{k} ({v:.2f})" for k, v in ordered[1:3])
    return [Finding(text + ".")]


def _evaluations(data: ReportData) -> list[Finding]:
    scored = [e for e in data.evaluations if _finite(e.get("test_accuracy"))]
    if not scored:
        return []
    best = max(scored, key=lambda e: e["test_accuracy"])
    return [Finding(f"On the test split, the best of {_count(len(scored), 'retrained configuration')} is trial "
                    f"#{best.get('trial')} with test accuracy {best['test_accuracy']:.4f}.")]


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
