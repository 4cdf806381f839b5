"""Findings in words, computed from ``ReportData``: what a reader should take away.

Each finding is one plain-text sentence or two (renderers escape it); ``warning``
marks the ones that call for action (the best LR at the edge of the range, an
unfinished study, failures). Comparisons of scores live in ``scores``
(noise, schedule types, selection bias) and learning-rate ones in ``learning_rate``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sweep.config import family_terms, metric_label
from sweep.report.analysis import importance, stats
from sweep.report.findings import learning_rate, scores
from sweep.report.data.collect import ReportData
from sweep.report.findings.finding import Finding, count as _count, ordinal
from sweep.report.fmt import fmt_lr, fmt_value

__all__ = ["Finding", "describe", "findings", "ordinal"]


def describe(params: dict[str, Any]) -> str:
    """``cosine schedule, initial_lr 3.10e-03, warm-up 5% of the steps, ...``"""
    parts = [f"{params.get('schedule', '?')} schedule", f"initial_lr {fmt_lr(params['initial_lr'])}"]
    if params.get("optimizer"):
        parts.insert(0, str(params["optimizer"]))
    for name in ("momentum", "weight_decay"):
        if params.get(name) is not None:
            parts.append(f"{name} {params[name]:.3g}")
    warmup = params.get("warmup_fraction")
    if warmup:
        parts.append(f"warm-up {warmup:.0%} of the steps")
    return ", ".join(parts + family_terms(params))


def findings(data: ReportData) -> list[Finding]:
    """The findings of a study's report, most important first."""
    result = [*_progress(data)]
    best = data.best
    if best is None:
        return result + [Finding("No trial has completed yet, so there is no best configuration to report.", True)]
    result.append(_best(data, best))
    result += scores.noise(data)
    result += scores.selection(data)
    result += learning_rate.learning_curve(data, best)
    result += learning_rate.edges(data)
    result += learning_rate.suggestion(data, best)
    result += scores.schedules(data)
    result += _optimizers(data)
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
    for _, trial in failed[failed["dropped"].notna()].iterrows() if "dropped" in failed else []:
        out.append(Finding(f"Trial #{trial['number']}'s configuration ({stats.trial_params(trial)}) was dropped: "
                           f"{trial['dropped']}; another was sampled in its place.", True))
    return out


def _best(data: ReportData, best) -> Finding:
    params = stats.trial_params(best)
    epoch = f" at epoch {int(best['best_epoch'])} of {data.epochs}" if not pd.isna(best["best_epoch"]) and data.epochs else ""
    return Finding(f"Best: trial #{int(best['number'])} reached {data.metric} {fmt_value(best['value'])}{epoch} "
                   f"with {describe(params)}.")


def _optimizers(data: ReportData) -> list[Finding]:
    """Which searched optimizer won, and where each one's range test put its LR."""
    table = data.optimizer_table
    if table.empty or table["best"].isna().all():
        return []
    ranked = [r for r in table.itertuples() if r.best == r.best]
    text = (f"Optimizers: {ranked[0].optimizer} reached the best {data.metric} ({fmt_value(ranked[0].best)}, "
            f"{_count(int(ranked[0].complete), 'complete trial')})")
    if len(ranked) > 1:
        text += ", then " + ", ".join(f"{r.optimizer} ({fmt_value(r.best)}, {_count(int(r.complete), 'complete trial')})"
                                      for r in ranked[1:])
    tests = (data.prior or {}).get("optimizers") or {}
    if tests:
        text += ("; each had its own range test, suggesting " +
                 ", ".join(f"{name} {fmt_lr(r.get('suggestion'))}" for name, r in tests.items()))
    return [Finding(text + ".")]


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
    table = data.importance_table
    skipped = [f"{r.parameter} ({r.trials})" for r in table[(table["scope"] == "all") & table["importance"].isna()
                                                            ].itertuples() if r.note.startswith("too few")]
    out = []
    if data.importances:
        ordered = list(data.importances.items())
        counts = dict(zip(table.loc[table["scope"] == "all", "parameter"], table.loc[table["scope"] == "all", "trials"]))
        text = (f"By PED-ANOVA, {ordered[0][0]} matters most (importance {ordered[0][1]:.2f} over "
                f"{counts.get(ordered[0][0])} complete trials)")
        if len(ordered) > 1:
            text += ", then " + ", ".join(f"{k} ({v:.2f}, {counts.get(k)} trials)" for k, v in ordered[1:3])
        out.append(Finding(text + "."))
    if skipped:
        out.append(Finding(f"Not ranked, too few complete trials with them (needs {importance.MIN_TRIALS}): "
                           f"{', '.join(skipped)}."))
    return out


def _evaluations(data: ReportData) -> list[Finding]:
    scored = [e for e in data.evaluations if _finite(e.get("mean"))]
    if not scored:
        return []
    runs = sum(len(e.get("runs") or []) for e in scored)
    best = (max if data.direction == "maximize" else min)(scored, key=lambda e: e["mean"])
    sd = f" ± {best['sd']:.4f} (sd)" if _finite(best.get("sd")) else ""
    test = metric_label(data.metric, "test")
    out = [Finding(f"On the test split ({_count(runs, 'retraining')} of {_count(len(scored), 'configuration')}), "
                   f"the best mean is trial #{best.get('trial')}'s {test} {best['mean']:.4f}{sd}.")]
    ranks = stats.evaluation_ranks(data.trials, data.evaluations, data.direction)
    if len(ranks) > 1:
        flipped = sorted((v, t, n) for n, (v, t) in ranks.items() if v != t)
        if not flipped:
            out.append(Finding(f"The validation ranking holds on the test split: the {len(ranks)} evaluated "
                               f"configurations rank in the same order by mean {test}."))
        else:
            first = min(ranks, key=lambda n: ranks[n][0])
            by_number = {e["trial"]: e for e in scored}
            moves = ", ".join(f"#{n} ({ordinal(v)} on validation, {ordinal(t)} on test)" for v, t, n in flipped)
            values = data.trials.set_index("number")["value"]
            if len({float(values[n]) for _, _, n in flipped}) == 1:  # reordered only among equal validation scores
                text = f"The test split orders configurations that tie on validation: {moves}."
            else:
                text = f"The validation ranking does not hold on the test split: {moves}."
            winner = min(ranks, key=lambda n: ranks[n][1])
            a, b = by_number[first], by_number[winner]
            if _finite(a.get("sd")) and _finite(b.get("sd")):
                se = math.sqrt(a["sd"] ** 2 / len(a["runs"]) + b["sd"] ** 2 / len(b["runs"]))
                gap = b["mean"] - a["mean"]
                verdict = "more than" if gap > 1.96 * se else "within"
                text += (f" #{winner} leads #{first} by {gap:.4f}, {verdict} the 95% seed noise of the means "
                         f"(±{1.96 * se:.4f}).")
            else:
                text += " With one run each the seed noise is unknown; '--repeats 3' measures it."
            out.append(Finding(text))
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
